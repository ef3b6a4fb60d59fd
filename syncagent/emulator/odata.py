"""The OData side of a request: its query options, read and refused the way Graph does.

Also the @odata.context URL an answer starts with. $filter has its own module (`filters`),
and $skiptoken belongs to `paging`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from syncagent.emulator.responses import GraphError, unsupported

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999
_ODATA_OPTIONS = frozenset(
    {
        "$filter",
        "$select",
        "$top",
        "$skip",
        "$skiptoken",
        "$count",
        "$orderby",
        "$search",
        "$expand",
        "$format",
        "$deltatoken",
        "$levels",
        "$apply",
        "$compute",
        "$index",
        "$schemaversion",
    }
)


@dataclass(frozen=True, slots=True)
class Call:
    """A request after parsing, handed to a route handler."""

    raw_path: str  # as sent, after the version segment; used to build paging links
    params: Mapping[str, str]  # OData option names lower-cased ("$filter"), values decoded
    headers: Mapping[str, str]
    captures: Mapping[str, str]

    @property
    def eventual(self) -> bool:
        return self.headers.get("consistencylevel", "").strip().lower() == "eventual"


def parse_params(raw_query: str) -> dict[str, str]:
    """Decode a query string; OData option names are lower-cased ("$Top" is "$top")."""
    options: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        key = name.strip().lower() if name.strip().startswith("$") else name
        if key in options:
            raise GraphError(
                400,
                f"Query option '{key}' was specified more than once, but it must be specified "
                "at most once.",
            )
        options[key] = value
    return options


def check_options(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    for name in params:
        if not name.startswith("$"):
            continue  # Graph ignores custom (non-$) query options
        if name not in _ODATA_OPTIONS:
            raise GraphError(
                400,
                f"Unrecognized query argument specified: '{name[1:]}'.",
                code="Request_BadRequest",
            )
        if name not in allowed:
            raise unsupported(f"The query option '{name}' is not supported on this resource.")


def page_size(params: Mapping[str, str]) -> int:
    raw = params.get("$top")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw.strip())
    except ValueError:
        raise GraphError(
            400, f"Invalid value '{raw}' for query option '$top'.", code="Request_BadRequest"
        ) from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise unsupported(
            f"Invalid page size specified: '{size}'. "
            f"Must be between 1 and {MAX_PAGE_SIZE} inclusive."
        )
    return size


def wants_count(call: Call) -> bool:
    raw = call.params.get("$count")
    if raw is None or raw.strip().lower() == "false":
        return False
    if raw.strip().lower() != "true":
        raise GraphError(400, f"Invalid value '{raw}' for query option '$count'.")
    if not call.eventual:
        raise GraphError(400, "$count is not currently supported.", code="Request_BadRequest")
    return True


def parse_select(
    params: Mapping[str, str], known: Sequence[Mapping[str, Any]], type_name: str
) -> tuple[str, ...] | None:
    """Canonical property names from $select (case-insensitive), or None when absent."""
    raw = params.get("$select")
    if raw is None:
        return None
    by_folded = {name.lower(): name for props in known for name in props}
    chosen: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        if name == "*":
            return tuple(dict.fromkeys(n for props in known for n in props))
        canonical = by_folded.get(name.lower())
        if canonical is None:
            raise GraphError(
                400,
                "Parsing OData Select and Expand failed: Could not find a property named "
                f"'{name}' on type '{type_name}'.",
            )
        if canonical not in chosen:
            chosen.append(canonical)
    return tuple(chosen)


def context_url(
    base_url: str, entity_set: str, select: tuple[str, ...] | None, suffix: str = ""
) -> str:
    selection = f"({','.join(select)})" if select else ""
    return f"{base_url}/$metadata#{entity_set}{selection}{suffix}"
