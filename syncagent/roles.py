"""The role view: which SourceMagnet roles each user has, from state or from Graph."""

from __future__ import annotations

from syncagent.mapping import desired_user, groups_by_user, roles
from syncagent.model import RecordedState
from syncagent.ports import DirectorySource
from syncagent.render import RoleRow


def applied_roles(recorded: RecordedState) -> list[RoleRow]:
    """What SourceMagnet was told: recorded users and the groups the agent put them in."""
    names: dict[str, list[str]] = {uid: [] for uid in recorded.users}
    for group_id, user_id in recorded.memberships:
        group = recorded.groups.get(group_id)
        if group is not None and user_id in names:
            names[user_id].append(group.display_name)
    rows = [
        RoleRow(record.user_name, record.active, roles(names[uid]), sorted(names[uid]))
        for uid, record in recorded.users.items()
    ]
    return sorted(rows, key=lambda r: r.user_name.lower())


def live_roles(source: DirectorySource) -> list[RoleRow]:
    """What Entra grants now, read from Graph, whether or not it was applied yet."""
    snapshot = source.read_snapshot()
    rows = []
    for uid, names in groups_by_user(snapshot).items():
        attributes = desired_user(snapshot.users[uid])
        rows.append(RoleRow(attributes["userName"], attributes["active"], roles(names), names))
    return sorted(rows, key=lambda r: r.user_name.lower())
