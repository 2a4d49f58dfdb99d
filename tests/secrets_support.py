"""Scanning text we send out (problem documents, logs) for secrets that must never leave the process."""

from __future__ import annotations

from collections.abc import Iterable


def assert_no_secrets(text: str, secrets: Iterable[str]) -> None:
    """Fail naming the first secret found in `text` (case-insensitive: hosts and hex keys change case)."""
    lowered = text.lower()
    for secret in secrets:
        if secret and secret.lower() in lowered:
            raise AssertionError(f"secret {secret[:4]}... leaked in: {text[:500]}")
