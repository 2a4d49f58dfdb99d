"""Where verified media inputs are kept: under `unpaid/` until a paid job reads them, then under `media/`.

Inputs are checked, and so stored, before anything is paid (the 402 and /api/quote). A request that is never
paid must not keep what it made us download for the week `media/` lasts: its copy is
`unpaid/<sha256>.<ext>`, swept after `storage.unpaid_media_retention_hours`. Both areas use the same content
key, so a request body names `media/<sha256>.<ext>` either way (its paid retry matches the 402), and the
first paid job that reads an input moves it to `media/`."""

from __future__ import annotations

from studio402.errors import NotFound
from studio402.storage.base import BlobStore

UNPAID = "unpaid"
_MEDIA = "media/"


def unpaid_key(key: str) -> str:
    """`media/<name>` -> `unpaid/<name>`."""
    return f"{UNPAID}/{key.removeprefix(_MEDIA)}"


class MediaStore:
    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    async def keep_unpaid(self, key: str, data: bytes, mime: str) -> None:
        """Store an input checked for a request not paid yet, unless a paid job already kept it. Writing it
        again restarts its short retention: a paid retry soon after its 402 finds it."""
        if await self._blobs.stat(key) is None:
            await self._blobs.put(unpaid_key(key), data, mime)

    async def exists(self, key: str) -> bool:
        if await self._blobs.stat(key) is not None:
            return True
        return key.startswith(_MEDIA) and await self._blobs.stat(unpaid_key(key)) is not None

    async def read(self, key: str) -> bytes:
        """The bytes of `key`, or of its unpaid copy (NotFound when neither is there)."""
        try:
            return await self._blobs.get(key)
        except NotFound:
            if not key.startswith(_MEDIA):
                raise
        return await self._blobs.get(unpaid_key(key))

    async def claim(self, key: str) -> bytes:
        """The bytes of `key` for a paid job, kept under `media/` from now on."""
        try:
            return await self._blobs.get(key)
        except NotFound:
            if not key.startswith(_MEDIA):
                raise
        staged = unpaid_key(key)
        info = await self._blobs.stat(staged)
        if info is None:
            raise NotFound(f"media input {key} is gone (an unpaid copy is kept only briefly)")
        data = await self._blobs.get(staged)
        await self._blobs.put(key, data, info.content_type)
        return data
