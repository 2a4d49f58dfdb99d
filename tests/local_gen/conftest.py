"""Fixtures of the local (diffusers) backend tests: tiny model folders built once per session, and no
network: non-loopback connections refused in this process, hub offline mode on (the GPU workers enforce
both themselves, see backends/local_gen/offline.py)."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio402.backends.local_gen.offline import OFFLINE_ENV, NetworkBlocked, _loopback
from tests.devnet_fixture import devnet, devnet_blocks, settler

__all__ = ["devnet", "devnet_blocks", "settler"]

pytest.importorskip("diffusers", reason="needs the [local] extra (in dev)")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.local_gen.tiny_pipelines import save_all

    with warnings.catch_warnings():  # library deprecation chatter while building, not our code
        warnings.simplefilter("ignore")
        return save_all(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    connect = socket.socket.connect

    def loopback_only(self: Any, address: Any) -> None:
        if not _loopback(address):
            raise NetworkBlocked(f"test tried to reach {address!r}")
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    yield
