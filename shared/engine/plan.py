"""The pure heart of provisioning: scope a source user, then decide what GoTo should get.

`decide_scope` and `plan_user` do no I/O. Every path (full cycle, incremental cycle, webhook,
on demand, dry run) calls them, so every path decides the same way and logs the same steps.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from shared.engine.mapping import Mapping, evaluate
from shared.engine.scim_paths import get_value, has_value
from shared.model import Action, Link, ProvisioningStep, SourceUser, Status, StepType

USERNAME_MAX = 128
NAME_PART_MAX = 60


@dataclass(frozen=True)
class Policy:
    """The deprovisioning and scope rules an admin chooses (see docs/sync-engine.md)."""

    default_access_only: str = "skip"  # skip | provision
    skip_out_of_scope_deletions: bool = False
    hard_delete_action: str = "delete"  # delete | disable
    verified_domains: tuple[str, ...] = ()


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


@dataclass(frozen=True)
class Scope:
    in_scope: bool
    checks: tuple[ScopeCheck, ...]
    reason: str = ""

    @property
    def soft_deleted(self) -> bool:
        """Entra's IsSoftDeleted: unassigned, out of scope, blocked or in the recycle bin."""
        return not self.in_scope


def decide_scope(user: SourceUser, policy: Policy) -> Scope:
    """Entra's scope checks, in the order provision-on-demand shows them."""
    checks: list[ScopeCheck] = []
    active = not user.soft_deleted and not user.hard_deleted and user.account_enabled
    if user.hard_deleted:
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
    elif policy.default_access_only == "provision":
        has_role, role_detail = True, "Default Access (provisioned by setting)"
    else:
        has_role, role_detail = False, "not effectively entitled: only Default Access"
    checks.append(ScopeCheck("User has required role", has_role, role_detail))
    failed = [c for c in checks if not c.passed]
    reason = f"{failed[0].name}: {failed[0].detail}" if failed else ""
    return Scope(in_scope=not failed, checks=tuple(checks), reason=reason)


@dataclass
class Plan:
    """What one object should get, with the reason and the steps the log records."""

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
    steps: list[ProvisioningStep] = field(default_factory=list)
    staged: bool = False
    intended: Kind | None = None  # for a FAIL plan: the action that could not be taken

    @property
    def log_action(self) -> Action:
        if self.staged:
            return Action.STAGED_DELETE
        kind = self.intended if self.kind is Kind.FAIL and self.intended else self.kind
        return {
            Kind.CREATE: Action.CREATE,
            Kind.UPDATE: Action.UPDATE,
            Kind.ENABLE: Action.UPDATE,
            Kind.DISABLE: Action.DISABLE,
            Kind.DELETE: Action.DELETE,
        }.get(kind, Action.OTHER)

    @property
    def log_status(self) -> Status:
        if self.staged or self.kind in (Kind.SKIP, Kind.NONE):
            return Status.SKIPPED
        if self.kind is Kind.FAIL:
            return Status.FAILURE
        return Status.SUCCESS


@dataclass(frozen=True)
class Match:
    """The result of looking the user up in GoTo: by link, or by matching attributes."""

    target: dict[str, Any] | None
    matched_by: str = ""  # "link" or the matching target attribute
    tried: tuple[tuple[str, str, int], ...] = ()  # (attribute, value, hits)
    duplicates: int = 0
    link_lost: bool = False  # the linked GoTo object is gone (Entra: InvalidAnchor)


def validate_values(values: dict[str, Any], policy: Policy) -> tuple[str, str] | None:
    """GoTo's documented limits (reference/goto-api.md §4.3), checked before anything is sent."""
    user_name = values.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        return "MandatoryFieldsMissing", "userName is empty: the user has no userPrincipalName to map"
    if len(user_name) > USERNAME_MAX:
        return (
            "SchemaPropertyCanOnlyAcceptValue",
            f"userName is {len(user_name)} characters; GoTo accepts at most {USERNAME_MAX}",
        )
    if policy.verified_domains:
        domain = user_name.rpartition("@")[2].lower()
        if domain not in policy.verified_domains:
            return "InvalidDomain", f"the domain {domain!r} of userName is not a verified GoTo domain"
    for path in ("name.givenName", "name.familyName"):
        value = values.get(path)
        if isinstance(value, str) and len(value) > NAME_PART_MAX:
            return (
                "SchemaPropertyCanOnlyAcceptValue",
                f"{path} is {len(value)} characters; GoTo accepts at most {NAME_PART_MAX}",
            )
    return None


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


