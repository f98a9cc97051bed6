"""The subscription keeper: owns gotosync's Graph change-notification subscriptions.

It keeps one subscription on `/users` and one on `/groups/{id}/members` for each assigned group
(one on `/groups` instead past the per-app quota), renews each well before it expires,
recreates one that Graph removed or that points at an old notification URL (a rotated key),
deletes those no longer needed, duplicates of one resource, and subscriptions on our
notification URL that no record knows, and handles lifecycle events. Records are indexed by
subscription id: every subscription gotosync created is renewed or deleted, never forgotten.
Subscriptions are created through msgraph-sdk (typed models: few calls, parsing cost moot).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kiota_abstractions.api_error import APIError
from msgraph import GraphServiceClient
from msgraph.generated.models.subscription import Subscription

from shared.entra.reader import EntraReader
from shared.model import utcnow
from shared.realtime.intake import tenant_problem
from shared.settings import Settings
from shared.store import Store
from shared.store.subscriptions import SubscriptionRecord

log = logging.getLogger("gotosync.keeper")

# At most 41,760 minutes for users and groups
# (https://learn.microsoft.com/graph/api/resources/subscription#subscription-lifetime). We ask
# for a little less (clock skew) and renew once fewer than 7 days remain.
LIFETIME = timedelta(minutes=41_760 - 60)
RENEW_WHEN_LEFT = timedelta(days=7)
# A subscription on our URL that no record knows is deleted only once it is this old (its age
# read from its expiry, which we always set to LIFETIME ahead): a creator writes its record
# within seconds, so a younger one may still be on its way to the table.
ORPHAN_GRACE = timedelta(minutes=15)
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


def _endpoint(url: str | None) -> tuple[str, str, str]:
    parts = urlsplit(url or "")
    return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")


def _same_url(a: str | None, b: str | None) -> bool:
    """Same endpoint and the same query parameters (the function key among them)."""
    return _endpoint(a) == _endpoint(b) and sorted(parse_qsl(urlsplit(a or "").query)) == sorted(
        parse_qsl(urlsplit(b or "").query)
    )


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class SubscriptionKeeper:
    def __init__(self, graph: GraphServiceClient, reader: EntraReader, store: Store, settings: Settings) -> None:
        self.graph = graph
        self.reader = reader
        self.store = store
        self.settings = settings

    @property
    def lifecycle_url(self) -> str:
        """Lifecycle notifications go to the notification URL unless GRAPH_LIFECYCLE_URL says
        otherwise: the intake tells the two kinds apart per item."""
        return self.settings.graph_lifecycle_url or self.settings.graph_notification_url

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

    def _check_settings(self) -> None:
        if not self.settings.graph_notification_url:
            raise ValueError("GRAPH_NOTIFICATION_URL is not set: Graph has nowhere to deliver notifications")
        problem = tenant_problem(self.settings.tenant_id)
        if problem:
            raise ValueError(f"{problem}; the webhook intake refuses every notification without it")

    async def ensure(self, now: datetime | None = None) -> KeeperReport:
        """One pass: create what is missing, renew what is due, recreate what points elsewhere,
        delete what is no longer needed, duplicated, or unknown."""
        self._check_settings()
        now = now or utcnow()
        report = KeeperReport()
        wanted = await self.desired()
        at_graph = await self._graph_subscriptions(report)
        have: dict[str, SubscriptionRecord] = {}
        for resource, records in self._by_resource(await self.store.subscriptions.all()).items():
            keep = await self._drop_duplicates(resource, records, report)
            if resource not in wanted:
                await self._delete(keep)
                report.deleted.append(resource)
                continue
            have[resource] = keep
            await self._maintain(keep, at_graph, report, now)
        for resource, group_id in wanted.items():
            if resource not in have:
                try:
                    await self._create(resource, group_id, now)
                    report.created.append(resource)
                except APIError as exc:
                    report.errors.append(f"create {resource}: {_describe(exc)}")
        if at_graph is not None:
            await self._delete_orphans(at_graph, report, now)
        if report.errors:
            log.warning("subscription keeper: %s", "; ".join(report.errors))
        return report

    @staticmethod
    def _by_resource(records: list[SubscriptionRecord]) -> dict[str, list[SubscriptionRecord]]:
        grouped: dict[str, list[SubscriptionRecord]] = {}
        for record in records:
            grouped.setdefault(record.resource, []).append(record)
        return grouped

    async def _drop_duplicates(
        self, resource: str, records: list[SubscriptionRecord], report: KeeperReport
    ) -> SubscriptionRecord:
        """More than one record for a resource (a race of creators): keep the one that lives
        longest, delete the others at Graph and in the table. Each is ours (we hold its record)."""
        ordered = sorted(records, key=lambda r: (r.expires, r.created or r.expires, r.id), reverse=True)
        for extra in ordered[1:]:
            await self._delete(extra)
            report.deleted.append(f"{resource} (duplicate {extra.id})")
        return ordered[0]

    async def _maintain(
        self,
        sub: SubscriptionRecord,
        at_graph: dict[str, Subscription] | None,
        report: KeeperReport,
        now: datetime,
    ) -> None:
        live = at_graph.get(sub.id) if at_graph is not None else None
        if at_graph is not None and live is None:
            await self._recreate_into(sub, report, now, "gone at Graph")
        elif live is not None and not self._points_here(live):
            await self._recreate_into(sub, report, now, "notification URL changed")
        elif sub.expires - now < RENEW_WHEN_LEFT:
            await self._renew_or_recreate(sub, report, now)

    def _points_here(self, live: Subscription) -> bool:
        return _same_url(live.notification_url, self.settings.graph_notification_url) and _same_url(
            live.lifecycle_notification_url, self.lifecycle_url
        )

    async def _recreate_into(self, sub: SubscriptionRecord, report: KeeperReport, now: datetime, why: str) -> None:
        try:
            if await self.recreate(sub, now) is not None:
                report.recreated.append(sub.resource)
                log.info("subscription for %s recreated: %s", sub.resource, why)
        except APIError as exc:
            report.errors.append(f"recreate {sub.resource}: {_describe(exc)}")

    async def _graph_subscriptions(self, report: KeeperReport) -> dict[str, Subscription] | None:
        """Every subscription Graph holds for this app, by id (None when Graph could not say)."""
        found: dict[str, Subscription] = {}
        try:
            page = await self.graph.subscriptions.get()
            while page is not None:
                found.update({str(s.id).lower(): s for s in page.value or [] if s.id})
                if not page.odata_next_link:
                    break
                page = await self.graph.subscriptions.with_url(page.odata_next_link).get()
        except APIError as exc:
            report.errors.append(f"list subscriptions: {_describe(exc)}")
            return None
        return found

    async def _delete_orphans(self, at_graph: dict[str, Subscription], report: KeeperReport, now: datetime) -> None:
        """Deletes Graph subscriptions on our notification endpoint that no record knows. The
        evidence is positive: the endpoint is ours, and the subscription is older than any
        creator needs to write its record (ORPHAN_GRACE)."""
        known = {r.id.lower() for r in await self.store.subscriptions.all()}
        ours = {_endpoint(self.settings.graph_notification_url), _endpoint(self.lifecycle_url)}
        newest_orphan_expiry = now + LIFETIME - ORPHAN_GRACE
        for sub_id, live in at_graph.items():
            if sub_id in known or _endpoint(live.notification_url) not in ours:
                continue
            expires = _aware(live.expiration_date_time)
            if expires is None or expires > newest_orphan_expiry:
                continue  # too young to call an orphan: its record may still be on its way
            try:
                await self.graph.subscriptions.by_subscription_id(sub_id).delete()
                report.deleted.append(f"{live.resource} (unknown {sub_id})")
            except APIError as exc:
                if exc.response_status_code != 404:
                    report.errors.append(f"delete unknown {sub_id}: {_describe(exc)}")

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
            lifecycle_notification_url=self.lifecycle_url,
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
            await self._recreate_into(sub, report, now, "404 on renewal")

    async def renew(self, sub: SubscriptionRecord, now: datetime | None = None) -> SubscriptionRecord:
        expires = (now or utcnow()) + LIFETIME
        await self.graph.subscriptions.by_subscription_id(sub.id).patch(Subscription(expiration_date_time=expires))
        sub.expires = expires
        return await self.store.subscriptions.put(sub)

    async def recreate(self, sub: SubscriptionRecord, now: datetime | None = None) -> SubscriptionRecord | None:
        """Graph dropped it (404 on renew, subscriptionRemoved) or it points elsewhere: make a
        new one. Only the caller that removes the record it read (etag) goes on; another one
        acting on the same subscription at the same time gets None and creates nothing. Changes
        in the gap are caught up by the delta round that the caller runs next."""
        if not await self.store.subscriptions.delete_if_unchanged(sub):
            log.info("subscription %s is being recreated by someone else", sub.id)
            return None
        try:
            await self._delete_at_graph(sub.id)  # a replayed subscriptionRemoved must not leave it behind
            fresh = await self._create(sub.resource, sub.group_id, now or utcnow())
        except Exception:
            # Put the record back, so that a retry (queue, next keeper pass) tries again.
            await self.store.subscriptions.put(dataclasses.replace(sub, etag=None))
            raise
        if sub.delta_link:
            fresh.delta_link = sub.delta_link  # continue from where the old one stopped
            fresh = await self.store.subscriptions.put(fresh)
        return fresh

    async def reauthorize(self, sub: SubscriptionRecord) -> None:
        """reauthorizationRequired: reauthorize; if Graph refuses, renew instead (which
        reauthorizes too); 404: Graph no longer has it, recreate."""
        try:
            await self.graph.subscriptions.by_subscription_id(sub.id).reauthorize.post()
        except APIError as exc:
            if exc.response_status_code == 404:
                await self.recreate(sub)
                return
            await self.renew(sub)

    async def _delete_at_graph(self, sub_id: str) -> None:
        try:
            await self.graph.subscriptions.by_subscription_id(sub_id).delete()
        except APIError as exc:
            if exc.response_status_code != 404:
                raise

    async def _delete(self, sub: SubscriptionRecord) -> None:
        await self._delete_at_graph(sub.id)
        await self.store.subscriptions.delete(sub.id)


def _describe(exc: APIError) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", "") or ""
    message = getattr(error, "message", "") or str(exc)
    return f"{exc.response_status_code} {code} {message}".strip()
