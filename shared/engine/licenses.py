"""App roles -> GoToMeeting licenses (the ROLE_LICENSES setting), resolved against the account.

ROLE_LICENSES names, per app-role value, the GoTo licenses the role grants, each as a license
key or a product code ("G2M"). `resolve_licenses` turns the names into license keys once per
cycle from the account's license list (`GET /accounts/{accountKey}/licenses`); `LicenseMap`
then answers, purely, which keys a user holding some roles should have. See docs/mappings.md,
"Roles and licenses".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ACCESS = ""  # the role value Default Access has (no value)


@dataclass(frozen=True)
class LicenseMap:
    """ROLE_LICENSES with every name resolved to a license key (or found unknown)."""

    by_role: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role value -> license keys
    unknown: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role value -> names matching nothing
    known: tuple[str, ...] = ()  # what the account has, for error messages: "key (products)"

    def wanted(self, roles: Iterable[str]) -> tuple[list[str], list[str]]:
        """The license keys a user holding `roles` gets (the union over its roles, sorted), and
        the ROLE_LICENSES names among them that match no license of the account."""
        keys: set[str] = set()
        missing: set[str] = set()
        for role in roles:
            keys.update(self.by_role.get(role, ()))
            missing.update(self.unknown.get(role, ()))
        return sorted(keys), sorted(missing)

    def maps(self, role: str) -> bool:
        return role in self.by_role or role in self.unknown


def resolve_names(role_licenses: Mapping[str, Iterable[str]], licenses: list[dict[str, Any]]) -> LicenseMap:
    """Resolves each name to a license key. A name is a license key when one license has it as
    its `key`; otherwise a product code, matched case-insensitively against the licenses'
    `products`: the license whose first (main) product it is wins over one that merely includes
    it (GoToWebinar licenses include G2M), then the license with the fewest products, then the
    lowest key, so the choice is stable."""
    by_key = {str(lic.get("key")): lic for lic in licenses if lic.get("key") is not None}
    by_role: dict[str, tuple[str, ...]] = {}
    unknown: dict[str, tuple[str, ...]] = {}
    for role, names in role_licenses.items():
        keys: list[str] = []
        missing: list[str] = []
        for name in names:
            key = _resolve(str(name).strip(), by_key)
            if key is None:
                missing.append(str(name))
            elif key not in keys:
                keys.append(key)
        by_role[role] = tuple(keys)
        if missing:
            unknown[role] = tuple(missing)
    known = tuple(f"{key} ({', '.join(str(p) for p in lic.get('products') or [])})" for key, lic in by_key.items())
    return LicenseMap(by_role, unknown, known)


def _resolve(name: str, by_key: dict[str, dict[str, Any]]) -> str | None:
    if name in by_key:
        return name
    code = name.upper()
    candidates = []
    for key, lic in by_key.items():
        products = [str(p).upper() for p in lic.get("products") or []]
        if code in products:
            candidates.append((products[0] != code, len(products), _numeric(key), key))
    return min(candidates)[3] if candidates else None


def _numeric(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (0, key)


def config_digest(mapping_digest: str, role_licenses: Mapping[str, Iterable[str]], default_access_only: str) -> str:
    """The effective configuration a full cycle depends on: the mapping (and its scoping
    filters), the role -> license mapping and the Default Access policy. Order-independent."""
    doc = {
        "mapping": mapping_digest,
        "roleLicenses": {role: sorted(str(n) for n in names) for role, names in sorted(role_licenses.items())},
        "defaultAccessOnly": default_access_only,
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
