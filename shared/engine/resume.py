"""Where a continuing full cycle's /users listing stands, across its invocations.

An invocation that runs out of its time budget hands the cycle on (D55). Its next invocation
reads the assignments, the links and GoTo again (full_context), but goes on with Graph's /users
listing from the page it had reached instead of the first one: every page an invocation finished
(its creates and updates exported and committed) is saved as a row of the listing table when it
hands on (shared/store/listing.py), and the next invocation takes from those rows

- where the listing stands: the nextLink after the last page saved, the users listed so far and
  Graph's count, so that the listing is still checked against that count at its end;
- the wanted users the earlier pages listed, with the scope (role values, or not assigned) each
  was planned with: a user whose scope is the same now counts as seen (it is neither listed again
  nor read by id), a user whose scope changed since is read by id at the end of the listing and
  planned afresh, as a user the listing did not show (full_missing);
- the users whose disable or delete was held for the end of the listing: read by id at the end
  too, so that each such decision rests on a fresh read and the deletion guards count it with
  every other disable and delete of the cycle.

A page the budget ran out on is not saved (it may be half exported): it is read again, and the
users it had done plan as in step. If Graph refuses the saved nextLink (whether and when a
$skiptoken expires is not documented), the listing starts again at its first page, as it did
before positions were saved; an error is never taken for the end of the listing. Saving costs
no Graph or GoTo request: a few Table Storage writes when the cycle is handed on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from shared.engine.reading import FullPage, FullRead
from shared.entra.reader import ListingPosition
from shared.model import SourceUser
from shared.store import ListedPage, Store
from shared.store.listing import Scope


def scope_of(user: SourceUser) -> Scope:
    """The scope a user is planned with: its role values, or None when it is not assigned."""
    return tuple(sorted(user.roles)) if user.assigned else None


def scope_now(ctx: FullRead, uid: str) -> Scope:
    roles = ctx.roles_of.get(uid)
    return None if roles is None else tuple(sorted(roles))


@dataclass
class ListingResume:
    """The pages earlier invocations of the cycle finished, and those this one finishes."""

    cycle_id: str
    config: str
    earlier: list[ListedPage] = field(default_factory=list)
    listing: str = field(default_factory=lambda: uuid.uuid4().hex)
    done: list[ListedPage] = field(default_factory=list)
    restarted: bool = False  # the listing started again (a refused nextLink, another configuration)
    again: int = 0  # users of earlier pages that are read by id at the end
    scopes: dict[Scope, Scope] = field(default_factory=dict)  # one tuple per scope, shared by its users

    def _shared(self, scope: Scope) -> Scope:
        return self.scopes.setdefault(scope, scope)

    @classmethod
    async def load(cls, store: Store, cycle_id: str, config: str) -> ListingResume:
        """The pages the cycle's earlier invocations saved, as far as they were planned with
        this configuration (a changed mapping re-plans everyone: the listing starts again)."""
        pages = await store.listing.load(cycle_id)
        if all(p.config == config for p in pages):
            return cls(cycle_id, config, pages, pages[0].listing if pages else uuid.uuid4().hex)
        return cls(cycle_id, config, restarted=True)  # its rows are replaced when it hands on

    @property
    def position(self) -> ListingPosition | None:
        """Where the listing goes on (None: at its first page)."""
        if not self.earlier:
            return None
        last = self.earlier[-1]
        return ListingPosition(last.next_link, last.listed, last.expected)

    def prepare(self, ctx: FullRead) -> dict[str, str]:
        """Marks the earlier pages' users whose scope is unchanged and whose decision was not
        held as seen; the others stay unseen and are read by id at the end. Returns the
        userNames (casefolded) of the seen users' live links: the names earlier pages planned,
        for the clash check of the pages to come."""
        names: dict[str, str] = {}
        for page in self.earlier:
            for uid, scope in page.users.items():
                if uid in page.held or scope != scope_now(ctx, uid):
                    self.again += 1
                    continue
                ctx.seen.add(uid)
                link = ctx.stored.get(uid)
                name = link.exported.get("userName") if link is not None and link.live else None
                if isinstance(name, str) and name:
                    names.setdefault(name.casefold(), uid)
        return names

    def restart(self) -> None:
        """Graph refused the saved nextLink: the listing starts again at its first page, a new
        listing whose pages replace the earlier ones (the caller forgets what prepare marked)."""
        self.earlier, self.done, self.again = [], [], 0
        self.listing = uuid.uuid4().hex
        self.restarted = True

    def finished(self, page: FullPage, held: set[str]) -> None:
        """A page whose candidates were all exported and committed (or held for the end)."""
        users = {c.user.id: self._shared(scope_of(c.user)) for c in page.candidates}
        after = page.after
        self.done.append(
            ListedPage(
                page=len(self.earlier) + len(self.done),
                listing=self.listing,
                config=self.config,
                next_link=after.next_link,
                listed=after.listed,
                expected=after.expected,
                users=users,
                held=frozenset(held & users.keys()),
            )
        )

    async def save(self, store: Store) -> int:
        """Writes the pages this invocation finished (after removing a listing that was
        started again); returns how many were saved."""
        if self.restarted:
            await store.listing.forget(self.cycle_id)
            self.restarted = False
        return await store.listing.save(self.cycle_id, self.done) if self.done else 0
