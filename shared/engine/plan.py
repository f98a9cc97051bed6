"""The pure heart of provisioning: scope a source user, then decide what GoTo should get.

`decide_scope` and `plan_user` do no I/O. Every path (full cycle, incremental cycle, webhook,
on demand, dry run) calls them, so every path decides the same way and logs the same steps.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from shared.engine.evidence import deprovision_evidence
from shared.engine.licenses import DEFAULT_ACCESS, LicenseMap
from shared.mapping import MappingConfig, MappingError, ScopingFilter, SourceContext, evaluate_user, scope_check
from shared.model import (
    Action,
    DefaultAccessOnly,
    HardDeleteAction,
    Link,
    ProvisioningStep,
    SourceUser,
    Status,
    StepType,
)
from shared.scim.limits import user_problem
from shared.scim.paths import get_value, has_value, short_name
from shared.scim.resource import build_resource

REDACTED = "[Redact]"
# Error codes gotosync chose where Entra's list has no exact match (docs/sync-engine.md).
MAPPING_FAILED = "UnprocessableEntity"  # a mapping could not be evaluated for this user
NO_MATCHING_VALUE = "ImportSkipped"  # no value for any matching attribute (Entra's code)
LICENSE_NOT_FOUND = "LicenseNotFound"  # ROLE_LICENSES names a license the GoTo account lacks
SCOPE_UNDETERMINED = "ScopeUndetermined"  # a scoping clause could not be evaluated: no action
DELETION_UNCONFIRMED = "DeletionUnconfirmed"  # absent once: a delete waits for a confirming read
DUPLICATE_SOURCE = "DuplicateSourceEntries"  # the GoTo user found belongs to another Entra user


@dataclass(frozen=True)
class Policy:
    """The deprovisioning and scope rules an admin chooses (see docs/sync-engine.md)."""

    default_access_only: DefaultAccessOnly = DefaultAccessOnly.SKIP
    skip_out_of_scope_deletions: bool = False
    hard_delete_action: HardDeleteAction = HardDeleteAction.DELETE
    verified_domains: tuple[str, ...] = ()
    default_access_licensed: bool = False  # ROLE_LICENSES maps Default Access (""): it entitles


class Kind(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ENABLE = "enable"
    DISABLE = "disable"
    DELETE = "delete"
    NONE = "none"  # in step: nothing to write
    SKIP = "skip"  # not ours to touch, or not in scope and never provisioned
    FAIL = "fail"  # cannot be provisioned as it stands (bad data, duplicate targets)

    @property
    def writes(self) -> bool:
        return self in (Kind.CREATE, Kind.UPDATE, Kind.ENABLE, Kind.DISABLE, Kind.DELETE)

    @property
    def deprovisions(self) -> bool:
        return self in (Kind.DISABLE, Kind.DELETE)


@dataclass(frozen=True)
class ScopeCheck:
    name: str
    passed: bool
    detail: str = ""
    clauses: tuple[tuple[str, str], ...] = ()  # scoping filters: (clause, "pass/fail (value: …)")
    undetermined: str = ""  # why the check could not be decided (then `passed` is False)


@dataclass(frozen=True)
class Scope:
    in_scope: bool
    checks: tuple[ScopeCheck, ...]
    reason: str = ""

    @property
    def undetermined(self) -> str:
        """Why scope cannot be decided (a scoping clause that cannot be evaluated), or ""."""
        return next((c.undetermined for c in self.checks if c.undetermined), "")

    @property
    def soft_deleted(self) -> bool:
        """Entra's IsSoftDeleted: unassigned, out of scope, blocked or in the recycle bin."""
        return not self.in_scope


