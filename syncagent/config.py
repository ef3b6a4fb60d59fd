"""syncagent's configuration: one TOML file, checked once, when it is loaded.

Two layers. The file schema (the private `_*File` models) mirrors the TOML exactly and checks
each value on its own: types, ranges, choices, URLs. Resolution then applies the rules that
need several keys, the environment or the filesystem (what each credential kind needs, reading
secret files) and builds the frozen models the rest of the program uses. Every problem becomes
a ConfigError whose text is one line starting with the key path, so the operator knows which
line of the file to fix; when several are wrong, all of them are reported, joined by "; ".

Secrets live only in SecretStr: no repr, dump or error message shows them, and no error
message repeats a value that might hold one (URLs, unknown keys, secret file contents).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, NamedTuple, NoReturn, TypeVar
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    SecretStr,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_serializer,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from syncagent.errors import ConfigError
from syncagent.scim.requests import Dialect

log = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path("/etc/syncagent/syncagent.toml")
DEFAULT_STATE_URL = "sqlite:////var/lib/syncagent/state.db"
DEFAULT_GROUP_PREFIX = "SourceMagnet"

# Names of environment variables, not secrets.
CONFIG_ENV = "SYNCAGENT_CONFIG"
GRAPH_SECRET_ENV = "SYNCAGENT_GRAPH_CLIENT_SECRET"  # noqa: S105
SCIM_SECRET_ENV = "SYNCAGENT_SCIM_SECRET"  # noqa: S105
FEDERATED_TOKEN_ENV = "AZURE_FEDERATED_TOKEN_FILE"  # noqa: S105
CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"  # set by systemd's LoadCredential=

# Entra's feature flag on the Tenant URL that switches to RFC-compliant PATCH requests.
COMPLIANT_FLAG = "aadOptscim062020"

# Files the config names are small; anything bigger is almost certainly the wrong file.
_MAX_FILE_BYTES = 1024 * 1024


class Cloud(StrEnum):
    """The Microsoft cloud the tenant lives in."""

    GLOBAL = "global"
    USGOV = "usgov"
    USGOV_DOD = "usgov-dod"
    CHINA = "china"


class CredentialKind(StrEnum):
    """How the agent proves its identity to Microsoft Graph."""

    CLIENT_SECRET = "client_secret"  # noqa: S105 (a kind, not a secret)
    CERTIFICATE = "certificate"
    MANAGED_IDENTITY = "managed_identity"
    WORKLOAD_IDENTITY = "workload_identity"
    AZURE_CLI = "azure_cli"
    TOKEN = "token"  # noqa: S105 (a kind, not a token)


LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]


@dataclass(frozen=True, slots=True)
class CloudEndpoints:
    """Where a cloud's tokens come from, where its Graph lives, and the scope to ask for."""

    authority: str  # host name, as azure-identity's `authority=` takes it
    graph_root: str
    scope: str

    @property
    def base_url(self) -> str:
        return f"{self.graph_root}/v1.0"


CLOUD_ENDPOINTS: Mapping[Cloud, CloudEndpoints] = MappingProxyType(
    {
        Cloud.GLOBAL: CloudEndpoints(
            "login.microsoftonline.com",
            "https://graph.microsoft.com",
            "https://graph.microsoft.com/.default",
        ),
        Cloud.USGOV: CloudEndpoints(
            "login.microsoftonline.us",
            "https://graph.microsoft.us",
            "https://graph.microsoft.us/.default",
        ),
        Cloud.USGOV_DOD: CloudEndpoints(
            "login.microsoftonline.us",
            "https://dod-graph.microsoft.us",
            "https://dod-graph.microsoft.us/.default",
        ),
        Cloud.CHINA: CloudEndpoints(
            "login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn/.default",
        ),
    }
)


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


# --- value checks, shared by the file schema and the resolved models ---------------------


def _fail(problem: str) -> NoReturn:
    """Reject a value with our own wording (pydantic keeps the key path)."""
    raise PydanticCustomError("syncagent", "{problem}", {"problem": problem})


def _quote(text: str) -> str:
    """Quoted and escaped so that it cannot break the one-line message."""
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted if quoted.isprintable() else json.dumps(text)


def _show(value: object) -> str:
    """A value as an error message may repeat it: quoted, on one line, short."""
    if isinstance(value, str):
        return _quote(value if len(value) <= 60 else value[:57] + "...")
    return repr(value)


