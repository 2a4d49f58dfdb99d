"""What the OpenAI Images and Videos adapters share: base URL, auth headers, and the error envelope
`{"error": {"message", "type", "param", "code"}}` with its moderation codes."""

from __future__ import annotations

import httpx

from studio402.backends.base import BackendFailure, FailureCode
from studio402.backends.http_common import api_key, error_object, error_text, status_failure
from studio402.config import ProviderSettings

DEFAULT_BASE = "https://api.openai.com/v1"
PROBE_PATH = "models"  # GET /v1/models: the cheap authenticated read of `backends check --probe`
# `moderation_blocked` (GPT image models, Sora); `content_policy_violation` (older image models).
MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
HEADER_ORGANIZATION = "OpenAI-Organization"
HEADER_PROJECT = "OpenAI-Project"


def auth_headers(settings: ProviderSettings) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_key(settings) or ''}"}
    if settings.options.get("organization"):
        headers[HEADER_ORGANIZATION] = str(settings.options["organization"])
    if settings.options.get("project"):
        headers[HEADER_PROJECT] = str(settings.options["project"])
    return headers


def is_moderation(error: dict[str, object]) -> bool:
    return error.get("code") in MODERATION_CODES


def openai_failure(resp: httpx.Response, *, accepted: bool) -> BackendFailure:
    """An error answer: a safety refusal is `moderated` (final), the rest by HTTP status."""
    if resp.status_code == 400 and is_moderation(error_object(resp)):
        return BackendFailure(FailureCode.MODERATED, error_text(resp), accepted=accepted)
    return status_failure(resp, accepted=accepted)
