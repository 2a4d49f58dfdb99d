from __future__ import annotations

from tests.devnet_fixture import devnet, settler

__all__ = ["devnet", "settler"]
