"""A request the route's backends cannot serve is refused with a 400 before any price is asked, and the
job runner never submits to a backend that refuses (it would bill upstream, then fail)."""

from __future__ import annotations

from studio402.backends.base import Ask
from studio402.backends.registry import BackendRegistry
from tests.fakes.scripted import ScriptedBackend

ASK = Ask("nano-banana", "generate", {"prompt": "x"})


def test_the_chain_serves_if_any_backend_does() -> None:
    refuser, able = ScriptedBackend("narrow", refuse="at most 3 images"), ScriptedBackend("able")
    assert BackendRegistry({"narrow": refuser, "able": able}, ["narrow", "able"]).refusal(ASK) is None
    reason = BackendRegistry({"narrow": refuser}, ["narrow"]).refusal(ASK)
    assert reason == "narrow: at most 3 images"
