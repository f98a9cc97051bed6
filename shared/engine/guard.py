"""The guards above the evidence, as pure decisions (docs/safety.md):

- the deletion threshold: a run's disables and deletes are held (staged) when they exceed the
  absolute threshold (Entra's accidental-deletions guard) or a share of the users gotosync
  manages (our addition: a 415-user tenant losing 384 users is held at 10%, not at 500);
- the failure share: a cycle in which more than 40% of the objects it tried to write failed
  quarantines the job, as Entra's EncounteredEscrowProportionThreshold does.
"""

from __future__ import annotations

from dataclasses import dataclass

DELETION_QUARANTINE = "DeletionThresholdExceeded"
FAILURE_QUARANTINE = "EncounteredEscrowProportionThreshold"
# The relative guard counts only runs with more than this many disables/deletes: in a tenant
# of 20 users, unassigning 3 people is an admin's everyday work, not an accident.
RELATIVE_MINIMUM = 5
FAILURE_SHARE = 0.40  # Entra: quarantined when more than 40% of a cycle's objects failed
FAILURE_MINIMUM = 10  # ...over at least this many attempted objects (one failure in two is noise)


@dataclass(frozen=True)
class DeletionGuard:
    absolute: int  # DELETION_THRESHOLD; 0 = off
    percent: float  # DELETION_THRESHOLD_PERCENT of the managed users; 0 = off

    def describe(self, managed: int) -> str:
        parts = [f"absolute {self.absolute}" if self.absolute > 0 else "absolute off"]
        if self.percent > 0:
            parts.append(f"relative {self.percent:g}% of {managed} managed users (more than {RELATIVE_MINIMUM})")
        else:
            parts.append("relative off")
        return ", ".join(parts)

    def exceeded(self, deprovisions: int, managed: int) -> str | None:
        """Why `deprovisions` disables/deletes in one run must be held, or None."""
        if deprovisions <= 0:
            return None
        if self.absolute > 0 and deprovisions > self.absolute:
            return f"{deprovisions} disables/deletes in this run exceed the deletion threshold of {self.absolute}"
        if self.percent > 0 and deprovisions > RELATIVE_MINIMUM and deprovisions * 100 > self.percent * managed:
            share = 100.0 * deprovisions / managed if managed else 100.0
            return (
                f"{deprovisions} disables/deletes in this run are {share:.0f}% of the {managed} users gotosync "
                f"manages, above DELETION_THRESHOLD_PERCENT={self.percent:g}%"
            )
        return None


def failure_quarantine(failures: int, attempted: int) -> str | None:
    """The quarantine reason when a cycle's failure share is above Entra's rule, else None."""
    if attempted < FAILURE_MINIMUM or failures * 1.0 <= FAILURE_SHARE * attempted:
        return None
    return (
        f"{FAILURE_QUARANTINE}: {failures} of the {attempted} objects this cycle tried to write failed "
        f"({100.0 * failures / attempted:.0f}%, above {FAILURE_SHARE:.0%}); see the provisioning logs for the "
        "error codes, fix the cause, then restart"
    )


def duplicate_names(wanted: list[tuple[str, str]], taken: dict[str, str], shown: int = 5) -> str:
    """The userNames a plan would give to more than one Entra user, described with the users,
    or "" when there are none. `wanted`: (Entra id, userName) of the users planned in scope;
    `taken`: userName (casefolded) -> Entra id of linked users outside the plan."""
    owners: dict[str, set[str]] = {}
    spelled: dict[str, str] = {}
    for entra_id, name in wanted:
        key = name.casefold()
        owners.setdefault(key, set()).add(entra_id)
        spelled.setdefault(key, name)
        if key in taken:
            owners[key].add(taken[key])
    clashes = sorted((key, ids) for key, ids in owners.items() if len(ids) > 1)
    if not clashes:
        return ""
    parts = [f"{spelled[key]!r} for {', '.join(sorted(ids)[:shown])}" for key, ids in clashes[:shown]]
    more = f" (and {len(clashes) - shown} more names)" if len(clashes) > shown else ""
    return "; ".join(parts) + more
