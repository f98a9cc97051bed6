"""Matching: which GoTo user an Entra user is, in one order for every entrance.

1. the stored link (the GoTo id gotosync created or matched);
2. the create intent (recorded before every POST: a crash between the POST and the link write
   leaves it, and the GoTo user is found by the userName that was about to be sent);
3. `externalId` = the Entra object id (sent on every create), where GoTo keeps and filters it
   (unconfirmed: a target that drops or refuses it is detected and skipped);
4. the mapped matching attributes in precedence order.

A GoTo user found by 3 or 4 that another Entra user already owns (its id is that user's link,
or it carries that user's object id as externalId) is never taken over: the plan fails with
DuplicateSourceEntries. Full cycles match against one in-memory index of every GoTo user;
incremental and targeted runs look each user up in GoTo, except a user with a live, owned link:
that one is the GoTo user gotosync last left it (`link_target`), so that a change costs GoTo one
write and no read. Drift made in GoTo by hand is found where GoTo is listed (full cycles, the
drift sweep); a linked user deleted in GoTo answers the write with 404, and the run looks it up
afresh (shared/engine/cycle.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from shared.engine.plan import Match
from shared.goto.errors import AuthError, BadRequest, GoToError
from shared.goto.scim import GoToScimClient
from shared.model import Link, SourceUser
from shared.scim.paths import get_value
from shared.scim.resource import build_resource

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EXTERNAL_ID = "externalId"
INTENT = "intent"
LINK = "link"

MatchingValues = Callable[[SourceUser], list[tuple[str, str]]]
OwnerLookup = Callable[[str], Awaitable[str | None]]  # GoTo id -> Entra id of its live link


def intent_user_name(link: Link | None) -> str:
    """The userName a pending create intent was about to send."""
    value = link.exported.get("userName") if link is not None and link.pending else None
    return value if isinstance(value, str) else ""


def external_id_of(resource: Mapping[str, Any]) -> str:
    value = resource.get(EXTERNAL_ID)
    return value.lower() if isinstance(value, str) and GUID.match(value) else ""


def _text(resource: Mapping[str, Any], path: str) -> str:
    value = get_value(dict(resource), path)
    return value if isinstance(value, str) else ""


def link_target(link: Link) -> dict[str, Any] | None:
    """The GoTo user as gotosync last left it, rebuilt from a live, owned link: the values last
    exported (by SCIM path), its id and `active`. None when the link cannot stand in for a read
    (not live, not owned, or nothing recorded as exported)."""
    if not link.live or not link.owned or not link.exported:
        return None
    resource = build_resource(link.exported)
    resource["id"] = link.goto_id
    resource["active"] = link.active
    return resource


class Owners:
    """Which Entra user owns which GoTo user: by live links, and by externalId."""

    def __init__(self, links: Iterable[Link] | Mapping[str, str]) -> None:
        """From links, or from a map of live links' GoTo id -> Entra id."""
        if isinstance(links, Mapping):
            self.by_goto_id = {goto_id: uid.lower() for goto_id, uid in links.items()}
        else:
            self.by_goto_id = {lk.goto_id: lk.entra_id.lower() for lk in links if lk.live}

    def claimed_by_other(self, resource: Mapping[str, Any], user_id: str) -> str:
        """The Entra id of another user that owns `resource`, or ""."""
        uid = user_id.lower()
        owner = self.by_goto_id.get(str(resource.get("id", "")), uid)
        if owner != uid:
            return owner
        external = external_id_of(resource)
        return external if external and external != uid else ""


class GoToIndex:
    """Every GoTo user, indexed by id, externalId and each matching attribute (lower case).

    A full cycle holds the whole GoTo listing here, so each user is kept as its compact JSON
    text (about a fifth of the parsed dict's memory) and parsed again when a lookup returns it;
    a key with one hit maps to its position, not to a list."""

    def __init__(self, matching_targets: Iterable[str]) -> None:
        self.targets = tuple(matching_targets)
        self._resources: list[str] = []
        self._by: dict[str, int | list[int]] = {}

    @property
    def size(self) -> int:
        return len(self._resources)

    def add(self, resource: dict[str, Any]) -> None:
        position = len(self._resources)
        self._resources.append(json.dumps(resource, separators=(",", ":"), ensure_ascii=False))
        self._put("id:" + str(resource.get("id")), position)
        external = external_id_of(resource)
        if external:
            self._put(f"{EXTERNAL_ID}:{external}", position)
        for target in self.targets:
            value = _text(resource, target)
            if value:
                self._put(f"{target}:{value.lower()}", position)

    def _put(self, key: str, position: int) -> None:
        known = self._by.get(key)
        if known is None:
            self._by[key] = position
        elif isinstance(known, int):
            self._by[key] = [known, position]
        else:
            known.append(position)

    def _hits(self, key: str) -> list[dict[str, Any]]:
        known = self._by.get(key)
        if known is None:
            return []
        positions = [known] if isinstance(known, int) else known
        return [json.loads(self._resources[p]) for p in positions]

    def get(self, attribute: str, value: str) -> list[dict[str, Any]]:
        return self._hits(f"{attribute}:{value.lower()}")

    def by_id(self, goto_id: str) -> dict[str, Any] | None:
        hits = self._hits("id:" + goto_id)
        return hits[0] if hits else None

    def external_ids(self) -> dict[str, list[dict[str, Any]]]:
        """GoTo users that carry an Entra object id as externalId, by that id."""
        prefix = f"{EXTERNAL_ID}:"
        return {key[len(prefix) :]: self._hits(key) for key in self._by if key.startswith(prefix)}


