"""The Graph endpoints the emulator answers, one handler each.

Routes are a table of path patterns, so new endpoints (such as the delta queries) are one
more entry and one more handler. Each handler reads the tenant and returns a response body.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote

from syncagent.emulator.filters import (
    GROUP_FILTERABLE,
    MEMBER_FILTERABLE,
    USER_FILTERABLE,
    parse_filter,
)
from syncagent.emulator.odata import Call, check_options, context_url, parse_select
from syncagent.emulator.paging import collection
from syncagent.emulator.properties import (
    GROUP_DEFAULT,
    GROUP_PROPERTIES,
    TYPE_NAMES,
    USER_DEFAULT,
    USER_PROPERTIES,
    Getter,
    getter,
    member_getter,
    shape,
    shape_member,
    timestamp,
)
from syncagent.emulator.responses import GraphError, Reply, not_found, unsupported
from syncagent.emulator.tenant import EmulatedGroup, EmulatedUser, Member, Tenant

API_VERSION = "v1.0"

Handler = Callable[["GraphApi", Call], dict[str, Any]]
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


class _Identified(Protocol):
    """A directory object as collections key it."""

    @property
    def id(self) -> str: ...


_Object = TypeVar("_Object", bound=_Identified)


class GraphApi:
    """The handlers: each reads the tenant once and returns a response body."""

    def __init__(self, tenant: Tenant, base_url: str) -> None:
        self.tenant = tenant
        self.base_url = base_url

    def dispatch(
        self, method: str, raw_path: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> Reply:
        route, captures, rest = self._resolve(raw_path)
        if method != "GET":
            raise GraphError(
                405,
                "Specified HTTP method is not allowed for the request uri.",
                headers={"Allow": "GET"},
            )
        check_options(params, route.options)
        body = route.handler(self, Call(rest, params, headers, captures))
        units = max(1, route.cost - (1 if "$select" in params else 0))
        return Reply(200, body, {"x-ms-resource-unit": str(units)})

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
    def list_groups(self, call: Call) -> dict[str, Any]:
        select = parse_select(call.params, [GROUP_PROPERTIES], TYPE_NAMES["group"])
        predicate = parse_filter(call.params, GROUP_FILTERABLE, TYPE_NAMES["group"])
        groups = self.tenant.groups()
        if predicate is not None:
            groups = [g for g in groups if predicate(getter(GROUP_PROPERTIES, g))]
        return self._listing(
            call,
            "groups",
            select,
            groups,
            lambda g: shape(g, GROUP_PROPERTIES, select, GROUP_DEFAULT),
        )

    @_route(r"groups/(?P<group_id>[^/]+)", "$select")
    def get_group(self, call: Call) -> dict[str, Any]:
        select = parse_select(call.params, [GROUP_PROPERTIES], TYPE_NAMES["group"])
        group = self._group(call.captures["group_id"])
        return {
            "@odata.context": context_url(self.base_url, "groups", select, "/$entity"),
            **shape(group, GROUP_PROPERTIES, select, GROUP_DEFAULT),
        }

    @_route(r"groups/(?P<group_id>[^/]+)/members", *_LIST_OPTIONS, cost=3)
    def list_members(self, call: Call) -> dict[str, Any]:
        known: list[Mapping[str, Getter]] = [USER_PROPERTIES, GROUP_PROPERTIES]
        select = parse_select(call.params, known, "microsoft.graph.directoryObject")
        members = self._members(call, MEMBER_FILTERABLE, "directoryObject")
        return self._listing(
            call, "directoryObjects", select, members, lambda m: shape_member(m, select, typed=True)
        )

    @_route(rf"groups/(?P<group_id>[^/]+)/members/{_CAST_USER}", *_LIST_OPTIONS, cost=3)
    def list_user_members(self, call: Call) -> dict[str, Any]:
        select = parse_select(call.params, [USER_PROPERTIES], TYPE_NAMES["user"])
        members = self._members(call, USER_FILTERABLE, "user")
        users = [m for m in members if m.type == "user"]
        return self._listing(
            call, "users", select, users, lambda m: shape_member(m, select, typed=False)
        )

    # users and deleted items

    @_route(r"users/(?P<user_id>[^/]+)", "$select")
    def get_user(self, call: Call) -> dict[str, Any]:
        select = parse_select(call.params, [USER_PROPERTIES], TYPE_NAMES["user"])
        key = call.captures["user_id"]
        user = self._live_user(key)
        return {
            "@odata.context": context_url(self.base_url, "users", select, "/$entity"),
            **shape(user, USER_PROPERTIES, select, USER_DEFAULT),
        }

    @_route(r"directory/deletedItems/(?P<object_id>[^/]+)", "$select")
    def get_deleted_item(self, call: Call) -> dict[str, Any]:
        return self._deleted_user(call, "directory/deletedItems/$entity")

    @_route(rf"directory/deletedItems/(?P<object_id>[^/]+)/{_CAST_USER}", "$select")
    def get_deleted_user(self, call: Call) -> dict[str, Any]:
        return self._deleted_user(call, "directory/deletedItems/microsoft.graph.user/$entity")

    # helpers

    def _listing(
        self,
        call: Call,
        entity_set: str,
        select: tuple[str, ...] | None,
        items: Sequence[_Object],
        render: Callable[[_Object], dict[str, Any]],
    ) -> dict[str, Any]:
        """One page of a directory collection: all of them are paged in object id order."""
        context = context_url(self.base_url, entity_set, select)
        return collection(self.base_url, call, context, items, key=lambda o: o.id, render=render)

    def _group(self, group_id: str) -> EmulatedGroup:
        try:
            return self.tenant.group(group_id)
        except KeyError:
            raise not_found(group_id) from None

    def _members(self, call: Call, filterable: Mapping[str, str], type_name: str) -> list[Member]:
        group_id = call.captures["group_id"]
        try:
            members = self.tenant.member_objects(group_id)
        except KeyError:
            raise not_found(group_id) from None
        if "$filter" not in call.params:
            return members
        if not (call.eventual and "$count" in call.params):
            raise unsupported(
                "The specified filter to the reference property query is currently not supported."
            )
        predicate = parse_filter(call.params, filterable, f"microsoft.graph.{type_name}")
        assert predicate is not None
        return [m for m in members if predicate(member_getter(m))]

    def _live_user(self, key: str) -> EmulatedUser:
        """A user by object id or by user principal name, as /users/{id | upn} allows."""
        try:
            user: EmulatedUser | None = self.tenant.user(key.lower())
        except KeyError:
            user = self.tenant.find_user(key)
        if user is None or user.soft_deleted:
            raise not_found(key)
        return user

    def _deleted_user(self, call: Call, entity_set: str) -> dict[str, Any]:
        object_id = call.captures["object_id"]
        select = parse_select(call.params, [USER_PROPERTIES], TYPE_NAMES["user"])
        try:
            user = self.tenant.user(object_id.lower())
        except KeyError:
            raise not_found(object_id) from None
        if not user.soft_deleted:
            raise not_found(object_id)
        item = shape(user, USER_PROPERTIES, select, USER_DEFAULT)
        item["deletedDateTime"] = timestamp(user.deleted_date_time)
        return {
            "@odata.context": f"{self.base_url}/$metadata#{entity_set}",
            "@odata.type": f"#{TYPE_NAMES['user']}",
            **item,
        }
