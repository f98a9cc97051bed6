"""SCIM resources and the generic request bodies: a resource built from mapped values, changes
applied to a copy, the full-definition PUT, RFC 7644 PatchOp, and the strict PatchOp of the
scim2 profile, checked by hypothesis against scim2-models' own PatchOp evaluator as the oracle.
GoTo's merge-style body is tested with its client (tests/goto/test_scim_bodies.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scim2_models import Context, EnterpriseUser, PatchOp, User

from shared.scim.resource import (
    apply_changes,
    build_resource,
    patchop_body,
    put_body,
    strict_patchop_body,
    with_schemas,
)
from shared.scim.schemas import ENTERPRISE_URN, GETGO_URN, GROUP_URN, PATCHOP_URN, USER_URN

DEPT = f"{ENTERPRISE_URN}:department"
WORK = WORK_EMAIL = 'emails[type eq "work"].value'
OTHER = 'emails[type eq "other"].value'

FULL = {
    "id": "1234567890123456789",
    "userName": "alice@contoso.com",
    "name": {"givenName": "Alice", "familyName": "Smith"},
    "displayName": "Alice Smith",
    "active": True,
    "externalId": "e-1",
    "emails": [
        {"type": "work", "value": "alice@contoso.com", "primary": True},
        {"type": "home", "value": "a@home.example"},
    ],
    ENTERPRISE_URN: {"department": "Sales", "costCenter": "C1"},
    "meta": {"created": "2026-01-01T00:00:00Z"},
    GETGO_URN: {"accounts": [{"value": "42"}]},
}

CHANGES = {
    "name.givenName": "Alicia",
    WORK_EMAIL: "alicia@contoso.com",
    "active": False,
    DEPT: "Marketing",
}


# --- resources


def test_a_built_resource_nests_every_path_and_carries_no_schemas() -> None:
    resource = build_resource(
        {"userName": "a@contoso.com", "name.givenName": "Ann", DEPT: "R&D", WORK: "a@contoso.com"}
    )
    assert resource == {
        "userName": "a@contoso.com",
        "name": {"givenName": "Ann"},
        ENTERPRISE_URN: {"department": "R&D"},
        "emails": [{"type": "work", "value": "a@contoso.com", "primary": True}],
    }


def test_applied_changes_leave_the_read_resource_untouched_and_none_removes() -> None:
    before = copy.deepcopy(FULL)
    after = apply_changes(FULL, {**CHANGES, "title": "Boss", "externalId": None, 'emails[type eq "home"].value': None})
    assert before == FULL
    assert after["name"] == {"givenName": "Alicia", "familyName": "Smith"}
    assert after["title"] == "Boss" and "externalId" not in after
    assert after["emails"] == [{"type": "work", "value": "alicia@contoso.com", "primary": True}]
    assert after[ENTERPRISE_URN] == {"department": "Marketing", "costCenter": "C1"}


def test_changes_land_on_the_attributes_as_the_server_spelled_them() -> None:
    read = {"UserName": "a@contoso.com", "Name": {"GivenName": "Ann"}, ENTERPRISE_URN.upper(): {"Department": "X"}}
    after = apply_changes(read, {"userName": "b@contoso.com", "name.givenName": "Bo", DEPT: "Y"})
    assert after == {
        "UserName": "b@contoso.com",
        "Name": {"GivenName": "Bo"},
        ENTERPRISE_URN.upper(): {"Department": "Y"},
    }


def test_a_removal_creates_no_empty_containers() -> None:
    assert apply_changes({"userName": "a"}, {"name.givenName": None, DEPT: None, WORK: None}) == {"userName": "a"}


def test_put_body_drops_server_owned_parts_in_any_case() -> None:
    body = put_body({}, {"ID": "1", "Meta": {}, "userName": "a", "schemas": [USER_URN, GETGO_URN.upper()]})
    assert body == {"userName": "a", "schemas": [USER_URN]}


def test_put_body_is_the_full_resource_with_changes_minus_server_owned_parts():
    body = put_body({**CHANGES, "externalId": None}, FULL)
    assert "id" not in body
    assert "meta" not in body
    assert GETGO_URN not in body
    assert "externalId" not in body
    assert body["userName"] == "alice@contoso.com"
    assert body["name"] == {"givenName": "Alicia", "familyName": "Smith"}
    assert body["emails"][0]["value"] == "alicia@contoso.com"
    assert body[ENTERPRISE_URN] == {"department": "Marketing", "costCenter": "C1"}
    assert body["active"] is False


# --- PatchOp bodies


def test_patchop_body_is_one_replace_per_change():
    body = patchop_body({**CHANGES, "title": None})
    assert body["schemas"] == [PATCHOP_URN]
    assert body["Operations"] == [
        {"op": "replace", "path": "name.givenName", "value": "Alicia"},
        {"op": "replace", "path": WORK_EMAIL, "value": "alicia@contoso.com"},
        {"op": "replace", "path": "active", "value": False},
        {"op": "replace", "path": DEPT, "value": "Marketing"},
        {"op": "remove", "path": "title"},
    ]


def test_schemas_name_the_core_schema_and_each_extension_the_body_carries() -> None:
    body = {"schemas": ["urn:scim:schemas:core:1.0"], "userName": "a@contoso.com", ENTERPRISE_URN: {"department": "x"}}
    assert with_schemas(body, USER_URN) == {
        "schemas": [USER_URN, ENTERPRISE_URN],
        "userName": "a@contoso.com",
        ENTERPRISE_URN: {"department": "x"},
    }
    assert with_schemas({"displayName": "Sales"}, GROUP_URN)["schemas"] == [GROUP_URN]


def test_strict_patchop_replaces_whole_multi_valued_lists_and_removes_cleared_values() -> None:
    full = {"userName": "a@contoso.com", "emails": [{"type": "other", "value": "a@home.example"}], "title": "Clerk"}
    body = strict_patchop_body({"name.givenName": "Ann", "title": None, WORK: "a@contoso.com", DEPT: "R&D"}, full)
    assert body["schemas"] == [PATCHOP_URN]
    assert body["Operations"] == [
        {"op": "replace", "path": "name.givenName", "value": "Ann"},
        {"op": "remove", "path": "title"},
        {"op": "replace", "path": DEPT, "value": "R&D"},
        {
            "op": "replace",
            "path": "emails",
            "value": [
                {"type": "other", "value": "a@home.example"},
                {"type": "work", "value": "a@contoso.com", "primary": True},  # the first primary
            ],
        },
    ]
    only_work = {"emails": [{"type": "work", "value": "a@contoso.com", "primary": True}]}
    assert strict_patchop_body({WORK: None}, only_work)["Operations"] == [{"op": "remove", "path": "emails"}]


# --- the strict PatchOp against an independent evaluator (scim2-models)

StrictUser = User[EnterpriseUser]
WORD = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
PATHS = {
    "name.givenName": WORD,
    "displayName": WORD,
    "title": WORD,
    WORK: WORD.map(lambda w: f"{w}@contoso.com"),
    OTHER: WORD.map(lambda w: f"{w}@home.example"),
    DEPT: WORD,
}


@st.composite
def resource_and_changes(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    resource: dict[str, Any] = {"schemas": [USER_URN], "userName": "a@contoso.com"}
    emails = []
    for kind, path in (("work", WORK), ("other", OTHER)):
        if draw(st.booleans()):
            emails.append({"type": kind, "value": draw(PATHS[path])})
    if emails:
        resource["emails"] = emails
    for path in ("title", "displayName"):
        if draw(st.booleans()):
            resource[path] = draw(WORD)
    if draw(st.booleans()):
        resource["name"] = {"givenName": draw(WORD)}
    if draw(st.booleans()):
        resource["schemas"].append(ENTERPRISE_URN)
        resource[ENTERPRISE_URN] = {"department": draw(WORD)}
    paths = draw(st.lists(st.sampled_from(sorted(PATHS)), min_size=1, max_size=len(PATHS), unique=True))
    changes = {p: draw(st.none() | PATHS[p]) for p in paths}
    return resource, changes


def read(resource: dict[str, Any], path: str) -> Any:
    """The value at a change path, read the plain way (the oracle's own reader)."""
    if path in (WORK, OTHER):
        kind = "work" if path == WORK else "other"
        return next((e.get("value") for e in resource.get("emails") or [] if e.get("type") == kind), None)
    if path == DEPT:
        return (resource.get(ENTERPRISE_URN) or {}).get("department")
    if path == "name.givenName":
        return (resource.get("name") or {}).get("givenName")
    return resource.get(path)


def merged_the_engine_way(resource: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The engine passes the target with the changes already applied."""
    return apply_changes(resource, changes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource_and_changes(), st.booleans())
def test_a_strict_patchop_leaves_every_changed_path_at_its_new_value_and_the_rest_alone(
    case: tuple[dict[str, Any], dict[str, Any]], already_merged: bool
) -> None:
    resource, changes = case
    user = StrictUser.model_validate(resource)
    full = merged_the_engine_way(resource, changes) if already_merged else resource
    body = strict_patchop_body(changes, full)
    PatchOp[StrictUser].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST).patch(user)
    after = json.loads(user.model_dump_json(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    for path in PATHS:
        expected = changes[path] if path in changes else read(resource, path)
        assert read(after, path) == expected, (path, body)
