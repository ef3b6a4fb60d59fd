"""The request bodies, shape by shape, in both of Entra's dialects."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scim2_models import Context, EnterpriseUser, Group, PatchOp, ScimPolicy, User

from syncagent.model import USER_ATTRIBUTES
from syncagent.scim.requests import (
    AttributeChange,
    Dialect,
    diff_attributes,
    flatten_user,
    group_create_body,
    group_filter,
    group_patch_body,
    members_add_body,
    members_remove_bodies,
    user_create_body,
    user_filter,
    user_patch_body,
)

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]

ScimUser: Any = User[EnterpriseUser]
UserPatch: Any = PatchOp[ScimUser]
GroupPatch: Any = PatchOp[Group]
ENTRA_POLICY = ScimPolicy(remove_value_as_filter=ScimPolicy.RemoveValue.apply)


def body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": PATCH, "Operations": list(operations)}


def add(path: str, value: Any) -> AttributeChange:
    return AttributeChange(path, value, "add")


def replace(path: str, value: Any) -> AttributeChange:
    return AttributeChange(path, value, "replace")


# -- POST /Users -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        pytest.param(
            {
                "userName": "alice@example.com",
                "active": True,
                "title": "Buyer",
                "name.givenName": "Alice",
                "name.familyName": "Smith",
            },
            {
                "schemas": [USER, ENTERPRISE],
                "userName": "alice@example.com",
                "active": True,
                "title": "Buyer",
                "name": {"givenName": "Alice", "familyName": "Smith"},
                "meta": {"resourceType": "User"},
            },
            id="every attribute",
        ),
        pytest.param(
            {"userName": "bob@example.com"},
            {
                "schemas": [USER, ENTERPRISE],
                "userName": "bob@example.com",
                "meta": {"resourceType": "User"},
            },
            id="userName only",
        ),
        pytest.param(
            {
                "userName": "carol@example.com",
                "active": False,
                "title": None,
                "name.givenName": None,
                "name.familyName": "Jones",
            },
            {
                "schemas": [USER, ENTERPRISE],
                "userName": "carol@example.com",
                "active": False,
                "name": {"familyName": "Jones"},
                "meta": {"resourceType": "User"},
            },
            id="nulls omitted, name with one part, active false kept",
        ),
        pytest.param(
            {"userName": "dan@example.com", "name.givenName": None, "name.familyName": None},
            {
                "schemas": [USER, ENTERPRISE],
                "userName": "dan@example.com",
                "meta": {"resourceType": "User"},
            },
            id="no name object without a part",
        ),
    ],
)
def test_user_create_body(attributes: dict[str, Any], expected: dict[str, Any]) -> None:
    assert user_create_body(attributes) == expected


def test_user_create_body_key_order_is_stable() -> None:
    created = user_create_body(
        {"userName": "a@example.com", "active": True, "title": "T", "name.givenName": "A"}
    )
    assert list(created) == ["schemas", "userName", "active", "title", "name", "meta"]


def test_user_create_body_active_is_a_json_boolean() -> None:
    assert user_create_body({"userName": "a@example.com", "active": True})["active"] is True


@pytest.mark.parametrize(
    "attributes",
    [
        {"title": "no userName"},
        {"userName": None},
        {"userName": "a@example.com", "emails": "not owned"},
        {"userName": "a@example.com", "active": "maybe"},
        {"userName": "a@example.com", "title": 5},
    ],
)
def test_user_create_body_refuses(attributes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        user_create_body(attributes)


def test_user_create_body_validates_as_a_creation_request() -> None:
    created = user_create_body(
        {"userName": "a@example.com", "active": True, "title": "T", "name.familyName": "F"}
    )
    user = ScimUser.model_validate(created, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    assert (user.user_name, user.active, user.title, user.name.family_name) == (
        "a@example.com",
        True,
        "T",
        "F",
    )


# -- PATCH /Users ------------------------------------------------------------------------

USER_PATCH_CASES = [
    pytest.param(
        [replace("title", "Lead buyer")],
        body({"op": "Replace", "path": "title", "value": "Lead buyer"}),
        body({"op": "replace", "value": {"title": "Lead buyer"}}),
        id="one replace",
    ),
    pytest.param(
        [add("title", "Buyer")],
        body({"op": "Add", "path": "title", "value": "Buyer"}),
        body({"op": "add", "path": "title", "value": "Buyer"}),
        id="one add",
    ),
    pytest.param(
        [replace("active", False)],
        body({"op": "Replace", "path": "active", "value": "False"}),
        body({"op": "replace", "path": "active", "value": False}),
        id="disable",
    ),
    pytest.param(
        [replace("active", True)],
        body({"op": "Replace", "path": "active", "value": "True"}),
        body({"op": "replace", "path": "active", "value": True}),
        id="enable",
    ),
    pytest.param(
        [add("active", True)],
        body({"op": "Add", "path": "active", "value": "True"}),
        body({"op": "add", "path": "active", "value": True}),
        id="active newly set",
    ),
    pytest.param(
        [replace("title", "T"), add("name.givenName", "G")],
        body(
            {"op": "Replace", "path": "title", "value": "T"},
            {"op": "Add", "path": "name.givenName", "value": "G"},
        ),
        body(
            {"op": "replace", "value": {"title": "T"}},
            {"op": "add", "path": "name.givenName", "value": "G"},
        ),
        id="replace and add",
    ),
    pytest.param(
        [
            replace("userName", "new@example.com"),
            replace("active", False),
            add("title", "T"),
            replace("name.givenName", "G"),
            replace("name.familyName", "F"),
        ],
        body(
            {"op": "Replace", "path": "userName", "value": "new@example.com"},
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "title", "value": "T"},
            {"op": "Replace", "path": "name.givenName", "value": "G"},
            {"op": "Replace", "path": "name.familyName", "value": "F"},
        ),
        body(
            {
                "op": "replace",
                "value": {
                    "userName": "new@example.com",
                    "name.givenName": "G",
                    "name.familyName": "F",
                },
            },
            {"op": "replace", "path": "active", "value": False},
            {"op": "add", "path": "title", "value": "T"},
        ),
        id="every attribute",
    ),
]


@pytest.mark.parametrize(("changes", "default", "compliant"), USER_PATCH_CASES)
def test_user_patch_body(
    changes: list[AttributeChange], default: dict[str, Any], compliant: dict[str, Any]
) -> None:
    assert user_patch_body(changes, Dialect.DEFAULT) == default
    assert user_patch_body(changes, Dialect.COMPLIANT) == compliant


@pytest.mark.parametrize(("changes", "default", "compliant"), USER_PATCH_CASES)
def test_user_patch_bodies_validate_as_patch_requests(
    changes: list[AttributeChange], default: dict[str, Any], compliant: dict[str, Any]
) -> None:
    for sent in (default, compliant):
        UserPatch.model_validate(sent, scim_ctx=Context.RESOURCE_PATCH_REQUEST)


def test_user_patch_body_default_active_is_the_mapping_string() -> None:
    patched = user_patch_body([replace("active", False)], Dialect.DEFAULT)
    assert patched["Operations"][0]["value"] == "False"
    assert isinstance(patched["Operations"][0]["value"], str)


@pytest.mark.parametrize(
    "changes",
    [
        [],
        [replace("emails", "x@example.com")],
        [replace("title", None)],
        [replace("title", "a"), add("title", "b")],
        [replace("active", "perhaps")],
        [AttributeChange("title", "x", "remove")],  # type: ignore[arg-type]
    ],
)
@pytest.mark.parametrize("dialect", list(Dialect))
def test_user_patch_body_refuses(changes: list[AttributeChange], dialect: Dialect) -> None:
    with pytest.raises(ValueError):
        user_patch_body(changes, dialect)


# -- Groups ------------------------------------------------------------------------------


def test_group_create_body() -> None:
    assert group_create_body("SourceMagnetAdmin", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef") == {
        "schemas": [GROUP],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "displayName": "SourceMagnetAdmin",
        "members": [],
        "meta": {"resourceType": "Group"},
    }
    created = Group.model_validate(
        group_create_body("G", "e"), scim_ctx=Context.RESOURCE_CREATION_REQUEST
    )
    assert (created.display_name, created.external_id, created.members) == ("G", "e", [])


@pytest.mark.parametrize(
    ("changes", "default", "compliant"),
    [
        pytest.param(
            [replace("displayName", "SourceMagnetViewer")],
            body({"op": "Replace", "path": "displayName", "value": "SourceMagnetViewer"}),
            body({"op": "replace", "value": {"displayName": "SourceMagnetViewer"}}),
            id="rename",
        ),
        pytest.param(
            [replace("displayName", "N"), add("externalId", "oid")],
            body(
                {"op": "Replace", "path": "displayName", "value": "N"},
                {"op": "Add", "path": "externalId", "value": "oid"},
            ),
            body(
                {"op": "replace", "value": {"displayName": "N"}},
                {"op": "add", "path": "externalId", "value": "oid"},
            ),
            id="rename and externalId",
        ),
        pytest.param(
            [replace("displayName", "N"), replace("externalId", "oid")],
            body(
                {"op": "Replace", "path": "displayName", "value": "N"},
                {"op": "Replace", "path": "externalId", "value": "oid"},
            ),
            body({"op": "replace", "value": {"displayName": "N", "externalId": "oid"}}),
            id="two replaces collapse",
        ),
    ],
)
def test_group_patch_body(
    changes: list[AttributeChange], default: dict[str, Any], compliant: dict[str, Any]
) -> None:
    assert group_patch_body(changes, Dialect.DEFAULT) == default
    assert group_patch_body(changes, Dialect.COMPLIANT) == compliant
    for sent in (default, compliant):
        GroupPatch.model_validate(sent, scim_ctx=Context.RESOURCE_PATCH_REQUEST)


@pytest.mark.parametrize(("display_name", "external_id"), [("", "oid"), ("G", "")])
def test_group_create_body_refuses_empty_values(display_name: str, external_id: str) -> None:
    with pytest.raises(ValueError, match="displayName and an externalId"):
        group_create_body(display_name, external_id)


def test_group_patch_body_refuses_user_attributes() -> None:
    with pytest.raises(ValueError, match="title"):
        group_patch_body([replace("title", "x")], Dialect.DEFAULT)


def test_members_add_body() -> None:
    members = [{"value": "id1"}, {"value": "id2"}]
    assert members_add_body(["id1", "id2"], Dialect.DEFAULT) == body(
        {"op": "Add", "path": "members", "value": members}
    )
    assert members_add_body(["id1", "id2"], Dialect.COMPLIANT) == body(
        {"op": "add", "path": "members", "value": members}
    )
    with pytest.raises(ValueError, match="at least one member"):
        members_add_body([], Dialect.DEFAULT)


def test_members_remove_bodies() -> None:
    assert members_remove_bodies(["id1", "id2"], Dialect.DEFAULT) == [
        body({"op": "Remove", "path": "members", "value": [{"value": "id1"}, {"value": "id2"}]})
    ]
    assert members_remove_bodies(["id1", 'i"d\\2'], Dialect.COMPLIANT) == [
        body({"op": "remove", "path": 'members[value eq "id1"]'}),
        body({"op": "remove", "path": 'members[value eq "i\\"d\\\\2"]'}),
    ]
    assert members_remove_bodies([], Dialect.DEFAULT) == []
    assert members_remove_bodies([], Dialect.COMPLIANT) == []


def test_member_removal_by_value_needs_the_entra_policy() -> None:
    """Entra's default removal is not RFC 7644: a strict reader refuses it."""
    (default,) = members_remove_bodies(["id1"], Dialect.DEFAULT)
    with pytest.raises(ValidationError, match="remove operation carries no value"):
        GroupPatch.model_validate(default, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    GroupPatch.model_validate(
        default, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=ENTRA_POLICY
    )
    for compliant in members_remove_bodies(["id1", "id2"], Dialect.COMPLIANT):
        GroupPatch.model_validate(compliant, scim_ctx=Context.RESOURCE_PATCH_REQUEST)


def test_member_bodies_apply_to_a_group() -> None:
    group = Group.model_validate(
        {"displayName": "G", "members": [{"value": "keep"}, {"value": "id1"}]}
    )
    for dialect in Dialect:
        patched = group.model_copy(deep=True)
        for sent in [
            members_add_body(["id2", "id3"], dialect),
            *members_remove_bodies(["id1", "id3"], dialect),
        ]:
            GroupPatch.model_validate(
                _rfc(sent), scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=ENTRA_POLICY
            ).patch(patched, scim_policy=ENTRA_POLICY)
        assert sorted(str(m.value) for m in patched.members or []) == ["id2", "keep"], dialect


# -- diff, flatten, filters --------------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        pytest.param({"title": "T"}, {}, [add("title", "T")], id="missing is add"),
        pytest.param({"title": "T"}, {"title": None}, [add("title", "T")], id="null is add"),
        pytest.param({"title": "T"}, {"title": ""}, [add("title", "T")], id="empty is add"),
        pytest.param({"title": "T"}, {"title": "S"}, [replace("title", "T")], id="replace"),
        pytest.param({"title": "T"}, {"title": "T"}, [], id="same"),
        pytest.param({"title": None}, {"title": "S"}, [], id="never cleared"),
        pytest.param({}, {"title": "S"}, [], id="missing desired is no change"),
        pytest.param({"active": False}, {"active": True}, [replace("active", False)], id="off"),
        pytest.param({"active": True}, {}, [add("active", True)], id="active missing"),
        pytest.param({"active": False}, {"active": False}, [], id="false is a value"),
        pytest.param({"active": True}, {"active": 1}, [replace("active", True)], id="1 not True"),
        pytest.param(
            {
                "name.familyName": "F",
                "title": "T",
                "userName": "u@example.com",
                "active": True,
                "name.givenName": "G",
            },
            {"userName": "old@example.com", "active": True, "name.familyName": "X"},
            [
                replace("userName", "u@example.com"),
                add("title", "T"),
                add("name.givenName", "G"),
                replace("name.familyName", "F"),
            ],
            id="order of USER_ATTRIBUTES",
        ),
    ],
)
def test_diff_attributes(
    desired: dict[str, Any], live: dict[str, Any], expected: list[AttributeChange]
) -> None:
    assert diff_attributes(desired, live) == expected