def _show_path(path: Path | str) -> str:
    text = str(path)
    return text if text.isprintable() else _quote(text)


def _int_range(low: int, high: int | None = None) -> AfterValidator:
    def check(value: int) -> int:
        if high is None and value < low:
            _fail(f"must be {low} or more (got {value})")
        if high is not None and not low <= value <= high:
            _fail(f"must be between {low} and {high} (got {value})")
        return value

    return AfterValidator(check)


def _check_timeout(value: float) -> float:
    # Written so that NaN fails too.
    if not 0 < value <= 600:
        _fail(f"must be more than 0 and at most 600 seconds (got {value:g})")
    return value


Timeout = Annotated[StrictFloat, AfterValidator(_check_timeout)]
Retries = Annotated[StrictInt, _int_range(0, 10)]
PageSize = Annotated[StrictInt, _int_range(1, 999)]
MembersPerPatch = Annotated[StrictInt, _int_range(1, 1000)]
MaxDeletions = Annotated[StrictInt, _int_range(0)]


def _one_of(choices: tuple[str, ...]) -> BeforeValidator:
    """Accept a choice in any letter case; name every choice when the value is none of them."""

    def pick(value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        got = _show(value) if isinstance(value, str) else _toml_type(value)
        _fail(f"must be one of {', '.join(choices)} (got {got})")

    return BeforeValidator(pick)


_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_DOMAIN = re.compile(r"(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", re.I)
_MULTI_TENANT_ALIASES = frozenset({"common", "organizations", "consumers"})


# Identifier checks do not repeat the value: a secret pasted into the wrong key must not
# end up in a log.
def _check_tenant_id(value: str) -> str:
    if value.lower() in _MULTI_TENANT_ALIASES:
        _fail(f'must name your own tenant, not the multi-tenant alias "{value.lower()}"')
    if not (_GUID.fullmatch(value) or _DOMAIN.fullmatch(value)):
        _fail(
            "must be the directory (tenant) ID, a GUID, "
            "or a verified domain such as contoso.onmicrosoft.com"
        )
    return value


def _check_client_id(value: str) -> str:
    if not _GUID.fullmatch(value):
        _fail(
            "must be the application (client) ID, "
            "a GUID such as 00000000-0000-0000-0000-000000000000"
        )
    return value


def _check_path(value: str) -> str:
    if not value.strip():
        _fail("must not be empty")
    if "\x00" in value:
        _fail("must not contain a NUL character")
    return value


def _check_name(value: str) -> str:
    if not value.strip():
        _fail("must not be empty")
    if value != value.strip():
        _fail(f"must not start or end with whitespace (got {_show(value)})")
    return value


def _check_groups(names: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        _fail("must list at least one group (or use source.group_prefix instead)")
    seen: set[str] = set()
    for name in names:
        # Graph compares display names without regard to case.
        if name.casefold() in seen:
            _fail(f"lists {_show(name)} twice")
        seen.add(name.casefold())
    return names


# URL checks never repeat the URL itself: it may carry a password or a token.
def _split_http_url(value: object) -> SplitResult:
    if not isinstance(value, str):
        _fail(f"must be a string (got {_toml_type(value)})")
    if any(char.isspace() for char in value):
        _fail("must not contain whitespace")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        _fail("is not a valid URL (check the host and port)")
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        _fail("must be an absolute URL starting with https://")
    if "@" in parts.netloc:
        _fail("must not contain a user name or password (credentials are configured separately)")
    host = parts.hostname
    if not host:
        _fail("must name a host")
    if parts.scheme.lower() == "http" and not is_loopback_host(host):
        _fail(f"plain http:// is only allowed to a loopback host (got host {_show(host)})")
    if parts.fragment:
        _fail("must not have a #fragment")
    return parts


def _join_url(parts: SplitResult) -> str:
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path.rstrip("/"), "", ""))


def _check_graph_url(value: str) -> str:
    parts = _split_http_url(value)
    if parts.query:
        _fail("must not have a query string")
    if not parts.path.strip("/"):
        _fail("must include the API version, e.g. https://graph.microsoft.com/v1.0")
    return _join_url(parts)


class _ScimUrl(NamedTuple):
    base_url: str
    dialect: Dialect


