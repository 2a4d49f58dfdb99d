from __future__ import annotations

from tests.devnet_fixture import devnet
from tests.scale.cluster import pg

__all__ = ["devnet", "pg"]