def test_diff_attributes_of_groups() -> None:
    assert diff_attributes(
        {"displayName": "N", "externalId": "e"},
        {"displayName": "O", "externalId": "e"},
        paths=("displayName", "externalId"),
    ) == [replace("displayName", "N")]


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        pytest.param(
            {
                "schemas": [USER],
                "id": "1",
                "userName": "a@example.com",
                "active": True,
                "title": "T",
                "name": {"givenName": "G", "familyName": "F", "formatted": "G F"},
                "emails": [{"value": "a@example.com"}],
                "meta": {"resourceType": "User"},
            },
            {
                "userName": "a@example.com",
                "active": True,
                "title": "T",
                "name.givenName": "G",
                "name.familyName": "F",
            },
            id="full",
        ),
        pytest.param(
            {"userName": "a", "active": "False"}, {"userName": "a", "active": False}, id="False"
        ),
        pytest.param(
            {"userName": "a", "active": "true"}, {"userName": "a", "active": True}, id="true"
        ),
        pytest.param(
            {"userName": "a", "active": "True"}, {"userName": "a", "active": True}, id="True"
        ),
        pytest.param(
            {"userName": "a", "active": "false"}, {"userName": "a", "active": False}, id="false"
        ),
        pytest.param({"userName": "a", "title": None, "name": None}, {"userName": "a"}, id="nulls"),
        pytest.param(
            {"UserName": "a", "NAME": {"GivenName": "G"}},
            {"userName": "a", "name.givenName": "G"},
            id="names are case-insensitive",
        ),
        pytest.param({"userName": "a", "name": "odd"}, {"userName": "a"}, id="name not an object"),
    ],
)
def test_flatten_user(resource: dict[str, Any], expected: dict[str, Any]) -> None:
    assert flatten_user(resource) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice@example.com", 'userName eq "alice@example.com"'),
        ('say "hi"', 'userName eq "say \\"hi\\""'),
        ("back\\slash", 'userName eq "back\\\\slash"'),
        ("Zoë", 'userName eq "Zoë"'),
    ],
)
def test_user_filter(value: str, expected: str) -> None:
    assert user_filter(value) == expected


