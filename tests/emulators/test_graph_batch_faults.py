"""Graph emulator: JSON batching (docs/reference/microsoft-graph.md#json-batching), injected faults and
counters, and the control surface over HTTP."""

from __future__ import annotations

import httpx
import pytest

from emulators.graph import GraphEmulator


def batch(http: httpx.Client, requests: list[dict]) -> httpx.Response:
    return http.post("/$batch", json={"requests": requests})


def get(request_id: str, url: str, **extra: object) -> dict:
    return {"id": request_id, "method": "GET", "url": url, **extra}


def test_batch_answers_each_request_with_its_own_status(
    graph_emulator: GraphEmulator, graph_http: httpx.Client
) -> None:
    user_id = next(iter(graph_emulator.tenant.users))

    response = batch(graph_http, [get("a", f"/users/{user_id}?$select=id"), get("b", "users/not-a-user")])

    assert response.status_code == 200
    by_id = {r["id"]: r for r in response.json()["responses"]}
    assert by_id["a"]["status"] == 200
    assert by_id["a"]["body"]["id"] == user_id
    assert by_id["b"]["status"] == 404
    assert by_id["b"]["body"]["error"]["code"] == "Request_ResourceNotFound"


def test_batch_of_21_requests_is_rejected(graph_http: httpx.Client) -> None:
    response = batch(graph_http, [get(str(i), "/users") for i in range(21)])

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_batch_of_20_requests_is_accepted(graph_http: httpx.Client) -> None:
    response = batch(graph_http, [get(str(i), "/users?$top=1") for i in range(20)])

    assert response.status_code == 200
    assert len(response.json()["responses"]) == 20


@pytest.mark.parametrize(
    "requests",
    [
        [get("1", "/users"), get("1", "/groups")],  # duplicate ids
        [get("1", "https://graph.microsoft.com/v1.0/users")],  # absolute url
        [get("1", "/users", dependsOn=["9"])],  # unknown dependency
        [{"id": "1", "method": "POST", "url": "/subscriptions", "body": {}}],  # body without Content-Type
        [get("1", "/users", dependsOn=["2"]), get("2", "/users", dependsOn=["1"])],  # cycle
    ],
)
def test_malformed_batches_are_400(graph_http: httpx.Client, requests: list[dict]) -> None:
    assert batch(graph_http, requests).status_code == 400


def test_failed_dependency_yields_424(graph_http: httpx.Client) -> None:
    response = batch(
        graph_http,
        [get("1", "/users/missing"), get("2", "/users?$top=1", dependsOn=["1"]), get("3", "/organization")],
    )

    statuses = {r["id"]: r["status"] for r in response.json()["responses"]}
    assert statuses == {"1": 404, "2": 424, "3": 200}


def test_inner_requests_are_throttled_individually(graph_emulator: GraphEmulator, graph_http: httpx.Client) -> None:
    graph_emulator.faults.inject(429, path=r"/v1\.0/groups$", retry_after=1)

    response = batch(graph_http, [get("users", "/users?$top=1"), get("groups", "/groups")])

    assert response.status_code == 200
    by_id = {r["id"]: r for r in response.json()["responses"]}
    assert by_id["users"]["status"] == 200
    assert by_id["groups"]["status"] == 429
    assert by_id["groups"]["headers"]["Retry-After"] == "1"
    assert by_id["groups"]["body"]["error"]["code"] == "TooManyRequests"


def test_injected_429_carries_retry_after_in_graph_shape(
    graph_emulator: GraphEmulator, graph_http: httpx.Client
) -> None:
    graph_emulator.faults.inject(429, path="/users", count=1, retry_after=2)

    throttled = graph_http.get("/users")
    after = graph_http.get("/users")

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert after.status_code == 200


def test_injected_503_for_every_matching_request(graph_emulator: GraphEmulator, graph_http: httpx.Client) -> None:
    graph_emulator.faults.inject(503, path="/groups", method="GET")

    assert graph_http.get("/groups").status_code == 503
    assert graph_http.get("/groups").status_code == 503
    assert graph_http.get("/users").status_code == 200


