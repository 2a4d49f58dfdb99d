"""A GPU worker never needs the network: weights load from disk, inference is local. Enforced, not hoped."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


class NetworkBlocked(OSError):
    pass


def set_offline_env() -> None:
    """Before huggingface_hub is imported (it reads these once): no hub calls, no telemetry."""
    os.environ.update(OFFLINE_ENV)


def _loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX paths
        return True
    host = address[0] if isinstance(address, tuple) and address else ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def block_network() -> None:
    """Refuse every non-loopback connection from this process (a download attempt fails at once)."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(self: Any, address: Any) -> None:
        if not _loopback(address):
            raise NetworkBlocked(f"network access blocked in the GPU worker: {address!r}")
        connect(self, address)

    def guarded_connect_ex(self: Any, address: Any) -> int:
        if not _loopback(address):
            raise NetworkBlocked(f"network access blocked in the GPU worker: {address!r}")
        return connect_ex(self, address)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