def decide_scope(user: SourceUser, policy: Policy, filters: tuple[ScopingFilter, ...] = ()) -> Scope:
    """Entra's scope checks, in the order provision-on-demand shows them; "Scoping filters" is
    a fourth check when the mapping has scoping filters."""
    checks: list[ScopeCheck] = []
    active = not user.soft_deleted and not user.hard_deleted and not user.absent_unconfirmed and user.account_enabled
    if user.absent_unconfirmed:
        detail = "absent from Graph; not yet confirmed deleted"
    elif user.hard_deleted:
        detail = "permanently deleted in Entra"
    elif user.soft_deleted:
        detail = "deleted in Entra (recycle bin)"
    elif not user.account_enabled:
        detail = "sign-in blocked (accountEnabled is false)"
    else:
        detail = "enabled"
    checks.append(ScopeCheck("Active in source system", active, detail))
    checks.append(
        ScopeCheck("Assigned to application", user.assigned, "assigned" if user.assigned else "not assigned to the app")
    )
    real_roles = sorted(r for r in user.roles if r)
    if not user.assigned:
        has_role, role_detail = False, "no role"
    elif real_roles:
        has_role, role_detail = True, ", ".join(real_roles)
    elif policy.default_access_only == DefaultAccessOnly.PROVISION:
        has_role, role_detail = True, "Default Access (provisioned by setting)"
    elif policy.default_access_licensed and DEFAULT_ACCESS in user.roles:
        has_role, role_detail = True, "Default Access (granted licenses by ROLE_LICENSES)"
    else:
        has_role, role_detail = False, "not effectively entitled: only Default Access"
    checks.append(ScopeCheck("User has required role", has_role, role_detail))
    if filters:
        checks.append(filter_check(user, filters))
    failed = [c for c in checks if not c.passed]
    reason = f"{failed[0].name}: {failed[0].detail}" if failed else ""
    return Scope(in_scope=not failed, checks=tuple(checks), reason=reason)


def filter_check(user: SourceUser, filters: tuple[ScopingFilter, ...]) -> ScopeCheck:
    """Entra's attribute-based scoping: clauses AND-ed within a filter, filters OR-ed. Every
    clause's result and the value it saw go into the log's scoping step.

    A clause that cannot be evaluated (the regular-expression guard refuses the value) is
    neither true nor false: a filter with such a clause and no false one is undecided, and when
    no filter passes and one is undecided, so is the check. Nobody leaves scope on a guess."""
    _, results = scope_check(filters, user.attributes)
    clauses: list[tuple[str, str]] = []
    outcomes: list[bool | None] = []  # per filter: True, False or None (undecided)
    failing: list[str] = []
    errors: list[str] = []
    position = 0
    for i, flt in enumerate(filters):
        label = f"filter {i + 1}" + (f" ({flt.name})" if flt.name else "")
        mine = results[position : position + len(flt.clauses)]
        position += len(flt.clauses)
        for r in mine:
            c = r.clause
            text = f"{c.attribute} {c.operator}" + (f" {c.value!r}" if c.value else "")
            verdict = "cannot evaluate: " + r.error if r.error else ("pass" if r.passed else "fail")
            clauses.append((f"{label}: {text}", f"{verdict} (value: {r.actual!r})"))
            if r.error:
                errors.append(f"{label}: {text} cannot be evaluated ({r.error})")
            elif not r.passed:
                failing.append(f"{text} is false (value: {r.actual!r})")
        outcomes.append(_filter_outcome(mine))
    return _filter_verdict(filters, outcomes, tuple(clauses), failing, errors)


def _filter_outcome(results: list[Any]) -> bool | None:
    if not results or any(not r.passed and not r.error for r in results):
        return False
    return True if all(r.passed for r in results) else None