def _parse_scim_url(value: object) -> _ScimUrl:
    """Split Entra's dialect flag off the Tenant URL, as Entra itself reads it."""
    parts = _split_http_url(value)
    dialect = Dialect.DEFAULT
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        # Entra looks only for the flag's presence; any value is ignored.
        if name.lower() == COMPLIANT_FLAG.lower():
            dialect = Dialect.COMPLIANT
        else:
            _fail(
                f"unsupported query parameter {_show(name)} (only {COMPLIANT_FLAG} is understood)"
            )
    return _ScimUrl(_join_url(parts), dialect)


# SQLAlchemy driver names we accept, and what each becomes.
_STATE_DRIVERS = MappingProxyType(
    {
        "sqlite": "sqlite",
        "sqlite+pysqlite": "sqlite+pysqlite",
        "postgresql": "postgresql+psycopg",
        "postgresql+psycopg": "postgresql+psycopg",
    }
)


def _parse_state_url(value: str) -> URL:
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        # Neither the URL nor SQLAlchemy's message is repeated: both may show the password.
        _fail(
            "is not a valid SQLAlchemy URL (e.g. sqlite:////var/lib/syncagent/state.db "
            "or postgresql+psycopg://syncagent@db.example.com/syncagent)"
        )
    driver = _STATE_DRIVERS.get(url.drivername)
    if driver is None:
        _fail(
            f"unsupported database {_show(url.drivername)} "
            "(use sqlite:/// or postgresql+psycopg://)"
        )
    return url.set(drivername=driver)


def _check_state_url(value: str) -> str:
    url = _parse_state_url(value)
    if url.drivername == make_url(value).drivername:
        return value  # as written: re-rendering would percent-encode parts of it
    return url.render_as_string(hide_password=False)


# --- the models the program uses ----------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GraphConfig(_Frozen):
    """How to reach and authenticate to Microsoft Graph.

    `authority`, `scope` and `base_url` default to the cloud's endpoints; a `base_url`
    override (an emulator, say) keeps the cloud's authority and scope.
    """

    tenant_id: str | None = None
    client_id: str | None = None
    credential: CredentialKind = CredentialKind.CLIENT_SECRET
    client_secret: SecretStr | None = None
    certificate_path: Path | None = None
    certificate_password: SecretStr | None = None
    token_file: Path | None = None
    federated_token_file: Path | None = None
    cloud: Cloud = Cloud.GLOBAL
    base_url: str = CLOUD_ENDPOINTS[Cloud.GLOBAL].base_url
    authority: str = CLOUD_ENDPOINTS[Cloud.GLOBAL].authority
    scope: str = CLOUD_ENDPOINTS[Cloud.GLOBAL].scope
    timeout_seconds: Timeout = 30.0
    max_retries: Retries = 3
    page_size: PageSize = 999

    @model_validator(mode="before")
    @classmethod
    def _cloud_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        try:
            endpoints = CLOUD_ENDPOINTS[Cloud(data.get("cloud", Cloud.GLOBAL))]
        except ValueError:
            return data  # the cloud field reports it
        defaults = {
            "base_url": endpoints.base_url,
            "authority": endpoints.authority,
            "scope": endpoints.scope,
        }
        return defaults | dict(data)


