"""Incremental and targeted runs plan a linked user against the GoTo user as gotosync last left
it (rebuilt from the link) instead of reading GoTo: the plan must then write exactly what
changed in Entra since the last export, and nothing when nothing did. Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.engine.matching import LINK, link_target
from shared.engine.plan import Kind, Match, Policy, plan_user
from shared.engine.reading import COALESCE_MARGIN, applied_since
from shared.mapping import SourceContext, builtin, evaluate_user
from shared.model import Link, SourceUser

POLICY = Policy(verified_domains=("contoso.com",))
MAPPING = builtin("goto")
UID = "11111111-1111-1111-1111-111111111111"

names = st.text(alphabet="abcdefghij KLM", min_size=1, max_size=12).map(str.strip).filter(bool)
attributes = st.fixed_dictionaries(
    {
        "displayName": names,
        "givenName": names,
        "surname": names,
        "department": st.one_of(st.none(), names),
        "employeeId": st.one_of(st.none(), st.from_regex(r"E[0-9]{1,4}", fullmatch=True)),
    }
)


def source(attrs: dict[str, Any], enabled: bool = True) -> SourceUser:
    full = {
        "id": UID,
        "userPrincipalName": "ada@contoso.com",
        "mail": "ada@contoso.com",
        "accountEnabled": enabled,
        **attrs,
    }
    return SourceUser(UID, full, roles=frozenset({"MeetingOrganizer"}), assigned=True)


def sent(user: SourceUser) -> dict[str, Any]:
    """What an export of this user sends (the mapping's values), the oracle's side."""
    ctx = SourceContext(user.attributes, user.id, is_soft_deleted=False, app_roles=("MeetingOrganizer",), creating=True)
    return evaluate_user(MAPPING, ctx).values


def linked(exported: dict[str, Any], active: bool = True) -> Link:
    return Link(UID, "4242", exported=exported, active=active, applied_at=datetime(2026, 1, 1, tzinfo=UTC))


def planned(user: SourceUser, link: Link) -> Any:
    target = link_target(link)
    assert target is not None
    return plan_user(user, link, Match(target, LINK, rebuilt=True), MAPPING, POLICY)


@settings(max_examples=150, deadline=None)
@given(before=attributes, after=attributes)
def test_a_plan_against_the_link_writes_exactly_what_changed_since_the_last_export(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    last, now = sent(source(before)), sent(source(after))
    plan = planned(source(after), linked(last))
    differing = {path for path in set(last) | set(now) if path in now and last.get(path) != now[path]}
    assert set(plan.changes) == differing
    assert all(plan.changes[path] == (last.get(path), now[path]) for path in differing)
    assert plan.kind is (Kind.UPDATE if differing else Kind.NONE)
    assert plan.target_id == "4242" and plan.target_name == "ada@contoso.com"


def test_a_disabled_link_brings_a_user_back_in_scope_with_an_enable() -> None:
    user = source({"displayName": "Ada"})
    plan = planned(user, linked({**sent(user), "active": False}, active=False))
    assert plan.kind is Kind.ENABLE and plan.changes == {"active": (False, True)}


def test_a_blocked_user_is_disabled_once_and_then_left_alone() -> None:
    user = source({"displayName": "Ada"}, enabled=False)
    assert planned(user, linked(sent(source({"displayName": "Ada"})))).kind is Kind.DISABLE
    already = planned(user, linked({**sent(source({"displayName": "Ada"})), "active": False}, active=False))
    assert already.kind is Kind.SKIP and already.reason.startswith("already disabled")


def test_only_a_live_owned_link_with_exported_values_stands_for_the_goto_user() -> None:
    values = {"userName": "ada@contoso.com"}
    assert link_target(linked(values)) == {"userName": "ada@contoso.com", "id": "4242", "active": True}
    assert link_target(Link(UID, "4242", exported={})) is None  # nothing recorded: read GoTo
    assert link_target(Link(UID, "4242", exported=values, owned=False)) is None
    assert link_target(Link(UID, "", exported=values, pending=True)) is None  # a create intent


def test_a_notification_is_covered_only_by_a_read_taken_after_it_beyond_the_clock_margin() -> None:
    received = datetime(2026, 1, 1, 12, tzinfo=UTC)

    def link_read_at(at: datetime | None) -> Link:
        return Link(UID, "4242", applied_at=at)

    assert applied_since(link_read_at(received + COALESCE_MARGIN + timedelta(milliseconds=1)), received)
    assert not applied_since(link_read_at(received + COALESCE_MARGIN), received)
    assert not applied_since(link_read_at(received - timedelta(seconds=5)), received)
    assert not applied_since(link_read_at(None), received)
    assert not applied_since(None, received)
    assert not applied_since(link_read_at(received + timedelta(hours=1)), None)  # no receipt time: run it
