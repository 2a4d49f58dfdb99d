"""The five HTTP adapters built from `[backends.providers.*]` through the factory table."""

from __future__ import annotations

import pytest

from studio402.backends.base import BackendFailure, BackendJob, FailureCode
from studio402.backends.factory import build_backend
from studio402.config import ProviderSettings

KINDS = {
    "xai": "XaiBackend",
    "byteplus": "SeedanceBackend",
    "dashscope": "WanBackend",
    "fal": "FalBackend",
    "replicate": "ReplicateBackend",
}
SERVED = {"xai": "grok-video/generate", "byteplus": "seedance/i2v", "dashscope": "wan-2.6/t2v"}


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_built_from_settings_and_says_what_is_missing(kind: str) -> None:
    backend = build_backend(f"my-{kind}", ProviderSettings(type=kind))
    try:
        assert type(backend).__name__ == KINDS[kind] and backend.name == f"my-{kind}"
        assert "api_key" in backend.missing_settings()
        route = SERVED.get(kind, "veo-3.1/generate")
        assert backend.supports(route) is (kind in SERVED)  # model hosts serve only configured routes
        with pytest.raises(BackendFailure) as refused:
            model, operation = route.split("/")
            await backend.submit(BackendJob("job_1", model, operation, {"prompt": "x"}))
        assert refused.value.failure is FailureCode.UNAVAILABLE and not refused.value.accepted
    finally:
        await backend.aclose()


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_configured_and_disabled(kind: str) -> None:
    models = {"veo-3.1": "owner/veo"}
    ready = build_backend(kind, ProviderSettings(type=kind, api_key="k", models=models))
    disabled = build_backend(kind, ProviderSettings(type=kind, api_key="k", models=models, enabled=False))
    try:
        route = SERVED.get(kind, "veo-3.1/generate")
        assert ready.missing_settings() == [] and ready.supports(route)
        assert not ready.supports("sora-2/generate") and not disabled.supports(route)
    finally:
        await ready.aclose()
        await disabled.aclose()
