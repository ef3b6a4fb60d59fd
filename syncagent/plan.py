"""The planner: desired state against recorded state, as an ordered list of operations.

Pure: it takes values and returns a value, and never sees a client, a clock or a database.
The order is Entra's (the probe, then users, then groups, then memberships), and each
event maps to the request Entra's provisioning service would send for it:

- a user comes into scope           → match by userName, then adopt or create
- attributes change                 → update (the diff is taken against the live resource)
- accountEnabled false / leaves scope / soft-deleted → active false (soft delete)
- hard-deleted in Entra             → DELETE /Users/{id}
- a disabled user never provisioned → nothing
- a group comes into scope          → match by displayName, then adopt or create
- a group is renamed                → update displayName
- a group is deleted / leaves scope → DELETE /Groups/{id}
- members added / removed           → membership Add / Remove
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from syncagent.mapping import desired_group, desired_user, unmapped_groups
from syncagent.model import (
    Deprovision,
    DirectorySnapshot,
    Presence,
    RecordedState,
    UserRecord,
)


class Action(StrEnum):
    PROBE = "probe"
    CREATE_USER = "create_user"  # match first: adopt when found, else create
    UPDATE_USER = "update_user"
    ENABLE_USER = "enable_user"
    DISABLE_USER = "disable_user"
    DELETE_USER = "delete_user"
    RECORD_USER = "record_user"  # state only: remember why an inactive user is inactive
    CREATE_GROUP = "create_group"  # match first: adopt when found, else create
    UPDATE_GROUP = "update_group"
    DELETE_GROUP = "delete_group"
    ADD_MEMBERS = "add_members"
    REMOVE_MEMBERS = "remove_members"


DESTRUCTIVE = frozenset({Action.DISABLE_USER, Action.DELETE_USER, Action.DELETE_GROUP})
"""Actions the deletion guard counts, as Entra's accidental-deletion threshold does."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One step of a plan.

    Users and groups are named by their Entra object id; SCIM ids are resolved when the
    step runs, since an object created earlier in the same run has none yet.
    """

    action: Action
    label: str  # userName or group displayName, for people reading the plan
    entra_id: str | None = None
    scim_id: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    previous: Mapping[str, Any] = field(default_factory=dict)
    members: tuple[str, ...] = ()  # user entra ids, for membership steps
    reason: Deprovision | str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"action": str(self.action), "label": self.label}
        if self.entra_id is not None:
            data["entra_id"] = self.entra_id
        if self.scim_id is not None:
            data["scim_id"] = self.scim_id
        if self.attributes:
            data["attributes"] = dict(self.attributes)
        if self.previous:
            data["previous"] = dict(self.previous)
        if self.members:
            data["members"] = list(self.members)
        if self.reason is not None:
            data["reason"] = str(self.reason)
        return data


@dataclass(frozen=True, slots=True)
class Plan:
    operations: tuple[Operation, ...]
    notes: tuple[str, ...] = ()  # things deliberately not done, and why

    @property
    def changes(self) -> tuple[Operation, ...]:
        """Every step but the probe."""
        return tuple(op for op in self.operations if op.action is not Action.PROBE)

    def destructive(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.operations if op.action in DESTRUCTIVE)

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for op in self.changes:
            result[str(op.action)] = result.get(str(op.action), 0) + 1
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "operations": [op.to_dict() for op in self.operations],
            "notes": list(self.notes),
            "counts": self.counts(),
        }


def departed_user_ids(snapshot: DirectorySnapshot, recorded: RecordedState) -> list[str]:
    """Recorded users no in-scope group lists any more whose whereabouts decide the plan.

    Users the agent already set inactive because they left scope are no longer managed
    (as in Entra), so they are not looked up again.
    """
    return sorted(
        entra_id
        for entra_id, record in recorded.users.items()
        if entra_id not in snapshot.users
        and record.deprovisioned is not Deprovision.OUT_OF_SCOPE
        and (
            record.active
            or record.deprovisioned in (Deprovision.DISABLED, Deprovision.SOFT_DELETED)
        )
    )


def build_plan(
    snapshot: DirectorySnapshot,
    recorded: RecordedState,
    presence: Mapping[str, Presence],
    *,
    members_per_patch: int = 100,
    skip_out_of_scope_deletions: bool = False,
) -> Plan:
    """The plan; `skip_out_of_scope_deletions` is Entra's setting of that name."""
    notes = [
        f"group {name}: provisioned, but its name grants no SourceMagnet role"
        for name in unmapped_groups(g.display_name for g in snapshot.groups.values())
    ]
    user_ops = _user_operations(snapshot, recorded, notes)
    departed_ops = _departed_operations(
        snapshot, recorded, presence, skip_out_of_scope=skip_out_of_scope_deletions
    )
    group_ops = _group_operations(snapshot, recorded)
    member_ops = _membership_operations(
        snapshot, recorded, presence, user_ops + departed_ops, members_per_patch
    )
    probe = Operation(Action.PROBE, label="target")
    return Plan((probe, *user_ops, *departed_ops, *group_ops, *member_ops), tuple(notes))


