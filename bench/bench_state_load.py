"""How long the state store takes to load a large tenant, and what one recorded write costs.

Fills an empty store (a temporary SQLite file unless --url names another, empty, database)
with N users, 7 groups and 2N memberships by bulk insert, then times `load()` and a
series of `record_user` calls, each of which commits on its own.

    python bench/bench_state_load.py [--users 20000] [--writes 1000] [--url URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, insert

from syncagent.mapping import ROLE_GROUPS
from syncagent.model import OperationOutcome, OutcomeStatus, UserRecord
from syncagent.state import StateStore
from syncagent.state.schema import groups, memberships, users

GROUPS = tuple(ROLE_GROUPS)


def fill(url: str, user_count: int) -> None:
    now = datetime.now(UTC)
    stamps = {"created_at": now, "updated_at": now}
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(groups),
                [
                    {"entra_id": f"g-{i}", "scim_id": f"sg-{i}", "display_name": name, **stamps}
                    for i, name in enumerate(GROUPS)
                ],
            )
            conn.execute(
                insert(users),
                [
                    {
                        "entra_id": f"u-{n:08d}",
                        "scim_id": f"su-{n:08d}",
                        "user_name": f"user{n}@example.com",
                        "attributes": {
                            "userName": f"user{n}@example.com",
                            "active": True,
                            "title": "Buyer",
                            "name.givenName": f"Given{n}",
                            "name.familyName": f"Family{n}",
                        },
                        "deprovisioned": None,
                        **stamps,
                    }
                    for n in range(user_count)
                ],
            )
            # Every user in two of the seven groups: 2N memberships.
            conn.execute(
                insert(memberships),
                [
                    {"group_entra_id": f"g-{(n + k) % len(GROUPS)}", "user_entra_id": f"u-{n:08d}"}
                    for n in range(user_count)
                    for k in (0, 1)
                ],
            )
    finally:
        engine.dispose()


def bench(url: str, user_count: int, writes: int, repeats: int) -> None:
    with StateStore.open(url) as store:
        started = time.perf_counter()
        fill(url, user_count)
        print(f"fill: {user_count} users, {len(GROUPS)} groups, {2 * user_count} memberships "
              f"in {time.perf_counter() - started:.2f} s (bulk insert)")  # fmt: skip

        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            state = store.load()
            timings.append(time.perf_counter() - started)
        assert len(state.users) == user_count
        assert len(state.memberships) == 2 * user_count
        print(f"load(): median {statistics.median(timings) * 1000:.1f} ms, "
              f"best {min(timings) * 1000:.1f} ms over {repeats} runs")  # fmt: skip

        run = store.start_run("sync")
        started = time.perf_counter()
        for n in range(writes):
            entra_id = f"u-{n:08d}"
            record = UserRecord(
                entra_id=entra_id,
                scim_id=f"su-{n:08d}",
                attributes={"userName": f"user{n}@example.com", "active": True, "title": "Lead"},
            )
            outcome = OperationOutcome(
                "user", "update", entra_id, record.scim_id, f"PATCH /Users/{record.scim_id}",
                OutcomeStatus.SUCCESS,
            )  # fmt: skip
            store.record_user(run, record, outcome)
        elapsed = time.perf_counter() - started
        print(f"record_user: {writes} calls in {elapsed:.2f} s, "
              f"{elapsed / writes * 1000:.2f} ms per call (one commit each)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--writes", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--url", help="an EMPTY database; default: a temporary SQLite file")
    args = parser.parse_args()
    if args.url:
        bench(args.url, args.users, args.writes, args.repeats)
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'state.db'}"
        print("database: temporary SQLite file (WAL, synchronous=NORMAL)")
        bench(url, args.users, args.writes, args.repeats)


if __name__ == "__main__":
    main()
