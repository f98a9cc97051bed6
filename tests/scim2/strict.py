"""What a schema-strict SCIM 2.0 service provider refuses, written from RFC 7643/7644 alone (it
shares no code with the client under test): the gate put in front of scim2-server, which is
itself lenient about ``schemas`` and the case of canonical values.

- https://www.rfc-editor.org/rfc/rfc7643#section-3 : every resource body carries ``schemas``,
  holding the core schema and each extension schema whose attributes it carries.
- https://www.rfc-editor.org/rfc/rfc7643#section-4.2 : group member ``type`` takes the canonical
  values ``User`` and ``Group``.
- https://www.rfc-editor.org/rfc/rfc7644#section-3.5.2 : PATCH bodies are PatchOp messages whose
  operations are ``add``, ``remove`` or ``replace``; a ``remove`` needs a ``path``.
- https://www.rfc-editor.org/rfc/rfc7644#section-3.8 : requests and responses are
  ``application/scim+json``.
"""

from __future__ import annotations

import json
from typing import Any

SCIM_JSON = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE = {
    "Users": "urn:ietf:params:scim:schemas:core:2.0:User",
    "Groups": "urn:ietf:params:scim:schemas:core:2.0:Group",
}
EXTENSIONS = {
    "Users": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
    "Groups": set(),
}
OPS = {"add", "remove", "replace"}
MEMBER_TYPES = {"User", "Group"}


def _media_type(value: str | None) -> str:
    return (value or "").partition(";")[0].strip().lower()


def violations(method: str, path: str, accept: str | None, content_type: str | None, body: bytes) -> list[str]:
    """Why a strict server would refuse this request (empty: it would not)."""
    problems: list[str] = []
    if SCIM_JSON not in [_media_type(part) for part in (accept or "").split(",")]:
        problems.append(f"Accept {accept!r} does not name {SCIM_JSON}")
    method = method.upper()
    if method not in ("POST", "PUT", "PATCH"):
        return problems
    if _media_type(content_type) != SCIM_JSON:
        problems.append(f"Content-Type {content_type!r} is not {SCIM_JSON}")
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return [*problems, "the body is not JSON"]
    if not isinstance(data, dict):
        return [*problems, "the body is not a JSON object"]
    endpoint = path.strip("/").split("/")[0]
    if endpoint not in CORE:
        return problems
    if method == "PATCH":
        return problems + _patch_problems(data)
    return problems + _resource_problems(endpoint, data)


def _resource_problems(endpoint: str, data: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    schemas = data.get("schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        return ["'schemas' is missing or not a list of URIs"]
    if CORE[endpoint] not in schemas:
        problems.append(f"'schemas' lacks the core schema {CORE[endpoint]}")
    if len(set(schemas)) != len(schemas):
        problems.append("'schemas' repeats a URI")
    for urn in schemas:
        if urn != CORE[endpoint] and urn not in EXTENSIONS[endpoint]:
            problems.append(f"'schemas' names {urn}, not a schema of {endpoint}")
    for key in data:
        if key.lower().startswith("urn:") and key not in schemas:
            problems.append(f"the extension {key} is sent without its URI in 'schemas'")
    if endpoint == "Groups":
        problems += _member_problems(data.get("members"))
    return problems


def _patch_problems(data: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if data.get("schemas") != [PATCH_OP]:
        problems.append(f"a PATCH body must have 'schemas': [{PATCH_OP!r}]")
    operations = data.get("Operations")
    if not isinstance(operations, list) or not operations:
        return [*problems, "'Operations' is missing or empty"]
    for operation in operations:
        if not isinstance(operation, dict) or operation.get("op") not in OPS:
            problems.append(f"not an add/remove/replace operation: {operation!r}")
            continue
        if operation["op"] == "remove" and not operation.get("path"):
            problems.append("a remove operation without a path")
        if str(operation.get("path", "")).startswith("members"):
            problems += _member_problems(operation.get("value"))
    return problems


def _member_problems(members: Any) -> list[str]:
    if members is None:
        return []
    if not isinstance(members, list):
        return ["'members' is not a list"]
    return [
        f"member type {m.get('type')!r} is not a canonical value ({', '.join(sorted(MEMBER_TYPES))})"
        for m in members
        if isinstance(m, dict) and "type" in m and m["type"] not in MEMBER_TYPES
    ]