def _filter_verdict(
    filters: tuple[ScopingFilter, ...],
    outcomes: list[bool | None],
    clauses: tuple[tuple[str, str], ...],
    failing: list[str],
    errors: list[str],
) -> ScopeCheck:
    if True in outcomes:
        i = outcomes.index(True)
        label = f"filter {i + 1}" + (f" ({filters[i].name})" if filters[i].name else "")
        return ScopeCheck("Scoping filters", True, f"passes {label}", clauses)
    if None in outcomes:
        why = "; ".join(dict.fromkeys(errors))
        return ScopeCheck("Scoping filters", False, f"cannot be evaluated: {why}", clauses, undetermined=why)
    failed = "fails every scoping filter: " + "; ".join(dict.fromkeys(failing))
    return ScopeCheck("Scoping filters", False, failed, clauses)


@dataclass(frozen=True)
class Plan:
    """What one user should get, with the reason and the steps the log records. Frozen: the
    gate decides whether it is exported (shared/engine/gate.py) and the exporter says what came
    of it (shared/engine/export.py); neither changes the plan."""

    kind: Kind
    user: SourceUser
    scope: Scope
    link: Link | None = None
    target_id: str = ""
    target_name: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # every mapped value (create body / PUT)
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # path -> (old, new)
    matched_by: str = ""
    reason: str = ""
    error_code: str = ""
    steps: tuple[ProvisioningStep, ...] = ()
    intended: Kind | None = None  # for a FAIL plan: the action that could not be taken
    evidence: str = ""  # what a disable or delete rests on (logged with it; docs/safety.md)
    # GoTo licenses (ROLE_LICENSES): (held, wanted) license keys when a change is to be made
    # through the Admin API after the SCIM write; None = no license call.
    licenses: tuple[list[str], list[str]] | None = None
    redacted: tuple[str, ...] = ()  # targets the log shows as [Redact]

    @property
    def log_action(self) -> Action:
        kind = self.intended if self.kind is Kind.FAIL and self.intended else self.kind
        return {
            Kind.CREATE: Action.CREATE,
            Kind.UPDATE: Action.UPDATE,
            Kind.ENABLE: Action.UPDATE,
            Kind.DISABLE: Action.DISABLE,
            Kind.DELETE: Action.DELETE,
        }.get(kind, Action.OTHER)

    def shown(self, path: str, value: Any) -> Any:
        """A value as the log may show it (Redact() mappings hide theirs)."""
        return REDACTED if path in self.redacted and value is not None else value

    def shown_changes(self) -> list[tuple[str, Any, Any]]:
        """(attribute, old, new) as logs and reports show them: Redact() values hidden, and a
        license change listed as `licenses`."""
        out = [(path, self.shown(path, old), self.shown(path, new)) for path, (old, new) in self.changes.items()]
        if self.licenses is not None:
            out.append(("licenses", list(self.licenses[0]), list(self.licenses[1])))
        return out

    @property
    def log_status(self) -> Status:
        if self.kind in (Kind.SKIP, Kind.NONE):
            return Status.SKIPPED
        if self.kind is Kind.FAIL:
            return Status.FAILURE
        return Status.SUCCESS


@dataclass
class _Draft:
    """The plan while plan_user builds it; frozen into a Plan at the end."""

    kind: Kind
    user: SourceUser
    scope: Scope
    link: Link | None = None
    target_id: str = ""
    target_name: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    matched_by: str = ""
    reason: str = ""
    error_code: str = ""
    steps: list[ProvisioningStep] = field(default_factory=list)
    intended: Kind | None = None
    evidence: str = ""
    licenses: tuple[list[str], list[str]] | None = None
    redacted: list[str] = field(default_factory=list)

    def shown(self, path: str, value: Any) -> Any:
        return REDACTED if path in self.redacted and value is not None else value

    def freeze(self) -> Plan:
        return Plan(
            kind=self.kind,
            user=self.user,
            scope=self.scope,
            link=self.link,
            target_id=self.target_id,
            target_name=self.target_name,
            values=self.values,
            changes=self.changes,
            matched_by=self.matched_by,
            reason=self.reason,
            error_code=self.error_code,
            steps=tuple(self.steps),
            intended=self.intended,
            evidence=self.evidence,
            licenses=self.licenses,
            redacted=tuple(self.redacted),
        )


