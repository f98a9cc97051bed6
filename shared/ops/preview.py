"""`gotosync mapping preview USER`: what the mapping makes of one Entra user, attribute by
attribute (the source values each mapping reads and the value GoTo would get), with the scope
checks and the action a cycle would take. Reads only: the user goes through the engine's
pipeline as a dry run (Graph and GoTo reads, no write, no log entry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.engine.effects import Record
from shared.engine.gate import NOTHING
from shared.engine.plan import REDACTED, Match, plan_user
from shared.mapping import AttributeMapping, MappingConfig, SourceContext, evaluate_user
from shared.model import Initiator, SourceUser
from shared.ops.on_demand import Resolved, resolve_user
from shared.runtime import Runtime


@dataclass
class AttributePreview:
    target: str
    kind: str
    source: str  # the source attribute, the expression or the constant, as written
    source_values: dict[str, Any]
    result: Any = None
    status: str = "sent"  # sent | not sent (null) | cleared | only on create | error
    error: str = ""

    def document(self) -> dict[str, Any]:
        doc = {
            "target": self.target,
            "type": self.kind,
            "source": self.source,
            "sourceValues": self.source_values,
            "result": self.result,
            "status": self.status,
        }
        if self.error:
            doc["error"] = self.error
        return doc


@dataclass
class Preview:
    requested: Resolved
    plan: Record
    creating: bool
    attributes: list[AttributePreview] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "user": {
                **self.requested.document(),
                "userPrincipalName": plan.user.upn,
                "roles": sorted(plan.user.roles),
            },
            "creating": self.creating,
            "inScope": plan.scope.in_scope,
            "scope": [{"check": c.name, "passed": c.passed, "detail": c.detail} for c in plan.scope.checks],
            "action": plan.log_action.value,
            "status": plan.log_status.value,
            "errorCode": plan.error_code,
            "reason": plan.reason,
            "licenses": None if plan.licenses is None else {"held": plan.licenses[0], "wanted": plan.licenses[1]},
            "attributes": [a.document() for a in self.attributes],
        }


def _shown_source(m: AttributeMapping) -> str:
    if m.kind == "direct":
        return m.source
    if m.kind == "expression":
        return m.expression
    if m.kind == "constant":
        return repr(m.constant)
    return "(none)"


def attribute_previews(config: MappingConfig, ctx: SourceContext) -> list[AttributePreview]:
    """Each mapping on its own: the sources it reads (their values) and its result."""
    out: list[AttributePreview] = []
    for m in config.users:
        sources = {name: ctx.read(name) for name in dict.fromkeys(m.sources())}
        item = AttributePreview(m.target, m.kind, _shown_source(m), sources)
        if m.apply == "create" and not ctx.creating:
            item.status = "only on create"
            out.append(item)
            continue
        result = evaluate_user(MappingConfig(users=(m,)), ctx)
        if result.errors:
            item.status, item.error = "error", result.errors[0].problem
        elif m.target in result.values:
            value = result.values[m.target]
            item.result = value
            item.status = "cleared" if value is None else "sent"
        else:
            item.status = "not sent (null)"
        if m.target in result.redacted:
            item.result = REDACTED if item.result is not None else None
            item.source_values = {name: REDACTED for name in sources}
        out.append(item)
    return out


async def preview_user(rt: Runtime, given: str) -> Preview:
    requested = await resolve_user(rt.reader, given)
    engine = rt.engine
    result = await engine.sync_users([requested.id], initiated_by=Initiator.CLI, dry_run=True)
    plan = next((p for p in result.plans if p.user.id == requested.id), None)
    if plan is None:
        # Neither assigned nor linked: the pipeline drops the user; plan it once for its scope.
        attrs = await rt.reader.get_user(requested.id, engine.select)
        source = SourceUser(requested.id, attrs or {"id": requested.id}, soft_deleted=attrs is None)
        plan = Record(plan_user(source, None, Match(None), engine.mapping, engine.policy), NOTHING)
    creating = plan.link is None and not plan.target_id
    user = plan.user
    ctx = SourceContext(
        attributes=user.attributes,
        object_id=user.id,
        is_soft_deleted=not plan.scope.in_scope,
        app_roles=tuple(sorted(user.roles)),
        creating=creating,
    )
    return Preview(requested, plan, creating, attribute_previews(engine.mapping, ctx))
