"""A loopback HTTP server that answers the Microsoft Graph v1.0 reads syncagent makes.

The real SDK talks to it over HTTP, so the URL shapes, query encodings, paging links and error
envelopes must be the ones Graph uses; anything the emulator does not understand is refused the
way Graph refuses it rather than answered loosely. Routes are a table of path patterns, so new
endpoints (such as the delta queries) are one more entry and one more handler.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import hmac
import json
import logging
import re
import socket
import socketserver
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from syncagent.emulator.tenant import EmulatedGroup, EmulatedUser, Member, Tenant

logger = logging.getLogger(__name__)

API_VERSION = "v1.0"
CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999

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
# What real Graph sends with a 401; it carries no `claims`, so clients do not treat it as a
# continuous-access-evaluation challenge.
_WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
    'authorize", client_id="00000003-0000-0000-c000-000000000000"'
)
_ODATA_OPTIONS = frozenset(
    {
        "$filter",
        "$select",
        "$top",
        "$skip",
        "$skiptoken",
        "$count",
        "$orderby",
        "$search",
        "$expand",
        "$format",
        "$deltatoken",
        "$levels",
        "$apply",
        "$compute",
        "$index",
        "$schemaversion",
    }
)


# ----- errors and replies -----------------------------------------------------------------


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


def _not_found(object_id: str) -> GraphError:
    return GraphError(
        404,
        f"Resource '{object_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def _unsupported(message: str = "Unsupported Query.") -> GraphError:
    return GraphError(400, message, code="Request_UnsupportedQuery")


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def _error_reply(error: GraphError, request_id: str, client_request_id: str) -> _Reply:
    inner: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    if error.status == 429:
        inner.update(code="429", message="Please retry after", status="429")
    body = {"error": {"code": error.code, "message": error.message, "innerError": inner}}
    return _Reply(error.status, body, error.headers)


# ----- requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it: decoded path, query and lower-case headers."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Call:
    """A request after parsing, handed to a route handler."""

    raw_path: str  # as sent, after the version segment; used to build paging links
    params: Mapping[str, str]  # OData option names lower-cased ("$filter"), values decoded
    headers: Mapping[str, str]
    captures: Mapping[str, str]

    @property
    def eventual(self) -> bool:
        return self.headers.get("consistencylevel", "").strip().lower() == "eventual"


def _parse_params(raw_query: str) -> dict[str, str]:
    """Decode a query string; OData option names are lower-cased ("$Top" is "$top")."""
    options: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        key = name.strip().lower() if name.strip().startswith("$") else name
        if key in options:
            raise GraphError(
                400,
                f"Query option '{key}' was specified more than once, but it must be specified "
                "at most once.",
            )
        options[key] = value
    return options


def _check_options(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    for name in params:
        if not name.startswith("$"):
            continue  # Graph ignores custom (non-$) query options
        if name not in _ODATA_OPTIONS:
            raise GraphError(
                400,
                f"Unrecognized query argument specified: '{name[1:]}'.",
                code="Request_BadRequest",
            )
        if name not in allowed:
            raise _unsupported(f"The query option '{name}' is not supported on this resource.")


def _page_size(params: Mapping[str, str]) -> int:
    raw = params.get("$top")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw.strip())
    except ValueError:
        raise GraphError(
            400, f"Invalid value '{raw}' for query option '$top'.", code="Request_BadRequest"
        ) from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _unsupported(
            f"Invalid page size specified: '{size}'. "
            f"Must be between 1 and {MAX_PAGE_SIZE} inclusive."
        )
    return size


def _wants_count(call: _Call) -> bool:
    raw = call.params.get("$count")
    if raw is None or raw.strip().lower() == "false":
        return False
    if raw.strip().lower() != "true":
        raise GraphError(400, f"Invalid value '{raw}' for query option '$count'.")
    if not call.eventual:
        raise GraphError(400, "$count is not currently supported.", code="Request_BadRequest")
    return True


# ----- properties and $select -------------------------------------------------------------


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Getter = Callable[[Any], Any]

# The group properties Graph returns without $select, in its order.
_GROUP_PROPERTIES: dict[str, Callable[[EmulatedGroup], Any]] = {
    "id": lambda g: g.id,
    "deletedDateTime": lambda g: None,
    "classification": lambda g: None,
    "createdDateTime": lambda g: _timestamp(g.created_date_time),
    "description": lambda g: g.description,
    "displayName": lambda g: g.display_name,
    "expirationDateTime": lambda g: None,
    "groupTypes": lambda g: list(g.group_types),
    "isAssignableToRole": lambda g: None,
    "mail": lambda g: g.mail,
    "mailEnabled": lambda g: g.mail_enabled,
    "mailNickname": lambda g: g.mail_nickname,
    "membershipRule": lambda g: None,
    "membershipRuleProcessingState": lambda g: None,
    "onPremisesLastSyncDateTime": lambda g: None,
    "onPremisesSecurityIdentifier": lambda g: None,
    "onPremisesSyncEnabled": lambda g: None,
    "preferredDataLocation": lambda g: None,
    "preferredLanguage": lambda g: None,
    "proxyAddresses": lambda g: [f"SMTP:{g.mail}"] if g.mail else [],
    "renewedDateTime": lambda g: _timestamp(g.created_date_time),
    "resourceBehaviorOptions": lambda g: [],
    "resourceProvisioningOptions": lambda g: [],
    "securityEnabled": lambda g: g.security_enabled,
    "theme": lambda g: None,
    "visibility": lambda g: "Private" if "Unified" in g.group_types else None,
    "onPremisesProvisioningErrors": lambda g: [],
}
_GROUP_DEFAULT = tuple(_GROUP_PROPERTIES)

_USER_PROPERTIES: dict[str, Callable[[EmulatedUser], Any]] = {
    "businessPhones": lambda u: [],
    "displayName": lambda u: u.display_name,
    "givenName": lambda u: u.given_name,
    "jobTitle": lambda u: u.job_title,
    "mail": lambda u: u.mail,
    "mobilePhone": lambda u: None,
    "officeLocation": lambda u: None,
    "preferredLanguage": lambda u: None,
    "surname": lambda u: u.surname,
    "userPrincipalName": lambda u: u.user_principal_name,
    "id": lambda u: u.id,
    "accountEnabled": lambda u: u.account_enabled,
    "createdDateTime": lambda u: _timestamp(u.created_date_time),
    "deletedDateTime": lambda u: _timestamp(u.deleted_date_time),
    "userType": lambda u: "Member",
    "department": lambda u: None,
    "companyName": lambda u: None,
    "employeeId": lambda u: None,
    "mailNickname": lambda u: u.user_principal_name.split("@", 1)[0],
}
# Graph's default user set stops at `id`; the rest appear only when selected.
_USER_DEFAULT = tuple(list(_USER_PROPERTIES)[: list(_USER_PROPERTIES).index("id") + 1])

_TYPE_NAMES = {"user": "microsoft.graph.user", "group": "microsoft.graph.group"}


def _parse_select(
    params: Mapping[str, str], known: Sequence[Mapping[str, Any]], type_name: str
) -> tuple[str, ...] | None:
    """Canonical property names from $select (case-insensitive), or None when absent."""
    raw = params.get("$select")
    if raw is None:
        return None
    by_folded = {name.lower(): name for props in known for name in props}
    chosen: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        if name == "*":
            return tuple(dict.fromkeys(n for props in known for n in props))
        canonical = by_folded.get(name.lower())
        if canonical is None:
            raise GraphError(
                400,
                "Parsing OData Select and Expand failed: Could not find a property named "
                f"'{name}' on type '{type_name}'.",
            )
        if canonical not in chosen:
            chosen.append(canonical)
    return tuple(chosen)


def _shape(
    obj: Any,
    properties: Mapping[str, Getter],
    select: tuple[str, ...] | None,
    default: Sequence[str],
) -> dict[str, Any]:
    """Render one object: `id` first, then the selected (or default) properties it has."""
    names = default if select is None else select
    item: dict[str, Any] = {"id": properties["id"](obj)}
    for name in names:
        if name in properties and name != "id":
            item[name] = properties[name](obj)
    return item


def _shape_member(member: Member, select: tuple[str, ...] | None, typed: bool) -> dict[str, Any]:
    if isinstance(member.object, EmulatedUser):
        item = _shape(member.object, _USER_PROPERTIES, select, _USER_DEFAULT)
    else:
        item = _shape(member.object, _GROUP_PROPERTIES, select, _GROUP_DEFAULT)
    if typed:
        return {"@odata.type": f"#{_TYPE_NAMES[member.type]}", **item}
    return item


# ----- $filter ----------------------------------------------------------------------------

Predicate = Callable[[Callable[[str], Any]], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[A-Za-z_$][\w./$]*)|(?P<bad>\S))"
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing whitespace is left
            break
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        if kind == "bad":
            raise _invalid_filter(text)
        tokens.append(_Token(kind, match.group(kind)))
    return tokens


def _invalid_filter(text: str) -> GraphError:
    return GraphError(400, f"Invalid filter clause: '{text}'.")


class _FilterParser:
    """Recursive descent over the filters Graph serves on a plain (non-advanced) query.

    Grammar: or-expression of and-expressions of `startswith(p,'x')`, `p eq 'x'`,
    `p in ('a','b')` or a parenthesised expression. Matching is case-insensitive, like Graph.
    Well-formed filters using anything else are refused as unsupported queries.
    """

    def __init__(self, text: str, properties: Mapping[str, str], type_name: str) -> None:
        self._text = text
        self._tokens = _tokenize(text)
        self._position = 0
        self._properties = properties  # lower-cased name -> canonical name (string properties)
        self._type_name = type_name

    def parse(self) -> Predicate:
        if not self._tokens:
            raise _invalid_filter(self._text)
        predicate = self._or()
        if self._peek() is not None:
            raise _invalid_filter(self._text)
        return predicate

    def _peek(self) -> _Token | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _take(self) -> _Token:
        token = self._peek()
        if token is None:
            raise _invalid_filter(self._text)
        self._position += 1
        return token

    def _expect(self, text: str) -> None:
        if self._take().text != text:
            raise _invalid_filter(self._text)

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self._position += 1
            return True
        return False

    def _or(self) -> Predicate:
        terms = [self._and()]
        while self._keyword("or"):
            terms.append(self._and())
        if len(terms) == 1:
            return terms[0]
        return lambda get: any(term(get) for term in terms)

    def _and(self) -> Predicate:
        terms = [self._primary()]
        while self._keyword("and"):
            terms.append(self._primary())
        if len(terms) == 1:
            return terms[0]
        return lambda get: all(term(get) for term in terms)

    def _primary(self) -> Predicate:
        token = self._take()
        if token.text == "(":
            inner = self._or()
            self._expect(")")
            return inner
        if token.kind != "word":
            raise _invalid_filter(self._text)
        following = self._peek()
        if following is not None and following.text == "(":
            return self._function(token.text)
        return self._comparison(token.text)

    def _function(self, name: str) -> Predicate:
        if name.lower() != "startswith":
            raise _unsupported()
        self._expect("(")
        prop = self._property(self._take())
        self._expect(",")
        prefix = self._literal().casefold()
        self._expect(")")
        return lambda get: _folded(get(prop)).startswith(prefix)

    def _comparison(self, name: str) -> Predicate:
        prop = self._property(_Token("word", name))
        operator = self._take()
        if operator.kind != "word":
            raise _invalid_filter(self._text)
        if operator.text.lower() == "eq":
            value = self._literal().casefold()
            return lambda get: _folded(get(prop)) == value
        if operator.text.lower() == "in":
            self._expect("(")
            values = {self._literal().casefold()}
            while self._peek() == _Token("punct", ","):
                self._position += 1
                values.add(self._literal().casefold())
            self._expect(")")
            return lambda get: _folded(get(prop)) in values
        if operator.text.lower() in {"ne", "gt", "ge", "lt", "le", "has", "not"}:
            raise _unsupported()
        raise _invalid_filter(self._text)

    def _property(self, token: _Token) -> str:
        if token.kind != "word":
            raise _invalid_filter(self._text)
        canonical = self._properties.get(token.text.lower())
        if canonical is None:
            raise _unsupported(
                f"Unsupported or invalid query filter clause specified for property "
                f"'{token.text}' of resource '{self._type_name}'."
            )
        return canonical

    def _literal(self) -> str:
        token = self._take()
        if token.kind != "string":
            # Numbers, booleans, null and GUID literals are valid OData but not served here.
            raise _unsupported()
        return token.text[1:-1].replace("''", "'")


def _folded(value: Any) -> str:
    return "" if value is None else str(value).casefold()


def _filterable(names: Sequence[str]) -> dict[str, str]:
    return {name.lower(): name for name in names}


_GROUP_FILTERABLE = _filterable(["id", "displayName", "mail", "mailNickname", "description"])
_USER_FILTERABLE = _filterable(
    ["id", "displayName", "userPrincipalName", "givenName", "surname", "jobTitle", "mail"]
)


def _parse_filter(
    params: Mapping[str, str], properties: Mapping[str, str], type_name: str
) -> Predicate | None:
    raw = params.get("$filter")
    if raw is None:
        return None
    return _FilterParser(raw, properties, type_name).parse()


# ----- paging -----------------------------------------------------------------------------

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


def _page(items: Sequence[T], key: Callable[[T], str], call: _Call) -> tuple[list[T], str | None]:
    """One page ordered by object id; the token holds the last id served (keyset paging).

    Keyset paging means objects added or removed between two page requests never make the
    next page skip or repeat an object that was there all along.
    """
    size = _page_size(call.params)
    ordered = sorted(items, key=key)
    start = 0
    token = call.params.get("$skiptoken")
    if token is not None:
        start = bisect.bisect_right([key(item) for item in ordered], _decode_token(token))
    page = ordered[start : start + size]
    more = start + size < len(ordered)
    return page, (_encode_token(key(page[-1])) if more and page else None)


def _next_link(base_url: str, call: _Call, token: str) -> str:
    """The request's own URL with a new $skiptoken: following it verbatim gives the next page."""
    pairs = [(name, value) for name, value in call.params.items() if name != "$skiptoken"]
    pairs.append(("$skiptoken", token))
    query = "&".join(f"{quote(name, safe='$')}={quote(value, safe=',')}" for name, value in pairs)
    return f"{base_url}{call.raw_path}?{query}"


