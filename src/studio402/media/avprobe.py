"""Probe untrusted audio/video bytes with PyAV: type, geometry, duration, codec; catch truncated files.

A header can promise more than the bytes hold (an upload cut short, a half-written result). So every packet
is demuxed and the content is checked against the container's own claims: the sample count of an MP4, and the
declared duration against the timestamps actually present. Only the first packet is decoded (a few for audio,
whose decoders may prime first), then the decoder is drained: a stream with no keyframe costs one frame, not
one per packet. ``decode_all`` (our results) decodes every frame. A `DecodeBudget` is charged the first
frame's pixels and every packet before they are touched.
Errors are `MediaError` with code ``media_unsupported``, ``media_corrupt`` or ``media_too_large``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import av
from av.container import InputContainer
from av.packet import Packet
from av.stream import Stream

from studio402.errors import MediaError
from studio402.media.budget import DecodeBudget
from studio402.media.sniff import sniff

VIDEO_MIMES = frozenset({"video/mp4", "video/quicktime", "video/webm", "video/x-matroska"})
AUDIO_MIMES = frozenset({"audio/mpeg", "audio/wav", "audio/ogg", "audio/flac", "audio/mp4", "audio/aac"})
# ISO base media files (MP4 family): their top-level boxes must tile the file exactly.
_ISO_MIMES = frozenset({"video/mp4", "video/quicktime", "audio/mp4", "video/3gpp", "video/3gpp2"})
# Containers that may hold only audio; the MIME is renamed when they do.
_AUDIO_ONLY_MIME = {"video/mp4": "audio/mp4", "video/webm": "audio/webm", "video/quicktime": "audio/mp4"}
DEFAULT_MAX_PIXELS = 8192 * 4320
DEFAULT_MAX_DURATION_S = 3600.0
# A declared duration may exceed the packets present by rounding and codec delay, not by more.
_DURATION_SLACK_S = 0.25
_DURATION_SLACK_RATIO = 0.02
# A fragmented MP4 has a moof and an mdat per fragment (a few hundred); 24 MB of empty boxes took 5 s here.
MAX_TOP_LEVEL_BOXES = 65_536
# Packets fed to the decoder before it is drained, hunting for the first frame: video keyframes decode alone;
# some audio decoders (Vorbis) keep their first packet for the overlap.
_FIRST_FRAME_PACKETS = {"video": 1, "audio": 8}


@dataclass(frozen=True, slots=True)
class VideoInfo:
    mime: str
    width: int
    height: int
    duration_s: float
    fps: float
    frames: int
    codec: str
    pix_fmt: str
    has_audio: bool


@dataclass(frozen=True, slots=True)
class AudioInfo:
    mime: str
    duration_s: float
    codec: str
    sample_rate: int
    channels: int


@dataclass(slots=True)
class _Scan:
    packets: int = 0
    decoded: int = 0
    first_ts: int | None = None
    end_ts: int | None = None
    first_format: str | None = None


@contextmanager
def open_container(data: bytes) -> Iterator[InputContainer]:
    """Open bytes as a media container; anything FFmpeg refuses is ``media_corrupt``."""
    try:
        container = av.open(io.BytesIO(data), "r")
    except av.FFmpegError as exc:
        raise MediaError(f"media cannot be opened: {exc}", code="media_corrupt") from exc
    try:
        yield container
    finally:
        container.close()


def probe_video(
    data: bytes,
    *,
    decode_all: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    budget: DecodeBudget | None = None,
) -> VideoInfo:
    """Describe a video after demuxing every packet; ``decode_all`` also decodes every frame."""
    budget = budget or DecodeBudget.unbounded()
    mime = sniff(data)
    if mime not in VIDEO_MIMES:
        raise MediaError(
            f"not a supported video (detected {mime or 'unknown data'})", code="media_unsupported"
        )
    if mime in _ISO_MIMES:
        check_iso_boxes(data)
    with open_container(data) as container:
        if not container.streams.video:
            raise MediaError("the file has no video stream", code="media_corrupt")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx.width * ctx.height > max_pixels or ctx.width <= 0 or ctx.height <= 0:
            raise MediaError(f"video is {ctx.width}x{ctx.height}", code="media_too_large")
        budget.spend_pixels(ctx.width * ctx.height, f"a {ctx.width}x{ctx.height} video")
        _precheck_frames(stream, budget)
        scan = _scan(container, stream, decode_all=decode_all, budget=budget)
        declared = stream.frames
        _check_complete(stream, scan, declared, decode_all)
        duration = _duration(container, stream, scan)
        _check_duration(duration, max_duration_s)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return VideoInfo(
            mime=mime,
            width=ctx.width,
            height=ctx.height,
            duration_s=duration,
            fps=float(rate) if rate else 0.0,
            frames=declared or scan.packets,
            codec=ctx.codec.canonical_name,
            pix_fmt=scan.first_format or "",
            has_audio=bool(container.streams.audio),
        )


def probe_audio(
    data: bytes, *, max_duration_s: float = DEFAULT_MAX_DURATION_S, budget: DecodeBudget | None = None
) -> AudioInfo:
    """Describe the first audio stream (an audio file, or the soundtrack of a video container)."""
    budget = budget or DecodeBudget.unbounded()
    mime = sniff(data)
    if mime not in AUDIO_MIMES and mime not in VIDEO_MIMES:
        raise MediaError(
            f"not a supported audio file (detected {mime or 'unknown data'})", code="media_unsupported"
        )
    if mime in _ISO_MIMES:
        check_iso_boxes(data)
    with open_container(data) as container:
        if not container.streams.audio:
            raise MediaError("the file has no audio stream", code="media_corrupt")
        stream = container.streams.audio[0]
        _precheck_frames(stream, budget)
        scan = _scan(container, stream, decode_all=False, budget=budget)
        _check_complete(stream, scan, stream.frames, decode_all=False)
        duration = _duration(container, stream, scan)
        _check_duration(duration, max_duration_s)
        if not container.streams.video:
            mime = _AUDIO_ONLY_MIME.get(mime, mime)
        ctx = stream.codec_context
        return AudioInfo(
            mime=mime,
            duration_s=duration,
            codec=ctx.codec.canonical_name,
            sample_rate=int(ctx.sample_rate or 0),
            channels=int(ctx.channels or 0),
        )


def check_iso_boxes(data: bytes) -> None:
    """Walk the top-level boxes of an MP4/MOV: a box running past the end means a truncated file."""
    pos = boxes = 0
    while pos < len(data):
        boxes += 1
        if boxes > MAX_TOP_LEVEL_BOXES:
            raise MediaError(f"more than {MAX_TOP_LEVEL_BOXES} top-level boxes", code="media_too_large")
        header = 8
        if len(data) - pos < header:
            raise MediaError("trailing bytes after the last box (truncated file)", code="media_corrupt")
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1:  # 64-bit size follows the type
            header = 16
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:  # "extends to the end of the file"
            return
        if size < header or pos + size > len(data):
            box = data[pos + 4 : pos + 8].decode("latin-1")
            raise MediaError(f"box {box!r} runs past the end of the file (truncated)", code="media_corrupt")
        pos += size


def _precheck_frames(stream: Stream, budget: DecodeBudget) -> None:
    """Refuse from the header alone a stream declaring more packets than the budget holds."""
    budget.check_frames(stream.frames, f"the {stream.type} stream")  # packets are charged as they are read


def _scan(container: InputContainer, stream: Stream, *, decode_all: bool, budget: DecodeBudget) -> _Scan:
    scan = _Scan()
    hunt = _FIRST_FRAME_PACKETS.get(stream.type, 1)
    what = f"the {stream.type} stream"
    try:
        for packet in container.demux(stream):
            if packet.size == 0 and packet.pts is None:
                if decode_all:
                    _decode(packet, scan)  # the flush packet drains the decoder's delayed frames
                continue
            if packet.is_corrupt:
                raise MediaError(
                    f"packet {scan.packets} is incomplete (truncated file)", code="media_corrupt"
                )
            scan.packets += 1
            budget.spend_frames(1, what)
            _extend(scan, packet.pts, packet.duration)
            if decode_all:
                _decode(packet, scan)
            elif scan.first_format is None and scan.packets <= hunt:
                _decode(packet, scan)
                if scan.first_format is None and scan.packets == hunt:
                    _drain(stream, scan)
        if not decode_all and scan.first_format is None and 0 < scan.packets < hunt:
            _drain(stream, scan)
    except av.FFmpegError as exc:
        raise MediaError(f"media data is broken: {exc}", code="media_corrupt") from exc
    if scan.first_format is None:
        raise MediaError("no frame could be decoded", code="media_corrupt")
    return scan


def _decode(packet: Packet[Stream], scan: _Scan) -> None:
    for frame in packet.decode():
        _count(frame, scan)


def _count(frame: object, scan: _Scan) -> None:
    if not isinstance(frame, av.VideoFrame | av.AudioFrame):
        return
    scan.decoded += 1
    if scan.first_format is None:
        scan.first_format = frame.format.name


def _drain(stream: Stream, scan: _Scan) -> None:
    """End of input for the decoder: it hands over the frames it was holding back."""
    if isinstance(stream, av.VideoStream | av.AudioStream):
        for frame in stream.decode(None):
            _count(frame, scan)


def _extend(scan: _Scan, pts: int | None, duration: int | None) -> None:
    if pts is None:
        return
    scan.first_ts = pts if scan.first_ts is None else min(scan.first_ts, pts)
    end = pts + (duration or 0)
    scan.end_ts = end if scan.end_ts is None else max(scan.end_ts, end)


def _check_complete(stream: Stream, scan: _Scan, declared: int, decode_all: bool) -> None:
    if declared and scan.packets < declared:
        raise MediaError(
            f"{stream.type} stream declares {declared} packets but holds {scan.packets} (truncated file)",
            code="media_corrupt",
        )
    if decode_all and declared and scan.decoded < declared:
        raise MediaError(f"only {scan.decoded} of {declared} frames decode", code="media_corrupt")


def _duration(container: InputContainer, stream: Stream, scan: _Scan) -> float:
    present = _present_seconds(stream, scan)
    declared: float | None = None
    if stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        declared = container.duration / av.time_base
    if declared is None:
        return present
    if present + max(_DURATION_SLACK_S, declared * _DURATION_SLACK_RATIO) < declared:
        raise MediaError(
            f"declared duration {declared:.2f}s but data ends at {present:.2f}s (truncated file)",
            code="media_corrupt",
        )
    return declared


def _present_seconds(stream: Stream, scan: _Scan) -> float:
    if scan.end_ts is None or scan.first_ts is None or stream.time_base is None:
        return 0.0
    return float((scan.end_ts - scan.first_ts) * Fraction(stream.time_base))


def _check_duration(duration: float, max_duration_s: float) -> None:
    if duration > max_duration_s:
        raise MediaError(f"media lasts {duration:.0f}s (max {max_duration_s:.0f}s)", code="media_too_large")
