"""Pydantic's validation errors, reworded as ConfigErrors that name the key, never the value."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from types import MappingProxyType

from pydantic_core import ErrorDetails

from syncagent.config.display import quote, show, toml_type
from syncagent.config.schema import SECTIONS
from syncagent.errors import ConfigError

_TYPE_WORDS = MappingProxyType(
    {
        "string_type": "a string",
        "int_type": "an integer",
        "float_type": "a number",
        "bool_type": "true or false",
        "list_type": "an array",
        "tuple_type": "an array",
        "model_type": "a table",
        "model_attributes_type": "a table",
        "dict_type": "a table",
    }
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else quote(part)
            text += f".{name}" if text else name
    return text


def _unknown_key(loc: tuple[int | str, ...], value: object) -> str:
    if len(loc) == 1:
        known: tuple[str, ...] = tuple(SECTIONS)
        what = "unknown section" if isinstance(value, Mapping) else "unknown key"
    else:
        section = SECTIONS.get(str(loc[0]))
        known = tuple(section.model_fields) if section else ()
        what = "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    return f"{what} (did you mean {show(close[0])}?)" if close else what


def describe(error: ErrorDetails) -> str:
    """Our wording for one pydantic error; the input is never repeated."""
    kind = error["type"]
    if kind == "syncagent":
        return str(error.get("ctx", {})["problem"])
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return _unknown_key(error["loc"], error["input"])
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]} (got {toml_type(error['input'])})"
    message = error["msg"]
    return message[:1].lower() + message[1:]


def combine(problems: list[ConfigError]) -> ConfigError:
    """One error for many: the first one's key leads, the rest follow on the same line."""
    if len(problems) == 1:
        return problems[0]
    first, *rest = problems
    lead = f"{first.problem} ({first.remedy})" if first.remedy else first.problem
    return ConfigError(first.key, "; ".join([lead, *(str(problem) for problem in rest)]))