def test_group_filter() -> None:
    assert group_filter("SourceMagnetAdmin") == 'displayName eq "SourceMagnetAdmin"'
    assert group_filter('A "B"') == 'displayName eq "A \\"B\\""'


def test_dialect_values() -> None:
    assert [d.value for d in Dialect] == ["default", "compliant"]


# -- scim2-models as the oracle ----------------------------------------------------------

_text = st.text(min_size=1, max_size=12)
_flat = st.fixed_dictionaries(
    {},
    optional={
        "active": st.one_of(st.none(), st.booleans()),
        "title": st.one_of(st.none(), _text),
        "name.givenName": st.one_of(st.none(), _text),
        "name.familyName": st.one_of(st.none(), _text),
    },
)
_desired = st.builds(lambda user_name, rest: {"userName": user_name, **rest}, _text, _flat)
_live = st.builds(
    lambda user_name, rest: {"userName": user_name, **rest},
    _text,
    st.fixed_dictionaries(
        {},
        optional={
            "active": st.booleans(),
            "title": st.one_of(_text, st.just("")),
            "name.givenName": _text,
            "name.familyName": _text,
        },
    ),
)


def _rfc(sent: dict[str, Any]) -> dict[str, Any]:
    """Entra's default dialect read the way a tolerant server reads it."""
    rewritten = copy.deepcopy(sent)
    for operation in rewritten["Operations"]:
        operation["op"] = operation["op"].lower()
        if operation.get("path") == "active" and operation["value"] in ("True", "False"):
            operation["value"] = operation["value"] == "True"
    return rewritten


