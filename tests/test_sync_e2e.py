"""End to end: Graph emulator → agent → scim2-server, on SQLite and PostgreSQL state.

One test per row of Entra's event table that the agent handles (entra-push-flow §4.3),
each asserting the requests on the wire and the result on the target.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from syncagent.cycle import RunStatus
from syncagent.emulator import GraphEmulator
from syncagent.errors import Refused
from syncagent.state import StateStore
from tests.agent import ROLE_GROUPS, Agent, agent_config, running_agent
from tests.fixtures.scim_server import ScimServer

PATCH_OP = ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]


@pytest.fixture
def agent(
    tmp_path: Path, graph_emulator: GraphEmulator, scim_server: ScimServer, state_url: str
) -> Iterator[Agent]:
    config = agent_config(tmp_path, graph_emulator, scim_server, state_url)
    with running_agent(config, graph_emulator, scim_server) as agent:
        yield agent


def role_groups(agent: Agent) -> dict[str, str]:
    return {name: agent.tenant.add_group(name) for name in ROLE_GROUPS}


def add_user(agent: Agent, alias: str, *groups: str, **attrs: Any) -> str:
    defaults = {"given_name": alias.title(), "surname": "Tester", "job_title": "Buyer"}
    user_id = agent.tenant.add_user(f"{alias}@contoso.com", **{**defaults, **attrs})
    for group in groups:
        agent.tenant.add_members(agent.tenant.find_group(group).id, user_id)  # type: ignore[union-attr]
    return user_id


def bodies(agent: Agent, method: str, prefix: str) -> list[Any]:
    return [r.body for r in agent.writes() if r.method == method and r.target.startswith(prefix)]


def ok(result: Any) -> None:
    assert result.status is RunStatus.SUCCESS, (result.error, result.to_dict())


# -- user comes into scope ------------------------------------------------------------------


def test_first_run_creates_users_then_groups_then_memberships(agent: Agent) -> None:
    role_groups(agent)
    alice = add_user(agent, "alice", "SourceMagnetAdmin", "SourceMagnetContractCreator")
    add_user(agent, "bob", "SourceMagnetContractCreator", job_title=None, surname=None)
    agent.tenant.add_group("Marketing")
    add_user(agent, "mallory", "Marketing")

    result = agent.sync()
    ok(result)

    wire = agent.wire()
    assert wire[0][0] == "GET" and unquote_plus(wire[0][1]).startswith(
        '/Users?filter=userName eq "'
    )
    methods = [m for m, _ in wire]
    first_group = next(i for i, (m, t) in enumerate(wire) if t.startswith("/Groups"))
    first_member_patch = next(i for i, (m, t) in enumerate(wire) if m == "PATCH")
    assert all(not t.startswith("/Groups") for _, t in wire[:first_group])
    assert first_group < first_member_patch
    assert methods.count("POST") == 2 + 7  # two users, seven groups

    assert bodies(agent, "POST", "/Users")[0] == {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "userName": "alice@contoso.com",
        "active": True,
        "title": "Buyer",
        "name": {"givenName": "Alice", "familyName": "Tester"},
        "meta": {"resourceType": "User"},
    }
    bob_body = bodies(agent, "POST", "/Users")[1]
    assert "title" not in bob_body and bob_body["name"] == {"givenName": "Bob"}

    admin_id = agent.tenant.find_group("SourceMagnetAdmin").id  # type: ignore[union-attr]
    group_posts = bodies(agent, "POST", "/Groups")
    assert {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "externalId": admin_id,
        "displayName": "SourceMagnetAdmin",
        "members": [],
        "meta": {"resourceType": "Group"},
    } in group_posts

    assert set(agent.users()) == {"alice@contoso.com", "bob@contoso.com"}
    assert set(agent.groups()) == set(ROLE_GROUPS)
    assert agent.member_names("SourceMagnetContractCreator") == {
        "alice@contoso.com",
        "bob@contoso.com",
    }
    add = bodies(agent, "PATCH", f"/Groups/{agent.groups()['SourceMagnetAdmin']['id']}")
    assert add == [
        {
            "schemas": PATCH_OP,
            "Operations": [
                {
                    "op": "Add",
                    "path": "members",
                    "value": [{"value": agent.scim_id("alice@contoso.com")}],
                }
            ],
        }
    ]
    # The link is by Entra object id, so a later rename keeps the same SourceMagnet user.
    assert agent.runtime.store.load().users[alice].scim_id == agent.scim_id("alice@contoso.com")
    summary = result.summary()
    assert summary["users"]["created"] == 2 and summary["groups"]["created"] == 7


def test_a_second_run_with_no_changes_sends_no_writes(agent: Agent) -> None:
    role_groups(agent)
    add_user(agent, "alice", "SourceMagnetAdmin")
    ok(agent.sync())
    result = agent.sync()
    ok(result)
    assert agent.writes() == []
    assert agent.wire() == [agent.wire()[0]]  # only the probe
    assert result.plan is not None and result.plan.changes == ()


def test_dry_run_reads_but_sends_no_writes_and_leaves_state_alone(agent: Agent) -> None:
    role_groups(agent)
    add_user(agent, "alice", "SourceMagnetAdmin")

    dry = agent.sync(dry_run=True)
    ok(dry)
    assert agent.writes() == []
    assert {m for m, _ in agent.wire()} == {"GET"}
    withheld = [r for r in dry.report.requests if not r.sent]  # type: ignore[union-attr]
    assert [(r.method, r.path) for r in withheld][:1] == [("POST", "/Users")]
    assert withheld[0].body["userName"] == "alice@contoso.com"  # type: ignore[index]
    assert agent.runtime.store.load().users == {}
    assert agent.runtime.store.runs() == []

    real = agent.sync()
    ok(real)
    sent = [(r.method, r.path.split("?")[0]) for r in real.report.requests if r.method != "GET"]  # type: ignore[union-attr]
    planned = [(r.method, r.path.split("?")[0]) for r in withheld]
    # The dry run's plan is the real run's plan: same writes, in the same order, except
    # that the ids of objects created in this run are only known once they exist.
    assert [m for m, _ in sent] == [m for m, _ in planned]
    assert [json.dumps(r.body, sort_keys=True) for r in withheld if r.method == "POST"] == [
        json.dumps(r.body, sort_keys=True)
        for r in real.report.requests
        if r.method == "POST"  # type: ignore[union-attr]
    ]


def test_an_existing_target_user_is_adopted_not_duplicated(agent: Agent) -> None:
    role_groups(agent)
    add_user(agent, "alice", "SourceMagnetAdmin", job_title="Director")
    existing = agent.runtime.target.create_user(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Alice@Contoso.com",
            "active": True,
            "title": "Intern",
        }
    )
    result = agent.sync()
    ok(result)
    assert [b for b in bodies(agent, "POST", "/Users")] == []
    assert len(agent.users()) == 1
    assert bodies(agent, "PATCH", f"/Users/{existing['id']}") == [
        {
            "schemas": PATCH_OP,
            "Operations": [
                {"op": "Replace", "path": "userName", "value": "alice@contoso.com"},
                {"op": "Replace", "path": "title", "value": "Director"},
                {"op": "Add", "path": "name.givenName", "value": "Alice"},
                {"op": "Add", "path": "name.familyName", "value": "Tester"},
            ],
        }
    ]
    assert result.summary()["users"]["adopted"] == 1
    assert agent.member_names("SourceMagnetAdmin") == {"alice@contoso.com"}


def test_a_pre_existing_group_is_adopted_and_given_its_external_id(agent: Agent) -> None:
    admin = agent.tenant.add_group("SourceMagnetAdmin")
    existing = agent.runtime.target.create_group(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "SourceMagnetAdmin",
        }
    )
    ok(agent.sync())
    assert len(agent.groups()) == 1
    unquoted = [unquote_plus(t) for m, t in agent.wire() if t.startswith("/Groups?")]
    assert unquoted == [
        '/Groups?excludedAttributes=members&filter=displayName eq "SourceMagnetAdmin"'
    ]
    assert bodies(agent, "PATCH", f"/Groups/{existing['id']}") == [
        {"schemas": PATCH_OP, "Operations": [{"op": "Add", "path": "externalId", "value": admin}]}
    ]


def test_a_disabled_user_is_never_created(agent: Agent) -> None:
    role_groups(agent)
    add_user(agent, "carol", "SourceMagnetAdmin", account_enabled=False)
    result = agent.sync()
    ok(result)
    assert bodies(agent, "POST", "/Users") == []
    assert agent.users() == {}
    assert any("carol@contoso.com" in note for note in result.plan.notes)  # type: ignore[union-attr]


# -- changes to provisioned users -----------------------------------------------------------


def provisioned(agent: Agent) -> dict[str, str]:
    role_groups(agent)
    ids = {
        "alice": add_user(agent, "alice", "SourceMagnetAdmin", "SourceMagnetSourcingViewer"),
        "bob": add_user(agent, "bob", "SourceMagnetSourcingViewer", given_name=None),
    }
    ok(agent.sync())
    return ids


def test_an_attribute_change_is_read_then_patched(agent: Agent) -> None:
    ids = provisioned(agent)
    agent.tenant.update_user(ids["bob"], job_title="Senior Buyer", given_name="Robert")
    ok(agent.sync())
    bob = agent.scim_id("bob@contoso.com")
    assert agent.wire()[1:] == [("GET", f"/Users/{bob}"), ("PATCH", f"/Users/{bob}")]
    assert agent.writes()[0].body == {
        "schemas": PATCH_OP,
        "Operations": [
            {"op": "Replace", "path": "title", "value": "Senior Buyer"},
            {"op": "Add", "path": "name.givenName", "value": "Robert"},
        ],
    }
    assert agent.users()["bob@contoso.com"]["title"] == "Senior Buyer"


def test_a_null_source_value_is_never_sent_and_never_clears(agent: Agent) -> None:
    ids = provisioned(agent)
    agent.tenant.update_user(ids["alice"], job_title=None)
    ok(agent.sync())
    assert agent.writes() == []
    assert agent.users()["alice@contoso.com"]["title"] == "Buyer"


def test_a_upn_change_renames_the_linked_user(agent: Agent) -> None:
    ids = provisioned(agent)
    before = agent.scim_id("alice@contoso.com")
    agent.tenant.update_user(ids["alice"], user_principal_name="alice.smith@contoso.com")
    ok(agent.sync())
    assert agent.writes()[0].body["Operations"] == [
        {"op": "Replace", "path": "userName", "value": "alice.smith@contoso.com"}
    ]
    assert agent.scim_id("alice.smith@contoso.com") == before


def test_leaving_scope_soft_deletes_and_removes_memberships(agent: Agent) -> None:
    ids = provisioned(agent)
    for group in ("SourceMagnetAdmin", "SourceMagnetSourcingViewer"):
        agent.tenant.remove_members(agent.tenant.find_group(group).id, ids["alice"])  # type: ignore[union-attr]
    ok(agent.sync())
    alice = agent.scim_id("alice@contoso.com")
    assert bodies(agent, "PATCH", f"/Users/{alice}") == [
        {"schemas": PATCH_OP, "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}
    ]
    removals = [b for b in bodies(agent, "PATCH", "/Groups/")]
    assert (
        removals
        == [
            {
                "schemas": PATCH_OP,
                "Operations": [{"op": "Remove", "path": "members", "value": [{"value": alice}]}],
            },
        ]
        * 2
    )
    assert agent.users()["alice@contoso.com"]["active"] is False
    assert "alice@contoso.com" not in agent.member_names("SourceMagnetAdmin")
    # Users are handled before groups, groups before memberships.
    assert [m for m, t in agent.wire() if m != "GET"] == ["PATCH", "PATCH", "PATCH"]
    assert agent.wire()[2][1].startswith("/Users/")


def test_account_disabled_soft_deletes_and_keeps_memberships(agent: Agent) -> None:
    ids = provisioned(agent)
    agent.tenant.update_user(ids["alice"], account_enabled=False)
    ok(agent.sync())
    alice = agent.scim_id("alice@contoso.com")
    assert [(w.method, w.target, w.body["Operations"]) for w in agent.writes()] == [
        ("PATCH", f"/Users/{alice}", [{"op": "Replace", "path": "active", "value": "False"}])
    ]
    assert "alice@contoso.com" in agent.member_names("SourceMagnetAdmin")

    agent.tenant.update_user(ids["alice"], account_enabled=True)
    ok(agent.sync())
    assert [w.body["Operations"] for w in agent.writes()] == [
        [{"op": "Replace", "path": "active", "value": "True"}]
    ]
    assert agent.users()["alice@contoso.com"]["active"] is True


def test_soft_delete_disables_then_purge_deletes(agent: Agent) -> None:
    ids = provisioned(agent)
    alice = agent.scim_id("alice@contoso.com")
    agent.tenant.soft_delete_user(ids["alice"])
    ok(agent.sync())
    assert [(w.method, w.target) for w in agent.writes()] == [("PATCH", f"/Users/{alice}")]
    assert agent.writes()[0].body["Operations"] == [
        {"op": "Replace", "path": "active", "value": "False"}
    ]
    assert "alice@contoso.com" in agent.member_names("SourceMagnetAdmin")  # kept while restorable

    ok(agent.sync())  # still in the recycle bin: nothing to do
    assert agent.writes() == []

    agent.tenant.hard_delete_user(ids["alice"])
    ok(agent.sync())
    writes = [(w.method, w.target) for w in agent.writes()]
    assert writes[0] == ("DELETE", f"/Users/{alice}")
    assert all(m == "PATCH" and t.startswith("/Groups/") for m, t in writes[1:])
    assert "alice@contoso.com" not in agent.users()


def test_restore_from_the_recycle_bin_re_enables(agent: Agent) -> None:
    ids = provisioned(agent)
    agent.tenant.soft_delete_user(ids["bob"])
    ok(agent.sync())
    agent.tenant.restore_user(ids["bob"])
    ok(agent.sync())
    assert [w.body["Operations"] for w in agent.writes()] == [
        [{"op": "Replace", "path": "active", "value": "True"}]
    ]
    assert agent.users()["bob@contoso.com"]["active"] is True
    assert "bob@contoso.com" in agent.member_names("SourceMagnetSourcingViewer")


def test_a_hard_deleted_user_is_deleted(agent: Agent) -> None:
    ids = provisioned(agent)
    bob = agent.scim_id("bob@contoso.com")
    agent.tenant.hard_delete_user(ids["bob"])
    result = agent.sync()
    ok(result)
    assert agent.writes()[0].method == "DELETE" and agent.writes()[0].target == f"/Users/{bob}"
    assert "bob@contoso.com" not in agent.users()
    assert "bob@contoso.com" not in agent.member_names("SourceMagnetSourcingViewer")
    assert result.summary()["users"]["deleted"] == 1


def test_an_out_of_scope_user_that_is_later_deleted_is_left_alone(agent: Agent) -> None:
    ids = provisioned(agent)
    agent.tenant.remove_members(
        agent.tenant.find_group("SourceMagnetSourcingViewer").id, ids["bob"]
    )  # type: ignore[union-attr]
    ok(agent.sync())
    agent.tenant.hard_delete_user(ids["bob"])
    ok(agent.sync())
    assert agent.writes() == []  # as in Entra: no longer managed once out of scope
    assert agent.users()["bob@contoso.com"]["active"] is False


# -- groups and memberships -----------------------------------------------------------------


def test_a_group_is_created_empty_then_its_members_are_added(agent: Agent) -> None:
    provisioned(agent)
    project = agent.tenant.find_group("SourceMagnetProjectViewer").id  # type: ignore[union-attr]
    add_user(agent, "carol", "SourceMagnetProjectViewer")
    agent.tenant.add_members(project, agent.tenant.find_user("alice@contoso.com").id)  # type: ignore[union-attr]
    ok(agent.sync())
    group_id = agent.groups()["SourceMagnetProjectViewer"]["id"]
    patch = bodies(agent, "PATCH", f"/Groups/{group_id}")
    assert len(patch) == 1
    (op,) = patch[0]["Operations"]
    assert op["op"] == "Add" and op["path"] == "members"
    assert {v["value"] for v in op["value"]} == {
        agent.scim_id("alice@contoso.com"),
        agent.scim_id("carol@contoso.com"),
    }


def test_a_renamed_group_is_read_then_patched(agent: Agent) -> None:
    provisioned(agent)
    viewer = agent.tenant.find_group("SourceMagnetSourcingViewer")
    agent.tenant.rename_group(viewer.id, "SourceMagnetSourcingViewers")  # type: ignore[union-attr]
    ok(agent.sync())
    gid = agent.groups()["SourceMagnetSourcingViewers"]["id"]
    assert agent.wire()[1:] == [
        ("GET", f"/Groups/{gid}?excludedAttributes=members"),
        ("PATCH", f"/Groups/{gid}"),
    ]
    assert agent.writes()[0].body == {
        "schemas": PATCH_OP,
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "SourceMagnetSourcingViewers"}
        ],
    }


def test_member_added_and_removed(agent: Agent) -> None:
    ids = provisioned(agent)
    admin = agent.tenant.find_group("SourceMagnetAdmin").id  # type: ignore[union-attr]
    agent.tenant.add_members(admin, ids["bob"])
    agent.tenant.remove_members(admin, ids["alice"])
    ok(agent.sync())
    gid = agent.groups()["SourceMagnetAdmin"]["id"]
    assert [w.body["Operations"] for w in agent.writes()] == [
        [{"op": "Add", "path": "members", "value": [{"value": agent.scim_id("bob@contoso.com")}]}],
        [
            {
                "op": "Remove",
                "path": "members",
                "value": [{"value": agent.scim_id("alice@contoso.com")}],
            }
        ],
    ]
    assert all(w.target == f"/Groups/{gid}" for w in agent.writes())
    assert agent.member_names("SourceMagnetAdmin") == {"bob@contoso.com"}
    assert agent.users()["alice@contoso.com"]["active"] is True  # still in another group


def test_a_deleted_group_is_deleted(agent: Agent) -> None:
    provisioned(agent)
    gid = agent.groups()["SourceMagnetProjectCreator"]["id"]
    agent.tenant.delete_group(agent.tenant.find_group("SourceMagnetProjectCreator").id)  # type: ignore[union-attr]
    ok(agent.sync())
    assert [(w.method, w.target) for w in agent.writes()] == [("DELETE", f"/Groups/{gid}")]
    assert "SourceMagnetProjectCreator" not in agent.groups()


def test_nested_groups_and_out_of_scope_groups_are_ignored(agent: Agent) -> None:
    role_groups(agent)
    leads = agent.tenant.add_group("Procurement Leads")
    add_user(agent, "dave", "Procurement Leads")
    agent.tenant.add_members(agent.tenant.find_group("SourceMagnetAdmin").id, leads)  # type: ignore[union-attr]
    ok(agent.sync())
    assert agent.users() == {}
    assert "Procurement Leads" not in agent.groups()


def test_objects_the_agent_did_not_create_or_adopt_are_never_touched(agent: Agent) -> None:
    role_groups(agent)
    add_user(agent, "alice", "SourceMagnetAdmin")
    stranger = agent.runtime.target.create_user(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "local.admin@contoso.com",
        }
    )
    other = agent.runtime.target.create_group(
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Local group"}
    )
    ok(agent.sync())
    agent.tenant.remove_members(
        agent.tenant.find_group("SourceMagnetAdmin").id,  # type: ignore[union-attr]
        agent.tenant.find_user("alice@contoso.com").id,
    )  # type: ignore[union-attr]
    ok(agent.sync())
    touched = {w.target.split("?")[0] for w in agent.scim.requests}
    assert f"/Users/{stranger['id']}" not in touched
    assert f"/Groups/{other['id']}" not in touched
    assert agent.users()["local.admin@contoso.com"].get("active", True) is not False


def test_a_sync_is_refused_while_another_holds_the_state(agent: Agent, state_url: str) -> None:
    role_groups(agent)
    add_user(agent, "alice", "SourceMagnetAdmin")
    with StateStore.open(state_url) as other, other.exclusive_run():
        with pytest.raises(Refused):
            agent.sync()
        assert agent.writes() == []
        ok(agent.sync(dry_run=True))  # a dry run only reads: it is not kept out
    ok(agent.sync())
    assert set(agent.users()) == {"alice@contoso.com"}


def test_an_out_of_scope_user_that_is_later_soft_deleted_is_left_alone(agent: Agent) -> None:
    ids = provisioned(agent)
    viewer = agent.tenant.find_group("SourceMagnetSourcingViewer").id  # type: ignore[union-attr]
    agent.tenant.remove_members(viewer, ids["bob"])
    ok(agent.sync())
    agent.tenant.soft_delete_user(ids["bob"])
    agent.graph.clear_requests()
    ok(agent.sync())
    assert agent.writes() == []
    # Not managed any more, so not even looked up in Graph.
    assert not [r for r in agent.graph.requests if ids["bob"] in r.path]


def test_a_group_renamed_out_of_scope_is_deleted_like_an_unassigned_group(agent: Agent) -> None:
    provisioned(agent)
    gid = agent.groups()["SourceMagnetAdmin"]["id"]
    admin = agent.tenant.find_group("SourceMagnetAdmin").id  # type: ignore[union-attr]
    agent.tenant.rename_group(admin, "Former SourceMagnet admins")
    result = agent.sync()
    ok(result)
    assert [(w.method, w.target) for w in agent.writes()] == [("DELETE", f"/Groups/{gid}")]
    # Alice keeps her other role group, so she stays active.
    assert agent.users()["alice@contoso.com"]["active"] is True


def test_a_target_user_already_linked_is_never_adopted_for_a_second_entra_user(
    agent: Agent,
) -> None:
    provisioned(agent)
    alice_scim = agent.scim_id("alice@contoso.com")
    # Alice's account is renamed in SourceMagnet to the name a new Entra user arrives with.
    agent.runtime.target.patch_user(
        alice_scim,
        {
            "schemas": PATCH_OP,
            "Operations": [{"op": "replace", "path": "userName", "value": "carol@contoso.com"}],
        },
    )
    carol = add_user(agent, "carol", "SourceMagnetAdmin")
    result = agent.sync()
    assert result.status is RunStatus.PARTIAL
    errors = [step.outcome.error for step in result.report.failed]  # type: ignore[union-attr]
    assert errors[0] is not None
    assert "already linked" in errors[0], errors
    assert bodies(agent, "PATCH", f"/Users/{alice_scim}") == []
    assert carol not in agent.runtime.store.load().users


def test_skip_out_of_scope_deletions_keeps_leavers_active(
    tmp_path: Path, graph_emulator: GraphEmulator, scim_server: ScimServer, state_url: str
) -> None:
    config = agent_config(
        tmp_path,
        graph_emulator,
        scim_server,
        state_url,
        safety={"skip_out_of_scope_deletions": True},
    )
    with running_agent(config, graph_emulator, scim_server) as agent:
        ids = provisioned(agent)
        viewer = agent.tenant.find_group("SourceMagnetSourcingViewer").id  # type: ignore[union-attr]
        agent.tenant.remove_members(viewer, ids["bob"])
        ok(agent.sync())
        bob = agent.scim_id("bob@contoso.com")
        assert [w.body["Operations"][0]["op"] for w in agent.writes()] == ["Remove"]
        assert agent.users()["bob@contoso.com"]["active"] is True
        agent.tenant.update_user(ids["alice"], account_enabled=False)
        ok(agent.sync())  # disabling in Entra still disables
        assert agent.users()["alice@contoso.com"]["active"] is False
        assert bob not in {w.target for w in agent.writes()}
