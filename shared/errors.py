"""The root of gotosync's errors, and the one translation of an error into what an admin sees.

Every error gotosync raises on purpose derives from `GotosyncError`, and each class says, once:

- `code`: the error code shown to the admin, in Entra's provisioning vocabulary where Entra has
  one (an instance may carry a more precise one, e.g. GoTo's or Graph's own);
- `policy`: what the one who meets it does (`ErrorPolicy`);
- `exit_code`: the `gotosync` CLI's exit status; `http_status`: the admin API's and the
  console's answer;
- `heading`: the words put before the message ("GoTo", "not run", ...); `fix`: what to do, which
  may name `{test_connection}`, the way each entrance spells the connection check.

`translate` reads those attributes into a `Failure` that the CLI prints and the HTTP entrances
send; the message and the fix are scrubbed (shared.redaction) on the way out.

Exit codes: 0 done, 1 a check failed or the run was refused or cut short, 2 bad input or
configuration, 3 not run because of a cycle (lease held or lost, provisioning off), 4 user or
group not found, 5 a service (GoTo, Graph, storage, the credential store) refused or could not be
reached.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.redaction import scrub


class ErrorPolicy(enum.StrEnum):
    """What is done when the error is met."""

    RETRY = "retry"  # the same call or object later (backoff, escrow, the next cycle)
    SKIP = "skip"  # this object fails and is logged; the rest goes on
    STOP = "stop"  # the run or the request stops; nothing is wrong with the job itself
    QUARANTINE = "quarantine"  # the job stops until an admin fixes the cause


class GotosyncError(Exception):
    """An error gotosync raises on purpose; its class says how it is handled and shown."""

    code: str = "InternalError"
    policy: ErrorPolicy = ErrorPolicy.STOP
    exit_code: int = 1
    http_status: int = 500
    heading: str = ""
    fix: str = ""
    field: str = ""  # the request field (CLI option, JSON property) the error is about


@dataclass(frozen=True)
class Failure:
    """An error as an entrance shows it. `message` and `fix` are scrubbed."""

    code: str
    message: str
    exit_code: int
    http_status: int
    policy: ErrorPolicy
    fix: str = ""
    field: str = ""

    def line(self) -> str:
        """The CLI's one line on stderr."""
        return f"gotosync: {self.message}" + (f". Fix: {self.fix}" if self.fix else "")

    def body(self) -> dict[str, Any]:
        """The admin API's error body: `{"error": {"code", "message", "field"?, "fix"?}}`."""
        doc = {"code": self.code, "message": self.message, "field": self.field, "fix": self.fix}
        return {"error": {k: v for k, v in doc.items() if v}}


def translate(exc: GotosyncError, spelling: Mapping[str, str]) -> Failure:
    """`exc` as the entrance whose `spelling` fills the fix's names (`{test_connection}`) shows it."""
    text = str(exc)
    message = f"{exc.heading}: {text}" if exc.heading else text
    fix = exc.fix
    for name, words in spelling.items():
        fix = fix.replace("{" + name + "}", words)
    return Failure(
        code=exc.code,
        message=scrub(message),
        exit_code=exc.exit_code,
        http_status=exc.http_status,
        policy=exc.policy,
        fix=scrub(fix),
        field=exc.field,
    )
