"""Building backends from `[backends.providers.*]`: an explicit table of adapter types (no discovery)."""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from studio402.backends.base import Backend
from studio402.config import ProviderSettings
from studio402.errors import ConfigError

# Adapter type -> "module:Class". Each class has `from_settings(name, settings)` and `missing_settings()`.
ADAPTERS: dict[str, str] = {
    "openai-images": "studio402.backends.openai_images:OpenAIImagesBackend",
    "openai-videos": "studio402.backends.openai_videos:OpenAIVideosBackend",
    "gemini": "studio402.backends.gemini:GeminiImageBackend",
    "vertex-veo": "studio402.backends.vertex_veo:VertexVeoBackend",
    "bfl": "studio402.backends.bfl:BflBackend",
    "xai": "studio402.backends.xai:XaiBackend",
    "byteplus": "studio402.backends.byteplus:SeedanceBackend",
    "dashscope": "studio402.backends.dashscope:WanBackend",
    "fal": "studio402.backends.fal:FalBackend",
    "replicate": "studio402.backends.replicate:ReplicateBackend",
    "diffusers": "studio402.backends.local_gen.backend:DiffusersBackend",  # local GPU; studio402[local]
}


class ConfigurableBackend(Backend, Protocol):
    @classmethod
    def from_settings(cls, name: str, settings: ProviderSettings) -> Any: ...

    def missing_settings(self) -> list[str]:
        """What the operator still has to configure (e.g. ["api_key"]); empty when ready."""
        ...


def adapter_class(kind: str) -> type[ConfigurableBackend]:
    try:
        module_name, _, class_name = ADAPTERS[kind].partition(":")
    except KeyError:
        raise ConfigError(f"unknown backend type {kind!r}; known: {', '.join(sorted(ADAPTERS))}") from None
    cls: type[ConfigurableBackend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def build_backend(name: str, settings: ProviderSettings) -> ConfigurableBackend:
    backend: ConfigurableBackend = adapter_class(settings.type).from_settings(name, settings)
    return backend
