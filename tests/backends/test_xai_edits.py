"""Grok edits within xAI's documented limits: at most 3 sources, refused before anyone pays; the output
follows the first source's aspect ratio unless the caller asked for one (xAI takes `aspect_ratio` only with
several sources); JPEG, PNG or WebP sources only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from studio402.backends.base import Ask, MediaInput
from studio402.backends.registry import BackendRegistry
from studio402.backends.xai import XaiBackend
from studio402.catalog.base import InputFacts
from studio402.catalog.fields import MediaKind
from tests.backends.upstream_support import (
    assert_complete,
    assert_failed,
    fake_fixtures,
    harness_for,
    image_size,
    png_input,
    provider,
    sent,
)
from tests.fakes.xai import FakeXai

server, fake = fake_fixtures(FakeXai)
URL = "https://x.example/a.png"


def xai(fake: FakeXai) -> XaiBackend:
    return XaiBackend("xai", provider("xai", f"{fake.base_url}/v1"))


def sources(*sizes: tuple[int, int]) -> list[MediaInput]:
    return [png_input(("images", i), size) for i, size in enumerate(sizes)]


def edit_ask(body: dict[str, Any], inputs: Sequence[MediaInput], mime: str = "image/png") -> Ask:
    facts = [InputFacts(m.loc, MediaKind.IMAGE, mime, len(m.data), m.width, m.height) for m in inputs]
    return Ask("grok", "edit", {"aspect_ratio": "1:1", **body}, tuple(facts))


async def run_edit(fake: FakeXai, tmp: Path, body: dict[str, Any], inputs: list[MediaInput]) -> bytes:
    tmp.mkdir(exist_ok=True)
    async with harness_for(tmp, {"xai": xai(fake)}) as h:
        ended = await h.run((await h.submit("grok/edit", body, inputs=inputs)).id)
        assert_complete(ended)
        return await h.result_bytes(ended)


def ratio(size: tuple[int, int]) -> float:
    return size[0] / size[1]


async def test_more_than_three_sources_are_refused_before_anything_is_sent(
    fake: FakeXai, tmp_path: Path
) -> None:
    backend = xai(fake)
    four = sources(*[(64, 48)] * 4)
    body = {"prompt": "merge them", "images": [URL] * 4}
    reason = backend.refusal(edit_ask(body, four))
    assert reason is not None and "3" in reason
    assert BackendRegistry({"xai": backend}, ["xai"]).refusal(edit_ask(body, four)) == f"xai: {reason}"
    assert backend.refusal(edit_ask({**body, "images": [URL] * 3}, four[:3])) is None
    async with harness_for(tmp_path, {"xai": backend}) as h:
        assert_failed(await h.run((await h.submit("grok/edit", body, inputs=four)).id), "backend_unavailable")
    assert fake.attempts == 0  # never sent: xAI would refuse it (or bill for three of four)


async def test_one_source_keeps_its_aspect_ratio(fake: FakeXai, tmp_path: Path) -> None:
    inputs = sources((64, 48))
    out = await run_edit(fake, tmp_path, {"prompt": "add a hat", "images": [URL]}, inputs)
    assert ratio(image_size(out)) == pytest.approx(4 / 3, rel=0.03)
    assert "aspect_ratio" not in sent(fake) and "image" in sent(fake)


async def test_several_sources_follow_the_first_unless_asked(fake: FakeXai, tmp_path: Path) -> None:
    inputs = sources((64, 48), (32, 32))
    body = {"prompt": "merge them", "images": [URL, URL]}
    out = await run_edit(fake, tmp_path / "default", body, inputs)
    assert ratio(image_size(out)) == pytest.approx(4 / 3, rel=0.03)
    assert "aspect_ratio" not in sent(fake)
    out = await run_edit(fake, tmp_path / "asked", {**body, "aspect_ratio": "9:16"}, inputs)
    assert ratio(image_size(out)) == pytest.approx(9 / 16, rel=0.03)
    assert sent(fake)["aspect_ratio"] == "9:16"


async def test_one_source_and_another_aspect_ratio_is_refused(fake: FakeXai, tmp_path: Path) -> None:
    """xAI: "for single image editing, do not set this" — the output keeps the source's ratio, so asking for
    another one is refused before payment; asking for the source's own ratio is served."""
    backend = xai(fake)
    inputs = sources((64, 48))
    body = {"prompt": "add a hat", "images": [URL], "aspect_ratio": "16:9"}
    reason = backend.refusal(edit_ask(body, inputs))
    assert reason is not None and "aspect_ratio" in reason
    assert backend.refusal(edit_ask({**body, "aspect_ratio": "4:3"}, inputs)) is None
    await backend.aclose()
    out = await run_edit(fake, tmp_path, {**body, "aspect_ratio": "4:3"}, inputs)
    assert ratio(image_size(out)) == pytest.approx(4 / 3, rel=0.03)
    assert "aspect_ratio" not in sent(fake)


async def test_sources_xai_cannot_read_are_refused(fake: FakeXai) -> None:
    backend = xai(fake)
    inputs = sources((64, 48), (64, 48))
    body = {"prompt": "merge them", "images": [URL, URL]}
    reason = backend.refusal(edit_ask(body, inputs, mime="image/gif"))
    assert reason is not None and "image/gif" in reason
    assert backend.refusal(edit_ask(body, inputs, mime="image/webp")) is None
    await backend.aclose()
