"""Blob storage: uploads and results, behind the BlobStore port (local files by default, or S3)."""

from __future__ import annotations

from studio402.config import Settings, StorageBackend
from studio402.storage.base import UrlSigner
from studio402.storage.local import LocalBlobStore
from studio402.storage.s3 import S3BlobStore
from studio402.storage.sigv4 import Credentials, SigV4Signer


def open_blob_store(settings: Settings, signer: UrlSigner) -> LocalBlobStore | S3BlobStore:
    storage = settings.storage
    if storage.backend is StorageBackend.LOCAL or storage.s3 is None:
        return LocalBlobStore(settings.data_dir / "blobs", signer)
    s3 = storage.s3
    assert s3.access_key_id is not None and s3.secret_access_key is not None  # checked by the config
    credentials = Credentials(
        s3.access_key_id,
        s3.secret_access_key.get_secret_value(),
        s3.session_token.get_secret_value() if s3.session_token else None,
    )
    return S3BlobStore(
        SigV4Signer(credentials, s3.region),
        s3.bucket,
        endpoint_url=s3.endpoint_url,
        path_style=s3.path_style,
        prefix=s3.prefix,
    )
