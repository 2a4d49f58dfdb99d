from __future__ import annotations

import os
from pathlib import Path

import pytest

from studio402.media.sniff import sniff
from studio402.media.video import encode_mp4
from tests.media import samples


@pytest.mark.parametrize(
    ("make", "mime"),
    [
        (lambda: samples.image_bytes("PNG"), "image/png"),
        (lambda: samples.image_bytes("JPEG"), "image/jpeg"),
        (lambda: samples.image_bytes("WEBP"), "image/webp"),
        (samples.animated_gif, "image/gif"),
        (samples.wav_bytes, "audio/wav"),
        (lambda: samples.audio_bytes("mp3", "libmp3lame"), "audio/mpeg"),
        (lambda: samples.audio_bytes("mp3", "libmp3lame", id3v2_version="0", write_xing="0"), "audio/mpeg"),
        (lambda: samples.audio_bytes("ogg", "libopus"), "audio/ogg"),
        (lambda: samples.audio_bytes("flac", "flac"), "audio/flac"),
        (lambda: samples.audio_bytes("ipod", "aac"), "audio/mp4"),
        (lambda: samples.audio_bytes("adts", "aac"), "audio/aac"),
        (samples.webm_bytes, "video/webm"),
        (lambda: encode_mp4([samples.gradient(64, 48)], width=64, height=48, fps=24), "video/mp4"),
    ],
)
def test_real_files_are_recognised(make: object, mime: str) -> None:
    assert callable(make)
    assert sniff(make()) == mime


def test_raw_mp3_starts_with_a_frame_sync_not_id3() -> None:
    data = samples.audio_bytes("mp3", "libmp3lame", id3v2_version="0", write_xing="0")
    assert data[:3] != b"ID3" and data[0] == 0xFF


def test_ftyp_brands_decide_between_mp4_family_types() -> None:
    def ftyp(major: bytes, *compatible: bytes) -> bytes:
        body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
        return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00" * 16

    assert sniff(ftyp(b"qt  ")) == "video/quicktime"
    assert sniff(ftyp(b"M4A ", b"isom")) == "audio/mp4"
    assert sniff(ftyp(b"isom", b"iso2", b"avc1")) == "video/mp4"
    assert sniff(ftyp(b"zzzz", b"yyyy", b"mp42")) == "video/mp4"  # unknown major, known compatible brand
    assert sniff(ftyp(b"zzzz", b"yyyy")) is None


def test_matroska_and_riff_variants() -> None:
    ebml = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska" + b"\x00" * 8
    assert sniff(ebml) == "video/x-matroska"
    assert sniff(b"RIFF\x00\x00\x00\x00AVI LIST") == "video/x-msvideo"
    assert sniff(b"RIFF\x00\x00\x00\x00XXXX") is None


def test_a_text_file_named_png_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "picture.png"
    path.write_text("just some text, not a picture\n")
    assert sniff(path.read_bytes()) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PN",  # a cut signature
        b"<html><body>hi</body></html>",
        b"%PDF-1.7\n",
        b"\xff\xfe\x00\x00",  # looks like a sync word, invalid MPEG header
        b"\xff\xfb\xf0\x00",  # MPEG frame header with the invalid bitrate index 15
        b"RIFF",
    ],
)
def test_unknown_or_invalid_bytes_give_none(data: bytes) -> None:
    assert sniff(data) is None


def test_random_bytes_are_mostly_unknown() -> None:
    blobs = [os.urandom(64) for _ in range(200)]
    recognised = [b for b in blobs if sniff(b) is not None]
    # Only the 2-byte MPEG/ADTS sync can match by chance (about 1 in 2000 per blob).
    assert len(recognised) <= 2
