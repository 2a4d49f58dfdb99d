from __future__ import annotations

from tests.devnet_fixture import devnet

__all__ = ["devnet"]
