"""plan_user and decide_scope: Entra's scope checks and deprovisioning rules, as pure decisions."""

from __future__ import annotations

from typing import Any

import pytest

from shared.engine.mapping import DEFAULT_GOTO_MAPPING, evaluate, strip_guest_suffix
from shared.engine.plan import Kind, Match, Policy, decide_scope, plan_user
from shared.engine.scim_paths import ENTERPRISE_URN, build_resource, get_value
from shared.model import Action, Link, SourceUser, Status

POLICY = Policy(verified_domains=("contoso.com",))


def user(**overrides: Any) -> SourceUser:
    attrs = {
        "id": "11111111-1111-1111-1111-111111111111",
        "userPrincipalName": "ada.lovelace@contoso.com",
        "accountEnabled": True,
        "displayName": "Ada Lovelace",
        "givenName": "Ada",
        "surname": "Lovelace",
        "mail": "ada.lovelace@contoso.com",
        "department": "Engineering",
        "employeeId": "E1",
    }
    flags = {k: overrides.pop(k) for k in ("roles", "assigned", "soft_deleted", "hard_deleted") if k in overrides}
    attrs.update(overrides)
    return SourceUser(
        attrs["id"],
        attrs,
        roles=flags.get("roles", frozenset({"MeetingOrganizer"})),
        assigned=flags.get("assigned", True),
        soft_deleted=flags.get("soft_deleted", False),
        hard_deleted=flags.get("hard_deleted", False),
    )


def goto_resource(u: SourceUser, **changes: Any) -> dict[str, Any]:
    resource = build_resource(evaluate(DEFAULT_GOTO_MAPPING, u, creating=True))
    resource["id"] = "1234567890123456789"
    resource.update(changes)
    return resource


def link_for(u: SourceUser, resource: dict[str, Any], active: bool = True) -> Link:
    return Link(u.id, resource["id"], exported=evaluate(DEFAULT_GOTO_MAPPING, u, creating=True), active=active)


