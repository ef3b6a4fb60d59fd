"""Raw Graph responses into domain values and errors.

Collections are fetched without the SDK's typed models (their deserialiser costs about
10 ms per object), so the status check the SDK would have done happens here, and so does
the reading of the plain JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from syncagent.errors import SourceAuthError, SourceError
from syncagent.model import DirectoryGroup, DirectoryUser

PERMISSIONS_REMEDY = (
    "grant GroupMember.Read.All and User.Read.All application permissions with admin consent"
)
USER_READ_REMEDY = "grant the application permission User.Read.All (with admin consent)"
CREDENTIAL_REMEDY = (
    "check graph.tenant_id, graph.client_id and the credential, and that the token is "
    "issued for the Graph scope"
)
_USER_TYPE = "#microsoft.graph.user"
_RETRIED = frozenset({429, 503, 504})


def error_details(response: httpx.Response) -> tuple[str, str, str | None]:
    """(code, message, request-id) from Graph's error envelope, tolerating non-JSON bodies."""
    code, message, request_id = "", "", response.headers.get("request-id")
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        message = str(error.get("message") or "")
        inner = error.get("innerError") or error.get("innererror")
        if not request_id and isinstance(inner, dict) and inner.get("request-id"):
            request_id = str(inner["request-id"])
    if not code:
        code = response.reason_phrase or "error"
    if not message:
        message = response.text[:200].strip() or "(no message)"
    return code, message, request_id


def raise_for_status(response: httpx.Response, url: str, *, retries: int) -> None:
    """Map a non-2xx answer to the program's errors; 401/403 are configuration problems."""
    status = response.status_code
    if 200 <= status < 300:
        return
    code, message, request_id = error_details(response)
    detail = f"{status} {code}: {message}"
    rid = f" (request-id {request_id})" if request_id else ""
    if status == 401:
        raise SourceAuthError(
            f"Graph rejected the access token ({detail}) at {url}{rid}", remedy=CREDENTIAL_REMEDY
        )
    if status == 403:
        raise SourceAuthError(
            f"Graph denied the request ({detail}) at {url}{rid}", remedy=PERMISSIONS_REMEDY
        )
    after = f" after {retries} retries" if status in _RETRIED and retries else ""
    raise SourceError(f"Graph answered {detail} at {url}{rid}{after}")


def is_not_found(response: httpx.Response, url: str) -> bool:
    """True for Graph's "this object does not exist" answer.

    A 404 is taken as the object's absence only when it carries Graph's not-found error
    code (`Request_ResourceNotFound` and kin). A bare 404, say from a proxy or a wrong base
    URL, raises instead: reading it as "deleted" would deprovision people.
    """
    if response.status_code != 404:
        return False
    code, message, request_id = error_details(response)
    if "notfound" in code.casefold():
        return True
    rid = f" (request-id {request_id})" if request_id else ""
    raise SourceError(
        f"Graph answered 404 {code}: {message} at {url}{rid}, which is not Graph's not-found error",
        remedy="check graph.base_url",
    )


def is_unsupported_query(response: httpx.Response) -> bool:
    """Graph's 400 for a query it serves only as an advanced query."""
    if response.status_code != 400:
        return False
    code, _, _ = error_details(response)
    return code.casefold() == "request_unsupportedquery"


def page_body(response: httpx.Response, url: str, *, retries: int) -> Mapping[str, Any]:
    """The JSON object of a successful collection page."""
    raise_for_status(response, url, retries=retries)
    try:
        body = response.json()
    except ValueError as exc:
        raise SourceError(f"Graph sent a page that is not JSON at {url}: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise SourceError(f"Graph sent a page without a 'value' list at {url}")
    return body


def next_link(body: Mapping[str, Any]) -> str | None:
    link = body.get("@odata.nextLink")
    return link if isinstance(link, str) and link else None


def parse_groups(body: Mapping[str, Any], url: str) -> list[DirectoryGroup]:
    groups = []
    for item in body["value"]:
        gid = item.get("id") if isinstance(item, dict) else None
        name = item.get("displayName") if isinstance(item, dict) else None
        if not isinstance(gid, str) or not gid or not isinstance(name, str):
            raise SourceError(f"Graph sent a group without id or displayName at {url}")
        groups.append(DirectoryGroup(id=gid, display_name=name))
    return groups


def parse_users(body: Mapping[str, Any], url: str) -> list[DirectoryUser]:
    """The users on a members page; other member types are skipped.

    The `/graph.user` cast already filters, the type check only guards against a server that
    ignores it. A user without userPrincipalName or accountEnabled is a "limited information"
    object: the app may list members but not read users.
    """
    users = []
    for item in body["value"]:
        if not isinstance(item, dict):
            raise SourceError(f"Graph sent a member that is not an object at {url}")
        odata_type = item.get("@odata.type")
        if odata_type is not None and odata_type != _USER_TYPE:
            continue
        uid = item.get("id")
        if not isinstance(uid, str) or not uid:
            raise SourceError(f"Graph sent a member without id at {url}")
        upn = item.get("userPrincipalName")
        enabled = item.get("accountEnabled")
        if not isinstance(upn, str) or not upn or not isinstance(enabled, bool):
            raise SourceAuthError(
                f"Graph sent user {uid} without userPrincipalName or accountEnabled at {url}: "
                "the application sees only limited information about users",
                remedy=USER_READ_REMEDY,
            )
        users.append(
            DirectoryUser(
                id=uid,
                user_principal_name=upn,
                given_name=_text(item.get("givenName")),
                surname=_text(item.get("surname")),
                job_title=_text(item.get("jobTitle")),
                account_enabled=enabled,
            )
        )
    return users


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