def plan_user(user: SourceUser, link: Link | None, match: Match, mapping: Mapping, policy: Policy) -> Plan:
    """Decides the action for one user. Pure: the same inputs always give the same plan."""
    scope = decide_scope(user, policy)
    plan = Plan(kind=Kind.NONE, user=user, scope=scope, link=link)
    plan.steps.append(
        ProvisioningStep(
            "EntryImport",
            StepType.IMPORT,
            Status.SUCCESS,
            f"Retrieved {user.display_name} from Microsoft Entra ID",
            {"id": user.id, "userPrincipalName": user.upn or ""},
        )
    )
    plan.steps.append(
        ProvisioningStep(
            "EntrySynchronizationScoping",
            StepType.SCOPING,
            Status.SUCCESS if scope.in_scope else Status.SKIPPED,
            "In scope" if scope.in_scope else f"Out of scope: {scope.reason}",
            {c.name: f"{'pass' if c.passed else 'fail'}: {c.detail}" for c in scope.checks},
        )
    )
    owned_target = match.target if (match.target is not None and (link is None or link.owned)) else None
    if match.target is not None:
        plan.target_id = str(match.target.get("id", ""))
        plan.target_name = str(match.target.get("userName", ""))
        plan.matched_by = match.matched_by
    elif link is not None:
        plan.target_id = link.goto_id
    plan.steps.append(_match_step(match))

    # Deprovisioning: only GoTo users that gotosync created or linked are ever touched.
    if not scope.in_scope:
        return _plan_out_of_scope(plan, user, link, owned_target, policy)

    if match.duplicates > 1:
        return _fail(plan, "DuplicateTargetEntries", f"{match.duplicates} GoTo users match {match.tried[-1][1]!r}")

    desired = evaluate(mapping, user, creating=owned_target is None, soft_deleted=False)
    plan.values = desired
    if owned_target is None and match.target is not None:
        return _skip(plan, "the matched GoTo user is not managed by gotosync")
    problem = validate_values(desired, policy)
    if problem is not None:
        code, reason = problem
        return _fail(plan, code, reason, intended=Kind.CREATE if owned_target is None else Kind.UPDATE)
    if owned_target is None:
        plan.kind = Kind.CREATE
        plan.changes = {path: (None, value) for path, value in desired.items()}
        plan.reason = "assigned and in scope; no matching GoTo user" + (
            " (the linked GoTo user was deleted outside gotosync)" if match.link_lost else ""
        )
        return _processing(plan)
    plan.changes = diff(desired, owned_target, link)
    if not plan.changes:
        plan.kind = Kind.NONE
        plan.reason = "already in sync"
    elif "active" in plan.changes and plan.changes["active"][1] is True:
        plan.kind = Kind.ENABLE
        plan.reason = "back in scope: re-enabled"
    else:
        plan.kind = Kind.UPDATE
        plan.reason = "attributes changed: " + ", ".join(sorted(_short(p) for p in plan.changes))
    return _processing(plan)


def _plan_out_of_scope(
    plan: Plan, user: SourceUser, link: Link | None, target: dict[str, Any] | None, policy: Policy
) -> Plan:
    if target is None or link is None:
        return _skip(plan, f"not provisioned: {plan.scope.reason}")
    if user.hard_deleted and policy.hard_delete_action == "delete":
        plan.kind = Kind.DELETE
        plan.reason = "permanently deleted in Entra"
        plan.changes = {}
        return _processing(plan)
    if policy.skip_out_of_scope_deletions and not user.hard_deleted:
        return _skip(plan, f"out of scope ({plan.scope.reason}); SkipOutOfScopeDeletions is on")
    current_active = get_value(target, "active") if has_value(target, "active") else link.active
    if current_active is False or (isinstance(current_active, str) and current_active.lower() == "false"):
        return _skip(plan, f"already disabled: {plan.scope.reason}")
    plan.kind = Kind.DISABLE
    plan.reason = plan.scope.reason
    plan.changes = {"active": (True, False)}
    return _processing(plan)


def _short(path: str) -> str:
    """`urn:…:enterprise:2.0:User:department` -> `department`, for one-line reasons."""
    return path.rpartition(":")[2] if path.startswith("urn:") else path


def _match_step(match: Match) -> ProvisioningStep:
    details = {f"{attr} eq {value!r}": f"{hits} hit(s)" for attr, value, hits in match.tried}
    if match.matched_by == "link":
        description = "Matched through the stored link"
    elif match.target is not None:
        description = f"Matched a GoTo user by {match.matched_by}"
    elif match.link_lost:
        description = "The linked GoTo user no longer exists (InvalidAnchor); no match by attributes"
    else:
        description = "No GoTo user matches"
    status = Status.FAILURE if match.duplicates > 1 else Status.SUCCESS
    return ProvisioningStep("EntryMatching", StepType.MATCHING, status, description, details)


def _processing(plan: Plan) -> Plan:
    plan.steps.append(
        ProvisioningStep(
            f"EntrySynchronization{plan.kind.value.capitalize()}",
            StepType.PROCESSING,
            Status.SUCCESS,
            plan.reason,
            {path: f"{old!r} -> {new!r}" for path, (old, new) in plan.changes.items()},
        )
    )
    return plan


def _skip(plan: Plan, reason: str) -> Plan:
    plan.kind = Kind.SKIP
    plan.reason = reason
    plan.steps.append(ProvisioningStep("EntrySynchronizationSkipped", StepType.PROCESSING, Status.SKIPPED, reason))
    return plan


def _fail(plan: Plan, code: str, reason: str, intended: Kind | None = None) -> Plan:
    plan.kind = Kind.FAIL
    plan.intended = intended
    plan.error_code = code
    plan.reason = reason
    plan.steps.append(ProvisioningStep("EntrySynchronizationError", StepType.PROCESSING, Status.FAILURE, reason))
    return plan
