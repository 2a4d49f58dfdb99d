"""studio402: sell AI image and video generation per call, paid with HTTP 402 micropayments."""

__version__ = "0.1.0"
