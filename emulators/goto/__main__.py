"""``python -m emulators.goto``: runs the GoTo emulator in the foreground until SIGTERM/SIGINT.

Prints ``goto emulator listening on http://HOST:PORT`` on stdout once the socket listens (port 0
picks a free port); the default OAuth client, secret and PAT go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from ..common import serve_forever
from .emulator import GoToEmulator
from .model import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_G2M_SEATS, DEFAULT_PAT, GoToSwitches, switch_info


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.goto",
        description="Local GoTo emulator: SCIM /identity/v1, Admin /admin/rest/v1, OAuth /oauth, "
        "control /_emulator. Switch flags model the UNCONFIRMED points "
        "(docs/reference/goto-api.md#unconfirmed-behaviours).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one and prints it")
    parser.add_argument("--seed-file", help="JSON seed file (see docs/emulator-goto.md); replaces the default seed")
    parser.add_argument(
        "--verified-domain",
        action="append",
        dest="verified_domains",
        metavar="DOMAIN",
        help="verified e-mail domain of the organization (repeatable; default contoso.com)",
    )
    parser.add_argument(
        "--seats", type=int, default=DEFAULT_G2M_SEATS, help=f"seats of the G2M license (default {DEFAULT_G2M_SEATS})"
    )
    switches = parser.add_argument_group(
        "switches (UNCONFIRMED behaviours; docs/reference/goto-api.md#unconfirmed-behaviours)"
    )
    for info in switch_info():
        flag = "--" + info["name"].replace("_", "-")
        # argparse %-formats help strings, and some switch texts contain a literal "%".
        text = f"{info['help']} [{info['ref']}] (default: {info['default']})".replace("%", "%%")
        if info["type"] is bool:
            switches.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif info["choices"]:
            switches.add_argument(flag, choices=info["choices"], default=None, help=text)
        else:
            metavar = "N" if info["type"] is int else "X"
            switches.add_argument(flag, type=info["type"], default=None, metavar=metavar, help=text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    values = {i["name"]: getattr(args, i["name"]) for i in switch_info() if getattr(args, i["name"]) is not None}
    try:
        emulator = GoToEmulator(
            switches=GoToSwitches(**values),
            verified_domains=tuple(args.verified_domains or ("contoso.com",)),
            seats=args.seats,
            seed=args.seed_file,
            host=args.host,
            port=args.port,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def on_ready(port: int) -> None:
        print(f"goto emulator listening on http://{args.host}:{port}", flush=True)
        print(
            f"client_id={DEFAULT_CLIENT_ID} client_secret={DEFAULT_CLIENT_SECRET} pat={DEFAULT_PAT} "
            f"account_key={emulator.account_key}",
            file=sys.stderr,
            flush=True,
        )

    asyncio.run(serve_forever(emulator.make_app(), args.host, args.port, on_ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
