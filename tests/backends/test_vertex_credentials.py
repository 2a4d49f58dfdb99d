"""Veo on Agent Platform with real Google credentials (google-auth): a service-account key or ADC, tokens
minted by the fake's OAuth token endpoint (offline), refreshed before they expire and once on a 401."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from studio402.backends.base import FailureCode
from studio402.backends.vertex_veo import VertexVeoBackend
from studio402.jobs.model import JobStatus
from tests.backends.flows import backend_job
from tests.backends.harness import JobHarness
from tests.backends.upstream_support import failure_of, fake_fixtures, harness_for
from tests.fakes.vertex import LOCATION, PROJECT, FakeVertex

ROUTE = "veo-3.1/generate"
KEY_ID = "test-key-1"

server, fake = fake_fixtures(FakeVertex)


@cache
def signing_key() -> tuple[str, str]:
    """A service account's RSA key: (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


@pytest.fixture
def key_file(tmp_path: Path, fake: FakeVertex) -> Path:
    """A service-account JSON key whose token_uri is the fake's token endpoint, trusted by the fake."""
    private, public = signing_key()
    fake.trust(KEY_ID, public)
    path = tmp_path / "service-account.json"
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": private,
        "client_email": f"veo@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": f"{fake.url}/token",
    }
    path.write_text(json.dumps(info))
    return path


def google_backend(fake: FakeVertex, key: str = "", **options: Any) -> VertexVeoBackend:
    from tests.backends.flows import provider

    opts = {"project": PROJECT, "location": LOCATION, **options}
    return VertexVeoBackend.from_settings("vertex", provider("vertex-veo", fake.url, key, **opts))


def minted(fake: FakeVertex) -> list[str]:
    """The bearer tokens of the Veo calls the fake received."""
    return [r.headers.get("authorization", "") for r in fake.received if r.path != "/token"]


@pytest.fixture
async def harness(tmp_path: Path, fake: FakeVertex, key_file: Path) -> AsyncIterator[JobHarness]:
    backend = google_backend(fake, credentials_file=str(key_file))
    async with harness_for(tmp_path, {"vertex": backend}) as h:
        yield h


async def test_a_service_account_key_mints_one_token_for_the_job(
    harness: JobHarness, fake: FakeVertex
) -> None:
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x", "durationSeconds": "4"})).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    tokens = minted(fake)
    assert len(tokens) >= 2 and set(tokens) == {tokens[0]} and tokens[0].startswith("Bearer ya29.minted-")
    assert (fake.grants, fake.unauthorized) == (1, 0)  # one token, reused while it is valid


async def test_a_token_about_to_expire_is_refreshed_before_it_is_used(
    harness: JobHarness, fake: FakeVertex
) -> None:
    fake.token_lifetime = 60  # within google-auth's refresh margin: stale as soon as it is minted
    ended = await harness.run((await harness.submit(ROUTE, {"prompt": "x", "durationSeconds": "4"})).id)
    assert ended.status is JobStatus.COMPLETE, harness.dump(ended)
    assert fake.unauthorized == 0  # never sent an expired token
    assert fake.grants == len(minted(fake)) >= 2  # a fresh token before every call


async def test_a_revoked_token_is_refreshed_once_after_a_401(
    tmp_path: Path, fake: FakeVertex, key_file: Path
) -> None:
    """What happens to a job in flight when its token's hour is over: the poll gets a 401, the adapter
    mints a new token and asks again (with a static token the job failed upstream_auth here)."""
    fake.hold = True
    async with harness_for(tmp_path, {"vertex": google_backend(fake, credentials_file=str(key_file))}) as h:
        job = await h.submit(ROUTE, {"prompt": "x", "durationSeconds": "4"})
        await h.run_until_upstream(job.id)
        fake.revoke_tokens()
        fake.hold = False
        ended = await h.run(job.id)
    assert ended.status is JobStatus.COMPLETE, JobHarness.dump(ended)
    assert (fake.grants, fake.unauthorized, fake.submissions) == (2, 1, 1)


async def test_application_default_credentials(
    tmp_path: Path, fake: FakeVertex, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    backend = google_backend(fake)  # no api_key, no credentials_file: ADC
    assert backend.missing_settings() == []
    async with harness_for(tmp_path, {"vertex": backend}) as h:
        ended = await h.run((await h.submit(ROUTE, {"prompt": "x", "durationSeconds": "4"})).id)
    assert ended.status is JobStatus.COMPLETE, JobHarness.dump(ended)
    assert fake.grants == 1


async def test_a_key_google_refuses_is_an_auth_failure_before_anything_is_sent(
    fake: FakeVertex, key_file: Path
) -> None:
    fake.public_keys.clear()  # the key was deleted upstream: its assertions are refused (invalid_grant)
    backend = google_backend(fake, credentials_file=str(key_file))
    failure = await failure_of(backend, backend.submit(backend_job(ROUTE, {"prompt": "x"})))
    assert failure.failure is FailureCode.AUTH and not failure.accepted
    assert fake.submissions == 0


async def test_missing_credentials_are_unavailable(
    fake: FakeVertex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    backend = google_backend(fake)
    failure = await failure_of(backend, backend.submit(backend_job(ROUTE, {"prompt": "x"})))
    assert failure.failure is FailureCode.UNAVAILABLE and not failure.accepted
    assert fake.submissions == 0


def test_google_credentials_settings(tmp_path: Path) -> None:
    from tests.backends.flows import provider

    def backend(**options: Any) -> VertexVeoBackend:
        return VertexVeoBackend("v", provider("vertex-veo", "http://127.0.0.1:9", "", **options))

    assert backend(project="p").missing_settings() == []  # ADC
    assert backend().missing_settings() == ["options.project"]
    absent = str(tmp_path / "absent.json")
    assert backend(project="p", credentials_file=absent).missing_settings() == [
        f"options.credentials_file ({absent} is not a file)"
    ]


async def test_the_probe_reads_with_a_minted_token(fake: FakeVertex, key_file: Path) -> None:
    """`backends check --probe` authenticates like a submission: a token from the credentials, not the
    (empty) api_key."""
    backend = google_backend(fake, credentials_file=str(key_file))
    try:
        result = await backend.probe()
    finally:
        await backend.aclose()
    assert (result.ok, result.status) == (True, 200), result
    [sent] = minted(fake)
    assert sent.startswith("Bearer ya29.minted-"), sent
