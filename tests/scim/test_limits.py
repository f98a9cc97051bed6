"""GoTo's documented limits: each one at its boundary, and the engine's plan and the GoTo client
refusing exactly the same users with the same code and reason (they call one function)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.engine.plan import Kind, Match, Policy, plan_user
from shared.goto.errors import BadRequest, Op
from shared.goto.scim import validate_user
from shared.mapping import builtin
from shared.model import SourceUser
from shared.scim.limits import (
    INVALID_DOMAIN,
    MANDATORY_FIELDS_MISSING,
    MAX_GROUP_NAME,
    MAX_NAME_PART,
    MAX_USERNAME,
    TOO_LONG,
    Problem,
    group_name_problem,
    user_problem,
)
from shared.scim.resource import build_resource

DOMAINS = ("contoso.com",)


def code_of(problem: Problem | None) -> str:
    return problem.code if problem is not None else ""


def name_of(length: int, domain: str = "contoso.com") -> str:
    """A userName of exactly ``length`` characters."""
    return "a" * (length - len(domain) - 1) + "@" + domain


def test_user_name_is_required_and_not_blank() -> None:
    for resource in ({}, {"userName": ""}, {"userName": "  "}, {"userName": 42}, {"userName": None}):
        assert user_problem(resource) == (MANDATORY_FIELDS_MISSING, "userName is missing or empty")


def test_user_name_may_have_128_characters_and_not_129() -> None:
    assert user_problem({"userName": name_of(MAX_USERNAME)}) is None
    assert user_problem({"userName": name_of(MAX_USERNAME + 1)}) == Problem(
        TOO_LONG, "userName is 129 characters; GoTo accepts at most 128"
    )


@pytest.mark.parametrize("part", ["givenName", "familyName"])
def test_name_parts_may_have_60_characters_and_not_61(part: str) -> None:
    ok = {"userName": "a@contoso.com", "name": {part: "x" * MAX_NAME_PART}}
    assert user_problem(ok) is None
    too_long = {"userName": "a@contoso.com", "name": {part: "x" * (MAX_NAME_PART + 1)}}
    assert user_problem(too_long) == (TOO_LONG, f"name.{part} is 61 characters; GoTo accepts at most 60")


def test_the_domain_must_be_verified_when_domains_are_known() -> None:
    assert user_problem({"userName": "a@Contoso.COM"}, verified_domains=[" CONTOSO.com "]) is None
    assert user_problem({"userName": "a@fabrikam.com"}) is None  # no list: GoTo decides
    code, reason = user_problem({"userName": "a@fabrikam.com"}, verified_domains=DOMAINS) or ("", "")
    assert code == INVALID_DOMAIN
    assert reason == (
        "the domain of userName 'a@fabrikam.com' is not a verified domain of the GoTo organization (contoso.com)"
    )
    assert code_of(user_problem({"userName": "contoso.com"}, verified_domains=DOMAINS)) == INVALID_DOMAIN


def test_limits_are_checked_in_order_and_found_in_any_case() -> None:
    resource = {"UserName": name_of(MAX_USERNAME + 1, "fabrikam.com"), "Name": {"GivenName": "x" * 61}}
    assert code_of(user_problem(resource, verified_domains=DOMAINS)) == TOO_LONG
    wrong_domain = {"UserName": "a@fabrikam.com", "Name": {"GivenName": "x" * 61}}
    assert code_of(user_problem(wrong_domain, verified_domains=DOMAINS)) == INVALID_DOMAIN
    assert code_of(user_problem({"USERNAME": "a@contoso.com", "name": {"FAMILYNAME": "x" * 61}})) == TOO_LONG


def test_a_partial_check_looks_only_at_what_an_update_changes() -> None:
    assert user_problem({"name": {"givenName": "x"}}, partial=True) is None
    assert user_problem({"userName": ""}, partial=True) == (MANDATORY_FIELDS_MISSING, "userName is missing or empty")
    assert code_of(user_problem({"name": {"givenName": "x" * 61}}, partial=True)) == TOO_LONG


def test_a_generic_scim_target_gets_no_length_limits_but_keeps_user_name_and_domains() -> None:
    long = {"userName": name_of(200), "name": {"givenName": "x" * 100}}
    assert user_problem(long, goto_limits=False) is None
    assert code_of(user_problem({}, goto_limits=False)) == MANDATORY_FIELDS_MISSING
    outside = user_problem({"userName": "a@x.org"}, verified_domains=DOMAINS, goto_limits=False)
    assert code_of(outside) == INVALID_DOMAIN


def test_group_names_are_required_and_at_most_128_characters() -> None:
    assert group_name_problem("g" * MAX_GROUP_NAME) is None
    assert group_name_problem("g" * 129) == (TOO_LONG, "group displayName is 129 characters; GoTo accepts at most 128")
    assert group_name_problem(" ") == (MANDATORY_FIELDS_MISSING, "group displayName is missing or empty")
    assert code_of(group_name_problem(None)) == MANDATORY_FIELDS_MISSING
    assert group_name_problem("g" * 300, goto_limits=False) is None


# --- one check for the plan and the client

MAPPING = builtin("goto")
POLICY = Policy(verified_domains=DOMAINS)


def source_user(upn: str | None, given: str, surname: str) -> SourceUser:
    attrs: dict[str, Any] = {
        "id": "11111111-1111-1111-1111-111111111111",
        "userPrincipalName": upn,
        "accountEnabled": True,
        "displayName": "Someone",
        "givenName": given,
        "surname": surname,
    }
    return SourceUser(attrs["id"], attrs, roles=frozenset({"MeetingOrganizer"}), assigned=True)


LENGTHS = st.sampled_from([1, 59, 60, 61, 127, 128, 129])


@settings(max_examples=120, deadline=None)
@given(
    st.one_of(st.none(), st.just(""), st.tuples(LENGTHS, st.sampled_from(["contoso.com", "fabrikam.com"]))),
    LENGTHS,
    LENGTHS,
)
def test_the_plan_and_the_client_refuse_the_same_users_with_the_same_code_and_reason(
    upn_spec: Any, given_length: int, surname_length: int
) -> None:
    upn = name_of(max(upn_spec[0], len(upn_spec[1]) + 2), upn_spec[1]) if isinstance(upn_spec, tuple) else upn_spec
    user = source_user(upn, "g" * given_length, "s" * surname_length)
    plan = plan_user(user, None, Match(None), MAPPING, POLICY)
    try:
        validate_user(build_resource(plan.values), Op("create user", "x"), verified_domains=DOMAINS)
        refused = None
    except BadRequest as exc:
        refused = (exc.code, exc.detail)
    if refused is None:
        assert plan.kind is Kind.CREATE
    else:
        assert plan.kind is Kind.FAIL
        assert (plan.error_code, plan.reason) == refused
