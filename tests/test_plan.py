"""The planner, as tables of snapshots and recorded states against expected operations."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.mapping import desired_user, roles, user_name
from syncagent.model import (
    Deprovision,
    DirectoryGroup,
    DirectorySnapshot,
    DirectoryUser,
    GroupRecord,
    Presence,
    RecordedState,
    UserRecord,
)
from syncagent.plan import Action, Plan, build_plan, departed_user_ids

ALICE = DirectoryUser("u-alice", "alice@contoso.com", "Alice", "Anders", "Buyer", True)
BOB = DirectoryUser("u-bob", "bob@contoso.com", "Bob", None, None, True)
CAROL_DISABLED = DirectoryUser("u-carol", "carol@contoso.com", "Carol", "C", "CFO", False)


def snap(*groups: DirectoryGroup, users: tuple[DirectoryUser, ...] = ()) -> DirectorySnapshot:
    return DirectorySnapshot({g.id: g for g in groups}, {u.id: u for u in users})


def group(gid: str, name: str, *members: str) -> DirectoryGroup:
    return DirectoryGroup(gid, name, frozenset(members))


def rec_user(user: DirectoryUser, scim_id: str, **kw: Any) -> UserRecord:
    attrs = desired_user(user)
    attrs.update(kw.pop("attrs", {}))
    return UserRecord(user.id, scim_id, attrs, kw.pop("deprovisioned", None))


def actions(plan: Plan) -> list[tuple[str, str]]:
    return [(str(op.action), op.label) for op in plan.changes]


ADMIN = group("g-admin", "SourceMagnetAdmin", "u-alice")


def test_mapping_omits_nulls_and_keeps_exactly_the_five_attributes() -> None:
    assert desired_user(ALICE) == {
        "userName": "alice@contoso.com",
        "active": True,
        "title": "Buyer",
        "name.givenName": "Alice",
        "name.familyName": "Anders",
    }
    assert desired_user(BOB) == {
        "userName": "bob@contoso.com",
        "active": True,
        "name.givenName": "Bob",
    }
    empty_title = DirectoryUser("u", "x@contoso.com", "", None, "", True)
    assert desired_user(empty_title) == {"userName": "x@contoso.com", "active": True}


@pytest.mark.parametrize(
    ("upn", "expected"),
    [
        ("alice@contoso.com", "alice@contoso.com"),
        ("alice_fabrikam.com#EXT#@contoso.onmicrosoft.com", "alice@fabrikam.com"),
        ("a_b_fabrikam.com#EXT#@contoso.onmicrosoft.com", "a_b@fabrikam.com"),
    ],
)
def test_guest_user_names_are_stripped_as_entra_does(upn: str, expected: str) -> None:
    assert user_name(upn) == expected


def test_roles_follow_group_names_in_canonical_order() -> None:
    names = ["SourceMagnetProjectViewer", "SourceMagnetAdmin", "Marketing"]
    assert roles(names) == ["Admin", "Project viewer"]


CASES: list[
    tuple[str, DirectorySnapshot, RecordedState, dict[str, Presence], list[tuple[str, str]]]
] = [
    (
        "first run creates users, then groups, then memberships",
        snap(ADMIN, users=(ALICE,)),
        RecordedState(),
        {},
        [
            ("create_user", "alice@contoso.com"),
            ("create_group", "SourceMagnetAdmin"),
            ("add_members", "SourceMagnetAdmin"),
        ],
    ),
    (
        "nothing changed plans nothing",
        snap(ADMIN, users=(ALICE,)),
        RecordedState(
            {"u-alice": rec_user(ALICE, "s1")},
            {"g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin")},
            frozenset({("g-admin", "u-alice")}),
        ),
        {},
        [],
    ),
    (
        "a disabled user is never created, nor added as a member",
        snap(group("g-admin", "SourceMagnetAdmin", "u-carol"), users=(CAROL_DISABLED,)),
        RecordedState({}, {"g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin")}),
        {},
        [],
    ),
    (
        "accountEnabled false on a provisioned user disables it",
        snap(group("g-admin", "SourceMagnetAdmin", "u-carol"), users=(CAROL_DISABLED,)),
        RecordedState(
            {"u-carol": rec_user(CAROL_DISABLED, "s3", attrs={"active": True})},
            {"g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin")},
            frozenset({("g-admin", "u-carol")}),
        ),
        {},
        [("disable_user", "carol@contoso.com")],
    ),
    (
        "an attribute change is an update",
        snap(ADMIN, users=(ALICE,)),
        RecordedState(
            {"u-alice": rec_user(ALICE, "s1", attrs={"title": "Clerk"})},
            {"g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin")},
            frozenset({("g-admin", "u-alice")}),
        ),
        {},
        [("update_user", "alice@contoso.com")],
    ),
    (
        "leaving scope disables and removes the membership",
        snap(group("g-admin", "SourceMagnetAdmin")),
        RecordedState(
            {"u-alice": rec_user(ALICE, "s1")},
            {"g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin")},
            frozenset({("g-admin", "u-alice")}),
        ),
        {"u-alice": Presence.EXISTS},
        [("disable_user", "alice@contoso.com"), ("remove_members", "SourceMagnetAdmin")],
    ),
    (
        "a soft-deleted user is disabled and keeps its memberships",
        snap(group("g-admin", "SourceMagnetAdmin")),
        RecordedState(
            {"u-alice": rec_user(ALICE, "s1")},
            {"g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin")},
            frozenset({("g-admin", "u-alice")}),
        ),
        {"u-alice": Presence.SOFT_DELETED},
        [("disable_user", "alice@contoso.com")],
    ),
    (
        "a hard-deleted user is deleted, then its membership removed",
        snap(group("g-admin", "SourceMagnetAdmin")),
        RecordedState(
            {"u-alice": rec_user(ALICE, "s1")},
            {"g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin")},
            frozenset({("g-admin", "u-alice")}),
        ),
        {"u-alice": Presence.GONE},
        [("delete_user", "alice@contoso.com"), ("remove_members", "SourceMagnetAdmin")],
    ),
    (
        "a soft-deleted user purged later is deleted",
        snap(group("g-admin", "SourceMagnetAdmin")),
        RecordedState(
            {
                "u-alice": rec_user(
                    ALICE, "s1", attrs={"active": False}, deprovisioned=Deprovision.SOFT_DELETED
                )
            },
            {"g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin")},
            frozenset({("g-admin", "u-alice")}),
        ),
        {"u-alice": Presence.GONE},
        [("delete_user", "alice@contoso.com"), ("remove_members", "SourceMagnetAdmin")],
    ),
    (
        "a restored user is enabled",
        snap(ADMIN, users=(ALICE,)),
        RecordedState(
            {
                "u-alice": rec_user(
                    ALICE, "s1", attrs={"active": False}, deprovisioned=Deprovision.SOFT_DELETED
                )
            },
            {"g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin")},
            frozenset({("g-admin", "u-alice")}),
        ),
        {},
        [("enable_user", "alice@contoso.com")],
    ),
    (
        "a renamed group is updated; a vanished group is deleted",
        snap(group("g-admin", "SourceMagnetAdmins")),
        RecordedState(
            {},
            {
                "g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin"),
                "g-old": GroupRecord("g-old", "sg2", "SourceMagnetProjectViewer"),
            },
        ),
        {},
        [("update_group", "SourceMagnetAdmins"), ("delete_group", "SourceMagnetProjectViewer")],
    ),
]


@pytest.mark.parametrize(
    ("snapshot", "recorded", "presence", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_table(
    snapshot: DirectorySnapshot,
    recorded: RecordedState,
    presence: dict[str, Presence],
    expected: list[tuple[str, str]],
) -> None:
    plan = build_plan(snapshot, recorded, presence)
    assert plan.operations[0].action is Action.PROBE
    assert actions(plan) == expected


def test_out_of_scope_users_are_not_looked_up_again() -> None:
    recorded = RecordedState(
        {
            "u-alice": rec_user(
                ALICE, "s1", attrs={"active": False}, deprovisioned=Deprovision.OUT_OF_SCOPE
            ),
            "u-bob": rec_user(BOB, "s2"),
        }
    )
    assert departed_user_ids(snap(), recorded) == ["u-bob"]


def test_membership_changes_are_chunked() -> None:
    users = tuple(DirectoryUser(f"u{i:03}", f"user{i:03}@contoso.com") for i in range(250))
    big = group("g", "SourceMagnetSourcingViewer", *(u.id for u in users))
    recorded = RecordedState(
        {u.id: rec_user(u, f"s{u.id}") for u in users},
        {"g": GroupRecord("g", "sg", big.display_name)},
    )
    plan = build_plan(snap(big, users=users), recorded, {}, members_per_patch=100)
    sizes = [len(op.members) for op in plan.changes]
    assert sizes == [100, 100, 50]
    assert {m for op in plan.changes for m in op.members} == {u.id for u in users}


def test_plan_serialises_to_plain_json_types() -> None:
    plan = build_plan(snap(ADMIN, users=(ALICE,)), RecordedState(), {})
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["counts"] == {"create_user": 1, "create_group": 1, "add_members": 1}
    assert data["operations"][1]["attributes"]["userName"] == "alice@contoso.com"


# -- properties ----------------------------------------------------------------------------

_names = st.sampled_from(["Admin", "ContractCreator", "SourcingViewer", "ProjectViewer"])
_users = st.builds(
    DirectoryUser,
    id=st.sampled_from([f"u{i}" for i in range(8)]),
    user_principal_name=st.sampled_from([f"p{i}@contoso.com" for i in range(8)]),
    given_name=st.one_of(st.none(), st.text(max_size=5)),
    surname=st.one_of(st.none(), st.text(max_size=5)),
    job_title=st.one_of(st.none(), st.text(max_size=5)),
    account_enabled=st.booleans(),
)


@st.composite
def snapshots(draw: st.DrawFn) -> DirectorySnapshot:
    users = {u.id: u for u in draw(st.lists(_users, max_size=8))}
    groups = {}
    for i, name in enumerate(draw(st.lists(_names, unique=True, max_size=4))):
        members = draw(st.sets(st.sampled_from(sorted(users)))) if users else set()
        groups[f"g{i}"] = DirectoryGroup(f"g{i}", f"SourceMagnet{name}", frozenset(members))
    in_groups = {m for g in groups.values() for m in g.member_ids}
    return DirectorySnapshot(groups, {k: v for k, v in users.items() if k in in_groups})


def converged(snapshot: DirectorySnapshot, plan: Plan) -> RecordedState:
    """The state a fully successful run of `plan` from an empty state records."""
    users = {
        op.entra_id: UserRecord(op.entra_id, f"s-{op.entra_id}", dict(op.attributes))
        for op in plan.changes
        if op.action is Action.CREATE_USER and op.entra_id
    }
    groups = {
        op.entra_id: GroupRecord(op.entra_id, f"s-{op.entra_id}", op.label)
        for op in plan.changes
        if op.action is Action.CREATE_GROUP and op.entra_id
    }
    members = frozenset(
        (op.entra_id, m)
        for op in plan.changes
        if op.action is Action.ADD_MEMBERS
        for m in op.members
        if op.entra_id
    )
    return RecordedState(users, groups, members)


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_applying_a_plan_then_planning_again_plans_nothing(snapshot: DirectorySnapshot) -> None:
    first = build_plan(snapshot, RecordedState(), {})
    assert build_plan(snapshot, RecordedState(), {}) == first  # deterministic
    created = {op.entra_id for op in first.changes if op.action is Action.CREATE_USER}
    assert all(snapshot.users[u].account_enabled for u in created)
    assert build_plan(snapshot, converged(snapshot, first), {}).changes == ()


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_everything_leaving_scope_is_soft_deleted_never_deleted(
    snapshot: DirectorySnapshot,
) -> None:
    recorded = converged(snapshot, build_plan(snapshot, RecordedState(), {}))
    empty = DirectorySnapshot({}, {})
    presence = dict.fromkeys(departed_user_ids(empty, recorded), Presence.EXISTS)
    plan = build_plan(empty, recorded, presence)
    user_actions = {
        op.action
        for op in plan.changes
        if op.action not in (Action.DELETE_GROUP, Action.REMOVE_MEMBERS)
    }
    assert user_actions <= {Action.DISABLE_USER}
    assert len([op for op in plan.changes if op.action is Action.DISABLE_USER]) == len(
        recorded.users
    )


def test_users_whose_user_names_collide_are_not_provisioned() -> None:
    guest = DirectoryUser("u-guest", "alice_contoso.com#EXT#@fabrikam.onmicrosoft.com")
    plan = build_plan(
        snap(group("g-admin", "SourceMagnetAdmin", "u-alice", "u-guest"), users=(ALICE, guest)),
        RecordedState(),
        {},
    )
    assert [op.action for op in plan.changes] == [Action.CREATE_GROUP]
    assert sum("same userName" in note for note in plan.notes) == 2


def test_skip_out_of_scope_deletions_leaves_leavers_active_but_not_the_deleted() -> None:
    recorded = RecordedState(
        {"u-alice": rec_user(ALICE, "s1"), "u-bob": rec_user(BOB, "s2")},
        {"g-admin": GroupRecord("g-admin", "sg1", "SourceMagnetAdmin")},
        frozenset({("g-admin", "u-alice"), ("g-admin", "u-bob")}),
    )
    presence = {"u-alice": Presence.EXISTS, "u-bob": Presence.GONE}
    plan = build_plan(
        snap(group("g-admin", "SourceMagnetAdmin")),
        recorded,
        presence,
        skip_out_of_scope_deletions=True,
    )
    assert actions(plan) == [
        ("record_user", "alice@contoso.com"),
        ("delete_user", "bob@contoso.com"),
        ("remove_members", "SourceMagnetAdmin"),
    ]
    assert plan.changes[0].reason is Deprovision.OUT_OF_SCOPE
    assert plan.changes[0].attributes["active"] is True
    left = RecordedState(
        {"u-alice": UserRecord("u-alice", "s1", desired_user(ALICE), Deprovision.OUT_OF_SCOPE)}
    )
    assert departed_user_ids(snap(), left) == []  # no longer managed, not looked up again


def test_an_in_scope_group_that_names_no_role_is_noted() -> None:
    plan = build_plan(
        snap(group("g-x", "SourceMagnetTesters"), ADMIN, users=(ALICE,)), RecordedState(), {}
    )
    assert plan.notes == (
        "group SourceMagnetTesters: provisioned, but its name grants no SourceMagnet role",
    )
    assert ("create_group", "SourceMagnetTesters") in actions(plan)
