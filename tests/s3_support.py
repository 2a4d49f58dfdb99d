"""A real S3-compatible server for the object-storage tests: moto's server in its own process.

With `auth=True` it checks every header-signed request against IAM credentials (SigV4, recomputed with
botocore) and answers 403 SignatureDoesNotMatch otherwise; moto cannot check presigned URLs in that mode,
so the flows that hand presigned URLs to clients run on a server with `auth=False`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from studio402.storage.s3 import S3BlobStore
from studio402.storage.sigv4 import Credentials, SigV4Signer
from tests.server import free_port

REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key_id: str
    secret_access_key: str

    def boto(self) -> Any:
        """An independent S3 client (boto3) to look at the bucket from the outside."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        name = f"studio402-{uuid.uuid4().hex[:12]}"
        self.boto().create_bucket(Bucket=name)
        return name

    def store(self, bucket: str, *, secret: str | None = None, prefix: str = "") -> S3BlobStore:
        credentials = Credentials(self.access_key_id, secret or self.secret_access_key)
        return S3BlobStore(
            SigV4Signer(credentials, REGION), bucket, endpoint_url=self.endpoint, prefix=prefix
        )

    def settings(self, bucket: str, **s3: Any) -> dict[str, Any]:
        """Dotted settings overrides that put a studio402 server on this bucket."""
        return {
            "storage.backend": "s3",
            "storage.s3": {
                "bucket": bucket,
                "region": REGION,
                "endpoint_url": self.endpoint,
                "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key,
                **s3,
            },
        }


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("moto server did not start")


@contextmanager
def moto_server(*, auth: bool) -> Iterator[S3Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"  # enough to create the IAM user below, then enforced
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc)
        endpoint = f"http://127.0.0.1:{port}"
        if auth:
            iam = boto3.client(
                "iam",
                endpoint_url=endpoint,
                region_name=REGION,
                aws_access_key_id="bootstrap",
                aws_secret_access_key="bootstrap",
            )
            iam.create_user(UserName="studio402")
            key = iam.create_access_key(UserName="studio402")["AccessKey"]
            allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
            policy = {"Version": "2012-10-17", "Statement": [allow]}
            iam.put_user_policy(UserName="studio402", PolicyName="s3", PolicyDocument=json.dumps(policy))
            yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        else:
            yield S3Server(endpoint, "AKIASTUDIO402TEST", "studio402-test-secret")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_checked() -> Iterator[S3Server]:
    """An S3 server that refuses badly signed requests."""
    with moto_server(auth=True) as server:
        yield server


@pytest.fixture(scope="session")
def s3_open() -> Iterator[S3Server]:
    """An S3 server that takes presigned URLs (without checking their signatures)."""
    with moto_server(auth=False) as server:
        yield server
