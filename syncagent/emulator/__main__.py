"""Serve the sample tenant: `python -m syncagent.emulator [--port N] [--token T]`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading

from syncagent.emulator.server import GraphEmulator
from syncagent.emulator.tenant import Tenant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m syncagent.emulator",
        description="Serve a sample Entra ID tenant as Microsoft Graph v1.0 on loopback.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    parser.add_argument("--token", default="emulator-token", help="the bearer token to accept")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with GraphEmulator(Tenant.sample(), token=args.token, port=args.port) as emulator:
        print(f"Graph base URL: {emulator.base_url}")
        print(f"Bearer token:   {args.token}")
        print("Press Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