class SourceConfig(_Frozen):
    """Which Entra groups are in scope: by display-name prefix, or an exact list."""

    group_prefix: str | None = DEFAULT_GROUP_PREFIX
    groups: tuple[str, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _groups_replace_prefix(cls, data: Any) -> Any:
        # Naming groups means "not by prefix", unless a prefix is given too (an error below).
        if isinstance(data, Mapping) and data.get("groups") is not None:
            return {"group_prefix": None} | dict(data)
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceConfig:
        if (self.group_prefix is None) == (self.groups is None):
            raise ValueError("set exactly one of group_prefix and groups")
        return self


class ScimConfig(_Frozen):
    """SourceMagnet's SCIM endpoint, with the dialect flag already split off the URL."""

    base_url: str
    dialect: Dialect = Dialect.DEFAULT
    secret: SecretStr
    timeout_seconds: Timeout = 30.0
    max_retries: Retries = 3
    members_per_patch: MembersPerPatch = 100
    ca_file: Path | None = None


class StateConfig(_Frozen):
    """Where the agent records what it has sent.

    The URL may carry a database password, so reprs and dumps show `safe_url` instead.
    """

    url: str = DEFAULT_STATE_URL

    @property
    def safe_url(self) -> str:
        """The URL with any password replaced by ***, fit for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    @field_serializer("url")
    def _dump_safe(self, url: str) -> str:
        return self.safe_url

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "url", self.safe_url


class SafetyConfig(_Frozen):
    """Limits that stop a run before it does damage."""

    max_deletions: MaxDeletions = 50


class LoggingConfig(_Frozen):
    level: LogLevel = "info"
    format: LogFormat = "text"


class Config(_Frozen):
    """The whole configuration, checked and resolved; `path` is the file it came from."""

    graph: GraphConfig
    source: SourceConfig = SourceConfig()
    scim: ScimConfig
    state: StateConfig = StateConfig()
    safety: SafetyConfig = SafetyConfig()
    logging: LoggingConfig = LoggingConfig()
    path: Path | None = None


# --- the file schema: the TOML as written -------------------------------------------------

_PathStr = Annotated[StrictStr, AfterValidator(_check_path)]
_Name = Annotated[StrictStr, AfterValidator(_check_name)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _GraphFile(_Section):
    tenant_id: Annotated[StrictStr, AfterValidator(_check_tenant_id)] | None = None
    client_id: Annotated[StrictStr, AfterValidator(_check_client_id)] | None = None
    credential: Annotated[CredentialKind, _one_of(tuple(CredentialKind))] = (
        CredentialKind.CLIENT_SECRET
    )
    client_secret_file: _PathStr | None = None
    certificate_path: _PathStr | None = None
    certificate_password_file: _PathStr | None = None
    token_file: _PathStr | None = None
    federated_token_file: _PathStr | None = None
    cloud: Annotated[Cloud, _one_of(tuple(Cloud))] = Cloud.GLOBAL
    base_url: Annotated[StrictStr, AfterValidator(_check_graph_url)] | None = None
    timeout_seconds: Timeout = 30.0
    max_retries: Retries = 3
    page_size: PageSize = 999


class _SourceFile(_Section):
    group_prefix: _Name | None = None
    groups: Annotated[tuple[_Name, ...], AfterValidator(_check_groups)] | None = None


class _ScimFile(_Section):
    base_url: Annotated[_ScimUrl, PlainValidator(_parse_scim_url)]
    secret_file: _PathStr | None = None
    timeout_seconds: Timeout = 30.0
    max_retries: Retries = 3
    members_per_patch: MembersPerPatch = 100
    ca_file: _PathStr | None = None


class _StateFile(_Section):
    url: Annotated[StrictStr, AfterValidator(_check_state_url)] = DEFAULT_STATE_URL


class _SafetyFile(_Section):
    max_deletions: MaxDeletions = 50


class _LoggingFile(_Section):
    level: Annotated[LogLevel, _one_of(("debug", "info", "warning", "error"))] = "info"
    format: Annotated[LogFormat, _one_of(("text", "json"))] = "text"


class _ConfigFile(_Section):
    graph: _GraphFile
    source: _SourceFile
    scim: _ScimFile
    state: _StateFile
    safety: _SafetyFile
    logging: _LoggingFile


_SECTIONS: Mapping[str, type[_Section]] = MappingProxyType(
    {
        "graph": _GraphFile,
        "source": _SourceFile,
        "scim": _ScimFile,
        "state": _StateFile,
        "safety": _SafetyFile,
        "logging": _LoggingFile,
    }
)


def config_keys() -> dict[str, tuple[str, ...]]:
    """Every key the file accepts, by section, in the order the example documents them."""
    return {name: tuple(model.model_fields) for name, model in _SECTIONS.items()}


# --- turning pydantic's errors into ours --------------------------------------------------

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


def _toml_type(value: object) -> str:
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


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else _quote(part)
            text += f".{name}" if text else name
    return text


def _unknown_key(loc: tuple[int | str, ...], value: object) -> str:
    if len(loc) == 1:
        known: tuple[str, ...] = tuple(_SECTIONS)
        what = "unknown section" if isinstance(value, Mapping) else "unknown key"
    else:
        section = _SECTIONS.get(str(loc[0]))
        known = tuple(section.model_fields) if section else ()
        what = "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    return f"{what} (did you mean {_show(close[0])}?)" if close else what


def _describe(error: ErrorDetails) -> str:
    """Our wording for one pydantic error; the input is never repeated."""
    kind = error["type"]
    if kind == "syncagent":
        return str(error.get("ctx", {})["problem"])
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return _unknown_key(error["loc"], error["input"])
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]} (got {_toml_type(error['input'])})"
    message = error["msg"]
    return message[:1].lower() + message[1:]


def _combine(problems: list[ConfigError]) -> ConfigError:
    """One error for many: the first one's key leads, the rest follow on the same line."""
    if len(problems) == 1:
        return problems[0]
    first, *rest = problems
    lead = f"{first.problem} ({first.remedy})" if first.remedy else first.problem
    return ConfigError(first.key, "; ".join([lead, *(str(problem) for problem in rest)]))


def _validate_file(data: Mapping[str, Any]) -> _ConfigFile:
    # Missing sections are empty tables, so their required keys are reported by name.
    payload = {name: {} for name in _SECTIONS} | dict(data)
    try:
        return _ConfigFile.model_validate(payload)
    except ValidationError as exc:
        problems = [ConfigError(_key_path(e["loc"]), _describe(e)) for e in exc.errors()]
        # Not chained: pydantic's own text repeats the input values.
        raise _combine(problems) from None


# --- resolution: the rules that need several keys, the environment or the disk -----------


@dataclass(frozen=True, slots=True)
class _Files:
    """Finds and reads the files a config names, the way systemd services expect."""

    base_dir: Path
    credentials_dir: Path | None

    def locate(self, name: str) -> tuple[Path, tuple[Path, ...]]:
        """The path to use, and every path looked at (for the error message)."""
        path = Path(name)
        if path.is_absolute():
            return path, (path,)
        tried: tuple[Path, ...] = ()
        if self.credentials_dir is not None:
            candidate = self.credentials_dir / path
            if candidate.is_file():
                return candidate, (candidate,)
            tried = (candidate,)
        local = self.base_dir / path
        return local, (*tried, local)

    def read(self, key: str, name: str) -> tuple[Path, bytes]:
        path, tried = self.locate(name)
        try:
            with path.open("rb") as stream:
                data = stream.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            looked = " or ".join(_show_path(p) for p in tried)
            raise ConfigError(key, f"file not found: {looked}") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(key, f"cannot read {_show_path(path)}: {reason}") from None
        if len(data) > _MAX_FILE_BYTES:
            raise ConfigError(
                key, f"{_show_path(path)} is larger than 1 MiB; is it the right file?"
            )
        if not data.strip():
            raise ConfigError(key, f"{_show_path(path)} is empty")
        return path, data

    def read_text(self, key: str, name: str) -> tuple[Path, str]:
        path, data = self.read(key, name)
        try:
            return path, data.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            raise ConfigError(key, f"{_show_path(path)} is not UTF-8 text") from None


_BEARER_PREFIX = re.compile(r"bearer\s", re.IGNORECASE)


def _bare_token(key: str, token: str, origin: str) -> SecretStr:
    """Refuse the usual paste mistakes, without ever showing the token."""
    if not token:
        raise ConfigError(key, f"the secret from {origin} is empty")
    if _BEARER_PREFIX.match(token):
        raise ConfigError(
            key, f'the secret from {origin} starts with "Bearer": paste the bare token'
        )
    if any(char.isspace() for char in token):
        raise ConfigError(
            key, f"the secret from {origin} contains whitespace: paste the bare token"
        )
    return SecretStr(token)


def _secret(
    key: str, name: str | None, env_name: str, files: _Files, env: Mapping[str, str]
) -> SecretStr | None:
    """A secret from the file the config names, else from the environment variable.

    The file wins: it is what the operator wrote down, while the environment may be
    inherited from somewhere else.
    """
    if name is not None:
        path, text = files.read_text(key, name)
        return _bare_token(key, text, _show_path(path))
    from_env = env.get(env_name, "").strip()
    if from_env:
        return _bare_token(key, from_env, env_name)
    return None


# Which file keys each credential kind reads; a file key set for another kind is a mistake.
_GRAPH_FILE_KEYS = (
    "client_secret_file",
    "certificate_path",
    "certificate_password_file",
    "token_file",
    "federated_token_file",
)
_USES_FILES: Mapping[CredentialKind, frozenset[str]] = MappingProxyType(
    {
        CredentialKind.CLIENT_SECRET: frozenset({"client_secret_file"}),
        CredentialKind.CERTIFICATE: frozenset({"certificate_path", "certificate_password_file"}),
        CredentialKind.MANAGED_IDENTITY: frozenset(),
        CredentialKind.WORKLOAD_IDENTITY: frozenset({"federated_token_file"}),
        CredentialKind.AZURE_CLI: frozenset(),
        CredentialKind.TOKEN: frozenset({"token_file"}),
    }
)
_NEEDS_APP_IDS = frozenset(
    {CredentialKind.CLIENT_SECRET, CredentialKind.CERTIFICATE, CredentialKind.WORKLOAD_IDENTITY}
)


def _resolve_graph(raw: _GraphFile, files: _Files, env: Mapping[str, str]) -> GraphConfig:
    kind = raw.credential
    when = f'when graph.credential is "{kind}"'
    if kind in _NEEDS_APP_IDS:
        for key in ("tenant_id", "client_id"):
            if getattr(raw, key) is None:
                raise ConfigError(f"graph.{key}", f"required {when}")
    for key in _GRAPH_FILE_KEYS:
        if getattr(raw, key) is not None and key not in _USES_FILES[kind]:
            raise ConfigError(f"graph.{key}", f"not used {when} (remove it)")

    resolved: dict[str, Any] = {}
    if kind is CredentialKind.CLIENT_SECRET:
        key = "graph.client_secret_file"
        secret = _secret(key, raw.client_secret_file, GRAPH_SECRET_ENV, files, env)
        if secret is None:
            raise ConfigError(key, f"required {when} (or set {GRAPH_SECRET_ENV})")
        resolved["client_secret"] = secret
    elif kind is CredentialKind.CERTIFICATE:
        if raw.certificate_path is None:
            raise ConfigError("graph.certificate_path", f"required {when}")
        resolved["certificate_path"] = _certificate(raw.certificate_path, files)
        if raw.certificate_password_file is not None:
            key = "graph.certificate_password_file"
            # A password may contain spaces; only the surrounding whitespace goes.
            _, password = files.read_text(key, raw.certificate_password_file)
            resolved["certificate_password"] = SecretStr(password)
    elif kind is CredentialKind.TOKEN:
        if raw.token_file is None:
            raise ConfigError("graph.token_file", f"required {when}")
        # Checked now so a bad file fails at startup; the Graph layer re-reads it per use.
        path, token = files.read_text("graph.token_file", raw.token_file)
        _bare_token("graph.token_file", token, _show_path(path))
        resolved["token_file"] = path
    elif kind is CredentialKind.WORKLOAD_IDENTITY:
        resolved["federated_token_file"] = _federated_token_file(raw, files, env, when)

    endpoints = CLOUD_ENDPOINTS[raw.cloud]
    return GraphConfig(
        tenant_id=raw.tenant_id,
        client_id=raw.client_id,
        credential=kind,
        cloud=raw.cloud,
        base_url=raw.base_url or endpoints.base_url,
        authority=endpoints.authority,
        scope=endpoints.scope,
        timeout_seconds=raw.timeout_seconds,
        max_retries=raw.max_retries,
        page_size=raw.page_size,
        **resolved,
    )


def _federated_token_file(
    raw: _GraphFile, files: _Files, env: Mapping[str, str], when: str
) -> Path:
    key = "graph.federated_token_file"
    if raw.federated_token_file is not None:
        path, _ = files.read(key, raw.federated_token_file)
        return path
    name = env.get(FEDERATED_TOKEN_ENV)
    if not name:
        raise ConfigError(key, f"required {when} and {FEDERATED_TOKEN_ENV} is not set")
    try:
        path, _ = files.read(key, name)
    except ConfigError as exc:
        raise ConfigError(key, f"{exc.problem} (from {FEDERATED_TOKEN_ENV})") from None
    return path


def _certificate(name: str, files: _Files) -> Path:
    key = "graph.certificate_path"
    path, data = files.read(key, name)
    # PKCS#12 is binary and opaque without its password; only PEM can be checked here.
    if data.lstrip().startswith(b"-----BEGIN"):
        if b"PRIVATE KEY-----" not in data:
            raise ConfigError(
                key,
                f"{_show_path(path)} has no private key "
                "(put the certificate and its key in one file)",
            )
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ConfigError(key, f"{_show_path(path)} has no certificate, only a key")
    return path


def _resolve_scim(raw: _ScimFile, files: _Files, env: Mapping[str, str]) -> ScimConfig:
    key = "scim.secret_file"
    secret = _secret(key, raw.secret_file, SCIM_SECRET_ENV, files, env)
    if secret is None:
        raise ConfigError(key, f"required (or set {SCIM_SECRET_ENV})")
    ca_file = None
    if raw.ca_file is not None:
        ca_file, data = files.read("scim.ca_file", raw.ca_file)
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ConfigError("scim.ca_file", f"{_show_path(ca_file)} is not a PEM CA bundle")
    return ScimConfig(
        base_url=raw.base_url.base_url,
        dialect=raw.base_url.dialect,
        secret=secret,
        timeout_seconds=raw.timeout_seconds,
        max_retries=raw.max_retries,
        members_per_patch=raw.members_per_patch,
        ca_file=ca_file,
    )


def _resolve_source(raw: _SourceFile) -> SourceConfig:
    if raw.group_prefix is not None and raw.groups is not None:
        raise ConfigError(
            "source.groups", "set either source.group_prefix or source.groups, not both"
        )
    if raw.groups is not None:
        return SourceConfig(group_prefix=None, groups=raw.groups)
    return SourceConfig(group_prefix=raw.group_prefix or DEFAULT_GROUP_PREFIX)


def _resolve_state(raw: _StateFile, base_dir: Path) -> StateConfig:
    url = _parse_state_url(raw.url)
    database = url.database
    # A relative SQLite path means "next to the config file", not "wherever the agent started".
    if (
        url.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).is_absolute()
    ):
        url = url.set(database=str((base_dir / database).absolute()))
        return StateConfig(url=url.render_as_string(hide_password=False))
    return StateConfig(url=raw.url)


