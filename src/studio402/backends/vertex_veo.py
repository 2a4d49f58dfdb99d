"""Veo 3.1 / Veo 3.1 Fast on Gemini Enterprise Agent Platform (ex-Vertex AI), the path still live after the
Gemini API retired Veo (providers.md §0.2, §4b).

    submit  POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:predictLongRunning
            -> {name}: the operation name is the upstream id
    poll    POST /v1/{model path}:fetchPredictOperation {operationName} -> {done, response.videos[] (inline
            bytesBase64Encoded: we never ask for storageUri), raiMediaFilteredCount, error}
    cancel  POST /v1/{operation name}:cancel (google.longrunning; best effort, unverified for Veo)

Credentials, `options.auth` (default: "api_key" when `api_key` is set, else "google"):
    "google"   google-auth credentials (google_credentials.py): the service-account JSON key at
               `options.credentials_file`, else the application default credentials; tokens are refreshed
               before they expire and once more when the upstream answers 401. Needs `options.project`.
    "api_key"  `api_key` is an Agent Platform API key, sent as `x-goog-api-key`. Without a project this is
               express mode: the global host, paths without `projects/{p}/locations/{l}/` (Google's express
               mode reference); with a project, the regional host and project paths.
    "bearer"   `api_key` is a static OAuth access token (`gcloud auth print-access-token`): it expires after
               about an hour, failing every job still running then. For trying things out only.
Other options: `project`, `location` (default us-central1; "global" uses the global host), `generate_audio`
(default true), `person_generation`.

Limits refused before payment (`refusal`): reference images only with 8-second 16:9 clips (Veo 3.1 model
page: "reference image to video only supports 8 seconds", 9:16 "except for reference image to video").

`done` with no video and only `raiMediaFilteredCount` (the RAI filter) is `no_media`: nothing was delivered
and the refund policy runs. An operation error INVALID_ARGUMENT whose message speaks of usage guidelines,
Responsible AI or safety (how clients report Veo's prompt refusals) is `moderated`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from studio402.backends.adapter import UpstreamAdapter
from studio402.backends.base import (
    Ask,
    BackendFailure,
    BackendJob,
    FailureCode,
    MediaInput,
    Output,
    Poll,
    Submitted,
    UpstreamStatus,
)
from studio402.backends.gemini import google_failure
from studio402.backends.google_credentials import GoogleCredentials, unreadable_file
from studio402.backends.http_common import (
    DETAIL_LIMIT,
    api_key,
    decode_base64,
    encode_base64,
    final,
    json_object,
    media_inputs,
    send,
)
from studio402.config import ProviderSettings
from studio402.errors import ConfigError

DEFAULT_MODELS: Mapping[str, str] = {
    "veo-3.1": "veo-3.1-generate-001",
    "veo-3.1-fast": "veo-3.1-fast-generate-001",
}
ROUTES = frozenset(f"{m}/generate" for m in DEFAULT_MODELS)
DEFAULT_LOCATION = "us-central1"
API_VERSION = "v1"
HEADER_KEY = "x-goog-api-key"
OPERATIONS = "/operations/"
# An operation name is a path we append to our base URL: accept only its documented shape.
OPERATION_NAME = re.compile(
    r"(projects/[\w.-]+/locations/[\w-]+/)?"
    r"publishers/google/models/[\w.-]+/operations/[\w-]+"
)
# google.rpc.Code of a failed operation -> ours (anything else: upstream_error).
_RPC_CODES: Mapping[int, FailureCode] = {
    1: FailureCode.CANCELED,
    3: FailureCode.INVALID_REQUEST,
    4: FailureCode.TIMEOUT,
    5: FailureCode.NOT_FOUND,
    7: FailureCode.AUTH,
    8: FailureCode.RATE_LIMITED,
    9: FailureCode.INVALID_REQUEST,
    16: FailureCode.AUTH,
}
# Veo refuses unsafe prompts with INVALID_ARGUMENT and a message like these (seen in client reports).
_SAFETY_WORDS = ("usage guidelines", "responsible ai", "safety", "sensitive", "prohibited")


class AuthMode(StrEnum):
    GOOGLE = "google"
    API_KEY = "api_key"
    BEARER = "bearer"


# Veo takes reference images only for clips of this length and shape (module docstring).
REFERENCE_SECONDS = 8
REFERENCE_ASPECT = "16:9"


def reference_refusal(params: Mapping[str, Any]) -> str | None:
    if not params.get("referenceImages"):
        return None
    if int(params.get("durationSeconds", REFERENCE_SECONDS)) != REFERENCE_SECONDS:
        return f"Veo takes reference images only for {REFERENCE_SECONDS}-second clips"
    if params.get("aspectRatio", REFERENCE_ASPECT) != REFERENCE_ASPECT:
        return f"Veo takes reference images only for {REFERENCE_ASPECT} clips"
    return None


def _image(media: MediaInput) -> dict[str, str]:
    return {"bytesBase64Encoded": encode_base64(media.data), "mimeType": media.mime}


def instance(job: BackendJob) -> dict[str, Any]:
    inst: dict[str, Any] = {"prompt": job.params["prompt"]}
    first, last = media_inputs(job, "image"), media_inputs(job, "lastFrame")
    refs = media_inputs(job, "referenceImages")
    if first:
        inst["image"] = _image(first[0])
    if last:
        inst["lastFrame"] = _image(last[0])
    if refs:
        inst["referenceImages"] = [{"image": _image(r), "referenceType": "asset"} for r in refs]
    return inst


def parameters(job: BackendJob, options: Mapping[str, Any]) -> dict[str, Any]:
    p = job.params
    params: dict[str, Any] = {
        "sampleCount": 1,
        "durationSeconds": int(p.get("durationSeconds", 8)),
        "aspectRatio": p.get("aspectRatio", "16:9"),
        "resolution": p.get("resolution", "720p"),
        "generateAudio": bool(options.get("generate_audio", True)),
        "seed": job.seed % 2**32,
    }
    if p.get("negativePrompt"):
        params["negativePrompt"] = p["negativePrompt"]
    if options.get("person_generation"):
        params["personGeneration"] = str(options["person_generation"])
    return params


def operation_failure(error: Mapping[str, Any]) -> BackendFailure:
    message = str(error.get("message") or "")
    rpc = error.get("code")
    code = _RPC_CODES.get(rpc if isinstance(rpc, int) else -1, FailureCode.UPSTREAM_ERROR)
    if code is FailureCode.INVALID_REQUEST and any(w in message.lower() for w in _SAFETY_WORDS):
        code = FailureCode.MODERATED
    detail = f"the operation failed (code {error.get('code')}): {message}"[:DETAIL_LIMIT]
    return final(code, detail)


def operation_poll(op: Mapping[str, Any]) -> Poll:
    """A fetched operation -> running, the video, or the failure it ended with."""
    if not op.get("done"):
        return Poll(UpstreamStatus.RUNNING)
    if isinstance(op.get("error"), dict):
        raise operation_failure(op["error"])
    raw = op.get("response")
    response: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    videos = [v for v in response.get("videos") or [] if isinstance(v, dict)]
    for video in videos:
        if video.get("bytesBase64Encoded"):
            data = decode_base64(video["bytesBase64Encoded"], "bytesBase64Encoded")
            mime = str(video.get("mimeType") or "video/mp4")
            return Poll(UpstreamStatus.SUCCEEDED, 100, (Output(data, mime),))
    if any(v.get("gcsUri") for v in videos):
        raise final(
            FailureCode.UPSTREAM_ERROR, "the video went to Cloud Storage, which this adapter does not read"
        )
    filtered, reasons = response.get("raiMediaFilteredCount"), response.get("raiMediaFilteredReasons")
    detail = (
        f"done without a video: {filtered} filtered by the RAI filter ({reasons})"
        if filtered
        else "done without a video"
    )
    raise final(FailureCode.NO_MEDIA, detail[:DETAIL_LIMIT])


class VertexVeoBackend(UpstreamAdapter):
    probe_path = "v1beta1/publishers/google/models?pageSize=1"  # Model Garden list: `backends check --probe`
    default_models = DEFAULT_MODELS
    routes = ROUTES

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        options = settings.options
        default = AuthMode.API_KEY if api_key(settings) else AuthMode.GOOGLE
        try:
            self._auth = AuthMode(str(options.get("auth") or default))
        except ValueError:
            modes = ", ".join(repr(m.value) for m in AuthMode)
            raise ConfigError(f"backend {name}: options.auth must be one of {modes}") from None
        self._project = str(options["project"]) if options.get("project") else None
        self._location = str(options.get("location") or DEFAULT_LOCATION)
        self._credentials = (
            GoogleCredentials.from_options(options, timeout=settings.timeout_seconds)
            if self._auth is AuthMode.GOOGLE
            else None
        )
        # Express mode (an API key, no project) lives on the global host only.
        express = self._auth is AuthMode.API_KEY and self._project is None
        super().__init__(
            name, settings, default_url=self.default_base("global" if express else self._location)
        )

    @staticmethod
    def default_base(location: str) -> str:
        prefix = "" if location == "global" else f"{location}-"
        return f"https://{prefix}aiplatform.googleapis.com"

    @property
    def base_url(self) -> str:
        return str(self._client.base_url).rstrip("/")

    def missing_settings(self) -> list[str]:
        missing = [] if self._auth is AuthMode.GOOGLE or api_key(self._settings) else ["api_key"]
        if self._auth is not AuthMode.API_KEY and self._project is None:
            missing.append("options.project")
        path = self._settings.options.get("credentials_file")
        if self._auth is AuthMode.GOOGLE and path and (why := unreadable_file(str(path))):
            missing.append(why)
        return missing

    def refusal(self, ask: Ask) -> str | None:
        return reference_refusal(ask.params)

    async def _probe_headers(self) -> dict[str, str]:
        return await self._auth_headers(accepted=False)  # google-auth tokens are fetched, not configured

    async def _auth_headers(self, *, accepted: bool) -> dict[str, str]:
        if self._credentials is not None:
            return {"Authorization": f"Bearer {await self._credentials.token(accepted=accepted)}"}
        key = api_key(self._settings) or ""
        return {HEADER_KEY: key} if self._auth is AuthMode.API_KEY else {"Authorization": f"Bearer {key}"}

    async def _post(self, path: str, *, creates: bool = False, accepted: bool = False, **kwargs: Any) -> Any:
        """One call; a 401 with refreshable credentials refreshes the token and is sent once more (a 401
        created nothing upstream, so resending a submission cannot bill twice)."""
        for attempt in range(2):
            headers = await self._auth_headers(accepted=accepted)
            resp = await send(
                self._client, "POST", path, creates=creates, accepted=accepted, headers=headers, **kwargs
            )
            if resp.status_code != 401 or self._credentials is None or attempt:
                break
            self._credentials.invalidate()
        if resp.status_code != 200:
            raise google_failure(resp, accepted=accepted)
        return resp

    def model_path(self, model: str) -> str:
        if self._project is None:  # API-key ("express") mode without a project
            return f"publishers/google/models/{model}"
        return f"projects/{self._project}/locations/{self._location}/publishers/google/models/{model}"

    async def submit(self, job: BackendJob) -> Submitted:
        model = self._model(job)
        if (reason := reference_refusal(job.params)) is not None:  # the runner asked refusal() already
            raise BackendFailure(FailureCode.UNAVAILABLE, f"{self.name}: {reason}")
        body = {"instances": [instance(job)], "parameters": parameters(job, self._settings.options)}
        path = f"{API_VERSION}/{self.model_path(model)}:predictLongRunning"
        resp = await self._post(path, creates=True, json=body)
        name = json_object(resp, accepted=True, retryable=False).get("name")
        if not isinstance(name, str) or not OPERATION_NAME.fullmatch(name):
            raise final(FailureCode.UPSTREAM_ERROR, f"unusable operation name {name!r}")
        return Submitted(name)

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        if not OPERATION_NAME.fullmatch(upstream_id):
            raise final(FailureCode.NOT_FOUND, "not an operation name")
        model_path = upstream_id.partition(OPERATIONS)[0]  # the operation name carries its model path
        path = f"{API_VERSION}/{model_path}:fetchPredictOperation"
        resp = await self._post(path, accepted=True, json={"operationName": upstream_id})
        return operation_poll(json_object(resp, accepted=True))

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        await self._post(f"{API_VERSION}/{upstream_id}:cancel", accepted=True)
