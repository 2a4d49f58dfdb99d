"""Request-scoped access to the services built at start-up."""

from __future__ import annotations

from starlette.requests import Request

from studio402.services import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc
