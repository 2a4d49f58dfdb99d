"""The fake xAI refuses what xAI documents it refuses (tests/fakes/schemas/xai.json), with xAI's statuses."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from studio402.backends.hosted_io import data_uri
from tests.backends.upstream_support import png_input
from tests.fakes.fake_server import image_bytes
from tests.fakes.xai import body_problem

PNG = {"url": data_uri(png_input(("images", 0))), "type": "image_url"}
GIF = {"url": "data:image/gif;base64," + base64.b64encode(image_bytes(8, 8, "GIF")).decode()}
GIF_AS_PNG = {"url": GIF["url"].replace("gif", "png", 1)}  # the label does not make it a PNG
EDIT = {"model": "grok-imagine-image", "prompt": "add a hat", "response_format": "b64_json"}
VIDEO = {"model": "grok-imagine-video", "prompt": "waves", "duration": 6, "resolution": "720p"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("images/generations", {"model": "grok-imagine-image", "prompt": "a fox", "aspect_ratio": "19.5:9"}),
        ("images/edits", {**EDIT, "image": PNG}),
        ("images/edits", {**EDIT, "images": [PNG]}),
        ("images/edits", {**EDIT, "images": [PNG, PNG, PNG], "aspect_ratio": "16:9"}),
        ("images/edits", {**EDIT, "image": {"url": "https://x.example/a.png"}, "aspect_ratio": "auto"}),
        ("videos/generations", {**VIDEO, "image": {"url": PNG["url"]}}),
        ("videos/generations", {**VIDEO, "model": "grok-imagine-video-1.5", "resolution": "1080p"}),
    ],
)
def test_documented_requests_pass(path: str, body: dict[str, Any]) -> None:
    assert body_problem(path, body) is None


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("images/edits", {**EDIT, "images": [PNG] * 4}, 400, "images"),  # at most 3 sources
        ("images/edits", {**EDIT, "image": PNG, "aspect_ratio": "1:1"}, 400, "aspect_ratio"),
        ("images/edits", {**EDIT, "images": [PNG], "aspect_ratio": "16:9"}, 400, "aspect_ratio"),
        ("images/edits", {**EDIT, "image": PNG, "images": [PNG, PNG]}, 400, "body"),
        ("images/edits", EDIT, 400, "body"),  # no source at all
        ("images/edits", {**EDIT, "images": [GIF]}, 400, "images/0/url"),
        (
            "images/edits",
            {**EDIT, "images": [{"url": GIF["url"].replace("gif", "png", 1)}]},
            400,
            "unsupported",
        ),
        ("images/edits", {**EDIT, "images": [{"url": "data:image/png;base64,AAAA"}]}, 400, "images/0"),
        ("images/generations", {"model": "grok-imagine-image"}, 422, "deserialize"),  # no prompt
        ("images/generations", {"prompt": "x", "n": 11}, 400, "n"),
        ("images/generations", {"prompt": "x", "aspect_ratio": "5:4"}, 400, "aspect_ratio"),
        ("images/generations", {"prompt": "x", "resolution": "4k"}, 400, "resolution"),
        ("images/generations", {"prompt": "x", "size": "1024x1024"}, 400, "size"),
        ("images/generations", {"prompt": "x", "model": "grok-2-image"}, 400, "model"),
        ("videos/generations", {**VIDEO, "duration": 16}, 400, "duration"),
        ("videos/generations", {**VIDEO, "duration": "6"}, 422, "duration"),
        ("videos/generations", {**VIDEO, "resolution": "1080p"}, 400, "model"),
        ("videos/generations", {**VIDEO, "aspect_ratio": "2:1"}, 400, "aspect_ratio"),
    ],
)
def test_what_xai_refuses_is_refused(path: str, body: dict[str, Any], status: int, words: str) -> None:
    problem = body_problem(path, body)
    assert problem is not None and problem[0] == status, problem
    assert words in problem[1]
