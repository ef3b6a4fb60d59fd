"""The SCIM request bodies Entra's provisioning service sends, built from flat attributes.

SourceMagnet must not be able to tell our requests from Entra's, so the bodies follow what
Entra emits rather than what RFC 7644 prescribes. Entra has two dialects, chosen by the
`aadOptscim062020` flag on the tenant URL:

- DEFAULT (no flag, what a new non-gallery app gets): capitalised ops (`"Replace"`),
  `active` as the string `"True"`/`"False"` (the output of Entra's mapping expression),
  one operation with a path per changed attribute, and members removed by a `value` list.
- COMPLIANT (flag set): lower-case ops, `active` as a JSON boolean, replaced attributes
  collapsed into one path-less operation keyed by dotted paths, and members removed one
  PATCH each through a `members[value eq "…"]` path filter.

scim2-models is the resource model: every body is built as a `User`, `Group` or `PatchOp`
model, so attribute paths and value types are checked, and dumped with the request
context. The dump is then rewritten into Entra's dialect, because the models cannot say
what Entra says: they always write `op` in lower case, carry `active` as a boolean, drop
empty `members` lists, never send `meta` (read-only) and list only the schemas whose
attributes are present, where Entra lists the enterprise extension on every user.

Everything here is pure: values in, dicts out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

from scim2_models import Context, EnterpriseUser, Group, Name, PatchOp, User

from syncagent.model import USER_ATTRIBUTES, FlatAttributes

__all__ = [
    "ENTERPRISE_USER_SCHEMA",
    "GROUP_ATTRIBUTES",
    "GROUP_SCHEMA",
    "PATCH_OP_SCHEMA",
    "USER_SCHEMA",
    "AttributeChange",
    "Dialect",
    "diff_attributes",
    "flatten_user",
    "group_create_body",
    "group_filter",
    "group_patch_body",
    "members_add_body",
    "members_remove_bodies",
    "user_create_body",
    "user_filter",
    "user_patch_body",
]

USER_SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# Group attributes the agent owns (members are patched on their own).
GROUP_ATTRIBUTES: tuple[str, ...] = ("displayName", "externalId")

# Parameterised once: building these generic classes is the expensive part.
_ScimUser: Any = User[EnterpriseUser]
_UserPatch: Any = PatchOp[_ScimUser]
_GroupPatch: Any = PatchOp[Group]

_ENTRA_OPS: Final = {"add": "Add", "replace": "Replace", "remove": "Remove"}
_BOOLEAN_STRINGS: Final = {"true": True, "false": False}


class Dialect(StrEnum):
    """Which of Entra's two PATCH dialects the target is spoken to in."""

    DEFAULT = "default"  # no aadOptscim062020 flag
    COMPLIANT = "compliant"  # aadOptscim062020 on the tenant URL


@dataclass(frozen=True, slots=True)
class AttributeChange:
    """One attribute to write: `add` when the target holds no value yet, else `replace`."""

    path: str
    value: Any
    op: Literal["add", "replace"]


def diff_attributes(
    desired: FlatAttributes,
    live: FlatAttributes,
    *,
    paths: Sequence[str] = USER_ATTRIBUTES,
) -> list[AttributeChange]:
    """The changes that bring `live` to `desired`, in the order of `paths`.

    Entra never clears a value: a desired None (or a missing key) produces no change.
    """
    changes = []
    for path in paths:
        wanted = desired.get(path)
        if wanted is None:
            continue
        current = live.get(path)
        if _same(current, wanted):
            continue
        op: Literal["add", "replace"] = "add" if _absent(current) else "replace"
        changes.append(AttributeChange(path=path, value=wanted, op=op))
    return changes