_T = TypeVar("_T")


def _collect(problems: list[ConfigError], resolve: Callable[[], _T]) -> _T | None:
    try:
        return resolve()
    except ConfigError as exc:
        problems.append(exc)
        return None


def parse_config(
    data: Mapping[str, Any],
    *,
    base_dir: Path,
    env: Mapping[str, str] = os.environ,
    source: Path | None = None,
) -> Config:
    """Check and resolve a configuration given as TOML-shaped data.

    Relative file names are looked up in $CREDENTIALS_DIRECTORY (when set and the file is
    there), then in `base_dir`. Raises ConfigError naming every section that is wrong.
    """
    raw = _validate_file(data)
    credentials = env.get(CREDENTIALS_DIRECTORY_ENV)
    files = _Files(base_dir, Path(credentials) if credentials else None)
    problems: list[ConfigError] = []
    graph = _collect(problems, lambda: _resolve_graph(raw.graph, files, env))
    source_config = _collect(problems, lambda: _resolve_source(raw.source))
    scim = _collect(problems, lambda: _resolve_scim(raw.scim, files, env))
    if problems:
        raise _combine(problems)
    assert graph is not None
    assert source_config is not None
    assert scim is not None
    return Config(
        graph=graph,
        source=source_config,
        scim=scim,
        state=_resolve_state(raw.state, base_dir),
        safety=SafetyConfig(max_deletions=raw.safety.max_deletions),
        logging=LoggingConfig(level=raw.logging.level, format=raw.logging.format),
        path=source,
    )


def resolve_config_path(cli_value: str | Path | None, env: Mapping[str, str] = os.environ) -> Path:
    """The config file to read: --config, else $SYNCAGENT_CONFIG, else the default."""
    if cli_value is not None and str(cli_value) != "":
        return Path(cli_value)
    from_env = env.get(CONFIG_ENV, "")
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_PATH


def load_config(path: Path, env: Mapping[str, str] = os.environ) -> Config:
    """Read, check and resolve the TOML file at `path`; raises ConfigError."""
    shown = _show_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "", f"config file {shown} not found", remedy=f"pass --config PATH or set {CONFIG_ENV}"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError("", f"cannot read config file {shown}: {reason}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"config file {shown} is not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message names the line and column, never the values around them.
        raise ConfigError("", f"config file {shown} is not valid TOML: {exc}") from None
    config = parse_config(data, base_dir=path.absolute().parent, env=env, source=path)
    log.debug("configuration loaded from %s", path)
    return config
