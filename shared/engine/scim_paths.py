"""SCIM attribute paths as used in Entra's mappings, read from and written into resources.

Supported forms: `userName`, `name.givenName`, `emails[type eq "work"].value` (a multi-valued
attribute selected by type), and extension attributes written as `<schema URN>:<attribute>`.
"""

from __future__ import annotations

import re
from typing import Any

ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

_FILTERED = re.compile(r'^(?P<attr>[A-Za-z][\w]*)\[type eq "(?P<type>[^"]+)"\]\.(?P<sub>[A-Za-z]\w*)$')


def split_path(path: str) -> tuple[str | None, str]:
    """Separates an extension URN from the attribute path: ('urn:…:User', 'department')."""
    if path.startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        return urn, attr
    return None, path


def get_value(resource: dict[str, Any], path: str) -> Any:
    """The value at `path` in a SCIM resource, or None when absent."""
    urn, attr = split_path(path)
    container: Any = resource.get(urn) if urn else resource
    if not isinstance(container, dict):
        return None
    m = _FILTERED.match(attr)
    if m:
        items = _case_get(container, m["attr"])
        if not isinstance(items, list):
            return None
        for item in items:
            if isinstance(item, dict) and str(item.get("type", "")).lower() == m["type"].lower():
                return _case_get(item, m["sub"])
        return None
    current: Any = container
    for part in attr.split("."):
        if not isinstance(current, dict):
            return None
        current = _case_get(current, part)
    return current


def has_value(resource: dict[str, Any], path: str) -> bool:
    """Whether the resource carries the attribute at all (servers may drop unknown ones)."""
    urn, attr = split_path(path)
    container: Any = resource.get(urn) if urn else resource
    if not isinstance(container, dict):
        return False
    m = _FILTERED.match(attr)
    if m:
        return isinstance(_case_get(container, m["attr"]), list)
    first = attr.split(".")[0]
    return any(k.lower() == first.lower() for k in container)


def set_value(resource: dict[str, Any], path: str, value: Any) -> None:
    """Writes `value` at `path`, creating the containers a SCIM body needs."""
    urn, attr = split_path(path)
    container = resource.setdefault(urn, {}) if urn else resource
    m = _FILTERED.match(attr)
    if m:
        items = container.setdefault(m["attr"], [])
        for item in items:
            if item.get("type") == m["type"]:
                item[m["sub"]] = value
                return
        entry = {"type": m["type"], m["sub"]: value}
        if m["attr"] == "emails" and not items:
            entry["primary"] = True
        items.append(entry)
        return
    parts = attr.split(".")
    for part in parts[:-1]:
        container = container.setdefault(part, {})
    container[parts[-1]] = value


def build_resource(values: dict[str, Any]) -> dict[str, Any]:
    """A SCIM user body from path -> value pairs. No `schemas` list: GoTo's documented
    UserDefinition has none, and a SCIM 1.x service refuses SCIM 2.0 core URNs (goto-api U1)."""
    resource: dict[str, Any] = {}
    for path, value in values.items():
        set_value(resource, path, value)
    return resource


def _case_get(obj: dict[str, Any], key: str) -> Any:
    if key in obj:
        return obj[key]
    lower = key.lower()
    for k, v in obj.items():
        if k.lower() == lower:
            return v
    return None
