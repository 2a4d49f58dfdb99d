from __future__ import annotations

import pytest

from studio402.errors import MediaError
from studio402.media.video import probe_audio
from tests.media import samples


@pytest.mark.parametrize(
    ("make", "mime", "codec", "rate"),
    [
        (samples.wav_bytes, "audio/wav", "pcm_s16le", 16_000),
        (lambda: samples.audio_bytes("mp3", "libmp3lame"), "audio/mpeg", "mp3", 48_000),
        (lambda: samples.audio_bytes("ogg", "libopus"), "audio/ogg", "opus", 48_000),
        (lambda: samples.audio_bytes("flac", "flac"), "audio/flac", "flac", 48_000),
        (lambda: samples.audio_bytes("ipod", "aac"), "audio/mp4", "aac", 48_000),
        (lambda: samples.audio_bytes("adts", "aac"), "audio/aac", "aac", 48_000),
    ],
)
def test_audio_files_are_probed(make: object, mime: str, codec: str, rate: int) -> None:
    assert callable(make)
    info = probe_audio(make())
    assert (info.mime, info.codec, info.sample_rate, info.channels) == (mime, codec, rate, 1)
    assert abs(info.duration_s - 1.0) < 0.06


def test_truncated_wav_is_corrupt() -> None:
    data = samples.wav_bytes(seconds=2.0)
    with pytest.raises(MediaError) as err:
        probe_audio(data[: len(data) // 2])
    assert err.value.code == "media_corrupt"


def test_a_silent_video_has_no_audio() -> None:
    with pytest.raises(MediaError) as err:
        probe_audio(samples.webm_bytes())
    assert err.value.code == "media_corrupt"


def test_images_are_not_audio() -> None:
    with pytest.raises(MediaError) as err:
        probe_audio(samples.image_bytes("PNG"))
    assert err.value.code == "media_unsupported"


def test_audio_duration_cap() -> None:
    with pytest.raises(MediaError) as err:
        probe_audio(samples.wav_bytes(seconds=1.0), max_duration_s=0.5)
    assert err.value.code == "media_too_large"


def test_truncated_m4a_is_corrupt() -> None:
    data = samples.audio_bytes("ipod", "aac")
    with pytest.raises(MediaError) as err:
        probe_audio(data[: len(data) - 500])
    assert err.value.code == "media_corrupt"
