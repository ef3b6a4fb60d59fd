"""A loopback HTTP server that answers the Microsoft Graph v1.0 reads syncagent makes.

The real SDK talks to it over HTTP, so the URL shapes, query encodings, paging links and error
envelopes must be the ones Graph uses; anything the emulator does not understand is refused the
way Graph refuses it rather than answered loosely. This module holds the HTTP side: sockets,
recording, injected faults and the bearer token check; `routes` answers the requests.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import socketserver
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from syncagent.emulator.odata import parse_params
from syncagent.emulator.responses import GraphError, Reply, error_reply
from syncagent.emulator.routes import API_VERSION, GraphApi
from syncagent.emulator.tenant import Tenant

logger = logging.getLogger(__name__)

CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
# What real Graph sends with a 401; it carries no `claims`, so clients do not treat it as a
# continuous-access-evaluation challenge.
_WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
    'authorize", client_id="00000003-0000-0000-c000-000000000000"'
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it: decoded path, query and lower-case headers."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Fault:
    status: int
    path_contains: str | None
    remaining: int
    retry_after: int | None
    code: str | None
    message: str | None

    def matches(self, path: str) -> bool:
        return self.path_contains is None or self.path_contains in path


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: GraphEmulator) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS call a loopback server never needs.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Drop kept-alive connections, so a stopped emulator really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s failed", client_address, exc_info=True)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of Graph expect
    server_version = "GraphEmulator"
    sys_version = ""
    timeout = 60  # idle kept-alive connections end after this many seconds
    # Headers and body go out in separate writes: without TCP_NODELAY each kept-alive
    # response waits for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        self._discard_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply, request_id, client_request_id = self.server.emulator._handle(
            self.command, self.path, headers
        )
        payload = json.dumps(reply.body, separators=(",", ":"), ensure_ascii=False).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("OData-Version", "4.0")
        self.send_header("request-id", request_id)
        self.send_header("client-request-id", client_request_id)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _discard_body(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # cannot find the end of the body: do not reuse
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
        elif length > 0:
            self.rfile.read(length)


class GraphEmulator:
    """Serves a `Tenant` as Microsoft Graph v1.0 on loopback, over real HTTP.

    Every request is recorded; `inject_fault` makes the next matching requests fail the way
    Graph fails (throttling, missing permissions, outages) so retry and error paths can be tested.
    """

    def __init__(
        self,
        tenant: Tenant | None = None,
        *,
        token: str = "emulator-token",  # noqa: S107 - a fixed token for a local test server
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.tenant = tenant if tenant is not None else Tenant()
        self._token = token
        self._address = (host, port)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._api: GraphApi | None = None

    def __repr__(self) -> str:
        state = self.base_url if self._server is not None else "stopped"
        return f"GraphEmulator({state})"

    @property
    def base_url(self) -> str:
        """The Graph base URL, without a trailing slash (valid once started)."""
        if self._api is None:
            raise RuntimeError("the Graph emulator is not running")
        return self._api.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def start(self) -> GraphEmulator:
        if self._server is not None:
            raise RuntimeError("the Graph emulator is already running")
        server = _HTTPServer(self._address, self)
        host, port = str(server.server_name), server.server_port
        host_text = f"[{host}]" if ":" in host else host
        self._api = GraphApi(self.tenant, f"http://{host_text}:{port}/{API_VERSION}")
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"graph-emulator-{port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("Graph emulator listening on %s", self._api.base_url)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = self._api = None

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def inject_fault(
        self,
        status: int,
        *,
        path_contains: str | None = None,
        times: int = 1,
        retry_after: int | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` requests whose decoded path contains `path_contains`
        (any request when None) with `status` and Graph's error envelope."""
        if not 400 <= status <= 599:
            raise ValueError(f"a fault needs an error status, not {status}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(_Fault(status, path_contains, times, retry_after, code, message))

    # called on a request thread

    def _handle(
        self, method: str, target: str, headers: Mapping[str, str]
    ) -> tuple[Reply, str, str]:
        request_id = str(uuid.uuid4())
        client_request_id = headers.get("client-request-id") or str(uuid.uuid4())
        split = urlsplit(target)
        path = unquote(split.path)
        received = dict(parse_qsl(split.query, keep_blank_values=True))
        with self._lock:
            self._requests.append(RecordedRequest(method, path, received, dict(headers)))
        try:
            self._raise_fault(path)
            self._authenticate(headers)
            api = self._api
            if api is None:  # stopped while this request was in flight
                raise GraphError(503)
            reply = api.dispatch(method, split.path, parse_params(split.query), headers)
        except GraphError as error:
            reply = error_reply(error, request_id, client_request_id)
        except Exception:
            logger.exception("Graph emulator failed on %s %s", method, path)
            reply = error_reply(GraphError(500), request_id, client_request_id)
        return reply, request_id, client_request_id

    def _raise_fault(self, path: str) -> None:
        with self._lock:
            fault = next((f for f in self._faults if f.matches(path)), None)
            if fault is None:
                return
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.remove(fault)
        extra: dict[str, str] = {}
        if fault.retry_after is not None:
            extra["Retry-After"] = str(fault.retry_after)
        if fault.status == 429:
            extra["x-ms-throttle-information"] = "ResourceUnitLimitExceeded"
        if fault.status == 401:
            extra["WWW-Authenticate"] = _WWW_AUTHENTICATE
        raise GraphError(fault.status, fault.message, code=fault.code, headers=extra)

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        scheme, _, credential = headers.get("authorization", "").strip().partition(" ")
        credential = credential.strip()
        challenge = {"WWW-Authenticate": _WWW_AUTHENTICATE}
        if scheme.lower() != "bearer" or not credential:
            raise GraphError(401, "Access token is empty.", headers=challenge)
        if not hmac.compare_digest(credential.encode(), self._token.encode()):
            raise GraphError(401, "Access token validation failure.", headers=challenge)