def _live_user(live: dict[str, Any]) -> Any:
    user = ScimUser.model_validate(
        {"schemas": [USER], "id": "1", "userName": live["userName"]},
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
    )
    for path, value in live.items():
        if path != "userName":
            user[path] = value
    return user


def _expected(desired: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    result = {**live, **{k: v for k, v in desired.items() if v is not None}}
    return _valued(result)


def _valued(flat: dict[str, Any]) -> dict[str, Any]:
    """An empty string counts as no value, as diff_attributes reads it."""
    return {k: v for k, v in flat.items() if v != ""}


@settings(max_examples=150, deadline=None)
@given(desired=_desired, live=_live)
def test_patch_applied_by_scim2_models_yields_desired(
    desired: dict[str, Any], live: dict[str, Any]
) -> None:
    changes = diff_attributes(desired, live)
    expected = _expected(desired, live)
    if not changes:
        assert _valued(flatten_user(_live_user(live).model_dump())) == expected
        return
    for dialect, read in ((Dialect.COMPLIANT, dict), (Dialect.DEFAULT, _rfc)):
        user = _live_user(live)
        sent = read(user_patch_body(changes, dialect))
        patch = UserPatch.model_validate(sent, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        patch.patch(user)
        assert _valued(flatten_user(user.model_dump())) == expected, dialect


@settings(max_examples=60, deadline=None)
@given(attributes=_desired)
def test_create_body_round_trips_through_scim2_models(attributes: dict[str, Any]) -> None:
    created = user_create_body(attributes)
    user = ScimUser.model_validate(created, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    expected = {k: v for k, v in attributes.items() if v is not None}
    assert flatten_user(user.model_dump()) == expected
    assert "name" in created or not any(k.startswith("name.") for k in expected)
    assert set(USER_ATTRIBUTES) >= set(expected)
