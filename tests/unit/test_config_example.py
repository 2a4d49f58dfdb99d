"""`studio402 init` writes every key of the settings model, and the file it writes means the defaults."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from studio402.cli.main import app
from studio402.config import Settings, load_settings
from studio402.config_example import EXAMPLES, NOTES, model_kind

_HEADER = re.compile(r"\[\[?[A-Za-z0-9_.\"-]+\]\]?")
_KEY = re.compile(r"[A-Za-z0-9_\"-]+ = .+")


def _written(tmp_path: Path) -> str:
    path = tmp_path / "studio402.toml"
    result = CliRunner().invoke(app, ["init", str(path)])
    assert result.exit_code == 0, result.output
    return path.read_text()


def _uncommented(text: str) -> str:
    """The file with every commented-out table header and `key = value` line turned on (prose stays)."""
    out = []
    for line in text.splitlines():
        body = line[2:] if line.startswith("# ") else None
        if body is not None and (_HEADER.fullmatch(body) or _is_key_value(body)):
            line = body
        out.append(line)
    return "\n".join(out)


def _is_key_value(line: str) -> bool:
    if not _KEY.fullmatch(line):
        return False
    try:
        tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return False
    return True


def _missing_keys(model: type[BaseModel], data: Any, path: str) -> list[str]:
    """Dotted paths of the fields of `model` (recursively) that `data` does not spell."""
    if not isinstance(data, dict):
        return [path or "<root>"]
    missing: list[str] = []
    for name, field in model.model_fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in data:
            missing.append(sub)
            continue
        kind = model_kind(field.annotation)
        if kind is None:
            continue
        how, sub_model = kind
        if how in ("table", "optional"):
            missing += _missing_keys(sub_model, data[name], sub)
        elif how == "array":
            entries = data[name]
            if not isinstance(entries, list) or not entries:
                missing.append(f"{sub}[0]")
            for entry in entries if isinstance(entries, list) else ():
                missing += _missing_keys(sub_model, entry, f"{sub}[]")
        else:
            entries = data[name]
            if not isinstance(entries, dict) or not entries:
                missing.append(f"{sub}.<name>")
            for entry_name, entry in entries.items() if isinstance(entries, dict) else ():
                missing += _missing_keys(sub_model, entry, f"{sub}.{entry_name}")
    return missing


def _model_paths(model: type[BaseModel], path: str = "") -> set[str]:
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        sub = f"{path}.{name}" if path else name
        paths.add(sub)
        kind = model_kind(field.annotation)
        if kind is not None:
            paths |= _model_paths(kind[1], sub)
    return paths


def test_init_writes_a_file_that_loads_back_as_the_defaults(tmp_path: Path) -> None:
    text = _written(tmp_path)
    assert Settings.model_validate(tomllib.loads(text)) == Settings()
    assert load_settings(tmp_path / "studio402.toml", environ={}) == Settings()


def test_init_writes_every_key_of_the_settings_model(tmp_path: Path) -> None:
    # Commented examples count: turned on, every field of every section (one entry of each list and named
    # table, the optional sections) must be there. A new setting without a default needs an EXAMPLES entry.
    text = _uncommented(_written(tmp_path))
    assert _missing_keys(Settings, tomllib.loads(text), "") == []
    for header in ("[backends]", "[media]", "[storage.s3]", "[payments.tempo]", "[[payments.networks]]"):
        assert f"\n{header}\n" in text


def test_the_examples_are_valid_settings(tmp_path: Path) -> None:
    # With every example turned on the file still validates: the examples are values the model accepts.
    settings = Settings.model_validate(tomllib.loads(_uncommented(_written(tmp_path))))
    assert settings.storage.s3 is not None and settings.storage.s3.session_token is not None
    assert settings.payments.tempo is not None
    [network] = settings.payments.networks
    assert network.network == "eip155:8453"
    assert settings.backends.providers["fal"].type == "fal"
    assert settings.backends.routes == {"nano-banana": ("gemini", "fal")}


def test_notes_and_examples_name_existing_settings() -> None:
    paths = _model_paths(Settings)
    assert sorted(set(NOTES) - paths) == []
    assert sorted(set(EXAMPLES) - paths) == []


@pytest.mark.parametrize("line", ["# 0 = automine: every transaction", "# Route key -> chain"])
def test_prose_comments_stay_comments(line: str) -> None:
    assert _uncommented(line) == line


def test_a_key_the_file_lacks_is_reported() -> None:
    data = tomllib.loads('[server]\nhost = "x"\n[[payments.networks]]\nnetwork = "eip155:1"\n')
    missing = _missing_keys(Settings, data, "")
    assert "server.port" in missing and "payments.networks[].asset" in missing
    assert "storage" in missing and "backends" in missing