def flatten_user(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The agent's attributes of a SCIM User as a server returned it.

    Attribute names are matched case-insensitively (RFC 7643 §2.1), and `active` given as
    a string is read as the boolean it spells, since some servers echo Entra's strings.
    """
    top = _lowercase_keys(resource)
    flat: dict[str, Any] = {}
    for path in USER_ATTRIBUTES:
        head, _, sub = path.partition(".")
        value = top.get(head.lower())
        if sub:
            value = _lowercase_keys(value).get(sub.lower()) if isinstance(value, Mapping) else None
        if path == "active" and isinstance(value, str):
            value = _BOOLEAN_STRINGS.get(value.lower(), value)
        if value is not None:
            flat[path] = value
    return flat


def user_create_body(attributes: FlatAttributes) -> dict[str, Any]:
    """The body of `POST /Users`: only the attributes that have a value, nulls never sent."""
    values = _present(attributes, USER_ATTRIBUTES)
    if "userName" not in values:
        raise ValueError("a user cannot be created without a userName")
    name = None
    if "name.givenName" in values or "name.familyName" in values:
        name = Name(
            given_name=values.get("name.givenName"), family_name=values.get("name.familyName")
        )
    user = _ScimUser(
        user_name=values["userName"],
        active=_as_bool(values["active"]) if "active" in values else None,
        title=values.get("title"),
        name=name,
    )
    dumped = user.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    body: dict[str, Any] = {"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]}
    body.update(
        (key, dumped[key]) for key in ("userName", "active", "title", "name") if key in dumped
    )
    body["meta"] = {"resourceType": "User"}
    return body


def user_patch_body(changes: Sequence[AttributeChange], dialect: Dialect) -> dict[str, Any]:
    """The body of `PATCH /Users/{id}` that applies `changes`."""
    _check_changes(changes, USER_ATTRIBUTES)
    values = [
        AttributeChange(c.path, _as_bool(c.value), c.op) if c.path == "active" else c
        for c in changes
    ]
    if dialect is Dialect.DEFAULT:
        return _entra_default(_dump(_UserPatch, _one_op_per_change(values)))
    return _dump(_UserPatch, _collapsed(values, own_op=("active",)))


def group_create_body(display_name: str, external_id: str) -> dict[str, Any]:
    """The body of `POST /Groups`: created empty, members follow by PATCH (as Entra does)."""
    if not display_name or not external_id:
        raise ValueError("a group is created with a displayName and an externalId")
    group = Group(display_name=display_name, external_id=external_id)
    dumped = group.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    return {
        "schemas": [GROUP_SCHEMA],
        "externalId": dumped["externalId"],
        "displayName": dumped["displayName"],
        "members": [],
        "meta": {"resourceType": "Group"},
    }


def group_patch_body(changes: Sequence[AttributeChange], dialect: Dialect) -> dict[str, Any]:
    """The body of `PATCH /Groups/{id}` that changes `displayName` / `externalId`."""
    _check_changes(changes, GROUP_ATTRIBUTES)
    if dialect is Dialect.DEFAULT:
        return _entra_default(_dump(_GroupPatch, _one_op_per_change(changes)))
    return _dump(_GroupPatch, _collapsed(changes, own_op=()))


def members_add_body(scim_ids: Sequence[str], dialect: Dialect) -> dict[str, Any]:
    """One PATCH adding `scim_ids` as members (the caller chunks long lists)."""
    if not scim_ids:
        raise ValueError("a membership PATCH needs at least one member")
    operation = {"op": "add", "path": "members", "value": [{"value": i} for i in scim_ids]}
    body = _dump(_GroupPatch, [operation])
    return _entra_default(body) if dialect is Dialect.DEFAULT else body


def members_remove_bodies(scim_ids: Sequence[str], dialect: Dialect) -> list[dict[str, Any]]:
    """The PATCH bodies removing `scim_ids`: one by value list, or one per member filter."""
    if not scim_ids:
        return []
    if dialect is Dialect.DEFAULT:
        # Not RFC 7644: a remove carrying the members in `value`. scim2-models checks the
        # path only outside a request context, which is all this construction is.
        operation = {"op": "remove", "path": "members", "value": [{"value": i} for i in scim_ids]}
        return [_entra_default(_dump(_GroupPatch, [operation]))]
    return [
        _dump(_GroupPatch, [{"op": "remove", "path": f"members[value eq {_literal(i)}]"}])
        for i in scim_ids
    ]


def user_filter(user_name: str) -> str:
    """The matching filter Entra queries users with."""
    return f"userName eq {_literal(user_name)}"


def group_filter(display_name: str) -> str:
    """The matching filter Entra queries groups with."""
    return f"displayName eq {_literal(display_name)}"


def _literal(value: str) -> str:
    # A SCIM filter string is a JSON string (RFC 7644 §3.4.2.2).
    return json.dumps(value, ensure_ascii=False)


def _dump(patch_model: Any, operations: list[dict[str, Any]]) -> dict[str, Any]:
    """Build the PatchOp model (which checks every path) and dump it as a request."""
    body: dict[str, Any] = patch_model(operations=operations).model_dump(
        scim_ctx=Context.RESOURCE_PATCH_REQUEST
    )
    return body


def _one_op_per_change(changes: Sequence[AttributeChange]) -> list[dict[str, Any]]:
    return [{"op": c.op, "path": c.path, "value": c.value} for c in changes]


def _collapsed(changes: Sequence[AttributeChange], own_op: Sequence[str]) -> list[dict[str, Any]]:
    """Compliant shape: adds and `own_op` paths keep their op, other replaces share one.

    The shared path-less op sits where its first attribute would have been, so the
    order of operations still follows the order of the changes.
    """
    operations: list[dict[str, Any]] = []
    shared: dict[str, Any] | None = None
    for change in changes:
        if change.op == "add" or change.path in own_op:
            operations.append({"op": change.op, "path": change.path, "value": change.value})
        elif shared is None:
            shared = {change.path: change.value}
            operations.append({"op": "replace", "value": shared})
        else:
            shared[change.path] = change.value
    return operations


def _entra_default(body: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an RFC 7644 PatchOp dump into Entra's default dialect."""
    for operation in body["Operations"]:
        operation["op"] = _ENTRA_OPS[operation["op"]]
        if isinstance(operation.get("value"), bool):
            operation["value"] = "True" if operation["value"] else "False"
    return body


def _check_changes(changes: Sequence[AttributeChange], paths: Sequence[str]) -> None:
    if not changes:
        raise ValueError("a PATCH needs at least one change")
    seen: set[str] = set()
    for change in changes:
        if change.path not in paths:
            raise ValueError(f"{change.path!r} is not an attribute the agent writes")
        if change.value is None:
            raise ValueError(f"{change.path!r}: Entra never sends a null value")
        if change.op not in ("add", "replace"):
            raise ValueError(f"{change.path!r}: unexpected op {change.op!r}")
        if change.path in seen:
            raise ValueError(f"{change.path!r} is changed twice")
        seen.add(change.path)


def _present(attributes: FlatAttributes, paths: Sequence[str]) -> dict[str, Any]:
    unknown = set(attributes) - set(paths)
    if unknown:
        raise ValueError(f"not attributes the agent writes: {sorted(unknown)}")
    return {path: attributes[path] for path in paths if attributes.get(path) is not None}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLEAN_STRINGS:
        return _BOOLEAN_STRINGS[value.lower()]
    raise ValueError(f"active must be a boolean, not {value!r}")


def _absent(value: Any) -> bool:
    return value is None or value == ""


def _same(current: Any, wanted: Any) -> bool:
    # True == 1 in Python; a target holding 1 for a boolean still needs the write.
    return type(current) is type(wanted) and current == wanted


def _lowercase_keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in mapping.items()}
