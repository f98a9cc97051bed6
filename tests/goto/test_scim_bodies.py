"""Pure parts of the SCIM client: GoTo's merge-style PATCH body, settings that keep attributes
out of bodies, pre-send validation raised as BadRequest, list envelopes. Paths, filters and the
generic bodies are tested in tests/scim/."""

from __future__ import annotations

import pytest

from shared.goto.errors import BadRequest, Op
from shared.goto.scim import (
    merge_body,
    read_envelope,
    strip_unsent,
    validate_group_name,
    validate_user,
)
from shared.scim.schemas import ENTERPRISE_URN, GETGO_URN

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


# --- settings that keep attributes out (docs/reference/goto-api.md#u3,
# docs/reference/goto-api.md#u4)


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


# --- pre-send validation (docs/reference/goto-api.md#user-schema-and-limits)

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
