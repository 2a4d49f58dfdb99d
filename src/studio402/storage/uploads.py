"""The paid 3-step upload: a paid slot -> PUT the bytes with a scoped client token -> confirm by wallet.

A client token is an HMAC-signed claim set scoped to ONE upload: its pathname, its content type, a size
limit and an expiry. It cannot write anywhere else, anything else, or later. The bytes are checked by
content (a text file called .png is refused) before they are stored.

With a store that takes direct uploads (S3), the client PUTs to a presigned URL for `incoming/<id>/…`
instead; confirming reads the object back, checks size and content, and only then stores it under its
pathname. The presigned URL can be used again until it expires, but never reaches a confirmed upload."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from studio402.catalog.fields import MediaKind
from studio402.errors import AccessDenied, InputError, NotFound, PayloadTooLarge, TokenError
from studio402.media.verify import MAX_BYTES, inspect_async, kind_of
from studio402.money import account_key
from studio402.storage.base import BlobStore, DirectUploads
from studio402.storage.upload_model import Upload, UploadState

__all__ = ["Upload", "UploadService", "UploadStore"]

TOKEN_PREFIX = "s402_upload_"  # noqa: S105 - a prefix, not a secret
UPLOAD_TTL_SECONDS = 3600
INCOMING = "incoming"  # direct uploads land here until confirmed


class UploadStore(Protocol):
    async def create(self, upload: Upload, now: float) -> bool:
        """False when the slot already exists (a concurrent replay of the same payment made it)."""
        ...

    async def by_id(self, upload_id: str) -> Upload | None: ...

    async def by_job(self, job_id: str) -> Upload | None: ...

    async def by_pathname(self, pathname: str) -> Upload | None: ...

    async def uploaded(self, upload_id: str, size: int, now: float) -> bool:
        """ISSUED -> UPLOADED (compare-and-set)."""
        ...

    async def confirmed(self, upload_id: str, now: float) -> bool:
        """UPLOADED -> CONFIRMED (compare-and-set)."""
        ...


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class UploadService:
    def __init__(
        self,
        store: UploadStore,
        blobs: BlobStore,
        secret: bytes,
        public_url: str,
        *,
        direct: DirectUploads | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._slots = store
        self._blobs = blobs
        self.direct = direct
        self._secret = hashlib.sha256(b"uploads\n" + secret).digest()
        self._public = public_url.rstrip("/")
        self._clock = clock

    def blob_url(self, pathname: str) -> str:
        """The upload's URL for generate bodies (reading it needs a signature; we resolve it ourselves)."""
        return f"{self._public}/blobs/{pathname}"

    def upload_url(self, pathname: str) -> str:
        return f"{self._public}/api/upload/blob?pathname={pathname}"

    def target(self, upload: Upload) -> tuple[str, dict[str, str]]:
        """Where the client PUTs the bytes, and the headers it must send (exactly these)."""
        if self.direct is not None:
            url = self.direct.upload_url(_incoming(upload), upload.content_type, UPLOAD_TTL_SECONDS)
            return url, {"content-type": upload.content_type}
        return self.upload_url(upload.pathname), {
            "authorization": f"Bearer {self.token(upload)}",
            "x-content-type": upload.content_type,
        }

    async def issue(self, job_id: str, payer: str, filename: str, content_type: str) -> Upload:
        """The slot bought by payment `job_id` (the same one again on a replayed payment)."""
        existing = await self._slots.by_job(job_id)
        if existing is not None:
            return existing
        kind = _kind(content_type)
        if kind is None:
            raise InputError(f"cannot upload {content_type}", code="upload_type_unsupported")
        upload_id = str(uuid.uuid4())
        now = self._clock()
        upload = Upload(
            id=upload_id,
            job_id=job_id,
            payer=account_key(payer),
            pathname=f"uploads/{upload_id}/{filename}",
            content_type=content_type,
            max_bytes=MAX_BYTES[kind],
            expires_at=now + UPLOAD_TTL_SECONDS,
            state=UploadState.ISSUED,
            size=None,
        )
        await self._slots.create(upload, now)  # False: a concurrent replay of the same payment made it
        created = await self._slots.by_job(job_id)
        assert created is not None
        return created

    async def confirmed(self, pathname: str) -> bool | None:
        """Whether the upload stored at `pathname` was confirmed; None when no upload has that pathname.
        Only a confirmed upload is a usable media input: until then it is a paid slot, not a file."""
        upload = await self._slots.by_pathname(pathname)
        return None if upload is None else upload.state is UploadState.CONFIRMED

    def token(self, upload: Upload) -> str:
        claims = {
            "u": upload.id,
            "p": upload.pathname,
            "t": upload.content_type,
            "m": upload.max_bytes,
            "e": int(upload.expires_at),
        }
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return TOKEN_PREFIX + body + "." + self._mac(body)

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())

    def _claims(self, token: str) -> dict[str, Any]:
        body, _, mac = token.removeprefix(TOKEN_PREFIX).partition(".")
        if not token.startswith(TOKEN_PREFIX) or not hmac.compare_digest(mac, self._mac(body)):
            raise TokenError("invalid upload token", code="upload_token_invalid")
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if claims["e"] < self._clock():
            raise TokenError(
                "the upload token has expired; pay for a new upload", code="upload_token_expired"
            )
        return claims

    def check_put(self, token: str, pathname: str, content_type: str | None) -> tuple[str, int]:
        """Validate a PUT before reading its body: (upload id, size limit)."""
        claims = self._claims(token)
        if pathname != claims["p"]:
            raise AccessDenied("this token does not allow writing that path", code="upload_path_mismatch")
        if content_type != claims["t"]:
            raise InputError(f"x-content-type must be {claims['t']}", code="upload_type_mismatch")
        return str(claims["u"]), int(claims["m"])

    async def put(self, upload_id: str, data: bytes) -> Upload:
        upload = await self._slots.by_id(upload_id)
        if upload is None:
            raise NotFound("no such upload")
        if upload.state is not UploadState.ISSUED:
            raise AccessDenied("this upload was already written", code="upload_already_written")
        await self._store(upload, data)
        written = await self._slots.by_id(upload_id)
        assert written is not None
        return written

    async def _store(self, upload: Upload, data: bytes) -> None:
        # The kind must match what was paid for; within a kind the real type wins (png named jpeg is fine).
        facts = await inspect_async(data, _kind(upload.content_type))
        await self._blobs.put(upload.pathname, data, facts.mime)
        await self._slots.uploaded(upload.id, len(data), self._clock())  # False: a concurrent PUT won

    async def _adopt(self, upload: Upload) -> None:
        """Check a direct upload like a PUT through the app, then move it to its pathname."""
        incoming = _incoming(upload)
        info = await self._blobs.stat(incoming)
        if info is None:
            raise InputError("nothing was uploaded yet", code="upload_missing")
        try:
            if info.size > upload.max_bytes:
                raise PayloadTooLarge(f"the upload is larger than {upload.max_bytes} bytes")
            await self._store(upload, await self._blobs.get(incoming))
        except NotFound:  # a concurrent confirm moved it first
            return
        except InputError:
            await self._blobs.delete(incoming)  # refused bytes go; the slot stays open for a new PUT
            raise
        await self._blobs.delete(incoming)

    async def confirm(self, upload_id: str, blob_url: str, payer: str) -> Upload:
        upload = await self._slots.by_id(upload_id)
        if upload is None or upload.payer != account_key(payer):
            raise NotFound("no such upload for this wallet")
        if blob_url.split("?", 1)[0] != self.blob_url(upload.pathname):
            raise InputError("blobUrl does not belong to this upload", code="upload_url_mismatch")
        if upload.state is UploadState.ISSUED:
            if self.direct is None:
                raise InputError("nothing was uploaded yet", code="upload_missing")
            await self._adopt(upload)
            adopted = await self._slots.by_id(upload_id)
            if adopted is None or adopted.state is UploadState.ISSUED:
                raise InputError("nothing was uploaded yet", code="upload_missing")
        # Confirming again is a no-op (a concurrent confirm may also have won the compare-and-set).
        await self._slots.confirmed(upload.id, self._clock())
        confirmed = await self._slots.by_id(upload_id)
        assert confirmed is not None
        return confirmed


def _incoming(upload: Upload) -> str:
    return f"{INCOMING}/{upload.pathname.removeprefix('uploads/')}"


def _kind(content_type: str) -> MediaKind | None:
    return kind_of(content_type) or (MediaKind.AUDIO if content_type.startswith("audio/") else None)
