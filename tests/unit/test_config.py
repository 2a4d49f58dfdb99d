from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from studio402.auth.siwx import SiwxVerifier
from studio402.config import RefundMethod, Settings, example_config, load_settings
from studio402.errors import ConfigError


def test_defaults_without_any_source() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.public_url == "http://127.0.0.1:8402"
    assert settings.uses_devnet


def test_example_config_is_valid_and_equals_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "studio402.toml"
    path.write_text(example_config())
    assert load_settings(path, environ={}) == Settings()
    tomllib.loads(example_config())


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'data_dir = "/srv/a"\n[server]\nport = 9000\nhost = "0.0.0.0"\n[pricing]\nmarkup_bps = 100\n'
    )
    env = {"STUDIO402_SERVER__PORT": "9100", "STUDIO402_PAYMENTS__REFUND": "credit", "HOME": "/root"}
    settings = load_settings(path, environ=env, overrides={"server.port": 9200, "data_dir": None})
    assert settings.server.port == 9200  # CLI flag wins
    assert settings.server.host == "0.0.0.0"  # from the file
    assert settings.payments.refund is RefundMethod.CREDIT  # from the environment
    assert settings.pricing.markup_bps == 100
    assert settings.data_dir == Path("/srv/a")  # a None override changes nothing


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[pricing]\nmarkup_bps = 7\n")
    assert load_settings(environ={"STUDIO402_CONFIG": str(path)}).pricing.markup_bps == 7


def test_networks_as_json_in_the_environment() -> None:
    env = {
        "STUDIO402_PAYMENTS__NETWORKS": '[{"network": "eip155:8453", "asset": "0xA", '
        '"asset_name": "USD Coin", "pay_to": "0xB", "settler_key": "0x01"}]'
    }
    settings = load_settings(environ=env)
    [net] = settings.payments.networks
    assert net.network == "eip155:8453" and net.asset_version == "2" and net.decimals == 6
    assert not settings.uses_devnet
    assert "0x01" not in repr(settings)  # secrets are not printed


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[server]\nport = -1\n", "server.port"),
        ('[pricing]\nmarkup_bps = "lots"\n', "pricing.markup_bps"),
        ("[server]\nwhatever = 1\n", "server.whatever"),
        ('[payments]\nrefund = "sometimes"\n', "payments.refund"),
        (
            '[[payments.networks]]\nnetwork = "base"\nasset = "0x"\nasset_name = "x"\npay_to = "0x"\n',
            "network",
        ),
        ("not toml = = =", "not valid TOML"),
    ],
)
def test_invalid_config_is_a_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert needle in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_s3_storage_takes_credentials_from_the_aws_variables(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "media"\nregion = "eu-west-3"\n')
    env = {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s3cret", "AWS_SESSION_TOKEN": "tok"}
    s3 = load_settings(path, environ=env).storage.s3
    assert s3 is not None and (s3.bucket, s3.region, s3.access_key_id) == ("media", "eu-west-3", "AKIA1")
    assert s3.secret_access_key is not None and s3.secret_access_key.get_secret_value() == "s3cret"
    assert s3.session_token is not None and s3.direct_uploads
    # The config file wins over the AWS variables.
    path.write_text(
        '[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "m"\n'
        'access_key_id = "A2"\nsecret_access_key = "k2"\n'
    )
    s3 = load_settings(path, environ=env).storage.s3
    assert s3 is not None and s3.access_key_id == "A2"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[storage]\nbackend = "s3"\n', "[storage.s3] section"),
        ('[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "m"\n', "needs credentials"),
        ('[storage]\nbackend = "gcs"\n', "storage.backend"),
    ],
)
def test_incomplete_s3_storage_is_refused(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_settings(path, environ={})


@pytest.mark.parametrize(
    ("configured", "public"),
    [
        ("https://API.Example.com:443/", "https://api.example.com"),
        ("HTTP://studio.example:80/base/", "http://studio.example/base"),
        ("https://studio.example:8443", "https://studio.example:8443"),
        ("http://[::1]:8402", "http://[::1]:8402"),
    ],
)
def test_public_url_is_one_canonical_origin(configured: str, public: str) -> None:
    """Resource, poll and SIGN-IN-WITH-X URLs name the same URL, whatever spelling was configured."""
    settings = Settings().with_overrides(**{"server.public_url": configured})
    assert settings.public_url == public
    siwx = SiwxVerifier(settings.public_url, supported_chain_ids=[31337])
    assert siwx.url_for("/api/jobs/j1") == settings.public_url + "/api/jobs/j1"
