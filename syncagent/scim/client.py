"""A thin SCIM client over httpx that sends Entra's requests and nothing else.

It does not build bodies (see `requests`) and does not decide what to do with what it
finds: it sends, retries when that is certainly safe, and turns every failure into a
`TargetError` that names the request. A plain httpx layer rather than scim2-client,
because we need Entra's exact bytes (capitalised ops, string booleans), tolerance of
whatever a vendor's endpoint answers, and our own retry rules.

Retry rules. A request that certainly did not reach the application (connect error,
429, or 503 with Retry-After) may be repeated whatever its method. GET, PATCH and DELETE
may also be repeated after a read timeout, a reset or a 502/503/504: sending the same
PATCH twice leaves the same state. POST /Users is never repeated once it may have been
processed, or the retry could create a second user; the next run matches it instead.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import ssl
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote, urlencode

import httpx
from pydantic import SecretStr

from syncagent import __version__
from syncagent.errors import TargetError, TargetUnavailable
from syncagent.scim.requests import group_filter, user_filter

__all__ = ["ScimClient", "SentRequest"]

log = logging.getLogger(__name__)

SCIM_MEDIA_TYPE: Final = "application/scim+json"
_JSON_MEDIA_TYPES: Final = frozenset({SCIM_MEDIA_TYPE, "application/json"})
_IDEMPOTENT: Final = frozenset({"GET", "PATCH", "DELETE"})
_OVERLOADED: Final = frozenset({429, 502, 503, 504})
_MAX_WAIT: Final = 120.0
_AUTH_REMEDY: Final = "check the provisioning secret (scim.secret_file)"
_PROBE_REMEDY: Final = "check scim.base_url and the provisioning secret (scim.secret_file)"

# Failures raised before a byte of the request left: always safe to repeat.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class SentRequest:
    """A request as sent (or, for a dry run, as it would have been): never its headers."""

    method: str
    path: str  # relative to the base URL, query included: '/Users?filter=userName+eq+%22…%22'
    body: dict[str, Any] | None
    status: int | None  # None when no answer came back
    sent: bool = True


class ScimClient:
    """Speaks to one SCIM endpoint with one bearer token."""

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
        on_request: Callable[[SentRequest], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self._timeout = timeout
        self._max_retries = max(0, max_retries)
        self._on_request = on_request
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=timeout,
            verify=_ssl_context(verify),
            transport=transport,
            follow_redirects=False,
            headers={"Accept": SCIM_MEDIA_TYPE, "User-Agent": f"syncagent/{__version__}"},
        )

    def __repr__(self) -> str:
        return f"ScimClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- Entra's requests ---------------------------------------------------------------

    def probe(self) -> None:
        """Entra's Test Connection: look up a user that cannot exist, expect an empty list."""
        try:
            body = self._json("GET", "/Users", [("filter", user_filter(str(uuid.uuid4())))])
        except TargetUnavailable:
            raise
        except TargetError as exc:
            exc.remedy = exc.remedy or _PROBE_REMEDY
            raise
        if not isinstance(body, dict) or body.get("totalResults") != 0:
            total = body.get("totalResults") if isinstance(body, dict) else None
            raise TargetError(
                f"GET {self._url('/Users')} did not answer the probe with an empty "
                f"ListResponse (totalResults {total!r})",
                method="GET",
                url=self._url("/Users"),
                status=200,
                remedy=_PROBE_REMEDY,
            )

    def find_users(self, user_name: str) -> list[dict[str, Any]]:
        """Every user matching `userName eq`; more than one is the caller's problem."""
        return self._list("/Users", [("filter", user_filter(user_name))])

    def get_user(self, scim_id: str) -> dict[str, Any] | None:
        return self._get(f"/Users/{_segment(scim_id)}", [])

    def create_user(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._create("/Users", body)

    def patch_user(self, scim_id: str, body: Mapping[str, Any]) -> None:
        self._call("PATCH", f"/Users/{_segment(scim_id)}", [], body)

    def delete_user(self, scim_id: str) -> bool:
        """False when the user was already gone (404)."""
        return self._delete(f"/Users/{_segment(scim_id)}")

    def find_groups(self, display_name: str) -> list[dict[str, Any]]:
        query = [("excludedAttributes", "members"), ("filter", group_filter(display_name))]
        return self._list("/Groups", query)

    def get_group(self, scim_id: str) -> dict[str, Any] | None:
        return self._get(f"/Groups/{_segment(scim_id)}", [("excludedAttributes", "members")])

    def create_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._create("/Groups", body)

    def patch_group(self, scim_id: str, body: Mapping[str, Any]) -> None:
        self._call("PATCH", f"/Groups/{_segment(scim_id)}", [], body)

    def delete_group(self, scim_id: str) -> bool:
        """False when the group was already gone (404)."""
        return self._delete(f"/Groups/{_segment(scim_id)}")

    # -- shapes of answers --------------------------------------------------------------

    def _list(self, path: str, query: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        body = self._json("GET", path, query)
        url = self._url(path, query)
        if not isinstance(body, dict):
            raise self._malformed("GET", url, "a ListResponse object")
        resources = body.get("Resources", body.get("resources"))
        if resources is None and body.get("totalResults") == 0:
            return []
        if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
            raise self._malformed("GET", url, "a ListResponse with Resources")
        return resources

    def _get(self, path: str, query: Sequence[tuple[str, str]]) -> dict[str, Any] | None:
        response = self._call("GET", path, query, None, allow=(404,))
        if response.status_code == 404:
            return None
        return self._resource("GET", path, query, response)

    def _create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        response = self._call("POST", path, [], body)
        created = self._resource("POST", path, [], response)
        if not isinstance(created.get("id"), str) or not created["id"]:
            raise self._malformed("POST", self._url(path), "the created resource with an id")
        return created

    def _delete(self, path: str) -> bool:
        return self._call("DELETE", path, [], None, allow=(404,)).status_code != 404

    def _json(self, method: str, path: str, query: Sequence[tuple[str, str]]) -> Any:
        return _decode(self._call(method, path, query, None), method, self._url(path, query))

    def _resource(
        self, method: str, path: str, query: Sequence[tuple[str, str]], response: httpx.Response
    ) -> dict[str, Any]:
        url = self._url(path, query)
        body = _decode(response, method, url)
        if not isinstance(body, dict):
            raise self._malformed(method, url, "a SCIM resource object")
        return body

    def _malformed(self, method: str, url: str, expected: str) -> TargetError:
        return TargetError(f"{method} {url} did not answer with {expected}", method=method, url=url)

    # -- sending ------------------------------------------------------------------------

    def _url(self, path: str, query: Sequence[tuple[str, str]] = ()) -> str:
        return self.base_url + _target(path, query)

    def _call(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Mapping[str, Any] | None,
        *,
        allow: Sequence[int] = (),
    ) -> httpx.Response:
        """Send with retries; a final answer that is neither 2xx nor allowed raises."""
        response = self._send(method, path, query, body)
        if response.is_success or response.status_code in allow:
            return response
        raise self._error(method, self._url(path, query), response)

    def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Mapping[str, Any] | None,
    ) -> httpx.Response:
        target = _target(path, query)
        url = self.base_url + target
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        content: bytes | None = None
        sent_body: dict[str, Any] | None = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            sent_body = json.loads(content)  # an independent copy of exactly what was sent
            headers["Content-Type"] = SCIM_MEDIA_TYPE

        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, content=content, headers=headers)
            except httpx.TransportError as exc:
                went_out = not isinstance(exc, _NOT_SENT)
                if went_out:
                    self._notify(method, target, sent_body, None)
                retry = _retryable_failure(method, exc)
                if retry and attempt < self._max_retries:
                    wait = _backoff(attempt)
                    self._log_retry(method, target, _cause(exc, self._timeout), wait, attempt)
                    self._sleep(wait)
                    attempt += 1
                    continue
                raise self._unavailable(method, url, exc, went_out) from exc
            self._notify(method, target, sent_body, response.status_code)
            log.debug("%s %s answered %s", method, target, response.status_code)
            wait_for = _retry_wait(method, response, attempt)
            if wait_for is not None and attempt < self._max_retries:
                response.close()
                self._log_retry(method, target, str(response.status_code), wait_for, attempt)
                self._sleep(wait_for)
                attempt += 1
                continue
            return response

    def _notify(
        self, method: str, target: str, body: dict[str, Any] | None, status: int | None
    ) -> None:
        if self._on_request is not None:
            self._on_request(SentRequest(method, target, body, status, sent=True))

    def _log_retry(self, method: str, target: str, why: str, wait: float, attempt: int) -> None:
        log.warning(
            "retrying %s %s after %s: waiting %.1fs (retry %d of %d)",
            method,
            target,
            why,
            wait,
            attempt + 1,
            self._max_retries,
        )

    def _error(self, method: str, url: str, response: httpx.Response) -> TargetError:
        status = response.status_code
        scim_type, detail = _error_body(response)
        detail = self._scrub(detail) if detail else detail
        message = f"{method} {url} answered {status} {_phrase(response)}"
        if scim_type:
            message += f" ({scim_type})"
        if detail:
            message += f": {detail}"
        remedy = _AUTH_REMEDY if status in (401, 403) else None
        kind = TargetUnavailable if status in _OVERLOADED else TargetError
        return kind(
            message,
            method=method,
            url=url,
            status=status,
            scim_type=scim_type,
            detail=detail,
            remedy=remedy,
        )

    def _unavailable(
        self, method: str, url: str, exc: httpx.TransportError, went_out: bool
    ) -> TargetUnavailable:
        message = f"cannot reach {url}: {self._scrub(_cause(exc, self._timeout))}"
        if went_out and method not in _IDEMPOTENT:
            message += " (the request may have been processed; the next run matches it again)"
        return TargetUnavailable(message, method=method, url=url)

    def _scrub(self, text: str) -> str:
        secret = self._token.get_secret_value()
        # A secret this short is not a real one, and masking it would mangle ordinary words.
        return text.replace(secret, "**********") if len(secret) >= 6 else text


