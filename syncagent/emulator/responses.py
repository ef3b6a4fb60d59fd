"""Graph's answers: the error a handler raises, and the envelope it is sent in.

Codes and messages default to the ones real Graph sends for each status, so clients take
the same retry and error paths against the emulator as against Graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

_DEFAULT_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    405: "Request_BadRequest",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "serviceNotAvailable",
    504: "GatewayTimeout",
}
_DEFAULT_MESSAGES = {
    401: "Access token validation failure.",
    403: "Insufficient privileges to complete the operation.",
    429: "Please retry again later.",
    500: "An internal server error occurred.",
    503: "The service is temporarily unavailable. Please retry later.",
}


class GraphError(Exception):
    """An answer in Graph's error envelope; handlers raise it and the dispatcher renders it."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code or _DEFAULT_CODES.get(status, HTTPStatus(status).phrase.replace(" ", ""))
        self.message = message or _DEFAULT_MESSAGES.get(status, HTTPStatus(status).phrase)
        self.headers = dict(headers or {})
        super().__init__(f"{status} {self.code}: {self.message}")


def not_found(object_id: str) -> GraphError:
    return GraphError(
        404,
        f"Resource '{object_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def unsupported(message: str = "Unsupported Query.") -> GraphError:
    return GraphError(400, message, code="Request_UnsupportedQuery")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def error_reply(error: GraphError, request_id: str, client_request_id: str) -> Reply:
    inner: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    if error.status == 429:
        inner.update(code="429", message="Please retry after", status="429")
    body = {"error": {"code": error.code, "message": error.message, "innerError": inner}}
    return Reply(error.status, body, error.headers)
