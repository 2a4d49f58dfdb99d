"""Which backends serve which route: a chain per route (primary first, then fallbacks), from config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from studio402.backends.base import Ask, Backend
from studio402.errors import ConfigError


class BackendRegistry:
    def __init__(
        self,
        backends: Mapping[str, Backend],
        default: Sequence[str],
        routes: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._backends = dict(backends)
        self._default = tuple(default)
        self._routes = {k: tuple(v) for k, v in (routes or {}).items()}
        for name in (*self._default, *(n for chain in self._routes.values() for n in chain)):
            if name not in self._backends:
                raise ConfigError(f"backend {name!r} is used in [backends] but not configured")

    def names_for(self, route_key: str) -> tuple[str, ...]:
        """The configured chain: `model/operation`, else `model`, else the default."""
        model = route_key.split("/", 1)[0]
        return self._routes.get(route_key) or self._routes.get(model) or self._default

    def chain(self, route_key: str) -> list[Backend]:
        return [b for b in (self._backends[n] for n in self.names_for(route_key)) if b.supports(route_key)]

    def refusal(self, ask: Ask) -> str | None:
        """Why no backend of the route's chain can serve `ask` (each one's reason), or None if one can. A
        route with no backend at all is not refused here: its job fails and is refunded as before."""
        reasons = []
        for backend in self.chain(ask.route_key):
            reason = backend.refusal(ask)
            if reason is None:
                return None
            reasons.append(f"{backend.name}: {reason}")
        return "; ".join(reasons) or None

    def get(self, name: str) -> Backend | None:
        return self._backends.get(name)

    def all(self) -> list[Backend]:
        return list(self._backends.values())

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
