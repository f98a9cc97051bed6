"""The subscription keeper: owns gotosync's Graph change-notification subscriptions.

It keeps one subscription on `/users` and one on `/groups/{id}/members` for each assigned group
(one on `/groups` instead past the per-app quota), renews each well before it expires,
recreates one that Graph removed, deletes those no longer needed, and handles lifecycle events.
Subscriptions are created through msgraph-sdk (typed models: few calls, parsing cost moot).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kiota_abstractions.api_error import APIError
from msgraph import GraphServiceClient
from msgraph.generated.models.subscription import Subscription

from shared.entra.reader import EntraReader
from shared.model import utcnow
from shared.settings import Settings
from shared.store import Store
from shared.store.subscriptions import SubscriptionRecord

log = logging.getLogger("gotosync.keeper")

# §5.2: at most 41,760 minutes for users and groups. We ask for a little less (clock skew) and
# renew once fewer than 7 days remain (the practice Firezone's keeper follows).
LIFETIME = timedelta(minutes=41_760 - 60)
RENEW_WHEN_LEFT = timedelta(days=7)
CHANGE_TYPE = "updated,deleted"


@dataclass
class KeeperReport:
    created: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}


class SubscriptionKeeper:
    def __init__(self, graph: GraphServiceClient, reader: EntraReader, store: Store, settings: Settings) -> None:
        self.graph = graph
        self.reader = reader
        self.store = store
        self.settings = settings

    async def desired(self) -> dict[str, str]:
        """resource -> group id ("" for /users and /groups)."""
        assignments = await self.reader.assignments()
        groups = sorted(pid for pid, a in assignments.items() if a.principal_type == "Group")
        wanted = {"/users": ""}
        if len(groups) <= self.settings.subscription_group_limit:
            wanted.update({f"/groups/{gid}/members": gid for gid in groups})
        else:
            wanted["/groups"] = ""
        return wanted

    async def ensure(self, now: datetime | None = None) -> KeeperReport:
        """One pass: create what is missing, renew what is due, delete what is no longer needed."""
        if not self.settings.graph_notification_url:
            raise ValueError("GRAPH_NOTIFICATION_URL is not set: Graph has nowhere to deliver notifications")
        now = now or utcnow()
        report = KeeperReport()
        wanted = await self.desired()
        have = {s.resource: s for s in await self.store.subscriptions.all()}
        for resource, sub in have.items():
            if resource not in wanted:
                await self._delete(sub)
                report.deleted.append(resource)
            elif sub.expires - now < RENEW_WHEN_LEFT:
                await self._renew_or_recreate(sub, report, now)
        for resource, group_id in wanted.items():
            if resource not in have:
                try:
                    await self._create(resource, group_id, now)
                    report.created.append(resource)
                except APIError as exc:
                    report.errors.append(f"create {resource}: {_describe(exc)}")
        if report.errors:
            log.warning("subscription keeper: %s", "; ".join(report.errors))
        return report

    async def _create(self, resource: str, group_id: str, now: datetime) -> SubscriptionRecord:
        delta_link = ""
        if group_id:
            # Where this group's membership delta starts: before the subscription exists, so that
            # no change falls between the two.
            delta_link = await self.reader.group_delta_link(group_id)
        client_state = secrets.token_urlsafe(64)[:128]
        body = Subscription(
            change_type=CHANGE_TYPE,
            notification_url=self.settings.graph_notification_url,
            lifecycle_notification_url=self.settings.graph_lifecycle_url or self.settings.graph_notification_url,
            resource=resource,
            expiration_date_time=now + LIFETIME,
            client_state=client_state,
        )
        created = await self.graph.subscriptions.post(body)
        if created is None or not created.id:
            raise ValueError(f"Graph created no subscription for {resource}")
        record = SubscriptionRecord(
            id=str(created.id),
            resource=resource,
            change_type=CHANGE_TYPE,
            expires=created.expiration_date_time or now + LIFETIME,
            client_state=client_state,
            group_id=group_id,
            delta_link=delta_link,
            created=now,
        )
        return await self.store.subscriptions.put(record)

    async def _renew_or_recreate(self, sub: SubscriptionRecord, report: KeeperReport, now: datetime) -> None:
        try:
            await self.renew(sub, now)
            report.renewed.append(sub.resource)
        except APIError as exc:
            if exc.response_status_code != 404:
                report.errors.append(f"renew {sub.resource}: {_describe(exc)}")
                return
            await self.recreate(sub, now)
            report.recreated.append(sub.resource)

    async def renew(self, sub: SubscriptionRecord, now: datetime | None = None) -> SubscriptionRecord:
        expires = (now or utcnow()) + LIFETIME
        await self.graph.subscriptions.by_subscription_id(sub.id).patch(Subscription(expiration_date_time=expires))
        sub.expires = expires
        return await self.store.subscriptions.put(sub)

    async def recreate(self, sub: SubscriptionRecord, now: datetime | None = None) -> SubscriptionRecord:
        """Graph dropped it (404 on renew, or subscriptionRemoved): make a new one. Changes in the
        gap are caught up by the delta round that the caller runs next."""
        await self.store.subscriptions.delete(sub.id)
        fresh = await self._create(sub.resource, sub.group_id, now or utcnow())
        if sub.delta_link:
            fresh.delta_link = sub.delta_link  # continue from where the old one stopped
            fresh = await self.store.subscriptions.put(fresh)
        return fresh

    async def reauthorize(self, sub: SubscriptionRecord) -> None:
        """reauthorizationRequired (§5.5): reauthorize; if Graph refuses, renew instead."""
        try:
            await self.graph.subscriptions.by_subscription_id(sub.id).reauthorize.post()
        except APIError as exc:
            if exc.response_status_code == 404:
                await self.recreate(sub)
                return
            await self.renew(sub)

    async def _delete(self, sub: SubscriptionRecord) -> None:
        try:
            await self.graph.subscriptions.by_subscription_id(sub.id).delete()
        except APIError as exc:
            if exc.response_status_code != 404:
                raise
        await self.store.subscriptions.delete(sub.id)


def _describe(exc: APIError) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", "") or ""
    message = getattr(error, "message", "") or str(exc)
    return f"{exc.response_status_code} {code} {message}".strip()
