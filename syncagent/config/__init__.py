"""syncagent's configuration: one TOML file, checked once, when it is loaded.

Two layers. The file schema (`schema`) mirrors the TOML exactly and checks each value on its
own (`checks`, `urls`): types, ranges, choices, URLs. Resolution (`resolve`) then applies the
rules that need several keys, the environment or the filesystem (what each credential kind
needs, reading secret files through `files`) and builds the frozen models (`models`) the rest
of the program uses. Every problem becomes a ConfigError (`messages`) whose text is one line
starting with the key path, so the operator knows which line of the file to fix; when several
are wrong, all of them are reported, joined by "; ". `loader` ties the steps together.

Secrets live only in SecretStr: no repr, dump or error message shows them, and no error
message repeats a value that might hold one (URLs, unknown keys, secret file contents).
"""

from syncagent.config.checks import MaxDeletions, MembersPerPatch, PageSize, Retries, Timeout
from syncagent.config.files import CREDENTIALS_DIRECTORY_ENV
from syncagent.config.loader import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    load_config,
    parse_config,
    resolve_config_path,
)
from syncagent.config.models import (
    CLOUD_ENDPOINTS,
    DEFAULT_GROUP_PREFIX,
    DEFAULT_STATE_URL,
    Cloud,
    CloudEndpoints,
    Config,
    CredentialKind,
    GraphConfig,
    LogFormat,
    LoggingConfig,
    LogLevel,
    SafetyConfig,
    ScimConfig,
    SourceConfig,
    StateConfig,
)
from syncagent.config.resolve import FEDERATED_TOKEN_ENV, GRAPH_SECRET_ENV, SCIM_SECRET_ENV
from syncagent.config.schema import config_keys
from syncagent.config.urls import COMPLIANT_FLAG, is_loopback_host
from syncagent.scim.requests import Dialect

__all__ = [
    "CLOUD_ENDPOINTS",
    "COMPLIANT_FLAG",
    "CONFIG_ENV",
    "CREDENTIALS_DIRECTORY_ENV",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_GROUP_PREFIX",
    "DEFAULT_STATE_URL",
    "FEDERATED_TOKEN_ENV",
    "GRAPH_SECRET_ENV",
    "SCIM_SECRET_ENV",
    "Cloud",
    "CloudEndpoints",
    "Config",
    "CredentialKind",
    "Dialect",
    "GraphConfig",
    "LogFormat",
    "LogLevel",
    "LoggingConfig",
    "MaxDeletions",
    "MembersPerPatch",
    "PageSize",
    "Retries",
    "SafetyConfig",
    "ScimConfig",
    "SourceConfig",
    "StateConfig",
    "Timeout",
    "config_keys",
    "is_loopback_host",
    "load_config",
    "parse_config",
    "resolve_config_path",
]
