"""A SCIM target on loopback: scim2-server in-process, for the demo and the tests.

It stands in for SourceMagnet's endpoint. The default policy tolerates the two things
Entra's default dialect does that RFC 7644 does not allow (removing a member by value,
adding through a filter path that matches nothing); `strict=True` reads the RFC literally.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from scim2_models import ScimPolicy, ScimProvider
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

ENTRA_TOLERANT_POLICY = ScimPolicy(
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64  # the stdlib's 5 drops bursts of connections


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        if self.headers.get("Content-Type") is None:
            # wsgiref invents text/plain; the server must see what was really sent.
            environ.pop("CONTENT_TYPE", None)
        return environ


@dataclass(frozen=True)
class RunningScimTarget:
    base_url: str  # e.g. http://127.0.0.1:PORT/v2
    token: str
    storage: InMemoryStorage

    def users(self) -> list[dict[str, Any]]:
        """Every stored user, as JSON-ready dicts keyed by SCIM attribute names."""
        return self._dump("User")

    def groups(self) -> list[dict[str, Any]]:
        return self._dump("Group")

    def _dump(self, kind: str) -> list[dict[str, Any]]:
        return [
            r.model_dump(mode="json", by_alias=True, exclude_none=True)
            for r in self.storage.resources
            if type(r).__name__.startswith(kind)
        ]


def build_app(token: str, *, strict: bool = False) -> tuple[WSGIApplication, InMemoryStorage]:
    config = load_default_service_provider_config()
    config.authentication_schemes = [BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=config,
        policy=None if strict else ENTRA_TOLERANT_POLICY,
    )
    storage = InMemoryStorage()
    app = BearerTokenApplication(
        storage, provider, service=ScimService(provider), bearer_tokens=[token]
    )
    return app, storage


@contextmanager
def serve(app: WSGIApplication) -> Iterator[str]:
    """Serve a WSGI app on 127.0.0.1 (ephemeral port); yields its root URL."""
    httpd = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_QuietHandler)
    thread = threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": 0.02},  # shutdown waits for one poll
        name="scim-target",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@contextmanager
def scim_target(token: str, *, strict: bool = False) -> Iterator[RunningScimTarget]:
    """A fresh scim2-server on loopback until the block ends; its base URL ends in /v2."""
    app, storage = build_app(token, strict=strict)
    with serve(app) as root:
        yield RunningScimTarget(f"{root}/v2", token, storage)
