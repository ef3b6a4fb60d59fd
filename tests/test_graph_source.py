"""GraphSource against the Graph emulator, over real HTTP, with the real msgraph SDK."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncagent.config import GraphConfig, SourceConfig
from syncagent.emulator.server import GraphEmulator, RecordedRequest
from syncagent.errors import SourceAuthError, SourceError
from syncagent.graph import GraphSource, StaticTokenFileCredential
from syncagent.graph.pages import is_not_found, parse_users
from syncagent.graph.queries import name_filters, odata_string, prefix_filter
from syncagent.model import DirectoryUser, Presence
from tests.fixtures.emulator import TEST_GRAPH_TOKEN, graph_emulator  # noqa: F401

SCOPE = "https://graph.microsoft.com/.default"
USER_SELECT = "id,userPrincipalName,givenName,surname,jobTitle,accountEnabled"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "graph-token"
    path.write_text(TEST_GRAPH_TOKEN + "\n")
    return path


@pytest.fixture
def make_source(token_file: Path) -> Iterator[Any]:
    """Build GraphSources against an emulator; every one is closed at teardown."""
    made: list[GraphSource] = []

    def make(emulator_or_url: GraphEmulator | str, **kwargs: Any) -> GraphSource:
        base_url = emulator_or_url if isinstance(emulator_or_url, str) else emulator_or_url.base_url
        kwargs.setdefault("retry_delay", 0.0)
        if "group_names" not in kwargs:
            kwargs.setdefault("group_prefix", "SourceMagnet")
        source = GraphSource(
            base_url=base_url,
            credential=StaticTokenFileCredential(token_file),
            scope=SCOPE,
            **kwargs,
        )
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def member_requests(emulator: GraphEmulator) -> list[RecordedRequest]:
    return [r for r in emulator.requests if "/members" in r.path]


def group_requests(emulator: GraphEmulator) -> list[RecordedRequest]:
    return [r for r in emulator.requests if r.path == "/v1.0/groups"]


@pytest.fixture
def small_tenant(graph_emulator: GraphEmulator) -> dict[str, str]:  # noqa: F811
    """Two role groups sharing a user, an out-of-scope group, and a nested group."""
    t = graph_emulator.tenant
    ids = {
        "adele": t.add_user(
            "adele@contoso.com", given_name="Adele", surname="Vance", job_title="Director"
        ),
        "alex": t.add_user("alex@contoso.com", given_name="Alex", account_enabled=False),
        "nestor": t.add_user("nestor@contoso.com"),
        "pradeep": t.add_user("pradeep@contoso.com"),
        "admin": t.add_group("SourceMagnetAdmin"),
        "viewer": t.add_group("SourceMagnetContractViewer"),
        "marketing": t.add_group("Marketing"),
        "leads": t.add_group("Procurement Leads"),
    }
    t.add_members(ids["admin"], ids["adele"], ids["leads"])
    t.add_members(ids["viewer"], ids["adele"], ids["alex"])
    t.add_members(ids["marketing"], ids["nestor"])
    t.add_members(ids["leads"], ids["pradeep"])
    return ids


# ----- reading the snapshot ---------------------------------------------------------------


def test_prefix_read_returns_in_scope_groups_and_their_direct_users(
    graph_emulator: GraphEmulator,  # noqa: F811
    small_tenant: dict[str, str],
    make_source: Any,
) -> None:
    ids = small_tenant
    snapshot = make_source(graph_emulator).read_snapshot()

    assert set(snapshot.groups) == {ids["admin"], ids["viewer"]}
    admin = snapshot.groups[ids["admin"]]
    assert admin.display_name == "SourceMagnetAdmin"
    assert admin.member_ids == {ids["adele"]}  # the nested group and its member are not there
    assert snapshot.groups[ids["viewer"]].member_ids == {ids["adele"], ids["alex"]}
    assert set(snapshot.users) == {ids["adele"], ids["alex"]}
    assert snapshot.users[ids["adele"]] == DirectoryUser(
        id=ids["adele"],
        user_principal_name="adele@contoso.com",
        given_name="Adele",
        surname="Vance",
        job_title="Director",
        account_enabled=True,
    )
    assert snapshot.users[ids["alex"]].account_enabled is False
    assert snapshot.users[ids["alex"]].surname is None


def test_prefix_match_keeps_graphs_case_insensitive_semantics(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
) -> None:
    lower = graph_emulator.tenant.add_group("sourcemagnetLegacy")
    graph_emulator.tenant.add_group("Not SourceMagnet")
    snapshot = make_source(graph_emulator).read_snapshot()
    assert set(snapshot.groups) == {lower}


def test_requests_carry_select_top_priority_and_bearer_token(
    graph_emulator: GraphEmulator,  # noqa: F811
    small_tenant: dict[str, str],
    make_source: Any,
) -> None:
    make_source(graph_emulator, page_size=500).read_snapshot()

    (listing,) = group_requests(graph_emulator)
    assert listing.query == {
        "$filter": "startswith(displayName,'SourceMagnet')",
        "$select": "id,displayName",
        "$top": "500",
    }
    members = member_requests(graph_emulator)
    assert {r.path for r in members} == {
        f"/v1.0/groups/{small_tenant[g]}/members/graph.user" for g in ("admin", "viewer")
    }
    for request in [listing, *members]:
        assert request.headers["authorization"] == f"Bearer {TEST_GRAPH_TOKEN}"
        assert request.headers["x-ms-throttle-priority"] == "Low"
        assert "consistencylevel" not in request.headers
    for request in members:
        assert request.query == {"$select": USER_SELECT, "$top": "500"}


@pytest.mark.parametrize(("page_size", "pages"), [(999, 2), (100, 15)])
def test_a_large_group_is_read_page_by_page(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
    page_size: int,
    pages: int,
) -> None:
    t = graph_emulator.tenant
    group = t.add_group("SourceMagnetSourcingViewer")
    users = [t.add_user(f"user{i:04}@contoso.com", given_name=f"U{i}") for i in range(1500)]
    t.add_members(group, *users)

    snapshot = make_source(graph_emulator, page_size=page_size).read_snapshot()

    assert snapshot.groups[group].member_ids == set(users)
    assert len(snapshot.users) == 1500
    requests = member_requests(graph_emulator)
    assert len(requests) == pages
    assert all("$skiptoken" in r.query for r in requests[1:])  # the nextLink, followed verbatim


def test_explicit_group_list_keeps_exact_names_only(
    graph_emulator: GraphEmulator,  # noqa: F811
    small_tenant: dict[str, str],
    make_source: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    graph_emulator.tenant.add_group("MARKETING")  # Graph's `in` matches it; we do not
    source = make_source(graph_emulator, group_names=["Marketing", "SourceMagnetAdmin", "Gone"])

    with caplog.at_level(logging.WARNING, logger="syncagent.graph"):
        snapshot = source.read_snapshot()

    assert set(snapshot.groups) == {small_tenant["marketing"], small_tenant["admin"]}
    assert set(snapshot.users) == {small_tenant["nestor"], small_tenant["adele"]}
    (listing,) = group_requests(graph_emulator)
    assert listing.query["$filter"] == "displayName in ('Marketing','SourceMagnetAdmin','Gone')"
    assert "no group named Gone" in caplog.text


def test_a_long_group_list_is_split_into_filters_of_fifteen(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
) -> None:
    names = [f"Team {i:02}" for i in range(20)]
    ids = {graph_emulator.tenant.add_group(name) for name in names}
    snapshot = make_source(graph_emulator, group_names=names).read_snapshot()
    assert set(snapshot.groups) == ids
    assert len(group_requests(graph_emulator)) == 2


def test_a_prefix_with_an_apostrophe_is_escaped(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
) -> None:
    group = graph_emulator.tenant.add_group("O'Brien's Buyers")
    graph_emulator.tenant.add_group("OBrien")
    snapshot = make_source(graph_emulator, group_prefix="O'Brien").read_snapshot()
    assert set(snapshot.groups) == {group}
    (listing,) = group_requests(graph_emulator)
    assert listing.query["$filter"] == "startswith(displayName,'O''Brien')"


def test_a_group_deleted_between_list_and_member_read_is_left_out(
    graph_emulator: GraphEmulator,  # noqa: F811
    small_tenant: dict[str, str],
    make_source: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    viewer = small_tenant["viewer"]
    graph_emulator.inject_fault(404, path_contains=f"/groups/{viewer}/members")
    with caplog.at_level(logging.WARNING, logger="syncagent.graph"):
        snapshot = make_source(graph_emulator).read_snapshot()
    assert set(snapshot.groups) == {small_tenant["admin"]}
    assert set(snapshot.users) == {small_tenant["adele"]}
    assert viewer in caplog.text


def test_from_config_reads_through_the_configured_endpoint(
    graph_emulator: GraphEmulator,  # noqa: F811
    small_tenant: dict[str, str],
    token_file: Path,
) -> None:
    graph = GraphConfig(credential="token", token_file=token_file, base_url=graph_emulator.base_url)
    with GraphSource.from_config(graph, SourceConfig(groups=("Marketing",))) as source:
        snapshot = source.read_snapshot()
    assert set(snapshot.groups) == {small_tenant["marketing"]}
    assert group_requests(graph_emulator)[0].query["$top"] == "999"


# ----- retries and errors -----------------------------------------------------------------


def test_a_429_is_retried_transparently(
    graph_emulator: GraphEmulator,  # noqa: F811
    small_tenant: dict[str, str],
    make_source: Any,
) -> None:
    graph_emulator.inject_fault(429, path_contains="/v1.0/groups", times=1, retry_after=1)
    snapshot = make_source(graph_emulator).read_snapshot()
    assert set(snapshot.groups) == {small_tenant["admin"], small_tenant["viewer"]}
    listings = group_requests(graph_emulator)
    assert len(listings) == 2
    assert listings[1].headers["retry-attempt"] == "1"


def test_throttling_that_outlasts_the_retries_names_the_request(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
) -> None:
    graph_emulator.inject_fault(429, path_contains="/v1.0/groups", times=5, retry_after=1)
    with pytest.raises(SourceError) as caught:
        make_source(graph_emulator, max_retries=1).read_snapshot()
    message = str(caught.value)
    assert "429 TooManyRequests" in message
    assert f"{graph_emulator.base_url}/groups?" in message
    assert "request-id" in message
    assert "after 1 retries" in message
    assert len(group_requests(graph_emulator)) == 2


def test_403_is_an_auth_error_with_the_permission_remedy(
    graph_emulator: GraphEmulator,  # noqa: F811
    small_tenant: dict[str, str],
    make_source: Any,
) -> None:
    graph_emulator.inject_fault(403, path_contains="/members")
    with pytest.raises(SourceAuthError) as caught:
        make_source(graph_emulator, concurrency=1).read_snapshot()
    assert "403 Authorization_RequestDenied" in str(caught.value)
    assert caught.value.remedy is not None
    assert "GroupMember.Read.All and User.Read.All" in caught.value.remedy
    assert "admin consent" in caught.value.remedy


def test_401_is_an_auth_error_and_the_token_never_shows(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
    token_file: Path,
) -> None:
    token_file.write_text("a-wrong-token-value")
    source = make_source(graph_emulator)
    with pytest.raises(SourceAuthError) as caught:
        source.read_snapshot()
    assert "Graph rejected the access token (401 InvalidAuthenticationToken" in str(caught.value)
    assert "a-wrong-token-value" not in str(caught.value)
    assert "a-wrong-token-value" not in repr(source)
    # The file is read per request: fixing it fixes the next read, without a restart.
    token_file.write_text(TEST_GRAPH_TOKEN)
    assert source.read_snapshot().groups == {}


def test_a_closed_port_is_a_source_error_naming_the_url(make_source: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1.0"
    with pytest.raises(SourceError) as caught:
        make_source(base_url, max_retries=0).read_snapshot()
    assert str(caught.value).startswith(f"cannot reach Microsoft Graph at {base_url}/groups?")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_plain_http_to_a_remote_host_is_refused_before_any_request(make_source: Any) -> None:
    with pytest.raises(SourceError) as caught:
        make_source("http://graph.invalid/v1.0").read_snapshot()
    assert "http://graph.invalid/v1.0" in str(caught.value)
    assert "https" in str(caught.value)


def test_a_bare_404_is_not_taken_for_a_deleted_object() -> None:
    url = "https://graph.microsoft.com/v1.0/users/x"
    graph_404 = httpx.Response(
        404, json={"error": {"code": "Request_ResourceNotFound", "message": "gone"}}
    )
    proxy_404 = httpx.Response(404, text="<html>Not Found</html>")
    assert is_not_found(graph_404, url) is True
    assert is_not_found(httpx.Response(200, json={}), url) is False
    with pytest.raises(SourceError, match="not Graph's not-found error"):
        is_not_found(proxy_404, url)


def test_limited_information_users_ask_for_user_read_all() -> None:
    # What Graph sends for members the app may list but not read (User.Read.All missing).
    page = {"value": [{"@odata.type": "#microsoft.graph.user", "id": "u1"}]}
    with pytest.raises(SourceAuthError) as caught:
        parse_users(page, "https://graph.microsoft.com/v1.0/groups/g/members/graph.user")
    assert caught.value.remedy == (
        "grant the application permission User.Read.All (with admin consent)"
    )


def test_parse_users_skips_other_member_types() -> None:
    page = {
        "value": [
            {"@odata.type": "#microsoft.graph.group", "id": "g1"},
            {"id": "u1", "userPrincipalName": "a@b.c", "accountEnabled": False},
        ]
    }
    assert parse_users(page, "u") == [
        DirectoryUser(id="u1", user_principal_name="a@b.c", account_enabled=False)
    ]


# ----- where departed users are -----------------------------------------------------------


def test_user_presence_tells_exists_soft_deleted_and_gone(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
) -> None:
    t = graph_emulator.tenant
    present = t.add_user("here@contoso.com")
    binned = t.add_user("binned@contoso.com")
    purged = t.add_user("purged@contoso.com")
    t.soft_delete_user(binned)
    t.hard_delete_user(purged)
    never = "00000000-0000-4000-8000-000000000000"

    presence = make_source(graph_emulator).user_presence([present, binned, purged, never])

    assert presence == {
        present: Presence.EXISTS,
        binned: Presence.SOFT_DELETED,
        purged: Presence.GONE,
        never: Presence.GONE,
    }
    paths = [r.path for r in graph_emulator.requests]
    assert f"/v1.0/users/{present}" in paths
    assert f"/v1.0/directory/deletedItems/{binned}" in paths
    assert f"/v1.0/directory/deletedItems/{present}" not in paths  # no second call when found


def test_user_presence_on_a_persistent_503_raises_rather_than_guessing_gone(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
) -> None:
    purged = graph_emulator.tenant.add_user("purged@contoso.com")
    graph_emulator.tenant.hard_delete_user(purged)
    graph_emulator.inject_fault(503, path_contains="/directory/deletedItems", times=10)
    with pytest.raises(SourceError) as caught:
        make_source(graph_emulator, max_retries=1).user_presence([purged])
    assert "503 serviceNotAvailable" in str(caught.value)
    assert f"/directory/deletedItems/{purged}" in str(caught.value)


def test_user_presence_of_nobody_sends_nothing(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
) -> None:
    assert make_source(graph_emulator).user_presence([]) == {}
    assert graph_emulator.requests == []


# ----- running the loop -------------------------------------------------------------------


def test_works_from_a_worker_thread(
    graph_emulator: GraphEmulator,  # noqa: F811
    small_tenant: dict[str, str],
    make_source: Any,
) -> None:
    source = make_source(graph_emulator)
    source.read_snapshot()  # first on the main thread, then again on another one
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(source.read_snapshot()))
    worker.start()
    worker.join(timeout=30)
    assert set(results[0].groups) == {small_tenant["admin"], small_tenant["viewer"]}


def test_refuses_to_run_inside_an_event_loop(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
) -> None:
    source = make_source(graph_emulator)

    async def inside() -> None:
        source.read_snapshot()

    with pytest.raises(RuntimeError, match=r"asyncio\.to_thread"):
        asyncio.run(inside())


def test_a_closed_source_refuses_calls(graph_emulator: GraphEmulator, make_source: Any) -> None:  # noqa: F811
    source = make_source(graph_emulator)
    source.close()
    source.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        source.read_snapshot()


def test_scope_is_chosen_once() -> None:
    credential = StaticTokenFileCredential("unused")
    with pytest.raises(ValueError, match="exactly one"):
        GraphSource(base_url="https://graph.microsoft.com/v1.0", credential=credential, scope=SCOPE)
    with pytest.raises(ValueError, match="every group"):
        GraphSource(
            base_url="https://graph.microsoft.com/v1.0",
            credential=credential,
            scope=SCOPE,
            group_prefix="",
        )


# ----- query text -------------------------------------------------------------------------


def test_odata_literals_double_embedded_quotes() -> None:
    assert odata_string("it's") == "'it''s'"
    assert prefix_filter("a'b") == "startswith(displayName,'a''b')"
    assert name_filters(["A", "B", "A"]) == ["displayName in ('A','B')"]
    assert [f.count("'") // 2 for f in name_filters([f"G{i}" for i in range(31)])] == [15, 15, 1]


def test_a_member_query_refused_as_standard_is_sent_again_as_advanced(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
) -> None:
    t = graph_emulator.tenant
    group = t.add_group("SourceMagnetAdmin")
    users = [t.add_user(f"user{i:03}@contoso.com") for i in range(150)]
    t.add_members(group, *users)
    graph_emulator.inject_fault(
        400,
        path_contains="/members/graph.user",
        code="Request_UnsupportedQuery",
        message="The specified filter to the reference property query is currently not supported.",
    )

    snapshot = make_source(graph_emulator, page_size=100).read_snapshot()

    assert snapshot.groups[group].member_ids == set(users)
    refused, *advanced = member_requests(graph_emulator)
    assert "consistencylevel" not in refused.headers
    assert len(advanced) == 2  # 150 members in pages of 100
    assert all(r.headers.get("consistencylevel") == "eventual" for r in advanced)
    assert advanced[0].query.get("$count") == "true"


def test_another_400_on_the_member_query_is_an_error(
    graph_emulator: GraphEmulator,  # noqa: F811
    make_source: Any,
) -> None:
    t = graph_emulator.tenant
    t.add_members(t.add_group("SourceMagnetAdmin"), t.add_user("a@contoso.com"))
    graph_emulator.inject_fault(400, path_contains="/members/graph.user", code="Request_BadRequest")
    with pytest.raises(SourceError, match="400"):
        make_source(graph_emulator).read_snapshot()
    assert len(member_requests(graph_emulator)) == 1