def test_next_n_fault_fires_exactly_n_times(graph_emulator: GraphEmulator, graph_http: httpx.Client) -> None:
    graph_emulator.faults.inject(500, path="/users", count=2)

    statuses = [graph_http.get("/users").status_code for _ in range(3)]

    assert statuses == [500, 500, 200]


def test_faults_through_the_control_surface(graph_emulator: GraphEmulator, graph_http: httpx.Client) -> None:
    with httpx.Client(base_url=graph_emulator.url) as control:
        created = control.post("/_emulator/faults", json={"kind": 504, "path": "/organization", "count": 1})
        faulted = graph_http.get("/organization")
        control.delete("/_emulator/faults")

    assert created.status_code == 201
    assert faulted.status_code == 504
    assert graph_http.get("/organization").status_code == 200


def test_counters_count_graph_requests_but_not_control_requests(
    graph_emulator: GraphEmulator, graph_http: httpx.Client
) -> None:
    graph_emulator.counters.reset()
    graph_http.get("/users")
    graph_http.get("/users")
    batch(graph_http, [get("1", "/groups")])
    with httpx.Client(base_url=graph_emulator.url) as control:
        control.get("/_emulator/state")
        snapshot = control.get("/_emulator/counters").json()

    assert graph_emulator.counters.total("GET", "/v1.0/users") == 2
    assert graph_emulator.counters.total("GET", "/v1.0/groups") == 1  # the inner request counts too
    assert graph_emulator.counters.total("POST", "/v1.0/$batch") == 1
    assert not any("/_emulator" in key for key in snapshot)


def test_control_surface_drives_the_tenant(graph_emulator: GraphEmulator, graph_http: httpx.Client) -> None:
    with httpx.Client(base_url=graph_emulator.url) as control:
        user_id = control.post("/_emulator/users", json={"displayName": "Via HTTP", "department": "Ops"}).json()["id"]
        group_id = control.post("/_emulator/groups", json={"displayName": "HTTP Group"}).json()["id"]
        assert control.post(f"/_emulator/groups/{group_id}/members/{user_id}").json() == {"added": True}
        assert (
            control.post("/_emulator/assignments", json={"principalId": group_id, "role": "Admin"}).status_code == 201
        )
        assert control.patch(f"/_emulator/users/{user_id}", json={"jobTitle": "Boss"}).json() == {
            "changed": ["jobTitle"]
        }
        assert control.post(f"/_emulator/users/{user_id}/block").status_code == 204
        assert control.post(f"/_emulator/users/{user_id}/explode").status_code == 404
        assert control.patch(f"/_emulator/users/{user_id}", json={"shoeSize": 44}).status_code == 400
        state = control.get("/_emulator/state").json()
        assert control.delete(f"/_emulator/assignments/{group_id}").json() == {"removed": 1}

    user = graph_http.get(f"/users/{user_id}", params={"$select": "accountEnabled,jobTitle"}).json()
    assert user == {
        "@odata.context": user["@odata.context"],
        "id": user_id,
        "accountEnabled": False,
        "jobTitle": "Boss",
    }
    assert state["assignments"]["byRole"] == {"Admin": 1}
    assert state["users"]["disabled"] == 1


def test_control_surface_seed_and_generate(graph_emulator: GraphEmulator) -> None:
    seed = {
        "users": [{"userPrincipalName": "ann@contoso.com", "displayName": "Ann"}],
        "groups": [{"displayName": "Team", "members": ["ann@contoso.com"]}],
        "assignments": [{"principal": "Team", "role": "WebinarOrganizer"}],
    }
    with httpx.Client(base_url=graph_emulator.url) as control:
        seeded = control.post("/_emulator/seed", json=seed).json()
        generated = control.post("/_emulator/generate", json={"users": 3, "groups": 1, "seed": 5}).json()
        bad = control.post("/_emulator/generate", json={"users": 3, "colour": "blue"})

    assert seeded["users"]["active"] == 1
    assert seeded["assignments"]["byRole"] == {"WebinarOrganizer": 1}
    assert generated["users"]["active"] == 4
    assert bad.status_code == 400