def test_assigned_user_without_goto_account_is_created_with_every_mapped_attribute() -> None:
    plan = plan_user(user(), None, Match(None), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.CREATE
    assert plan.log_action is Action.CREATE and plan.log_status is Status.SUCCESS
    assert plan.values["userName"] == "ada.lovelace@contoso.com"
    assert plan.values["active"] is True
    assert plan.values[f"{ENTERPRISE_URN}:department"] == "Engineering"
    assert plan.values["externalId"] == user().id
    assert [s.name for s in plan.steps][:3] == ["EntryImport", "EntrySynchronizationScoping", "EntryMatching"]


def test_user_in_step_with_goto_needs_nothing() -> None:
    u = user()
    target = goto_resource(u)
    plan = plan_user(u, link_for(u, target), Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.NONE and plan.changes == {}
    assert plan.log_action is Action.OTHER and plan.log_status is Status.SKIPPED


def test_renamed_user_gets_only_the_changed_attributes() -> None:
    before = user()
    target = goto_resource(before)
    after = user(surname="Byron", displayName="Ada Byron")
    plan = plan_user(after, link_for(before, target), Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.UPDATE
    assert plan.changes == {"name.familyName": ("Lovelace", "Byron"), "displayName": ("Ada Lovelace", "Ada Byron")}


def test_attribute_goto_does_not_return_is_compared_with_what_was_last_sent() -> None:
    u = user()
    target = goto_resource(u)
    del target[ENTERPRISE_URN]  # a server that drops the enterprise extension
    del target["externalId"]
    plan = plan_user(u, link_for(u, target), Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.NONE


@pytest.mark.parametrize(
    ("overrides", "reason_part"),
    [
        ({"assigned": False, "roles": frozenset()}, "not assigned"),
        ({"accountEnabled": False}, "sign-in blocked"),
        ({"soft_deleted": True}, "recycle bin"),
    ],
)
def test_unassigned_blocked_or_soft_deleted_user_is_disabled(overrides: dict[str, Any], reason_part: str) -> None:
    u = user()
    target = goto_resource(u)
    plan = plan_user(user(**overrides), link_for(u, target), Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.DISABLE
    assert plan.log_action is Action.DISABLE
    assert plan.changes == {"active": (True, False)}
    assert reason_part in plan.reason


def test_hard_deleted_user_is_deleted_and_disable_policy_disables_instead() -> None:
    u = user()
    target = goto_resource(u)
    gone = user(hard_deleted=True)
    plan = plan_user(gone, link_for(u, target), Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.DELETE and plan.log_action is Action.DELETE
    keep = Policy(hard_delete_action="disable")
    assert plan_user(gone, link_for(u, target), Match(target, "link"), DEFAULT_GOTO_MAPPING, keep).kind is Kind.DISABLE


def test_restored_user_is_re_enabled() -> None:
    u = user()
    target = goto_resource(u, active=False)
    plan = plan_user(u, link_for(u, target, active=False), Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.ENABLE
    assert plan.log_action is Action.UPDATE
    assert plan.changes["active"] == (False, True)


def test_already_disabled_user_out_of_scope_is_left_alone() -> None:
    u = user()
    target = goto_resource(u, active=False)
    plan = plan_user(
        user(assigned=False), link_for(u, target, False), Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY
    )
    assert plan.kind is Kind.SKIP and "already disabled" in plan.reason


def test_skip_out_of_scope_deletions_leaves_unassigned_users_enabled() -> None:
    u = user()
    target = goto_resource(u)
    policy = Policy(skip_out_of_scope_deletions=True)
    plan = plan_user(user(assigned=False), link_for(u, target), Match(target, "link"), DEFAULT_GOTO_MAPPING, policy)
    assert plan.kind is Kind.SKIP and "SkipOutOfScopeDeletions" in plan.reason


def test_default_access_only_is_not_effectively_entitled_unless_configured() -> None:
    u = user(roles=frozenset({""}))
    plan = plan_user(u, None, Match(None), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.SKIP
    assert "not effectively entitled" in plan.reason
    provision = Policy(default_access_only="provision")
    assert plan_user(u, None, Match(None), DEFAULT_GOTO_MAPPING, provision).kind is Kind.CREATE


def test_never_provisioned_goto_user_is_not_touched_when_out_of_scope() -> None:
    u = user(assigned=False)
    target = goto_resource(u)
    plan = plan_user(u, None, Match(target, "userName"), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.SKIP


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"userPrincipalName": None}, "MandatoryFieldsMissing"),
        ({"userPrincipalName": "a" * 120 + "@contoso.com"}, "SchemaPropertyCanOnlyAcceptValue"),
        ({"userPrincipalName": "someone@fabrikam.com"}, "InvalidDomain"),
        ({"givenName": "G" * 61}, "SchemaPropertyCanOnlyAcceptValue"),
    ],
)
def test_bad_data_fails_with_a_named_cause_before_anything_is_sent(overrides: dict[str, Any], code: str) -> None:
    plan = plan_user(user(**overrides), None, Match(None), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.FAIL
    assert plan.error_code == code
    assert plan.log_status is Status.FAILURE
    assert plan.reason


def test_several_goto_hits_are_duplicate_target_entries() -> None:
    match = Match(None, "userName", (("userName", "ada.lovelace@contoso.com", 2),), duplicates=2)
    plan = plan_user(user(), None, match, DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.FAIL and plan.error_code == "DuplicateTargetEntries"


def test_scope_checks_are_named_as_entra_names_them() -> None:
    scope = decide_scope(user(accountEnabled=False), POLICY)
    assert [c.name for c in scope.checks] == [
        "Active in source system",
        "Assigned to application",
        "User has required role",
    ]
    assert not scope.in_scope and scope.soft_deleted


def test_guest_upn_suffix_is_stripped_like_entra() -> None:
    assert strip_guest_suffix("alias_fabrikam.com#EXT#@contoso.onmicrosoft.com") == "alias@fabrikam.com"
    assert strip_guest_suffix("plain@contoso.com") == "plain@contoso.com"


def test_scim_paths_read_and_write_filtered_and_extension_attributes() -> None:
    resource = build_resource({'emails[type eq "work"].value': "a@contoso.com", f"{ENTERPRISE_URN}:department": "X"})
    assert resource["emails"] == [{"type": "work", "value": "a@contoso.com", "primary": True}]
    assert get_value(resource, 'emails[type eq "work"].value') == "a@contoso.com"
    assert get_value(resource, f"{ENTERPRISE_URN}:department") == "X"
    assert "schemas" not in resource  # GoTo's UserDefinition carries none (goto-api U1)
