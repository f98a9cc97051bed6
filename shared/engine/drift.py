"""Drift: how a GoTo user that gotosync manages differs from what gotosync last left there, and
the repair that puts it back. Pure: no I/O; the sweep (shared/engine/drift_sweep.py) reads,
gates, exports and commits.

The expected state is the user's link (docs/state.md): the values last exported (by SCIM path),
`active`, the licenses last set, and the GoTo id. Entra is not read: Entra's side of a user
changes through the cycles and the webhook runs, which keep the link; what the link cannot see
is a change made in GoTo by hand. A repair is one of the pipeline's own plans (`Plan`), so the
gate, the exporter, the effects and the log treat it as any other:

| GoTo, by hand | link says | repair | log action |
|---|---|---|---|
| an exported attribute changed | the value sent | PATCH the value back (old: GoTo's, new: ours) | Update |
| active again | disabled | disable again (a deprovision: the deletion guards count it) | Disable |
| disabled | active | enable | Update |
| deleted (a read by id answers 404) | active | create again (the link moves to the new id) | Create |
| a license seat removed | the seat was set | assign it again (Admin API) | Update |

What is not repaired, and why (docs/drift.md): a value GoTo does not return (it may drop
`externalId` and the enterprise extension; nothing shows it changed), `active` when GoTo does
not return it or GOTO_SEND_ACTIVE is off, the attributes of a disabled user (Entra does not
update out-of-scope users either), a seat added by hand (a seat is never released on the
sweep's word alone; the re-disable restores the released state), and a disabled user deleted
in GoTo (it held nothing to give back).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.engine.plan import Kind, Plan, Scope, diff
from shared.model import Link, ProvisioningStep, SourceUser, Status, StepType
from shared.scim.paths import get_value, has_value, short_name

REASON_PREFIX = "Drift repair"  # every repair's reason starts with it: the logs can be filtered by it
STEP = "EntryDriftRepair"
_NOT_COMPARED = ("active", "_truncated")  # `active` has its own rule; `_truncated` is the store's marker


@dataclass(frozen=True)
class Observed:
    """What GoTo says of one linked user. `resource`: the user as listed (or read by id); None
    when a read by id answered 404. `held`: the license keys it holds (None: licenses are not
    managed, so not read). `read_at`: when the listing was read."""

    resource: dict[str, Any] | None
    held: frozenset[str] | None
    read_at: datetime


def expected_values(link: Link) -> dict[str, Any]:
    """What the link says GoTo should hold: the values last exported, by SCIM path."""
    return {path: value for path, value in link.exported.items() if path != "_truncated"}


def goto_active(resource: dict[str, Any]) -> bool | None:
    """GoTo's `active` for the user, or None when GoTo does not return it (then nothing is known)."""
    if not has_value(resource, "active"):
        return None
    value = get_value(resource, "active")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def attribute_drift(link: Link, resource: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The exported attributes GoTo now holds otherwise: path -> (GoTo's value, ours). An
    attribute GoTo does not return is not compared (the engine's own diff rule)."""
    wanted = {p: v for p, v in expected_values(link).items() if p not in _NOT_COMPARED}
    return diff(wanted, resource, link)


def drift_plan(link: Link, seen: Observed, *, manage_active: bool = True) -> Plan | None:
    """The repair that puts the linked GoTo user back as gotosync left it, or None when it is in
    step (or nothing can be repaired). Only live links of users gotosync owns are compared."""
    if not link.live or not link.owned:
        return None
    if seen.resource is None:
        return _recreate(link, seen) if link.active else None
    active = goto_active(seen.resource) if manage_active else None
    if not link.active:
        return _disable_again(link, seen) if active is True else None
    changes = attribute_drift(link, seen.resource)
    if active is False:
        changes["active"] = (False, True)
    licenses = _missing_seats(link, seen.held)
    if not changes and licenses is None:
        return None
    kind = Kind.ENABLE if "active" in changes else Kind.UPDATE
    return _plan(link, seen, kind, changes, licenses, _update_reason(changes, licenses))


def _missing_seats(link: Link, held: frozenset[str] | None) -> tuple[list[str], list[str]] | None:
    """(held, wanted) when seats the link set are gone: the seats are assigned again and the
    others the user holds are kept (a seat is never released on the sweep's word)."""
    if held is None:
        return None
    missing = set(link.licenses) - held
    if not missing:
        return None
    return sorted(held), sorted(held | set(link.licenses))


def _recreate(link: Link, seen: Observed) -> Plan:
    values = expected_values(link)
    licenses = ([], sorted(link.licenses)) if seen.held is not None and link.licenses else None
    changes = {path: (None, value) for path, value in values.items()}
    reason = f"{REASON_PREFIX}: GoTo user {link.goto_id} was deleted in GoTo by hand; created again"
    return _plan(link, seen, Kind.CREATE, changes, licenses, reason)


def _disable_again(link: Link, seen: Observed) -> Plan:
    when = link.applied_at.isoformat(timespec="seconds") if link.applied_at else "an unknown date"
    evidence = (
        f"disabled by gotosync on {when}; re-enabled in GoTo by hand "
        f"(active in GoTo's user listing at {seen.read_at.isoformat(timespec='seconds')})"
    )
    licenses = None
    if seen.held is not None and seen.held - set(link.licenses):
        # The seats given back with the hand re-enable are released again, as the disable did.
        licenses = (sorted(seen.held), sorted(seen.held & set(link.licenses)))
    reason = f"{REASON_PREFIX}: re-enabled in GoTo by hand; disabled again"
    return _plan(link, seen, Kind.DISABLE, {"active": (True, False)}, licenses, reason, evidence)


def _update_reason(changes: dict[str, tuple[Any, Any]], licenses: tuple[list[str], list[str]] | None) -> str:
    parts = []
    if "active" in changes:
        parts.append("disabled in GoTo by hand; enabled again")
    edited = sorted(short_name(p) for p in changes if p != "active")
    if edited:
        parts.append(f"changed in GoTo by hand: {', '.join(edited)}; set back")
    if licenses is not None:
        gone = sorted(set(licenses[1]) - set(licenses[0]))
        parts.append(f"licenses removed in GoTo by hand: {', '.join(gone)}; assigned again")
    return f"{REASON_PREFIX}: " + "; ".join(parts)


def _plan(
    link: Link,
    seen: Observed,
    kind: Kind,
    changes: dict[str, tuple[Any, Any]],
    licenses: tuple[list[str], list[str]] | None,
    reason: str,
    evidence: str = "",
) -> Plan:
    values = expected_values(link)
    user = SourceUser(
        link.entra_id,
        {"displayName": values.get("displayName")} if values.get("displayName") else {},
        assigned=link.active,
        evidence=evidence,
    )
    resource = seen.resource or {}
    return Plan(
        kind=kind,
        user=user,
        scope=Scope(in_scope=link.active, checks=(), reason="" if link.active else "disabled by gotosync"),
        link=link,
        target_id=link.goto_id,
        target_name=str(resource.get("userName") or values.get("userName") or ""),
        values=values,
        changes=changes,
        matched_by=link.matched_by,
        reason=reason,
        steps=(_step(link, seen, reason, changes, licenses, evidence),),
        evidence=evidence,
        licenses=licenses,
    )


def _step(
    link: Link,
    seen: Observed,
    reason: str,
    changes: dict[str, tuple[Any, Any]],
    licenses: tuple[list[str], list[str]] | None,
    evidence: str,
) -> ProvisioningStep:
    """The sweep's one processing step: what GoTo held (old) against what the link says (new)."""
    details: dict[str, Any] = {
        "goto": f"GoTo user {link.goto_id}, read at {seen.read_at.isoformat(timespec='seconds')}",
        "expected": "the values gotosync last exported"
        + (f" (at {link.applied_at.isoformat(timespec='seconds')})" if link.applied_at else ""),
    }
    for path, (old, new) in changes.items():
        details[path] = f"GoTo {old!r} -> {new!r}"
    if licenses is not None:
        details["licenses"] = f"GoTo {licenses[0]!r} -> {licenses[1]!r}"
    if evidence:
        details["evidence"] = evidence
    return ProvisioningStep(STEP, StepType.PROCESSING, Status.SUCCESS, reason, details)


def held_seats(licenses: Iterable[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """GoTo user key -> the license keys it holds, from the Admin API's license listing."""
    out: dict[str, set[str]] = {}
    for lic in licenses:
        key = lic.get("key")
        if key is None:
            continue
        for user_key in lic.get("userKeys") or ():
            out.setdefault(str(user_key), set()).add(str(key))
    return {user: frozenset(keys) for user, keys in out.items()}
