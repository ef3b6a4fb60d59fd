"""Checks on the config's URLs: Graph's base URL, SourceMagnet's Tenant URL, the state database.

None of these checks repeats the URL itself: it may carry a password or a token.
"""

from __future__ import annotations

import ipaddress
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from syncagent.config.checks import fail
from syncagent.config.display import show, toml_type
from syncagent.scim.requests import Dialect

# Entra's feature flag on the Tenant URL that switches to RFC-compliant PATCH requests.
COMPLIANT_FLAG = "aadOptscim062020"


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: the only hosts plain http may go to."""
    name = host.strip().rstrip(".").lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


# URL checks never repeat the URL itself: it may carry a password or a token.
def _split_http_url(value: object) -> SplitResult:
    if not isinstance(value, str):
        fail(f"must be a string (got {toml_type(value)})")
    if any(char.isspace() for char in value):
        fail("must not contain whitespace")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        fail("is not a valid URL (check the host and port)")
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        fail("must be an absolute URL starting with https://")
    if "@" in parts.netloc:
        fail("must not contain a user name or password (credentials are configured separately)")
    host = parts.hostname
    if not host:
        fail("must name a host")
    if parts.scheme.lower() == "http" and not is_loopback_host(host):
        fail(f"plain http:// is only allowed to a loopback host (got host {show(host)})")
    if parts.fragment:
        fail("must not have a #fragment")
    return parts


def _join_url(parts: SplitResult) -> str:
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path.rstrip("/"), "", ""))


def check_graph_url(value: str) -> str:
    parts = _split_http_url(value)
    if parts.query:
        fail("must not have a query string")
    if not parts.path.strip("/"):
        fail("must include the API version, e.g. https://graph.microsoft.com/v1.0")
    return _join_url(parts)


class ScimUrl(NamedTuple):
    base_url: str
    dialect: Dialect


def parse_scim_url(value: object) -> ScimUrl:
    """Split Entra's dialect flag off the Tenant URL, as Entra itself reads it."""
    parts = _split_http_url(value)
    dialect = Dialect.DEFAULT
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        # Entra looks only for the flag's presence; any value is ignored.
        if name.lower() == COMPLIANT_FLAG.lower():
            dialect = Dialect.COMPLIANT
        else:
            fail(f"unsupported query parameter {show(name)} (only {COMPLIANT_FLAG} is understood)")
    return ScimUrl(_join_url(parts), dialect)


# SQLAlchemy driver names we accept, and what each becomes.
_STATE_DRIVERS = MappingProxyType(
    {
        "sqlite": "sqlite",
        "sqlite+pysqlite": "sqlite+pysqlite",
        "postgresql": "postgresql+psycopg",
        "postgresql+psycopg": "postgresql+psycopg",
    }
)


def parse_state_url(value: str) -> URL:
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        # Neither the URL nor SQLAlchemy's message is repeated: both may show the password.
        fail(
            "is not a valid SQLAlchemy URL (e.g. sqlite:////var/lib/syncagent/state.db "
            "or postgresql+psycopg://syncagent@db.example.com/syncagent)"
        )
    driver = _STATE_DRIVERS.get(url.drivername)
    if driver is None:
        fail(
            f"unsupported database {show(url.drivername)} (use sqlite:/// or postgresql+psycopg://)"
        )
    return url.set(drivername=driver)


def check_state_url(value: str) -> str:
    url = parse_state_url(value)
    if url.drivername == make_url(value).drivername:
        return value  # as written: re-rendering would percent-encode parts of it
    return url.render_as_string(hide_password=False)
