"""A mutable, in-memory Entra ID tenant that the Graph emulator serves.

Tests change it between sync runs (rename a group, disable a user, soft-delete someone) and
then look at what the agent sent. Object ids are derived from a counter, so the same sequence
of calls always yields the same ids and a sample tenant is reproducible. Every change is also
appended to a journal with a revision number; incremental (delta) reads can be answered from it.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from syncagent.mapping import ROLE_GROUPS

MemberType = Literal["user", "group"]

# Fixed namespace: ids depend only on the order objects are created in.
_ID_NAMESPACE = uuid.UUID("4c2b6f0e-8d55-4f4e-9a57-2f0a52d3c1a7")
# Creation times are synthetic too, so the whole sample tenant is reproducible.
_EPOCH = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)

_USER_CHANGE_KEYS = frozenset(
    {
        "user_principal_name",
        "given_name",
        "surname",
        "job_title",
        "account_enabled",
        "display_name",
        "mail",
    }
)


@dataclass(frozen=True, slots=True)
class EmulatedUser:
    """A user object as the directory holds it (a snapshot: changes make a new one)."""

    id: str
    user_principal_name: str
    display_name: str
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    account_enabled: bool = True
    mail: str | None = None
    created_date_time: datetime = _EPOCH
    deleted_date_time: datetime | None = None  # set while the user is in deleted items

    @property
    def soft_deleted(self) -> bool:
        return self.deleted_date_time is not None


@dataclass(frozen=True, slots=True)
class EmulatedGroup:
    """A group object; its members are kept by the tenant, not here."""

    id: str
    display_name: str
    security_enabled: bool = True
    mail_enabled: bool = False
    description: str | None = None
    group_types: tuple[str, ...] = ()
    mail: str | None = None
    created_date_time: datetime = _EPOCH

    @property
    def mail_nickname(self) -> str:
        return re.sub(r"[^A-Za-z0-9]", "", self.display_name) or "group"


@dataclass(frozen=True, slots=True)
class Member:
    """A direct member of a group, with its current object (soft-deleted users excluded)."""

    type: MemberType
    object: EmulatedUser | EmulatedGroup

    @property
    def id(self) -> str:
        return self.object.id


class ChangeKind(StrEnum):
    USER_ADDED = "user_added"
    USER_UPDATED = "user_updated"
    USER_SOFT_DELETED = "user_soft_deleted"
    USER_RESTORED = "user_restored"
    USER_HARD_DELETED = "user_hard_deleted"
    GROUP_ADDED = "group_added"
    GROUP_RENAMED = "group_renamed"
    GROUP_DELETED = "group_deleted"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"


@dataclass(frozen=True, slots=True)
class Change:
    """One journal entry. For member changes `object_id` is the group and `member_id` the member."""

    revision: int
    kind: ChangeKind
    object_id: str
    member_id: str | None = None
    member_type: MemberType | None = None


class Tenant:
    """The directory: users, groups, direct memberships and the deleted-items container.

    Every public method takes the one lock, so the emulator's request threads and a test
    thread can use a tenant at the same time. Readers get immutable snapshots.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._users: dict[str, EmulatedUser] = {}  # includes soft-deleted users
        self._live_upns: dict[str, str] = {}  # case-folded UPN -> id, live users only
        self._groups: dict[str, EmulatedGroup] = {}
        # group id -> member id -> type, in the order members were added. A soft-deleted user
        # keeps its entries (that is how restore brings its memberships back); readers skip it.
        self._members: dict[str, dict[str, MemberType]] = {}
        self._sequence = 0
        self._journal: list[Change] = []

    # ----- ids, clock, journal -------------------------------------------------------------

    def _new_id(self, kind: str) -> str:
        while True:
            self._sequence += 1
            candidate = str(uuid.uuid5(_ID_NAMESPACE, f"{kind}:{self._sequence}"))
            if candidate not in self._users and candidate not in self._groups:
                return candidate

    def _created_at(self) -> datetime:
        return _EPOCH + timedelta(minutes=len(self._journal))

    def _record(
        self,
        kind: ChangeKind,
        object_id: str,
        member_id: str | None = None,
        member_type: MemberType | None = None,
    ) -> None:
        revision = len(self._journal) + 1
        self._journal.append(Change(revision, kind, object_id, member_id, member_type))

    @property
    def revision(self) -> int:
        """The revision of the latest change (0 for a new, empty tenant)."""
        with self._lock:
            return len(self._journal)

    def changes_since(self, revision: int) -> list[Change]:
        """Journal entries after `revision`, oldest first."""
        with self._lock:
            return self._journal[max(revision, 0) :]

    # ----- users ---------------------------------------------------------------------------

    def add_user(
        self,
        upn: str,
        *,
        given_name: str | None = None,
        surname: str | None = None,
        job_title: str | None = None,
        account_enabled: bool = True,
        id: str | None = None,
        display_name: str | None = None,
        mail: str | None = None,
    ) -> str:
        """Create a user and return its object id."""
        with self._lock:
            self._check_upn_free(upn)
            object_id = self._claim_id(id, "user")
            if display_name is None:
                parts = [p for p in (given_name, surname) if p]
                display_name = " ".join(parts) if parts else upn.split("@", 1)[0]
            self._store_user(
                EmulatedUser(
                    id=object_id,
                    user_principal_name=upn,
                    display_name=display_name,
                    given_name=given_name,
                    surname=surname,
                    job_title=job_title,
                    account_enabled=account_enabled,
                    mail=mail,
                    created_date_time=self._created_at(),
                )
            )
            self._record(ChangeKind.USER_ADDED, object_id)
            return object_id

    def update_user(self, user_id: str, **changes: Any) -> None:
        """Change user properties; a value of None clears the property."""
        unknown = set(changes) - _USER_CHANGE_KEYS
        if unknown:
            raise ValueError(f"unknown user properties: {', '.join(sorted(unknown))}")
        with self._lock:
            user = self._live_user(user_id)
            if "user_principal_name" in changes:
                upn = changes["user_principal_name"]
                if not upn:
                    raise ValueError("user_principal_name cannot be cleared")
                self._check_upn_free(upn, except_id=user_id)
            if "display_name" in changes and not changes["display_name"]:
                raise ValueError("display_name cannot be cleared")
            if "account_enabled" in changes:
                changes["account_enabled"] = bool(changes["account_enabled"])
            self._store_user(replace(user, **changes))
            self._record(ChangeKind.USER_UPDATED, user_id)

    def soft_delete_user(self, user_id: str) -> None:
        """Move a user to deleted items; it leaves every member list until restored."""
        with self._lock:
            user = self._live_user(user_id)
            self._store_user(replace(user, deleted_date_time=datetime.now(UTC)))
            self._record(ChangeKind.USER_SOFT_DELETED, user_id)

    def restore_user(self, user_id: str) -> None:
        """Bring a user back from deleted items, with the memberships it had."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None or not user.soft_deleted:
                raise KeyError(f"user {user_id} is not in deleted items")
            self._check_upn_free(user.user_principal_name, except_id=user_id)
            self._store_user(replace(user, deleted_date_time=None))
            self._record(ChangeKind.USER_RESTORED, user_id)

    def hard_delete_user(self, user_id: str) -> None:
        """Delete a user permanently, whether it is live or in deleted items."""
        with self._lock:
            user = self._users.pop(user_id, None)
            if user is None:
                raise KeyError(f"no user {user_id}")
            if not user.soft_deleted:
                del self._live_upns[user.user_principal_name.casefold()]
            for members in self._members.values():
                members.pop(user_id, None)
            self._record(ChangeKind.USER_HARD_DELETED, user_id)

    # ----- groups --------------------------------------------------------------------------

    def add_group(
        self,
        display_name: str,
        *,
        id: str | None = None,
        security_enabled: bool = True,
        mail_enabled: bool = False,
        description: str | None = None,
        group_types: Iterable[str] = (),
    ) -> str:
        """Create a group (display names need not be unique, as in Entra) and return its id."""
        if not display_name:
            raise ValueError("a group needs a display name")
        with self._lock:
            object_id = self._claim_id(id, "group")
            group = EmulatedGroup(
                id=object_id,
                display_name=display_name,
                security_enabled=security_enabled,
                mail_enabled=mail_enabled,
                description=description,
                group_types=tuple(group_types),
                created_date_time=self._created_at(),
            )
            if mail_enabled:
                group = replace(group, mail=f"{group.mail_nickname.lower()}@contoso.com")
            self._groups[object_id] = group
            self._members[object_id] = {}
            self._record(ChangeKind.GROUP_ADDED, object_id)
            return object_id

    def rename_group(self, group_id: str, display_name: str) -> None:
        if not display_name:
            raise ValueError("a group needs a display name")
        with self._lock:
            self._groups[group_id] = replace(self._group(group_id), display_name=display_name)
            self._record(ChangeKind.GROUP_RENAMED, group_id)

    def delete_group(self, group_id: str) -> None:
        """Delete a group permanently; it also leaves the groups it was nested in."""
        with self._lock:
            self._group(group_id)
            del self._groups[group_id]
            del self._members[group_id]
            for members in self._members.values():
                members.pop(group_id, None)
            self._record(ChangeKind.GROUP_DELETED, group_id)

    def add_members(self, group_id: str, *member_ids: str) -> None:
        """Add users or groups as direct members; adding an existing member changes nothing."""
        with self._lock:
            self._group(group_id)
            members = self._members[group_id]
            for member_id in member_ids:
                member_type = self._member_type(group_id, member_id)
                if member_id in members:
                    continue
                members[member_id] = member_type
                self._record(ChangeKind.MEMBER_ADDED, group_id, member_id, member_type)

    def remove_members(self, group_id: str, *member_ids: str) -> None:
        with self._lock:
            self._group(group_id)
            members = self._members[group_id]
            for member_id in member_ids:
                member_type = members.pop(member_id, None)
                if member_type is None:
                    raise KeyError(f"{member_id} is not a member of group {group_id}")
                self._record(ChangeKind.MEMBER_REMOVED, group_id, member_id, member_type)

    # ----- read accessors ------------------------------------------------------------------

    def user(self, user_id: str) -> EmulatedUser:
        """The user, live or soft-deleted (check `soft_deleted`)."""
        with self._lock:
            try:
                return self._users[user_id]
            except KeyError:
                raise KeyError(f"no user {user_id}") from None

    def group(self, group_id: str) -> EmulatedGroup:
        with self._lock:
            return self._group(group_id)

    def find_user(self, upn: str) -> EmulatedUser | None:
        """The live user with this UPN (case-insensitive), if any."""
        with self._lock:
            user_id = self._live_upns.get(upn.casefold())
            return None if user_id is None else self._users[user_id]

    def find_group(self, display_name: str) -> EmulatedGroup | None:
        """The first group created with this display name (case-insensitive), if any."""
        with self._lock:
            folded = display_name.casefold()
            for group in self._groups.values():
                if group.display_name.casefold() == folded:
                    return group
            return None

    def users(self, *, include_deleted: bool = False) -> list[EmulatedUser]:
        with self._lock:
            return [u for u in self._users.values() if include_deleted or not u.soft_deleted]

    def deleted_users(self) -> list[EmulatedUser]:
        with self._lock:
            return [u for u in self._users.values() if u.soft_deleted]

    def groups(self) -> list[EmulatedGroup]:
        with self._lock:
            return list(self._groups.values())

    def members(self, group_id: str) -> list[str]:
        """Ids of the group's direct members that are visible now, in the order added."""
        return [m.id for m in self.member_objects(group_id)]

    def member_objects(self, group_id: str) -> list[Member]:
        """The group's visible direct members with their objects, read in one go."""
        with self._lock:
            self._group(group_id)
            visible: list[Member] = []
            for member_id, member_type in self._members[group_id].items():
                if member_type == "group":
                    visible.append(Member("group", self._groups[member_id]))
                elif not self._users[member_id].soft_deleted:
                    visible.append(Member("user", self._users[member_id]))
            return visible

    # ----- helpers (call with the lock held) ------------------------------------------------

    def _claim_id(self, requested: str | None, kind: str) -> str:
        if requested is None:
            return self._new_id(kind)
        object_id = str(uuid.UUID(requested))  # normalise and reject non-GUIDs
        if object_id in self._users or object_id in self._groups:
            raise ValueError(f"object id {object_id} is already in use")
        return object_id

    def _check_upn_free(self, upn: str, *, except_id: str | None = None) -> None:
        if "@" not in upn:
            raise ValueError(f"user principal name {upn!r} has no domain")
        owner = self._live_upns.get(upn.casefold())
        if owner is not None and owner != except_id:
            raise ValueError(f"user principal name {upn!r} is already in use")

    def _store_user(self, user: EmulatedUser) -> None:
        previous = self._users.get(user.id)
        if previous is not None and not previous.soft_deleted:
            del self._live_upns[previous.user_principal_name.casefold()]
        self._users[user.id] = user
        if not user.soft_deleted:
            self._live_upns[user.user_principal_name.casefold()] = user.id

    def _live_user(self, user_id: str) -> EmulatedUser:
        user = self._users.get(user_id)
        if user is None or user.soft_deleted:
            raise KeyError(f"no live user {user_id}")
        return user

    def _group(self, group_id: str) -> EmulatedGroup:
        try:
            return self._groups[group_id]
        except KeyError:
            raise KeyError(f"no group {group_id}") from None

    def _member_type(self, group_id: str, member_id: str) -> MemberType:
        if member_id in self._groups:
            if member_id == group_id:
                raise ValueError(f"group {group_id} cannot be a member of itself")
            return "group"
        self._live_user(member_id)
        return "user"

    # ----- the demo tenant -----------------------------------------------------------------

    @classmethod
    def sample(cls) -> Tenant:
        """The demo tenant: the seven SourceMagnet role groups and a small, mixed staff.

        Several users hold two or three roles; one is disabled, one has no job title, one
        belongs to no group and one only to the out-of-scope Marketing group. A nested group
        sits inside a role group: the agent reads direct user members only, so its members
        get nothing through it.
        """
        tenant = cls()
        role_names = tuple(ROLE_GROUPS)
        roles = {
            name: tenant.add_group(name, description=f"SourceMagnet role {name[12:]}")
            for name in role_names
        }
        marketing = tenant.add_group(
            "Marketing",
            security_enabled=False,
            mail_enabled=True,
            group_types=("Unified",),
            description="Marketing department",
        )
        leads = tenant.add_group("Procurement Leads", description="Nested in a role group")

        people: list[tuple[str, str, str, str | None, bool, tuple[str, ...]]] = [
            ("adele.vance", "Adele", "Vance", "Procurement Director", True,
             ("SourceMagnetAdmin", "SourceMagnetContractCreator", "Marketing")),
            ("alex.wilber", "Alex", "Wilber", "Buyer", True,
             ("SourceMagnetSourcingCreator", "SourceMagnetSourcingViewer",
              "SourceMagnetProjectViewer")),
            ("diego.siciliani", "Diego", "Siciliani", "Contract Analyst", True,
             ("SourceMagnetContractViewer", "Marketing")),
            ("grady.archie", "Grady", "Archie", "Senior Buyer", True,
             ("SourceMagnetSourcingCreator", "SourceMagnetProjectCreator")),
            ("isaiah.langer", "Isaiah", "Langer", "Project Coordinator", False,
             ("SourceMagnetProjectViewer",)),
            ("johanna.lorenz", "Johanna", "Lorenz", None, True,
             ("SourceMagnetContractCreator", "SourceMagnetSourcingViewer")),
            ("lee.gu", "Lee", "Gu", "Project Manager", True,
             ("SourceMagnetProjectCreator", "SourceMagnetContractViewer", "Marketing")),
            ("lidia.holloway", "Lidia", "Holloway", "IT Administrator", True,
             ("SourceMagnetAdmin",)),
            ("megan.bowen", "Megan", "Bowen", "Sourcing Specialist", True,
             ("SourceMagnetSourcingViewer", "SourceMagnetProjectViewer")),
            ("nestor.wilke", "Nestor", "Wilke", "Marketing Manager", True, ("Marketing",)),
            ("patti.fernandez", "Patti", "Fernandez", "President", True, ()),
            ("pradeep.gupta", "Pradeep", "Gupta", "Category Manager", True, ("Procurement Leads",)),
        ]  # fmt: skip
        groups_by_name = {**roles, "Marketing": marketing, "Procurement Leads": leads}
        for alias, given, surname, title, enabled, group_names in people:
            upn = f"{alias}@contoso.com"
            user_id = tenant.add_user(
                upn,
                given_name=given,
                surname=surname,
                job_title=title,
                account_enabled=enabled,
                mail=upn,
            )
            for name in group_names:
                tenant.add_members(groups_by_name[name], user_id)
        tenant.add_members(roles["SourceMagnetSourcingViewer"], leads)
        return tenant
