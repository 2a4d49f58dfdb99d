"""The payer's side of studio402: pay a generate route, wait for the job, download the files.

Imports nothing from the server side (tests/sdk/test_imports.py checks), so it works against any
StableStudio-style server. `client.py` keeps the older one-function helpers the demo uses.
"""

from studio402.sdk._client import AsyncStudio
from studio402.sdk._errors import (
    JobFailed,
    JobTimeout,
    NoPayableOffer,
    PaymentFailed,
    ServerError,
    SignInRequired,
    SpendLimitExceeded,
    StudioError,
)
from studio402.sdk._models import Generated, Job, JobStatus, Price, Quote, Route
from studio402.sdk._payment import SpendLimits, new_payment_id
from studio402.sdk._sync import Studio
from studio402.sdk._wallet import SolanaKey, TempoRail, Wallet, write_key_file

__all__ = [
    "AsyncStudio",
    "Generated",
    "Job",
    "JobFailed",
    "JobStatus",
    "JobTimeout",
    "NoPayableOffer",
    "PaymentFailed",
    "Price",
    "Quote",
    "Route",
    "ServerError",
    "SignInRequired",
    "SolanaKey",
    "SpendLimitExceeded",
    "SpendLimits",
    "Studio",
    "StudioError",
    "TempoRail",
    "Wallet",
    "new_payment_id",
    "write_key_file",
]
