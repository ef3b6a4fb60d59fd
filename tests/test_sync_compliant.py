"""End to end in the compliant dialect (`?aadOptscim062020`), against a strict RFC 7644 server.

The strict scim2-server is the oracle: every request the agent sends in this dialect must
be accepted as written, and the target must end in the state the directory describes.
The flag selects the dialect only; it never goes on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from syncagent.cycle import CycleResult
from syncagent.emulator import GraphEmulator
from syncagent.scim.requests import Dialect
from tests.agent import Agent, agent_config, running_agent
from tests.faults import (
    PATCH_OP,
    add_groups,
    add_user,
    fast_config,
    group_id,
    group_resources,
    leave_all_groups,
    ok,
    posted_names,
    user_resources,
    writes,
)
from tests.fixtures.scim_server import ScimServer

ADMIN = "SourceMagnetAdmin"
CONTRACT = "SourceMagnetContractViewer"
SOURCING = "SourceMagnetSourcingViewer"
USER_SCHEMAS = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
]


@pytest.fixture
def agent(
    tmp_path: Path, graph_emulator: GraphEmulator, strict_scim_server: ScimServer, state_url: str
) -> Iterator[Agent]:
    config = agent_config(
        tmp_path,
        graph_emulator,
        strict_scim_server,
        state_url,
        compliant=True,
        graph={"max_retries": 0},
    )
    config = fast_config(config)
    assert config.scim.dialect is Dialect.COMPLIANT
    with running_agent(config, graph_emulator, strict_scim_server) as agent:
        yield agent


def sync(agent: Agent, **options: Any) -> CycleResult:
    """One successful run whose every request the strict server accepted, sent without the flag."""
    result = agent.sync(**options)
    ok(result)
    for request in agent.scim.requests:
        assert request.status < 400, (request.method, request.target, request.status, request.body)
        assert request.path.startswith(("/v2/Users", "/v2/Groups")), request.path
        assert "aadOptscim062020" not in request.query, request.query
    return result


def scim_ids(agent: Agent) -> dict[str, str]:
    return {u["userName"]: u["id"] for u in user_resources(agent.scim)}


def target_group(agent: Agent, name: str) -> dict[str, Any]:
    (found,) = [g for g in group_resources(agent.scim) if g["displayName"] == name]
    return found


def members(agent: Agent, name: str) -> set[str]:
    names = {scim_id: user_name for user_name, scim_id in scim_ids(agent).items()}
    return {names[m["value"]] for m in target_group(agent, name).get("members") or []}


def operations(agent: Agent, method: str, prefix: str) -> list[list[dict[str, Any]]]:
    bodies = [r.body for r in writes(agent.scim, method, prefix)]
    assert all(body["schemas"] == PATCH_OP for body in bodies)
    return [body["Operations"] for body in bodies]


def test_a_user_lifecycle_in_the_compliant_dialect(agent: Agent) -> None:
    add_groups(agent, ADMIN, SOURCING)
    alice = add_user(agent, "alice", ADMIN, SOURCING)
    bob = add_user(agent, "bob", SOURCING, given_name=None)

    # Created: the same POST as in the default dialect, members added by a lower-case op.
    sync(agent)
    assert [r.body for r in writes(agent.scim, "POST", "/Users")] == [
        {
            "schemas": USER_SCHEMAS,
            "userName": "alice@contoso.com",
            "active": True,
            "title": "Buyer",
            "name": {"givenName": "Alice", "familyName": "Tester"},
            "meta": {"resourceType": "User"},
        },
        {
            "schemas": USER_SCHEMAS,
            "userName": "bob@contoso.com",
            "active": True,
            "title": "Buyer",
            "name": {"familyName": "Tester"},
            "meta": {"resourceType": "User"},
        },
    ]
    ids = scim_ids(agent)
    admin = target_group(agent, ADMIN)["id"]
    assert operations(agent, "PATCH", f"/Groups/{admin}") == [
        [{"op": "add", "path": "members", "value": [{"value": ids["alice@contoso.com"]}]}]
    ]
    assert members(agent, SOURCING) == {"alice@contoso.com", "bob@contoso.com"}

    # Attributes changed: replaced ones collapse into one path-less op, new ones are `add`.
    agent.tenant.update_user(alice, job_title="Director", surname="Smith")
    agent.tenant.update_user(bob, job_title="Lead Buyer", given_name="Robert")
    sync(agent)
    assert operations(agent, "PATCH", "/Users/") == [
        [{"op": "replace", "value": {"title": "Director", "name.familyName": "Smith"}}],
        [
            {"op": "replace", "value": {"title": "Lead Buyer"}},
            {"op": "add", "path": "name.givenName", "value": "Robert"},
        ],
    ]
    assert [(m, t) for m, t in agent.wire()[1:] if m == "PATCH"] == [
        ("PATCH", f"/Users/{ids['alice@contoso.com']}"),
        ("PATCH", f"/Users/{ids['bob@contoso.com']}"),
    ]
    users = {u["userName"]: u for u in user_resources(agent.scim)}
    assert users["alice@contoso.com"]["title"] == "Director"
    assert users["alice@contoso.com"]["name"] == {"givenName": "Alice", "familyName": "Smith"}
    assert users["bob@contoso.com"]["name"] == {"givenName": "Robert", "familyName": "Tester"}

    # Disabled, then enabled: `active` keeps its own op and is a JSON boolean.
    agent.tenant.update_user(alice, account_enabled=False)
    sync(agent)
    assert operations(agent, "PATCH", "/") == [
        [{"op": "replace", "path": "active", "value": False}]
    ]
    assert {u["userName"]: u["active"] for u in user_resources(agent.scim)} == {
        "alice@contoso.com": False,
        "bob@contoso.com": True,
    }
    assert "alice@contoso.com" in members(agent, ADMIN)  # a disabled user keeps its groups

    agent.tenant.update_user(alice, account_enabled=True)
    sync(agent)
    assert operations(agent, "PATCH", "/") == [[{"op": "replace", "path": "active", "value": True}]]
    assert {u["userName"]: u["active"] for u in user_resources(agent.scim)} == {
        "alice@contoso.com": True,
        "bob@contoso.com": True,
    }

    # Out of scope: disabled, and removed from its group by a member filter path.
    leave_all_groups(agent, bob)
    sync(agent)
    sourcing = target_group(agent, SOURCING)["id"]
    assert [(r.target, r.body["Operations"]) for r in agent.writes()] == [
        (
            f"/Users/{ids['bob@contoso.com']}",
            [{"op": "replace", "path": "active", "value": False}],
        ),
        (
            f"/Groups/{sourcing}",
            [{"op": "remove", "path": f'members[value eq "{ids["bob@contoso.com"]}"]'}],
        ),
    ]
    assert members(agent, SOURCING) == {"alice@contoso.com"}

    # Hard-deleted in Entra: DELETE, then the member removals, one PATCH per group.
    agent.tenant.hard_delete_user(alice)
    sync(agent)
    filter_path = f'members[value eq "{ids["alice@contoso.com"]}"]'
    assert [(r.method, r.target, r.body) for r in agent.writes()] == [
        ("DELETE", f"/Users/{ids['alice@contoso.com']}", None),
        (
            "PATCH",
            f"/Groups/{admin}",
            {"schemas": PATCH_OP, "Operations": [{"op": "remove", "path": filter_path}]},
        ),
        (
            "PATCH",
            f"/Groups/{sourcing}",
            {"schemas": PATCH_OP, "Operations": [{"op": "remove", "path": filter_path}]},
        ),
    ]
    assert set(scim_ids(agent)) == {"bob@contoso.com"}
    assert members(agent, ADMIN) == set() and members(agent, SOURCING) == set()
    assert agent.runtime.store.load().memberships == frozenset()


def test_groups_and_memberships_in_the_compliant_dialect(agent: Agent) -> None:
    add_groups(agent, ADMIN, CONTRACT, SOURCING)
    ann = add_user(agent, "ann", ADMIN, CONTRACT, SOURCING)
    ben = add_user(agent, "ben", SOURCING)
    cid = add_user(agent, "cid", SOURCING)
    sync(agent)
    ids = scim_ids(agent)
    assert posted_names(agent.scim) == [
        "ann@contoso.com",
        "ben@contoso.com",
        "cid@contoso.com",
        ADMIN,
        CONTRACT,
        SOURCING,
    ]
    sourcing = target_group(agent, SOURCING)["id"]
    # One add for all of a group's members (in Entra object id order).
    added = operations(agent, "PATCH", f"/Groups/{sourcing}")
    by_entra = sorted([(ann, "ann"), (ben, "ben"), (cid, "cid")])
    assert added == [
        [
            {
                "op": "add",
                "path": "members",
                "value": [{"value": ids[f"{alias}@contoso.com"]} for _, alias in by_entra],
            }
        ]
    ]

    # Members added and removed: removals go one member per PATCH, by filter path.
    agent.tenant.add_members(group_id(agent, ADMIN), ben)
    agent.tenant.remove_members(group_id(agent, SOURCING), ann, ben)
    sync(agent)
    admin = target_group(agent, ADMIN)["id"]
    removed = sorted([(ann, "ann"), (ben, "ben")])
    assert [(r.target, r.body["Operations"]) for r in agent.writes()] == [
        (
            f"/Groups/{admin}",
            [{"op": "add", "path": "members", "value": [{"value": ids["ben@contoso.com"]}]}],
        ),
        *[
            (
                f"/Groups/{sourcing}",
                [{"op": "remove", "path": f'members[value eq "{ids[f"{alias}@contoso.com"]}"]'}],
            )
            for _, alias in removed
        ],
    ]
    assert members(agent, ADMIN) == {"ann@contoso.com", "ben@contoso.com"}
    assert members(agent, SOURCING) == {"cid@contoso.com"}

    # Renamed: read by id without members, then one path-less replace.
    contract = target_group(agent, CONTRACT)["id"]
    agent.tenant.rename_group(group_id(agent, CONTRACT), "SourceMagnetContractViewers")
    sync(agent)
    assert agent.wire()[1:] == [
        ("GET", f"/Groups/{contract}?excludedAttributes=members"),
        ("PATCH", f"/Groups/{contract}"),
    ]
    assert operations(agent, "PATCH", "/Groups/") == [
        [{"op": "replace", "value": {"displayName": "SourceMagnetContractViewers"}}]
    ]
    assert target_group(agent, "SourceMagnetContractViewers")["id"] == contract

    # Deleted in Entra: DELETE. ben was in no other group now, so he leaves scope first.
    agent.tenant.delete_group(group_id(agent, ADMIN))
    sync(agent)
    assert [(r.method, r.target, r.body) for r in agent.writes()] == [
        (
            "PATCH",
            f"/Users/{ids['ben@contoso.com']}",
            {
                "schemas": PATCH_OP,
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        ),
        ("DELETE", f"/Groups/{admin}", None),
    ]
    assert sorted(g["displayName"] for g in group_resources(agent.scim)) == [
        "SourceMagnetContractViewers",
        SOURCING,
    ]
    active = {u["userName"]: u["active"] for u in user_resources(agent.scim)}
    assert active == {"ann@contoso.com": True, "ben@contoso.com": False, "cid@contoso.com": True}


def test_adopting_existing_objects_in_the_compliant_dialect(agent: Agent) -> None:
    admin_entra = agent.tenant.add_group(ADMIN)
    add_user(agent, "alice", ADMIN, job_title="Director")
    user = agent.runtime.target.create_user(
        {
            "schemas": USER_SCHEMAS[:1],
            "userName": "Alice@Contoso.com",
            "active": True,
            "title": "Intern",
        }
    )
    group = agent.runtime.target.create_group(
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": ADMIN}
    )

    result = sync(agent)

    assert posted_names(agent.scim) == []
    unquoted = [unquote_plus(t) for m, t in agent.wire() if m == "GET"][1:]
    assert unquoted == [
        '/Users?filter=userName eq "alice@contoso.com"',
        f'/Groups?excludedAttributes=members&filter=displayName eq "{ADMIN}"',
    ]
    assert operations(agent, "PATCH", f"/Users/{user['id']}") == [
        [
            {"op": "replace", "value": {"userName": "alice@contoso.com", "title": "Director"}},
            {"op": "add", "path": "name.givenName", "value": "Alice"},
            {"op": "add", "path": "name.familyName", "value": "Tester"},
        ]
    ]
    assert operations(agent, "PATCH", f"/Groups/{group['id']}") == [
        [{"op": "add", "path": "externalId", "value": admin_entra}],
        [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}],
    ]
    assert result.summary()["users"]["adopted"] == 1
    assert result.summary()["groups"]["adopted"] == 1
    (stored,) = user_resources(agent.scim)
    assert (stored["id"], stored["userName"], stored["title"]) == (
        user["id"],
        "alice@contoso.com",
        "Director",
    )
    assert target_group(agent, ADMIN)["externalId"] == admin_entra
    assert members(agent, ADMIN) == {"alice@contoso.com"}
