"""GoTo emulator: the write journal (every API change to a user, in order), which lets a test
check each create, disable, delete and seat release against the source at that moment."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from emulators.goto import GoToEmulator
from tests.fixtures.goto import goto_client

U = "/identity/v1/Users"


@pytest.fixture
def goto(make_goto_emulator: Callable[..., GoToEmulator]) -> GoToEmulator:
    return make_goto_emulator(rate_limit=0, active="honour", extension_attrs="store")


@pytest.fixture
def http(goto: GoToEmulator) -> Iterator[httpx.Client]:
    with goto_client(goto) as client:
        yield client


def create(http: httpx.Client, user_name: str = "jane@contoso.com", external_id: str = "oid-1") -> str:
    answer = http.post(U, json={"userName": user_name, "externalId": external_id, "displayName": "Jane"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_a_user_lifecycle_is_journaled_in_order(goto: GoToEmulator, http: httpx.Client) -> None:
    key = create(http)
    http.patch(f"{U}/{key}", json={"displayName": "Jane Doe"})
    http.patch(f"{U}/{key}", json={"active": False})
    http.patch(f"{U}/{key}", json={"active": True})
    http.delete(f"{U}/{key}")

    journal = goto.journal_entries()

    assert [e["seq"] for e in journal] == [1, 2, 3, 4, 5]
    assert [e["events"] for e in journal] == [["created"], ["updated"], ["disabled"], ["enabled"], ["deleted"]]
    assert {(e["key"], e["userName"], e["externalId"]) for e in journal} == {(key, "jane@contoso.com", "oid-1")}
    assert journal[0]["method"] == "POST"
    assert journal[0]["path"] == U
    assert journal[1]["fields"] == {"displayName": ["Jane", "Jane Doe"]}
    assert journal[4]["method"] == "DELETE"
    assert journal[4]["inOrg"] is False


def test_a_rename_names_the_new_user_name_and_the_old_one(goto: GoToEmulator, http: httpx.Client) -> None:
    key = create(http)
    http.patch(f"{U}/{key}", json={"userName": "jane.doe@contoso.com"})

    entry = goto.journal_entries(since=1)[0]

    assert entry["events"] == ["updated"]
    assert entry["userName"] == "jane.doe@contoso.com"
    assert entry["fields"]["userName"] == ["jane@contoso.com", "jane.doe@contoso.com"]


def test_license_changes_are_journaled_with_before_and_after(goto: GoToEmulator, http: httpx.Client) -> None:
    key = create(http)
    g2m = goto.license_key("G2M")
    path = f"/admin/rest/v1/accounts/{goto.account_key}/users/{key}"
    assert http.put(path, json={"licenseKeys": [g2m]}).status_code < 300
    assert http.put(path, json={"licenseKeys": []}).status_code < 300

    granted, released = goto.journal_entries(since=1)

    assert granted["events"] == ["licenses"]
    assert granted["licenses"] == {"before": [], "after": [g2m]}
    assert granted["method"] == "PUT"
    assert released["licenses"] == {"before": [g2m], "after": []}


def test_a_write_committed_but_answered_as_failure_is_journaled(goto: GoToEmulator, http: httpx.Client) -> None:
    goto.faults.inject("commit-then-503", path=f"^{U}$", method="POST", count=1)

    answer = http.post(U, json={"userName": "jane@contoso.com"})

    assert answer.status_code == 503
    assert [e["events"] for e in goto.journal_entries()] == [["created"]]


def test_refused_writes_and_control_changes_are_not_journaled(goto: GoToEmulator, http: httpx.Client) -> None:
    goto.add_user(userName="seeded@contoso.com")
    create(http)
    assert http.post(U, json={"userName": "jane@contoso.com"}).status_code == 409

    assert [e["userName"] for e in goto.journal_entries()] == ["jane@contoso.com"]


def test_journal_over_http_with_since_and_reset(goto: GoToEmulator, http: httpx.Client) -> None:
    create(http)
    create(http, "john@contoso.com", "oid-2")
    with httpx.Client(base_url=goto.url + "/_emulator") as control:
        everything = control.get("/journal").json()
        later = control.get("/journal", params={"since": 1}).json()
        bad = control.get("/journal", params={"since": "x"})
        control.post("/reset")
        after_reset = control.get("/journal").json()

    assert [e["userName"] for e in everything] == ["jane@contoso.com", "john@contoso.com"]
    assert [e["seq"] for e in later] == [2]
    assert bad.status_code == 400
    assert after_reset == []


def test_readding_a_scim_deleted_user_is_a_create(goto: GoToEmulator, http: httpx.Client) -> None:
    key = create(http)
    http.delete(f"{U}/{key}")
    again = create(http)

    assert again == key  # GoTo keeps one identity per e-mail
    assert goto.journal_entries(since=2)[0]["events"] == ["created"]
