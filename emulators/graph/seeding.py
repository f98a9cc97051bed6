"""Filling a tenant: loading the tenant JSON seed format (docs/emulator-graph.md) and the
deterministic generator (``plain`` and ``demo`` profiles). Same arguments, same tenant: ids
come from a ``random.Random`` seeded with ``seed``, never from the wall clock."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import GraphError, bad_request
from .model import Tenant, iso, new_guid, slug

# Inline, deterministic name lists (a few with diacritics and apostrophes on purpose: UPNs are
# ASCII, display names are not).
FIRST_NAMES: tuple[str, ...] = (
    "Adele",
    "Alex",
    "Allan",
    "Ana",
    "Ben",
    "Brian",
    "Carla",
    "Chloé",
    "Christie",
    "Dana",
    "Daniel",
    "David",
    "Diego",
    "Elena",
    "Emily",
    "Fatima",
    "François",
    "Grace",
    "Hana",
    "Henrik",
    "Irene",
    "Isaac",
    "Jamal",
    "Jana",
    "José",
    "Julia",
    "Jürgen",
    "Karen",
    "Kenji",
    "Laura",
    "Lee",
    "Lena",
    "Lidia",
    "Lucas",
    "Lynne",
    "Maria",
    "Mateo",
    "Megan",
    "Miriam",
    "Nestor",
    "Ngozi",
    "Nina",
    "Olga",
    "Omar",
    "Patti",
    "Pradeep",
    "Priya",
    "Raúl",
    "Renée",
    "Sam",
    "Sara",
    "Sofia",
    "Tom",
    "Vivek",
    "Wei",
    "Yuki",
    "Zoë",
)
LAST_NAMES: tuple[str, ...] = (
    "Adams",
    "Ahmed",
    "Andersen",
    "Bauer",
    "Brown",
    "Chen",
    "Clark",
    "Cohen",
    "Costa",
    "Davis",
    "Dubois",
    "Evans",
    "Fischer",
    "García",
    "Gonzalez",
    "Gupta",
    "Hansen",
    "Hernández",
    "Ito",
    "Jackson",
    "Johnson",
    "Kim",
    "Kowalski",
    "Kumar",
    "Larsen",
    "Lee",
    "Lopez",
    "Martin",
    "Meyer",
    "Miller",
    "Moore",
    "Müller",
    "Nakamura",
    "Nguyen",
    "Núñez",
    "O'Brien",
    "Okafor",
    "Patel",
    "Peterson",
    "Quinn",
    "Rossi",
    "Sato",
    "Schmidt",
    "Silva",
    "Singh",
    "Smith",
    "Tanaka",
    "Taylor",
    "Thomas",
    "Vance",
    "Wagner",
    "Walker",
    "Wang",
    "Weber",
    "Williams",
    "Wilson",
    "Wright",
    "Young",
    "Zhang",
)
DEPARTMENTS = {
    "Sales": ("Account Executive", "Sales Manager", "Sales Engineer", "Inside Sales Rep"),
    "Marketing": ("Marketing Manager", "Content Strategist", "Event Coordinator", "Product Marketer"),
    "Engineering": ("Software Engineer", "Senior Software Engineer", "Engineering Manager", "QA Engineer"),
    "Support": ("Support Engineer", "Support Lead", "Customer Success Manager"),
    "Finance": ("Accountant", "Financial Analyst", "Controller"),
    "Human Resources": ("HR Generalist", "Recruiter", "HR Business Partner"),
    "Legal": ("Counsel", "Paralegal"),
    "Operations": ("Operations Analyst", "Facilities Manager", "IT Administrator"),
    "Training": ("Trainer", "Instructional Designer"),
    "Executive": ("Chief Executive Officer", "Chief Financial Officer", "VP Sales", "VP Engineering"),
}
DEPARTMENT_WEIGHTS = (24, 12, 22, 12, 6, 5, 3, 8, 5, 3)
OFFICES = ("Redmond", "Seattle", "New York", "London", "Berlin", "Tokyo", "Remote")
DIVISIONS = {
    "Sales": "Go-To-Market",
    "Marketing": "Go-To-Market",
    "Support": "Customer",
    "Engineering": "Product",
    "Training": "Customer",
}
EPOCH = datetime(2022, 1, 3, 9, 0, tzinfo=UTC)


def load_seed(tenant: Tenant, data: dict[str, Any] | str | Path, *, reset: bool = True) -> dict[str, Any]:
    """Loads the tenant JSON format (a dict, a JSON string or a path). Members and assignment
    principals may be given by id, UPN (users) or displayName (groups). Returns the summary."""
    if isinstance(data, Path) or (isinstance(data, str) and not data.lstrip().startswith("{")):
        data = json.loads(Path(data).read_text(encoding="utf-8"))
    elif isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict):
        raise bad_request("The seed must be a JSON object.")
    unknown = set(data) - {"tenantId", "domain", "servicePrincipal", "users", "groups", "assignments"}
    if unknown:
        raise bad_request(f"Unknown seed field(s): {', '.join(sorted(unknown))}.")
    with tenant.lock:
        if reset:
            tenant.reset(tenant_id=data.get("tenantId"), service_principal=data.get("servicePrincipal"))
        if data.get("domain"):
            tenant.default_domain = str(data["domain"])
        for user in data.get("users", []):
            attrs = dict(user)
            state = attrs.pop("state", "active")
            user_id = tenant.create_user(**attrs)
            _apply_state(tenant, user_id, state)
        pending_members: list[tuple[str, list[str]]] = []
        group_states: list[tuple[str, str]] = []
        for group in data.get("groups", []):
            attrs = dict(group)
            members = attrs.pop("members", [])
            state = attrs.pop("state", "active")
            if "displayName" not in attrs:
                raise bad_request("Every seed group needs a displayName.")
            group_id = tenant.create_group(attrs.pop("displayName"), **attrs)
            pending_members.append((group_id, list(members)))
            group_states.append((group_id, state))
        for group_id, members in pending_members:
            for ref in members:
                tenant.add_member(group_id, _resolve(tenant, ref))
        for assignment in data.get("assignments", []):
            principal = assignment.get("principal") or assignment.get("principalId")
            if not principal:
                raise bad_request("Every seed assignment needs a 'principal' (id, UPN or group displayName).")
            tenant.assign(_resolve(tenant, principal), assignment.get("role"))
        for group_id, state in group_states:
            if state == "softDeleted":
                tenant.soft_delete_group(group_id)
            elif state != "active":
                raise bad_request(f"Unknown group state '{state}'.")
        return tenant.summary()


def _apply_state(tenant: Tenant, user_id: str, state: str) -> None:
    if state == "softDeleted":
        tenant.soft_delete_user(user_id)
    elif state != "active":
        raise bad_request(f"Unknown user state '{state}' (expected active or softDeleted).")


def _resolve(tenant: Tenant, ref: str) -> str:
    found = tenant.find_user_id(ref) or tenant.find_group_id(ref)
    if found is None:
        raise GraphError(404, "Request_ResourceNotFound", f"Seed reference '{ref}' matches no user or group.")
    return found


def generate(
    tenant: Tenant,
    users: int = 100,
    groups: int = 10,
    seed: int = 0,
    domain: str = "contoso.com",
    profile: str = "plain",
) -> dict[str, Any]:
    """Adds ``users`` users and ``groups`` groups. ``plain``: users and groups with members, no
    assignments. ``demo``: the `make demo` tenant (assignments with a role mix, Default Access
    only users, blocked users, a mailless user, unassigned users, assigned and nested groups)."""
    if profile not in ("plain", "demo"):
        raise bad_request(f"Unknown profile '{profile}' (expected plain or demo).")
    if users < 0 or groups < 0:
        raise bad_request("users and groups must be >= 0.")
    rng = random.Random(f"generate:{seed}:{profile}")
    with tenant.lock:
        user_ids = [_generate_user(tenant, rng, i, domain) for i in range(users)]
        if profile == "plain":
            for g in range(groups):
                members = rng.sample(user_ids, min(len(user_ids), rng.randint(3, 60))) if user_ids else []
                created = iso(EPOCH + timedelta(days=rng.randint(0, 700)))
                tenant.create_group(
                    f"Group {g + 1:04d}",
                    id=new_guid(rng),
                    description=f"Generated group {g + 1}",
                    createdDateTime=created,
                    members=members,
                )
        else:
            _demo(tenant, rng, user_ids, groups)
        return tenant.summary()


def _generate_user(tenant: Tenant, rng: random.Random, i: int, domain: str) -> str:
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    department = rng.choices(tuple(DEPARTMENTS), weights=DEPARTMENT_WEIGHTS)[0]
    local = slug(f"{first}.{last}")
    upn = tenant.unique_upn(local, domain)
    attrs: dict[str, Any] = {
        "id": new_guid(rng),
        "userPrincipalName": upn,
        "mail": upn,
        "mailNickname": upn.split("@", 1)[0],
        "displayName": f"{first} {last}",
        "givenName": first,
        "surname": last,
        "jobTitle": rng.choice(DEPARTMENTS[department]),
        "department": department,
        "employeeId": f"{100000 + i}",
        "companyName": "Contoso Ltd.",
        "employeeOrgData": {
            "division": DIVISIONS.get(department, "Corporate"),
            "costCenter": f"CC-{1000 + 10 * list(DEPARTMENTS).index(department)}",
        },
        "businessPhones": [f"+1 425 555 {rng.randint(0, 9999):04d}"],
        "officeLocation": rng.choice(OFFICES),
        "preferredLanguage": rng.choice(("en-US", "en-US", "en-US", "en-GB", "de-DE", "ja-JP", "fr-FR")),
        "usageLocation": rng.choice(("US", "US", "US", "GB", "DE", "JP")),
        "createdDateTime": iso(EPOCH + timedelta(minutes=rng.randint(0, 900_000))),
    }
    if rng.random() < 0.6:
        attrs["mobilePhone"] = f"+1 206 555 {rng.randint(0, 9999):04d}"
    if rng.random() < 0.1:
        attrs["onPremisesExtensionAttributes"] = {"extensionAttribute1": rng.choice(("FTE", "Contractor"))}
    return tenant.create_user(**attrs)


def _demo(tenant: Tenant, rng: random.Random, user_ids: list[str], group_count: int) -> None:
    """Assignment mix for the demo (~500 users, 20 groups): roles mostly MeetingOrganizer, some
    WebinarOrganizer, a few Admin; ~5% Default Access only; a few blocked; one without mail; a
    few not assigned at all; some groups assigned with roles; one nested group."""
    users = [tenant.users[u] for u in user_ids]
    by_department: dict[str, list[str]] = {}
    for user in users:
        by_department.setdefault(str(user.props.get("department")), []).append(user.id)

    # Users, in deterministic order: decide each one's fate.
    unassigned: set[str] = set()
    default_only: set[str] = set()
    for i, user in enumerate(users):
        roll = rng.random()
        if i == 3:
            tenant.update_user(user.id, mail=None)  # the one user without mail
        if i % 97 == 11:
            tenant.block_user(user.id)  # a few blocked (accountEnabled false), still assigned
        if roll < 0.50:
            tenant.assign(user.id, "MeetingOrganizer")
        elif roll < 0.59:
            tenant.assign(user.id, "WebinarOrganizer")
        elif roll < 0.60:
            tenant.assign(user.id, "Admin")
        elif roll < 0.65:
            tenant.assign(user.id, None)  # Default Access only
            default_only.add(user.id)
        elif roll < 0.68:
            unassigned.add(user.id)  # neither direct nor via an assigned group
    # Groups: department groups (assigned ones first), then topic groups; one nested group.
    assigned_roles = {
        "Sales": "MeetingOrganizer",
        "Support": "MeetingOrganizer",
        "Marketing": "WebinarOrganizer",
        "Training": "WebinarOrganizer",
        "Operations": "MeetingOrganizer",
        "Engineering": "MeetingOrganizer",
        "Finance": "MeetingOrganizer",
        "Human Resources": "MeetingOrganizer",
        "Executive": "MeetingOrganizer",
    }  # Legal stays unassigned: its members without a direct assignment are out of scope
    names = [f"GoTo - {d}" for d in DEPARTMENTS] + [
        "Webinar Hosts",
        "EMEA Sales",
        "APAC Sales",
        "Project Falcon",
        "Contractors",
        "All Managers",
        "Book Club",
        "Interns",
        "GoTo Admins",
        "Alumni Network",
    ]
    excluded = unassigned | default_only
    group_ids: dict[str, str] = {}
    for n, name in enumerate(names[:group_count]):
        department = name.removeprefix("GoTo - ")
        if department in DEPARTMENTS:
            members = [u for u in by_department.get(department, []) if u not in excluded]
        else:
            pool = [u for u in user_ids if u not in excluded]
            size = rng.randint(3, 6) if name == "GoTo Admins" else rng.randint(4, 18)
            members = rng.sample(pool, min(len(pool), size))
        group_ids[name] = tenant.create_group(
            name,
            id=new_guid(rng),
            description=f"{name} ({'department' if department in DEPARTMENTS else 'team'} group)",
            mailNickname=slug(name).replace(".", "-") + f"-{n}",
            createdDateTime=iso(EPOCH + timedelta(days=n)),
            members=members,
        )
        if department in assigned_roles:
            tenant.assign(group_ids[name], assigned_roles[department])
    if "Webinar Hosts" in group_ids:
        tenant.assign(group_ids["Webinar Hosts"], "WebinarOrganizer")
    if "GoTo Admins" in group_ids:
        tenant.assign(group_ids["GoTo Admins"], "Admin")
    # A nested group inside an assigned group: its members are reached only transitively
    # (docs/reference/microsoft-graph.md#groups-and-members).
    if "EMEA Sales" in group_ids and "GoTo - Sales" in group_ids:
        tenant.add_member(group_ids["GoTo - Sales"], group_ids["EMEA Sales"])
    # Beyond the named groups (when more are asked for), plain team groups.
    for extra in range(len(names), group_count):
        pool = [u for u in user_ids if u not in excluded]
        tenant.create_group(
            f"Team {extra + 1:03d}",
            id=new_guid(rng),
            members=rng.sample(pool, min(len(pool), rng.randint(3, 15))),
        )
