"""SCIM resources built from mapped values, changes applied to them, and the generic request
bodies: a full-definition PUT and RFC 7644 PatchOp (https://www.rfc-editor.org/rfc/rfc7644#section-3.5).

``changes`` everywhere are ``{path: new value}``; None clears the attribute (see
``shared.scim.paths``). GoTo's own merge-style PATCH body lives with its client
(``shared.goto.scim.merge_body``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from shared.scim.paths import PathRef, get_value, parse_path, set_value
from shared.scim.schemas import GETGO_URN, PATCHOP_URN, is_extension

# Server-owned parts of a read resource that never go back in a PUT body: RFC 7643's read-only
# id, meta and groups, and GoTo's getgo extension (its account data).
READ_ONLY_ATTRS = frozenset({"id", "meta", "groups", GETGO_URN})
_READ_ONLY_LOWER = frozenset(a.lower() for a in READ_ONLY_ATTRS)


def build_resource(values: Mapping[str, Any]) -> dict[str, Any]:
    """A SCIM user body from path -> value pairs (None written as null). No ``schemas`` list:
    GoTo's documented UserDefinition has none, and a SCIM 1.x service refuses SCIM 2.0 core URNs;
    ``with_schemas`` adds them for a strict SCIM 2.0 target."""
    resource: dict[str, Any] = {}
    for path, value in values.items():
        set_value(resource, path, value)
    return resource


def apply_changes(resource: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``resource`` with every change applied (None removes); ``resource`` is untouched."""
    result = copy.deepcopy(dict(resource))
    for path, value in changes.items():
        set_value(result, path, copy.deepcopy(value), none_removes=True)
    return result


def put_body(changes: Mapping[str, Any], full_resource: Mapping[str, Any]) -> dict[str, Any]:
    """The full definition for PUT: ``full_resource`` with the changes applied, minus server-owned parts."""
    body = apply_changes(full_resource, changes)
    for key in [k for k in body if k.lower() in _READ_ONLY_LOWER]:
        del body[key]
    if isinstance(body.get("schemas"), list):
        body["schemas"] = [s for s in body["schemas"] if not (isinstance(s, str) and s.lower() in _READ_ONLY_LOWER)]
    return body


def with_schemas(body: Mapping[str, Any], core_urn: str) -> dict[str, Any]:
    """The body with the ``schemas`` RFC 7643 §3 requires: the core schema, then every extension
    schema whose attributes the body carries (``urn:…:enterprise:2.0:User`` for department).
    Whatever ``schemas`` the body had (a SCIM 1.x URN, a URN without its object) is replaced."""
    rest = {k: v for k, v in body.items() if k != "schemas"}
    extensions = [k for k in rest if is_extension(k)]
    return {"schemas": [core_urn, *extensions], **rest}


def patchop_body(changes: Mapping[str, Any]) -> dict[str, Any]:
    """An RFC 7644 PatchOp: one ``replace`` per change (``remove`` for None)."""
    operations = []
    for path, value in changes.items():
        parse_path(path)  # rejects paths we could not also express in the other styles
        if value is None:
            operations.append({"op": "remove", "path": path})
        else:
            operations.append({"op": "replace", "path": path, "value": value})
    return {"schemas": [PATCHOP_URN], "Operations": operations}


def strict_patchop_body(changes: Mapping[str, Any], full_resource: Mapping[str, Any]) -> dict[str, Any]:
    """An RFC 7644 §3.5.2 PatchOp that a strict server applies as meant.

    A plain path is ``replace`` (``remove`` for None). A change inside a multi-valued attribute
    (``emails[type eq "work"].value``) replaces the attribute's whole list, built from
    ``full_resource`` with the changes applied: a filtered ``replace`` that matches no value is
    a 400 ``noTarget`` on a strict server (RFC 7644 §3.5.2.3), and whether the work e-mail exists
    yet is not known here. A list left empty is removed.
    """
    operations: list[dict[str, Any]] = []
    filtered: dict[str, Any] = {}
    for path, value in changes.items():
        ref = parse_path(path)
        if ref.filtered:
            filtered[path] = value
        elif value is None:
            operations.append({"op": "remove", "path": path})
        else:
            operations.append({"op": "replace", "path": path, "value": value})
    after = apply_changes(full_resource, filtered)
    lists: dict[str, PathRef] = {}
    for path in filtered:
        whole = parse_path(path).whole
        lists.setdefault(whole.path.lower(), whole)
    for whole in lists.values():
        items = get_value(after, whole) or []
        if items:
            operations.append({"op": "replace", "path": whole.path, "value": items})
        else:
            operations.append({"op": "remove", "path": whole.path})
    return {"schemas": [PATCHOP_URN], "Operations": operations}
