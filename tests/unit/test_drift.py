"""drift_plan: the repair for one linked GoTo user, as a pure decision, checked rule by rule and
against an oracle written from the rules' table (docs/drift.md), not from the code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.engine.drift import REASON_PREFIX, STEP, Observed, drift_plan, held_seats
from shared.engine.plan import Kind
from shared.model import Action, Link

AT = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
DISABLED_AT = datetime(2026, 2, 20, 9, 30, tzinfo=UTC)
EXPORTED = {
    "userName": "ada@contoso.com",
    "displayName": "Ada Lovelace",
    "name.givenName": "Ada",
    "name.familyName": "Lovelace",
    "externalId": "e-1",
    "active": True,
}


def link(**overrides: Any) -> Link:
    values: dict[str, Any] = {
        "entra_id": "e-1",
        "goto_id": "k-1",
        "exported": dict(EXPORTED),
        "licenses": ["L1"],
        "active": True,
        "applied_at": DISABLED_AT,
        "etag": "W/1",
    }
    values.update(overrides)
    return Link(**values)


def goto(**overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "id": "k-1",
        "userName": "ada@contoso.com",
        "displayName": "Ada Lovelace",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "externalId": "e-1",
        "active": True,
    }
    resource.update(overrides)
    return resource


def seen(resource: dict[str, Any] | None, held: frozenset[str] | None = frozenset({"L1"})) -> Observed:
    return Observed(resource, held, AT)


def test_a_user_as_gotosync_left_it_needs_no_repair() -> None:
    assert drift_plan(link(), seen(goto())) is None
    assert drift_plan(link(), seen(goto(userName="ADA@contoso.com"))) is None  # userName compares without case


def test_a_renamed_user_is_set_back_with_gotos_value_as_old() -> None:
    plan = drift_plan(link(), seen(goto(displayName="By Hand", name={"givenName": "Ada", "familyName": "X"})))
    assert plan is not None and plan.kind is Kind.UPDATE and plan.log_action is Action.UPDATE
    assert plan.changes == {"displayName": ("By Hand", "Ada Lovelace"), "name.familyName": ("X", "Lovelace")}
    assert plan.reason == f"{REASON_PREFIX}: changed in GoTo by hand: displayName, name.familyName; set back"
    assert plan.steps[0].name == STEP and plan.steps[0].details["displayName"] == "GoTo 'By Hand' -> 'Ada Lovelace'"
    assert plan.licenses is None and plan.target_id == "k-1" and not plan.kind.deprovisions


def test_what_goto_does_not_return_is_not_compared() -> None:
    resource = goto()
    del resource["externalId"], resource["active"]
    assert drift_plan(link(), seen(resource)) is None


def test_a_user_re_enabled_by_hand_is_disabled_again_on_the_links_evidence() -> None:
    disabled = link(active=False, licenses=[], exported={**EXPORTED, "active": False})
    plan = drift_plan(disabled, seen(goto(displayName="Renamed Too"), held=frozenset({"L1", "L2"})))
    assert plan is not None and plan.kind is Kind.DISABLE and plan.kind.deprovisions
    assert plan.changes == {"active": (True, False)}  # a disabled user's attributes are not maintained
    assert plan.licenses == (["L1", "L2"], [])  # the seats given back with it are released again
    assert plan.evidence.startswith("disabled by gotosync on 2026-02-20T09:30:00+00:00; re-enabled in GoTo by hand")
    assert plan.user.evidence == plan.evidence and plan.steps[0].details["evidence"] == plan.evidence


def test_a_disabled_user_left_disabled_is_not_touched_whatever_else_changed() -> None:
    disabled = link(active=False, licenses=[], exported={**EXPORTED, "active": False})
    assert drift_plan(disabled, seen(goto(active=False, displayName="Renamed"), held=frozenset({"L9"}))) is None
    assert drift_plan(disabled, seen(None)) is None  # deleted while disabled: nothing to give back


def test_a_user_disabled_by_hand_is_enabled_and_set_back_in_one_write() -> None:
    plan = drift_plan(link(), seen(goto(active=False, displayName="X")))
    assert plan is not None and plan.kind is Kind.ENABLE and plan.log_action is Action.UPDATE
    assert plan.changes == {"displayName": ("X", "Ada Lovelace"), "active": (False, True)}
    assert "disabled in GoTo by hand; enabled again" in plan.reason


def test_active_is_left_alone_when_gotosync_does_not_send_it() -> None:
    assert drift_plan(link(), seen(goto(active=False)), manage_active=False) is None
    disabled = link(active=False, exported={**EXPORTED, "active": False})
    assert drift_plan(disabled, seen(goto(active=True)), manage_active=False) is None


def test_a_user_deleted_by_hand_is_created_again_with_its_seats() -> None:
    plan = drift_plan(link(), seen(None, held=frozenset()))
    assert plan is not None and plan.kind is Kind.CREATE and plan.log_action is Action.CREATE
    assert plan.values == EXPORTED and plan.licenses == ([], ["L1"])
    assert plan.changes["displayName"] == (None, "Ada Lovelace")
    assert plan.reason == f"{REASON_PREFIX}: GoTo user k-1 was deleted in GoTo by hand; created again"
    assert drift_plan(link(), seen(None, held=None)).licenses is None  # type: ignore[union-attr]


def test_a_removed_seat_is_assigned_again_and_seats_added_by_hand_are_kept() -> None:
    plan = drift_plan(link(licenses=["L1", "L2"]), seen(goto(), held=frozenset({"L2", "L7"})))
    assert plan is not None and plan.kind is Kind.UPDATE and plan.changes == {}
    assert plan.licenses == (["L2", "L7"], ["L1", "L2", "L7"])
    assert plan.reason == f"{REASON_PREFIX}: licenses removed in GoTo by hand: L1; assigned again"
    assert drift_plan(link(), seen(goto(), held=frozenset({"L1", "L7"}))) is None  # an extra seat is no drift
    assert drift_plan(link(), seen(goto(), held=None)) is None  # licenses not managed: not read, not compared


def test_links_that_are_not_live_or_not_owned_are_never_compared() -> None:
    assert drift_plan(link(pending=True), seen(None)) is None
    assert drift_plan(link(goto_id=""), seen(None)) is None
    assert drift_plan(link(owned=False), seen(goto(displayName="X", active=False))) is None


def test_held_seats_reads_the_license_listing() -> None:
    listing = [{"key": "L1", "userKeys": ["k-1", "k-2"]}, {"key": "L2", "userKeys": [3]}, {"userKeys": ["k-9"]}]
    assert held_seats(listing) == {"k-1": frozenset({"L1"}), "k-2": frozenset({"L1"}), "3": frozenset({"L2"})}


# ---------------------------------------------------------------------------- the oracle

ATTRS = ("userName", "displayName", "title")
SEATS = st.frozensets(st.sampled_from(("L1", "L2", "L3")), max_size=3)


@st.composite
def cases(draw: Any) -> tuple[Link, Observed, bool]:
    exported = {a: f"{a}-ours" for a in ATTRS if draw(st.booleans())}
    active = draw(st.booleans())
    state = draw(st.sampled_from(("live",) * 4 + ("pending", "no id", "not owned")))
    lk = Link(
        entra_id="e",
        goto_id="" if state == "no id" else "k",
        owned=state != "not owned",
        pending=state == "pending",
        exported={**exported, "active": active},
        licenses=sorted(draw(SEATS)),
        active=active,
        applied_at=DISABLED_AT,
    )
    resource: dict[str, Any] | None = None
    if draw(st.sampled_from((True, True, True, False))):  # mostly listed; sometimes deleted
        resource = {"id": "k"}
        for attr in ATTRS:
            state = draw(st.sampled_from(("same", "other", "missing")))
            if state != "missing":
                resource[attr] = f"{attr}-ours" if state == "same" else f"{attr}-hand"
        shown = draw(st.sampled_from((True, False, None)))
        if shown is not None:
            resource["active"] = shown
    held = draw(st.none() | SEATS)
    return lk, Observed(resource, held, AT), draw(st.booleans())


def oracle(lk: Link, obs: Observed, manage_active: bool) -> tuple[Kind | None, set[str]]:
    """The table of docs/drift.md, read literally: (kind, changed attributes) or (None, set())."""
    if not lk.goto_id or lk.pending or not lk.owned:
        return None, set()
    if obs.resource is None:
        return (Kind.CREATE, set()) if lk.active else (None, set())
    shown = obs.resource.get("active") if manage_active else None
    if not lk.active:
        return (Kind.DISABLE, {"active"}) if shown is True else (None, set())
    changed = {a for a in ATTRS if a in lk.exported and a in obs.resource and obs.resource[a] != lk.exported[a]}
    seats_gone = obs.held is not None and bool(set(lk.licenses) - obs.held)
    if shown is False:
        return Kind.ENABLE, changed | {"active"}
    if changed or seats_gone:
        return Kind.UPDATE, changed
    return None, set()


@settings(max_examples=400, deadline=None)
@given(cases())
def test_drift_plan_agrees_with_the_table(case: tuple[Link, Observed, bool]) -> None:
    lk, obs, manage_active = case
    plan = drift_plan(lk, obs, manage_active=manage_active)
    kind, changed = oracle(lk, obs, manage_active)
    assert (plan.kind if plan else None) is kind
    if plan is None:
        return
    assert plan.reason.startswith(REASON_PREFIX) and plan.target_id == lk.goto_id
    assert plan.kind.deprovisions == (kind is Kind.DISABLE)
    if kind is Kind.CREATE:
        return
    assert set(plan.changes) == changed
    for attr in changed - {"active"}:
        assert plan.changes[attr] == (obs.resource[attr], lk.exported[attr])  # type: ignore[index]
    if plan.licenses is not None and kind is not Kind.DISABLE:
        held, wanted = plan.licenses
        assert set(wanted) == set(held) | set(lk.licenses)  # a seat is never released by a repair
