"""Secrets never leave the process: URLs and configured secret values are scrubbed from what we send out.

RPC and upstream URLs often carry a provider key (`https://base-mainnet.g.alchemy.com/v2/<key>`,
`https://user:pass@host/?apikey=...`). `redact_url` keeps what an operator needs to recognise the endpoint
(scheme, host, port, the shape of the path) and drops the rest. `Scrubber` applies that to every URL in a
text and masks the secret values configured in `Settings`; the problem handlers run every document through
it, and `RedactingFilter` does the same to log records.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, SecretStr

MASK = "***"
MIN_SECRET_LEN = 6  # shorter values would mask ordinary words; their URLs are redacted anyway
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_TRAILING = ".,;:!?)]}"  # punctuation after a URL in prose, not part of it
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_\-]+$")
_HEXISH = re.compile(r"^[0-9a-fA-F\-]+$")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
_KEY_MARKERS = frozenset({"v2", "v3", "key", "apikey", "api-key", "token"})  # Alchemy /v2/, Infura /v3/
_SECRET_OPTION = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)


def looks_like_key(segment: str, previous: str = "") -> bool:
    """A path segment that is probably a credential: a long hex string or UUID, a long run mixing letters
    and digits, or a long token right after a key marker (`/v2/<key>`). Model names such as
    `kling-v2-1-master` are words joined by dashes and stay readable."""
    if not _TOKEN_CHARS.match(segment):
        return False
    if _HEXISH.match(segment) and len(segment.replace("-", "")) >= 16:
        return True
    for run in _ALNUM_RUN.findall(segment):
        if len(run) >= 16 and not run.isalpha() and not run.isdigit():
            return True
    return previous.lower() in _KEY_MARKERS and len(segment) >= 20


def redact_url(url: str) -> str:
    """`scheme://host[:port]/path` without userinfo, query or fragment, key-like path segments masked."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:
        return MASK if "@" in url or "?" in url else url
    host = parts.netloc.rpartition("@")[2]
    segments = parts.path.split("/")
    masked = [
        MASK if looks_like_key(seg, segments[i - 1] if i else "") else seg for i, seg in enumerate(segments)
    ]
    return f"{parts.scheme}://{host}{'/'.join(masked)}"


def url_secrets(url: str) -> set[str]:
    """The parts of a configured URL that are secret: userinfo, query values, key-like path segments."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return {url}
    found: set[str] = set()
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        found.update({userinfo, userinfo.partition(":")[2]})
    if parts.query:
        found.add(parts.query)
        found.update(value for _, value in parse_qsl(parts.query, keep_blank_values=True))
    segments = parts.path.split("/")
    found.update(seg for i, seg in enumerate(segments) if i and looks_like_key(seg, segments[i - 1]))
    return found


def settings_secrets(settings: BaseModel) -> set[str]:
    """Every secret configured in `settings`: SecretStr values, secret-looking options and the secret parts
    of every `*url` setting (walked generically, so a new credential setting is covered too)."""
    found: set[str] = set()
    _collect(settings, "", found)
    return found


def _collect(value: object, name: str, found: set[str], *, in_options: bool = False) -> None:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        found.update({secret, secret.removeprefix("0x")})
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            _collect(getattr(value, field), field, found)
    elif isinstance(value, dict):  # free-form adapter options: judged by their key names
        for key, item in value.items():
            _collect(item, str(key), found, in_options=True)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, name, found, in_options=in_options)
    elif isinstance(value, str):
        if name.lower().endswith("url"):
            found.update(url_secrets(value))
        elif in_options and _SECRET_OPTION.search(name):
            found.add(value)


class Scrubber:
    """Masks configured secret values and redacts every URL in a text; applied to all outbound text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        kept = sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, kept)), re.IGNORECASE) if kept else None

    @classmethod
    def from_settings(cls, settings: BaseModel) -> Scrubber:
        return cls(settings_secrets(settings))

    def scrub(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        return _URL.sub(_redact_match, text)

    def scrub_value(self, value: object) -> object:
        """A JSON-like value with every string in it scrubbed (dict keys are ours and stay as they are)."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub_value(v) for v in value]
        return value


def safe_repr(exc: BaseException) -> str:
    """An exception for an error message: some (aiohttp's InvalidURL, httpx's status errors) repeat the
    URL they were given, key and all."""
    return _URLS_ONLY.scrub(repr(exc))


def _redact_match(match: re.Match[str]) -> str:
    url = match.group(0)
    stripped = url.rstrip(_TRAILING)
    return redact_url(stripped) + url[len(stripped) :]


_URLS_ONLY = Scrubber()
_EXC_FORMATTER = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Scrubs a log record's message, arguments and traceback text in place; never drops a record.
    Arguments are scrubbed one by one so formatters that unpack them (uvicorn's access log) still work."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._arg(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXC_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrubber.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrubber.scrub(record.stack_info)
        return True

    def _arg(self, arg: object) -> object:
        if isinstance(arg, int | float | bool) or arg is None:
            return arg
        text = str(arg)
        if text.startswith("/") and "?" in text:  # a request path (the access log): its query may be a
            return text.split("?", 1)[0] + "?" + MASK  # capability (a signed blob URL's e= and s=)
        clean = self.scrubber.scrub(text)
        return arg if clean == text else clean


def install_log_redaction(
    scrubber: Scrubber, loggers: Iterable[str] = ("", "uvicorn", "uvicorn.access")
) -> None:
    """Put one RedactingFilter on every handler of `loggers` (a handler filter sees propagated records
    too, a logger filter would not). Installing again replaces the scrubber instead of stacking filters."""
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            existing = [f for f in handler.filters if isinstance(f, RedactingFilter)]
            if existing:
                existing[0].scrubber = scrubber
            else:
                handler.addFilter(RedactingFilter(scrubber))
