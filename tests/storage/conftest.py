from tests.s3_support import s3_checked, s3_open

__all__ = ["s3_checked", "s3_open"]
