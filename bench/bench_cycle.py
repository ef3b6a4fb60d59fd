"""Whole sync cycles: the Graph emulator and a scim2-server, both in this process, on loopback.

A generated tenant (N users spread over the SourceMagnet role groups, each user in
--memberships-per-user of them) is synced through `open_runtime(...)` exactly as
`syncagent sync` does it, and each cycle is timed:

1. a dry run on a fresh state against the empty target (the first cycle of the process);
2. the initial full sync (every user and group created);
3. a sync with nothing new (repeated; it must send no writes), then its phases timed apart;
4. a sync after 1% of the users changed jobTitle and another 1% moved to another group.

Both servers run in threads of this process and share its GIL and CPUs with the agent, so
the CPU used by each is reported next to the wall time. Usage:

    python bench/bench_cycle.py [--users 2000] [--groups 7] [--memberships-per-user 2]
                                [--state sqlite|postgresql] [--dialect default|compliant]
                                [--repeats 3] [--profile DIR [--profile-clock cpu|wall]]

With --profile, only the initial sync runs, under cProfile: the agent's thread is written to
DIR/client.prof and the SCIM server's request handling to DIR/scim-server.prof, and the
top functions and the time per package of each are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import sql

from syncagent import logs
from syncagent.apply import Executor, RequestLog
from syncagent.config import COMPLIANT_FLAG, parse_config
from syncagent.cycle import CycleResult, run_cycle
from syncagent.dryrun import DiscardingWriter
from syncagent.emulator.scim import build_app, serve
from syncagent.emulator.server import GraphEmulator
from syncagent.emulator.tenant import Tenant
from syncagent.mapping import ROLE_GROUPS
from syncagent.model import DirectorySnapshot, Presence, RecordedState
from syncagent.plan import build_plan, departed_user_ids
from syncagent.ports import DirectorySource, ScimTarget, StateStore
from syncagent.runtime import Runtime, open_runtime

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

GRAPH_TOKEN = "bench-graph-token"
SCIM_SECRET = "bench-provisioning-secret"
PG_BASE_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
TITLES = ("Buyer", "Senior Buyer", "Contract Analyst", "Project Manager", "Category Manager")


# -- the tenant -------------------------------------------------------------------------------


@dataclass(slots=True)
class Directory:
    tenant: Tenant
    users: list[str]  # object ids, in creation order
    groups: list[str]
    membership: dict[str, list[str]]  # user id -> ids of the groups it is in


def group_names(count: int) -> list[str]:
    roles = list(ROLE_GROUPS)
    return roles[:count] + [f"SourceMagnetExtra{i}" for i in range(len(roles), count)]


def build_directory(user_count: int, group_count: int, per_user: int) -> Directory:
    """N users; user n is in groups n, n+1, ... (mod G), so every group gets ~N*k/G members."""
    if not 1 <= per_user <= group_count:
        raise SystemExit("--memberships-per-user must be between 1 and --groups")
    tenant = Tenant()
    groups = [tenant.add_group(name) for name in group_names(group_count)]
    users: list[str] = []
    membership: dict[str, list[str]] = {}
    by_group: dict[str, list[str]] = defaultdict(list)
    for n in range(user_count):
        uid = tenant.add_user(
            f"user{n:06d}@contoso.com",
            given_name=f"Given{n}",
            surname=f"Surname{n}",
            job_title=TITLES[n % len(TITLES)],
        )
        users.append(uid)
        membership[uid] = [groups[(n + k) % group_count] for k in range(per_user)]
        for gid in membership[uid]:
            by_group[gid].append(uid)
    for gid, members in by_group.items():
        tenant.add_members(gid, *members)
    return Directory(tenant, users, groups, membership)


def change_directory(directory: Directory) -> tuple[int, int]:
    """1% of the users get a new jobTitle, another 1% leave one group for one they are not in."""
    count = max(1, len(directory.users) // 100)
    tenant = directory.tenant
    retitled = directory.users[0 : count * 100 : 100]
    for uid in retitled:
        tenant.update_user(uid, job_title="Principal Buyer")
    moved = []
    for uid in directory.users[50 : 50 + count * 100 : 100]:
        current = directory.membership[uid]
        target = next((g for g in directory.groups if g not in current), None)
        if target is None:
            continue  # the user is in every group: nowhere to move to
        tenant.remove_members(current[0], uid)
        tenant.add_members(target, uid)
        directory.membership[uid] = [*current[1:], target]
        moved.append(uid)
    return len(retitled), len(moved)


# -- measuring ------------------------------------------------------------------------------


class Stopwatch:
    """Seconds and calls per label, plus the last value each label returned."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.last: dict[str, Any] = {}

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()
        self.last.clear()

    def total(self, prefix: str) -> float:
        return sum(s for label, s in self.seconds.items() if label.startswith(prefix))


