"""The directory side of a cycle: in-scope groups and their direct user members, from Graph.

The SDK is async-only and its httpx client is bound to the loop it first ran on, so each
GraphSource owns a private event loop and its public methods are synchronous. Callers (the
CLI, a scheduler job) run in plain threads and never see asyncio.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_authentication_azure._exceptions import HTTPError as KiotaHTTPError
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption
from msgraph.generated.directory.deleted_items.item.directory_object_item_request_builder import (
    DirectoryObjectItemRequestBuilder,
)
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.groups.item.members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

from syncagent.errors import SourceAuthError, SourceError, SyncAgentError
from syncagent.graph import pages
from syncagent.graph.client import build_sdk_client
from syncagent.graph.credentials import build_credential
from syncagent.graph.queries import (
    GROUP_SELECT,
    MAX_PAGE_SIZE,
    USER_SELECT,
    name_filters,
    prefix_filter,
)
from syncagent.model import DirectoryGroup, DirectorySnapshot, DirectoryUser, Presence

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from syncagent.config import GraphConfig, SourceConfig

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_MAX_RETRIES = RetryHandlerOption.MAX_MAX_RETRIES


@dataclass(slots=True)
class _Counter:
    """Requests issued by one public call, for its summary log line."""

    requests: int = 0


class GraphSource:
    """Reads what the directory says about the in-scope groups; changes nothing there."""

    def __init__(
        self,
        *,
        base_url: str,
        credential: AsyncTokenCredential,
        scope: str,
        group_prefix: str | None = None,
        group_names: Sequence[str] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        max_retries: int = 3,
        timeout: float = 30.0,
        concurrency: int = 4,
        retry_delay: float = 3.0,
    ) -> None:
        if isinstance(group_names, str):
            raise TypeError("group_names takes a sequence of names, not one string")
        if (group_prefix is None) == (group_names is None):
            raise ValueError("give exactly one of group_prefix and group_names")
        if group_prefix is not None and not group_prefix:
            raise ValueError("group_prefix must not be empty: it would select every group")
        if group_names is not None and not [n for n in group_names if n]:
            raise ValueError("group_names must name at least one group")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if not 0 <= max_retries <= _MAX_RETRIES:
            raise ValueError(f"max_retries must be between 0 and {_MAX_RETRIES}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._base_url = base_url.rstrip("/")
        self._scope = scope
        self._prefix = group_prefix
        self._names = tuple(n for n in group_names or () if n)
        self._page_size = page_size
        self._max_retries = max_retries
        self._concurrency = concurrency
        self._credential = credential
        self._sdk = build_sdk_client(
            base_url=self._base_url,
            credential=credential,
            scope=scope,
            timeout=timeout,
            max_retries=max_retries,
            retry_delay=retry_delay,
        )
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(cls, graph: GraphConfig, source: SourceConfig) -> GraphSource:
        """The source the loaded configuration describes (it allows one way of scoping)."""
        return cls(
            base_url=graph.base_url,
            credential=build_credential(graph),
            scope=graph.scope,
            group_prefix=source.group_prefix,
            group_names=source.groups,
            page_size=graph.page_size,
            max_retries=graph.max_retries,
            timeout=graph.timeout_seconds,
        )

    def __repr__(self) -> str:
        chosen = f"groups={self._names!r}" if self._prefix is None else f"prefix={self._prefix!r}"
        return f"GraphSource(base_url={self._base_url!r}, {chosen})"

    # -- public, synchronous ------------------------------------------------------------

    def read_snapshot(self) -> DirectorySnapshot:
        """The in-scope groups with their direct user members, and each such user once."""
        return self._run(self._read_snapshot())

    def user_presence(self, user_ids: Collection[str]) -> dict[str, Presence]:
        """Where each user now is: still in the tenant, in the recycle bin, or gone.

        Only a clear 404 counts as absence; any other answer raises, because calling a
        user GONE on a transient fault would deprovision them for good.
        """
        unique = list(dict.fromkeys(user_ids))
        if not unique:
            return {}
        return self._run(self._user_presence(unique))

    def close(self) -> None:
        """Close the HTTP connections, the credential and the private loop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._loop.run_until_complete(self._aclose())
            finally:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.close()

    def __enter__(self) -> GraphSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError(
                "GraphSource is synchronous: call it from a thread without a running event "
                "loop (for example through asyncio.to_thread)"
            )
        with self._lock:
            if self._closed:
                coro.close()
                raise RuntimeError("GraphSource is closed")
            return self._loop.run_until_complete(coro)

    async def _aclose(self) -> None:
        try:
            await self._sdk.aclose()
        finally:
            await self._credential.close()

    # -- snapshot -----------------------------------------------------------------------

    async def _read_snapshot(self) -> DirectorySnapshot:
        started = time.monotonic()
        counter = _Counter()
        found = await self._list_groups(counter)
        member_lists = await self._bounded(
            [_bind(self._member_users, group.id, counter) for group in found]
        )
        groups: dict[str, DirectoryGroup] = {}
        users: dict[str, DirectoryUser] = {}
        for group, members in zip(found, member_lists, strict=True):
            if members is None:
                continue  # deleted between the list and the member read
            groups[group.id] = DirectoryGroup(
                id=group.id,
                display_name=group.display_name,
                member_ids=frozenset(user.id for user in members),
            )
            for user in members:
                users[user.id] = user
        log.info(
            "read %d groups and %d users from Graph in %d requests, %.2fs",
            len(groups),
            len(users),
            counter.requests,
            time.monotonic() - started,
        )
        return DirectorySnapshot(groups=groups, users=users)

    async def _list_groups(self, counter: _Counter) -> list[DirectoryGroup]:
        if self._prefix is not None:
            return await self._groups_matching(prefix_filter(self._prefix), counter)
        # `eq`/`in` compare case-insensitively; a configured list means these exact names.
        wanted = set(self._names)
        found: dict[str, DirectoryGroup] = {}
        for odata_filter in name_filters(self._names):
            for group in await self._groups_matching(odata_filter, counter):
                if group.display_name in wanted:
                    found[group.id] = group
        missing = wanted - {group.display_name for group in found.values()}
        if missing:
            log.warning("no group named %s in the directory", ", ".join(sorted(missing)))
        return list(found.values())

    async def _groups_matching(self, odata_filter: str, counter: _Counter) -> list[DirectoryGroup]:
        root = self._sdk.service.groups
        builder: Any = root
        config = self._config(
            GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
                filter=odata_filter, select=list(GROUP_SELECT), top=self._page_size
            )
        )
        groups: dict[str, DirectoryGroup] = {}
        while True:
            url, response, elapsed = await self._get(builder, config, counter)
            body = pages.page_body(response, url, retries=self._max_retries)
            page = pages.parse_groups(body, url)
            _log_page(url, len(page), elapsed)
            groups.update((group.id, group) for group in page)
            link = pages.next_link(body)
            if link is None:
                return list(groups.values())
            builder = root.with_url(link)
            config = self._config(None)

    async def _member_users(
        self, group_id: str, counter: _Counter, *, advanced: bool = False
    ) -> list[DirectoryUser] | None:
        """The group's direct user members, or None if the group no longer exists.

        Graph's documentation disagrees on whether the user cast with `$select` is an
        advanced query. It is sent as a standard one; if Graph refuses it as unsupported,
        it is sent again as an advanced query (ConsistencyLevel: eventual and $count),
        which reads an index that may lag recent membership changes slightly.
        """
        root = self._sdk.service.groups.by_group_id(group_id).members.graph_user
        builder: Any = root
        config = self._config(
            GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
                select=list(USER_SELECT), top=self._page_size, count=True if advanced else None
            ),
            advanced=advanced,
        )
        users: list[DirectoryUser] = []
        while True:
            url, response, elapsed = await self._get(builder, config, counter)
            if not advanced and not users and pages.is_unsupported_query(response):
                log.info(
                    "Graph refused the member query of group %s as a standard query; "
                    "sending it as an advanced query",
                    group_id,
                )
                return await self._member_users(group_id, counter, advanced=True)
            if pages.is_not_found(response, url):
                log.warning("group %s vanished while its members were read; left out", group_id)
                return None
            body = pages.page_body(response, url, retries=self._max_retries)
            page = pages.parse_users(body, url)
            _log_page(url, len(page), elapsed)
            users.extend(page)
            link = pages.next_link(body)
            if link is None:
                return users
            builder = root.with_url(link)
            config = self._config(None, advanced=advanced)  # the header is not carried over

    # -- presence -----------------------------------------------------------------------

    async def _user_presence(self, user_ids: list[str]) -> dict[str, Presence]:
        started = time.monotonic()
        counter = _Counter()
        found = await self._bounded([_bind(self._presence, uid, counter) for uid in user_ids])
        result = dict(zip(user_ids, found, strict=True))
        log.info(
            "looked up %d departed users in Graph in %d requests, %.2fs",
            len(result),
            counter.requests,
            time.monotonic() - started,
        )
        return result

    async def _presence(self, user_id: str, counter: _Counter) -> Presence:
        service = self._sdk.service
        if await self._exists(
            service.users.by_user_id(user_id),
            UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["id"]),
            counter,
        ):
            return Presence.EXISTS
        if await self._exists(
            service.directory.deleted_items.by_directory_object_id(user_id),
            DirectoryObjectItemRequestBuilder.DirectoryObjectItemRequestBuilderGetQueryParameters(
                select=["id"]
            ),
            counter,
        ):
            return Presence.SOFT_DELETED
        return Presence.GONE

    async def _exists(self, builder: Any, query: Any, counter: _Counter) -> bool:
        url, response, elapsed = await self._get(builder, self._config(query), counter)
        log.debug("GET %s: %d in %.3fs", urlsplit(url).path, response.status_code, elapsed)
        if response.status_code == 200:
            return True
        if pages.is_not_found(response, url):
            return False
        pages.raise_for_status(response, url, retries=self._max_retries)
        raise SourceError(f"Graph answered {response.status_code} at {url}; expected 200 or 404")

    # -- transport ----------------------------------------------------------------------

    def _config(self, query: Any, *, advanced: bool = False) -> RequestConfiguration[Any]:
        # The native handler returns the httpx response untouched: auth, retry and redirect
        # middleware still run, the typed-model deserialiser does not.
        config: RequestConfiguration[Any] = RequestConfiguration(
            query_parameters=query,
            options=[ResponseHandlerOption(NativeResponseHandler())],
        )
        # Background reads yield to interactive traffic when the tenant is near its limit.
        config.headers.add("x-ms-throttle-priority", "Low")
        if advanced:
            config.headers.add("ConsistencyLevel", "eventual")
        return config

    async def _get(
        self, builder: Any, config: RequestConfiguration[Any], counter: _Counter
    ) -> tuple[str, httpx.Response, float]:
        info = builder.to_get_request_information(config)
        info.path_parameters["baseurl"] = self._base_url
        url = str(info.url)
        counter.requests += 1
        started = time.monotonic()
        try:
            response = await builder.get(config)
        except httpx.RequestError as exc:
            raise SourceError(
                f"cannot reach Microsoft Graph at {url}: {type(exc).__name__}: {exc}"
            ) from exc
        except KiotaHTTPError as exc:
            raise SourceError(
                f"refusing to send a Graph token to {self._base_url}: {exc}",
                remedy="use an https graph.base_url (plain http only on localhost)",
            ) from exc
        except ClientAuthenticationError as exc:  # CredentialUnavailableError included
            raise SourceAuthError(
                f"cannot get an access token for {self._scope}: {exc.message}"
            ) from exc
        if not isinstance(response, httpx.Response):
            raise SourceError(f"the Graph SDK returned {type(response).__name__} for {url}")
        return url, response, time.monotonic() - started

    async def _bounded(self, jobs: Sequence[Callable[[], Awaitable[_T]]]) -> list[_T]:
        """Run `jobs` at most `concurrency` at once, in order; a failure cancels the rest."""
        semaphore = asyncio.Semaphore(self._concurrency)

        async def guarded(job: Callable[[], Awaitable[_T]]) -> _T:
            async with semaphore:
                return await job()

        failure: Exception | None = None
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(guarded(job)) for job in jobs]
        except ExceptionGroup as errors:
            # Surface one of our own errors rather than the group, so callers can catch it.
            ours = [e for e in errors.exceptions if isinstance(e, SyncAgentError)]
            failure = ours[0] if ours else errors.exceptions[0]
        if failure is not None:
            raise failure
        return [task.result() for task in tasks]


def _bind(
    func: Callable[[str, _Counter], Awaitable[_T]], key: str, counter: _Counter
) -> Callable[[], Awaitable[_T]]:
    return lambda: func(key, counter)


def _log_page(url: str, count: int, elapsed: float) -> None:
    log.debug("GET %s: %d items in %.3fs", urlsplit(url).path, count, elapsed)
