"""What users and groups look like on the wire: their properties, and shaping them for $select."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from syncagent.emulator.tenant import EmulatedGroup, EmulatedUser, Member


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Getter = Callable[[Any], Any]

# The group properties Graph returns without $select, in its order.
GROUP_PROPERTIES: dict[str, Callable[[EmulatedGroup], Any]] = {
    "id": lambda g: g.id,
    "deletedDateTime": lambda g: None,
    "classification": lambda g: None,
    "createdDateTime": lambda g: timestamp(g.created_date_time),
    "description": lambda g: g.description,
    "displayName": lambda g: g.display_name,
    "expirationDateTime": lambda g: None,
    "groupTypes": lambda g: list(g.group_types),
    "isAssignableToRole": lambda g: None,
    "mail": lambda g: g.mail,
    "mailEnabled": lambda g: g.mail_enabled,
    "mailNickname": lambda g: g.mail_nickname,
    "membershipRule": lambda g: None,
    "membershipRuleProcessingState": lambda g: None,
    "onPremisesLastSyncDateTime": lambda g: None,
    "onPremisesSecurityIdentifier": lambda g: None,
    "onPremisesSyncEnabled": lambda g: None,
    "preferredDataLocation": lambda g: None,
    "preferredLanguage": lambda g: None,
    "proxyAddresses": lambda g: [f"SMTP:{g.mail}"] if g.mail else [],
    "renewedDateTime": lambda g: timestamp(g.created_date_time),
    "resourceBehaviorOptions": lambda g: [],
    "resourceProvisioningOptions": lambda g: [],
    "securityEnabled": lambda g: g.security_enabled,
    "theme": lambda g: None,
    "visibility": lambda g: "Private" if "Unified" in g.group_types else None,
    "onPremisesProvisioningErrors": lambda g: [],
}
GROUP_DEFAULT = tuple(GROUP_PROPERTIES)

USER_PROPERTIES: dict[str, Callable[[EmulatedUser], Any]] = {
    "businessPhones": lambda u: [],
    "displayName": lambda u: u.display_name,
    "givenName": lambda u: u.given_name,
    "jobTitle": lambda u: u.job_title,
    "mail": lambda u: u.mail,
    "mobilePhone": lambda u: None,
    "officeLocation": lambda u: None,
    "preferredLanguage": lambda u: None,
    "surname": lambda u: u.surname,
    "userPrincipalName": lambda u: u.user_principal_name,
    "id": lambda u: u.id,
    "accountEnabled": lambda u: u.account_enabled,
    "createdDateTime": lambda u: timestamp(u.created_date_time),
    "deletedDateTime": lambda u: timestamp(u.deleted_date_time),
    "userType": lambda u: "Member",
    "department": lambda u: None,
    "companyName": lambda u: None,
    "employeeId": lambda u: None,
    "mailNickname": lambda u: u.user_principal_name.split("@", 1)[0],
}
# Graph's default user set stops at `id`; the rest appear only when selected.
USER_DEFAULT = tuple(list(USER_PROPERTIES)[: list(USER_PROPERTIES).index("id") + 1])

TYPE_NAMES = {"user": "microsoft.graph.user", "group": "microsoft.graph.group"}


def shape(
    obj: Any,
    properties: Mapping[str, Getter],
    select: tuple[str, ...] | None,
    default: Sequence[str],
) -> dict[str, Any]:
    """Render one object: `id` first, then the selected (or default) properties it has."""
    names = default if select is None else select
    item: dict[str, Any] = {"id": properties["id"](obj)}
    for name in names:
        if name in properties and name != "id":
            item[name] = properties[name](obj)
    return item


def shape_member(member: Member, select: tuple[str, ...] | None, typed: bool) -> dict[str, Any]:
    if isinstance(member.object, EmulatedUser):
        item = shape(member.object, USER_PROPERTIES, select, USER_DEFAULT)
    else:
        item = shape(member.object, GROUP_PROPERTIES, select, GROUP_DEFAULT)
    if typed:
        return {"@odata.type": f"#{TYPE_NAMES[member.type]}", **item}
    return item


def getter(properties: Mapping[str, Getter], obj: Any) -> Callable[[str], Any]:
    return lambda name: properties[name](obj)


def member_getter(member: Member) -> Callable[[str], Any]:
    properties: Mapping[str, Getter] = (
        USER_PROPERTIES if member.type == "user" else GROUP_PROPERTIES
    )
    return lambda name: properties[name](member.object) if name in properties else None
