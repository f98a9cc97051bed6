"""SCIM attribute paths, read from and written into resources held as plain dicts.

The forms are RFC 7644 §3.10's attribute notation with the value filter of RFC 7644 §3.5.2
(https://www.rfc-editor.org/rfc/rfc7644#section-3.10): ``userName``, ``name.givenName``,
``emails[type eq "work"].value``, ``emails[type eq "work"]`` (the whole element), each optionally
qualified by a schema URN: ``urn:…:enterprise:2.0:User:department``. A path qualified by a core
schema URN addresses the top-level attribute.

Case: attribute names and schema URNs are case-insensitive (RFC 7643 §2.1,
https://www.rfc-editor.org/rfc/rfc7643#section-2.1), and so are the ``type`` values a filter
selects by (``caseExact`` is false for ``type`` in every core multi-valued attribute). Reads
find a key whatever its case; writes keep the spelling the resource already has.

``None`` as a written value: ``set_value(..., none_removes=True)`` removes the attribute (a PUT
body, a resource after the change); otherwise it is written as JSON null (GoTo's merge-style
"clear this"). Inside a multi-valued attribute ``None`` always removes the sub-attribute, and an
element left with nothing but its filter attribute (and ``primary``) is removed: an e-mail
without a value is no e-mail. A removal never creates a container.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared.scim.schemas import is_core_urn

_NAME = r"[A-Za-z][\w$-]*"
_PATH = re.compile(
    rf"^(?:(?P<urn>(?i:urn):[\w.-]+(?::[\w.-]+)*):)?(?P<attr>{_NAME})"
    rf'(?:\[(?P<fattr>{_NAME})\s+(?i:eq)\s+"(?P<fval>(?:[^"\\]|\\.)*)"\])?'
    rf"(?:\.(?P<sub>{_NAME}))?$"
)
_PRIMARY = "primary"


class Absent(enum.Enum):
    """What ``lookup`` answers for a path the resource does not carry (distinct from null)."""

    ABSENT = "absent"


ABSENT = Absent.ABSENT


@dataclass(frozen=True)
class PathRef:
    """One parsed SCIM attribute path."""

    path: str
    attr: str
    urn: str | None = None  # an extension schema; None for core attributes
    filter_attr: str | None = None
    filter_value: str | None = None
    sub: str | None = None

    @property
    def top(self) -> str:
        """The top-level key of the resource this path lives under."""
        return self.urn or self.attr

    @property
    def filtered(self) -> bool:
        return self.filter_attr is not None

    @property
    def whole(self) -> PathRef:
        """The attribute itself, without filter or sub-attribute: ``emails`` for
        ``emails[type eq "work"].value``."""
        return PathRef(f"{self.urn}:{self.attr}" if self.urn else self.attr, self.attr, self.urn)


@lru_cache(maxsize=4096)
def parse_path(path: str) -> PathRef:
    """The parts of a path; ValueError names a path outside the forms above."""
    match = _PATH.match(path) if isinstance(path, str) else None
    if not match:
        raise ValueError(f"unsupported SCIM attribute path: {path!r}")
    urn = match["urn"]
    if urn is not None and is_core_urn(urn):
        urn = None
    fval = match["fval"]
    if fval is not None:
        fval = re.sub(r"\\(.)", r"\1", fval)
    return PathRef(path, match["attr"], urn, match["fattr"], fval, match["sub"])


def split_path(path: str) -> tuple[str | None, str]:
    """The schema URN a path is qualified with (as written, core URNs included) and the rest:
    ``('urn:…:User', 'department')``; ``(None, path)`` for an unqualified path. Does not
    validate: a path that ``parse_path`` refuses still splits, so that a caller can say which
    part is wrong."""
    if path[:4].lower() != "urn:":
        return None, path
    head, bracket, tail = path.partition("[")
    urn, _, attr = head.rpartition(":")
    return urn, attr + bracket + tail


def short_name(path: str) -> str:
    """The path without its schema URN, for one-line reasons: ``urn:…:User:department`` ->
    ``department``."""
    return split_path(path)[1]


def key_of(obj: Mapping[str, Any], name: str) -> str | None:
    """The key of ``obj`` that spells ``name`` (in any case), or None."""
    if name in obj:
        return name
    lower = name.lower()
    return next((k for k in obj if isinstance(k, str) and k.lower() == lower), None)


def container(resource: dict[str, Any], ref: PathRef, *, create: bool) -> dict[str, Any] | None:
    """The object a path's attribute lives in: the resource, or its extension object (created
    when ``create``; None when missing and not created)."""
    if ref.urn is None:
        return resource
    key = key_of(resource, ref.urn)
    ext = resource[key] if key is not None else None
    if isinstance(ext, dict):
        return ext
    if not create:
        return None
    ext = resource[key or ref.urn] = {}
    return ext


def lookup(resource: Mapping[str, Any], path: str | PathRef) -> Any:
    """The value at ``path``, or ``ABSENT`` when the resource does not carry it (a present
    null is None)."""
    ref = _ref(path)
    box = _read_container(resource, ref)
    key = key_of(box, ref.attr) if box is not None else None
    if box is None or key is None:
        return ABSENT
    value = box[key]
    if ref.filtered:
        if not isinstance(value, list):
            return ABSENT
        value = next((item for item in value if _selects(item, ref)), ABSENT)
        if value is ABSENT:
            return ABSENT
    if ref.sub is None:
        return value
    if not isinstance(value, Mapping):
        return ABSENT
    sub = key_of(value, ref.sub)
    return ABSENT if sub is None else value[sub]


def get_value(resource: Mapping[str, Any], path: str | PathRef) -> Any:
    """The value at ``path`` in a SCIM resource, or None when absent."""
    value = lookup(resource, path)
    return None if value is ABSENT else value


def has_value(resource: Mapping[str, Any], path: str | PathRef) -> bool:
    """Whether the resource carries the path's attribute at all (a server may drop attributes it
    does not keep): ``name`` for ``name.givenName``, the ``emails`` list for a filtered path."""
    ref = _ref(path)
    box = _read_container(resource, ref)
    key = key_of(box, ref.attr) if box is not None else None
    if box is None or key is None:
        return False
    return isinstance(box[key], list) if ref.filtered else True


def set_value(resource: dict[str, Any], path: str | PathRef, value: Any, *, none_removes: bool = False) -> None:
    """Writes ``value`` at ``path`` in place, creating the containers a SCIM body needs. A
    filtered path updates the first element its filter selects, or appends one."""
    ref = _ref(path)
    removing = value is None and (none_removes or ref.filtered)
    box = container(resource, ref, create=not removing)
    if box is None:
        return
    key = key_of(box, ref.attr) or ref.attr
    if ref.filtered:
        _set_element(box, key, ref, value)
        return
    if ref.sub is not None:
        parent = box.get(key)
        if not isinstance(parent, dict):
            if removing:
                return
            parent = box[key] = {}
        box, key = parent, key_of(parent, ref.sub) or ref.sub
    if removing:
        box.pop(key, None)
    else:
        box[key] = value


def _ref(path: str | PathRef) -> PathRef:
    return path if isinstance(path, PathRef) else parse_path(path)


def _read_container(resource: Mapping[str, Any], ref: PathRef) -> Mapping[str, Any] | None:
    if ref.urn is None:
        return resource
    key = key_of(resource, ref.urn)
    ext = resource[key] if key is not None else None
    return ext if isinstance(ext, Mapping) else None


def _selects(item: Any, ref: PathRef) -> bool:
    """Whether a multi-valued element matches the path's ``[attr eq "value"]`` filter."""
    if not isinstance(item, Mapping) or ref.filter_attr is None or ref.filter_value is None:
        return False
    key = key_of(item, ref.filter_attr)
    value = item[key] if key is not None else None
    return value is not None and str(value).casefold() == ref.filter_value.casefold()


