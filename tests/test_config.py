"""The configuration: every mistake reported on one line under its key, no secret ever shown."""

from __future__ import annotations

import copy
import re
import shutil
import tomllib
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from syncagent.config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_STATE_URL,
    Cloud,
    Config,
    CredentialKind,
    Dialect,
    GraphConfig,
    SourceConfig,
    StateConfig,
    config_keys,
    is_loopback_host,
    load_config,
    parse_config,
    resolve_config_path,
)

# The example's commented values are checked against the file schema.
from syncagent.config.loader import validate_file as _validate_file
from syncagent.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "syncagent.example.toml"

# Distinctive values: if one of them shows up in any rendering, a secret leaked.
SCIM_SECRET = "scimTok-7Qx~Zr41.uniqueMARK"
GRAPH_SECRET = "graphSec~9Pw.Lm_62-uniqueMARK"
CERT_PASSWORD = "cert pass 55 uniqueMARK"
DB_PASSWORD = "dbPw-83kq-uniqueMARK"
MARK = "uniqueMARK"

TENANT = "contoso.onmicrosoft.com"
CLIENT = "11111111-2222-3333-4444-555555555555"

PEM_CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def valid_data() -> dict[str, Any]:
    return {
        "graph": {
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "credential": "client_secret",
            "client_secret_file": "graph-secret",
        },
        "source": {"group_prefix": "SourceMagnet"},
        "scim": {"base_url": "https://scim.example.com/scim/v2", "secret_file": "scim-secret"},
    }