@dataclass(frozen=True)
class Match:
    """The result of looking the user up in GoTo: by link, or by matching attributes."""

    target: dict[str, Any] | None
    matched_by: str = ""  # "link" or the matching target attribute
    tried: tuple[tuple[str, str, int], ...] = ()  # (attribute, value, hits)
    duplicates: int = 0
    link_lost: bool = False  # the linked GoTo object is gone (Entra: InvalidAnchor)
    no_value: bool = False  # the user has no value for any matching attribute (Entra: ImportSkipped)
    error: tuple[str, str] | None = None  # (code, reason): a lookup GoTo refused
    claimed_by: str = ""  # the GoTo user found belongs to this other Entra user: never taken over
    # `target` is the GoTo user as gotosync last left it, rebuilt from the link (values last
    # exported, `active`), not read from GoTo: incremental and targeted runs (matching.py).
    rebuilt: bool = False


def diff(desired: dict[str, Any], target: dict[str, Any], link: Link | None) -> dict[str, tuple[Any, Any]]:
    """Changed attributes only. Where GoTo does not return an attribute (it may drop
    externalId or the enterprise extension), the last value we sent stands in for it, so an
    attribute GoTo ignores does not cause an update in every cycle."""
    exported = link.exported if link else {}
    changes: dict[str, tuple[Any, Any]] = {}
    for path, new in desired.items():
        if has_value(target, path):
            old = get_value(target, path)
        elif path in exported:
            old = exported[path]
        else:
            old = None
        if not _same(old, new, path):
            changes[path] = (old, new)
    return changes


def _same(old: Any, new: Any, path: str) -> bool:
    if isinstance(old, str) and isinstance(new, str) and path == "userName":
        return old.lower() == new.lower()
    if isinstance(new, bool) and isinstance(old, str):
        return old.lower() == str(new).lower()
    return bool(old == new)


def plan_user(
    user: SourceUser,
    link: Link | None,
    match: Match,
    mapping: MappingConfig,
    policy: Policy,
    licenses: LicenseMap | None = None,
) -> Plan:
    """Decides the action for one user. Pure: the same inputs always give the same plan.
    `licenses` is ROLE_LICENSES resolved for this cycle; None = licenses are not managed."""
    return _draft_user(user, link, match, mapping, policy, licenses).freeze()


def _draft_user(
    user: SourceUser,
    link: Link | None,
    match: Match,
    mapping: MappingConfig,
    policy: Policy,
    licenses: LicenseMap | None,
) -> _Draft:
    """Import, scope and match steps, then what the evidence allows: held back, deprovisioned
    (out of scope), refused (a match problem), or provisioned (in scope)."""
    plan = _imported(user, link, match, decide_scope(user, policy, mapping.scoping))
    owned_target = match.target if (match.target is not None and (link is None or link.owned)) else None
    held = _held_back(plan, user, link, match)
    if held is not None:
        return held
    # Deprovisioning: only GoTo users that gotosync created or linked are ever touched.
    if not plan.scope.in_scope:
        return _plan_out_of_scope(plan, user, link, owned_target, policy, licenses)
    if match.duplicates > 1:
        return _fail(plan, "DuplicateTargetEntries", f"{match.duplicates} GoTo users match {match.tried[-1][1]!r}")
    if match.error is not None:
        return _fail(plan, *match.error)
    return _plan_in_scope(plan, match, owned_target, mapping, policy, licenses)


