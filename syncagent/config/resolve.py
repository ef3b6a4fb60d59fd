"""Resolution: the rules that need several keys, the environment or the disk.

It turns the checked file sections into the frozen models: what each credential kind needs,
reading the secrets and files named, placing a relative SQLite path next to the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import SecretStr

from syncagent.config.display import show_path
from syncagent.config.files import Files, bare_token, read_secret
from syncagent.config.models import (
    CLOUD_ENDPOINTS,
    DEFAULT_GROUP_PREFIX,
    CredentialKind,
    GraphConfig,
    ScimConfig,
    SourceConfig,
    StateConfig,
)
from syncagent.config.schema import GraphFile, ScimFile, SourceFile, StateFile
from syncagent.config.urls import parse_state_url
from syncagent.errors import ConfigError

# Names of environment variables, not secrets.
GRAPH_SECRET_ENV = "SYNCAGENT_GRAPH_CLIENT_SECRET"  # noqa: S105
SCIM_SECRET_ENV = "SYNCAGENT_SCIM_SECRET"  # noqa: S105
FEDERATED_TOKEN_ENV = "AZURE_FEDERATED_TOKEN_FILE"  # noqa: S105


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


def resolve_graph(raw: GraphFile, files: Files, env: Mapping[str, str]) -> GraphConfig:
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
        secret = read_secret(key, raw.client_secret_file, GRAPH_SECRET_ENV, files, env)
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
        bare_token("graph.token_file", token, show_path(path))
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


def _federated_token_file(raw: GraphFile, files: Files, env: Mapping[str, str], when: str) -> Path:
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


def _certificate(name: str, files: Files) -> Path:
    key = "graph.certificate_path"
    path, data = files.read(key, name)
    # PKCS#12 is binary and opaque without its password; only PEM can be checked here.
    if data.lstrip().startswith(b"-----BEGIN"):
        if b"PRIVATE KEY-----" not in data:
            raise ConfigError(
                key,
                f"{show_path(path)} has no private key "
                "(put the certificate and its key in one file)",
            )
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ConfigError(key, f"{show_path(path)} has no certificate, only a key")
    return path


def resolve_scim(raw: ScimFile, files: Files, env: Mapping[str, str]) -> ScimConfig:
    key = "scim.secret_file"
    secret = read_secret(key, raw.secret_file, SCIM_SECRET_ENV, files, env)
    if secret is None:
        raise ConfigError(key, f"required (or set {SCIM_SECRET_ENV})")
    ca_file = None
    if raw.ca_file is not None:
        ca_file, data = files.read("scim.ca_file", raw.ca_file)
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ConfigError("scim.ca_file", f"{show_path(ca_file)} is not a PEM CA bundle")
    return ScimConfig(
        base_url=raw.base_url.base_url,
        dialect=raw.base_url.dialect,
        secret=secret,
        timeout_seconds=raw.timeout_seconds,
        max_retries=raw.max_retries,
        members_per_patch=raw.members_per_patch,
        concurrency=raw.concurrency,
        ca_file=ca_file,
    )


def resolve_source(raw: SourceFile) -> SourceConfig:
    if raw.group_prefix is not None and raw.groups is not None:
        raise ConfigError(
            "source.groups", "set either source.group_prefix or source.groups, not both"
        )
    if raw.groups is not None:
        return SourceConfig(group_prefix=None, groups=raw.groups)
    return SourceConfig(group_prefix=raw.group_prefix or DEFAULT_GROUP_PREFIX)


def resolve_state(raw: StateFile, base_dir: Path) -> StateConfig:
    url = parse_state_url(raw.url)
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