def _user_operations(
    snapshot: DirectorySnapshot, recorded: RecordedState, notes: list[str]
) -> list[Operation]:
    ops: list[Operation] = []
    desired = {uid: desired_user(user) for uid, user in snapshot.users.items()}
    taken = Counter(want["userName"].lower() for want in desired.values())
    for uid in sorted(desired, key=lambda u: (desired[u]["userName"].lower(), u)):
        want = desired[uid]
        label = want["userName"]
        record = recorded.users.get(uid)
        if record is None:
            if taken[label.lower()] > 1:
                # userName is SourceMagnet's key (and case-insensitive in SCIM): provisioning
                # either would hand one person's account to the other.
                notes.append(
                    f"user {label}: not provisioned, another in-scope Entra user has the same "
                    "userName"
                )
            elif want["active"]:
                ops.append(Operation(Action.CREATE_USER, label, uid, attributes=want))
            else:
                notes.append(f"user {label}: not provisioned, its account is disabled in Entra")
            continue
        reason = None if want["active"] else Deprovision.DISABLED
        if dict(record.attributes) != want:
            ops.append(
                Operation(
                    _update_action(record, want),
                    label,
                    uid,
                    scim_id=record.scim_id,
                    attributes=want,
                    previous=record.attributes,
                    reason=reason,
                )
            )
        elif record.deprovisioned != reason:
            ops.append(_record(record, reason))
    return ops


def _update_action(record: UserRecord, want: Mapping[str, Any]) -> Action:
    if record.active and not want["active"]:
        return Action.DISABLE_USER
    if not record.active and want["active"]:
        return Action.ENABLE_USER
    return Action.UPDATE_USER


def _record(record: UserRecord, reason: Deprovision | None) -> Operation:
    return Operation(
        Action.RECORD_USER,
        record.user_name,
        record.entra_id,
        scim_id=record.scim_id,
        attributes=record.attributes,
        reason=reason,
    )


def _departed_operations(
    snapshot: DirectorySnapshot,
    recorded: RecordedState,
    presence: Mapping[str, Presence],
    *,
    skip_out_of_scope: bool,
) -> list[Operation]:
    ops: list[Operation] = []
    for uid in departed_user_ids(snapshot, recorded):
        record = recorded.users[uid]
        where = presence.get(uid)
        if where is None:
            continue  # not looked up: leave it alone
        if where is Presence.GONE:
            ops.append(
                Operation(
                    Action.DELETE_USER,
                    record.user_name,
                    uid,
                    scim_id=record.scim_id,
                    reason="hard_deleted",
                )
            )
            continue
        reason = (
            Deprovision.SOFT_DELETED
            if where is Presence.SOFT_DELETED
            else (Deprovision.OUT_OF_SCOPE)
        )
        if record.active and skip_out_of_scope and reason is Deprovision.OUT_OF_SCOPE:
            ops.append(_record(record, reason))  # left active, and no longer managed
        elif record.active:
            ops.append(
                Operation(
                    Action.DISABLE_USER,
                    record.user_name,
                    uid,
                    scim_id=record.scim_id,
                    attributes={**record.attributes, "active": False},
                    previous=record.attributes,
                    reason=reason,
                )
            )
        elif record.deprovisioned != reason:
            ops.append(_record(record, reason))
    return ops


def _group_operations(snapshot: DirectorySnapshot, recorded: RecordedState) -> list[Operation]:
    ops: list[Operation] = []
    for group in sorted(snapshot.groups.values(), key=lambda g: (g.display_name, g.id)):
        want = desired_group(group)
        record = recorded.groups.get(group.id)
        if record is None:
            ops.append(
                Operation(Action.CREATE_GROUP, group.display_name, group.id, attributes=want)
            )
        elif record.display_name != group.display_name:
            ops.append(
                Operation(
                    Action.UPDATE_GROUP,
                    group.display_name,
                    group.id,
                    scim_id=record.scim_id,
                    attributes=want,
                    previous={"displayName": record.display_name, "externalId": group.id},
                )
            )
    gone = [g for gid, g in recorded.groups.items() if gid not in snapshot.groups]
    for record in sorted(gone, key=lambda g: (g.display_name, g.entra_id)):
        ops.append(
            Operation(
                Action.DELETE_GROUP,
                record.display_name,
                record.entra_id,
                scim_id=record.scim_id,
                reason="deleted_or_out_of_scope",
            )
        )
    return ops


def _membership_operations(
    snapshot: DirectorySnapshot,
    recorded: RecordedState,
    presence: Mapping[str, Presence],
    user_ops: Iterable[Operation],
    members_per_patch: int,
) -> list[Operation]:
    created = {op.entra_id for op in user_ops if op.action is Action.CREATE_USER}
    deleted = {op.entra_id for op in user_ops if op.action is Action.DELETE_USER}
    provisioned = (set(recorded.users) - deleted) | created
    # Entra keeps a soft-deleted user's memberships until the user is purged.
    kept = {uid for uid, where in presence.items() if where is Presence.SOFT_DELETED}
    current: dict[str, set[str]] = {}
    for group_id, user_id in recorded.memberships:
        current.setdefault(group_id, set()).add(user_id)

    ops: list[Operation] = []
    for group in sorted(snapshot.groups.values(), key=lambda g: (g.display_name, g.id)):
        have = current.get(group.id, set())
        add = sorted((group.member_ids & provisioned) - have)
        remove = sorted(have - group.member_ids - kept)
        for action, ids in ((Action.ADD_MEMBERS, add), (Action.REMOVE_MEMBERS, remove)):
            for start in range(0, len(ids), members_per_patch):
                chunk = tuple(ids[start : start + members_per_patch])
                ops.append(Operation(action, group.display_name, group.id, members=chunk))
    return ops
