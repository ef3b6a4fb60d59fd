"""How an error message may repeat a value: quoted, on one line, short.

A ConfigError is one line that starts with the key path; whatever it quotes from the file
must not break that line or push the key out of sight.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


def quote(text: str) -> str:
    """Quoted and escaped so that it cannot break the one-line message."""
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted if quoted.isprintable() else json.dumps(text)


def show(value: object) -> str:
    """A value as an error message may repeat it: quoted, on one line, short."""
    if isinstance(value, str):
        return quote(value if len(value) <= 60 else value[:57] + "...")
    return repr(value)


def show_path(path: Path | str) -> str:
    text = str(path)
    return text if text.isprintable() else quote(text)


def toml_type(value: object) -> str:
    """What a TOML value is, in TOML's words, so a message can say what was found."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return "a date/time"