def _target(path: str, query: Sequence[tuple[str, str]]) -> str:
    # Encoded the way Entra's requests were observed: spaces as '+', quotes as %22.
    return f"{path}?{urlencode(list(query))}" if query else path


def _segment(scim_id: str) -> str:
    return quote(scim_id, safe="")


def _ssl_context(verify: bool | str) -> bool | ssl.SSLContext:
    if isinstance(verify, bool):
        return verify
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def _retryable_failure(method: str, exc: httpx.TransportError) -> bool:
    if isinstance(exc, _NOT_SENT):
        return not _is_tls_failure(exc)  # a refused certificate will not improve
    return method in _IDEMPOTENT and isinstance(
        exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    )


def _retry_wait(method: str, response: httpx.Response, attempt: int) -> float | None:
    """How long to wait before repeating this answer's request, or None not to."""
    status = response.status_code
    if status not in _OVERLOADED:
        return None
    retry_after = _parse_retry_after(response.headers.get("Retry-After"))
    unprocessed = status == 429 or (status == 503 and retry_after is not None)
    if method not in _IDEMPOTENT and not unprocessed:
        return None
    return retry_after if retry_after is not None else _backoff(attempt)


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), _MAX_WAIT)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), _MAX_WAIT)


def _backoff(attempt: int) -> float:
    base = float(2**attempt)
    return min(base * (1 + 0.25 * random.random()), _MAX_WAIT)  # noqa: S311 (jitter)


