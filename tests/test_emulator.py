"""The Graph emulator over real HTTP: shapes, paging, filters, deletion states and faults."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncagent.emulator import GraphEmulator, Tenant
from tests.fixtures.emulator import TEST_GRAPH_TOKEN, StaticTokenCredential, graph_emulator

with warnings.catch_warnings():
    # kiota-abstractions warns about one of its own classes while the SDK's builders import it.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
    from msgraph.generated.groups.item.members.graph_user.graph_user_request_builder import (
        GraphUserRequestBuilder,
    )
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_request_adapter import options as graph_defaults
    from msgraph.graph_service_client import GraphServiceClient
    from msgraph_core import GraphClientFactory

__all__ = ["graph_emulator"]  # the fixture is used by name below

USER_SELECT = "id,userPrincipalName,givenName,surname,jobTitle,accountEnabled"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TEST_GRAPH_TOKEN}"}
    with httpx.Client(headers=headers, trust_env=False, timeout=10) as http:
        yield http


def get(client: httpx.Client, emulator: GraphEmulator, path: str, **params: Any) -> httpx.Response:
    return client.get(f"{emulator.base_url}{path}", params=params or None)


def all_pages(client: httpx.Client, first: httpx.Response) -> list[dict[str, Any]]:
    pages = [first.json()]
    while "@odata.nextLink" in pages[-1]:
        response = client.get(pages[-1]["@odata.nextLink"])
        assert response.status_code == 200, response.text
        pages.append(response.json())
    return pages


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


# ----- authentication and envelopes ---------------------------------------------------------


def test_every_request_needs_the_bearer_token(graph_emulator: GraphEmulator) -> None:
    url = f"{graph_emulator.base_url}/groups"
    with httpx.Client(trust_env=False, timeout=10) as anonymous:
        missing = anonymous.get(url, headers={"client-request-id": "abc-123"})
        wrong = anonymous.get(url, headers={"Authorization": "Bearer not-the-token"})
        lower = anonymous.get(url, headers={"authorization": f"bearer {TEST_GRAPH_TOKEN}"})

    assert missing.status_code == 401
    assert error_of(missing)["code"] == "InvalidAuthenticationToken"
    assert error_of(missing)["message"] == "Access token is empty."
    assert missing.headers["client-request-id"] == "abc-123"
    inner = error_of(missing)["innerError"]
    assert inner["request-id"] == missing.headers["request-id"]
    assert inner["client-request-id"] == "abc-123"
    assert wrong.status_code == 401
    assert error_of(wrong)["message"] == "Access token validation failure."
    assert lower.status_code == 200
    assert lower.headers["content-type"].startswith("application/json;odata.metadata=minimal")
    uuid.UUID(lower.headers["request-id"])
    uuid.UUID(lower.headers["client-request-id"])  # a fresh one when the client sent none
    assert int(lower.headers["x-ms-resource-unit"]) >= 1


def test_unknown_paths_methods_and_missing_objects(
    graph_emulator: GraphEmulator, client: httpx.Client
) -> None:
    base = graph_emulator.base_url
    unknown = client.get(f"{base}/widgets")
    assert unknown.status_code == 400
    assert error_of(unknown)["message"] == "Resource not found for the segment 'widgets'."

    method = client.post(f"{base}/groups", json={"displayName": "x"})
    assert method.status_code == 405

    missing_id = str(uuid.uuid4())
    for path in (f"/groups/{missing_id}", f"/groups/{missing_id}/members", f"/users/{missing_id}"):
        response = client.get(f"{base}{path}")
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "Request_ResourceNotFound"
        assert f"Resource '{missing_id}' does not exist" in error_of(response)["message"]

    bad_select = get(client, graph_emulator, "/groups", **{"$select": "id,shoeSize"})
    assert bad_select.status_code == 400
    assert "shoeSize" in error_of(bad_select)["message"]


# ----- groups: $filter, $select, $top, paging ------------------------------------------------


def test_prefix_filter_select_and_paging(
    graph_emulator: GraphEmulator, client: httpx.Client
) -> None:
    tenant = graph_emulator.tenant
    wanted = {tenant.add_group(f"SourceMagnet{n}") for n in range(5)}
    tenant.add_group("Marketing")
    tenant.add_group("Finance SourceMagnet")  # contains the prefix but does not start with it

    first = get(
        client,
        graph_emulator,
        "/groups",
        **{
            "$filter": "startswith(displayName,'sourcemagnet')",
            "$select": "displayName",
            "$top": 2,
        },
    )
    assert first.status_code == 200
    pages = all_pages(client, first)

    assert [len(p["value"]) for p in pages] == [2, 2, 1]
    assert all(
        p["@odata.nextLink"].startswith(f"{graph_emulator.base_url}/groups?") for p in pages[:-1]
    )
    assert "@odata.nextLink" not in pages[-1]
    assert pages[0]["@odata.context"] == f"{graph_emulator.base_url}/$metadata#groups(displayName)"
    items = [item for page in pages for item in page["value"]]
    assert {item["id"] for item in items} == wanted
    assert all(set(item) == {"id", "displayName"} for item in items)


def test_filter_forms_match_like_graph(graph_emulator: GraphEmulator, client: httpx.Client) -> None:
    tenant = graph_emulator.tenant
    admin = tenant.add_group("SourceMagnetAdmin")
    viewer = tenant.add_group("SourceMagnetContractViewer")
    quoted = tenant.add_group("O'Brien Team")
    tenant.add_group("Other")

    def names(filter_: str) -> set[str]:
        response = get(client, graph_emulator, "/groups", **{"$filter": filter_})
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["value"]}

    assert names("displayName eq 'sourcemagnetadmin'") == {admin}
    assert names("displayName in ('SourceMagnetAdmin', 'SourceMagnetContractViewer')") == {
        admin,
        viewer,
    }
    assert names("displayName eq 'O''Brien Team' or startsWith(displayName,'SourceMagnetC')") == {
        quoted,
        viewer,
    }
    assert names(f"id eq '{admin}'") == {admin}

    unsupported = get(client, graph_emulator, "/groups", **{"$filter": "endswith(displayName,'n')"})
    assert unsupported.status_code == 400
    assert error_of(unsupported)["code"] == "Request_UnsupportedQuery"
    not_equal = get(client, graph_emulator, "/groups", **{"$filter": "displayName ne 'Other'"})
    assert error_of(not_equal)["code"] == "Request_UnsupportedQuery"
    broken = get(client, graph_emulator, "/groups", **{"$filter": "displayName eq 'open"})
    assert broken.status_code == 400
    assert error_of(broken)["code"] == "BadRequest"


def test_default_group_properties_and_page_size_limits(
    graph_emulator: GraphEmulator, client: httpx.Client
) -> None:
    for n in range(150):
        graph_emulator.tenant.add_group(f"Group {n:03}")

    default_page = get(client, graph_emulator, "/groups").json()
    assert len(default_page["value"]) == 100
    assert "@odata.nextLink" in default_page
    group = default_page["value"][0]
    for key in ("id", "displayName", "description", "mailEnabled", "securityEnabled", "groupTypes"):
        assert key in group
    assert group["description"] is None
    assert default_page["@odata.context"] == f"{graph_emulator.base_url}/$metadata#groups"

    too_big = get(client, graph_emulator, "/groups", **{"$top": 1000})
    assert too_big.status_code == 400
    assert error_of(too_big)["code"] == "Request_UnsupportedQuery"
    assert len(get(client, graph_emulator, "/groups", **{"$top": 999}).json()["value"]) == 150


def test_count_needs_consistency_level(graph_emulator: GraphEmulator, client: httpx.Client) -> None:
    graph_emulator.tenant.add_group("SourceMagnetAdmin")
    params = {"$count": "true", "$top": "1"}
    plain = get(client, graph_emulator, "/groups", **params)
    assert plain.status_code == 400
    assert error_of(plain)["message"] == "$count is not currently supported."
    eventual = client.get(
        f"{graph_emulator.base_url}/groups", params=params, headers={"ConsistencyLevel": "eventual"}
    )
    assert eventual.json()["@odata.count"] == 1


def test_percent_encoded_names_and_values(
    graph_emulator: GraphEmulator, client: httpx.Client
) -> None:
    wanted = graph_emulator.tenant.add_group("SourceMagnet Admin")
    graph_emulator.tenant.add_group("Other")
    # The SDK's encoding: values percent-encoded; here the names too.
    url = (
        f"{graph_emulator.base_url}/groups?%24filter=startswith%28displayName%2C%27SourceMagnet%20%27%29"
        "&%24select=id%2CdisplayName&%24top=999"
    )
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["value"]] == [wanted]
    recorded = graph_emulator.requests[-1]
    assert recorded.path == "/v1.0/groups"
    assert recorded.query["$filter"] == "startswith(displayName,'SourceMagnet ')"
    assert recorded.query["$select"] == "id,displayName"
    assert recorded.headers["authorization"] == f"Bearer {TEST_GRAPH_TOKEN}"


def test_single_group_with_select(graph_emulator: GraphEmulator, client: httpx.Client) -> None:
    group_id = graph_emulator.tenant.add_group("SourceMagnetAdmin")
    body = get(client, graph_emulator, f"/groups/{group_id}", **{"$select": "displayName"}).json()
    assert body == {
        "@odata.context": f"{graph_emulator.base_url}/$metadata#groups(displayName)/$entity",
        "id": group_id,
        "displayName": "SourceMagnetAdmin",
    }


# ----- members ------------------------------------------------------------------------------


def test_member_paging_beyond_one_page(graph_emulator: GraphEmulator, client: httpx.Client) -> None:
    tenant = graph_emulator.tenant
    group_id = tenant.add_group("SourceMagnetSourcingViewer")
    user_ids = [tenant.add_user(f"user{n:04}@contoso.com", given_name=f"U{n}") for n in range(1500)]
    tenant.add_members(group_id, *user_ids)

    first = get(
        client,
        graph_emulator,
        f"/groups/{group_id}/members/graph.user",
        **{"$select": USER_SELECT, "$top": 999},
    )
    pages = all_pages(client, first)

    assert [len(page["value"]) for page in pages] == [999, 501]
    link = pages[0]["@odata.nextLink"]
    assert link.startswith(f"{graph_emulator.base_url}/groups/{group_id}/members/graph.user?")
    assert "$skiptoken=" in link
    served = [item["id"] for page in pages for item in page["value"]]
    assert sorted(served) == sorted(user_ids)
    assert len(set(served)) == 1500
    sample = pages[1]["value"][0]
    assert set(sample) == set(USER_SELECT.split(","))
    assert sample["jobTitle"] is None
    assert sample["accountEnabled"] is True


def test_user_cast_excludes_nested_groups(
    graph_emulator: GraphEmulator, client: httpx.Client
) -> None:
    tenant = graph_emulator.tenant
    role = tenant.add_group("SourceMagnetAdmin")
    nested = tenant.add_group("Nested")
    adele = tenant.add_user("adele.vance@contoso.com", given_name="Adele", job_title="Director")
    inner = tenant.add_user("inner@contoso.com")
    tenant.add_members(nested, inner)
    tenant.add_members(role, adele, nested)

    everything = get(client, graph_emulator, f"/groups/{role}/members").json()
    types = {item["id"]: item["@odata.type"] for item in everything["value"]}
    assert types == {adele: "#microsoft.graph.user", nested: "#microsoft.graph.group"}
    assert everything["@odata.context"].endswith("$metadata#directoryObjects")

    for cast in ("graph.user", "microsoft.graph.user"):
        users = get(
            client, graph_emulator, f"/groups/{role}/members/{cast}", **{"$select": USER_SELECT}
        ).json()
        assert [item["id"] for item in users["value"]] == [adele]
        assert "@odata.type" not in users["value"][0]
        assert users["value"][0]["jobTitle"] == "Director"
        assert users["@odata.context"] == (
            f"{graph_emulator.base_url}/$metadata#users({USER_SELECT})"
        )


def test_member_filter_needs_advanced_query(
    graph_emulator: GraphEmulator, client: httpx.Client
) -> None:
    role = graph_emulator.tenant.add_group("SourceMagnetAdmin")
    path = f"/groups/{role}/members/graph.user"
    response = get(client, graph_emulator, path, **{"$filter": "displayName eq 'x'"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "Request_UnsupportedQuery"


# ----- deletion states ----------------------------------------------------------------------


def member_ids(client: httpx.Client, emulator: GraphEmulator, group_id: str) -> list[str]:
    response = get(client, emulator, f"/groups/{group_id}/members/graph.user", **{"$select": "id"})
    return [item["id"] for item in response.json()["value"]]


def test_soft_delete_restore_and_hard_delete(
    graph_emulator: GraphEmulator, client: httpx.Client
) -> None:
    tenant = graph_emulator.tenant
    first, second = (
        tenant.add_group("SourceMagnetAdmin"),
        tenant.add_group("SourceMagnetProjectViewer"),
    )
    user = tenant.add_user("leaver@contoso.com", given_name="Lee", surname="Ver")
    tenant.add_members(first, user)
    tenant.add_members(second, user)

    assert get(client, graph_emulator, f"/users/{user}").status_code == 200
    assert get(client, graph_emulator, f"/directory/deletedItems/{user}").status_code == 404

    tenant.soft_delete_user(user)
    assert member_ids(client, graph_emulator, first) == []
    assert member_ids(client, graph_emulator, second) == []
    assert get(client, graph_emulator, f"/users/{user}").status_code == 404
    for suffix in ("", "/graph.user", "/microsoft.graph.user"):
        deleted = get(client, graph_emulator, f"/directory/deletedItems/{user}{suffix}")
        assert deleted.status_code == 200, suffix
        body = deleted.json()
        assert body["@odata.type"] == "#microsoft.graph.user"
        assert body["id"] == user
        assert body["userPrincipalName"] == "leaver@contoso.com"
        assert body["deletedDateTime"].endswith("Z")

    tenant.restore_user(user)
    assert member_ids(client, graph_emulator, first) == [user]
    assert member_ids(client, graph_emulator, second) == [user]
    assert get(client, graph_emulator, f"/directory/deletedItems/{user}").status_code == 404

    tenant.soft_delete_user(user)
    tenant.hard_delete_user(user)  # purges it from deleted items as well
    assert get(client, graph_emulator, f"/directory/deletedItems/{user}").status_code == 404
    assert get(client, graph_emulator, f"/users/{user}").status_code == 404
    tenant.add_members(first, tenant.add_user("other@contoso.com"))
    assert user not in member_ids(client, graph_emulator, first)


def test_user_properties_and_lookup_by_upn(
    graph_emulator: GraphEmulator, client: httpx.Client
) -> None:
    tenant = graph_emulator.tenant
    user = tenant.add_user("Megan.Bowen@contoso.com", given_name="Megan", job_title="Buyer")
    tenant.update_user(user, job_title=None, account_enabled=False, surname="Bowen")

    body = get(client, graph_emulator, f"/users/{user}", **{"$select": USER_SELECT}).json()
    assert body["jobTitle"] is None
    assert body["accountEnabled"] is False
    assert body["surname"] == "Bowen"
    by_upn = get(client, graph_emulator, "/users/megan.bowen@contoso.com").json()
    assert by_upn["id"] == user
    assert "accountEnabled" not in by_upn  # not in Graph's default user properties


# ----- faults -------------------------------------------------------------------------------


def test_injected_throttling_and_denial(
    graph_emulator: GraphEmulator, client: httpx.Client
) -> None:
    role = graph_emulator.tenant.add_group("SourceMagnetAdmin")
    graph_emulator.inject_fault(429, path_contains="/members", times=2, retry_after=3)

    assert get(client, graph_emulator, "/groups").status_code == 200  # does not match the path
    throttled = [get(client, graph_emulator, f"/groups/{role}/members") for _ in range(2)]
    for response in throttled:
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        assert error_of(response)["code"] == "TooManyRequests"
    assert get(client, graph_emulator, f"/groups/{role}/members").status_code == 200

    graph_emulator.inject_fault(403)
    denied = get(client, graph_emulator, "/groups")
    assert denied.status_code == 403
    assert error_of(denied)["code"] == "Authorization_RequestDenied"
    assert "retry-after" not in denied.headers
    assert get(client, graph_emulator, "/groups").status_code == 200

    graph_emulator.inject_fault(503, code="custom", message="down for a moment")
    assert error_of(get(client, graph_emulator, "/groups")) | {"innerError": None} == {
        "code": "custom",
        "message": "down for a moment",
        "innerError": None,
    }


def test_requests_are_recorded_and_cleared(
    graph_emulator: GraphEmulator, client: httpx.Client
) -> None:
    get(client, graph_emulator, "/groups", **{"$top": 5})
    assert [(r.method, r.path, r.query) for r in graph_emulator.requests] == [
        ("GET", "/v1.0/groups", {"$top": "5"})
    ]
    graph_emulator.clear_requests()
    assert graph_emulator.requests == []


def test_stopped_emulator_refuses_connections(client: httpx.Client) -> None:
    emulator = GraphEmulator(Tenant(), token=TEST_GRAPH_TOKEN).start()
    url = f"{emulator.base_url}/groups"
    assert client.get(url).status_code == 200  # leaves a kept-alive connection in the pool
    emulator.stop()
    with pytest.raises(httpx.TransportError):
        client.get(url)


# ----- the tenant model ---------------------------------------------------------------------


def test_sample_tenant_is_reproducible_and_mixed() -> None:
    tenant = Tenant.sample()
    assert [u.id for u in tenant.users()] == [u.id for u in Tenant.sample().users()]

    roles = [g for g in tenant.groups() if g.display_name.startswith("SourceMagnet")]
    assert sorted(g.display_name for g in roles) == sorted(
        [
            "SourceMagnetAdmin",
            "SourceMagnetContractCreator",
            "SourceMagnetContractViewer",
            "SourceMagnetSourcingCreator",
            "SourceMagnetSourcingViewer",
            "SourceMagnetProjectCreator",
            "SourceMagnetProjectViewer",
        ]
    )
    role_members = {m for g in roles for m in tenant.members(g.id)}
    users = tenant.users()
    assert 10 <= len(users) <= 12
    assert all(u.user_principal_name.endswith("@contoso.com") for u in users)
    role_user_ids = {u.id for u in users} & role_members
    assert sum(not tenant.user(u).account_enabled for u in role_user_ids) == 1
    assert any(tenant.user(u).job_title is None for u in role_user_ids)
    counts = {u: sum(u in tenant.members(g.id) for g in roles) for u in role_user_ids}
    assert sum(1 for c in counts.values() if c >= 2) >= 3
    all_members = {m for g in tenant.groups() for m in tenant.members(g.id)}
    assert any(u.id not in all_members for u in users)  # someone in no group at all
    marketing = tenant.find_group("Marketing")
    assert marketing is not None
    assert set(tenant.members(marketing.id)) & role_members  # overlaps the role groups
    nested = [m for g in roles for m in tenant.member_objects(g.id) if m.type == "group"]
    assert len(nested) == 1


def test_tenant_ids_are_deterministic_and_validated() -> None:
    def build() -> list[str]:
        tenant = Tenant()
        return [tenant.add_group("A"), tenant.add_user("a@contoso.com"), tenant.add_group("B")]

    assert build() == build()
    tenant = Tenant()
    fixed = "0F8FAD5B-D9CB-469F-A165-70867728950E"
    assert tenant.add_user("x@contoso.com", id=fixed) == fixed.lower()
    with pytest.raises(ValueError, match="already in use"):
        tenant.add_user("X@contoso.com")
    with pytest.raises(ValueError, match="unknown user properties"):
        tenant.update_user(fixed.lower(), shoe_size=44)
    assert tenant.revision == 1
    assert [c.kind for c in tenant.changes_since(0)] == ["user_added"]


# ----- the real SDK -------------------------------------------------------------------------


# The SDK defines deprecated classes in the modules it imports on first use of a builder.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph")
@pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")
def test_graph_sdk_reads_groups_and_member_users(graph_emulator: GraphEmulator) -> None:
    """The SDK's own URL shapes and encodings, response parsing and retry on Retry-After."""
    tenant = graph_emulator.tenant
    role = tenant.add_group("SourceMagnetAdmin")
    tenant.add_group("Marketing")
    nested = tenant.add_group("SourceMagnetNested")
    users = [tenant.add_user(f"u{n}@contoso.com", given_name=f"U{n}") for n in range(3)]
    tenant.add_members(role, *users, nested)
    graph_emulator.inject_fault(429, path_contains="/members/", retry_after=1)

    groups, members = asyncio.run(_read_with_sdk(graph_emulator, role))

    assert sorted(groups) == sorted([("SourceMagnetAdmin", role), ("SourceMagnetNested", nested)])
    assert sorted(members) == sorted(users)
    paths = [r.path for r in graph_emulator.requests]
    assert paths[0] == "/v1.0/groups"
    assert graph_emulator.requests[0].query["$filter"] == "startswith(displayName,'SourceMagnet')"
    assert paths.count(f"/v1.0/groups/{role}/members/graph.user") == 3  # 429, retry, next page
    assert graph_emulator.requests[-1].query["$skiptoken"]


