"""Pure parts of the SCIM client: filters, change paths, the three PATCH body styles, settings
that keep attributes out of bodies, pre-send validation, list envelopes."""

from __future__ import annotations

import pytest

from shared.goto.errors import BadRequest, Op
from shared.goto.scim import (
    ENTERPRISE_URN,
    GETGO_URN,
    PATCHOP_URN,
    matches_eq,
    merge_body,
    parse_path,
    patchop_body,
    put_body,
    read_envelope,
    scim_filter,
    strip_unsent,
    validate_group_name,
    validate_user,
)

DEPT = f"{ENTERPRISE_URN}:department"
WORK_EMAIL = 'emails[type eq "work"].value'

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


# --- filters


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice@contoso.com", 'userName eq "alice@contoso.com"'),
        ('al"ice', 'userName eq "al\\"ice"'),
        ("back\\slash", 'userName eq "back\\\\slash"'),
        ('both\\"', 'userName eq "both\\\\\\""'),
    ],
)
def test_filter_escapes_quote_and_backslash(value, expected):
    assert scim_filter("userName", value) == expected


@pytest.mark.parametrize("attribute", ['userName eq "x" or userName', "userName)", "", "1abc"])
def test_filter_refuses_anything_but_an_attribute_path(attribute):
    with pytest.raises(ValueError, match="attribute path"):
        scim_filter(attribute, "x")


def test_filter_accepts_dotted_and_extension_attributes():
    assert scim_filter("name.familyName", "Smith") == 'name.familyName eq "Smith"'
    assert scim_filter(DEPT, "Sales") == f'{DEPT} eq "Sales"'


# --- paths


def test_parse_path_forms():
    assert parse_path("active").attr == "active"
    name = parse_path("name.givenName")
    assert (name.attr, name.sub, name.urn) == ("name", "givenName", None)
    email = parse_path(WORK_EMAIL)
    assert (email.attr, email.filter_attr, email.filter_value, email.sub) == ("emails", "type", "work", "value")
    dept = parse_path(DEPT)
    assert (dept.urn, dept.attr, dept.top) == (ENTERPRISE_URN, "department", ENTERPRISE_URN)
    mgr = parse_path(f"{ENTERPRISE_URN}:manager.value")
    assert (mgr.urn, mgr.attr, mgr.sub) == (ENTERPRISE_URN, "manager", "value")
    assert parse_path("urn:ietf:params:scim:schemas:core:2.0:User:userName").urn is None
    with pytest.raises(ValueError, match="unsupported SCIM attribute path"):
        parse_path('emails[type ne "work"].value')


# --- PATCH bodies

CHANGES = {
    "name.givenName": "Alicia",
    WORK_EMAIL: "alicia@contoso.com",
    "active": False,
    DEPT: "Marketing",
}


def test_merge_body_is_nested_json_of_only_the_changes():
    body = merge_body(CHANGES, FULL)
    assert body == {
        "name": {"givenName": "Alicia"},
        "emails": [
            {"type": "work", "value": "alicia@contoso.com", "primary": True},
            {"type": "home", "value": "a@home.example"},
        ],
        "active": False,
        ENTERPRISE_URN: {"department": "Marketing"},
    }
    assert FULL["emails"][0]["value"] == "alice@contoso.com"  # the caller's resource is untouched


def test_merge_body_adds_a_missing_work_email_as_primary():
    body = merge_body({WORK_EMAIL: "bob@contoso.com"}, {"userName": "bob@contoso.com"})
    assert body == {"emails": [{"type": "work", "value": "bob@contoso.com", "primary": True}]}


def test_merge_body_sends_null_to_clear():
    assert merge_body({"title": None}, FULL) == {"title": None}


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


# --- settings that keep attributes out (U3, U4)


def test_send_active_off_drops_active_from_resources_and_changes():
    assert "active" not in strip_unsent(FULL, send_active=False, send_extensions=True)
    assert strip_unsent(CHANGES, send_active=False, send_extensions=True).keys() == {
        "name.givenName",
        WORK_EMAIL,
        DEPT,
    }


