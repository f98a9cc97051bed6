"""``python -m emulators.graph``: serve a Graph emulator in the foreground until SIGTERM/SIGINT.
Heavy imports wait until the arguments are parsed, so ``--help`` and start-up stay fast."""

from __future__ import annotations

import argparse
import asyncio
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.graph",
        description="Local Microsoft Graph emulator (v1.0 subset: users, groups, appRoleAssignedTo, delta, "
        "subscriptions, $batch) with a /_emulator control surface. Prints "
        "'graph emulator listening on http://HOST:PORT/v1.0' when ready.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default 0)")
    parser.add_argument("--seed-file", metavar="PATH", help="tenant JSON to load (format: docs/emulator-graph.md)")
    parser.add_argument("--generate-users", type=int, metavar="N", help="generate N users")
    parser.add_argument("--generate-groups", type=int, metavar="M", help="generate M groups")
    parser.add_argument("--seed", type=int, default=0, help="random seed for ids and generated data (default 0)")
    parser.add_argument(
        "--profile",
        choices=("demo", "plain"),
        default="plain",
        help="generated data: 'demo' (assignments with a role mix; defaults to 500 users, 20 groups) or "
        "'plain' (users and groups only)",
    )
    parser.add_argument("--delta-page-size", type=int, help="entries per delta page (default 100)")
    parser.add_argument("--no-auth", action="store_true", help="do not require 'Authorization: Bearer ...'")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from emulators.common import serve_forever

    from .config import GraphConfig
    from .emulator import GraphEmulator

    overrides: dict[str, object] = {"require_auth": not args.no_auth}
    if args.delta_page_size:
        overrides["delta_page_size"] = args.delta_page_size
    emulator = GraphEmulator(GraphConfig(**overrides), host=args.host, port=args.port, seed=args.seed)  # type: ignore[arg-type]
    if args.seed_file:
        emulator.seed(args.seed_file)
    users, groups = args.generate_users, args.generate_groups
    if args.profile == "demo" and users is None and groups is None:
        users, groups = 500, 20
    if users or groups:
        emulator.generate(users=users or 0, groups=groups or 0, seed=args.seed, profile=args.profile)

    def ready(port: int) -> None:
        emulator.port = port
        print(f"graph emulator listening on http://{args.host}:{port}/v1.0", flush=True)
        summary = emulator.tenant.summary()
        print(
            f"tenant {summary['tenantId']}; service principal {summary['servicePrincipal']['id']} "
            f"(appId {summary['servicePrincipal']['appId']}); {summary['users']['active']} users, "
            f"{summary['groups']['active']} groups, {summary['assignments']['total']} assignments",
            file=sys.stderr,
            flush=True,
        )

    asyncio.run(serve_forever(emulator.make_app(), args.host, args.port, ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