async def _read_with_sdk(emulator: GraphEmulator, group_id: str) -> tuple[list[Any], list[str]]:
    # msgraph-core wraps the client's transport in one whose aclose() does not reach the
    # connection pool, so keep the real transport and close it too.
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=transport, timeout=10, trust_env=False),
        options=dict(graph_defaults),
    )
    try:
        auth = AzureIdentityAuthenticationProvider(
            StaticTokenCredential(), scopes=["https://graph.microsoft.com/.default"]
        )
        client = GraphServiceClient(request_adapter=GraphRequestAdapter(auth, client=http))
        client.request_adapter.base_url = emulator.base_url

        group_query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter="startswith(displayName,'SourceMagnet')", select=["id", "displayName"], top=999
        )
        page = await client.groups.get(RequestConfiguration(query_parameters=group_query))
        assert page is not None
        groups = [(g.display_name, g.id) for g in page.value or []]

        member_query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
            select=USER_SELECT.split(","), top=2
        )
        builder = client.groups.by_group_id(group_id).members.graph_user
        members_page = await builder.get(RequestConfiguration(query_parameters=member_query))
        assert members_page is not None
        members = [u.id for u in members_page.value or []]
        while members_page is not None and members_page.odata_next_link:
            members_page = await builder.with_url(members_page.odata_next_link).get()
            members += [u.id for u in (members_page.value if members_page else None) or []]
        return groups, [m for m in members if m]
    finally:
        await http.aclose()
        await transport.aclose()
