"""A SCIM list answer read one resource at a time.

GoTo documents no paging for ``GET /Users`` (docs/reference/goto-api.md#u5): a tenant's whole
user list can come back in one answer, 35 MB of JSON for 100,000 users. Parsed whole, that is
about 2 KB of Python objects per user held at once; a full cycle only needs each user long enough
to index it. ``ListAnswer`` keeps the answer as text and decodes one resource at a time with the
standard library's ``JSONDecoder.raw_decode``: the objects of one user at a time, never the list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx

from .errors import SERVICE_INCOMPATIBLE, GoToError, Op

RESOURCE_KEYS = ("Resources", "resources")  # SCIM 2.0's name, GoTo 1.x's
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _Malformed(Exception):
    """The answer is not the JSON it should be (turned into a GoToError naming the request)."""


class ListAnswer:
    """The resources of one list answer, decoded as they are iterated; after the iteration,
    ``total`` is its ``totalResults`` (None when absent, 0 for an empty body) and ``count`` the
    resources it held. Accepts ``{"Resources": [...]}``, ``{"resources": [...]}`` (the first of
    the two that is not null) and a bare JSON list; items that are not objects are skipped."""

    def __init__(self, text: str, op: Op, status: int = 200) -> None:
        self.text = text
        self.op = op
        self.status = status
        self.total: int | None = None
        self.count = 0

    @classmethod
    def of(cls, response: httpx.Response, op: Op) -> ListAnswer:
        content = response.content
        return cls(content.decode(json.detect_encoding(content), "surrogatepass"), op, response.status_code)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self._resources()
        except (_Malformed, ValueError, IndexError) as exc:
            detail = str(exc) if isinstance(exc, _Malformed) else "a body that is not JSON"
            raise GoToError(
                f"{self.op.subject}: HTTP {self.status} with {detail}",
                status=self.status,
                code=SERVICE_INCOMPATIBLE,
                op=self.op,
            ) from None
        finally:
            self.text = ""  # the answer is read once; its text is not kept

    def _resources(self) -> Iterator[dict[str, Any]]:
        pos = self._skip(0)
        if pos == len(self.text):
            self.total = 0
            return
        if self.text[pos] == "[":
            pos = yield from self._items(pos)
        elif self.text[pos] == "{":
            pos = yield from self._members(pos)
        else:
            raise _Malformed("a list answer that is not a JSON object")
        if self._skip(pos) != len(self.text):
            raise _Malformed("a body that is not JSON")

    def _members(self, pos: int) -> Iterator[dict[str, Any]]:
        """The top-level object's members: the resources array is iterated, the rest decoded."""
        taken = False
        pos = self._skip(pos + 1)
        if self.text[pos] == "}":
            return pos + 1
        while True:
            key, pos = _DECODER.raw_decode(self.text, pos)
            if not isinstance(key, str):
                raise _Malformed("a body that is not JSON")
            pos = self._expect(pos, ":")
            if key in RESOURCE_KEYS and not taken and self.text.startswith("[", pos):
                taken = True
                pos = yield from self._items(pos)
            else:
                value, pos = _DECODER.raw_decode(self.text, pos)
                self._member(key, value, taken)
            pos = self._skip(pos)
            if self.text[pos] == "}":
                return pos + 1
            pos = self._expect(pos, ",")

    def _member(self, key: str, value: Any, taken: bool) -> None:
        if key == "totalResults":
            try:
                self.total = int(value) if value is not None else None
            except (TypeError, ValueError):
                self.total = None
        elif key in RESOURCE_KEYS and value is not None and not taken:
            raise _Malformed(f"'{key}' that is not a list")

    def _items(self, pos: int) -> Iterator[dict[str, Any]]:
        """The array at `pos`, one item at a time; returns the position after it."""
        pos = self._skip(pos + 1)
        if self.text[pos] == "]":
            return pos + 1
        while True:
            item, pos = _DECODER.raw_decode(self.text, pos)
            if isinstance(item, dict):
                self.count += 1
                yield item
            pos = self._skip(pos)
            if self.text[pos] == "]":
                return pos + 1
            pos = self._expect(pos, ",")

    def _skip(self, pos: int) -> int:
        match = _SPACE.match(self.text, pos)
        return match.end() if match else pos

    def _expect(self, pos: int, char: str) -> int:
        pos = self._skip(pos)
        if self.text[pos] != char:
            raise _Malformed("a body that is not JSON")
        return self._skip(pos + 1)
