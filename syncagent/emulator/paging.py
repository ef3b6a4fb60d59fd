"""Collections one page at a time: $top, opaque $skiptoken values and @odata.nextLink."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from syncagent.emulator.odata import Call, page_size, wants_count
from syncagent.emulator.responses import GraphError

T = TypeVar("T")


def _encode_token(after_id: str) -> str:
    payload = json.dumps({"v": 1, "after": after_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = data["after"]
        if data.get("v") != 1 or not isinstance(after, str):
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise GraphError(
            400,
            "The specified page token value has expired and can no longer be included in your "
            "request.",
            code="Directory_ExpiredPageToken",
        ) from None
    return after


def _page(items: Sequence[T], key: Callable[[T], str], call: Call) -> tuple[list[T], str | None]:
    """One page ordered by object id; the token holds the last id served (keyset paging).

    Keyset paging means objects added or removed between two page requests never make the
    next page skip or repeat an object that was there all along.
    """
    size = page_size(call.params)
    ordered = sorted(items, key=key)
    start = 0
    token = call.params.get("$skiptoken")
    if token is not None:
        start = bisect.bisect_right([key(item) for item in ordered], _decode_token(token))
    page = ordered[start : start + size]
    more = start + size < len(ordered)
    return page, (_encode_token(key(page[-1])) if more and page else None)


def _next_link(base_url: str, call: Call, token: str) -> str:
    """The request's own URL with a new $skiptoken: following it verbatim gives the next page."""
    pairs = [(name, value) for name, value in call.params.items() if name != "$skiptoken"]
    pairs.append(("$skiptoken", token))
    query = "&".join(f"{quote(name, safe='$')}={quote(value, safe=',')}" for name, value in pairs)
    return f"{base_url}{call.raw_path}?{query}"


def collection(
    base_url: str,
    call: Call,
    context: str,
    items: Sequence[T],
    *,
    key: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    count = wants_count(call)
    page, token = _page(items, key, call)
    body: dict[str, Any] = {"@odata.context": context}
    if count:
        body["@odata.count"] = len(items)
    body["value"] = [render(item) for item in page]
    if token is not None:
        body["@odata.nextLink"] = _next_link(base_url, call, token)
    return body
