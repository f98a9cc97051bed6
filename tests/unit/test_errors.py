"""One error root (shared/errors.py): every error gotosync raises on purpose says its code, what
is done about it, the CLI's exit code and the HTTP status; the CLI and the admin API (and the
console, which shares its translation) show the same error the same way, scrubbed."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

import cli.main as cli
from admin_api.translate import SPELLING as HTTP_SPELLING
from admin_api.translate import translated
from shared import redaction
from shared.deploy.permissions import GrantRefused, PermissionGrantError
from shared.engine.cycle import CycleInterrupted, CycleNotRun, PlanRefused
from shared.entra.reader import DeltaExpired, GraphReadError, GroupGone, IncompleteRead
from shared.errors import ErrorPolicy, GotosyncError, translate
from shared.goto.authorize import AuthorizationFailed
from shared.goto.errors import (
    AUTHORIZE_AGAIN,
    AuthError,
    BadRequest,
    Conflict,
    DryRunBlocked,
    GoToError,
    LicenseLimitExceeded,
    NotFound,
    RateLimited,
    TransientError,
)
from shared.goto.token_store import CredentialStoreError, TokenNotSaved
from shared.mapping import ExpressionEvaluationError, MappingConfigError, MappingError
from shared.ops import CycleRunning, InvalidInput, OpsError
from shared.ops import NotFound as ObjectNotFound
from shared.ops.access import ConsoleClosed, CrossSiteRequest, Forbidden, Unauthenticated
from shared.ops.audit import Actor
from shared.settings import SettingsError
from shared.store.errors import ConcurrencyError, StoreError
from shared.store.lease import LeaseLost

ROOT = Path(__file__).resolve().parents[2]
R, S, T, Q = ErrorPolicy.RETRY, ErrorPolicy.SKIP, ErrorPolicy.STOP, ErrorPolicy.QUARANTINE

# One error of each class -> (code, policy, exit code, HTTP status): the contract the CLI's and
# the admin API's tests rely on, written out here rather than read from the classes.
CONTRACT: list[tuple[GotosyncError, tuple[str, ErrorPolicy, int, int]]] = [
    (SettingsError("GOTO_PATCH_STYLE: expected one of auto, merge, patchop, put"), ("Misconfigured", T, 2, 500)),
    (MappingConfigError([MappingError("userName", "must be mapped")]), ("UnprocessableEntity", T, 2, 400)),
    (ExpressionEvaluationError("bad argument", "mail"), ("UnprocessableEntity", S, 2, 400)),
    (InvalidInput("user", "give a user"), ("BadRequest", T, 2, 400)),
    (OpsError("not supported"), ("BadRequest", T, 2, 400)),
    (ObjectNotFound("no Entra user 'x'"), ("NotFound", T, 4, 404)),
    (CycleRunning("a sync cycle is running"), ("CycleRunning", T, 3, 409)),
    (CycleNotRun("another holds the lease"), ("CycleNotRun", T, 3, 409)),
    (LeaseLost("lease 'cycle' was lost"), ("LeaseLost", T, 3, 409)),
    (PlanRefused("two users, one userName"), ("DuplicateTargetValues", Q, 1, 422)),
    (CycleInterrupted("timeout"), ("CycleInterrupted", T, 1, 500)),
    (Unauthenticated("sign in"), ("Unauthenticated", T, 2, 401)),
    (Forbidden("not an admin"), ("Forbidden", T, 2, 403)),
    (CrossSiteRequest("other origin"), ("CrossSiteRequest", T, 2, 403)),
    (ConsoleClosed("no App Service Authentication"), ("ConsoleClosed", T, 2, 503)),
    (GoToError("boom"), ("InternalError", S, 5, 502)),
    (BadRequest("bad"), ("UnprocessableEntity", S, 5, 502)),
    (NotFound("gone"), ("NotFound", S, 5, 502)),
    (Conflict("exists"), ("Conflict", S, 5, 502)),
    (LicenseLimitExceeded("no seats"), ("LicenseLimitExceeded", S, 5, 502)),
    (DryRunBlocked("not sent", retryable=False), ("DryRun", S, 5, 502)),
    (RateLimited("slow down"), ("TooManyRequests", R, 5, 502)),
    (TransientError("503"), ("InternalServerError", R, 5, 502)),
    (TransientError("gave up", retryable=False), ("InternalServerError", S, 5, 502)),
    (TokenNotSaved("not saved"), ("TokenNotSaved", R, 5, 502)),
    (AuthError("401"), ("Unauthorized", Q, 5, 502)),
    (AuthError("403", code="InsufficientRights"), ("InsufficientRights", Q, 5, 502)),
    (AuthorizationFailed("denied"), ("AuthorizationFailed", Q, 5, 502)),
    (CredentialStoreError("Key Vault unreachable"), ("CredentialStoreUnavailable", Q, 5, 503)),
    (GraphReadError("users", 403, "Authorization_RequestDenied", "no"), ("Authorization_RequestDenied", R, 5, 502)),
    (IncompleteRead("users", "no value"), ("IncompleteRead", R, 5, 502)),
    (DeltaExpired("410"), ("DeltaExpired", R, 5, 502)),
    (GroupGone("g1"), ("GroupGone", S, 4, 404)),
    (StoreError("unreachable", endpoint="http://127.0.0.1:1"), ("StorageUnavailable", R, 5, 503)),
    (ConcurrencyError("links", "p", "r"), ("ConcurrentWrite", R, 1, 409)),
    (PermissionGrantError("unknown permission"), ("BadRequest", T, 2, 400)),
    (GrantRefused("Microsoft Graph refused the grant (HTTP 403)"), ("InsufficientRights", T, 5, 502)),
]
IDS = [type(exc).__name__ for exc, _ in CONTRACT]

# Exceptions of shared/ that are not errors an admin meets: caught and turned into another
# where they are raised.
CONTROL_FLOW = {
    "IgnoreFlow": "the mapping's IgnoreFlow() leaves an attribute out",
    "RegexRefused": "becomes an ExpressionEvaluationError naming the mapping",
    "NeedsFullRead": "an incremental read hands over to a full one",
    "_Malformed": "becomes a GoToError (SERVICE_INCOMPATIBLE) naming the list request",
}

CLI_SPELLING = cli.SPELLING


@pytest.fixture(autouse=True)
def no_secrets_left_behind() -> Iterator[None]:
    yield
    redaction.forget_all()


@pytest.mark.parametrize(("exc", "expected"), CONTRACT, ids=IDS)
def test_each_error_class_carries_its_code_policy_exit_code_and_http_status(
    exc: GotosyncError, expected: tuple[str, ErrorPolicy, int, int]
) -> None:
    failure = translate(exc, CLI_SPELLING)
    assert (failure.code, failure.policy, failure.exit_code, failure.http_status) == expected


def _error_classes_of_shared() -> Iterator[type[BaseException]]:
    for path in sorted((ROOT / "shared").rglob("*.py")):
        module = importlib.import_module(
            ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        )
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                yield cls


def test_every_error_class_of_shared_derives_from_the_root() -> None:
    found = list(_error_classes_of_shared())
    assert {type(exc) for exc, _ in CONTRACT} <= set(found)
    strays = [f"{c.__module__}.{c.__name__}" for c in found if not issubclass(c, GotosyncError)]
    assert [s for s in strays if s.rsplit(".", 1)[1] not in CONTROL_FLOW] == []


def _cli(exc: GotosyncError, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    async def command(*_: Any) -> int:
        raise exc

    monkeypatch.setitem(cli.COMMANDS, "status", command)
    code = cli.main(["status"])
    return code, capsys.readouterr().err


def _http(exc: GotosyncError) -> tuple[int, dict[str, Any]]:
    @translated
    async def handler(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
        raise exc

    request = func.HttpRequest("GET", "http://127.0.0.1/api/ops/status", body=b"")
    response = asyncio.run(handler(request, Actor("admin", "", via="test")))
    return response.status_code, json.loads(response.get_body())


@pytest.mark.parametrize(("exc", "expected"), CONTRACT, ids=IDS)
def test_the_cli_and_the_admin_api_answer_an_error_through_the_same_translation(
    exc: GotosyncError,
    expected: tuple[str, ErrorPolicy, int, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _cli(exc, monkeypatch, capsys)
    status, body = _http(exc)
    assert (code, status) == expected[2:]
    assert body["error"]["code"] == expected[0]
    message = body["error"]["message"]
    assert err.startswith(f"gotosync: {message}")
    # the fix is the same, but for how each entrance names the connection check
    cli_fix = err.removeprefix(f"gotosync: {message}").removesuffix("\n")
    http_fix = f". Fix: {body['error']['fix']}" if "fix" in body["error"] else ""
    assert cli_fix.replace(CLI_SPELLING["test_connection"], "{check}") == http_fix.replace(
        HTTP_SPELLING["test_connection"], "{check}"
    )
    assert "Traceback" not in err


def test_the_fix_names_the_check_the_way_each_entrance_spells_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exc = GraphReadError("service principal", 403, "Authorization_RequestDenied", "Insufficient privileges")
    _, err = _cli(exc, monkeypatch, capsys)
    _, body = _http(exc)
    assert err.endswith("Fix: `gotosync test-connection` says what to fix\n")
    assert body["error"]["fix"] == "GET /api/ops/test-connection says what to fix"
    _, err = _cli(AuthError("GoTo answered 401"), monkeypatch, capsys)
    assert err == f"gotosync: GoTo refused the credentials: GoTo answered 401. Fix: {AUTHORIZE_AGAIN}\n"
    _, body = _http(PlanRefused("alice and bob would both be alice@contoso.com"))
    assert body["error"]["fix"] == "fix the userName mapping, then restart"


def test_a_secret_in_an_error_is_scrubbed_on_the_way_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cr3t-refresh-token-value"
    redaction.register(secret)
    # StoreError keeps its message as given; only the translation scrubs it.
    exc = StoreError(f"Table Storage refused {secret}", endpoint="http://127.0.0.1:1")
    _, err = _cli(exc, monkeypatch, capsys)
    _, body = _http(exc)
    assert secret not in err and secret not in str(body)
    assert "Table Storage refused" in err and "Table Storage refused" in body["error"]["message"]


def test_an_error_that_is_not_gotosyncs_is_not_translated() -> None:
    """A bug stays a traceback in the CLI and a 500 from the host; it is not dressed up as a known error."""
    with pytest.raises(ZeroDivisionError):
        _http(ZeroDivisionError("a bug"))  # type: ignore[arg-type]
