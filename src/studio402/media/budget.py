"""The decode work one request may cost before it is paid: pixels decoded and frames walked, summed over all
of its media inputs. Each probe charges what it is about to do BEFORE doing it, from header facts, so an
input over the budget is refused without being decoded (``media_too_large``, nothing charged)."""

from __future__ import annotations

from dataclasses import dataclass

from studio402.errors import MediaError

# The slowest decoder is WebP: 16 MP of noisy lossy WebP took 0.8 s of CPU on a busy 2-core test machine,
# the same as PNG 0.3 s, H.264 ~0.15 s; fifteen 1024x1024 reference images fit.
DEFAULT_PIXELS = 16_000_000
DEFAULT_FRAMES = 50_000  # frames or packets walked: ~5 us each to demux (600 s of AAC is 28,000)


@dataclass(slots=True)
class DecodeBudget:
    """Remaining pixels and frames of one request; `None` limits mean unbounded (trusted bytes)."""

    pixels: int | None = DEFAULT_PIXELS
    frames: int | None = DEFAULT_FRAMES

    @classmethod
    def unbounded(cls) -> DecodeBudget:
        return cls(None, None)

    def spend_pixels(self, count: int, what: str) -> None:
        if self.pixels is None:
            return
        if count > self.pixels:
            raise MediaError(
                f"{what} needs {count / 1e6:.1f} megapixels decoded; this request has "
                f"{self.pixels / 1e6:.1f} left (media inputs are checked before payment)",
                code="media_too_large",
            )
        self.pixels -= count

    def spend_frames(self, count: int, what: str) -> None:
        self.check_frames(count, what)
        if self.frames is not None:
            self.frames -= count

    def check_frames(self, count: int, what: str) -> None:
        """Refuse `count` frames the budget cannot hold, without spending them (a header's claim)."""
        if self.frames is not None and count > self.frames:
            raise MediaError(
                f"{what} holds {count} frames or more; this request has {self.frames} left",
                code="media_too_large",
            )


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """The configured per-request limits; `budget()` opens the account of one request."""

    pixels: int = DEFAULT_PIXELS
    frames: int = DEFAULT_FRAMES

    def budget(self) -> DecodeBudget:
        return DecodeBudget(self.pixels, self.frames)