class Timed:
    """Times every method call of the object it wraps; the cycle sees the same port."""

    def __init__(self, inner: object, watch: Stopwatch, prefix: str) -> None:
        self._inner = inner
        self._watch = watch
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr
        label = f"{self._prefix}.{name}"
        watch = self._watch

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                value = attr(*args, **kwargs)
            finally:
                watch.seconds[label] += time.perf_counter() - started
                watch.calls[label] += 1
            watch.last[label] = value
            return value

        return timed


class ServerMeter:
    """WSGI middleware: requests, wall and CPU seconds spent inside the SCIM application."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.wall = 0.0
        self.cpu = 0.0
        self.profile: cProfile.Profile | None = None
        self.latency = 0.0  # seconds added before each request, standing in for a network

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.wall = self.cpu = 0.0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        if self.latency:
            time.sleep(self.latency)  # a network round trip: the GIL is free meanwhile
        # cProfile follows one thread: a profiled run holds the lock around the whole call.
        profiling = self.profile is not None
        if profiling:
            self._lock.acquire()
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            if self.profile is not None:
                self.profile.enable()
            try:
                result = self._app(environ, start_response)
                try:
                    body = list(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
            finally:
                if self.profile is not None:
                    self.profile.disable()
        finally:
            spent_cpu, spent_wall = time.thread_time() - cpu, time.perf_counter() - wall
            if profiling:
                self._lock.release()
        with self._lock:
            self.cpu += spent_cpu
            self.wall += spent_wall
            self.requests[environ["REQUEST_METHOD"]] += 1
        return body


class GcMeter:
    """Pauses of the cyclic garbage collector in any thread: the heap is shared with the servers."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0  # generation-2 collections
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.seconds, self.full = 0.0, 0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        if info.get("generation") == 2:
            self.full += 1


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass(slots=True)
class Measured:
    """One cycle: what the agent saw and sent, and where the time went."""

    label: str
    result: CycleResult
    wall: float
    client_cpu: float  # the agent's thread: our code, httpx, SQLAlchemy, sqlite, the SDK
    process_cpu: float  # every thread of the process (not the PostgreSQL server)
    server_cpu: float  # inside the SCIM application
    server_wall: float
    server_requests: int
    graph_requests: int
    phases: dict[str, float]
    calls: dict[str, int]
    plan_seconds: float  # build_plan again, on the very inputs the cycle had
    gc_seconds: float
    gc_full: int
    rss_mb: float

    @property
    def reads(self) -> int:
        report = self.result.report
        return sum(1 for r in report.requests if r.method == "GET") if report else 0

    @property
    def writes(self) -> int:
        report = self.result.report
        return sum(1 for r in report.requests if r.method != "GET" and r.sent) if report else 0

    @property
    def withheld(self) -> int:
        report = self.result.report
        return sum(1 for r in report.requests if not r.sent) if report else 0


@dataclass
class Bench:
    runtime: Runtime
    graph: GraphEmulator
    meter: ServerMeter
    watch: Stopwatch = field(default_factory=Stopwatch)
    collector: GcMeter = field(default_factory=GcMeter)

    def cycle(self, label: str, *, dry_run: bool = False) -> Measured:
        runtime, watch, meter = self.runtime, self.watch, self.meter
        watch.reset()
        meter.reset()
        self.collector.reset()
        self.graph.clear_requests()
        runtime.requests.entries.clear()
        source = cast(DirectorySource, Timed(runtime.source, watch, "graph"))
        target = cast(ScimTarget, Timed(runtime.target, watch, "scim"))
        store = cast(StateStore, Timed(runtime.store, watch, "state"))
        options = runtime.options(dry_run=dry_run, allow_deletions=False)
        wall, thread_cpu, process_cpu = time.perf_counter(), time.thread_time(), time.process_time()
        # What Runtime.sync runs, with each port timed.
        result = run_cycle(source, target, store, runtime.requests, options)
        wall = time.perf_counter() - wall
        thread_cpu = time.thread_time() - thread_cpu
        process_cpu = time.process_time() - process_cpu
        gc_seconds, gc_full = self.collector.seconds, self.collector.full
        if result.error is not None:
            raise SystemExit(f"{label}: the cycle failed: {result.error}")
        if result.report and result.report.failed:
            first = result.report.failed[0].outcome
            raise SystemExit(f"{label}: {len(result.report.failed)} failed, e.g. {first.error}")
        snapshot = watch.last["graph.read_snapshot"]
        recorded = watch.last["state.load"]
        presence = watch.last.get("graph.user_presence", {})
        plan_seconds = time_plan(snapshot, recorded, presence, runtime)
        return Measured(
            label=label,
            result=result,
            wall=wall,
            client_cpu=thread_cpu,
            process_cpu=process_cpu,
            server_cpu=meter.cpu,
            server_wall=meter.wall,
            server_requests=sum(meter.requests.values()),
            graph_requests=len(self.graph.requests),
            phases=dict(watch.seconds),
            calls=dict(watch.calls),
            plan_seconds=plan_seconds,
            gc_seconds=gc_seconds,
            gc_full=gc_full,
            rss_mb=peak_rss_mb(),
        )


