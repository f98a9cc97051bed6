"""The local world: Azurite and both emulators, seeded with a demo tenant, on loopback ports.

Used by `make demo` and by anyone who wants to point the `gotosync` CLI at a local stand-in of
Entra and GoTo (`python -m emulators.demo --world` prints the environment to export).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from emulators.azurite import Azurite
from emulators.goto import GoToEmulator, GoToSwitches
from emulators.goto.model import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PAT
from emulators.graph import GraphEmulator


@dataclass
class WorldOptions:
    users: int = 500
    groups: int = 20
    seed: int = 7
    goto_rate_limit: float = 10.0  # GoTo's documented default (docs/reference/goto-api.md#rate-limits)
    table_prefix: str = "gotosync"


class LocalWorld:
    """Starts Azurite, the Graph emulator (demo profile) and the GoTo emulator; stops them all."""

    def __init__(self, options: WorldOptions | None = None) -> None:
        self.options = options or WorldOptions()
        self.azurite = Azurite()
        self.graph = GraphEmulator(seed=self.options.seed)
        # GoTo keeps `active` and the enterprise attributes here so that the demo can show them;
        # the tests also run the documented defaults (ignore / drop).
        self.goto = GoToEmulator(
            switches=GoToSwitches(active="honour", extension_attrs="store", rate_limit=self.options.goto_rate_limit)
        )
        self.tenant: dict[str, Any] = {}
        self._started: list[Any] = []

    def start(self) -> LocalWorld:
        try:
            self.azurite.start()
            self._started.append(self.azurite)
            self.tenant = self.graph.generate(
                users=self.options.users, groups=self.options.groups, seed=self.options.seed, profile="demo"
            )
            self.graph.start()
            self._started.append(self.graph)
            self.goto.start()
            self._started.append(self.goto)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        while self._started:
            self._started.pop().stop()

    def __enter__(self) -> LocalWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The app settings that point gotosync at this world (export them to use the CLI)."""
        return {
            "GOTOSYNC_STORAGE": self.azurite.connection_string,
            "GOTOSYNC_TABLE_PREFIX": self.options.table_prefix,
            "ENTRA_TENANT_ID": self.graph.tenant_id,
            "ENTRA_SERVICE_PRINCIPAL_ID": self.graph.sp_id,
            "GRAPH_BASE_URL": self.graph.graph_url,
            "GRAPH_STATIC_TOKEN": "local-emulator-token",
            "GOTO_SCIM_URL": self.goto.scim_url,
            "GOTO_ADMIN_URL": self.goto.admin_url,
            "GOTO_TOKEN_URL": self.goto.token_url,
            # The emulator's built-in OAuth client and personal access token (public test values):
            # gotosync gets its access tokens through the real PAT grant.
            "GOTO_CLIENT_ID": DEFAULT_CLIENT_ID,
            "GOTO_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "GOTO_PAT": DEFAULT_PAT,
            "GOTO_RATE_LIMIT": str(self.options.goto_rate_limit or 1000),
            "GOTO_VERIFIED_DOMAINS": "contoso.com",
            "NOTIFICATION_QUEUE": "gotosync-notifications",
            # The app role picks the GoTo license (seat): product codes, resolved against the
            # account's licenses (docs/mappings.md).
            "ROLE_LICENSES": json.dumps({"MeetingOrganizer": ["G2M"], "WebinarOrganizer": ["G2W"], "Admin": ["G2M"]}),
            "AzureWebJobsStorage": self.azurite.connection_string,
        }

    def seats(self) -> str:
        """GoTo license use, e.g. "G2M 412/1000, G2W 39/50"."""
        return ", ".join(f"{lic['code']} {lic['userCount']}/{lic['seats']}" for lic in self.goto.licenses())

    def describe(self) -> list[tuple[str, str]]:
        t = self.tenant
        a = t.get("assignments", {})
        return [
            ("Azurite (tables, queues, blobs)", f"pid {self.azurite.pid}, {self.azurite.endpoint('table')}"),
            ("Graph emulator", self.graph.graph_url),
            ("GoTo emulator", f"{self.goto.scim_url}  (rate limit {self.options.goto_rate_limit:g} req/s)"),
            ("tenant", str(t.get("tenantId", ""))),
            ("GoToMeeting app (service principal)", self.graph.sp_id),
            (
                "users",
                f"{t['users']['active']} ({t['users']['disabled']} with sign-in blocked)",
            ),
            ("groups", f"{t['groups']['active']} ({t.get('memberships', 0)} memberships)"),
            (
                "assignments",
                f"{a.get('users', 0)} users, {a.get('groups', 0)} groups; by role: "
                + ", ".join(f"{k} {v}" for k, v in sorted(a.get("byRole", {}).items())),
            ),
            ("GoTo organization", f"verified domain contoso.com, {len(self.goto.users())} user(s)"),
            ("GoTo licenses (seats used/bought)", self.seats()),
        ]
