"""What the ops tests share: a world whose settings are in the environment (as the CLI and the
Function app read them), the CLI run in-process, and the HTTP admin endpoints called as the
Functions host calls them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func
import pytest

import function_app
from cli.main import main
from emulators.functions_host import app_functions
from tests.fixtures.world import World
from tests.functions.test_sync_timer import settings_env

FUNCTIONS = app_functions(function_app.app)

ROUTES = {name: f.get_trigger().get_dict_repr().get("route") for name, f in FUNCTIONS.items()}

# GoTo keeps `active` and the enterprise attributes here, so that diffs and disables are visible.
VISIBLE = {"active": "honour", "extension_attrs": "store"}


def use_env(world: World, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> None:
    """Puts the world's settings (with `overrides`) in the environment."""
    env = settings_env(World(world.graph, world.goto, world.settings.with_overrides(**overrides)))
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def ops_world(make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch) -> Callable[..., World]:
    """`make(users=, assign=, role=, goto=, **setting_overrides)`: a world, its settings exported."""

    def make(users: int = 8, assign: int = 5, goto: dict[str, Any] | None = None, **overrides: Any) -> World:
        world = make_world(users=users, assign=assign, goto=goto if goto is not None else VISIBLE)
        if overrides:
            world.settings = world.settings.with_overrides(**overrides)
        use_env(world, monkeypatch)
        return world

    return make


CliRun = Callable[..., tuple[int, Any]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRun:
    """`cli("status", "--json")` -> (exit code, parsed JSON or the printed text). The CLI runs its
    own event loop, so tests that call it are plain (not async) functions."""

    def run(*argv: str) -> tuple[int, Any]:
        code = main(list(argv))
        captured = capsys.readouterr()
        out = captured.out
        if out.strip().startswith(("{", "[")):
            return code, json.loads(out)
        return code, out + captured.err

    return run


HttpCall = Callable[..., Awaitable[tuple[int, Any]]]


async def http(
    name: str,
    method: str = "GET",
    body: Any = None,
    params: dict[str, str] | None = None,
    raw_body: bytes | None = None,
) -> tuple[int, Any]:
    """Calls the registered HTTP function `name` with a request like the host's."""
    data = raw_body if raw_body is not None else (b"" if body is None else json.dumps(body).encode())
    req = func.HttpRequest(
        method,
        f"http://localhost/api/{ROUTES[name]}",
        headers={"content-type": "application/json", "x-functions-key": "test"},
        params=params or {},
        route_params={},
        body=data,
    )
    response = await FUNCTIONS[name].get_user_function()(req)
    if response.mimetype == "application/json":
        return response.status_code, json.loads(response.get_body())
    return response.status_code, response
