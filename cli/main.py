"""`gotosync`, the admin command line: cycles and dry runs, the drift sweep, provision on demand, test
connection, start/stop/restart/allow-deletes, status, the provisioning logs, the attribute
mapping (validate a file, preview a user), the settings, and the deployment commands.

An entrance like the Function app's triggers: it turns argv into calls of shared/ (the HTTP
admin endpoints in admin_api/ are the other face of the same operations) and results into
terminal output (cli/render.py). Settings come from the environment (the same app settings the
Function app reads); a local run against the emulators gets them from `make demo` or from a
.env-style export.

An error is printed as one line and ends with its class's exit code, through the translation the
admin API uses too (shared/errors.py): 0 done, 1 a check failed (test-connection, mapping
validate) or the run was refused or cut short (plan refused), 2 bad input or configuration, 3
not run because of a cycle (lease held or lost, provisioning off), 4 user or group not found, 5
a service (GoTo, Graph, storage) refused or could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from cli import commands
from cli.deploy import add_deploy_parsers, cmd_authorize, cmd_grant_permissions
from shared.errors import GotosyncError, translate
from shared.ops import InvalidInput
from shared.ops.logs_export import parse_time
from shared.settings import Settings

__all__ = ["build_parser", "main", "parse_since"]


def parse_since(text: str) -> datetime:
    """An ISO date/time, or a duration back from now: 30m, 12h, 7d."""
    try:
        return parse_time(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(f"--since: {exc.detail}") from None


def _time_arg(option: str) -> Any:
    def parse(text: str) -> datetime:
        try:
            return parse_time(text, option)
        except InvalidInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gotosync", description="Provision Entra ID users into GoTo.")
    sub = parser.add_subparsers(dest="command", required=True)

    sync = sub.add_parser("sync", help="run one sync cycle now")
    sync.add_argument("--full", action="store_true", help="an initial (full) cycle instead of an incremental one")
    sync.add_argument(
        "--dry-run", action="store_true", help="plan only: write nothing to GoTo or to the state; show each diff"
    )
    sync.add_argument("--json", action="store_true", help="print one JSON document")

    drift = sub.add_parser(
        "drift", help="the drift sweep now: put back GoTo users edited by hand as gotosync left them"
    )
    drift.add_argument("--dry-run", action="store_true", help="list the repairs: write nothing to GoTo or the state")
    drift.add_argument("--json", action="store_true", help="print one JSON document")

    provision = sub.add_parser("provision", help="provision one user, or a group's members, now (on demand)")
    provision.add_argument("user", nargs="?", help="the user's UPN, mail address or object id")
    provision.add_argument("--group", help="a group's object id or display name: provision each member")
    provision.add_argument("--dry-run", action="store_true", help="show the steps and the action, write nothing")
    provision.add_argument("--json", action="store_true")

    test = sub.add_parser("test-connection", help="check GoTo, Microsoft Graph and storage; say what to fix")
    test.add_argument("--json", action="store_true")

    for name, text in (("start", "turn provisioning on"), ("stop", "turn provisioning off (a running cycle ends)")):
        sub.add_parser(name, help=text).add_argument("--json", action="store_true")

    restart_cmd = sub.add_parser(
        "restart", help="restart provisioning: the next cycle is an initial one (Entra's reset scopes)"
    )
    restart_cmd.add_argument(
        "--scope",
        action="append",
        default=[],
        help="Watermark, Escrows, QuarantineState, ForceDeletes or Full (repeat or comma-separate); "
        "none = Watermark,Escrows,QuarantineState",
    )
    restart_cmd.add_argument("--json", action="store_true")

    allow = sub.add_parser("allow-deletes", help="let the next cycle carry out the disables/deletes the threshold held")
    allow.add_argument("--now", action="store_true", help="and run that cycle now")
    allow.add_argument("--json", action="store_true")

    status = sub.add_parser("status", help="the provisioning job's state")
    status.add_argument("--json", action="store_true")
    status.add_argument("--watch", action="store_true", help="while a cycle runs, show its progress live")

    logs = sub.add_parser("logs", help="provisioning logs, newest first")
    logs.add_argument("--user", help="UPN, display name or object id (substring)")
    logs.add_argument("--action", help="Create, Update, Disable, Delete, StagedDelete or Other")
    logs.add_argument("--status", help="Success, Failure, Skipped or Warning")
    logs.add_argument("--cycle", help="a cycle id")
    logs.add_argument("--since", type=parse_since, help="ISO time, or 30m / 12h / 7d")
    logs.add_argument("--until", type=_time_arg("until"), help="ISO time, or 30m / 12h / 7d")
    logs.add_argument("--limit", type=int, help="at most this many entries (default 50; all with --csv)")
    logs.add_argument("--json", action="store_true")
    logs.add_argument("--csv", metavar="DIR", type=Path, help="write Entra's three CSV files into DIR")

    purge = sub.add_parser("purge-logs", help="delete provisioning logs older than LOG_RETENTION_DAYS")
    purge.add_argument("--days", type=int, help="keep this many days instead of LOG_RETENTION_DAYS")
    purge.add_argument("--json", action="store_true")

    mapping = sub.add_parser("mapping", help="attribute mappings: validate a mapping file, preview a user")
    mapping_sub = mapping.add_subparsers(dest="mapping_command", required=True)
    validate = mapping_sub.add_parser("validate", help="check a mapping file; every problem names its mapping")
    validate.add_argument("file", help="the JSON mapping file (or builtin:goto / builtin:scim)")
    validate.add_argument("--json", action="store_true")
    preview = mapping_sub.add_parser(
        "preview", help="each target attribute for one user: the source values and the result (writes nothing)"
    )
    preview.add_argument("user", help="the user's UPN, mail address or object id")
    preview.add_argument("--file", help="a mapping file to preview instead of MAPPING_FILE")
    preview.add_argument("--json", action="store_true")
    settings = sub.add_parser("settings", help="every setting: variable, default, what is accepted, meaning")
    settings.add_argument("--json", action="store_true")
    add_deploy_parsers(sub)  # authorize, grant-permissions
    return parser


COMMANDS = {
    "sync": commands.cmd_sync,
    "drift": commands.cmd_drift,
    "provision": commands.cmd_provision,
    "test-connection": commands.cmd_test_connection,
    "start": commands.cmd_start_stop,
    "stop": commands.cmd_start_stop,
    "restart": commands.cmd_restart,
    "allow-deletes": commands.cmd_allow_deletes,
    "status": commands.cmd_status,
    "logs": commands.cmd_logs,
    "purge-logs": commands.cmd_purge_logs,
    "mapping": commands.cmd_mapping,
    "settings": commands.cmd_settings,
    "authorize": cmd_authorize,
    "grant-permissions": cmd_grant_permissions,
}
# Commands that read no setting: they run whatever the environment holds.
WITHOUT_SETTINGS = {"settings"}

# How the CLI names the connection check in a fix.
SPELLING = {"test_connection": "`gotosync test-connection`"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    try:
        settings = Settings() if args.command in WITHOUT_SETTINGS else Settings.from_env()
        return asyncio.run(COMMANDS[args.command](settings, args, console))
    except GotosyncError as exc:
        failure = translate(exc, SPELLING)
        print(failure.line(), file=sys.stderr)
        return failure.exit_code


if __name__ == "__main__":
    sys.exit(main())
