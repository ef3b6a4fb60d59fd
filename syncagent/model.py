"""Values that flow between the steps of a cycle.

Graph (read) -> DirectorySnapshot -> desired SCIM state -> plan -> apply -> RecordedState.
Everything here is immutable and free of I/O, so the pure middle of the program can be
tested with tables of values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Flat SCIM attribute paths the agent owns on a user, in the order Entra's mapping lists them.
USER_ATTRIBUTES: tuple[str, ...] = (
    "userName",
    "active",
    "title",
    "name.givenName",
    "name.familyName",
)

FlatAttributes = Mapping[str, Any]
"""SCIM attributes keyed by path (`name.givenName`); a missing key means "no value"."""


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A user as Graph returns it, reduced to the properties the mapping reads."""

    id: str
    user_principal_name: str
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    account_enabled: bool = True


@dataclass(frozen=True, slots=True)
class DirectoryGroup:
    """An in-scope group and the ids of its direct user members."""

    id: str
    display_name: str
    member_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DirectorySnapshot:
    """What Graph said in one read: the in-scope groups and every user that is a member."""

    groups: Mapping[str, DirectoryGroup]
    users: Mapping[str, DirectoryUser]


class Presence(StrEnum):
    """Where a user that left every in-scope group now is in the tenant."""

    EXISTS = "exists"  # still in the tenant: out of scope
    SOFT_DELETED = "soft_deleted"  # in the recycle bin (deleted items)
    GONE = "gone"  # permanently deleted


class Deprovision(StrEnum):
    """Why the agent set a user it manages to `active` false."""

    OUT_OF_SCOPE = "out_of_scope"
    DISABLED = "disabled"  # accountEnabled false while in scope
    SOFT_DELETED = "soft_deleted"


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user the agent created or adopted, and the attributes it last applied."""

    entra_id: str
    scim_id: str
    attributes: FlatAttributes
    deprovisioned: Deprovision | None = None

    @property
    def user_name(self) -> str:
        return str(self.attributes.get("userName", ""))

    @property
    def active(self) -> bool:
        return bool(self.attributes.get("active", False))


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A group the agent created or adopted."""

    entra_id: str
    scim_id: str
    display_name: str


@dataclass(frozen=True, slots=True)
class RecordedState:
    """What the agent has applied to the target, as the state store remembers it."""

    users: Mapping[str, UserRecord] = field(default_factory=dict)
    groups: Mapping[str, GroupRecord] = field(default_factory=dict)
    memberships: frozenset[tuple[str, str]] = frozenset()  # (group entra id, user entra id)


class OutcomeStatus(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class OperationOutcome:
    """One line of the operation log: what was done to one object, and how it went."""

    object_type: str  # "probe" | "user" | "group" | "membership"
    action: str  # create, adopt, update, enable, disable, delete, rename, add_members, ...
    entra_id: str | None
    scim_id: str | None
    request: str  # summary such as "PATCH /Users/1f3c" (never a header, never a secret)
    status: OutcomeStatus
    error: str | None = None
