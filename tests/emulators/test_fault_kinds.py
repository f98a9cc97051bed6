"""Fault kinds shared by both emulators (emulators/common.py): statuses in each API's own error
words, 2xx answers without a usable body, rewritten list answers, dropped connections, and
writes that are committed but answered as failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from emulators.common import FaultRule, Faults, fault_rule_from_json
from emulators.goto import GoToEmulator
from emulators.graph import GraphEmulator
from tests.fixtures.goto import goto_client
from tests.fixtures.graph import graph_http_client

U = "/identity/v1/Users"


@pytest.fixture
def graph(graph_emulator_factory: Callable[..., GraphEmulator]) -> GraphEmulator:
    return graph_emulator_factory(users=12, groups=1, page_size_cap=5)


@pytest.fixture
def http(graph: GraphEmulator) -> Iterator[httpx.Client]:
    with graph_http_client(graph) as client:
        yield client


@pytest.fixture
def goto(make_goto_emulator: Callable[..., GoToEmulator]) -> GoToEmulator:
    return make_goto_emulator(rate_limit=0)


@pytest.fixture
def ghttp(goto: GoToEmulator) -> Iterator[httpx.Client]:
    with goto_client(goto) as client:
        yield client


def pages(http: httpx.Client, url: str) -> list[dict]:
    out = [http.get(url).json()]
    while "@odata.nextLink" in out[-1]:
        out.append(http.get(out[-1]["@odata.nextLink"]).json())
    return out


# ---------------------------------------------------------------- rules


def test_kinds_are_normalised_and_unknown_kinds_are_refused() -> None:
    assert FaultRule("503").kind == 503
    assert FaultRule("Drop-Value").kind == "drop-value"
    assert FaultRule("commit-then-502").kind == "commit-then-502"
    assert FaultRule("commit-then-reset").kind == "commit-then-reset"
    with pytest.raises(ValueError, match="unknown fault kind 'explode'"):
        FaultRule("explode")
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRule("commit-then-999")
    with pytest.raises(ValueError, match="after"):
        FaultRule(503, after=-1)


def test_control_surface_accepts_named_kinds_and_after(http: httpx.Client, graph: GraphEmulator) -> None:
    with httpx.Client(base_url=graph.url) as control:
        created = control.post("/_emulator/faults", json={"kind": "drop-value", "path": "/users$", "after": 1})
        refused = control.post("/_emulator/faults", json={"kind": "sideways"})
        listed = control.get("/_emulator/faults").json()
    assert created.status_code == 201
    assert created.json()["kind"] == "drop-value"
    assert created.json()["after"] == 1
    assert refused.status_code == 400
    assert "sideways" in refused.json()["error"]
    assert [r["kind"] for r in listed] == ["drop-value"]


def test_method_may_name_several_methods() -> None:
    rule = FaultRule("reset", method="POST|patch | DELETE")
    assert rule.matches("PATCH", "/x")
    assert rule.matches("delete", "/x")
    assert not rule.matches("GET", "/x")
    assert FaultRule(503).matches("GET", "/anything")


def test_after_lets_the_first_matching_requests_through() -> None:
    rule = fault_rule_from_json({"kind": 503, "path": "/x", "after": 2, "count": 1})
    faults = Faults()
    faults.add(rule)
    fired = [bool(faults.pick("GET", "/x")) for _ in range(4)]
    assert fired == [False, False, True, False]


# ---------------------------------------------------------------- statuses in each API's words


@pytest.mark.parametrize(
    ("status", "code"),
    [(404, "Request_ResourceNotFound"), (400, "Request_BadRequest"), (409, "Request_MultipleObjectsWithSameKeyValue")],
)
def test_graph_statuses_carry_graph_error_codes(
    graph: GraphEmulator, http: httpx.Client, status: int, code: str
) -> None:
    user_id = next(iter(graph.tenant.users))
    graph.faults.inject(status, path=f"/users/{user_id}$", method="GET", count=1)

    faulted = http.get(f"/users/{user_id}")
    after = http.get(f"/users/{user_id}")

    assert faulted.status_code == status
    assert faulted.json()["error"]["code"] == code
    assert after.status_code == 200


@pytest.mark.parametrize(("status", "code"), [(404, "user.not.found"), (400, "invalid.request"), (409, "user.exists")])
def test_goto_statuses_carry_goto_error_codes(goto: GoToEmulator, ghttp: httpx.Client, status: int, code: str) -> None:
    goto.faults.inject(status, path="^/identity/v1/Users$", count=1)

    faulted = ghttp.get(U)

    assert faulted.status_code == status
    assert faulted.json()["code"] == code
    assert faulted.json()["uri"] == "/v1/Users"


# ---------------------------------------------------------------- 2xx without a usable body


def test_empty_200_no_content_and_error_200(graph: GraphEmulator, http: httpx.Client) -> None:
    graph.faults.inject("empty-200", path="/users$", count=1)
    graph.faults.inject("no-content", path="/groups$", count=1)
    graph.faults.inject("error-200", path="/servicePrincipals$", count=1)

    empty = http.get("/users")
    none = http.get("/groups")
    error = http.get("/servicePrincipals")

    assert (empty.status_code, empty.json()) == (200, {})
    assert (none.status_code, none.content) == (204, b"")
    assert error.status_code == 200
    assert set(error.json()["error"]) >= {"code", "message"}
    assert http.get("/users").json()["value"]  # each fired once


def test_error_200_uses_the_goto_shape_on_goto(goto: GoToEmulator, ghttp: httpx.Client) -> None:
    goto.faults.inject("error-200", path="^/identity/v1/Users$", count=1)

    answer = ghttp.get(U)

    assert answer.status_code == 200
    assert set(answer.json()) >= {"code", "uri", "message"}
    assert "resources" not in answer.json()


# ---------------------------------------------------------------- rewritten list answers


def test_page_size_cap_splits_small_lists_whatever_top_asks(http: httpx.Client) -> None:
    got = pages(http, "/users?$top=999")
    assert [len(p["value"]) for p in got] == [5, 5, 2]


def test_drop_value_on_the_middle_page_of_three(graph: GraphEmulator, http: httpx.Client) -> None:
    graph.faults.inject("drop-value", path="/users$", method="GET", after=1, count=1)

    got = pages(http, "/users?$top=999")

    assert len(got) == 3
    assert "value" in got[0]
    assert "value" not in got[1]
    assert "@odata.nextLink" in got[1]  # only the value array is gone: the list goes on
    assert len(got[2]["value"]) == 2


@pytest.mark.parametrize(("kind", "shape"), [("wrong-shape", dict), ("wrong-shape-string", str)])
def test_wrong_shape_makes_value_not_an_array(graph: GraphEmulator, http: httpx.Client, kind: str, shape: type) -> None:
    sp = graph.sp_id
    graph.faults.inject(kind, path="/appRoleAssignedTo$", count=1)

    answer = http.get(f"/servicePrincipals/{sp}/appRoleAssignedTo")

    assert answer.status_code == 200
    assert isinstance(answer.json()["value"], shape)


def test_drop_next_link_makes_a_silently_short_list(graph: GraphEmulator, http: httpx.Client) -> None:
    graph.faults.inject("drop-next-link", path="/users$", count=1)

    got = pages(http, "/users")

    assert len(got) == 1
    assert len(got[0]["value"]) == 5  # of 12


def test_drop_delta_link_ends_a_round_without_its_link(graph: GraphEmulator, http: httpx.Client) -> None:
    first = http.get("/users/delta()?$deltatoken=latest").json()
    graph.create_user(displayName="New Person")
    graph.faults.inject("drop-delta-link", path="/users/delta", count=1)

    round_ = http.get(first["@odata.deltaLink"])

    assert round_.status_code == 200
    assert round_.json()["value"]
    assert "@odata.deltaLink" not in round_.json()
    assert "@odata.nextLink" not in round_.json()


def test_rewrites_leave_error_answers_alone(graph: GraphEmulator, http: httpx.Client) -> None:
    graph.faults.inject("drop-value", path="/users/", count=1)

    answer = http.get("/users/00000000-0000-0000-0000-00000000beef")

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "Request_ResourceNotFound"


# ---------------------------------------------------------------- dropped connections


def test_reset_drops_the_connection_without_an_answer(graph: GraphEmulator, http: httpx.Client) -> None:
    graph.faults.inject("reset", path="/users$", count=1)

    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/users")
    assert http.get("/users").status_code == 200


# ---------------------------------------------------------------- committed, answered as failures


def test_commit_then_500_keeps_the_created_user(goto: GoToEmulator, ghttp: httpx.Client) -> None:
    goto.faults.inject("commit-then-500", path="^/identity/v1/Users$", method="POST", count=1)

    answer = ghttp.post(U, json={"userName": "jane@contoso.com"})

    assert answer.status_code == 500
    assert answer.json()["code"] == "InternalServerError"
    assert goto.user_by_username("jane@contoso.com") is not None


def test_commit_then_502_carries_retry_after(goto: GoToEmulator, ghttp: httpx.Client) -> None:
    goto.set_switch("active", "honour")
    key = ghttp.post(U, json={"userName": "jane@contoso.com"}).json()["id"]
    goto.faults.inject("commit-then-502", path=f"/Users/{key}$", method="PATCH", count=1, retry_after=3)

    answer = ghttp.patch(f"{U}/{key}", json={"active": False})

    assert answer.status_code == 502
    assert answer.headers["Retry-After"] == "3"
    assert goto.user(key)["active"] is False  # type: ignore[index]


def test_commit_then_reset_keeps_the_delete(goto: GoToEmulator, ghttp: httpx.Client) -> None:
    key = ghttp.post(U, json={"userName": "jane@contoso.com"}).json()["id"]
    goto.faults.inject("commit-then-reset", path=f"/Users/{key}$", method="DELETE", count=1)

    with pytest.raises(httpx.RemoteProtocolError):
        ghttp.delete(f"{U}/{key}")

    assert ghttp.get(f"{U}/{key}").status_code == 404


def test_commit_then_leaves_a_refused_write_as_refused(goto: GoToEmulator, ghttp: httpx.Client) -> None:
    ghttp.post(U, json={"userName": "jane@contoso.com"})
    goto.faults.inject("commit-then-500", path="^/identity/v1/Users$", method="POST", count=1)

    answer = ghttp.post(U, json={"userName": "jane@contoso.com"})

    assert answer.status_code == 409  # nothing was committed: GoTo's own answer stands
