"""What one fal endpoint or Replicate model accepts, and how the generic mapping of `hosted_io` fits it.

Model hosts publish an input schema per endpoint (fal) or per model version (Replicate). The generic mapping
passes every canonical field on in snake_case, so our defaults (`thinking_level`, `camera_fixed`, ...) would
reach models whose schema does not list them: fal answers 422, Replicate "Additional property ... is not
allowed", after a paid request. A `Published` entry holds the input names of one published schema and what the
generic mapping needs changed for it; the adapters send only those names (plus `options.accepts`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from studio402.backends.hosted_io import InputMap
from studio402.errors import ConfigError

log = logging.getLogger(__name__)
_REF = re.compile(r"@(image|video|audio)(\d+)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Published:
    fields: frozenset[str]  # the input names of the published schema
    rename: Mapping[str, str | None] = field(default_factory=dict)  # canonical field or media slot -> input
    templates: Mapping[str, str] = field(default_factory=dict)  # input -> format string ("{}s")
    values: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)  # input -> {our value: theirs}
    refs: str | None = None  # how the prompt names reference media ("@{kind}{n}"); None: left as written

    def fit(self, base: InputMap) -> InputMap:
        """The provider's generic mapping with this model's names and formats (operator overrides go on
        top)."""
        return replace(
            base,
            rename={**base.rename, **self.rename},
            templates={**base.templates, **self.templates},
        )

    def keep(self, body: Mapping[str, Any], extra: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The inputs this schema lists, with our values translated to its own; the rest is dropped."""
        allowed = self.fields | extra
        dropped = sorted(set(body) - allowed)
        if dropped:
            log.debug("inputs %s are not in the published schema; not sent", dropped)
        return {name: self._value(name, value) for name, value in body.items() if name in allowed}

    def _value(self, name: str, value: Any) -> Any:
        table = self.values.get(name, {})
        if isinstance(value, str | int) and value in table:
            value = table[value]
        if name == "prompt" and self.refs and isinstance(value, str):
            refs = self.refs
            value = _REF.sub(lambda m: refs.format(kind=m.group(1).capitalize(), n=m.group(2)), value)
        return value


def accepts_option(options: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """`options.accepts`: endpoint or model -> input names the operator vouches for (its published schema),
    for models we do not know, or names a schema gained after this release."""
    table = options.get("accepts", {})
    if not isinstance(table, Mapping):
        raise ConfigError("options.accepts must be a table of endpoint or model -> list of input names")
    out: dict[str, frozenset[str]] = {}
    for target, names in table.items():
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"options.accepts.{target} must be a list of input names")
        out[str(target).strip("/")] = frozenset(names)
    return out


def seedance_refusal(params: Mapping[str, Any], host: str) -> str | None:
    """What the Seedance 2.0 schemas on fal and Replicate refuse that our catalog allows (`host` names them,
    e.g. "fal's Seedance endpoints")."""
    if not params.get("prompt"):  # optional in i2v, required by the published schemas
        return f"{host} need a prompt"
    if params.get("resolution"):
        return f"{host} take no exact pixel size (use aspectRatio and outputResolution)"
    if params.get("upscaleResolution"):
        return f"{host} have no 4K upscale"
    return None
