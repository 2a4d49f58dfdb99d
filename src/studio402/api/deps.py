"""Request-scoped access to the composition root built at start-up."""

from __future__ import annotations

from starlette.requests import Request

from studio402.wiring import Wiring


def wiring(request: Request) -> Wiring:
    built: Wiring = request.app.state.wiring
    return built
