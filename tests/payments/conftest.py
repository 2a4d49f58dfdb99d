from __future__ import annotations

from tests.devnet_fixture import devnet, devnet_blocks, settler
from tests.paid_support import paid_server

__all__ = ["devnet", "devnet_blocks", "paid_server", "settler"]