def time_plan(
    snapshot: DirectorySnapshot,
    recorded: RecordedState,
    presence: dict[str, Presence],
    runtime: Runtime,
) -> float:
    started = time.perf_counter()
    build_plan(
        snapshot, recorded, presence, members_per_patch=runtime.config.scim.members_per_patch
    )
    return time.perf_counter() - started


def side_phases(runtime: Runtime, repeats: int) -> dict[str, list[float]]:
    """The phases of a no-change cycle, each called on its own (the apply is just the probe)."""
    times: dict[str, list[float]] = defaultdict(list)
    source, store = runtime.source, runtime.store
    for _ in range(repeats):
        started = time.perf_counter()
        snapshot = source.read_snapshot()
        times["Graph read (read_snapshot)"].append(time.perf_counter() - started)

        started = time.perf_counter()
        recorded = store.load()
        times["state load (load)"].append(time.perf_counter() - started)

        started = time.perf_counter()
        departed = departed_user_ids(snapshot, recorded)
        presence = source.user_presence(departed)
        times["departed users (user_presence)"].append(time.perf_counter() - started)

        started = time.perf_counter()
        plan = build_plan(
            snapshot, recorded, presence, members_per_patch=runtime.config.scim.members_per_patch
        )
        times["plan (build_plan)"].append(time.perf_counter() - started)
        if plan.changes:
            raise SystemExit(f"the no-change plan has {len(plan.changes)} changes")

        started = time.perf_counter()
        executor = Executor(
            runtime.target,
            DiscardingWriter(),
            RequestLog(),
            run_id=0,
            dialect=runtime.config.scim.dialect,
            recorded=recorded,
        )
        executor.execute(plan)
        times["apply (the probe: one GET)"].append(time.perf_counter() - started)

        started = time.perf_counter()
        run_id = store.start_run("bench")
        store.finish_run(run_id, "success", {})
        times["run log (start_run + finish_run)"].append(time.perf_counter() - started)
    return times


# -- the servers and the store ------------------------------------------------------------------