def _context(
    base_url: str, entity_set: str, select: tuple[str, ...] | None, suffix: str = ""
) -> str:
    selection = f"({','.join(select)})" if select else ""
    return f"{base_url}/$metadata#{entity_set}{selection}{suffix}"


def _collection(
    base_url: str,
    call: _Call,
    context: str,
    items: Sequence[T],
    *,
    key: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    count = _wants_count(call)
    page, token = _page(items, key, call)
    body: dict[str, Any] = {"@odata.context": context}
    if count:
        body["@odata.count"] = len(items)
    body["value"] = [render(item) for item in page]
    if token is not None:
        body["@odata.nextLink"] = _next_link(base_url, call, token)
    return body


# ----- routes -----------------------------------------------------------------------------

Handler = Callable[["_GraphApi", _Call], dict[str, Any]]
_CAST_USER = r"(?:microsoft\.)?graph\.user"


@dataclass(frozen=True, slots=True)
class _Route:
    pattern: re.Pattern[str]
    handler: Handler
    options: frozenset[str]
    cost: int  # resource units before the $select discount (see x-ms-resource-unit)

    @property
    def specificity(self) -> int:
        return -self.pattern.groups  # fewer captured segments: more specific


_ROUTES: list[_Route] = []


def _route(pattern: str, *options: str, cost: int = 1) -> Callable[[Handler], Handler]:
    """Register a GET handler for a path pattern (relative to the version segment).

    Patterns with fewer captures are tried first, so a fixed segment such as `groups/delta`
    wins over `groups/{id}` whatever order the handlers are defined in.
    """

    def register(handler: Handler) -> Handler:
        _ROUTES.append(
            _Route(re.compile(pattern, re.IGNORECASE), handler, frozenset(options), cost)
        )
        _ROUTES.sort(key=lambda route: route.specificity)  # stable: ties keep definition order
        return handler

    return register


_LIST_OPTIONS = ("$select", "$top", "$skiptoken", "$count", "$filter")
_KNOWN_ROOTS = frozenset({"groups", "users", "directory"})


class _GraphApi:
    """The handlers: each reads the tenant once and returns a response body."""

    def __init__(self, tenant: Tenant, base_url: str) -> None:
        self.tenant = tenant
        self.base_url = base_url

    def dispatch(
        self, method: str, raw_path: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> _Reply:
        route, captures, rest = self._resolve(raw_path)
        if method != "GET":
            raise GraphError(
                405,
                "Specified HTTP method is not allowed for the request uri.",
                headers={"Allow": "GET"},
            )
        _check_options(params, route.options)
        body = route.handler(self, _Call(rest, params, headers, captures))
        units = max(1, route.cost - (1 if "$select" in params else 0))
        return _Reply(200, body, {"x-ms-resource-unit": str(units)})

    @staticmethod
    def _resolve(raw_path: str) -> tuple[_Route, dict[str, str], str]:
        raw_segments = raw_path.split("/")[1:]  # the path starts with "/"
        if not raw_segments or raw_segments[0] != API_VERSION:
            version = unquote(raw_segments[0]) if raw_segments else ""
            raise GraphError(400, f"Invalid version: {version}")
        raw_segments = raw_segments[1:]
        if len(raw_segments) > 1 and raw_segments[-1] == "":
            raw_segments.pop()  # tolerate one trailing slash
        segments = [unquote(segment) for segment in raw_segments]
        relative = "/".join(segments)
        for route in _ROUTES:
            match = route.pattern.fullmatch(relative)
            if match:
                return route, match.groupdict(), "/" + "/".join(raw_segments)
        first = segments[0] if segments else ""
        unknown = segments[-1] if first.lower() in _KNOWN_ROOTS else first
        raise GraphError(400, f"Resource not found for the segment '{unknown}'.")

    # groups

    @_route("groups", *_LIST_OPTIONS)
    def list_groups(self, call: _Call) -> dict[str, Any]:
        select = _parse_select(call.params, [_GROUP_PROPERTIES], _TYPE_NAMES["group"])
        predicate = _parse_filter(call.params, _GROUP_FILTERABLE, _TYPE_NAMES["group"])
        groups = self.tenant.groups()
        if predicate is not None:
            groups = [g for g in groups if predicate(_getter(_GROUP_PROPERTIES, g))]
        return _collection(
            self.base_url,
            call,
            _context(self.base_url, "groups", select),
            groups,
            key=lambda g: g.id,
            render=lambda g: _shape(g, _GROUP_PROPERTIES, select, _GROUP_DEFAULT),
        )

    @_route(r"groups/(?P<group_id>[^/]+)", "$select")
    def get_group(self, call: _Call) -> dict[str, Any]:
        select = _parse_select(call.params, [_GROUP_PROPERTIES], _TYPE_NAMES["group"])
        group = self._group(call.captures["group_id"])
        return {
            "@odata.context": _context(self.base_url, "groups", select, "/$entity"),
            **_shape(group, _GROUP_PROPERTIES, select, _GROUP_DEFAULT),
        }

    @_route(r"groups/(?P<group_id>[^/]+)/members", *_LIST_OPTIONS, cost=3)
    def list_members(self, call: _Call) -> dict[str, Any]:
        known: list[Mapping[str, Getter]] = [_USER_PROPERTIES, _GROUP_PROPERTIES]
        select = _parse_select(call.params, known, "microsoft.graph.directoryObject")
        members = self._members(call, _filterable(["id", "displayName"]), "directoryObject")
        return _collection(
            self.base_url,
            call,
            _context(self.base_url, "directoryObjects", select),
            members,
            key=lambda m: m.id,
            render=lambda m: _shape_member(m, select, typed=True),
        )

    @_route(rf"groups/(?P<group_id>[^/]+)/members/{_CAST_USER}", *_LIST_OPTIONS, cost=3)
    def list_user_members(self, call: _Call) -> dict[str, Any]:
        select = _parse_select(call.params, [_USER_PROPERTIES], _TYPE_NAMES["user"])
        members = self._members(call, _USER_FILTERABLE, "user")
        users = [m for m in members if m.type == "user"]
        return _collection(
            self.base_url,
            call,
            _context(self.base_url, "users", select),
            users,
            key=lambda m: m.id,
            render=lambda m: _shape_member(m, select, typed=False),
        )

    # users and deleted items

    @_route(r"users/(?P<user_id>[^/]+)", "$select")
    def get_user(self, call: _Call) -> dict[str, Any]:
        select = _parse_select(call.params, [_USER_PROPERTIES], _TYPE_NAMES["user"])
        key = call.captures["user_id"]
        user = self._live_user(key)
        return {
            "@odata.context": _context(self.base_url, "users", select, "/$entity"),
            **_shape(user, _USER_PROPERTIES, select, _USER_DEFAULT),
        }

    @_route(r"directory/deletedItems/(?P<object_id>[^/]+)", "$select")
    def get_deleted_item(self, call: _Call) -> dict[str, Any]:
        return self._deleted_user(call, "directory/deletedItems/$entity")

    @_route(rf"directory/deletedItems/(?P<object_id>[^/]+)/{_CAST_USER}", "$select")
    def get_deleted_user(self, call: _Call) -> dict[str, Any]:
        return self._deleted_user(call, "directory/deletedItems/microsoft.graph.user/$entity")

    # helpers

    def _group(self, group_id: str) -> EmulatedGroup:
        try:
            return self.tenant.group(group_id)
        except KeyError:
            raise _not_found(group_id) from None

    def _members(self, call: _Call, filterable: Mapping[str, str], type_name: str) -> list[Member]:
        group_id = call.captures["group_id"]
        try:
            members = self.tenant.member_objects(group_id)
        except KeyError:
            raise _not_found(group_id) from None
        if "$filter" not in call.params:
            return members
        if not (call.eventual and "$count" in call.params):
            raise _unsupported(
                "The specified filter to the reference property query is currently not supported."
            )
        predicate = _parse_filter(call.params, filterable, f"microsoft.graph.{type_name}")
        assert predicate is not None
        return [m for m in members if predicate(_member_getter(m))]

    def _live_user(self, key: str) -> EmulatedUser:
        """A user by object id or by user principal name, as /users/{id | upn} allows."""
        try:
            user: EmulatedUser | None = self.tenant.user(key.lower())
        except KeyError:
            user = self.tenant.find_user(key)
        if user is None or user.soft_deleted:
            raise _not_found(key)
        return user

    def _deleted_user(self, call: _Call, entity_set: str) -> dict[str, Any]:
        object_id = call.captures["object_id"]
        select = _parse_select(call.params, [_USER_PROPERTIES], _TYPE_NAMES["user"])
        try:
            user = self.tenant.user(object_id.lower())
        except KeyError:
            raise _not_found(object_id) from None
        if not user.soft_deleted:
            raise _not_found(object_id)
        item = _shape(user, _USER_PROPERTIES, select, _USER_DEFAULT)
        item["deletedDateTime"] = _timestamp(user.deleted_date_time)
        return {
            "@odata.context": f"{self.base_url}/$metadata#{entity_set}",
            "@odata.type": f"#{_TYPE_NAMES['user']}",
            **item,
        }


def _getter(properties: Mapping[str, Getter], obj: Any) -> Callable[[str], Any]:
    return lambda name: properties[name](obj)


def _member_getter(member: Member) -> Callable[[str], Any]:
    properties: Mapping[str, Getter] = (
        _USER_PROPERTIES if member.type == "user" else _GROUP_PROPERTIES
    )
    return lambda name: properties[name](member.object) if name in properties else None


# ----- the HTTP server --------------------------------------------------------------------


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
        self._api: _GraphApi | None = None

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
        self._api = _GraphApi(self.tenant, f"http://{host_text}:{port}/{API_VERSION}")
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
    ) -> tuple[_Reply, str, str]:
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
            reply = api.dispatch(method, split.path, _parse_params(split.query), headers)
        except GraphError as error:
            reply = _error_reply(error, request_id, client_request_id)
        except Exception:
            logger.exception("Graph emulator failed on %s %s", method, path)
            reply = _error_reply(GraphError(500), request_id, client_request_id)
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
