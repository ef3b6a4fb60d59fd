"""The OData query text the Graph source sends: filters and property lists.

Kept apart from the I/O so the quoting rules can be tested on their own.
"""

from __future__ import annotations

from collections.abc import Iterable

GROUP_SELECT: tuple[str, ...] = ("id", "displayName")
USER_SELECT: tuple[str, ...] = (
    "id",
    "userPrincipalName",
    "givenName",
    "surname",
    "jobTitle",
    "accountEnabled",
)

# Graph caps the number of values in one `in (...)` list; 15 stays inside every documented limit.
NAMES_PER_FILTER = 15
MAX_PAGE_SIZE = 999


def odata_string(value: str) -> str:
    """An OData string literal: single quotes, with embedded quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def prefix_filter(prefix: str) -> str:
    """Groups whose displayName starts with `prefix` (Graph compares case-insensitively)."""
    return f"startswith(displayName,{odata_string(prefix)})"


def name_filters(names: Iterable[str], per_filter: int = NAMES_PER_FILTER) -> list[str]:
    """`displayName in (...)` filters covering `names`, each within Graph's value limit."""
    unique = list(dict.fromkeys(names))
    return [
        "displayName in (" + ",".join(odata_string(n) for n in unique[i : i + per_filter]) + ")"
        for i in range(0, len(unique), per_filter)
    ]
