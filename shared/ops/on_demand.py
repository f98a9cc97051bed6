"""Provision on demand (docs/reference/entra-provisioning.md#provision-on-demand): one user, or
every member of one group, through the pipeline now, showing each step the provisioning log
records.

Departures from Entra's limits, on purpose: any group size; works while the
scheduler runs (SyncEngine.sync_users takes no lease: a write based on an older read than the
last one applied is dropped) and whatever the job's on/off state, as Entra's does; and a dry
run that plans without writing.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from shared.engine.cycle import CycleResult
from shared.engine.effects import Record
from shared.engine.gate import NOTHING
from shared.engine.plan import Match, plan_user
from shared.entra.reader import EntraReader, GraphReadError
from shared.fanout import bounded
from shared.model import Initiator, SourceUser, StepType
from shared.ops import InvalidInput, NotFound
from shared.ops.identifiers import group_identifier, on_demand_target, user_identifier
from shared.ops.report import plan_document
from shared.runtime import Runtime

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
LOOKUP_SELECT = ["id", "displayName", "userPrincipalName", "mail"]


@dataclass(frozen=True)
class Resolved:
    """The Entra object an admin named, and how the name was resolved."""

    kind: str  # "user" | "group"
    given: str
    id: str
    display_name: str
    resolved_by: str  # "id", "userPrincipalName", "mail", "displayName"

    def document(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "given": self.given,
            "id": self.id,
            "displayName": self.display_name,
            "resolvedBy": self.resolved_by,
        }


def _odata_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _get(reader: EntraReader, builder: Any, what: str, config: Any = None) -> dict[str, Any]:
    # EntraReader has no lookup by mail or by group name; its one GET keeps errors worded the same.
    return await reader._get(builder, what, config)


async def resolve_user(reader: EntraReader, given: str) -> Resolved:
    """By object id or UPN (`GET /users/{key}`), else by mail (`$filter=mail eq '…'`)."""
    key = user_identifier(given)
    if GUID.match(key) or "@" in key:
        attrs = await reader.get_user(key, LOOKUP_SELECT)
        if attrs is not None:
            by = "id" if GUID.match(key) else "userPrincipalName"
            return Resolved("user", given, attrs["id"], str(attrs.get("displayName") or key), by)
    if "@" in key:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"mail eq {_odata_literal(key)}", select=LOOKUP_SELECT, top=2
        )
        page = await _get(
            reader, reader.client.users, f"search of users by mail {key}", RequestConfiguration(query_parameters=query)
        )
        hits = [u for u in page.get("value") or [] if u.get("id")]
        if len(hits) > 1:
            raise InvalidInput("user", f"more than one user has the mail {key!r}: give the UPN or the object id")
        if hits:
            u = hits[0]
            return Resolved("user", given, str(u["id"]), str(u.get("displayName") or key), "mail")
    raise NotFound(f"no Entra user has the object id, userPrincipalName or mail {key!r}")


async def resolve_group(reader: EntraReader, given: str) -> Resolved:
    """By object id (`GET /groups/{id}`), else by display name (`$filter=displayName eq '…'`)."""
    key = group_identifier(given)
    if GUID.match(key):
        query = GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=["id", "displayName"])
        try:
            group = await _get(
                reader,
                reader.client.groups.by_group_id(key),
                f"read of group {key}",
                RequestConfiguration(query_parameters=query),
            )
        except GraphReadError as exc:
            if exc.status != 404:
                raise
            raise NotFound(f"no Entra group has the object id {key}") from None
        return Resolved("group", given, str(group["id"]), str(group.get("displayName") or key), "id")
    query_by_name = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
        filter=f"displayName eq {_odata_literal(key)}", select=["id", "displayName"], top=2
    )
    page = await _get(
        reader,
        reader.client.groups,
        f"search of groups named {key}",
        RequestConfiguration(query_parameters=query_by_name),
    )
    hits = [g for g in page.get("value") or [] if g.get("id")]
    if len(hits) > 1:
        raise InvalidInput("group", f"more than one group is named {key!r}: give the group's object id")
    if not hits:
        raise NotFound(f"no Entra group has the object id or display name {key!r}")
    return Resolved("group", given, str(hits[0]["id"]), str(hits[0].get("displayName") or key), "displayName")


@dataclass
class OnDemandResult:
    requested: Resolved
    result: CycleResult
    members: int | None = None  # for a group: how many users it has
    # Users the engine skipped without a plan (never provisioned and not in scope): planned
    # here with the engine's own pure function, to show the scope checks that failed.
    out_of_scope: list[Record] = field(default_factory=list)

    @property
    def dry_run(self) -> bool:
        return self.result.dry_run

    def objects(self) -> list[tuple[Record, bool]]:
        """(plan, went through the engine) in a stable order."""
        pairs = [(p, True) for p in self.result.plans] + [(p, False) for p in self.out_of_scope]
        return sorted(pairs, key=lambda pair: (pair[0].user.upn or pair[0].user.id).lower())

    def document(self) -> dict[str, Any]:
        objects = []
        counts: Counter[str] = Counter()
        for plan, engine in self.objects():
            executed = engine and not self.dry_run
            doc = plan_document(plan, executed=executed)
            # An on-demand run logs every decision, "already in sync" included; out-of-scope users
            # it never provisioned are not logged at all (nothing was decided about them).
            doc["logged"] = bool(executed)
            doc["steps"] = [
                {
                    "step": n,
                    "name": s.name,
                    "type": s.step_type.value,
                    "status": s.status.value,
                    "description": s.description,
                    "details": s.details,
                }
                for n, s in enumerate(plan.steps, start=1)
            ]
            counts[f"{doc['action']}/{doc['status']}"] += 1
            objects.append(doc)
        by_action: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        for key, n in counts.items():
            action, status = key.split("/")
            by_action[action] += n
            by_status[status] += n
        doc = {
            "cycleId": self.result.cycle_id,
            "dryRun": self.dry_run,
            "initiatedBy": Initiator.ON_DEMAND.value,
            "requested": self.requested.document(),
            "countsByAction": dict(sorted(by_action.items())),
            "countsByStatus": dict(sorted(by_status.items())),
            "staged": self.result.staged,
            "durationSeconds": round(self.result.duration_s, 3),
            "objects": objects,
        }
        if self.members is not None:
            doc["members"] = self.members
        return doc


async def provision_on_demand(
    rt: Runtime, *, user: str | None = None, group: str | None = None, dry_run: bool = False
) -> OnDemandResult:
    user, group = on_demand_target(user, group)
    members: int | None = None
    if user is not None:
        requested = await resolve_user(rt.reader, user)
        ids = [requested.id]
    else:
        requested = await resolve_group(rt.reader, str(group))
        ids = sorted(await rt.reader.members_unless_gone(requested.id, rt.settings.transitive_members))
        members = len(ids)
    result = await rt.engine.sync_users(ids, initiated_by=Initiator.ON_DEMAND, dry_run=dry_run)
    planned = {p.user.id for p in result.plans}
    out_of_scope = await _plan_unassigned(rt, [uid for uid in ids if uid not in planned])
    return OnDemandResult(requested, result, members, out_of_scope)


async def _plan_unassigned(rt: Runtime, user_ids: list[str]) -> list[Record]:
    """The engine drops users with no link and no assignment before planning; read each once
    more to show its import and scope steps (the engine's plan_user, no matching, no export)."""

    async def one(uid: str) -> Record:
        attrs = await rt.reader.get_user(uid, rt.engine.select)
        source = SourceUser(uid, attrs or {"id": uid}, assigned=False, soft_deleted=attrs is None)
        plan = plan_user(source, None, Match(None), rt.engine.mapping, rt.engine.policy)
        steps = tuple(s for s in plan.steps if s.step_type is not StepType.MATCHING)
        return Record(dataclasses.replace(plan, steps=steps), NOTHING)

    return await bounded(one, user_ids, rt.settings.cycle_concurrency)