def test_send_extensions_off_drops_external_id_emails_and_enterprise():
    resource = {**FULL, "schemas": ["urn:scim:schemas:core:1.0", ENTERPRISE_URN]}
    body = strip_unsent(resource, send_active=True, send_extensions=False)
    assert not {"externalId", "emails", ENTERPRISE_URN} & body.keys()
    assert body["schemas"] == ["urn:scim:schemas:core:1.0"]
    assert strip_unsent(CHANGES, send_active=True, send_extensions=False).keys() == {"name.givenName", "active"}


# --- pre-send validation (§4.3)

OP = Op("create user", "x")


@pytest.mark.parametrize(
    ("resource", "code", "text"),
    [
        ({}, "MandatoryFieldsMissing", "userName is missing or empty"),
        ({"userName": "  "}, "MandatoryFieldsMissing", "userName is missing or empty"),
        (
            {"userName": "a" * 120 + "@contoso.com"},
            "SchemaPropertyCanOnlyAcceptValue",
            "userName is 132 characters; GoTo accepts at most 128",
        ),
        (
            {"userName": "a@contoso.com", "name": {"givenName": "g" * 61}},
            "SchemaPropertyCanOnlyAcceptValue",
            "name.givenName is 61 characters; GoTo accepts at most 60",
        ),
        (
            {"userName": "a@contoso.com", "name": {"familyName": "f" * 61}},
            "SchemaPropertyCanOnlyAcceptValue",
            "name.familyName is 61",
        ),
        (
            {"userName": "a@fabrikam.com"},
            "InvalidDomain",
            "the domain of userName 'a@fabrikam.com' is not a verified domain",
        ),
        ({"userName": "no-at-sign"}, "InvalidDomain", "'no-at-sign' is not a verified domain"),
    ],
)
def test_validation_refuses_before_sending(resource, code, text):
    with pytest.raises(BadRequest) as info:
        validate_user(resource, OP, verified_domains=["contoso.com"])
    assert info.value.code == code
    assert info.value.status is None
    assert text in str(info.value)
    assert str(info.value).startswith("create user 'x' not sent:")


def test_validation_accepts_limits_and_any_domain_without_a_list():
    validate_user({"userName": "a" * 116 + "@contoso.com", "name": {"givenName": "g" * 60}}, OP)
    validate_user({"userName": "a@Contoso.COM"}, OP, verified_domains=["contoso.com"])
    validate_user({"name": {"givenName": "x"}}, OP, partial=True)


def test_group_name_validation():
    validate_group_name("g" * 128, OP)
    with pytest.raises(BadRequest, match="129 characters; GoTo accepts at most 128") as info:
        validate_group_name("g" * 129, OP)
    assert info.value.code == "SchemaPropertyCanOnlyAcceptValue"
    with pytest.raises(BadRequest) as info:
        validate_group_name("", OP)
    assert info.value.code == "MandatoryFieldsMissing"


# --- envelopes and filter results


@pytest.mark.parametrize("key", ["resources", "Resources"])
def test_envelope_accepts_both_cases(key):
    resources, total = read_envelope({key: [{"id": "1"}], "totalResults": 1}, Op("list"))
    assert resources == [{"id": "1"}]
    assert total == 1


def test_envelope_without_total_or_paging_fields():
    assert read_envelope({"resources": [{"id": "1"}]}, Op("list")) == ([{"id": "1"}], None)
    assert read_envelope([{"id": "1"}], Op("list")) == ([{"id": "1"}], None)
    assert read_envelope(None, Op("list")) == ([], 0)


def test_eq_check_drops_results_a_server_did_not_filter():
    assert matches_eq({"userName": "Alice@Contoso.com"}, "userName", "alice@contoso.com")
    assert not matches_eq({"userName": "bob@contoso.com"}, "userName", "alice@contoso.com")
    assert matches_eq({"id": "1"}, "externalId", "e-1")  # not returned: cannot be checked
