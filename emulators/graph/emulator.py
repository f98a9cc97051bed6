"""``GraphEmulator``: one tenant + its HTTP server + notification deliverer, with the Python
control API tests and the demo use. Runs in a background thread (``start``/``stop``, context
manager) or in the foreground via ``python -m emulators.graph``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from emulators.common import Counters, Faults, Served, ThreadedServer

from .app import API_PREFIX, build_app
from .config import GraphConfig
from .delivery import Deliverer
from .model import ANY_ROLE, USER_PROPERTIES, Tenant
from .seeding import generate, load_seed


class GraphEmulator(Served):
    """A local Microsoft Graph (v1.0) for one tenant. Control methods are thread-safe and may
    be called before or after ``start``."""

    def __init__(
        self,
        config: GraphConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tenant_id: str | None = None,
        seed: int | None = None,
        **overrides: Any,
    ) -> None:
        config = config or GraphConfig()
        if overrides:
            config = config.with_overrides(**overrides)
        self.config = config
        self.host = host
        self.port = port
        self.tenant = Tenant(config, tenant_id=tenant_id, seed=seed)
        self.faults = Faults()
        self.counters = Counters()
        self.deliverer = Deliverer(config)
        self.tenant.outbox = self.deliverer.enqueue
        self._server: ThreadedServer | None = None

    # --- server --------------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        return build_app(self)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def graph_url(self) -> str:
        return self.url + API_PREFIX

    # --- tenant facts --------------------------------------------------------------------------
    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id

    @property
    def sp_id(self) -> str:
        return str(self.tenant.sp["id"])

    @property
    def app_id(self) -> str:
        return str(self.tenant.sp["appId"])

    @property
    def app_roles(self) -> dict[str, str]:
        """Role value -> appRoleId."""
        return {r["value"]: r["id"] for r in self.tenant.sp["appRoles"]}

    # --- control API ---------------------------------------------------------------------------
    def seed(self, data: dict[str, Any] | str | Path, *, reset: bool = True) -> dict[str, Any]:
        return load_seed(self.tenant, data, reset=reset)

    def generate(
        self, users: int = 100, groups: int = 10, seed: int = 0, domain: str = "contoso.com", profile: str = "plain"
    ) -> dict[str, Any]:
        return generate(self.tenant, users=users, groups=groups, seed=seed, domain=domain, profile=profile)

    def reset(self) -> None:
        self.tenant.reset()

    def create_user(self, **attrs: Any) -> str:
        return self.tenant.create_user(**attrs)

    def update_user(self, user_id: str, **attrs: Any) -> set[str]:
        return self.tenant.update_user(user_id, **attrs)

    def block_user(self, user_id: str) -> None:
        self.tenant.block_user(user_id)

    def unblock_user(self, user_id: str) -> None:
        self.tenant.unblock_user(user_id)

    def soft_delete_user(self, user_id: str) -> None:
        self.tenant.soft_delete_user(user_id)

    def restore_user(self, user_id: str) -> None:
        self.tenant.restore_user(user_id)

    def hard_delete_user(self, user_id: str) -> None:
        self.tenant.hard_delete_user(user_id)

    def create_group(self, display_name: str, **attrs: Any) -> str:
        return self.tenant.create_group(display_name, **attrs)

    def update_group(self, group_id: str, **attrs: Any) -> set[str]:
        return self.tenant.update_group(group_id, **attrs)

    def soft_delete_group(self, group_id: str) -> None:
        self.tenant.soft_delete_group(group_id)

    def restore_group(self, group_id: str) -> None:
        self.tenant.restore_group(group_id)

    def hard_delete_group(self, group_id: str) -> None:
        self.tenant.hard_delete_group(group_id)

    def add_member(self, group_id: str, member_id: str) -> bool:
        return self.tenant.add_member(group_id, member_id)

    def remove_member(self, group_id: str, member_id: str) -> bool:
        return self.tenant.remove_member(group_id, member_id)

    def assign(self, principal_id: str, role: str | None = None) -> str:
        return self.tenant.assign(principal_id, role)

    def unassign(self, principal_id: str, role: Any = ANY_ROLE) -> int:
        return self.tenant.unassign(principal_id, role)

    def user(self, user_id: str) -> dict[str, Any]:
        """Every property of a user (soft-deleted included, unset ones as None), for assertions."""
        with self.tenant.lock:
            obj = self.tenant._user(user_id, allow_deleted=True)
            extensions = sorted(p for p in obj.props if p.startswith("extension_"))
            return {p: self.tenant.value(obj, p) for p in (*USER_PROPERTIES, *extensions)}

    def advance_clock(self, seconds: float) -> None:
        self.tenant.advance_clock(seconds)

    def expire_delta_tokens(self) -> None:
        self.tenant.expire_delta_tokens()

    def send_lifecycle_event(self, sub_id: str, event: str) -> dict[str, Any]:
        return self.tenant.send_lifecycle_event(sub_id, event)

    def remove_subscription(self, sub_id: str) -> None:
        self.tenant.remove_subscription(sub_id)

    def subscriptions(self) -> list[dict[str, Any]]:
        return self.tenant.list_subscriptions()

    def summary(self) -> dict[str, Any]:
        summary = self.tenant.summary()
        summary["deliveries"] = {
            "delivered": len(self.deliverer.delivered),
            "outstanding": self.deliverer.outstanding,
            "dropped": len(self.deliverer.dropped),
        }
        return summary

    # --- notifications -------------------------------------------------------------------------
    @property
    def delivered(self) -> list[dict[str, Any]]:
        """Payloads (``{"value": [...]}``) acknowledged with a 2xx, in delivery order."""
        return list(self.deliverer.delivered)

    @property
    def delivered_items(self) -> list[dict[str, Any]]:
        """Every delivered notification item, flattened."""
        return [item for payload in self.deliverer.delivered for item in payload["value"]]

    def wait_deliveries_idle(self, timeout: float = 10.0) -> None:
        """Blocks until no notification is pending or waiting for a retry (TimeoutError else).
        From async code whose event loop also serves the receiver, use the ``_async`` form."""
        self.deliverer.wait_idle(timeout)

    async def wait_deliveries_idle_async(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        # A thread waits on the deliverer's condition, so the caller's loop keeps serving.
        await asyncio.to_thread(self.deliverer.wait_idle, timeout)

    def deliveries_report(self) -> dict[str, Any]:
        return {
            "outstanding": self.deliverer.outstanding,
            "delivered": [{"url": url, "payload": payload} for url, payload in self.deliverer.delivered_to],
            "dropped": list(self.deliverer.dropped),
            "attempts": [vars(a) for a in self.deliverer.attempts],
        }
