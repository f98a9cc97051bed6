"""evaluate_user: Entra's mapping semantics for one user (apply, defaults, nulls, errors)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.mapping import AttributeMapping, ExpressionEvaluationError, MappingConfig, builtin, evaluate_user
from shared.scim.schemas import ENTERPRISE_URN
from tests.mapping.helpers import ctx

GUEST = "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com"


def config(*mappings: AttributeMapping) -> MappingConfig:
    return MappingConfig(users=mappings)


def expression(target: str, text: str, **kw: Any) -> AttributeMapping:
    return AttributeMapping(target=target, kind="expression", expression=text, **kw)


def direct(target: str, source: str, **kw: Any) -> AttributeMapping:
    return AttributeMapping(target=target, kind="direct", source=source, **kw)


USERS = [
    {
        "userPrincipalName": "ann@contoso.com",
        "displayName": "Ann",
        "givenName": "Ann",
        "surname": "Lee",
        "mail": "ann@contoso.com",
        "department": "Sales",
        "employeeId": "42",
    },
    {"userPrincipalName": GUEST, "displayName": "Ann (guest)", "mail": None, "givenName": ""},
    {"userPrincipalName": "bob@contoso.com"},
]
# What the built-in GoTo mapping sends for each of USERS (besides `active`): nulls and "" are
# left out, a guest's #EXT# suffix is stripped, externalId is the object id.
EXPECTED = [
    {
        "userName": "ann@contoso.com",
        "displayName": "Ann",
        "name.givenName": "Ann",
        "name.familyName": "Lee",
        'emails[type eq "work"].value': "ann@contoso.com",
        "externalId": "oid-1",
        f"{ENTERPRISE_URN}:department": "Sales",
        f"{ENTERPRISE_URN}:employeeNumber": "42",
    },
    {"userName": "ann@fabrikam.com", "displayName": "Ann (guest)", "externalId": "oid-1"},
    {"userName": "bob@contoso.com", "externalId": "oid-1"},
]


@pytest.mark.parametrize(("attributes", "expected"), list(zip(USERS, EXPECTED, strict=True)))
@pytest.mark.parametrize("creating", [True, False])
@pytest.mark.parametrize("soft_deleted", [False, True])
def test_the_goto_default_mapping_sends_these_values(
    attributes: dict[str, Any], expected: dict[str, Any], creating: bool, soft_deleted: bool
) -> None:
    got = evaluate_user(
        builtin("goto"), ctx(object_id="oid-1", creating=creating, soft_deleted=soft_deleted, **attributes)
    )
    assert got.errors == []
    assert got.values == {**expected, "active": not soft_deleted}
    assert isinstance(got.values["active"], bool)


def test_guest_user_principal_names_lose_the_ext_suffix_everywhere_but_the_original() -> None:
    result = evaluate_user(
        config(
            direct("userName", "userPrincipalName"),
            expression("displayName", 'Append([userPrincipalName], "!")'),
            direct("nickName", "originalUserPrincipalName"),
        ),
        ctx(userPrincipalName=GUEST),
    )
    assert result.values == {"userName": "ann@fabrikam.com", "displayName": "ann@fabrikam.com!", "nickName": GUEST}


def test_a_failing_mapping_is_reported_and_the_others_still_evaluated() -> None:
    result = evaluate_user(
        config(
            direct("userName", "userPrincipalName"),
            expression("title", "Mid([jobTitle], [start], 3)"),
            expression("nickName", "Frob([x])"),
            direct("displayName", "displayName"),
        ),
        ctx(userPrincipalName="a@contoso.com", jobTitle="Engineer", start=0, displayName="A"),
    )
    assert result.values == {"userName": "a@contoso.com", "displayName": "A"}
    assert [(e.mapping, type(e).__name__) for e in result.errors] == [
        ("title", "ExpressionEvaluationError"),
        ("nickName", "ExpressionSyntaxError"),
    ]
    assert "title" in str(result.errors[0]) and "Mid" in str(result.errors[0])


def test_create_only_mappings_and_defaults_apply_on_create_only() -> None:
    cfg = config(
        expression("password", "RandomString(12,2,2,2,2)", apply="create"),
        direct("title", "jobTitle", default="Staff"),
        AttributeMapping(target="locale", kind="none", default="en-US"),
    )
    created = evaluate_user(cfg, ctx(creating=True))
    assert set(created.values) == {"password", "title", "locale"}
    assert created.values["title"] == "Staff" and created.values["locale"] == "en-US"
    updated = evaluate_user(cfg, ctx(creating=False))
    assert updated.values == {}
    assert updated.dropped == ["title"]


def test_null_values_are_dropped_unless_clear_on_null_is_set() -> None:
    cfg = config(direct("title", "jobTitle"), direct("nickName", "mailNickname", clear_on_null=True))
    updated = evaluate_user(cfg, ctx(jobTitle=None, mailNickname=""))
    assert updated.values == {"nickName": None}  # None = clear it in the target
    assert updated.dropped == ["title"]
    created = evaluate_user(cfg, ctx(creating=True))
    assert created.values == {}
    assert created.dropped == ["title", "nickName"]


def test_ignore_flow_drops_the_attribute_even_with_a_default() -> None:
    cfg = config(expression("title", "IgnoreFlowIfNullOrEmpty([jobTitle])", default="Staff", clear_on_null=True))
    result = evaluate_user(cfg, ctx(creating=True, jobTitle=""))
    assert result.values == {} and result.dropped == ["title"]


def test_redacted_mappings_are_listed_for_the_log() -> None:
    result = evaluate_user(config(expression("password", "Redact(RandomString(8,1,1,1,1))")), ctx())
    assert result.redacted == ["password"]
    assert len(result.values["password"]) == 8


def test_active_is_a_boolean_whatever_the_mapping_returns() -> None:
    for text, expected in (('"True"', True), ('"false"', False), ("Not([IsSoftDeleted])", True), ("1", True)):
        assert evaluate_user(config(expression("active", text)), ctx()).values["active"] is expected
    result = evaluate_user(config(expression("active", '"maybe"')), ctx())
    assert result.values == {}
    assert isinstance(result.errors[0], ExpressionEvaluationError) and result.errors[0].mapping == "active"


def test_dates_flow_as_entras_date_strings_and_constants_as_written() -> None:
    cfg = config(
        expression("hired", "CDate([employeeHireDate])"),
        AttributeMapping(target="userType", kind="constant", constant="Employee"),
    )
    result = evaluate_user(cfg, ctx(employeeHireDate="2024-03-16T08:00:00Z"))
    assert result.values == {"hired": "3/16/2024 8:00:00 AM", "userType": "Employee"}


def test_entra_attribute_names_read_the_graph_properties_behind_them() -> None:
    result = evaluate_user(
        builtin("scim"),
        ctx(
            userPrincipalName="a@contoso.com",
            businessPhones=["+1 555 0100", "+1 555 0101"],
            mobilePhone="+1 555 0199",
            faxNumber="+1 555 0102",
            officeLocation="B/12",
            proxyAddresses=["SMTP:a@contoso.com"],
            mailNickname="a",
            manager="goto-id-of-manager",
        ),
    )
    values = result.values
    assert values['phoneNumbers[type eq "work"].value'] == "+1 555 0100"
    assert values['phoneNumbers[type eq "mobile"].value'] == "+1 555 0199"
    assert values['phoneNumbers[type eq "fax"].value'] == "+1 555 0102"
    assert values['addresses[type eq "other"].formatted'] == "B/12"
    assert values['emails[type eq "other"].value'] == ["SMTP:a@contoso.com"]
    assert values["externalId"] == "a"
    assert values["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"] == "goto-id-of-manager"


def test_role_mappings_say_which_patch_entra_would_send() -> None:
    assert expression("roles", "AppRoleAssignmentsComplex([appRoleAssignments])").roles_patch == "add"
    assert expression("roles", "AssertiveAppRoleAssignmentsComplex([appRoleAssignments])").roles_patch == "replace"
    assert expression("roles", "SingleAppRoleAssignment([appRoleAssignments])").roles_patch == ""
    result = evaluate_user(
        config(expression("roles", "AssertiveAppRoleAssignmentsComplex([appRoleAssignments])")),
        ctx(roles=("Organizer",)),
    )
    assert result.values["roles"][0]["value"] == "Organizer"


def test_errors_survive_pickling_with_their_details() -> None:
    import pickle

    result = evaluate_user(
        config(expression("title", "Mid([jobTitle], [start], 3)"), expression("nick", "Left([a] 1)")),
        ctx(jobTitle="Engineer", start=0),
    )
    for error in result.errors:
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), str(copy), copy.mapping, copy.problem) == (
            type(error),
            str(error),
            error.mapping,
            error.problem,
        )
    assert pickle.loads(pickle.dumps(result.errors[1])).position == result.errors[1].position
