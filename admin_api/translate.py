"""HTTP translation shared by the admin endpoints and the console's API: JSON answers, the
error body `{"error": {"code", "message", "field"?, "fix"?}}`, request-body parsing, and where
gotosync's errors become status codes (shared.errors.translate, which the CLI uses too)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func

from shared.errors import Failure, GotosyncError, translate
from shared.ops import InvalidInput
from shared.ops.audit import Actor
from shared.redaction import scrub

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


# How the admin API and the console name the connection check in a fix.
SPELLING = {"test_connection": "GET /api/ops/test-connection"}


def failure_response(exc: GotosyncError) -> func.HttpResponse:
    """`exc` as its class says (shared.errors.translate): status, code, message, field and fix."""
    failure: Failure = translate(exc, SPELLING)
    if failure.http_status == 500:
        log.error("%s: %s", failure.code, failure.message)
    return json_response(failure.body(), failure.http_status)


def translated(handler: Handler) -> Handler:
    """Turns gotosync's errors into HTTP answers, through the translation the CLI uses too."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest, actor: Actor) -> func.HttpResponse:
        try:
            return await handler(req, actor)
        except GotosyncError as exc:
            return failure_response(exc)

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
