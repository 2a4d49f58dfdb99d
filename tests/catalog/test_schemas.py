"""The limits and cross-field rules of the spec, route by route."""

from __future__ import annotations

from typing import Any

import pytest

from studio402.catalog import CATALOG
from studio402.errors import ValidationFailed

URL = "https://media.example.com/x.png"


def check(key: str, body: dict[str, Any]) -> dict[str, Any]:
    route = CATALOG.upload if key == CATALOG.upload.key else CATALOG.get(*key.split("/"))
    return dict(CATALOG.validate(route, body).canonical)


def refused(key: str, body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationFailed) as info:
        check(key, body)
    return {e.field.split(".")[0] for e in info.value.errors}


@pytest.mark.parametrize(
    ("key", "low", "high"),
    [
        ("nano-banana/edit", 1, 14),
        ("nano-banana-pro/edit", 1, 14),
        ("flux-2-pro/edit", 1, 8),
        ("flux-2-max/edit", 1, 10),
        ("gpt-image-2/edit", 1, 16),
        ("gpt-image-1.5/edit", 1, 16),
    ],
)
def test_reference_image_counts(key: str, low: int, high: int) -> None:
    assert check(key, {"prompt": "p", "images": [URL] * low})
    assert check(key, {"prompt": "p", "images": [URL] * high})
    assert refused(key, {"prompt": "p", "images": [URL] * (high + 1)}) == {"images"}
    assert refused(key, {"prompt": "p", "images": []}) == {"images"}


def test_defaults_are_filled_in_the_canonical_body() -> None:
    assert check("nano-banana/generate", {"prompt": "p"}) == {
        "prompt": "p",
        "aspectRatio": "1:1",
        "imageSize": "1K",
        "thinkingLevel": "minimal",
    }


def test_blank_prompt_and_bad_media_refs_are_refused() -> None:
    assert refused("nano-banana/generate", {"prompt": "   "}) == {"prompt"}
    for ref in ("ftp://x/y.png", "not a url", "https://", "https://user:pw@host/x.png", "data:text"):
        assert refused("nano-banana/edit", {"prompt": "p", "images": [ref]}) == {"images"}, ref
    for ref in (
        "https://a.b/c.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB",
    ):
        assert check("nano-banana/edit", {"prompt": "p", "images": [ref]})


def test_callback_must_be_https() -> None:
    assert check("grok/generate", {"prompt": "p", "callBackUrl": "https://hooks.example.com/x"})
    assert refused("grok/generate", {"prompt": "p", "callBackUrl": "http://hooks.example.com/x"}) == {
        "callBackUrl"
    }


def test_gpt_image_15_transparent_needs_png_or_webp() -> None:
    assert check(
        "gpt-image-1.5/generate", {"prompt": "p", "background": "transparent", "output_format": "webp"}
    )
    assert refused(
        "gpt-image-1.5/generate", {"prompt": "p", "background": "transparent", "output_format": "jpeg"}
    ) == {"output_format"}
    assert refused("gpt-image-2/generate", {"prompt": "p", "background": "transparent"}) == {"background"}


def test_veo_image_modes() -> None:
    key = "veo-3.1/generate"
    assert check(key, {"prompt": "p", "image": URL})
    assert check(key, {"prompt": "p", "image": URL, "lastFrame": URL, "imageMode": "interpolation"})
    assert check(key, {"prompt": "p", "referenceImages": [URL] * 3, "imageMode": "reference"})
    assert refused(key, {"prompt": "p", "referenceImages": [URL] * 4}) == {"referenceImages"}
    assert refused(key, {"prompt": "p", "imageMode": "interpolation", "image": URL}) == {"lastFrame"}
    assert refused(key, {"prompt": "p", "lastFrame": URL, "imageMode": "first-frame", "image": URL}) == {
        "lastFrame"
    }
    assert refused(key, {"prompt": "p", "imageMode": "reference", "image": URL}) == {
        "image",
        "referenceImages",
    }
    assert refused(key, {"prompt": "p", "imageMode": "none", "image": URL}) == {"image"}