def _set_element(box: dict[str, Any], key: str, ref: PathRef, value: Any) -> None:
    current = box.get(key)
    items = [dict(i) if isinstance(i, Mapping) else i for i in current] if isinstance(current, list) else []
    index = next((n for n, item in enumerate(items) if _selects(item, ref)), None)
    if value is None:
        if index is None:
            return
        _clear(items, index, ref)
    elif index is None:
        items.append(_new_element(ref, value, items))
    elif ref.sub is None:
        items[index] = _whole_element(ref, value)
    else:
        item = items[index]
        item[key_of(item, ref.sub) or ref.sub] = value
    box[key] = items


def _clear(items: list[Any], index: int, ref: PathRef) -> None:
    item = items[index]
    if ref.sub is not None:
        sub = key_of(item, ref.sub)
        if sub is not None:
            del item[sub]
        kept = {str(ref.filter_attr).lower(), _PRIMARY}
        if any(str(k).lower() not in kept for k in item):
            return
    del items[index]


def _whole_element(ref: PathRef, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{ref.path}: a whole element of a multi-valued attribute is an object, not {value!r}")
    element = dict(value)
    if key_of(element, str(ref.filter_attr)) is None:
        element[str(ref.filter_attr)] = ref.filter_value
    return element


def _new_element(ref: PathRef, value: Any, items: list[Any]) -> dict[str, Any]:
    """A new element; the first e-mail of a list that has no primary one becomes primary."""
    if ref.sub is None:
        element = _whole_element(ref, value)
    else:
        element = {str(ref.filter_attr): ref.filter_value, ref.sub: value}
    if ref.attr.lower() == "emails" and key_of(element, _PRIMARY) is None and not any(map(_is_primary, items)):
        element[_PRIMARY] = True
    return element


def _is_primary(item: Any) -> bool:
    if not isinstance(item, Mapping):
        return False
    key = key_of(item, _PRIMARY)
    value = item[key] if key is not None else None
    return value is True or (isinstance(value, str) and value.lower() == "true")
