"""Assemble the msgraph SDK client by hand.

`GraphServiceClient(credentials=...)` would derive the token scope from the request host
(wrong for national clouds and for a loopback emulator), allow every host to receive the
token, and fix the retry policy and timeouts. Building the pieces here keeps those three
decisions ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_default_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential


@dataclass(frozen=True, slots=True)
class SdkClient:
    """The service client and the HTTP machinery under it, which the caller must close."""

    service: GraphServiceClient
    http: httpx.AsyncClient
    # msgraph-core wraps each httpx transport in one whose aclose() does not reach the
    # wrapped transport, so its pooled sockets would leak; these are the originals.
    transports: tuple[httpx.AsyncBaseTransport, ...]

    async def aclose(self) -> None:
        try:
            await self.http.aclose()
        finally:
            for transport in self.transports:
                await transport.aclose()


def build_sdk_client(
    *,
    base_url: str,
    credential: AsyncTokenCredential,
    scope: str,
    timeout: float,
    max_retries: int,
    retry_delay: float,
) -> SdkClient:
    """A GraphServiceClient that sends `scope` tokens only to the host of `base_url`."""
    host = urlsplit(base_url).hostname
    if not host:
        raise ValueError(f"base_url {base_url!r} has no host")
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[scope], allowed_hosts=[host])
    options = dict(graph_default_options)
    options[RetryHandlerOption.get_key()] = RetryHandlerOption(
        delay=retry_delay, max_retries=max_retries
    )
    raw = httpx.AsyncClient(timeout=timeout)
    transports = (raw._transport, *(t for t in raw._mounts.values() if t is not None))
    http = GraphClientFactory.create_with_default_middleware(client=raw, options=options)
    adapter = GraphRequestAdapter(auth, client=http)
    # Set before the service client exists, or it installs the global-cloud default.
    adapter.base_url = base_url.rstrip("/")
    service = GraphServiceClient(request_adapter=adapter)
    return SdkClient(service=service, http=http, transports=transports)
