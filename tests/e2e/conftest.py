from __future__ import annotations

from tests.devnet_fixture import devnet, settler
from tests.paid_support import paid_server
from tests.s3_support import s3_checked, s3_open

__all__ = ["devnet", "paid_server", "s3_checked", "s3_open", "settler"]
