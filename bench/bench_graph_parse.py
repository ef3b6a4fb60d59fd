"""How long a Graph members page takes raw versus through the SDK's typed models.

Runs against the loopback Graph emulator, so the numbers are client cost (HTTP on loopback
plus parsing), not Microsoft's latency. Usage:

    python bench/bench_graph_parse.py [--groups 7] [--users 999] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.groups.item.members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)

from syncagent.emulator.server import GraphEmulator
from syncagent.emulator.tenant import Tenant
from syncagent.graph import GraphSource, StaticTokenFileCredential
from syncagent.graph.client import build_sdk_client
from syncagent.graph.queries import USER_SELECT
from syncagent.graph.source import _Counter

TOKEN = "bench-token"
SCOPE = "https://graph.microsoft.com/.default"


def populate(tenant: Tenant, groups: int, users: int) -> list[str]:
    group_ids = []
    for g in range(groups):
        gid = tenant.add_group(f"SourceMagnetBench{g}")
        members = [
            tenant.add_user(
                f"user{g}-{i:04}@contoso.com",
                given_name=f"Given{i}",
                surname=f"Surname{i}",
                job_title="Buyer",
            )
            for i in range(users)
        ]
        tenant.add_members(gid, *members)
        group_ids.append(gid)
    return group_ids


def timed(runs: int, call: Callable[[], Any]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def show(label: str, times: list[float]) -> None:
    first, rest = times[0], times[1:] or times
    print(
        f"{label:<52} first {first * 1000:9.1f} ms   "
        f"then median {statistics.median(rest) * 1000:9.1f} ms"
    )


def typed_page(emulator: GraphEmulator, token_file: Path, group_id: str, runs: int) -> list[float]:
    """One members page through the SDK's typed models (the path the source avoids)."""
    credential = StaticTokenFileCredential(token_file)
    sdk = build_sdk_client(
        base_url=emulator.base_url,
        credential=credential,
        scope=SCOPE,
        timeout=120.0,
        max_retries=0,
        retry_delay=0.0,
    )
    query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
        select=list(USER_SELECT), top=999
    )

    async def fetch() -> int:
        builder = sdk.service.groups.by_group_id(group_id).members.graph_user
        page = await builder.get(RequestConfiguration(query_parameters=query))
        return len(page.value or [])

    loop = asyncio.new_event_loop()
    try:
        run: Callable[[Awaitable[int]], int] = loop.run_until_complete
        times = timed(runs, lambda: run(fetch()))
        loop.run_until_complete(sdk.aclose())
    finally:
        loop.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=7)
    parser.add_argument("--users", type=int, default=999, help="users per group (max 999)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    tenant = Tenant()
    group_ids = populate(tenant, args.groups, args.users)
    with tempfile.TemporaryDirectory() as tmp, GraphEmulator(tenant, token=TOKEN) as emulator:
        token_file = Path(tmp) / "token"
        token_file.write_text(TOKEN)
        print(
            f"emulator {emulator.base_url}: {args.groups} groups x {args.users} users "
            f"({args.groups * args.users} users in all)"
        )
        with GraphSource(
            base_url=emulator.base_url,
            credential=StaticTokenFileCredential(token_file),
            scope=SCOPE,
            group_prefix="SourceMagnetBench",
            retry_delay=0.0,
        ) as source:
            # The private members reader is the raw path read_snapshot runs per group.
            raw = timed(
                args.repeat,
                lambda: source._run(source._member_users(group_ids[0], _Counter())),
            )
            show(f"(a) raw page fetch + parse, {args.users} users", raw)
            whole = timed(args.repeat, source.read_snapshot)
            show(f"(c) read_snapshot, {args.groups} groups x {args.users} users", whole)
        typed = typed_page(emulator, token_file, group_ids[0], args.repeat)
        show(f"(b) SDK typed page, {args.users} users", typed)


if __name__ == "__main__":
    main()