def _imported(user: SourceUser, link: Link | None, match: Match, scope: Scope) -> _Draft:
    """The plan's first three steps (EntryImport, scoping, EntryMatching) and its target."""
    plan = _Draft(kind=Kind.NONE, user=user, scope=scope, link=link)
    plan.steps.append(
        ProvisioningStep(
            "EntryImport",
            StepType.IMPORT,
            Status.SUCCESS,
            f"Retrieved {user.display_name} from Microsoft Entra ID",
            {"id": user.id, "userPrincipalName": user.upn or ""},
        )
    )
    details = {c.name: f"{'pass' if c.passed else 'fail'}: {c.detail}" for c in scope.checks}
    for check in scope.checks:
        details.update(dict(check.clauses))
    plan.steps.append(
        ProvisioningStep(
            "EntrySynchronizationScoping",
            StepType.SCOPING,
            Status.SUCCESS if scope.in_scope else Status.SKIPPED,
            "In scope" if scope.in_scope else f"Out of scope: {scope.reason}",
            details,
        )
    )
    if match.target is not None:
        plan.target_id = str(match.target.get("id", ""))
        plan.target_name = str(match.target.get("userName", ""))
        plan.matched_by = match.matched_by
    elif link is not None:
        plan.target_id = link.goto_id
    plan.steps.append(_match_step(match))
    return plan


def _plan_in_scope(
    plan: _Draft,
    match: Match,
    owned_target: dict[str, Any] | None,
    mapping: MappingConfig,
    policy: Policy,
    licenses: LicenseMap | None,
) -> _Draft:
    """An in-scope user: the mapped values, GoTo's limits and licenses, then create or update."""
    user = plan.user
    intended = Kind.CREATE if owned_target is None else Kind.UPDATE
    result = evaluate_user(
        mapping,
        SourceContext(
            attributes=user.attributes,
            object_id=user.id,
            is_soft_deleted=False,
            app_roles=tuple(sorted(user.roles)),
            creating=owned_target is None,
        ),
    )
    plan.redacted = list(result.redacted)
    if result.errors:
        return _fail(plan, MAPPING_FAILED, _mapping_errors(result.errors), intended=intended)
    plan.values = result.values
    refused = _not_creatable(plan, match, owned_target, mapping)
    if refused is not None:
        return refused
    problem = user_problem(build_resource(plan.values), verified_domains=policy.verified_domains)
    if problem is not None:
        return _fail(plan, *problem, intended=intended)
    wanted: list[str] | None = None
    if licenses is not None:
        wanted, missing = licenses.wanted(user.roles)
        if missing:
            return _fail(plan, LICENSE_NOT_FOUND, _missing_licenses(user, licenses, missing), intended=intended)
    if owned_target is None:
        return _plan_create(plan, match, wanted)
    return _plan_update(plan, owned_target, wanted)


def _not_creatable(
    plan: _Draft, match: Match, owned_target: dict[str, Any] | None, mapping: MappingConfig
) -> _Draft | None:
    if owned_target is None and match.target is not None:
        return _skip(plan, "the matched GoTo user is not managed by gotosync")
    if owned_target is None and match.no_value:
        names = ", ".join(m.target for m in mapping.matching())
        return _skip(
            plan,
            f"no value for any matching attribute ({names}): the user cannot be matched with GoTo",
            code=NO_MATCHING_VALUE,
        )
    return None


def _plan_create(plan: _Draft, match: Match, wanted: list[str] | None) -> _Draft:
    plan.kind = Kind.CREATE
    plan.changes = {path: (None, value) for path, value in plan.values.items()}
    plan.reason = "assigned and in scope; no matching GoTo user" + (
        " (the linked GoTo user was deleted outside gotosync)" if match.link_lost else ""
    )
    if wanted:
        plan.licenses = ([], wanted)
    return _processing(plan)


