"""plan_user and decide_scope: Entra's scope checks and deprovisioning rules, as pure decisions."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from shared.engine.licenses import resolve_names
from shared.engine.plan import Kind, Match, Policy, decide_scope, plan_user
from shared.mapping import (
    AttributeMapping,
    MappingConfig,
    ScopingClause,
    ScopingFilter,
    SourceContext,
    builtin,
    evaluate_user,
    strip_guest_suffix,
)
from shared.model import Action, Link, SourceUser, Status
from shared.scim.resource import build_resource
from shared.scim.schemas import ENTERPRISE_URN

POLICY = Policy(verified_domains=("contoso.com",))
DEFAULT_GOTO_MAPPING = builtin("goto")


def evaluate(u: SourceUser, *, creating: bool) -> dict[str, Any]:
    ctx = SourceContext(u.attributes, u.id, is_soft_deleted=False, app_roles=tuple(u.roles), creating=creating)
    return evaluate_user(DEFAULT_GOTO_MAPPING, ctx).values


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
    resource = build_resource(evaluate(u, creating=True))
    resource["id"] = "1234567890123456789"
    resource.update(changes)
    return resource


def link_for(u: SourceUser, resource: dict[str, Any], active: bool = True) -> Link:
    return Link(u.id, resource["id"], exported=evaluate(u, creating=True), active=active)


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


# ---------------------------------------------------------------- the mapping library in plan_user

G2M, G2W = "2000000000000000002", "2000000000000000003"
ACCOUNT_LICENSES = [
    {"key": int(G2W), "products": ["G2W", "G2M"]},  # a webinar licence includes G2M: not "the" G2M one
    {"key": int(G2M), "products": ["G2M"]},
]
LICENSES = resolve_names({"MeetingOrganizer": ["G2M"], "WebinarOrganizer": ["G2W", "G2M"]}, ACCOUNT_LICENSES)


def with_mapping(*changes: AttributeMapping, filters: tuple[ScopingFilter, ...] = ()) -> MappingConfig:
    targets = {m.target for m in changes}
    rest = tuple(m for m in DEFAULT_GOTO_MAPPING.users if m.target not in targets)
    return MappingConfig(users=(*rest, *changes), scoping=filters)


SALES_ONLY = (ScopingFilter((ScopingClause("department", "EQUALS", "Sales"),), "Sales"),)


def test_product_codes_resolve_to_the_license_whose_main_product_they_are() -> None:
    assert LICENSES.by_role == {"MeetingOrganizer": (G2M,), "WebinarOrganizer": (G2W, G2M)}
    assert resolve_names({"x": [G2W, "g2w", "nope"]}, ACCOUNT_LICENSES).by_role == {"x": (G2W,)}
    assert resolve_names({"x": ["nope"]}, ACCOUNT_LICENSES).unknown == {"x": ("nope",)}
    assert LICENSES.wanted({"MeetingOrganizer", "WebinarOrganizer", ""}) == (sorted([G2M, G2W]), [])


def test_a_scoping_filter_is_a_fourth_scope_check_with_every_clause_in_the_log() -> None:
    config = with_mapping(filters=SALES_ONLY)
    plan = plan_user(user(), None, Match(None), config, POLICY)
    assert plan.kind is Kind.SKIP
    assert [c.name for c in plan.scope.checks][-1] == "Scoping filters"
    assert plan.scope.reason == "Scoping filters: fails every scoping filter: department EQUALS 'Sales' is false " + (
        "(value: 'Engineering')"
    )
    details = plan.steps[1].details
    assert details["filter 1 (Sales): department EQUALS 'Sales'"] == "fail (value: 'Engineering')"
    assert plan_user(user(department="Sales"), None, Match(None), config, POLICY).kind is Kind.CREATE


def test_a_linked_user_who_leaves_the_filter_is_disabled() -> None:
    u = user(department="Sales")
    target = goto_resource(u)
    moved = user(department="Marketing")
    plan = plan_user(moved, link_for(u, target), Match(target, "link"), with_mapping(filters=SALES_ONLY), POLICY)
    assert plan.kind is Kind.DISABLE and plan.changes == {"active": (True, False)}


def test_a_mapping_that_cannot_be_evaluated_fails_the_user_with_unprocessable_entity() -> None:
    broken = AttributeMapping("title", "expression", expression="Mid([displayName], 0, 2)")
    plan = plan_user(user(), None, Match(None), with_mapping(broken), POLICY)
    assert plan.kind is Kind.FAIL and plan.error_code == "UnprocessableEntity"
    assert plan.reason.startswith("the mapping for title failed: ") and plan.log_action is Action.CREATE


def test_no_value_for_any_matching_attribute_is_skipped_as_import_skipped() -> None:
    plan = plan_user(user(), None, Match(None, no_value=True), DEFAULT_GOTO_MAPPING, POLICY)
    assert plan.kind is Kind.SKIP and plan.error_code == "ImportSkipped"
    assert plan.log_status is Status.SKIPPED and "userName" in plan.reason


def test_clear_on_null_clears_the_attribute_on_update_only() -> None:
    u = user()
    target = goto_resource(u)
    config = with_mapping(AttributeMapping("name.givenName", "direct", source="givenName", clear_on_null=True))
    plan = plan_user(user(givenName=None), link_for(u, target), Match(target, "link"), config, POLICY)
    assert plan.kind is Kind.UPDATE and plan.changes == {"name.givenName": ("Ada", None)}
    assert "name.givenName" not in plan_user(user(givenName=None), None, Match(None), config, POLICY).values


def test_redacted_values_are_hidden_in_the_log_steps() -> None:
    config = with_mapping(AttributeMapping("displayName", "expression", expression="Redact([displayName])"))
    plan = plan_user(user(), None, Match(None), config, POLICY)
    assert plan.values["displayName"] == "Ada Lovelace"
    assert plan.steps[-1].details["displayName"] == "None -> '[Redact]'"


def test_licenses_follow_the_roles_on_create_update_and_disable() -> None:
    u = user()
    created = plan_user(u, None, Match(None), DEFAULT_GOTO_MAPPING, POLICY, LICENSES)
    assert created.kind is Kind.CREATE and created.licenses == ([], [G2M])
    target = goto_resource(u)
    link = link_for(u, target)
    link.licenses = [G2M]
    same = plan_user(u, link, Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY, LICENSES)
    assert same.kind is Kind.NONE and same.licenses is None
    webinar = user(roles=frozenset({"WebinarOrganizer"}))
    swapped = plan_user(webinar, link, Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY, LICENSES)
    assert swapped.kind is Kind.UPDATE and swapped.reason == "licenses changed" and swapped.changes == {}
    assert swapped.licenses == ([G2M], sorted([G2M, G2W]))
    gone = plan_user(user(assigned=False), link, Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY, LICENSES)
    assert gone.kind is Kind.DISABLE and gone.licenses == ([G2M], [])
    # Licenses are not managed (ROLE_LICENSES empty): no license change is ever planned.
    assert plan_user(webinar, link, Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY).licenses is None


def test_an_already_disabled_user_still_holding_a_seat_has_it_released() -> None:
    u = user()
    target = goto_resource(u, active=False)
    link = link_for(u, target, active=False)
    link.licenses = [G2M]
    plan = plan_user(user(assigned=False), link, Match(target, "link"), DEFAULT_GOTO_MAPPING, POLICY, LICENSES)
    assert plan.kind is Kind.DISABLE and plan.changes == {} and plan.licenses == ([G2M], [])


def test_a_license_the_account_lacks_fails_before_anything_is_sent() -> None:
    licenses = resolve_names({"MeetingOrganizer": ["GTX"]}, ACCOUNT_LICENSES)
    plan = plan_user(user(), None, Match(None), DEFAULT_GOTO_MAPPING, POLICY, licenses)
    assert plan.kind is Kind.FAIL and plan.error_code == "LicenseNotFound" and "'GTX'" in plan.reason


def test_default_access_mapped_in_role_licenses_entitles() -> None:
    u = user(roles=frozenset({""}))
    licensed = Policy(default_access_licensed=True)
    licenses = resolve_names({"": ["G2M"]}, ACCOUNT_LICENSES)
    plan = plan_user(u, None, Match(None), DEFAULT_GOTO_MAPPING, licensed, licenses)
    assert plan.kind is Kind.CREATE and plan.licenses == ([], [G2M])
    assert "ROLE_LICENSES" in plan.scope.checks[2].detail


def test_shown_changes_hide_redacted_values_and_list_the_license_change() -> None:
    config = with_mapping(AttributeMapping("displayName", "expression", expression="Redact([displayName])"))
    plan = dataclasses.replace(plan_user(user(), None, Match(None), config, POLICY), licenses=([], ["g2m-key"]))
    shown = {name: (old, new) for name, old, new in plan.shown_changes()}
    assert shown["displayName"] == (None, "[Redact]")
    assert shown["licenses"] == ([], ["g2m-key"])
    assert "Ada Lovelace" not in repr(plan.shown_changes())
