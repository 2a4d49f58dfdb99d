from __future__ import annotations

from tests.devnet_fixture import devnet, settler
from tests.paid_support import paid_server

__all__ = ["devnet", "paid_server", "settler"]