def _plan_update(plan: _Draft, owned_target: dict[str, Any], wanted: list[str] | None) -> _Draft:
    link = plan.link
    plan.changes = diff(plan.values, owned_target, link)
    held = _held_seats(link) if link is not None else []
    # An unfinished create or seat change may have left other seats than the link records: set
    # them anyway.
    unknown = link is not None and _seats_unknown(link)
    if wanted is not None and (wanted != held or unknown):
        plan.licenses = (held, wanted)
    if not plan.changes and plan.licenses is None:
        plan.kind, plan.reason = Kind.NONE, "already in sync"
    elif "active" in plan.changes and plan.changes["active"][1] is True:
        plan.kind, plan.reason = Kind.ENABLE, "back in scope: re-enabled"
    elif plan.changes:
        plan.kind = Kind.UPDATE
        plan.reason = "attributes changed: " + ", ".join(sorted(short_name(p) for p in plan.changes))
    else:
        plan.kind, plan.reason = Kind.UPDATE, "licenses changed"
    if plan.licenses is not None and plan.changes:
        plan.reason += "; licenses changed"
    return _processing(plan)


def _held_back(plan: _Draft, user: SourceUser, link: Link | None, match: Match) -> _Draft | None:
    """Nothing is decided for a user whose state is not known well enough: absent once (a
    delete waits for a confirming read), a scoping clause that cannot be evaluated, or a GoTo
    user that belongs to another Entra user."""
    if user.absent_unconfirmed:
        if link is None:
            return _skip(plan, f"not provisioned: {user.evidence}")
        return _skip(
            plan,
            f"{user.evidence}: nothing is deleted until a second read after the confirmation delay agrees",
            code=DELETION_UNCONFIRMED,
        )
    if plan.scope.undetermined:
        return _skip(
            plan, f"scope cannot be decided, so nothing is done: {plan.scope.undetermined}", SCOPE_UNDETERMINED
        )
    if match.claimed_by:
        found = match.tried[-1] if match.tried else ("", "", 0)
        return _fail(
            plan,
            DUPLICATE_SOURCE,
            f"the GoTo user found by {found[0]} {found[1]!r} belongs to Entra user {match.claimed_by}; "
            "it is never taken over (check the mapping of the matching attributes)",
        )
    return None


def failed_read(user: SourceUser, link: Link | None, code: str, reason: str) -> Plan:
    """The plan of a user who could not be read: it fails (and is escrowed); nothing about it
    is decided, least of all a disable or a delete."""
    scope = Scope(False, (), reason="not read")
    plan = _Draft(kind=Kind.NONE, user=user, scope=scope, link=link, target_id=link.goto_id if link else "")
    plan.steps.append(
        ProvisioningStep("EntryImport", StepType.IMPORT, Status.FAILURE, reason, {"id": user.id, "code": code})
    )
    return _fail(plan, code, reason).freeze()


def _mapping_errors(errors: list[MappingError]) -> str:
    parts = [f"the mapping for {e.mapping} failed: {e.problem}" for e in errors]
    return "; ".join(parts)


def _seats_unknown(link: Link) -> bool:
    """The link cannot say which seats the GoTo user holds: a create intent, or a seat change
    whose Admin API call may have landed without its link write."""
    return not link.live or link.seats_pending is not None


def _held_seats(link: Link) -> list[str]:
    """The seats the user may hold: the link's, and those of a seat change that did not finish."""
    return sorted(set(link.licenses) | set(link.seats_pending or ()))


def _missing_licenses(user: SourceUser, licenses: LicenseMap, missing: list[str]) -> str:
    roles = sorted(r for r in user.roles if set(licenses.unknown.get(r, ())) & set(missing))
    shown = ", ".join(repr(r) if r else "Default Access" for r in roles)
    known = "; ".join(licenses.known) or "none"
    return (
        f"ROLE_LICENSES maps {shown} to {', '.join(repr(m) for m in missing)}, which is neither the key nor a "
        f"product of any license of the GoTo account (licenses: {known})"
    )


