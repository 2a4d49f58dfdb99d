from __future__ import annotations

import pytest

from studio402.errors import MediaError
from studio402.media.avprobe import check_iso_boxes


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def test_boxes_that_tile_the_file_pass() -> None:
    check_iso_boxes(_box(b"ftyp", b"isom" * 3) + _box(b"moov", b"x" * 20) + _box(b"mdat", b"y" * 5))


def test_large_size_and_to_the_end_boxes_pass() -> None:
    large = (1).to_bytes(4, "big") + b"mdat" + (16 + 4).to_bytes(8, "big") + b"data"
    to_end = (0).to_bytes(4, "big") + b"mdat" + b"anything at all"
    check_iso_boxes(_box(b"ftyp", b"isom") + large + to_end)


@pytest.mark.parametrize(
    "data",
    [
        _box(b"ftyp", b"isom") + _box(b"moov", b"x" * 20)[:-1],  # cut inside the last box
        _box(b"ftyp", b"isom") + b"\x00\x00\x00",  # trailing bytes
        _box(b"ftyp", b"isom") + (4).to_bytes(4, "big") + b"free",  # impossible size
    ],
)
def test_truncation_is_detected(data: bytes) -> None:
    with pytest.raises(MediaError) as err:
        check_iso_boxes(data)
    assert err.value.code == "media_corrupt"
