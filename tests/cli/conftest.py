from __future__ import annotations

from tests.devnet_fixture import devnet, devnet_blocks, settler

__all__ = ["devnet", "devnet_blocks", "settler"]