def _decide(
    user: SourceUser,
    tried: list[tuple[str, str, int]],
    attribute: str,
    hits: list[dict[str, Any]],
    owners: Owners | None,
    link_lost: bool,
) -> Match | None:
    """The match for one lookup's hits, or None to try the next attribute."""
    if not hits:
        return None
    if len(hits) > 1:
        return Match(None, attribute, tuple(tried), duplicates=len(hits), link_lost=link_lost)
    other = owners.claimed_by_other(hits[0], user.id) if owners is not None else ""
    if other:
        return Match(None, attribute, tuple(tried), link_lost=link_lost, claimed_by=other)
    return Match(hits[0], attribute, tuple(tried), link_lost=link_lost)


def match_in_index(
    user: SourceUser, link: Link | None, index: GoToIndex, values: MatchingValues, owners: Owners
) -> Match:
    """Full cycles: the four steps against the index of every GoTo user."""
    link_lost = False
    if link is not None and link.live:
        target = index.by_id(link.goto_id)
        if target is not None:
            return Match(target, LINK)
        link_lost = True
    tried: list[tuple[str, str, int]] = []
    name = intent_user_name(link)
    if name:
        hits = index.get("userName", name)
        tried.append((INTENT, name, len(hits)))
        found = _decide(user, tried, INTENT, hits, owners, link_lost)
        if found is not None:
            return found
    hits = index.get(EXTERNAL_ID, user.id)
    tried.append((EXTERNAL_ID, user.id, len(hits)))
    found = _decide(user, tried, EXTERNAL_ID, hits, owners, link_lost)
    if found is not None:
        return found
    mapped = values(user)
    for target, value in mapped:
        hits = index.get(target, value)
        tried.append((target, value, len(hits)))
        found = _decide(user, tried, target, hits, owners, link_lost)
        if found is not None:
            return found
    return Match(None, "", tuple(tried), link_lost=link_lost, no_value=not mapped and not name)


class RemoteMatcher:
    """Incremental and targeted runs: the four steps as GoTo lookups, one user at a time.

    A GoTo error on a lookup fails that user only (it is escrowed), never the run; refused
    credentials stop the run. Whether GoTo can filter on externalId is learnt once per run."""

    def __init__(
        self,
        scim: GoToScimClient,
        values: MatchingValues,
        owners: Owners,
        owner_of: OwnerLookup | None = None,
        *,
        trust_link: bool = False,
    ) -> None:
        """`owners`: the links known to the run; `owner_of`: a lookup for runs that did not read
        every link (targeted runs), asked only when a user is found by externalId or attribute.
        `trust_link`: a live, owned link stands for the GoTo user (`link_target`) instead of a
        GET; off, the linked user is read from GoTo."""
        self.scim = scim
        self.values = values
        self.owners = owners
        self.owner_of = owner_of
        self.trust_link = trust_link
        self.external_id_filter = True

    async def match(self, user: SourceUser, link: Link | None) -> Match:
        try:
            found = await self._match(user, link)
        except AuthError:
            raise
        except GoToError as exc:
            return Match(None, "", (), error=(exc.code, f"GoTo could not be read for this user: {exc}"))
        if found.target is not None and found.matched_by != LINK and self.owner_of is not None:
            owner = await self.owner_of(str(found.target.get("id", "")))
            if owner and owner.lower() != user.id.lower():
                return Match(None, found.matched_by, found.tried, link_lost=found.link_lost, claimed_by=owner)
        return found

    async def _match(self, user: SourceUser, link: Link | None) -> Match:
        link_lost = False
        if link is not None and link.live:
            rebuilt = link_target(link) if self.trust_link else None
            if rebuilt is not None:
                return Match(rebuilt, LINK, rebuilt=True)
            target = await self.scim.get_user(link.goto_id)
            if target is not None:
                return Match(target, LINK)
            link_lost = True
        tried: list[tuple[str, str, int]] = []
        name = intent_user_name(link)
        if name:
            hits = await self.scim.find_users("userName", name)
            tried.append((INTENT, name, len(hits)))
            found = _decide(user, tried, INTENT, hits, self.owners, link_lost)
            if found is not None:
                return found
        found = await self._by_external_id(user, tried, link_lost)
        if found is not None:
            return found
        mapped = self.values(user)
        for target, value in mapped:
            try:
                hits = await self.scim.find_users(target, value)
            except (AuthError, BadRequest) as exc:
                if isinstance(exc, AuthError):
                    raise
                problem = (exc.code, f"GoTo refused the lookup {target} eq {value!r}: {exc}")
                return Match(None, target, tuple(tried), link_lost=link_lost, error=problem)
            tried.append((target, value, len(hits)))
            found = _decide(user, tried, target, hits, self.owners, link_lost)
            if found is not None:
                return found
        return Match(None, "", tuple(tried), link_lost=link_lost, no_value=not mapped and not name)

    async def _by_external_id(
        self, user: SourceUser, tried: list[tuple[str, str, int]], link_lost: bool
    ) -> Match | None:
        if not self.external_id_filter:
            return None
        try:
            found = await self.scim.find_users(EXTERNAL_ID, user.id)
        except BadRequest:
            self.external_id_filter = False  # GoTo cannot filter on it (unconfirmed behaviour)
            return None
        # A server that ignores the filter, or drops externalId, answers users that do not
        # carry this id: only an exact externalId counts here.
        hits = [r for r in found if external_id_of(r) == user.id.lower()]
        tried.append((EXTERNAL_ID, user.id, len(hits)))
        return _decide(user, tried, EXTERNAL_ID, hits, self.owners, link_lost)
