"""The Graph credentials: the token-file credential, and building azure-identity ones."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from azure.identity.aio import (
    AzureCliCredential,
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from syncagent.config import GraphConfig, SourceConfig
from syncagent.emulator.server import GraphEmulator
from syncagent.errors import ConfigError, SourceAuthError
from syncagent.graph import GraphSource, StaticTokenFileCredential, build_credential
from tests.fixtures.emulator import TEST_GRAPH_TOKEN, graph_emulator  # noqa: F401

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "5a0b7a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
SCOPE = "https://graph.microsoft.com/.default"


def get_token(credential: StaticTokenFileCredential) -> Any:
    return asyncio.run(credential.get_token(SCOPE, claims=None, tenant_id=None, enable_cae=True))


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


# ----- StaticTokenFileCredential ----------------------------------------------------------


def test_token_file_is_read_on_every_call(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token\n")
    credential = StaticTokenFileCredential(path)
    assert get_token(credential).token == "first-token"
    path.write_text("rotated-token")
    assert get_token(credential).token == "rotated-token"


def test_a_jwt_expires_when_its_exp_claim_says(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(jwt({"aud": "https://graph.microsoft.com", "exp": 2_000_000_000}))
    assert get_token(StaticTokenFileCredential(path)).expires_on == 2_000_000_000


@pytest.mark.parametrize(
    "token",
    ["opaque-token", "a.b.c", jwt({"aud": "x"}), jwt({"exp": "tomorrow"})],
    ids=["opaque", "three-parts-not-base64-json", "no-exp", "exp-not-a-number"],
)
def test_a_token_without_a_readable_expiry_lives_five_minutes(tmp_path: Path, token: str) -> None:
    path = tmp_path / "token"
    path.write_text(token)
    before = int(time.time())
    expires_on = get_token(StaticTokenFileCredential(path)).expires_on
    assert before + 300 <= expires_on <= int(time.time()) + 300


def test_a_missing_token_file_is_an_auth_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(SourceAuthError, match=re.escape(f"token file {path} does not exist")):
        get_token(StaticTokenFileCredential(path))


def test_an_empty_token_file_is_an_auth_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  \n")
    with pytest.raises(SourceAuthError, match=re.escape(f"token file {path} is empty")):
        get_token(StaticTokenFileCredential(path))


def test_the_token_never_appears_in_repr(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("very-secret-token")
    credential = StaticTokenFileCredential(path)
    get_token(credential)
    assert "very-secret-token" not in repr(credential)
    assert "very-secret-token" not in repr(vars(credential))
    assert str(path) in repr(credential)


# ----- build_credential -------------------------------------------------------------------


@pytest.fixture
def certificate_file(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syncagent test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "app.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return path


def build(**fields: Any) -> Any:
    """build_credential for a GraphConfig in the US Government cloud, closing it afterwards."""
    credential = build_credential(GraphConfig(cloud="usgov", **fields))
    asyncio.run(credential.close())
    return credential


def test_client_secret_credential_gets_the_clouds_authority() -> None:
    credential = build(
        credential="client_secret", tenant_id=TENANT, client_id=CLIENT, client_secret="s3cr3t"
    )
    assert isinstance(credential, ClientSecretCredential)
    assert credential._client._authority == "https://login.microsoftonline.us"


def test_certificate_credential_reads_the_certificate(certificate_file: Path) -> None:
    credential = build(
        credential="certificate",
        tenant_id=TENANT,
        client_id=CLIENT,
        certificate_path=certificate_file,
    )
    assert isinstance(credential, CertificateCredential)
    assert credential._client._authority == "https://login.microsoftonline.us"


def test_an_unreadable_certificate_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    with pytest.raises(ConfigError) as caught:
        build(credential="certificate", tenant_id=TENANT, client_id=CLIENT, certificate_path=bad)
    assert caught.value.key == "graph.certificate_path"


def test_workload_identity_credential(tmp_path: Path) -> None:
    token_file = tmp_path / "federated"
    credential = build(
        credential="workload_identity",
        tenant_id=TENANT,
        client_id=CLIENT,
        federated_token_file=token_file,
    )
    assert isinstance(credential, WorkloadIdentityCredential)
    assert credential._token_file_path == str(token_file)
    assert credential._client._authority == "https://login.microsoftonline.us"


def test_managed_identity_and_azure_cli_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(build(credential="managed_identity"), ManagedIdentityCredential)
    assert isinstance(build(credential="azure_cli", tenant_id=TENANT), AzureCliCredential)


def test_token_kind_builds_the_file_credential(tmp_path: Path) -> None:
    credential = build(credential="token", token_file=tmp_path / "t")
    assert isinstance(credential, StaticTokenFileCredential)
    assert credential.path == tmp_path / "t"


def test_a_missing_secret_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        build(credential="client_secret", tenant_id=TENANT, client_id=CLIENT)
    assert caught.value.key == "graph.client_secret"


# ----- a real ManagedIdentityCredential, end to end ---------------------------------------


class _TokenEndpoint(BaseHTTPRequestHandler):
    """App Service's managed-identity endpoint: GET /msi/token with X-IDENTITY-HEADER."""

    issued = TEST_GRAPH_TOKEN
    status = 200
    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        self.seen.append(
            {
                "path": split.path,
                **dict(parse_qsl(split.query)),
                **{"header": self.headers.get("X-IDENTITY-HEADER", "")},
            }
        )
        if self.status == 200:
            body = {
                "access_token": self.issued,
                "expires_on": str(int(time.time()) + 3600),
                "resource": "https://graph.microsoft.com",
                "token_type": "Bearer",
            }
        else:
            body = {"error": "invalid_request", "error_description": "AADSTS500011: no such app"}
        payload = json.dumps(body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def token_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_TokenEndpoint]]:
    handler = type("Handler", (_TokenEndpoint,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    for name in ("IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{server.server_port}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "x")
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_managed_identity_token_reaches_graph(
    token_endpoint: type[_TokenEndpoint],
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    group = graph_emulator.tenant.add_group("SourceMagnetAdmin")
    graph = GraphConfig(credential="managed_identity", base_url=graph_emulator.base_url)
    with GraphSource.from_config(graph, SourceConfig()) as source:
        assert set(source.read_snapshot().groups) == {group}
        source.read_snapshot()

    assert graph_emulator.requests[0].headers["authorization"] == f"Bearer {TEST_GRAPH_TOKEN}"
    # azure-identity caches the token: one token request for several Graph requests.
    assert token_endpoint.seen == [
        {
            "path": "/msi/token",
            "api-version": "2019-08-01",
            "resource": "https://graph.microsoft.com",
            "header": "x",
        }
    ]


def test_a_refused_managed_identity_token_is_an_auth_error(
    token_endpoint: type[_TokenEndpoint],
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    token_endpoint.status = 400
    graph = GraphConfig(credential="managed_identity", base_url=graph_emulator.base_url)
    with (
        GraphSource.from_config(graph, SourceConfig()) as source,
        pytest.raises(SourceAuthError, match="cannot get an access token") as caught,
    ):
        source.read_snapshot()
    assert "AADSTS500011" in str(caught.value)
    assert graph_emulator.requests == []
