"""The resolved configuration: the frozen models the rest of the program reads.

They hold values already checked and resolved (secrets read, the dialect split off the SCIM
URL, a relative SQLite path made absolute); secrets are SecretStr, so no repr or dump shows them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_serializer, model_validator
from sqlalchemy.engine import make_url

from syncagent.config.checks import (
    Concurrency,
    MaxDeletions,
    MembersPerPatch,
    PageSize,
    Retries,
    Timeout,
)
from syncagent.scim.requests import Dialect

DEFAULT_STATE_URL = "sqlite:////var/lib/syncagent/state.db"
DEFAULT_GROUP_PREFIX = "SourceMagnet"


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
    concurrency: Concurrency = 4
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
    # Entra's SkipOutOfScopeDeletions: users who leave scope stay active in the target.
    skip_out_of_scope_deletions: bool = False


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
