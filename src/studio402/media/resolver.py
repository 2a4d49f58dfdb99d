"""Media inputs of a generate body, resolved and verified BEFORE the price is quoted (nothing is charged for
unusable media), stored in our blob store so backends never fetch user URLs.

Each reference becomes our own content-addressed URL (`<public>/blobs/media/<sha256>.<ext>`): the same
bytes always give the same canonical body, so the paid retry matches its 402 exactly.
Accepted: our upload/result blob URLs (no network), other https URLs (SSRF-safe fetcher), data: URLs and
bare base64."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from studio402.backends.base import MediaInput
from studio402.catalog import Catalog, MediaSlot, ValidatedRequest
from studio402.catalog.base import InputFacts
from studio402.catalog.fields import MediaKind
from studio402.catalog.models.seedance import check_references
from studio402.errors import MediaError, ValidationFailed
from studio402.media.budget import DecodeBudget, DecodeLimits
from studio402.media.fetch import SafeFetcher
from studio402.media.store import MediaStore
from studio402.media.verify import MediaFacts, inspect_async
from studio402.storage.base import BlobStore

CACHE_SECONDS = 600.0
_CACHE_SIZE = 512
# Blob key -> whether that upload was confirmed, None when it is no upload (UploadService.confirmed).
UploadState = Callable[[str], Awaitable[bool | None]]


class MediaResolver:
    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        fetcher: SafeFetcher,
        public_url: str,
        *,
        upload_confirmed: UploadState | None = None,
        limits: DecodeLimits | None = None,
    ) -> None:
        self._catalog = catalog
        self._limits = limits or DecodeLimits()  # decode work per request, all its media inputs together
        self._store = MediaStore(blobs)  # inputs of unpaid requests are kept briefly
        self._fetcher = fetcher
        # None (no upload service): every `uploads/` key is refused, never taken unchecked.
        self._upload_confirmed = upload_confirmed
        self._own_prefix = public_url.rstrip("/") + "/blobs/"
        # URL -> (our key, facts, when): the paid retry does not download the same URL again.
        self._recent: OrderedDict[str, tuple[str, MediaFacts, float]] = OrderedDict()

    def key_of(self, url: str) -> str | None:
        """Our blob key behind one of our own URLs (query ignored), else None."""
        if not url.startswith(self._own_prefix):
            return None
        return url[len(self._own_prefix) :].split("?", 1)[0]

    def url_of(self, key: str) -> str:
        return self._own_prefix + key

    def fetches_for(self, request: ValidatedRequest) -> int:
        """How many downloads resolving `request` would start now (remote URLs not fetched recently)."""
        now = time.monotonic()
        count = 0
        for slot in request.params.media_slots():
            if self.key_of(slot.ref) is None and _remote(slot.ref):
                cached = self._recent.get(slot.ref)
                count += cached is None or now - cached[2] >= CACHE_SECONDS
        return count

    async def resolve(self, request: ValidatedRequest) -> ValidatedRequest:
        slots = list(request.params.media_slots())
        if not slots:
            return request
        body: dict[str, Any] = dict(request.canonical)
        kinds: dict[tuple[str | int, ...], MediaKind] = {}
        inputs = []
        budget = self._limits.budget()
        for slot in slots:
            key, facts = await self._resolve_slot(slot, budget)
            _set(body, slot.loc, self.url_of(key))
            kinds[slot.loc] = facts.kind
            inputs.append(
                InputFacts(
                    slot.loc, facts.kind, facts.mime, facts.size, facts.width, facts.height, facts.duration_s
                )
            )
        _persist_seedance_types(body, kinds)
        return replace(self._catalog.validate(request.route, body), inputs=tuple(inputs))

    async def _resolve_slot(self, slot: MediaSlot, budget: DecodeBudget) -> tuple[str, MediaFacts]:
        try:
            own = self.key_of(slot.ref)
            if own is not None:
                return own, await self._check_own(own, slot, budget)
            cached = self._recent.get(slot.ref)
            if cached is not None and time.monotonic() - cached[2] < CACHE_SECONDS:
                _check_kind(slot, cached[1])
                return cached[0], cached[1]
            data = await self._bytes_of(slot.ref)
            facts = await inspect_async(data, _expected(slot), budget)
            key = content_key(data, facts)
            await self._store.keep_unpaid(key, data, facts.mime)
            self._remember(slot.ref, key, facts)
            return key, facts
        except MediaError as exc:
            exc.extra.setdefault("field", ".".join(str(p) for p in slot.loc))
            raise

    async def _check_own(self, key: str, slot: MediaSlot, budget: DecodeBudget) -> MediaFacts:
        if key.startswith("uploads/"):
            await self._check_upload(key)
        if not key.startswith(("uploads/", "media/", "results/")) or not await self._store.exists(key):
            raise MediaError(
                "unknown upload or blob URL (upload and confirm the file first)", code="unknown_blob"
            )
        return await inspect_async(await self._store.read(key), _expected(slot), budget)

    async def _check_upload(self, key: str) -> None:
        """A paid slot becomes an input only once its owner confirmed it (PUT alone is not enough)."""
        confirmed = await self._upload_confirmed(key) if self._upload_confirmed is not None else None
        if confirmed is None:
            raise MediaError(
                "unknown upload or blob URL (upload and confirm the file first)", code="unknown_blob"
            )
        if not confirmed:
            raise MediaError(
                "this upload is not confirmed yet: POST /api/upload/confirm first",
                code="upload_not_confirmed",
            )

    async def _bytes_of(self, ref: str) -> bytes:
        if ref[:5].lower() == "data:":
            return _b64(ref.split(",", 1)[1])
        if _remote(ref):
            return (await self._fetcher.fetch(ref)).content
        return _b64(ref)

    def _remember(self, ref: str, key: str, facts: MediaFacts) -> None:
        if ref[:4].lower() != "http":
            return  # inline data is its own cache key; no network to save
        self._recent[ref] = (key, facts, time.monotonic())
        self._recent.move_to_end(ref)
        while len(self._recent) > _CACHE_SIZE:
            self._recent.popitem(last=False)


def _remote(ref: str) -> bool:
    return ref[:8].lower() == "https://" or ref[:7].lower() == "http://"


def content_key(data: bytes, facts: MediaFacts) -> str:
    return f"media/{hashlib.sha256(data).hexdigest()}.{facts.extension}"


def _expected(slot: MediaSlot) -> MediaKind | None:
    """Seedance `urls` may hold images or videos: their kind is read from the content, then checked."""
    return None if slot.loc[0] == "urls" else slot.kind


def _check_kind(slot: MediaSlot, facts: MediaFacts) -> None:
    expected = _expected(slot)
    if expected is not None and facts.kind is not expected:
        raise MediaError(f"expected {expected.value}, got {facts.kind.value}", code="media_kind_mismatch")


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MediaError("invalid base64 media", code="media_invalid_base64") from None


def _set(body: dict[str, Any], loc: tuple[str | int, ...], value: str) -> None:
    if len(loc) == 1:
        body[str(loc[0])] = value
    else:
        items = list(body[str(loc[0])])
        items[int(loc[1])] = value
        body[str(loc[0])] = items


def _persist_seedance_types(body: dict[str, Any], kinds: dict[tuple[str | int, ...], MediaKind]) -> None:
    """Seedance: urlMediaTypes are the verified kinds; a declared one that disagrees is an error."""
    if "urls" not in body:
        return
    actual = [kinds[("urls", i)].value for i in range(len(body["urls"]))]
    declared = body.get("urlMediaTypes")
    if declared is not None and list(declared) != actual:
        wrong = next(i for i, (d, a) in enumerate(zip(declared, actual, strict=True)) if d != a)
        raise MediaError(
            f"urls[{wrong}] is a {actual[wrong]}, but urlMediaTypes says {declared[wrong]}",
            code="media_kind_mismatch",
            field=f"urlMediaTypes.{wrong}",
        )
    body["urlMediaTypes"] = actual
    if body.get("mode") == "reference":
        errors = check_references(body.get("prompt") or "", actual, len(body.get("audioUrls") or ()))
        if errors:
            raise ValidationFailed(errors)


class BlobMediaLoader:
    """The runner's MediaLoader: the verified inputs of a job, from our blob store."""

    def __init__(self, catalog: Catalog, blobs: BlobStore, resolver: MediaResolver, url_ttl: float) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._resolver = resolver
        self._ttl = url_ttl
        self._store = MediaStore(blobs)

    async def load(self, job: Any) -> list[MediaInput]:
        route = self._catalog.get(job.model, job.operation)
        inputs = []
        for slot in route.input.model_validate(job.request).media_slots():
            key = self._resolver.key_of(slot.ref)
            if key is None:
                raise MediaError(f"{slot.ref} is not in our store", code="unknown_blob")
            data = await self._store.claim(key)  # the job is paid: its inputs are kept like its results
            facts = await inspect_async(data)
            inputs.append(
                MediaInput(
                    slot.loc,
                    facts.kind,
                    facts.mime,
                    data,
                    self._blobs.url(key, self._ttl),
                    facts.width,
                    facts.height,
                    facts.duration_s,
                )
            )
        return inputs
