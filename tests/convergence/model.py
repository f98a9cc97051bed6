"""The oracle of the convergence suite, computed from the Graph emulator's state with Entra's
rules written out here again (nothing from shared.engine or shared.mapping is used):

- `directory()`: every Entra user the test ever created, as Entra has it now (state, roles,
  scope, the attributes the default GoTo mapping reads);
- `Judge`: replays the GoTo emulator's write journal and says which writes broke the safety
  invariant, judged against the directory at the moment of the run;
- `mismatches()`: how GoTo differs from what the directory says it should be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulators.goto import GoToEmulator
from emulators.graph import GraphEmulator

DEFAULT_ACCESS_ROLE_ID = "00000000-0000-0000-0000-000000000000"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass(frozen=True)
class Policy:
    """The settings the oracle needs (the suite's world sets the same ones in gotosync)."""

    hard_delete_action: str  # "delete" | "disable"
    role_licenses: Mapping[str, tuple[str, ...]]  # role value -> license codes
    license_keys: Mapping[str, str]  # license code -> the GoTo account's license key
    keeps_extensions: bool  # GoTo stores externalId, emails and the enterprise extension

    def entitled(self, roles: Iterable[str]) -> set[str]:
        return {self.license_keys[code] for role in roles for code in self.role_licenses.get(role, ())}


@dataclass(frozen=True)
class EntraUser:
    id: str
    state: str  # "active" | "blocked" | "soft-deleted" | "hard-deleted"
    upn: str = ""
    roles: frozenset[str] = frozenset()  # role values; "" is Default Access
    assigned: bool = False
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def in_scope(self) -> bool:
        """Entra's scope: active, assigned (directly or as a direct member of an assigned
        group) and holding a role other than Default Access (DEFAULT_ACCESS_ONLY=skip)."""
        return self.state == "active" and self.assigned and any(self.roles)

    def why_out(self) -> str:
        if self.state != "active":
            return self.state
        if not self.assigned:
            return "not assigned"
        return "" if any(self.roles) else "only Default Access"


def directory(graph: GraphEmulator, user_ids: Iterable[str]) -> dict[str, EntraUser]:
    """The Entra users named by `user_ids` as the Graph emulator has them now."""
    tenant = graph.tenant
    with tenant.lock:
        role_value = {r["id"]: r["value"] for r in tenant.sp["appRoles"]}
        role_value[DEFAULT_ACCESS_ROLE_ID] = ""
        direct: dict[str, set[str]] = {}
        for a in tenant.assignments.values():
            direct.setdefault(a.principal_id, set()).add(role_value.get(a.app_role_id, ""))
        out: dict[str, EntraUser] = {}
        for uid in user_ids:
            user = tenant.users.get(uid)
            if user is None:
                out[uid] = EntraUser(uid, "hard-deleted")
                continue
            props = graph.user(uid)
            state = "soft-deleted" if user.deleted else ("active" if props["accountEnabled"] else "blocked")
            roles = set(direct.get(uid, set()))
            assigned = uid in direct
            for gid, group in tenant.groups.items():
                if gid in direct and not group.deleted and uid in group.members:
                    roles |= direct[gid]
                    assigned = True
            attributes = {k: props.get(k) for k in ("displayName", "givenName", "surname", "mail", "department")}
            attributes["employeeId"] = props.get("employeeId")
            out[uid] = EntraUser(uid, state, str(props["userPrincipalName"]), frozenset(roles), assigned, attributes)
        return out


def expected_attributes(user: EntraUser, policy: Policy) -> dict[str, Any]:
    """What the default GoTo mapping gives an in-scope user, as the GoTo emulator shows it."""
    a = user.attributes
    want: dict[str, Any] = {
        "userName": user.upn.lower(),
        "active": True,
        "displayName": a["displayName"],
        "givenName": a["givenName"],
        "familyName": a["surname"],
    }
    if policy.keeps_extensions:
        want["externalId"] = user.id
        want["workEmail"] = a["mail"]
        want["department"] = a["department"]
        want["employeeNumber"] = a["employeeId"]
    return want


def shown_attributes(goto_user: Mapping[str, Any], policy: Policy) -> dict[str, Any]:
    """The same attributes, read from a GoTo emulator user."""
    shown: dict[str, Any] = {
        "userName": str(goto_user["userName"]).lower(),
        "active": goto_user["active"],
        "displayName": goto_user["displayName"],
        "givenName": goto_user["givenName"],
        "familyName": goto_user["familyName"],
    }
    if policy.keeps_extensions:
        emails = goto_user.get("emails") or []
        work = [e.get("value") for e in emails if isinstance(e, dict) and e.get("type") == "work"]
        enterprise = goto_user.get("enterprise") or {}
        shown["externalId"] = goto_user.get("externalId")
        shown["workEmail"] = work[0] if work else None
        shown["department"] = enterprise.get("department")
        shown["employeeNumber"] = enterprise.get("employeeNumber")
    return shown


# Kinds of violation, each checked on its own so that a failing run names the first kind seen.
KINDS = ("deleted", "disabled", "second account", "seat released", "other")
Verdict = dict[str, list[str]]


class Judge:
    """Reads the GoTo write journal in order and judges every write gotosync made.

    Which Entra user a GoTo user belongs to is decided once, when it is created: by the
    externalId sent (when GoTo keeps it), else by the userName, since the suite never reuses a
    userPrincipalName (`upn_owner`)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.upn_owner: dict[str, str] = {}  # every UPN an Entra user ever had -> its id
        self.owner: dict[str, str] = {}  # GoTo key -> Entra id
        self.in_org: dict[str, bool] = {}  # GoTo key -> in the organization
        self.provisioned: set[str] = set()  # Entra ids that ever got a GoTo user
        self.seen = 0  # journal entries judged so far

    def note_upn(self, entra_id: str, upn: str) -> None:
        self.upn_owner[upn.lower()] = entra_id

    def judge(self, entries: list[dict[str, Any]], moment: Mapping[str, EntraUser]) -> Verdict:
        """Violations in `entries` (journal entries after `seen`) by kind, against the directory
        `moment` (as it was when the run started; the suite changes nothing during a run)."""
        verdict: Verdict = {kind: [] for kind in KINDS}
        for entry in entries:
            for kind, problem in self._one(entry, moment):
                verdict[kind].append(problem)
            self.seen = max(self.seen, int(entry["seq"]))
        return verdict

    def _one(self, entry: dict[str, Any], moment: Mapping[str, EntraUser]) -> list[tuple[str, str]]:
        key, events = str(entry["key"]), entry["events"]
        if "created" in events and key not in self.owner:
            owner = self._owner_of(entry)
            if owner is None:
                self.in_org[key] = True
                return [("other", f"{_what(entry)}: created a GoTo user for no Entra user the test made")]
            self.owner[key] = owner
        entra_id = self.owner.get(key)
        if entra_id is None:
            return [("other", f"{_what(entry)}: changed a GoTo user gotosync does not manage")]
        user = moment[entra_id]
        found = [
            (k, f"{_what(entry)} for Entra user {entra_id} ({_state(user)}): {p}") for k, p in self._check(entry, user)
        ]
        self.in_org[key] = bool(entry["inOrg"])
        if "created" in events:
            self.provisioned.add(entra_id)
        return found

    def _owner_of(self, entry: dict[str, Any]) -> str | None:
        external = entry.get("externalId")
        if external and external in self.upn_owner.values():
            return str(external)
        return self.upn_owner.get(str(entry["userName"]).lower())

    def _check(self, entry: dict[str, Any], user: EntraUser) -> list[tuple[str, str]]:
        events, key = entry["events"], str(entry["key"])
        found: list[tuple[str, str]] = []
        if "created" in events:
            others = [k for k, o in self.owner.items() if o == user.id and k != key and self.in_org.get(k)]
            if others:
                found.append(("second account", f"a second GoTo account; the user already has {', '.join(others)}"))
            if not user.in_scope:
                found.append(("other", "created, but the user is out of scope"))
        if ("deleted" in events or "removed-from-account" in events) and not self._delete_expected(user):
            found.append(
                ("deleted", "deleted, but the Entra user is not hard-deleted (with HARD_DELETE_ACTION=delete)")
            )
        if "disabled" in events and (user.in_scope or self._delete_expected(user)):
            found.append(
                ("disabled", "disabled, but the user is in scope" if user.in_scope else "disabled, not deleted")
            )
        if "enabled" in events and not user.in_scope:
            found.append(("other", "enabled, but the user is out of scope"))
        if "licenses" in events:
            released = set(entry["licenses"]["before"]) - set(entry["licenses"]["after"])
            kept_back = released & (self.policy.entitled(user.roles) if user.in_scope else set())
            if kept_back:
                found.append(("seat released", f"released seat(s) {sorted(kept_back)} the user is entitled to"))
        renamed = entry["fields"].get("userName")
        if renamed and user.state != "hard-deleted" and str(renamed[1]).lower() != user.upn.lower():
            found.append(("other", f"userName set to {renamed[1]!r}, but the user's UPN is {user.upn!r}"))
        return found

    def _delete_expected(self, user: EntraUser) -> bool:
        return user.state == "hard-deleted" and self.policy.hard_delete_action == "delete"


def mismatches(goto: GoToEmulator, users: Mapping[str, EntraUser], judge: Judge, policy: Policy) -> list[str]:
    """How GoTo differs from the directory: every in-scope user once, active, with the mapped
    attributes and seats; provisioned users out of scope disabled without seats; hard-deleted
    users gone (or disabled, with HARD_DELETE_ACTION=disable); nobody else."""
    accounts: dict[str, list[dict[str, Any]]] = {}
    for u in goto.users():
        if not u["inOrg"]:
            continue
        owner = judge.owner.get(str(u["key"]))
        if owner is None:
            if u["userName"] != goto.admin_email:
                accounts.setdefault("(no Entra user)", []).append(u)
            continue
        accounts.setdefault(owner, []).append(u)
    problems = [
        f"GoTo user {u['userName']} ({u['key']}) belongs to no Entra user" for u in accounts.pop("(no Entra user)", [])
    ]
    for uid, user in sorted(users.items()):
        problems += [
            f"Entra user {uid} ({_state(user)}): {p}"
            for p in _account_problems(user, accounts.get(uid, []), judge, policy)
        ]
    return problems


def _account_problems(user: EntraUser, mine: list[dict[str, Any]], judge: Judge, policy: Policy) -> list[str]:
    keys = sorted(str(u["key"]) for u in mine)
    if user.in_scope:
        if len(mine) != 1:
            return [f"in scope, so exactly one GoTo user is expected; found {keys or 'none'}"]
        problems = [
            f"{name} is {have!r}, expected {want!r}"
            for name, want in expected_attributes(user, policy).items()
            if (have := shown_attributes(mine[0], policy)[name]) != want
        ]
        seats = sorted(mine[0]["licenseKeys"])
        if seats != sorted(policy.entitled(user.roles)):
            problems.append(f"seats are {seats}, expected {sorted(policy.entitled(user.roles))}")
        return problems
    if (user.state == "hard-deleted" and policy.hard_delete_action == "delete") or user.id not in judge.provisioned:
        return [f"expected no GoTo user; found {keys}"] if mine else []
    if len(mine) != 1:
        return [f"provisioned and now out of scope: one disabled GoTo user expected; found {keys or 'none'}"]
    problems = [] if mine[0]["active"] is False else ["out of scope but still active in GoTo"]
    if mine[0]["licenseKeys"]:
        problems.append(f"out of scope but still holds seats {sorted(mine[0]['licenseKeys'])}")
    return problems


def _what(entry: dict[str, Any]) -> str:
    return (
        f"journal #{entry['seq']} {entry['method']} {entry['path']} ({'+'.join(entry['events'])} {entry['userName']})"
    )


def _state(user: EntraUser) -> str:
    return "in scope" if user.in_scope else f"out of scope: {user.why_out()}"
