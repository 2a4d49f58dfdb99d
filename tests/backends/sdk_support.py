"""For the SDK-type tests: every catalog route's bodies (every enum combination the catalog accepts) as jobs
with real media inputs, and validation of an upstream body against an official SDK's TypedDict."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any, get_type_hints

from pydantic import TypeAdapter

from studio402.backends.base import BackendJob, MediaInput
from studio402.catalog import CATALOG
from studio402.catalog.base import MediaSlot
from studio402.catalog.fields import MediaKind
from studio402.errors import ValidationFailed
from studio402.payments.ledger import new_id
from tests.backends.upstream_support import audio_input, mp4_input, png_input
from tests.catalog_samples import enum_combinations


def media_for(slot: MediaSlot) -> MediaInput:
    if slot.kind is MediaKind.VIDEO:
        return mp4_input(slot.loc)
    if slot.kind is MediaKind.AUDIO:
        return audio_input(slot.loc)
    return png_input(slot.loc, (640, 360))


def route_jobs(route_key: str, *, limit: int | None = None) -> Iterator[BackendJob]:
    """A job per enum combination of the route that the catalog accepts, its media loaded."""
    route = CATALOG.get(*route_key.split("/"))
    made = 0
    for body in enum_combinations(route):
        try:
            request = CATALOG.validate(route, body)
        except ValidationFailed:
            continue  # refused with a 400 before any backend sees it
        inputs = tuple(media_for(slot) for slot in request.params.media_slots())
        yield BackendJob(new_id("job"), route.model, route.operation, dict(request.canonical), inputs, seed=7)
        made += 1
        if limit is not None and made >= limit:
            return


@functools.cache
def _field_adapter(typed_dict: type, name: str) -> TypeAdapter[Any]:
    return TypeAdapter(get_type_hints(typed_dict)[name])


def check_typed_dict(
    typed_dict: type, body: Mapping[str, Any], *, files: frozenset[str] = frozenset()
) -> None:
    """`body` as the SDK's TypedDict allows: no unknown key, every required key, each value of its declared
    type (Literal values included). File fields (bytes, tuples) are checked to be present only."""
    hints = get_type_hints(typed_dict)
    unknown = set(body) - set(hints)
    assert not unknown, f"{typed_dict.__name__} has no {sorted(unknown)}"
    missing = set(typed_dict.__required_keys__) - set(body)  # type: ignore[attr-defined]
    assert not missing, f"{typed_dict.__name__} requires {sorted(missing)}"
    for name, value in body.items():
        if name not in files:
            _field_adapter(typed_dict, name).validate_python(value, strict=True)