def _plan_out_of_scope(
    plan: _Draft,
    user: SourceUser,
    link: Link | None,
    target: dict[str, Any] | None,
    policy: Policy,
    licenses: LicenseMap | None,
) -> _Draft:
    if target is None or link is None:
        return _skip(plan, f"not provisioned: {plan.scope.reason}")
    plan.evidence = deprovision_evidence(user, plan.scope.reason)
    if user.hard_deleted and policy.hard_delete_action == HardDeleteAction.DELETE:
        plan.kind = Kind.DELETE
        plan.reason = "permanently deleted in Entra"
        plan.changes = {}
        return _processing(plan)
    if policy.skip_out_of_scope_deletions and not user.hard_deleted:
        return _skip(plan, f"out of scope ({plan.scope.reason}); SkipOutOfScopeDeletions is on")
    # Seats to release: the ones the link says it holds; and when the link is only a create
    # intent or a seat change did not finish (a run died before it saved what it assigned),
    # whatever the user may hold.
    unknown = _seats_unknown(link)
    release = (_held_seats(link), []) if licenses is not None and (link.licenses or unknown) else None
    current_active = get_value(target, "active") if has_value(target, "active") else link.active
    if current_active is False or (isinstance(current_active, str) and current_active.lower() == "false"):
        if release is None or (unknown and not link.licenses and link.exported.get("active") is False):
            return _skip(plan, f"already disabled: {plan.scope.reason}")
        # Disabled, but a seat is still held (its release failed before): release it now.
        plan.kind = Kind.DISABLE
        plan.reason = f"already disabled ({plan.scope.reason}); releasing its licenses"
        plan.changes = {}
        plan.licenses = release
        return _processing(plan)
    plan.kind = Kind.DISABLE
    plan.reason = plan.scope.reason
    plan.changes = {"active": (True, False)}
    plan.licenses = release
    return _processing(plan)


def _match_step(match: Match) -> ProvisioningStep:
    details = {f"{attr} eq {value!r}": f"{hits} hit(s)" for attr, value, hits in match.tried}
    if match.matched_by == "link" and match.rebuilt:
        description = "Matched through the stored link; compared with the values gotosync last sent"
    elif match.matched_by == "link":
        description = "Matched through the stored link"
    elif match.target is not None:
        description = f"Matched a GoTo user by {match.matched_by}"
    elif match.link_lost:
        description = "The linked GoTo user no longer exists (InvalidAnchor); no match by attributes"
    elif match.no_value:
        description = "No value for any matching attribute: nothing to look up"
    else:
        description = "No GoTo user matches"
    if match.error is not None:
        description = match.error[1]
    status = Status.FAILURE if match.duplicates > 1 or match.error is not None else Status.SUCCESS
    return ProvisioningStep("EntryMatching", StepType.MATCHING, status, description, details)


def _processing(plan: _Draft) -> _Draft:
    details = {
        path: f"{plan.shown(path, old)!r} -> {plan.shown(path, new)!r}" for path, (old, new) in plan.changes.items()
    }
    if plan.licenses is not None:
        details["licenses"] = f"{plan.licenses[0]!r} -> {plan.licenses[1]!r}"
    if plan.evidence and plan.kind.deprovisions:
        details["evidence"] = plan.evidence
    plan.steps.append(
        ProvisioningStep(
            f"EntrySynchronization{plan.kind.value.capitalize()}",
            StepType.PROCESSING,
            Status.SUCCESS,
            plan.reason,
            details,
        )
    )
    return plan


def _skip(plan: _Draft, reason: str, code: str = "") -> _Draft:
    plan.kind = Kind.SKIP
    plan.reason = reason
    plan.error_code = code
    plan.steps.append(ProvisioningStep("EntrySynchronizationSkipped", StepType.PROCESSING, Status.SKIPPED, reason))
    return plan


def _fail(plan: _Draft, code: str, reason: str, intended: Kind | None = None) -> _Draft:
    plan.kind = Kind.FAIL
    plan.intended = intended
    plan.error_code = code
    plan.reason = reason
    plan.steps.append(ProvisioningStep("EntrySynchronizationError", StepType.PROCESSING, Status.FAILURE, reason))
    return plan