def changed(data: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `data` with `section__key=value` set; the value `...` removes the key."""
    result = copy.deepcopy(dict(data))
    for name, value in changes.items():
        section, _, key = name.partition("__")
        if not key:
            result[section] = value
        elif value is ...:
            result.setdefault(section, {}).pop(key, None)
        else:
            result.setdefault(section, {})[key] = value
    return result


def write_secrets(directory: Path) -> None:
    (directory / "scim-secret").write_text(SCIM_SECRET + "\n")
    (directory / "graph-secret").write_text(f"  {GRAPH_SECRET}\r\n")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_secrets(tmp_path)
    return tmp_path


def parse(data: Mapping[str, Any], base_dir: Path, env: Mapping[str, str] | None = None) -> Config:
    return parse_config(data, base_dir=base_dir, env=env or {})


def config_error(
    data: Mapping[str, Any], base_dir: Path, env: Mapping[str, str] | None = None
) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(data, base_dir, env)
    text = str(caught.value)
    assert text.isprintable()  # one line: no newline, nor any other line or paragraph break
    return caught.value


def test_valid_config_resolves_secrets_and_defaults(workdir: Path) -> None:
    config = parse(valid_data(), workdir)

    assert config.graph.client_secret is not None
    assert config.graph.client_secret.get_secret_value() == GRAPH_SECRET  # whitespace stripped
    assert config.scim.secret.get_secret_value() == SCIM_SECRET
    assert config.graph.credential is CredentialKind.CLIENT_SECRET
    assert config.graph.base_url == "https://graph.microsoft.com/v1.0"
    assert (config.graph.timeout_seconds, config.graph.max_retries) == (30.0, 3)
    assert config.graph.page_size == 999
    assert config.scim.dialect is Dialect.DEFAULT
    assert config.scim.members_per_patch == 100
    assert config.source == SourceConfig(group_prefix="SourceMagnet", groups=None)
    assert config.state.url == DEFAULT_STATE_URL
    assert config.safety.max_deletions == 50
    assert (config.logging.level, config.logging.format) == ("info", "text")
    assert config.path is None


BAD_VALUES: list[tuple[str, object, str]] = [
    ("graph__tenant_id", "not a tenant", "graph.tenant_id"),
    ("graph__tenant_id", "common", "graph.tenant_id"),
    ("graph__tenant_id", 42, "graph.tenant_id"),
    ("graph__client_id", "my-app", "graph.client_id"),
    ("graph__credential", "password", "graph.credential"),
    ("graph__cloud", "europe", "graph.cloud"),
    ("graph__cloud", "eu\nrope", "graph.cloud"),
    ("graph__cloud", "eu\u2028rope", "graph.cloud"),
    ("graph__base_url", "https://graph.microsoft.com", "graph.base_url"),
    ("graph__base_url", "graph.microsoft.com/v1.0", "graph.base_url"),
    ("graph__base_url", "http://graph.example.com/v1.0", "graph.base_url"),
    ("graph__base_url", "https://graph.microsoft.com/v1.0?$top=5", "graph.base_url"),
    ("graph__timeout_seconds", 0, "graph.timeout_seconds"),
    ("graph__timeout_seconds", 601, "graph.timeout_seconds"),
    ("graph__timeout_seconds", "30", "graph.timeout_seconds"),
    ("graph__max_retries", 11, "graph.max_retries"),
    ("graph__max_retries", True, "graph.max_retries"),
    ("graph__page_size", 0, "graph.page_size"),
    ("graph__page_size", 5000, "graph.page_size"),
    ("graph__client_secret_fiel", "x", "graph.client_secret_fiel"),
    ("graph__certificate_path", "", "graph.certificate_path"),
    ("source__group_prefix", "", "source.group_prefix"),
    ("source__group_prefix", " SourceMagnet", "source.group_prefix"),
    ("source__group_prefix", "SourceMagnet\n", "source.group_prefix"),
    ("source__groups", ["A\nB", "a\nb"], "source.groups"),
    ("graph__base_url", "https://graph\n.example.com/v1.0", "graph.base_url"),
    ("source__groups", "SourceMagnetAdmin", "source.groups"),
    ("scim__base_url", "http://scim.example.com/scim", "scim.base_url"),
    ("scim__base_url", "ftp://scim.example.com/scim", "scim.base_url"),
    ("scim__base_url", "https://scim.example.com/scim?tenant=1", "scim.base_url"),
    ("scim__base_url", "https://admin@scim.example.com/scim", "scim.base_url"),
    ("scim__base_url", "https://scim.example.com:99999/scim", "scim.base_url"),
    ("scim__base_url", "https://scim.example.com/scim#frag", "scim.base_url"),
    ("scim__base_url", ..., "scim.base_url"),
    ("scim__secret_fiel", "scim-secret", "scim.secret_fiel"),
    ("scim__timeout_seconds", -1.5, "scim.timeout_seconds"),
    ("scim__max_retries", -1, "scim.max_retries"),
    ("scim__members_per_patch", 0, "scim.members_per_patch"),
    ("scim__members_per_patch", 1001, "scim.members_per_patch"),
    ("scim__ca_file", "missing-ca.pem", "scim.ca_file"),
    ("state__url", "mysql+pymysql://db.example.com/sync", "state.url"),
    ("state__url", "not a url", "state.url"),
    ("state__url", 5, "state.url"),
    ("safety__max_deletions", -1, "safety.max_deletions"),
    ("safety__max_deletions", 2.5, "safety.max_deletions"),
    ("logging__level", "verbose", "logging.level"),
    ("logging__format", "xml", "logging.format"),
    ("logging__colour", True, "logging.colour"),
    ("sources", {"group_prefix": "x"}, "sources"),
    ("graph", "client_secret", "graph"),
]


@pytest.mark.parametrize(("change", "value", "key"), BAD_VALUES)
def test_bad_value_is_one_line_under_its_key(
    workdir: Path, change: str, value: object, key: str
) -> None:
    error = config_error(changed(valid_data(), **{change: value}), workdir)

    assert str(error).startswith(f"{key}: ")
    assert error.key == key


@pytest.mark.parametrize(
    ("change", "value", "message"),
    [
        (
            "graph__tenant_id",
            ...,
            'graph.tenant_id: required when graph.credential is "client_secret"',
        ),
        (
            "graph__cloud",
            "europe",
            'graph.cloud: must be one of global, usgov, usgov-dod, china (got "europe")',
        ),
        ("graph__page_size", 5000, "graph.page_size: must be between 1 and 999 (got 5000)"),
        (
            "scim__base_url",
            "http://scim.example.com/scim/v2",
            "scim.base_url: plain http:// is only allowed to a loopback host "
            '(got host "scim.example.com")',
        ),
        ("scim__secret_fiel", "x", 'scim.secret_fiel: unknown key (did you mean "secret_file"?)'),
        ("scim__secret_file", ..., "scim.secret_file: required (or set SYNCAGENT_SCIM_SECRET)"),
        ("graph__max_retries", "3", "graph.max_retries: must be an integer (got a string)"),
        ("sources", {}, 'sources: unknown section (did you mean "source"?)'),
    ],
)
def test_messages_read_well(workdir: Path, change: str, value: object, message: str) -> None:
    assert str(config_error(changed(valid_data(), **{change: value}), workdir)) == message


def test_several_problems_share_one_line_led_by_the_first(workdir: Path) -> None:
    data = changed(valid_data(), graph__page_size=0, scim__members_per_patch=0, state__url="x")

    error = config_error(data, workdir)

    assert error.key == "graph.page_size"
    text = str(error)
    assert text.startswith("graph.page_size: ")
    assert "; scim.members_per_patch: " in text
    assert "; state.url: " in text


def test_problems_of_several_sections_after_the_file_checks_are_all_reported(
    tmp_path: Path,
) -> None:
    error = config_error(valid_data(), tmp_path)  # neither secret file exists

    assert str(error).startswith("graph.client_secret_file: ")
    assert "; scim.secret_file: " in str(error)


# --- credentials ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("graph", "key"),
    [
        ({"credential": "certificate", "client_secret_file": ...}, "graph.certificate_path"),
        ({"credential": "certificate", "certificate_path": "cert.pem"}, "graph.client_secret_file"),
        ({"credential": "certificate", "client_id": ...}, "graph.client_id"),
        ({"credential": "workload_identity", "tenant_id": ...}, "graph.tenant_id"),
        (
            {"credential": "workload_identity", "client_secret_file": ...},
            "graph.federated_token_file",
        ),
        ({"credential": "token", "client_secret_file": ...}, "graph.token_file"),
        ({"credential": "token", "token_file": "graph-secret"}, "graph.client_secret_file"),
        ({"credential": "managed_identity"}, "graph.client_secret_file"),
        ({"client_secret_file": ...}, "graph.client_secret_file"),
    ],
)
def test_each_credential_kind_demands_its_own_keys(
    workdir: Path, graph: dict[str, object], key: str
) -> None:
    (workdir / "cert.pem").write_bytes(PEM_CERT + PEM_KEY)
    data = changed(valid_data(), **{f"graph__{name}": value for name, value in graph.items()})

    assert config_error(data, workdir).key == key


def test_client_secret_from_the_environment_and_the_file_wins(workdir: Path) -> None:
    env = {"SYNCAGENT_GRAPH_CLIENT_SECRET": "from-env-secret"}
    from_env = parse(changed(valid_data(), graph__client_secret_file=...), workdir, env)
    from_file = parse(valid_data(), workdir, env)

    assert from_env.graph.client_secret == SecretStr("from-env-secret")
    assert from_file.graph.client_secret == SecretStr(GRAPH_SECRET)


def test_missing_client_secret_names_the_key_and_the_variable(workdir: Path) -> None:
    error = config_error(changed(valid_data(), graph__client_secret_file=...), workdir)

    assert str(error).startswith('graph.client_secret_file: required when graph.credential is "')
    assert "SYNCAGENT_GRAPH_CLIENT_SECRET" in str(error)


def test_certificate_with_key_and_password(workdir: Path) -> None:
    (workdir / "cert.pem").write_bytes(PEM_CERT + PEM_KEY)
    (workdir / "cert-password").write_text(f"{CERT_PASSWORD}\n")
    data = changed(
        valid_data(),
        graph__credential="certificate",
        graph__client_secret_file=...,
        graph__certificate_path="cert.pem",
        graph__certificate_password_file="cert-password",
    )

    graph = parse(data, workdir).graph

    assert graph.certificate_path == workdir / "cert.pem"
    assert graph.certificate_password == SecretStr(CERT_PASSWORD)  # inner spaces kept
    assert graph.client_secret is None


@pytest.mark.parametrize(
    ("content", "accepted"),
    [
        (PEM_CERT + PEM_KEY, True),
        (b"-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n" + PEM_CERT, True),
        (bytes(range(256)), True),  # PKCS#12 cannot be checked without its password
        (PEM_CERT, False),
        (PEM_KEY, False),
        (b"", False),
    ],
)
def test_certificate_file_needs_certificate_and_key(
    workdir: Path, content: bytes, accepted: bool
) -> None:
    (workdir / "cert.pem").write_bytes(content)
    data = changed(
        valid_data(),
        graph__credential="certificate",
        graph__client_secret_file=...,
        graph__certificate_path="cert.pem",
    )

    if accepted:
        assert parse(data, workdir).graph.certificate_path == workdir / "cert.pem"
    else:
        error = config_error(data, workdir)
        assert error.key == "graph.certificate_path"
        assert str(workdir / "cert.pem") in str(error)


@pytest.mark.parametrize("kind", ["managed_identity", "azure_cli"])
def test_ambient_credentials_need_no_ids(workdir: Path, kind: str) -> None:
    graph = {"credential": kind}
    data = changed(valid_data(), graph=graph)
    env = {"SYNCAGENT_GRAPH_CLIENT_SECRET": GRAPH_SECRET}

    config = parse(data, workdir, env)

    assert config.graph.credential == kind
    assert config.graph.tenant_id is None
    assert config.graph.client_id is None
    assert config.graph.client_secret is None  # the variable is ignored for other kinds


def test_managed_identity_keeps_a_user_assigned_client_id(workdir: Path) -> None:
    data = changed(valid_data(), graph={"credential": "managed_identity", "client_id": CLIENT})

    assert parse(data, workdir).graph.client_id == CLIENT


def test_workload_identity_token_file_from_config_or_environment(workdir: Path) -> None:
    (workdir / "federated").write_text("eyJ.federated.jwt\n")
    graph = {"tenant_id": TENANT, "client_id": CLIENT, "credential": "workload_identity"}
    from_env = parse(
        changed(valid_data(), graph=graph),
        workdir,
        {"AZURE_FEDERATED_TOKEN_FILE": str(workdir / "federated")},
    )
    from_config = parse(
        changed(valid_data(), graph=graph | {"federated_token_file": "federated"}), workdir
    )

    assert from_env.graph.federated_token_file == workdir / "federated"
    assert from_config.graph.federated_token_file == workdir / "federated"


def test_workload_identity_federated_token_file_must_exist(workdir: Path) -> None:
    graph = {"tenant_id": TENANT, "client_id": CLIENT, "credential": "workload_identity"}
    env = {"AZURE_FEDERATED_TOKEN_FILE": str(workdir / "nope")}

    error = config_error(changed(valid_data(), graph=graph), workdir, env)

    assert error.key == "graph.federated_token_file"
    assert str(workdir / "nope") in str(error)
    assert "AZURE_FEDERATED_TOKEN_FILE" in str(error)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "is empty"),
        ("\n  \n", "is empty"),
        (f"Bearer {GRAPH_SECRET}", "bare token"),
        (f"{GRAPH_SECRET} {GRAPH_SECRET}", "bare token"),
    ],
)
def test_token_file_is_checked_now(workdir: Path, content: str, problem: str) -> None:
    (workdir / "graph-token").write_text(content)
    data = changed(valid_data(), graph={"credential": "token", "token_file": "graph-token"})

    error = config_error(data, workdir)

    assert error.key == "graph.token_file"
    assert problem in str(error)
    assert MARK not in str(error)


def test_token_file_is_named_not_read_into_the_config(workdir: Path) -> None:
    (workdir / "graph-token").write_text(f"{GRAPH_SECRET}\n")
    data = changed(valid_data(), graph={"credential": "token", "token_file": "graph-token"})

    config = parse(data, workdir)

    assert config.graph.token_file == workdir / "graph-token"
    assert MARK not in repr(config)
    assert MARK not in config.model_dump_json()


# --- secret files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret_key", "file_name"),
    [("scim__secret_file", "scim-secret"), ("graph__client_secret_file", "graph-secret")],
)
def test_missing_secret_file_names_key_and_path(
    workdir: Path, secret_key: str, file_name: str
) -> None:
    (workdir / file_name).unlink()

    error = config_error(valid_data(), workdir)

    assert str(error).startswith(secret_key.replace("__", ".") + ": file not found: ")
    assert str(workdir / file_name) in str(error)


def test_credentials_directory_is_searched_first(workdir: Path, tmp_path_factory: Any) -> None:
    credentials: Path = tmp_path_factory.mktemp("credentials")
    (credentials / "scim-secret").write_text("from-credentials-directory")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}

    config = parse(valid_data(), workdir, env)

    assert config.scim.secret.get_secret_value() == "from-credentials-directory"
    # graph-secret is not in the credentials directory: found next to the config instead.
    assert config.graph.client_secret == SecretStr(GRAPH_SECRET)


def test_absolute_secret_path_ignores_credentials_directory(
    workdir: Path, tmp_path_factory: Any
) -> None:
    credentials: Path = tmp_path_factory.mktemp("credentials")
    (credentials / "scim-secret").write_text("from-credentials-directory")
    data = changed(valid_data(), scim__secret_file=str(workdir / "scim-secret"))

    config = parse(data, workdir, {"CREDENTIALS_DIRECTORY": str(credentials)})

    assert config.scim.secret.get_secret_value() == SCIM_SECRET


def test_missing_secret_names_every_place_looked(workdir: Path, tmp_path_factory: Any) -> None:
    credentials: Path = tmp_path_factory.mktemp("credentials")
    data = changed(valid_data(), scim__secret_file="absent")

    error = config_error(data, workdir, {"CREDENTIALS_DIRECTORY": str(credentials)})

    assert error.key == "scim.secret_file"
    assert str(credentials / "absent") in str(error)
    assert str(workdir / "absent") in str(error)


def test_unreadable_secret_file_is_reported(workdir: Path) -> None:
    (workdir / "a-directory").mkdir()
    data = changed(valid_data(), scim__secret_file="a-directory")

    error = config_error(data, workdir)

    assert str(error).startswith(f"scim.secret_file: cannot read {workdir / 'a-directory'}: ")


def test_scim_secret_from_environment_and_the_file_wins(workdir: Path) -> None:
    env = {"SYNCAGENT_SCIM_SECRET": " env-secret\n"}
    from_env = parse(changed(valid_data(), scim__secret_file=...), workdir, env)
    from_file = parse(valid_data(), workdir, env)

    assert from_env.scim.secret.get_secret_value() == "env-secret"
    assert from_file.scim.secret.get_secret_value() == SCIM_SECRET


def test_empty_scim_secret_variable_counts_as_unset(workdir: Path) -> None:
    error = config_error(
        changed(valid_data(), scim__secret_file=...), workdir, {"SYNCAGENT_SCIM_SECRET": " "}
    )

    assert str(error) == "scim.secret_file: required (or set SYNCAGENT_SCIM_SECRET)"


@pytest.mark.parametrize(
    "content",
    [
        f"Bearer {SCIM_SECRET}",
        f"bearer {SCIM_SECRET}",
        f"{SCIM_SECRET} {SCIM_SECRET}",
        f"{SCIM_SECRET}\n{SCIM_SECRET}",
    ],
)
def test_pasted_header_or_whitespace_is_refused(workdir: Path, content: str) -> None:
    (workdir / "scim-secret").write_text(content)

    error = config_error(valid_data(), workdir)

    assert error.key == "scim.secret_file"
    assert "paste the bare token" in str(error)
    assert MARK not in str(error)


# --- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base_url", "dialect"),
    [
        ("https://h.example.com/scim/v2", "https://h.example.com/scim/v2", Dialect.DEFAULT),
        ("https://h.example.com/scim/v2/", "https://h.example.com/scim/v2", Dialect.DEFAULT),
        (
            "https://h.example.com/scim/v2?aadOptscim062020",
            "https://h.example.com/scim/v2",
            Dialect.COMPLIANT,
        ),
        (
            "https://h.example.com/scim/v2/?aadoptscim062020=1",
            "https://h.example.com/scim/v2",
            Dialect.COMPLIANT,
        ),
        (
            "HTTPS://h.example.com/scim?AADOPTSCIM062020=",
            "https://h.example.com/scim",
            Dialect.COMPLIANT,
        ),
        ("https://h.example.com:8443", "https://h.example.com:8443", Dialect.DEFAULT),
    ],
)
def test_scim_flag_selects_dialect_and_is_stripped(
    workdir: Path, url: str, base_url: str, dialect: Dialect
) -> None:
    scim = parse(changed(valid_data(), scim__base_url=url), workdir).scim

    assert scim.base_url == base_url
    assert scim.dialect is dialect


def test_scim_flag_with_another_parameter_is_refused(workdir: Path) -> None:
    data = changed(valid_data(), scim__base_url="https://h.example.com/scim?aadOptscim062020&x=1")

    assert str(config_error(data, workdir)).startswith(
        'scim.base_url: unsupported query parameter "x"'
    )


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8080", "localhost", "LOCALHOST:9", "[::1]:9000", "127.5.6.7"]
)
def test_plain_http_is_allowed_to_loopback(workdir: Path, host: str) -> None:
    data = changed(
        valid_data(), scim__base_url=f"http://{host}/scim", graph__base_url=f"http://{host}/v1.0/"
    )

    config = parse(data, workdir)

    assert config.scim.base_url == f"http://{host}/scim"
    assert config.graph.base_url == f"http://{host}/v1.0"


@pytest.mark.parametrize(
    "host", ["scim.example.com", "10.0.0.1", "[::2]", "localhost.example.com", "127.0.0.1.nip.io"]
)
def test_plain_http_is_refused_elsewhere(workdir: Path, host: str) -> None:
    for key in ("scim__base_url", "graph__base_url"):
        error = config_error(changed(valid_data(), **{key: f"http://{host}/v1.0"}), workdir)
        assert str(error).startswith(
            key.replace("__", ".") + ": plain http:// is only allowed to a loopback host"
        )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost.", True),
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("128.0.0.1", False),
        ("::2", False),
        ("0.0.0.0", False),
        ("localhost.localdomain", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# --- clouds -------------------------------------------------------------------------------

CLOUDS = [
    (
        "global",
        "login.microsoftonline.com",
        "https://graph.microsoft.com/v1.0",
        "https://graph.microsoft.com/.default",
    ),
    (
        "usgov",
        "login.microsoftonline.us",
        "https://graph.microsoft.us/v1.0",
        "https://graph.microsoft.us/.default",
    ),
    (
        "usgov-dod",
        "login.microsoftonline.us",
        "https://dod-graph.microsoft.us/v1.0",
        "https://dod-graph.microsoft.us/.default",
    ),
    (
        "china",
        "login.chinacloudapi.cn",
        "https://microsoftgraph.chinacloudapi.cn/v1.0",
        "https://microsoftgraph.chinacloudapi.cn/.default",
    ),
]


@pytest.mark.parametrize(("cloud", "authority", "base_url", "scope"), CLOUDS)
def test_cloud_presets(
    workdir: Path, cloud: str, authority: str, base_url: str, scope: str
) -> None:
    graph = parse(changed(valid_data(), graph__cloud=cloud.upper()), workdir).graph
    direct = GraphConfig(cloud=Cloud(cloud))

    assert graph.cloud == cloud
    assert (graph.authority, graph.base_url, graph.scope) == (authority, base_url, scope)
    assert (direct.authority, direct.base_url, direct.scope) == (authority, base_url, scope)


def test_base_url_override_keeps_the_clouds_authority_and_scope(workdir: Path) -> None:
    data = changed(
        valid_data(), graph__cloud="usgov", graph__base_url="https://graph.microsoft.us/beta/"
    )

    graph = parse(data, workdir).graph

    assert graph.base_url == "https://graph.microsoft.us/beta"
    assert graph.authority == "login.microsoftonline.us"
    assert graph.scope == "https://graph.microsoft.us/.default"


# --- source, state, the resolved models -------------------------------------------------


def test_source_defaults_to_the_sourcemagnet_prefix(workdir: Path) -> None:
    config = parse(changed(valid_data(), source={}), workdir)

    assert config.source.group_prefix == "SourceMagnet"
    assert config.source.groups is None


def test_source_groups_replace_the_prefix(workdir: Path) -> None:
    groups = ["SourceMagnetAdmin", "SourceMagnet O'Brien"]

    source = parse(changed(valid_data(), source={"groups": groups}), workdir).source

    assert source.groups == tuple(groups)
    assert source.group_prefix is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"group_prefix": "SourceMagnet", "groups": ["SourceMagnetAdmin"]},
            "source.groups: set either source.group_prefix or source.groups, not both",
        ),
        ({"groups": []}, "source.groups: must list at least one group"),
        ({"groups": ["A", "B", "a"]}, 'source.groups: lists "a" twice'),
        ({"groups": ["A", ""]}, "source.groups[1]: must not be empty"),
    ],
)
def test_source_mistakes(workdir: Path, source: dict[str, Any], message: str) -> None:
    assert str(config_error(changed(valid_data(), source=source), workdir)).startswith(message)


def test_resolved_source_model_enforces_exactly_one() -> None:
    assert SourceConfig(groups=("A",)).group_prefix is None
    with pytest.raises(ValueError, match="exactly one"):
        SourceConfig(group_prefix="x", groups=("A",))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://syncagent@db.example.com/sync",
            "postgresql+psycopg://syncagent@db.example.com/sync",
        ),
        ("postgresql+psycopg://db.example.com/sync", "postgresql+psycopg://db.example.com/sync"),
        ("sqlite:////var/lib/syncagent/x.db", "sqlite:////var/lib/syncagent/x.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
    ],
)
def test_state_url_is_normalised(workdir: Path, url: str, expected: str) -> None:
    assert parse(changed(valid_data(), state__url=url), workdir).state.url == expected


def test_relative_sqlite_path_is_next_to_the_config(workdir: Path) -> None:
    state = parse(changed(valid_data(), state__url="sqlite:///state/agent.db"), workdir).state

    assert state.url == f"sqlite:///{workdir / 'state' / 'agent.db'}"


def test_state_password_is_hidden_but_kept(workdir: Path) -> None:
    url = f"postgresql://agent:{DB_PASSWORD}@db.example.com:5432/sync"
    state = parse(changed(valid_data(), state__url=url), workdir).state

    assert DB_PASSWORD in state.url  # the store needs it
    assert state.safe_url == "postgresql+psycopg://agent:***@db.example.com:5432/sync"
    assert DB_PASSWORD not in repr(state)
    assert DB_PASSWORD not in str(state.model_dump())
    assert StateConfig().url == DEFAULT_STATE_URL


# --- secrets never shown ----------------------------------------------------------------


def test_no_secret_in_repr_str_or_dumps(workdir: Path) -> None:
    (workdir / "cert.pem").write_bytes(PEM_CERT + PEM_KEY)
    (workdir / "cert-password").write_text(CERT_PASSWORD)
    state_url = f"postgresql://agent:{DB_PASSWORD}@db.example.com/sync"
    with_secret = parse(changed(valid_data(), state__url=state_url), workdir)
    with_cert = parse(
        changed(
            valid_data(),
            graph__credential="certificate",
            graph__client_secret_file=...,
            graph__certificate_path="cert.pem",
            graph__certificate_password_file="cert-password",
        ),
        workdir,
    )

    for config in (with_secret, with_cert):
        for text in (
            repr(config),
            str(config),
            str(config.model_dump()),
            config.model_dump_json(),
            repr(config.graph),
            repr(config.scim),
        ):
            assert MARK not in text
    # The values are still there for the code that needs them.
    assert with_secret.scim.secret.get_secret_value() == SCIM_SECRET
    assert with_cert.graph.certificate_password == SecretStr(CERT_PASSWORD)


SECRET_MISTAKES: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({"scim__secret": SCIM_SECRET}, {}),
    ({"graph__client_secret": GRAPH_SECRET}, {}),
    ({"scim__base_url": f"https://agent:{SCIM_SECRET}@scim.example.com/scim"}, {}),
    ({"scim__base_url": f"https://scim.example.com/scim?token={SCIM_SECRET}"}, {}),
    ({"scim__base_url": f"https://scim.example.com/{SCIM_SECRET} x"}, {}),
    ({"graph__base_url": f"https://graph.example.com/v1.0?key={GRAPH_SECRET}"}, {}),
    ({"graph__client_id": GRAPH_SECRET}, {}),
    ({"graph__tenant_id": GRAPH_SECRET}, {}),
    ({"state__url": f"mysql://agent:{DB_PASSWORD}@db.example.com/sync"}, {}),
    ({"state__url": f"postgresql://agent:{DB_PASSWORD}@db.example.com:port/sync"}, {}),
    ({"scim__secret_file": ...}, {"SYNCAGENT_SCIM_SECRET": f"Bearer {SCIM_SECRET}"}),
    (
        {"graph__client_secret_file": ...},
        {"SYNCAGENT_GRAPH_CLIENT_SECRET": f"{GRAPH_SECRET} {GRAPH_SECRET}"},
    ),
]


@pytest.mark.parametrize(("changes", "env"), SECRET_MISTAKES)
def test_no_secret_in_error_messages_or_tracebacks(
    workdir: Path, changes: dict[str, Any], env: dict[str, str]
) -> None:
    error = config_error(changed(valid_data(), **changes), workdir, env)

    assert MARK not in str(error)
    assert MARK not in "".join(traceback.format_exception(error))


# --- files, paths and the environment ---------------------------------------------------


def test_resolve_config_path_precedence(tmp_path: Path) -> None:
    env = {"SYNCAGENT_CONFIG": str(tmp_path / "env.toml")}

    assert resolve_config_path("cli.toml", env) == Path("cli.toml")
    assert resolve_config_path(Path("/x/cli.toml"), env) == Path("/x/cli.toml")
    assert resolve_config_path(None, env) == tmp_path / "env.toml"
    assert resolve_config_path(None, {}) == DEFAULT_CONFIG_PATH
    assert resolve_config_path(None, {"SYNCAGENT_CONFIG": ""}) == DEFAULT_CONFIG_PATH
    assert Path("/etc/syncagent/syncagent.toml") == DEFAULT_CONFIG_PATH


def test_load_missing_file_says_how_to_choose_another(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})

    text = str(caught.value)
    assert "\n" not in text
    assert str(path) in text
    assert "--config" in text
    assert "SYNCAGENT_CONFIG" in text


def test_load_reports_toml_syntax_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "syncagent.toml"
    path.write_text('[graph]\ntenant_id = "contoso.onmicrosoft.com"\nclient_id = \n')

    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})

    text = str(caught.value)
    assert "\n" not in text
    assert str(path) in text
    assert re.search(r"line 3, column \d+", text)


@pytest.mark.parametrize(
    ("content", "problem"), [(b"\xff\xfe[graph]", "not UTF-8"), (None, "cannot read")]
)
def test_load_unreadable_file(tmp_path: Path, content: bytes | None, problem: str) -> None:
    path = tmp_path / "syncagent.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)

    with pytest.raises(ConfigError, match=problem):
        load_config(path, env={})


def test_load_resolves_relative_files_next_to_the_config_not_the_cwd(
    workdir: Path, tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = workdir / "syncagent.toml"
    path.write_text(
        f"""
        [graph]
        tenant_id = "{TENANT}"
        client_id = "{CLIENT}"
        client_secret_file = "graph-secret"
        [scim]
        base_url = "https://scim.example.com/scim/v2?aadOptscim062020"
        secret_file = "scim-secret"
        """
    )
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))

    config = load_config(path, env={})

    assert config.path == path
    assert config.scim.secret.get_secret_value() == SCIM_SECRET
    assert config.scim.dialect is Dialect.COMPLIANT


# --- the example file -------------------------------------------------------------------


def copy_example(directory: Path) -> Path:
    path = directory / "syncagent.toml"
    shutil.copyfile(EXAMPLE, path)
    return path


def test_example_loads_with_its_secret_files_next_to_it(tmp_path: Path) -> None:
    path = copy_example(tmp_path)
    (tmp_path / "graph-client-secret").write_text(GRAPH_SECRET)
    (tmp_path / "scim-secret").write_text(SCIM_SECRET)

    config = load_config(path, env={})

    assert config.graph.credential is CredentialKind.CLIENT_SECRET
    assert config.graph.client_secret == SecretStr(GRAPH_SECRET)
    assert config.source.group_prefix == "SourceMagnet"
    assert config.scim.secret.get_secret_value() == SCIM_SECRET
    assert config.state.url == DEFAULT_STATE_URL


def test_example_loads_with_systemd_credentials(tmp_path_factory: Any) -> None:
    config_dir: Path = tmp_path_factory.mktemp("etc")
    credentials: Path = tmp_path_factory.mktemp("credentials")
    (credentials / "graph-client-secret").write_text(GRAPH_SECRET)
    (credentials / "scim-secret").write_text(SCIM_SECRET)

    config = load_config(copy_example(config_dir), env={"CREDENTIALS_DIRECTORY": str(credentials)})

    assert config.graph.client_secret == SecretStr(GRAPH_SECRET)
    assert config.scim.secret.get_secret_value() == SCIM_SECRET


_EXAMPLE_SECTION = re.compile(r"^#?\s*\[(\w+)\]\s*$")
_EXAMPLE_KEY = re.compile(r"^#?\s*(\w+) = (.+)$")


def example_settings() -> list[tuple[str, str, str]]:
    """Every `key = value` line of the example, commented out or not, with its section."""
    settings_found: list[tuple[str, str, str]] = []
    section = ""
    for line in EXAMPLE.read_text().splitlines():
        if match := _EXAMPLE_SECTION.match(line):
            section = match.group(1)
        elif match := _EXAMPLE_KEY.match(line):
            settings_found.append((section, match.group(1), match.group(2)))
    return settings_found


def test_example_documents_every_key_and_no_other() -> None:
    documented = {(section, key) for section, key, _ in example_settings()}
    known = {(section, key) for section, keys in config_keys().items() for key in keys}

    assert documented == known


@pytest.mark.parametrize(("section", "key", "value"), example_settings())
def test_example_values_are_valid(section: str, key: str, value: str) -> None:
    data = changed(tomllib.loads(EXAMPLE.read_text()), **{f"{section}__{key}": ...})
    data[section][key] = tomllib.loads(f"v = {value}")["v"]

    _validate_file(data)  # raises ConfigError if the documented value is not accepted


# --- any input whatsoever ---------------------------------------------------------------

_SCALARS = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.text(max_size=10), max_size=3),
)
_KEYS = [(section, key) for section, keys in config_keys().items() for key in keys]


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: Any) -> Path:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    write_secrets(directory)
    return directory


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(_KEYS), st.tuples(st.sampled_from(sorted(config_keys())), st.text())
            ),
            _SCALARS,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_any_value_gives_a_config_or_a_one_line_error(
    fuzz_dir: Path, changes: list[tuple[tuple[str, str], object]]
) -> None:
    data = valid_data()
    for (section, key), value in changes:
        data.setdefault(section, {})[key] = value
    error: ConfigError | None = None
    try:
        parse(data, fuzz_dir)
    except ConfigError as exc:
        error = exc
    if error is not None:
        text = str(error)
        assert text.isprintable()
        assert error.key
        assert text.startswith(f"{error.key}: ")
        assert MARK not in text
