"""Desired SCIM state: SourceMagnet's attribute mapping and its role groups, as pure functions.

SourceMagnet's setup keeps exactly five user mappings and deletes every other one, so the
agent owns these five attributes and nothing else. Entra never provisions a null value, so a
property Graph returns as null (or empty) is left out, never sent as null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from syncagent.model import DirectoryGroup, DirectorySnapshot, DirectoryUser

ROLE_GROUPS: Mapping[str, str] = {
    "SourceMagnetAdmin": "Admin",
    "SourceMagnetContractCreator": "Contract creator",
    "SourceMagnetContractViewer": "Contract viewer",
    "SourceMagnetSourcingCreator": "Sourcing creator",
    "SourceMagnetSourcingViewer": "Sourcing viewer",
    "SourceMagnetProjectCreator": "Project creator",
    "SourceMagnetProjectViewer": "Project viewer",
}
"""SourceMagnet derives a role from each group name, which must be spelled exactly so."""

_GUEST_MARKER = "#EXT#"


def user_name(user_principal_name: str) -> str:
    """The SCIM userName Entra sends for a UPN.

    For B2B guests Entra strips `#EXT#` and the host tenant's domain, and turns the last `_`
    of the local part back into `@` (`alice_contoso.com#EXT#@fabrikam.onmicrosoft.com` →
    `alice@contoso.com`).
    """
    if _GUEST_MARKER not in user_principal_name:
        return user_principal_name
    local = user_principal_name.split(_GUEST_MARKER, 1)[0]
    head, sep, domain = local.rpartition("_")
    return f"{head}@{domain}" if sep and head and domain else local


def _present(value: str | None) -> str | None:
    return value if value else None


def desired_user(user: DirectoryUser) -> dict[str, Any]:
    """Flat SCIM attributes for one in-scope user (keys from `model.USER_ATTRIBUTES`)."""
    attributes: dict[str, Any] = {
        "userName": user_name(user.user_principal_name),
        "active": user.account_enabled,
    }
    for path, value in (
        ("title", user.job_title),
        ("name.givenName", user.given_name),
        ("name.familyName", user.surname),
    ):
        if (present := _present(value)) is not None:
            attributes[path] = present
    return attributes


def desired_group(group: DirectoryGroup) -> dict[str, str]:
    """Group mapping: displayName = displayName, externalId = objectId."""
    return {"displayName": group.display_name, "externalId": group.id}


def role_of(group_name: str) -> str | None:
    return ROLE_GROUPS.get(group_name)


def roles(group_names: Iterable[str]) -> list[str]:
    """The SourceMagnet roles a set of group names grants, in the canonical order."""
    names = set(group_names)
    return [role for group, role in ROLE_GROUPS.items() if group in names]


def groups_by_user(snapshot: DirectorySnapshot) -> dict[str, list[str]]:
    """User id → display names of the in-scope groups the user is a direct member of."""
    result: dict[str, list[str]] = {user_id: [] for user_id in snapshot.users}
    for group in sorted(snapshot.groups.values(), key=lambda g: g.display_name):
        for member_id in group.member_ids:
            if member_id in result:
                result[member_id].append(group.display_name)
    return result


def unmapped_groups(group_names: Iterable[str]) -> list[str]:
    """In-scope groups whose name grants no SourceMagnet role (a likely typo in Entra)."""
    return sorted(name for name in group_names if name not in ROLE_GROUPS)
