"""Request schemas of the fakes (tests/fakes/schemas/*.json, written from each provider's documentation): load
one, and list what a body breaks (path, message, keyword), so each fake can answer in its provider's error
shape."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMAS = Path(__file__).parent / "schemas"


@dataclass(frozen=True, slots=True)
class Issue:
    path: tuple[str | int, ...]  # where in the body
    message: str
    keyword: str  # the JSON Schema keyword that failed ("required", "enum", "maximum", ...)

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.path)


@functools.cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return loaded


@functools.cache
def _validator(name: str) -> Any:
    return jsonschema_rs.validator_for(schema(name))


def issues(name: str, body: Any) -> list[Issue]:
    """What `body` breaks in schema `name` (empty when it is valid)."""
    found = []
    for error in _validator(name).iter_errors(body):
        keyword = str(error.schema_path[-1]) if error.schema_path else ""
        found.append(Issue(tuple(error.instance_path), error.message, keyword))
    return found
