"""GoTo emulator: rate limits (docs/reference/goto-api.md#rate-limits), fault injection, the control surface,
seeding and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from emulators.common import Counters
from emulators.goto import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PAT, GoToEmulator
from tests.fixtures.goto import goto_client

Factory = Callable[..., GoToEmulator]
U = "/identity/v1/Users"
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- rate limit


def test_rate_limit_burst_then_429_per_api(make_goto_emulator: Factory) -> None:
    # A near-zero refill rate makes the test independent of timing: only the burst passes.
    goto = make_goto_emulator(rate_limit=0.001, rate_burst=3)
    with goto_client(goto) as http:
        assert [http.get(U).status_code for _ in range(4)] == [200, 200, 200, 429]
        r = http.get(U)
        assert r.status_code == 429
        assert r.json()["code"] == "too.many.requests"
        assert "Retry-After" not in r.headers  # docs/reference/goto-api.md#u8 default: no header
        assert http.get("/admin/rest/v1/me").status_code == 200  # another API, another bucket
        goto.advance_clock(1000)  # one token refilled
        assert http.get(U).status_code == 200
        assert http.get(U).status_code == 429


def test_rate_limit_lifted(make_goto_emulator: Factory) -> None:
    goto = make_goto_emulator(rate_limit=0.001, rate_burst=1)
    with goto_client(goto) as http:
        http.get(U)
        assert http.get(U).status_code == 429
        r = httpx.post(goto.url + "/_emulator/switches", json={"rate_limit": 0})
        assert r.status_code == 200
        assert {http.get(U).status_code for _ in range(30)} == {200}


def test_default_rate_limit_is_10_per_second(goto_emulator: GoToEmulator) -> None:
    assert goto_emulator.switches.rate_limit == 10
    assert goto_emulator.switches.rate_burst == 10
    # The burst of 10 always passes, however slow the machine.
    with goto_client(goto_emulator) as http:
        assert {http.get(U).status_code for _ in range(10)} == {200}


def test_oauth_endpoints_are_rate_limited_too(make_goto_emulator: Factory) -> None:
    goto = make_goto_emulator(rate_limit=0.001, rate_burst=1)
    form = {"grant_type": "personal_access_token", "pat": DEFAULT_PAT}
    auth = (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    assert httpx.post(goto.token_url, data=form, auth=auth).status_code == 200
    assert httpx.post(goto.token_url, data=form, auth=auth).status_code == 429


# ---------------------------------------------------------------- faults and counters


def test_faults_via_control_surface(make_goto_emulator: Factory) -> None:
    goto = make_goto_emulator(rate_limit=0)
    with goto_client(goto) as http:
        r = http.post("/_emulator/faults", json={"kind": 502, "path": "^/identity/v1/Users$", "count": 2})
        assert r.status_code == 201
        first = http.get(U)
        assert first.status_code == 502
        assert first.json()["uri"] == "/v1/Users"
        assert http.get(U).status_code == 502
        assert http.get(U).status_code == 200
        http.post("/_emulator/faults", json={"kind": 504, "fraction": 1.0, "path": "/admin/"})
        assert http.get("/admin/rest/v1/me").status_code == 504
        assert http.delete("/_emulator/faults").status_code == 204
        assert http.get("/admin/rest/v1/me").status_code == 200
        http.post("/_emulator/faults", json={"kind": 503, "count": 1, "retry_after": 2})
        r = http.get(U)
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "2"
        http.post("/_emulator/faults", json={"kind": "latency", "latency_ms": 1, "count": 1})
        assert http.get(U).status_code == 200
        counters = http.get("/_emulator/counters").json()
        assert counters["GET /identity/v1/Users"] >= 5
    assert goto.counters.total(method="GET", path_prefix="/admin/") == 2


def test_fault_body_follows_error_body_switch(make_goto_emulator: Factory) -> None:
    goto = make_goto_emulator(rate_limit=0, error_body="empty")
    goto.faults.inject(502, count=1)
    with goto_client(goto) as http:
        r = http.get(U)
    assert r.status_code == 502
    assert r.content == b""


# ---------------------------------------------------------------- waiting on the counters


def _checked(predicate: Callable[[Counters], bool]) -> tuple[Callable[[Counters], bool], asyncio.Event]:
    """`predicate`, and an event set each time it is checked."""
    checked = asyncio.Event()

    def check(counters: Counters) -> bool:
        checked.set()
        return predicate(counters)

    return check, checked


async def test_a_wait_on_the_counters_ends_when_the_requests_it_waits_for_are_counted(
    make_goto_emulator: Factory,
) -> None:
    goto = make_goto_emulator(rate_limit=0)
    two_users, checked = _checked(lambda counters: counters.total("POST", path_regex="^/identity/v1/Users$") >= 2)
    waiter = asyncio.create_task(goto.counters.wait_until(two_users))
    await checked.wait()  # the waiter found no create yet and waits for the next count
    async with httpx.AsyncClient(base_url=goto.url, headers=goto.auth_headers(), timeout=10) as http:
        assert (await http.post(U, json={"userName": "one@contoso.com"})).status_code == 201
        assert not waiter.done()  # one create is not two
        assert (await http.post(U, json={"userName": "two@contoso.com"})).status_code == 201
    async with asyncio.timeout(10):
        await waiter
    async with asyncio.timeout(10):  # already true: returns at once
        await goto.counters.wait_until(two_users)


async def test_a_cancelled_wait_on_the_counters_stops_watching_them(make_goto_emulator: Factory) -> None:
    goto = make_goto_emulator(rate_limit=0)
    never, checked = _checked(lambda counters: False)
    waiter = asyncio.create_task(goto.counters.wait_until(never))
    await checked.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not goto.counters._watchers
    async with httpx.AsyncClient(base_url=goto.url, headers=goto.auth_headers(), timeout=10) as http:
        assert (await http.get(U)).status_code == 200  # counted with nobody waiting
    assert goto.counters.total("GET", U) == 1


# ---------------------------------------------------------------- control surface


def test_control_surface(make_goto_emulator: Factory) -> None:
    goto = make_goto_emulator(rate_limit=0)
    c = httpx.Client(base_url=goto.url + "/_emulator", timeout=10)
    with c:
        r = c.post("/users", json={"users": [{"userName": "pre@contoso.com", "licenses": ["G2M"]}]})
        assert r.status_code == 201
        (key,) = r.json()["keys"]
        state = c.get("/state").json()
        assert state["account"] == {"key": goto.account_key, "name": "Contoso Ltd"}
        assert {u["userName"] for u in state["users"]} == {"admin@contoso.com", "pre@contoso.com"}
        g2m = next(lic for lic in state["licenses"] if lic["code"] == "G2M")
        assert g2m["userKeys"] == [key]
        assert "access" in state["tokens"]
        token = c.post("/tokens", json={"admin": False}).json()["access_token"]
        assert httpx.get(goto.scim_url + "/Users", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert c.post("/seats", json={"license": "G2M", "seats": 5}).status_code == 200
        assert next(lic for lic in goto.licenses() if lic["code"] == "G2M")["seats"] == 5
        now = goto.now()
        assert c.post("/clock/advance", json={"seconds": 60}).json()["now"] >= now + 60
        assert c.post("/clock/advance", json={"seconds": "soon"}).status_code == 400
        assert c.post("/users", json={"userName": "pre@contoso.com"}).status_code == 400  # duplicate
        assert c.post("/switches", content=b"{nope").status_code == 400
        assert c.post("/groups", json={"displayName": "G", "members": ["pre@contoso.com"]}).status_code == 201
        assert goto.groups()[0]["members"] == [{"type": "user", "value": key}]


def test_seed_replaces_state(make_goto_emulator: Factory, tmp_path: Path) -> None:
    seed = {
        "account": {"key": "1000000000000000001", "name": "Fabrikam"},
        "verifiedDomains": ["fabrikam.com"],
        "admin": {"userName": "boss@fabrikam.com"},
        "licenses": [{"code": "G2M", "key": "2000000000000000002", "seats": 3, "products": ["G2M"]}],
        "users": [{"userName": "u1@fabrikam.com", "givenName": "U", "familyName": "One", "licenses": ["G2M"]}],
        "groups": [{"displayName": "Team", "members": ["u1@fabrikam.com"]}],
    }
    goto = make_goto_emulator(rate_limit=0)
    r = httpx.post(goto.url + "/_emulator/seed", json=seed)
    assert r.status_code == 200, r.text
    assert goto.account_key == "1000000000000000001"
    assert goto.license_key("G2M") == "2000000000000000002"
    with goto_client(goto) as http:
        me = http.get(U + "/me").json()
        assert me["userName"] == "boss@fabrikam.com"
        assert http.get(U, params={"filter": 'userName eq "u1@fabrikam.com"'}).json()["totalResults"] == 1
        assert http.post(U, json={"userName": "x@contoso.com"}).status_code == 400  # no longer verified
    # The same file through the constructor (and the CLI's --seed-file).
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed), encoding="utf-8")
    other = GoToEmulator(seed=path)
    assert other.account_key == "1000000000000000001"
    assert [g["displayName"] for g in other.groups()] == ["Team"]
    with pytest.raises(ValueError, match="unknown seed key"):
        other.seed({"bogus": 1})


def test_seed_is_deterministic() -> None:
    a, b = GoToEmulator(), GoToEmulator()
    assert a.account_key == b.account_key
    assert a.add_user(userName="x@contoso.com") == b.add_user(userName="x@contoso.com")


# ---------------------------------------------------------------- CLI


def test_cli_help_lists_options() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "emulators.goto", "--help"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--seed-file",
        "--verified-domain",
        "--rate-limit",
        "--seats",
        "--dialect",
        "--patch-mode",
        "--active",
        "--extension-attrs",
        "--users-paging",
        "--bad-token",
        "--error-body",
        "--retry-after-on-429",
        "--members-patch",
        "--delete-frees-seat",
        "--refresh-rotation",
        "--client-credentials",
        "--domain-unverified-status",
        "--admin-license-paths",
        "--over-assign-status",
    ):
        assert flag in r.stdout, flag


def test_cli_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.goto", "--port", "0", "--dialect", "scim2", "--verified-domain", "x.com"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("goto emulator listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1].strip()
        form = {"grant_type": "personal_access_token", "pat": DEFAULT_PAT}
        tok = httpx.post(url + "/oauth/token", data=form, auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)).json()
        r = httpx.get(url + U, headers={"Authorization": f"Bearer {tok['access_token']}"})
        assert r.status_code == 200
        assert "Resources" in r.json()
        assert httpx.get(url + "/_emulator/state").json()["verifiedDomains"] == ["x.com"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_seed_leaves_state_untouched() -> None:
    goto = GoToEmulator()
    before = goto.state()
    with pytest.raises(ValueError, match="unknown user attribute"):
        goto.seed({"account": {"key": "1000000000000000001"}, "users": [{"userName": "x@contoso.com", "bogus": 1}]})
    after = goto.state()
    del before["clock"], after["clock"]
    assert after == before
