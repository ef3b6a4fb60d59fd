"""Turn the `graph` config section into an azure-identity async credential.

The credential is async because the SDK is: a sync credential would block the event loop
whenever it refreshes its token. The `token` kind exists for tenants that hand the agent a
token minted elsewhere (and for tests): it reads a file on every request, so whoever writes
the file can rotate the token without restarting the agent.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.credentials import AccessToken
from azure.identity.aio import (
    AzureCliCredential,
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from syncagent.errors import ConfigError, SourceAuthError

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from syncagent.config import GraphConfig

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# A token without a readable expiry is re-read well before any plausible lifetime ends.
_OPAQUE_TOKEN_LIFETIME = 300


class StaticTokenFileCredential:
    """An async TokenCredential that serves the bearer token stored in a file.

    The file is read on every `get_token` call (kiota asks once per request), so a token
    rotated on disk is picked up by the next request. The token itself is never kept on the
    object, so neither repr nor a debugger's attribute dump can show it.
    """

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"StaticTokenFileCredential(path={str(self._path)!r})"

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        # Scopes, claims and tenant cannot change a token someone else minted.
        del scopes, claims, tenant_id, enable_cae, kwargs
        token = self._read()
        return AccessToken(token, _expiry(token))

    def _read(self) -> str:
        try:
            token = self._path.read_text(encoding="utf-8").strip()
        except FileNotFoundError as exc:
            raise SourceAuthError(
                f"the Graph token file {self._path} does not exist",
                remedy="write a Graph access token to it, or choose another graph.credential",
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceAuthError(
                f"cannot read the Graph token file {self._path}: {type(exc).__name__}"
            ) from exc
        if not token:
            raise SourceAuthError(
                f"the Graph token file {self._path} is empty",
                remedy="write a Graph access token to it, or choose another graph.credential",
            )
        return token

    async def close(self) -> None:
        """Nothing to release; present because the credential protocol requires it."""

    async def __aenter__(self) -> StaticTokenFileCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


def _expiry(token: str) -> int:
    """The JWT `exp` claim if the token is a JWT, else a short lifetime from now.

    The signature is not checked: Graph does that. The expiry only tells callers when to
    ask again.
    """
    parts = token.split(".")
    if len(parts) == 3:
        payload = parts[1]
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):
            claims = None
        if isinstance(claims, dict):
            exp = claims.get("exp")
            if isinstance(exp, int | float) and not isinstance(exp, bool):
                return int(exp)
    return int(time.time()) + _OPAQUE_TOKEN_LIFETIME


def build_credential(cfg: GraphConfig) -> AsyncTokenCredential:
    """The credential the `graph.credential` kind names, built from the config section.

    Construction makes no network call (certificate files are read here, so a bad path
    fails at startup, not at the first sync).
    """
    kind = str(cfg.credential)
    if kind == "token":
        return StaticTokenFileCredential(_required(cfg.token_file, "token_file", kind))
    if kind == "managed_identity":
        return _construct(
            "client_id", lambda: ManagedIdentityCredential(client_id=cfg.client_id or None)
        )
    if kind == "azure_cli":
        return _construct("tenant_id", lambda: AzureCliCredential(tenant_id=cfg.tenant_id or ""))
    tenant_id = _required(cfg.tenant_id, "tenant_id", kind)
    client_id = _required(cfg.client_id, "client_id", kind)
    if kind == "client_secret":
        secret = _required(cfg.client_secret, "client_secret", kind)
        return _construct(
            "client_secret",
            lambda: ClientSecretCredential(
                tenant_id, client_id, secret.get_secret_value(), authority=cfg.authority
            ),
        )
    if kind == "certificate":
        path = _required(cfg.certificate_path, "certificate_path", kind)
        password = cfg.certificate_password
        return _construct(
            "certificate_path",
            lambda: CertificateCredential(
                tenant_id,
                client_id,
                certificate_path=str(path),
                password=password.get_secret_value() if password else None,
                authority=cfg.authority,
            ),
        )
    if kind == "workload_identity":
        token_file = cfg.federated_token_file
        return _construct(
            "federated_token_file",
            lambda: WorkloadIdentityCredential(
                tenant_id=tenant_id,
                client_id=client_id,
                token_file_path=str(token_file) if token_file else None,
                authority=cfg.authority,
            ),
        )
    raise ConfigError("graph.credential", f"unknown credential kind {kind!r}")


def _required(value: _T | None, key: str, kind: str) -> _T:
    if value is None or value == "":
        raise ConfigError(f"graph.{key}", f"is required when graph.credential is {kind!r}")
    return value


def _construct(key: str, make: Callable[[], AsyncTokenCredential]) -> AsyncTokenCredential:
    """Run an azure-identity constructor, turning its complaints into a config error.

    The messages azure-identity raises name files and formats, never the secret itself.
    """
    try:
        return make()
    except (ValueError, OSError, TypeError) as exc:
        raise ConfigError(f"graph.{key}", f"{type(exc).__name__}: {exc}") from exc
