"""GoTo seats in use: each license of the account with its seats, the users holding one, and the
app roles that grant it through ROLE_LICENSES. One Admin API read
(`GET /accounts/{accountKey}/licenses`); user keys are counted, never listed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.engine.licenses import resolve_names
from shared.goto.admin import GoToAdminClient


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def seats_document(licenses: list[dict[str, Any]], role_licenses: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """Pure: the licenses as the console shows them. Shapes are read tolerantly (a missing
    count is null, not an error)."""
    mapping = resolve_names(role_licenses, licenses) if role_licenses else None
    roles_by_key: dict[str, list[str]] = {}
    for role, keys in (mapping.by_role if mapping else {}).items():
        for key in keys:
            roles_by_key.setdefault(key, []).append(role or "Default Access")
    items = []
    for lic in licenses:
        key = str(lic.get("key", ""))
        seats = _as_int(lic.get("seats"))
        used = _as_int(lic.get("userCount"))
        if used is None and isinstance(lic.get("userKeys"), list):
            used = len(lic["userKeys"])
        items.append(
            {
                "key": key,
                "description": str(lic.get("description") or ""),
                "products": [str(p) for p in lic.get("products") or []],
                "seats": seats,
                "used": used,
                "free": None if seats is None or used is None else max(seats - used, 0),
                "enabled": lic.get("enabled") is not False,
                "roles": sorted(roles_by_key.get(key, [])),
            }
        )
    return {
        "managed": bool(role_licenses),
        "licenses": items,
        "unknownNames": {
            role or "Default Access": list(names) for role, names in (mapping.unknown if mapping else {}).items()
        },
    }


async def load_seats(admin: GoToAdminClient, role_licenses: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    return seats_document(await admin.licenses(), role_licenses)