def _is_tls_failure(exc: Exception) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    text = str(exc).lower()
    return "certificate" in text or "ssl" in text or "tls" in text


def _cause(exc: httpx.TransportError, timeout: float) -> str:
    """A short human cause for a transport failure."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {timeout:g}s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, httpx.WriteTimeout):
        return f"sending the request timed out after {timeout:g}s"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection in the pool"
    if "refused" in lowered:
        return "connection refused"
    if any(
        marker in lowered
        for marker in (
            "name or service not known",
            "nodename nor servname",
            "getaddrinfo",
            "name resolution",
            "no address associated",
        )
    ):
        host = exc.request.url.host if _has_request(exc) else "the host"
        return f"cannot resolve {host}"
    if _is_tls_failure(exc):
        return f"TLS handshake failed: {text}"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return f"connection closed before the answer was complete ({text or type(exc).__name__})"
    return text or type(exc).__name__


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 (raises when the error carries no request)
    except RuntimeError:
        return False
    return True


def _decode(response: httpx.Response, method: str, url: str) -> Any:
    """The JSON of a SCIM answer; SCIM and plain JSON media types both accepted."""
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type not in _JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        raise TargetError(
            f"{method} {url} answered {response.status_code} with Content-Type "
            f"{media_type or 'none'}, not SCIM JSON",
            method=method,
            url=url,
            status=response.status_code,
        )
    try:
        return response.json()
    except ValueError as exc:
        raise TargetError(
            f"{method} {url} answered {response.status_code} with a body that is not JSON",
            method=method,
            url=url,
            status=response.status_code,
        ) from exc


def _error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    """scimType and detail of a SCIM Error, else the start of the text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("detail" in body or "scimType" in body):
        scim_type = body.get("scimType")
        detail = body.get("detail")
        return (
            str(scim_type) if scim_type else None,
            _one_line(str(detail)) if detail is not None else None,
        )
    text = _one_line(response.text[:200])
    return None, text or None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _phrase(response: httpx.Response) -> str:
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return response.reason_phrase or "(unknown status)"
