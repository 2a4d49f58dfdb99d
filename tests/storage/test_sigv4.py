"""SigV4 against AWS's published S3 examples and against botocore, the reference implementation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from unittest import mock
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from studio402.storage.sigv4 import Credentials, SigV4Signer, encode_path

# The example account of the AWS S3 documentation ("Signature Calculations for the Authorization Header"
# and "Authenticating Requests: Using Query Parameters").
AWS_EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
AWS_DAY = datetime(2013, 5, 24, tzinfo=UTC)
HOST = "https://examplebucket.s3.amazonaws.com"


def _signature(authorization: str) -> str:
    return authorization.rsplit("Signature=", 1)[1]


def test_aws_example_get_object_with_range() -> None:
    headers = SigV4Signer(AWS_EXAMPLE, "us-east-1").sign_headers(
        "GET", f"{HOST}/test.txt", {"Range": "bytes=0-9"}, now=AWS_DAY
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_aws_example_put_object() -> None:
    body = b"Welcome to Amazon S3."
    headers = SigV4Signer(AWS_EXAMPLE, "us-east-1").sign_headers(
        "PUT",
        f"{HOST}/{encode_path('test$file.text')}",
        {"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
        payload_hash=hashlib.sha256(body).hexdigest(),
        now=AWS_DAY,
    )
    assert _signature(headers["authorization"]) == (
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    )


def test_aws_example_list_objects() -> None:
    headers = SigV4Signer(AWS_EXAMPLE, "us-east-1").sign_headers(
        "GET", f"{HOST}/?max-keys=2&prefix=J", now=AWS_DAY
    )
    assert _signature(headers["authorization"]) == (
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    )


def test_aws_example_presigned_get() -> None:
    url = SigV4Signer(AWS_EXAMPLE, "us-east-1").presign("GET", f"{HOST}/test.txt", 86_400, now=AWS_DAY)
    assert url == (
        f"{HOST}/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


@pytest.mark.parametrize("seconds", [0, 7 * 86_400 + 1])
def test_presign_lifetime_is_bounded(seconds: int) -> None:
    with pytest.raises(ValueError, match="presigned URLs live"):
        SigV4Signer(AWS_EXAMPLE, "us-east-1").presign("GET", f"{HOST}/a", seconds)


def test_the_signing_key_is_derived_once_a_day() -> None:
    signer = SigV4Signer(AWS_EXAMPLE, "eu-west-1")
    with mock.patch("studio402.storage.sigv4.hmac.new", wraps=__import__("hmac").new) as spy:
        signer.sign_headers("GET", f"{HOST}/a", now=AWS_DAY)
        first = spy.call_count
        signer.sign_headers("GET", f"{HOST}/b", now=AWS_DAY)
        assert spy.call_count - first == 1  # only the signature itself
        signer.sign_headers("GET", f"{HOST}/b", now=datetime(2013, 5, 25, tzinfo=UTC))
        assert spy.call_count - first == 1 + 5  # a new day: four derivation steps, then the signature


# Keys and values with everything that needs encoding: spaces, unicode, reserved and percent signs.
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)
_KEY = st.lists(_TEXT.filter(lambda s: s not in (".", "..")), min_size=1, max_size=3).map("/".join)
_QUERY = st.dictionaries(st.sampled_from(["prefix", "list-type", "marker", "max-keys"]), _TEXT, max_size=3)
_TIME = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2035, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
_TOKEN = st.one_of(st.none(), st.text("abcdefABCDEF0123456789+/=", min_size=8, max_size=40))


def _url(endpoint: str, key: str, query: dict[str, str]) -> str:
    encoded = urlencode(query, quote_via=quote)  # %20 for spaces: "+" in a query is ambiguous to S3
    return f"{endpoint}/bucket/{encode_path(key)}" + (f"?{encoded}" if query else "")


@settings(max_examples=150, deadline=None)
@given(
    key=_KEY,
    query=_QUERY,
    now=_TIME,
    token=_TOKEN,
    body=st.binary(max_size=64),
    method=st.sampled_from(["GET", "PUT", "HEAD", "DELETE"]),
    endpoint=st.sampled_from(["https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000"]),
)
def test_header_signature_matches_botocore(
    key: str, query: dict[str, str], now: datetime, token: str | None, body: bytes, method: str, endpoint: str
) -> None:
    url = _url(endpoint, key, query)
    ours = SigV4Signer(Credentials("AKIDEXAMPLE", "secret/key+x", token), "eu-west-1").sign_headers(
        method, url, {"Content-Type": "image/png"}, payload_hash=hashlib.sha256(body).hexdigest(), now=now
    )
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "image/png"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        S3SigV4Auth(BotoCredentials("AKIDEXAMPLE", "secret/key+x", token), "s3", "eu-west-1").add_auth(
            request
        )
    assert ours["authorization"] == request.headers["Authorization"]


@settings(max_examples=150, deadline=None)
@given(
    key=_KEY,
    now=_TIME,
    token=_TOKEN,
    expires=st.integers(1, 7 * 86_400),
    method=st.sampled_from(["GET", "PUT"]),
)
def test_presigned_url_matches_botocore(
    key: str, now: datetime, token: str | None, expires: int, method: str
) -> None:
    url = _url("https://s3.us-east-1.amazonaws.com", key, {})
    headers = {"content-type": "video/mp4"} if method == "PUT" else {}
    ours = SigV4Signer(Credentials("AKIDEXAMPLE", "s3cr3t", token), "us-east-1").presign(
        method, url, expires, headers=headers, now=now
    )
    request = AWSRequest(method=method, url=url, headers=headers)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        S3SigV4QueryAuth(
            BotoCredentials("AKIDEXAMPLE", "s3cr3t", token), "s3", "us-east-1", expires
        ).add_auth(request)
    assert urlsplit(ours).path == urlsplit(request.url).path
    assert parse_qs(urlsplit(ours).query) == parse_qs(urlsplit(request.url).query)