@contextmanager
def state_url(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'state.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = "host=127.0.0.1 port=5432 user=root dbname=test connect_timeout=5"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def bench_setup(args: argparse.Namespace, directory: Directory) -> Iterator[Bench]:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cycle-")))
        graph = stack.enter_context(GraphEmulator(directory.tenant, token=GRAPH_TOKEN))
        app, _storage = build_app(SCIM_SECRET, strict=args.dialect == "compliant")
        meter = ServerMeter(app)
        meter.latency = args.latency_ms / 1000
        root = stack.enter_context(serve(meter))
        scim_url = f"{root}/v2" + (f"?{COMPLIANT_FLAG}" if args.dialect == "compliant" else "")
        (workdir / "graph-token").write_text(GRAPH_TOKEN)
        (workdir / "scim-secret").write_text(SCIM_SECRET)
        graph_section = {
            "credential": "token",
            "token_file": "graph-token",
            "base_url": graph.base_url,
        }
        config = parse_config(
            {
                "graph": graph_section,
                "source": {"group_prefix": "SourceMagnet"},
                "scim": {
                    "base_url": scim_url,
                    "secret_file": "scim-secret",
                    "concurrency": args.concurrency,
                },
                "state": {"url": stack.enter_context(state_url(args.state, workdir))},
            },
            base_dir=workdir,
            env={},
        )
        runtime = stack.enter_context(open_runtime(config))
        yield Bench(runtime, graph, meter)


# -- the report -------------------------------------------------------------------------------


def seconds(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def print_table(rows: list[Measured], users: int) -> None:
    head = (
        f"{'cycle':<34}{'wall s':>8}{'users/s':>9}{'SCIM req':>10}{'writes':>8}{'req/s':>8}"
        f"{'Graph':>7}{'agent CPU':>11}{'SCIM srv':>10}{'other thr':>11}{'waiting':>9}"
        f"{'GC':>6}{'RSS MB':>8}"
    )
    print(head)
    print("-" * len(head))
    for m in rows:
        requests = m.reads + m.writes
        rate = requests / m.wall if m.wall else 0.0
        other = m.process_cpu - m.client_cpu - m.server_cpu
        per_user = f"{users / m.wall:.0f}" if "initial" in m.label or "dry" in m.label else "-"
        writes = f"{m.writes}" if not m.withheld else f"({m.withheld})"
        print(
            f"{m.label:<34}{seconds(m.wall):>8}{per_user:>9}{requests:>10}{writes:>8}"
            f"{rate:>8.0f}{m.graph_requests:>7}{seconds(m.client_cpu):>11}"
            f"{seconds(m.server_cpu):>10}{seconds(other):>11}"
            f"{seconds(max(m.wall - m.process_cpu, 0.0)):>9}{seconds(m.gc_seconds):>6}"
            f"{m.rss_mb:>8.0f}"
        )
    print(
        "(seconds. writes in parentheses: withheld by the dry run. agent CPU: the thread that "
        "runs the cycle; SCIM srv: inside scim2-server's application; other thr: the Graph "
        "emulator and both servers' HTTP handling; waiting: wall time no thread of this process "
        "was on a CPU (thread hand-offs, the database server, other processes); GC: collector "
        "pauses, any thread, part of the CPU columns; RSS: peak so far)"
    )


def print_breakdown(m: Measured) -> None:
    scim = sum(s for k, s in m.phases.items() if k.startswith("scim."))
    state_writes = sum(
        s
        for k, s in m.phases.items()
        if k.startswith("state.") and k not in ("state.load", "state.start_run", "state.finish_run")
    )
    run_log = m.phases.get("state.start_run", 0.0) + m.phases.get("state.finish_run", 0.0)
    graph = m.phases.get("graph.read_snapshot", 0.0)
    presence = m.phases.get("graph.user_presence", 0.0)
    load = m.phases.get("state.load", 0.0)
    rest = m.wall - scim - state_writes - run_log - graph - presence - load
    parts = [
        f"Graph read {seconds(graph)}",
        f"state load {m.phases.get('state.load', 0.0):.3f}",
        f"plan {m.plan_seconds:.3f}",
        f"SCIM calls {seconds(scim)} (server app {seconds(m.server_wall)})",
        f"state writes {seconds(state_writes)}",
        f"rest {seconds(rest)}",
        f"GC {seconds(m.gc_seconds)} ({m.gc_full} full)",
    ]
    if presence:
        parts.insert(1, f"user_presence {seconds(presence)}")
    print(f"  {m.label}: " + ", ".join(parts))
    calls = ", ".join(
        f"{label.split('.', 1)[1]} {count}x {m.phases[label] / count * 1000:.2f} ms"
        for label, count in sorted(m.calls.items())
        if (label.startswith(("scim.", "state.")) and label != "state.load")
    )
    print(f"    per call: {calls}")


# -- profiling ----------------------------------------------------------------------------------


def package_of(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "(built-in C functions)"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "syncagent" in parts:
        index = len(parts) - 1 - parts[::-1].index("syncagent")
        return "syncagent/" + "/".join(parts[index + 1 :])
    return f"stdlib {path.stem}"


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    raw = cast(dict[tuple[str, int, str], tuple[Any, ...]], stats.stats)  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        key = package_of(filename)
        if key == "(built-in C functions)":
            key = f"built-in {name}"
        totals[key] += tottime
    return sorted(totals.items(), key=lambda item: -item[1])


def print_profile(title: str, path: Path, total: float, limit: int) -> None:
    stats = pstats.Stats(str(path))
    print(f"\n=== {title}: self time by package/module (of {total:.2f} s profiled)")
    for key, value in by_package(stats)[:limit]:
        print(f"  {value:8.2f} s {value / total * 100:5.1f}%  {key}")
    print(f"\n=== {title}: top functions by cumulative time")
    stats.sort_stats("cumulative").print_stats(limit)


def run_profile(args: argparse.Namespace, directory: Directory) -> None:
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    clock: Callable[[], float] = (
        time.thread_time if args.profile_clock == "cpu" else time.perf_counter
    )
    with bench_setup(args, directory) as bench:
        bench.runtime.source  # noqa: B018 (imports the Graph SDK before the clock runs)
        client = cProfile.Profile(clock)
        server = cProfile.Profile(clock)
        bench.meter.profile = server
        started = time.perf_counter()
        client.enable()
        result = bench.runtime.sync()
        client.disable()
        wall = time.perf_counter() - started
        bench.meter.profile = None
        print(
            f"initial sync under cProfile ({args.profile_clock} clock): {wall:.2f} s, "
            f"{result.status}"
        )
        client.dump_stats(out / "client.prof")
        server.dump_stats(out / "scim-server.prof")
    client_total = pstats.Stats(str(out / "client.prof")).total_tt  # type: ignore[attr-defined]
    server_total = pstats.Stats(str(out / "scim-server.prof")).total_tt  # type: ignore[attr-defined]
    print(f"profiled: agent thread {client_total:.2f} s, SCIM server app {server_total:.2f} s")
    print_profile("agent thread", out / "client.prof", client_total, args.top)
    print_profile("SCIM server", out / "scim-server.prof", server_total, args.top)


# -- main ----------------------------------------------------------------------------------------


def run_bench(args: argparse.Namespace, directory: Directory) -> None:
    rows: list[Measured] = []
    with bench_setup(args, directory) as bench:
        started = time.perf_counter()
        bench.runtime.source  # noqa: B018 (imports the Graph SDK before the clock runs)
        print(f"Graph SDK import and client: {time.perf_counter() - started:.2f} s (not counted)")
        print(f"peak RSS before the first cycle: {peak_rss_mb():.0f} MB\n")

        rows.append(bench.cycle("dry run, fresh state, empty target", dry_run=True))
        rows.append(bench.cycle("initial sync (all created)"))
        created = len(bench.runtime.store.load().users)
        if created != len(directory.users):
            raise SystemExit(f"initial sync recorded {created} of {len(directory.users)} users")

        no_change = [bench.cycle(f"no-change sync #{i + 1}") for i in range(args.repeats)]
        rows.extend(no_change)
        if any(m.writes for m in no_change):
            raise SystemExit("a no-change sync sent writes")
        phases = side_phases(bench.runtime, args.repeats)

        retitled, moved = change_directory(directory)
        rows.append(bench.cycle(f"after {retitled} retitled + {moved} moved"))

        print_table(rows, len(directory.users))
        print("\nWhere each cycle's wall time went (timed at the ports; 'rest' is plan, bodies, "
              "bookkeeping):")  # fmt: skip
        for m in rows:
            print_breakdown(m)
        print("\nNo-change cycle, each phase called on its own (median / min of "
              f"{args.repeats}, ms):")  # fmt: skip
        for label, values in phases.items():
            print(f"  {label:<36}{statistics.median(values) * 1000:9.1f}{min(values) * 1000:9.1f}")
        changed = rows[-1]
        counts = changed.result.plan.counts() if changed.result.plan else {}
        print(f"\nchange sync plan: {counts}")
    print(f"peak RSS of the process: {peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=7)
    parser.add_argument("--memberships-per-user", type=int, default=2)
    parser.add_argument("--state", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--dialect", choices=("default", "compliant"), default="default")
    parser.add_argument("--repeats", type=int, default=3, help="no-change syncs to run")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="[scim] concurrency (default 4, as shipped)"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay added to every SCIM request, standing in for a network round trip",
    )
    parser.add_argument("--profile", metavar="DIR", help="profile the initial sync only")
    parser.add_argument("--profile-clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--top", type=int, default=25, help="rows per profile listing")
    args = parser.parse_args()
    logs.configure("warning")

    started = time.perf_counter()
    directory = build_directory(args.users, args.groups, args.memberships_per_user)
    memberships = sum(len(groups) for groups in directory.membership.values())
    print(
        f"tenant: {len(directory.users)} users, {len(directory.groups)} groups, {memberships} "
        f"memberships (built in {time.perf_counter() - started:.2f} s); state {args.state}, "
        f"dialect {args.dialect}, concurrency {args.concurrency}, SCIM latency "
        f"{args.latency_ms:g} ms, Python {sys.version.split()[0]}"
    )
    print(f"load average at start: {load_average()}")
    if args.profile:
        run_profile(args, directory)
    else:
        run_bench(args, directory)
    print(f"load average at end: {load_average()} (on {os.cpu_count()} CPUs)")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
