"""HTTP translation shared by the admin endpoints and the console's API: JSON answers, the
error body `{"error": {"code", "message", "field"?, "fix"?}}`, request-body parsing, and the
one place where shared/ops' errors become status codes."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func

from shared.engine.cycle import CycleNotRun, PlanRefused
from shared.entra.reader import GraphReadError
from shared.goto.errors import AuthError, GoToError
from shared.goto.token_store import CredentialStoreError
from shared.ops import CycleRunning, InvalidInput, NotFound, OpsError
from shared.ops.access import AccessDenied
from shared.ops.audit import Actor
from shared.ops.connection import AUTHORIZE_AGAIN
from shared.redaction import scrub
from shared.settings import SettingsError
from shared.store import StoreError
from shared.store.lease import LeaseLost

log = logging.getLogger("gotosync.admin_api")

Handler = Callable[[func.HttpRequest, Actor], Awaitable[func.HttpResponse]]

# Every answer of the admin API is data about the caller's tenant: never cached, never sniffed.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(doc, default=str),
        status_code=status,
        mimetype="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


def error_response(status: int, code: str, message: str, **extra: str) -> func.HttpResponse:
    # Messages may quote upstream answers: scrubbed (shared.redaction) before they leave.
    doc = {"code": code, "message": scrub(message), **{k: v for k, v in extra.items() if v}}
    return json_response({"error": doc}, status)


def denied_response(exc: AccessDenied) -> func.HttpResponse:
    return error_response(exc.status, exc.code, str(exc), fix=exc.fix)


def translated(handler: Handler) -> Handler:
    """Turns the errors of shared/ops and of the services into HTTP answers, in one place."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
        try:
            return await handler(req, actor)
        except InvalidInput as exc:
            return error_response(400, "BadRequest", exc.detail, field=exc.field)
        except NotFound as exc:
            return error_response(404, "NotFound", str(exc))
        except (CycleRunning, CycleNotRun) as exc:
            return error_response(409, "CycleRunning" if isinstance(exc, CycleRunning) else "CycleNotRun", str(exc))
        except LeaseLost as exc:
            return error_response(409, "LeaseLost", str(exc))
        except PlanRefused as exc:
            return error_response(422, "DuplicateTargetValues", str(exc), fix="fix the userName mapping, then restart")
        except AccessDenied as exc:
            return denied_response(exc)
        except OpsError as exc:
            return error_response(400, "BadRequest", str(exc))
        except SettingsError as exc:
            log.error("configuration error: %s", exc)
            return error_response(500, "Misconfigured", str(exc))
        except CredentialStoreError as exc:
            return error_response(503, exc.code, str(exc))
        except AuthError as exc:
            return error_response(502, "Unauthorized", f"GoTo refused the credentials: {exc}", fix=AUTHORIZE_AGAIN)
        except GoToError as exc:
            return error_response(502, exc.code, f"GoTo: {exc}")
        except GraphReadError as exc:
            return error_response(502, exc.code, str(exc), fix="GET /api/ops/test-connection says what to fix")
        except StoreError as exc:
            return error_response(503, "StorageUnavailable", str(exc))

    return wrapper


def body(req: func.HttpRequest) -> dict[str, Any]:
    raw = req.get_body()
    if not raw or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidInput("body", "is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body", "must be a JSON object")
    return data


def boolean(data: dict[str, Any], name: str, default: bool | None = None) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(
            name, "is required: true or false" if value is None else f"must be true or false, got {value!r}"
        )
    return value


def text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(name, "must be a non-empty string")
    return value


def param(req: func.HttpRequest, name: str) -> str | None:
    value = req.params.get(name)
    return value if value else None
