"""Tunable limits and switches of the Graph emulator, defaulting to the documented values
(docs/reference/microsoft-graph.md); tests shrink the timings, never the semantics."""

from __future__ import annotations

from dataclasses import dataclass, replace

SEVEN_DAYS = 7 * 24 * 3600.0
SKIPTOKEN_EXPIRY = ("never", "lifetime", "on-change")


@dataclass(frozen=True)
class GraphConfig:
    # Paging (docs/reference/microsoft-graph.md#paging): default 100, max 999 for users, groups, members
    # and appRoleAssignedTo.
    default_page_size: int = 100
    max_page_size: int = 999
    # A page may hold fewer items than $top asks (https://learn.microsoft.com/graph/paging):
    # when > 0, no list page holds more than this, so small tenants get several pages (tests).
    page_size_cap: int = 0
    # UNCONFIRMED: whether and when a list's $skiptoken (a nextLink) stops working is not
    # documented. Variants: "never" (the default: a nextLink works until the listing is read),
    # "lifetime" (a token older than `skiptoken_lifetime_seconds` on the emulator clock is
    # refused), "on-change" (a token issued before any later change in the tenant is refused).
    # A refused token is 400 Directory_ExpiredPageToken, as a garbled one is.
    skiptoken_expiry: str = "never"
    skiptoken_lifetime_seconds: float = 3600.0
    # Delta (docs/reference/microsoft-graph.md#delta-rounds): the page size is chosen by Graph, not the
    # client ($top is rejected).
    delta_page_size: int = 100
    # docs/reference/microsoft-graph.md#group-members-in-delta: large groups are split;
    # at most this many members@delta items per entry.
    delta_members_per_entry: int = 500
    delta_token_lifetime_seconds: float = SEVEN_DAYS
    delta_filter_max_ids: int = 50
    # Lifetime and quotas, users/groups family (docs/reference/microsoft-graph.md#subscription-lifetime).
    subscription_max_minutes: int = 41_760
    subscription_quota_per_app: int = 100
    subscription_quota_per_tenant: int = 1_000
    client_state_max_length: int = 128
    # Handshake (docs/reference/microsoft-graph.md#validation-handshake): 200 + text/plain + the decoded
    # token within 10 s.
    validation_timeout_seconds: float = 10.0
    validation_requires_text_plain: bool = True
    # Plain http:// notification URLs are fine locally; real Graph demands https.
    require_https_notification_url: bool = False
    # Delivery (docs/reference/microsoft-graph.md#receiving-notifications): per-POST timeout, exponential
    # backoff, give up after 4 h.
    delivery_timeout_seconds: float = 10.0
    delivery_batch_window_seconds: float = 0.02
    delivery_max_items_per_post: int = 100
    retry_base_seconds: float = 5.0
    retry_max_interval_seconds: float = 600.0
    retry_give_up_seconds: float = 4 * 3600.0
    # When the access Graph holds lapses, nothing is delivered
    # (docs/reference/microsoft-graph.md#receiving-notifications):
    # after a reauthorizationRequired lifecycle event, hold deliveries until reauthorize/renew.
    pause_until_reauthorized: bool = True
    # UNCONFIRMED extras (docs/reference/microsoft-graph.md#extra-fields-in-notifications): organizationId,
    # members@delta in resourceData; apps must ignore them.
    extra_notification_fields: bool = True
    # Assume an assignment change raises no user/group notification
    # (docs/reference/microsoft-graph.md#no-notification-for-assignment-changes).
    notify_on_assignment_change: bool = False
    # docs/reference/microsoft-graph.md#json-batching
    batch_max_requests: int = 20
    shuffle_batch_responses: bool = False
    # Soft-deleted principals keep their assignments but are not listed until restored (an
    # inference: Graph does not document it).
    hide_soft_deleted_assignments: bool = True
    require_auth: bool = True

    def __post_init__(self) -> None:
        if self.skiptoken_expiry not in SKIPTOKEN_EXPIRY:
            choices = ", ".join(SKIPTOKEN_EXPIRY)
            raise ValueError(f"skiptoken_expiry must be one of {choices}, got {self.skiptoken_expiry!r}")

    def with_overrides(self, **changes: object) -> GraphConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


def fast_test_config(**changes: object) -> GraphConfig:
    """Same semantics, test-sized timings: quick retries, a short give-up, short timeouts."""
    base = GraphConfig(
        validation_timeout_seconds=2.0,
        delivery_timeout_seconds=2.0,
        delivery_batch_window_seconds=0.0,
        retry_base_seconds=0.02,
        retry_max_interval_seconds=0.2,
        retry_give_up_seconds=2.0,
    )
    return base.with_overrides(**changes)
