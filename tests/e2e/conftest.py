from __future__ import annotations

from tests.devnet_fixture import devnet, devnet_blocks, settler
from tests.paid_support import paid_server
from tests.s3_support import s3_checked, s3_open

__all__ = ["devnet", "devnet_blocks", "paid_server", "s3_checked", "s3_open", "settler"]
