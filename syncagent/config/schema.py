"""The file schema: the TOML as written, each value checked on its own.

Every section forbids unknown keys, so a misspelt key is reported instead of ignored. Rules
that need several keys, the environment or the disk are left to `resolve`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainValidator,
    StrictBool,
    StrictStr,
)

from syncagent.config.checks import (
    Concurrency,
    MaxDeletions,
    MembersPerPatch,
    PageSize,
    Retries,
    Timeout,
    check_client_id,
    check_groups,
    check_name,
    check_path,
    check_tenant_id,
    one_of,
)
from syncagent.config.models import DEFAULT_STATE_URL, Cloud, CredentialKind, LogFormat, LogLevel
from syncagent.config.urls import ScimUrl, check_graph_url, check_state_url, parse_scim_url

_PathStr = Annotated[StrictStr, AfterValidator(check_path)]
_Name = Annotated[StrictStr, AfterValidator(check_name)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GraphFile(Section):
    tenant_id: Annotated[StrictStr, AfterValidator(check_tenant_id)] | None = None
    client_id: Annotated[StrictStr, AfterValidator(check_client_id)] | None = None
    credential: Annotated[CredentialKind, one_of(tuple(CredentialKind))] = (
        CredentialKind.CLIENT_SECRET
    )
    client_secret_file: _PathStr | None = None
    certificate_path: _PathStr | None = None
    certificate_password_file: _PathStr | None = None
    token_file: _PathStr | None = None
    federated_token_file: _PathStr | None = None
    cloud: Annotated[Cloud, one_of(tuple(Cloud))] = Cloud.GLOBAL
    base_url: Annotated[StrictStr, AfterValidator(check_graph_url)] | None = None
    timeout_seconds: Timeout = 30.0
    max_retries: Retries = 3
    page_size: PageSize = 999


class SourceFile(Section):
    group_prefix: _Name | None = None
    groups: Annotated[tuple[_Name, ...], AfterValidator(check_groups)] | None = None


class ScimFile(Section):
    base_url: Annotated[ScimUrl, PlainValidator(parse_scim_url)]
    secret_file: _PathStr | None = None
    timeout_seconds: Timeout = 30.0
    max_retries: Retries = 3
    members_per_patch: MembersPerPatch = 100
    concurrency: Concurrency = 4
    ca_file: _PathStr | None = None


class StateFile(Section):
    url: Annotated[StrictStr, AfterValidator(check_state_url)] = DEFAULT_STATE_URL


class SafetyFile(Section):
    max_deletions: MaxDeletions = 50
    skip_out_of_scope_deletions: StrictBool = False


class LoggingFile(Section):
    level: Annotated[LogLevel, one_of(("debug", "info", "warning", "error"))] = "info"
    format: Annotated[LogFormat, one_of(("text", "json"))] = "text"


class ConfigFile(Section):
    graph: GraphFile
    source: SourceFile
    scim: ScimFile
    state: StateFile
    safety: SafetyFile
    logging: LoggingFile


SECTIONS: Mapping[str, type[Section]] = MappingProxyType(
    {
        "graph": GraphFile,
        "source": SourceFile,
        "scim": ScimFile,
        "state": StateFile,
        "safety": SafetyFile,
        "logging": LoggingFile,
    }
)


def config_keys() -> dict[str, tuple[str, ...]]:
    """Every key the file accepts, by section, in the order the example documents them."""
    return {name: tuple(model.model_fields) for name, model in SECTIONS.items()}
