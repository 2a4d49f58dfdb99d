"""The route table of the StableStudio spec (../shared/spec/stablestudio-llms.reflowed.md), copied by hand:
(low, high) in micro-dollars; per-second routes give the per-second range."""

from __future__ import annotations

PER_CALL: dict[str, tuple[int, int]] = {
    "nano-banana/generate": (45_000, 151_000),
    "nano-banana/edit": (45_000, 151_000),
    "nano-banana-pro/generate": (130_000, 240_000),
    "nano-banana-pro/edit": (130_000, 240_000),
    "gpt-image-2/generate": (5_000, 210_000),
    "gpt-image-2/edit": (5_000, 210_000),
    "gpt-image-1.5/generate": (9_000, 200_000),
    "gpt-image-1.5/edit": (9_000, 200_000),
    "flux-2-pro/generate": (20_000, 40_000),
    "flux-2-pro/edit": (30_000, 60_000),
    "flux-2-max/generate": (40_000, 170_000),
    "flux-2-max/edit": (40_000, 170_000),
    "grok/generate": (70_000, 70_000),
    "grok/edit": (22_000, 22_000),
    "grok-video/generate": (150_000, 750_000),
    "wan-2.6/t2v": (500_000, 2_250_000),
    "wan-2.6/i2v": (500_000, 2_250_000),
    "sora-2/generate": (400_000, 1_200_000),
    "sora-2-pro/generate": (1_200_000, 6_000_000),
    "veo-3.1/generate": (1_600_000, 3_200_000),
    "veo-3.1-fast/generate": (1_000_000, 2_000_000),
    "upload/token": (10_000, 10_000),
}
PER_SECOND: dict[str, tuple[int, int]] = {
    "seedance/t2v": (90_000, 540_000),
    "seedance/i2v": (90_000, 540_000),
    "seedance-fast/t2v": (80_000, 170_000),
    "seedance-fast/i2v": (80_000, 170_000),
}