def test_seedance_urls_and_media_types_align() -> None:
    key = "seedance/i2v"
    assert check(key, {"urls": [URL, URL], "urlMediaTypes": ["image", "image"]})
    assert refused(key, {"urls": [URL, URL], "urlMediaTypes": ["image"]}) == {"urlMediaTypes"}
    assert refused(key, {"urls": [URL] * 3}) == {"urls"}  # keyframe: first + last at most
    assert refused(key, {"urls": [URL], "urlMediaTypes": ["video"]}) == {"urlMediaTypes"}
    assert refused(key, {"urls": [URL], "audioUrls": [URL]}) == {"audioUrls"}


def test_seedance_reference_mentions_count_per_kind() -> None:
    key = "seedance/i2v"
    body = {
        "mode": "reference",
        "urls": [URL, URL, URL],
        "urlMediaTypes": ["image", "video", "image"],
        "audioUrls": [URL],
    }
    assert check(key, {**body, "prompt": "@image1 @image2 with @video1 over @audio1"})
    assert refused(key, {**body, "prompt": "@image3 is not there"}) == {"prompt"}  # 2 images, not 3 urls
    assert refused(key, {**body, "prompt": "@video2"}) == {"prompt"}
    assert refused(key, {**body, "prompt": "@audio2"}) == {"prompt"}
    assert refused(key, {**body, "prompt": "@image0"}) == {"prompt"}
    too_many = {"mode": "reference", "urls": [URL] * 4, "urlMediaTypes": ["video"] * 4}
    assert refused(key, too_many) == {"urls"}


def test_seedance_listing_spelling_is_accepted() -> None:
    canonical = check(
        "seedance/i2v",
        {
            "image": URL,
            "last_image": URL,
            "resolution": "1080p",
            "aspect_ratio": "9:16",
            "duration": 6,
            "camera_fixed": True,
        },
    )
    assert canonical["urls"] == [URL, URL] and canonical["mode"] == "keyframe"
    assert canonical["outputResolution"] == "1080p" and canonical["aspectRatio"] == "9:16"
    assert canonical["duration"] == "6"
    assert refused("seedance/i2v", {"image": URL, "urls": [URL]})
    assert refused("seedance-fast/t2v", {"prompt": "p", "outputResolution": "1080p"}) == {"outputResolution"}
    assert refused("seedance-fast/t2v", {"prompt": "p", "upscaleResolution": "4k"}) == {"upscaleResolution"}


def test_aliases_and_their_conflicts() -> None:
    assert check("veo-3.1/generate", {"prompt": "p", "aspect_ratio": "9:16", "duration_seconds": 4}) == check(
        "veo-3.1/generate", {"prompt": "p", "aspectRatio": "9:16", "durationSeconds": "4"}
    )
    assert refused("veo-3.1/generate", {"prompt": "p", "aspect_ratio": "9:16", "aspectRatio": "9:16"})
    assert check("flux-2-pro/generate", {"prompt": "p", "aspectRatio": "16:9"})["aspect_ratio"] == "16:9"
    assert check("sora-2/generate", {"prompt": "p", "aspect_ratio": "16:9"})["size"] == "1280x720"
    assert refused("sora-2/generate", {"prompt": "p", "aspect_ratio": "16:9", "size": "720x1280"})
    assert refused("sora-2/generate", {"prompt": "p", "seconds": 5}) == {"seconds"}
    assert refused("sora-2/generate", {"prompt": "p", "seconds": True}) == {"seconds"}
    assert refused("sora-2/generate", {"prompt": "p", "size": "1792x1024"}) == {"size"}
    assert check("sora-2-pro/generate", {"prompt": "p", "size": "1792x1024"})


def test_wan_and_grok_video_enums() -> None:
    assert refused("wan-2.6/t2v", {"prompt": "p", "duration": "7"}) == {"duration"}
    assert refused("wan-2.6/i2v", {"prompt": "p"}) == {"image"}
    assert refused("wan-2.6/t2v", {"prompt": "p", "seed": -1}) == {"seed"}
    assert (
        check("grok-video/generate", {"prompt": "p", "duration": 15, "size": "480p"})["resolution"] == "480p"
    )
    assert refused("grok-video/generate", {"prompt": "p", "duration": 4}) == {"duration"}


def test_upload_request() -> None:
    assert check("upload/token", {"filename": "clip.mp4", "contentType": "video/mp4"})
    assert refused("upload/token", {"filename": "../etc/passwd", "contentType": "image/png"}) == {"filename"}
    assert refused("upload/token", {"filename": "a.exe", "contentType": "application/x-msdownload"}) == {
        "contentType"
    }
