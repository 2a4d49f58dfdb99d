"""Finding 7: the redaction of URLs and configured secrets, and the log filter."""

from __future__ import annotations

import logging

import pytest

from studio402.config import Settings
from studio402.redact import (
    MASK,
    RedactingFilter,
    Scrubber,
    install_log_redaction,
    redact_url,
    settings_secrets,
)
from tests.secrets_support import assert_no_secrets

ALCHEMY_KEY = "Xy3aB_9cD-ef7GhIjK2lMnOpQr5sTuVw"
INFURA_KEY = "abcdef0123456789abcdef0123456789"
NETWORK = {
    "network": "eip155:8453",
    "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
    "asset_name": "USD Coin",
    "pay_to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "rpc_url": "https://mainnet.base.org",
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://mainnet.base.org", "https://mainnet.base.org"),
        ("http://127.0.0.1:8545/", "http://127.0.0.1:8545/"),
        (
            f"https://base-mainnet.g.alchemy.com/v2/{ALCHEMY_KEY}",
            f"https://base-mainnet.g.alchemy.com/v2/{MASK}",
        ),
        (f"https://mainnet.infura.io/v3/{INFURA_KEY}", f"https://mainnet.infura.io/v3/{MASK}"),
        ("https://rpc.ankr.com/base/" + "ab12" * 16, f"https://rpc.ankr.com/base/{MASK}"),
        (
            "https://base-mainnet.blastapi.io/0b5e9c4a-3f1d-4e2b-9c8a-7d6e5f4a3b2c",
            f"https://base-mainnet.blastapi.io/{MASK}",
        ),
        ("https://user:pass@host.example:8443/rpc?apikey=X&b=2#frag", "https://host.example:8443/rpc"),
        ("https://@host.example/", "https://host.example/"),
        ("http://[::1]:8545/v2/key?x=1", "http://[::1]:8545/v2/key"),
        (
            "https://queue.fal.run/fal-ai/kling-video/v2.1/master",
            "https://queue.fal.run/fal-ai/kling-video/v2.1/master",
        ),
        (
            "https://api.example.com/v1/kling-v2-1-master-image-to-video",
            "https://api.example.com/v1/kling-v2-1-master-image-to-video",
        ),
        (
            "https://api.byteplus.example/api/v3/contents/generations/tasks",
            "https://api.byteplus.example/api/v3/contents/generations/tasks",
        ),
        ("http://[bad", MASK),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cannot reach http://u:p@127.0.0.1:1/v2/abcdef0123456789abcdef0123456789?key=zz: refused",
            f"cannot reach http://127.0.0.1:1/v2/{MASK}: refused",
        ),
        ("InvalidURL(URL('https://h.example/?token=abc'))", "InvalidURL(URL('https://h.example/'))"),
        ("(see https://h.example/a?b=c).", "(see https://h.example/a)."),
        ("no url here", "no url here"),
    ],
)
def test_scrub_text_redacts_every_url(text: str, expected: str) -> None:
    assert Scrubber().scrub(text) == expected


def test_configured_secrets_are_masked_anywhere_in_text() -> None:
    settings = Settings().with_overrides(
        **{
            "database.url": "postgresql://app:dbpassword1@db.internal/studio",
            "backends.providers": {
                "openai": {
                    "type": "openai",
                    "api_key": "sk-live-0123456789",
                    "base_url": "https://proxy.example/?apikey=proxysecret",
                    "options": {"service_token": "opt-secret-value", "project": "my-project"},
                }
            },
        }
    )
    secrets = settings_secrets(settings)
    assert {"sk-live-0123456789", "dbpassword1", "proxysecret", "opt-secret-value"} <= secrets
    assert "my-project" not in secrets and "USD Coin" not in secrets  # names, not credentials
    scrubber = Scrubber.from_settings(settings)
    text = "upstream said: key SK-LIVE-0123456789 invalid; db dbpassword1; opt-secret-value"
    assert_no_secrets(scrubber.scrub(text), ["sk-live-0123456789", "dbpassword1", "opt-secret-value"])


def test_scrub_value_walks_json_documents() -> None:
    scrubber = Scrubber(["hunter2hunter2"])
    doc = {"detail": "pw hunter2hunter2", "errors": [{"message": "at https://h/?k=v"}], "status": 502}
    assert scrubber.scrub_value(doc) == {
        "detail": f"pw {MASK}",
        "errors": [{"message": "at https://h/"}],
        "status": 502,
    }


def test_secretstr_hex_keys_match_with_or_without_prefix() -> None:
    key = "0x" + "ab" * 32
    settings = Settings().with_overrides(
        **{"payments.networks": [{**NETWORK, "settler_key": key, "refund_key": key}]}
    )
    scrubber = Scrubber.from_settings(settings)
    assert scrubber.scrub(f"signing with {key.upper()[2:]}") == f"signing with {MASK}"


def test_log_filter_scrubs_message_args_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("studio402.test_redact")
    caplog.handler.addFilter(RedactingFilter(Scrubber(["settler-private-key"])))
    with caplog.at_level(logging.INFO, logger="studio402.test_redact"):
        logger.info("rpc %s failed", "https://h.example/v3/" + INFURA_KEY + "?apikey=topsecret")
        logger.warning("key %s; %d tries", "settler-private-key", 3)
        try:
            raise RuntimeError("cannot reach http://user:pw123456@h.example/?token=topsecret")
        except RuntimeError:
            logger.exception("boom")
        logger.info(ValueError("at https://h.example/?token=topsecret"))
    assert "3 tries" in caplog.text
    assert_no_secrets(caplog.text, [INFURA_KEY, "topsecret", "settler-private-key", "pw123456"])
    assert "https://h.example/v3/***" in caplog.text


def test_install_puts_one_filter_on_each_handler(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("studio402.test_redact.installed")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        install_log_redaction(Scrubber(["first-secret"]), loggers=[logger.name])
        install_log_redaction(Scrubber(["second-secret"]), loggers=[logger.name])
        logger.error("first-secret second-secret at https://h.example/?apikey=topsecret")
    finally:
        logger.removeHandler(handler)
    assert len([f for f in handler.filters if isinstance(f, RedactingFilter)]) == 1
    err = capsys.readouterr().err
    assert "second-secret" not in err and "topsecret" not in err and "https://h.example/" in err


def test_access_log_paths_lose_their_query(caplog: pytest.LogCaptureFixture) -> None:
    """uvicorn's access log passes the request path as an argument: a signed blob URL's query is a
    capability (anyone holding it downloads the file for 20 minutes) and stays out of the log."""
    caplog.handler.addFilter(RedactingFilter(Scrubber([])))
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            "/blobs/results/j/image.png?e=99&s=abcdef",
            "1.1",
            200,
        )
    assert "/blobs/results/j/image.png?***" in caplog.text
    assert "abcdef" not in caplog.text and " 200" in caplog.text
