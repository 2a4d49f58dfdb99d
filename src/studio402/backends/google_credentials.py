"""Google OAuth access tokens for Agent Platform (ex-Vertex AI), refreshed before they expire.

An access token lives about an hour, a Veo job polls for minutes and a server runs for days: a static token
from the config ends every job still in flight once the hour is over. Here google-auth holds real
credentials, a service-account JSON key (`options.credentials_file`) or the application default credentials
(ADC: GOOGLE_APPLICATION_CREDENTIALS, gcloud's user login, the metadata server of a Google VM), and mints
tokens as needed:

    token()       a valid token; refreshed first when google-auth counts it as expired (it does so a few
                  minutes before the real expiry, so a token never expires between our check and its use)
    invalidate()  after a 401: the next token() refreshes whatever the expiry says (a revoked token)

google-auth is synchronous: credentials are loaded and refreshed in a worker thread, through a small httpx
transport (no `requests` dependency), one refresh at a time for all the jobs of the adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport
import httpx
from google.oauth2 import service_account

from studio402.backends.base import BackendFailure, FailureCode

SCOPES: Sequence[str] = ("https://www.googleapis.com/auth/cloud-platform",)
Loader = Callable[[google.auth.transport.Request], google.auth.credentials.Credentials]


class _Response(google.auth.transport.Response):
    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp

    @property
    def status(self) -> int:
        return self._resp.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    @property
    def data(self) -> bytes:
        return self._resp.content


class HttpxRequest(google.auth.transport.Request):
    """google-auth's transport interface over a synchronous httpx call (token and metadata requests)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        try:
            with httpx.Client(timeout=timeout or self._timeout) as client:
                resp = client.request(method, url, content=body, headers=dict(headers or {}))
        except httpx.HTTPError as exc:
            failure = f"{type(exc).__name__}: {exc}"
            raise google.auth.exceptions.TransportError(failure) from exc  # type: ignore[no-untyped-call]
        return _Response(resp)


def file_loader(path: str) -> Loader:
    """Credentials from a service-account JSON key file."""

    def load(request: google.auth.transport.Request) -> google.auth.credentials.Credentials:
        make = service_account.Credentials.from_service_account_file
        creds: google.auth.credentials.Credentials = make(path, scopes=SCOPES)  # type: ignore[no-untyped-call]
        return creds

    return load


def adc_loader(request: google.auth.transport.Request) -> google.auth.credentials.Credentials:
    """The application default credentials (may ask the metadata server, hence the request)."""
    creds, _project = google.auth.default(scopes=SCOPES, request=request)
    return creds


def unreadable_file(path: str) -> str | None:
    """Why a credentials file cannot be used, or None (checked when settings are read; no network)."""
    if not Path(path).is_file():
        return f"options.credentials_file ({path} is not a file)"
    return None


class GoogleCredentials:
    def __init__(self, loader: Loader, *, timeout: float = 30.0) -> None:
        self._loader = loader
        self._request = HttpxRequest(timeout)
        self._creds: google.auth.credentials.Credentials | None = None
        self._stale = False
        self._lock = asyncio.Lock()

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, timeout: float = 30.0) -> GoogleCredentials:
        path = options.get("credentials_file")
        return cls(file_loader(str(path)) if path else adc_loader, timeout=timeout)

    async def token(self, *, accepted: bool = False) -> str:
        """A valid access token. Failures: `backend_unavailable` without credentials, `upstream_auth` when
        Google refuses them, `upstream_error` (retryable) when its token endpoint is unreachable."""
        async with self._lock:
            try:
                if self._creds is None:
                    self._creds = await asyncio.to_thread(self._loader, self._request)
                if self._stale or not self._creds.valid:
                    await asyncio.to_thread(self._creds.refresh, self._request)
                    self._stale = False
            except (google.auth.exceptions.DefaultCredentialsError, OSError, ValueError) as exc:
                raise BackendFailure(
                    FailureCode.UNAVAILABLE, f"no usable Google credentials: {exc}", accepted=accepted
                ) from exc
            except google.auth.exceptions.RefreshError as exc:
                raise BackendFailure(
                    FailureCode.AUTH, f"Google refused the credentials: {exc}", accepted=accepted
                ) from exc
            except google.auth.exceptions.TransportError as exc:
                raise BackendFailure(
                    FailureCode.UPSTREAM_ERROR, f"Google's token endpoint: {exc}", accepted=accepted
                ) from exc
            return str(self._creds.token)

    def invalidate(self) -> None:
        """The upstream refused the token (401): refresh on the next call."""
        self._stale = True
