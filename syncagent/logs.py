"""Logging setup: text or JSON lines on stderr, known secrets masked as a last defence."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

_MASK = "***"
# Shorter values would mask ordinary words; no real secret is that short.
_MIN_SECRET_LENGTH = 6


class Redactor:
    """Replaces every known secret value in a text with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        found = {s.strip() for s in secrets if s and len(s.strip()) >= _MIN_SECRET_LENGTH}
        self._secrets = sorted(found, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text


class RedactingFilter(logging.Filter):
    """Masks known secrets in a record's message, traceback and stack.

    Code never logs secrets on purpose; this catches the accident (say, a library that
    echoes a request header) before it reaches a journal.
    """

    def __init__(self, secrets: Iterable[str] | Redactor) -> None:
        super().__init__()
        self._redact = secrets if isinstance(secrets, Redactor) else Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._redact:
            return True
        message = record.getMessage()
        masked = self._redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = self._redact(text), None
        elif record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


# The secrets of the last `configure`, for text that leaves the program other than by logging.
_redactor = Redactor()


def redact(text: str) -> str:
    """`text` with every secret given to `configure` masked: for the CLI's own stderr lines."""
    return _redactor(text)


def configure(
    level: str = "info",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    *,
    libraries: bool | None = None,
) -> None:
    """Send logs to stderr at `level` for syncagent's own loggers.

    Third-party loggers (httpx request lines, httpcore, azure-identity) stay at warning
    unless `libraries` is true; when it is None they follow a debug `level`.
    """
    global _redactor  # noqa: PLW0603 (one process, one logging setup)
    _redactor = Redactor(secrets)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(_redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    if libraries is None:
        libraries = level.lower() == "debug"
    root.setLevel(logging.DEBUG if libraries else logging.WARNING)
    logging.getLogger("syncagent").setLevel(level.upper())
