"""Checks on single values, shared by the file schema and the resolved models.

Each check rejects a value through `fail`, in our own words; pydantic adds the key path,
and `messages` turns the whole into a ConfigError.
"""

from __future__ import annotations

import re
from typing import Annotated, NoReturn

from pydantic import AfterValidator, BeforeValidator, StrictFloat, StrictInt
from pydantic_core import PydanticCustomError

from syncagent.config.display import show, toml_type


def fail(problem: str) -> NoReturn:
    """Reject a value with our own wording (pydantic keeps the key path)."""
    raise PydanticCustomError("syncagent", "{problem}", {"problem": problem})


def _int_range(low: int, high: int | None = None) -> AfterValidator:
    def check(value: int) -> int:
        if high is None and value < low:
            fail(f"must be {low} or more (got {value})")
        if high is not None and not low <= value <= high:
            fail(f"must be between {low} and {high} (got {value})")
        return value

    return AfterValidator(check)


def _check_timeout(value: float) -> float:
    # Written so that NaN fails too.
    if not 0 < value <= 600:
        fail(f"must be more than 0 and at most 600 seconds (got {value:g})")
    return value


Timeout = Annotated[StrictFloat, AfterValidator(_check_timeout)]
Retries = Annotated[StrictInt, _int_range(0, 10)]
PageSize = Annotated[StrictInt, _int_range(1, 999)]
MembersPerPatch = Annotated[StrictInt, _int_range(1, 1000)]
Concurrency = Annotated[StrictInt, _int_range(1, 16)]
MaxDeletions = Annotated[StrictInt, _int_range(0)]


def one_of(choices: tuple[str, ...]) -> BeforeValidator:
    """Accept a choice in any letter case; name every choice when the value is none of them."""

    def pick(value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        got = show(value) if isinstance(value, str) else toml_type(value)
        fail(f"must be one of {', '.join(choices)} (got {got})")

    return BeforeValidator(pick)


_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_DOMAIN = re.compile(r"(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", re.I)
_MULTI_TENANT_ALIASES = frozenset({"common", "organizations", "consumers"})


# Identifier checks do not repeat the value: a secret pasted into the wrong key must not
# end up in a log.
def check_tenant_id(value: str) -> str:
    if value.lower() in _MULTI_TENANT_ALIASES:
        fail(f'must name your own tenant, not the multi-tenant alias "{value.lower()}"')
    if not (_GUID.fullmatch(value) or _DOMAIN.fullmatch(value)):
        fail(
            "must be the directory (tenant) ID, a GUID, "
            "or a verified domain such as contoso.onmicrosoft.com"
        )
    return value


def check_client_id(value: str) -> str:
    if not _GUID.fullmatch(value):
        fail(
            "must be the application (client) ID, "
            "a GUID such as 00000000-0000-0000-0000-000000000000"
        )
    return value


def check_path(value: str) -> str:
    if not value.strip():
        fail("must not be empty")
    if "\x00" in value:
        fail("must not contain a NUL character")
    return value


def check_name(value: str) -> str:
    if not value.strip():
        fail("must not be empty")
    if value != value.strip():
        fail(f"must not start or end with whitespace (got {show(value)})")
    return value


def check_groups(names: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        fail("must list at least one group (or use source.group_prefix instead)")
    seen: set[str] = set()
    for name in names:
        # Graph compares display names without regard to case.
        if name.casefold() in seen:
            fail(f"lists {show(name)} twice")
        seen.add(name.casefold())
    return names
