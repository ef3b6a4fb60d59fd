"""The command line as an administrator meets it: output, exit codes, errors and secrets.

Every test drives the real CLI against the Graph emulator and scim2-server through a
configuration file, like an installed agent reads. Most run in-process with click's
CliRunner (stdout and stderr kept apart); a few run `python -m syncagent.cli` as a real
process, where only the operating system separates the two streams.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from syncagent.cli import main
from syncagent.emulator import GraphEmulator, Tenant
from syncagent.emulator.scim import scim_target
from tests.fixtures.emulator import TEST_GRAPH_TOKEN
from tests.fixtures.scim_server import ScimServer

GRAPH_SECRET = "s3cr3t-XYZ-graph-token-7f3a9c51"
SCIM_SECRET = "s3cr3t-XYZ-scim-secret-4b81e2d0"
WRONG_SCIM_SECRET = "s3cr3t-XYZ-wrong-scim-0c9d77aa"

Sections = Mapping[str, Mapping[str, Any]]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml(sections: Sections) -> str:
    # Strings and integers only: JSON's quoting is valid TOML for both.
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


@dataclass
class Site:
    """A configured agent: the two services, its directory and its config file."""

    dir: Path
    tenant: Tenant
    graph_url: str
    scim_url: str
    graph_token: str
    scim_secret: str
    config: Path

    @property
    def db(self) -> Path:
        return self.dir / "state.db"

    def write_config(self, name: str = "syncagent.toml", **overrides: Mapping[str, Any]) -> Path:
        (self.dir / "graph-token").write_text(self.graph_token + "\n")
        (self.dir / "scim-secret").write_text(self.scim_secret + "\n")
        sections: dict[str, dict[str, Any]] = {
            "graph": {"credential": "token", "token_file": "graph-token"},
            "source": {"group_prefix": "SourceMagnet"},
            "scim": {"base_url": self.scim_url, "secret_file": "scim-secret", "concurrency": 1},
            "state": {"url": f"sqlite:///{self.db}"},
        }
        sections["graph"]["base_url"] = self.graph_url
        for section, values in overrides.items():
            sections.setdefault(section, {}).update(values)
        path = self.dir / name
        path.write_text(toml(sections))
        return path

    def cli(self, *args: str, config: Path | None = None) -> Result:
        """`syncagent ARGS --config FILE`, in-process; stdout and stderr kept apart."""
        argv = [*args, "--config", str(config or self.config)]
        return CliRunner().invoke(main, argv, catch_exceptions=False)

    def run(
        self, *args: str, config: Path | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """The same as a real process: `python -m syncagent.cli ARGS --config FILE`."""
        argv = [*args, "--config", str(config or self.config)]
        return run_cli(*argv, timeout=timeout)

    def provision(self, alias: str, *groups: str) -> str:
        user_id = self.tenant.add_user(
            f"{alias}@contoso.com", given_name=alias.title(), surname="Tester"
        )
        for name in groups:
            group = self.tenant.find_group(name)
            group_id = group.id if group is not None else self.tenant.add_group(name)
            self.tenant.add_members(group_id, user_id)
        return user_id

    def leave(self, user_id: str, *groups: str) -> None:
        for name in groups:
            group = self.tenant.find_group(name)
            assert group is not None
            self.tenant.remove_members(group.id, user_id)


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCAGENT_")}
    env.pop("CREDENTIALS_DIRECTORY", None)
    return env


def run_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncagent.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        check=False,
    )


def syncagent_lines(stderr: str) -> list[str]:
    """The CLI's own stderr lines (log lines start with a timestamp)."""
    return [line for line in stderr.splitlines() if line.startswith("syncagent: ")]


SUMMARY = re.compile(r"^Summary: .*; (done|PARTIAL: .*|FAILED.*|REFUSED) in \d+\.\ds$", re.M)


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """The CLI sets up logging for a whole process; give the next test its own."""
    root = logging.getLogger()
    level, own_level = root.level, logging.getLogger("syncagent").level
    yield
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:  # the CLI's; pytest's are subclasses
            root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("syncagent").setLevel(own_level)


@pytest.fixture
def site(tmp_path: Path, graph_emulator: GraphEmulator, scim_server: ScimServer) -> Site:
    site = Site(
        tmp_path,
        graph_emulator.tenant,
        graph_emulator.base_url,
        scim_server.base_url,
        TEST_GRAPH_TOKEN,
        scim_server.token,
        config=tmp_path / "syncagent.toml",
    )
    site.write_config()
    site.provision("alice", "SourceMagnetAdmin", "SourceMagnetContractCreator")
    return site


# -- sync -----------------------------------------------------------------------------------


def test_sync_applies_then_a_second_sync_has_nothing_to_change(
    site: Site, scim_server: ScimServer
) -> None:
    first = site.run("sync")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == "Sync (run 1)"
    assert "  + provision user alice@contoso.com" in first.stdout.splitlines()
    assert "  + add members to SourceMagnetAdmin (1 member)" in first.stdout.splitlines()
    summary = first.stdout.splitlines()[-1]
    assert SUMMARY.match(summary), summary
    assert summary.startswith(
        "Summary: users 1 created; groups 2 created; members 2 added, 0 removed; "
        "4 reads, 5 writes sent; done in "
    )
    # Logs go to stderr only, and say nothing the administrator must act on.
    assert "INFO syncagent.cycle" in first.stderr
    assert " INFO " not in first.stdout
    assert syncagent_lines(first.stderr) == []
    assert {u["userName"] for u in dump(scim_server, "User")} == {"alice@contoso.com"}

    scim_server.clear()
    second = site.cli("sync")
    assert second.exit_code == 0, second.stderr
    assert second.stdout.splitlines()[:2] == ["Sync (run 2)", "  nothing to change"]
    assert "; 1 reads, 0 writes sent; done in " in second.stdout.splitlines()[-1]
    assert scim_server.writes() == []


def test_dry_run_shows_the_withheld_requests_and_sends_no_writes(
    site: Site, scim_server: ScimServer
) -> None:
    result = site.cli("sync", "--dry-run")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Dry run: nothing was sent but reads"
    assert "      POST /Users (not sent)" in lines
    assert lines.count("      POST /Groups (not sent)") == 2
    body = json.loads(lines[lines.index("      POST /Users (not sent)") + 1])
    assert body["userName"] == "alice@contoso.com"
    assert body["name"] == {"givenName": "Alice", "familyName": "Tester"}
    patches = [line for line in lines if line.startswith("      PATCH /Groups/")]
    assert patches == [
        "      PATCH /Groups/(new group SourceMagnetAdmin) (not sent)",
        "      PATCH /Groups/(new group SourceMagnetContractCreator) (not sent)",
    ]
    assert "; 4 reads, 5 writes not sent; done in " in lines[-1]
    assert scim_server.writes() == []
    assert {r.method for r in scim_server.requests} == {"GET"}
    assert dump(scim_server, "User") == []
    # Nothing was recorded either: the applied roles are still empty.
    assert site.cli("roles").stdout == "No users.\n"


# -- --json ---------------------------------------------------------------------------------

REQUEST_KEYS = {"method", "path", "body", "status", "sent"}


def operation(document: dict[str, Any], action: str, label: str) -> dict[str, Any]:
    found = [op for op in document["operations"] if op["action"] == action and op["label"] == label]
    assert len(found) == 1, [op["action"] for op in document["operations"]]
    return found[0]


def test_sync_json_stdout_is_one_json_document(site: Site, scim_server: ScimServer) -> None:
    dry = site.run("sync", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    document = json.loads(dry.stdout)  # the whole of stdout, nothing before or after
    assert "INFO syncagent" in dry.stderr  # the logs went to stderr
    assert {"mode", "status", "run_id", "summary", "operations"} <= set(document)
    assert (document["mode"], document["status"], document["run_id"]) == (
        "dry-run",
        "success",
        None,
    )
    assert document["error"] is None
    assert document["summary"]["users"]["created"] == 1
    assert document["summary"]["groups"]["created"] == 2
    assert document["summary"]["requests"] == {"reads": 4, "writes": 5}
    assert all(
        set(request) == REQUEST_KEYS for op in document["operations"] for request in op["requests"]
    )
    lookup, create = operation(document, "create_user", "alice@contoso.com")["requests"]
    assert (lookup["method"], lookup["status"], lookup["sent"]) == ("GET", 200, True)
    assert lookup["path"] == "/Users?filter=userName+eq+%22alice%40contoso.com%22"
    assert (create["method"], create["path"], create["status"], create["sent"]) == (
        "POST",
        "/Users",
        None,
        False,
    )
    assert create["body"]["userName"] == "alice@contoso.com"
    assert scim_server.writes() == []

    real = site.cli("sync", "--json")
    assert real.exit_code == 0, real.stderr
    document = json.loads(real.stdout)
    assert (document["mode"], document["status"], document["run_id"]) == ("sync", "success", 1)
    assert document["summary"]["requests"] == {"reads": 4, "writes": 5}
    create = operation(document, "create_user", "alice@contoso.com")["requests"][1]
    assert (create["method"], create["path"], create["status"], create["sent"]) == (
        "POST",
        "/Users",
        201,
        True,
    )
    admin = next(g for g in dump(scim_server, "Group") if g["displayName"] == "SourceMagnetAdmin")
    alice = next(u for u in dump(scim_server, "User"))
    (patch,) = operation(document, "add_members", "SourceMagnetAdmin")["requests"]
    assert (patch["method"], patch["path"], patch["status"], patch["sent"]) == (
        "PATCH",
        f"/Groups/{admin['id']}",
        204,
        True,
    )
    assert patch["body"]["Operations"] == [
        {"op": "Add", "path": "members", "value": [{"value": alice["id"]}]}
    ]


def test_a_failed_run_with_json_still_prints_one_document(site: Site) -> None:
    config = site.write_config(
        "no-scim.toml", scim={"base_url": f"http://127.0.0.1:{closed_port()}/v2", "max_retries": 0}
    )
    result = site.cli("sync", "--json", config=config)
    assert result.exit_code == 4
    document = json.loads(result.stdout)
    assert document["status"] == "failed"
    assert "connection refused" in document["error"]
    assert len(syncagent_lines(result.stderr)) == 1


# -- exit code 2: configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("cloud", "graph.cloud"),
        ("unknown key", "scim.base_urll"),
        ("no secret file", "scim.secret_file"),
        ("bad value", "safety.max_deletions"),
        ("no config file", "not found"),
    ],
)
def test_a_configuration_error_is_one_line_and_exit_2(site: Site, case: str, named: str) -> None:
    text = site.config.read_text()
    broken = site.dir / "broken.toml"
    if case == "cloud":
        broken.write_text(text.replace("[graph]\n", '[graph]\ncloud = "europe"\n'))
    elif case == "unknown key":
        broken.write_text(text.replace("[scim]\n", '[scim]\nbase_urll = "https://x.test"\n'))
    elif case == "no secret file":
        broken.write_text(text.replace('"scim-secret"', '"absent-secret"'))
    elif case == "bad value":
        broken.write_text(text + "[safety]\nmax_deletions = -1\n")
    result = site.cli("sync", config=broken)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("syncagent: configuration error: ")
    assert named in lines[0]
    assert "Traceback" not in result.stderr
    if case == "cloud":
        assert lines[0] == (
            "syncagent: configuration error: graph.cloud: must be one of global, usgov, "
            'usgov-dod, china (got "europe")'
        )
    if case == "no config file":
        assert str(broken) in lines[0] and "--config" in lines[0]


def test_the_config_file_can_come_from_the_environment(site: Site) -> None:
    runner = CliRunner(env={"SYNCAGENT_CONFIG": str(site.config)})
    assert runner.invoke(main, ["roles"]).stdout == "No users.\n"
    missing = CliRunner(env={"SYNCAGENT_CONFIG": str(site.dir / "gone.toml")})
    result = missing.invoke(main, ["roles"])
    assert result.exit_code == 2
    assert "gone.toml not found" in result.stderr


def test_a_usage_error_exits_2(site: Site) -> None:
    result = site.cli("sync", "--no-such-option")
    assert result.exit_code == 2
    assert "No such option" in result.stderr
    assert result.stdout == ""


# -- exit code 3: refused ---------------------------------------------------------------------


def test_the_deletion_guard_refuses_then_allow_deletions_applies(
    site: Site, scim_server: ScimServer
) -> None:
    config = site.write_config("guarded.toml", safety={"max_deletions": 0})
    bob = site.provision("bob", "SourceMagnetAdmin")
    assert site.cli("sync", config=config).exit_code == 0
    alice = site.tenant.find_user("alice@contoso.com")
    assert alice is not None
    site.leave(alice.id, "SourceMagnetAdmin", "SourceMagnetContractCreator")
    site.leave(bob, "SourceMagnetAdmin")

    scim_server.clear()
    refused = site.cli("sync", config=config)
    assert refused.exit_code == 3
    assert scim_server.writes() == []
    lines = refused.stdout.splitlines()
    assert lines[1] == "  not applied; the plan was:"
    assert "  - disable user alice@contoso.com [out_of_scope]" in lines
    assert "  - disable user bob@contoso.com [out_of_scope]" in lines
    assert re.match(r"Summary: \d+ change\(s\) planned; nothing sent; REFUSED in ", lines[-1])
    (reason,) = syncagent_lines(refused.stderr)
    assert reason.startswith("syncagent: refused: the plan would disable or delete 2 users")
    assert "safety.max_deletions (0)" in reason and "--allow-deletions" in reason
    assert "Traceback" not in refused.stderr

    refused_json = site.cli("sync", "--json", config=config)
    assert refused_json.exit_code == 3
    assert json.loads(refused_json.stdout)["status"] == "refused"
    assert scim_server.writes() == []

    applied = site.cli("sync", "--allow-deletions", config=config)
    assert applied.exit_code == 0, applied.stderr
    assert {(w.method, w.target.split("/")[1]) for w in scim_server.writes()} == {
        ("PATCH", "Users"),
        ("PATCH", "Groups"),
    }
    assert all(u["active"] is False for u in dump(scim_server, "User"))
    assert "users 2 disabled" in applied.stdout.splitlines()[-1]


# -- exit code 4: a service or the state database fails --------------------------------------


def test_an_unreachable_scim_endpoint_exits_4_naming_the_url(site: Site) -> None:
    port = closed_port()
    config = site.write_config(
        "no-scim.toml", scim={"base_url": f"http://127.0.0.1:{port}/scim/v2", "max_retries": 0}
    )
    result = site.cli("sync", config=config)
    assert result.exit_code == 4
    (reason,) = syncagent_lines(result.stderr)
    assert reason.startswith("syncagent: failed: ")
    assert f"http://127.0.0.1:{port}/scim/v2/Users" in reason
    assert "connection refused" in reason
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert "    probe the SCIM endpoint  FAILED" in lines
    assert "  5 operation(s) not attempted: they run on the next cycle" in lines
    assert "FAILED: 1 failed, 5 not attempted in " in lines[-1]


def test_an_unreachable_graph_exits_4_naming_the_url(site: Site, scim_server: ScimServer) -> None:
    port = closed_port()
    config = site.write_config(
        "no-graph.toml", graph={"base_url": f"http://127.0.0.1:{port}/v1.0", "max_retries": 0}
    )
    for args in (("sync",), ("roles", "--live")):
        result = site.cli(*args, config=config)
        assert result.exit_code == 4, args
        (reason,) = syncagent_lines(result.stderr)
        assert reason.startswith("syncagent: failed: cannot reach Microsoft Graph at ")
        assert f"http://127.0.0.1:{port}/v1.0/groups" in reason
        assert "ConnectError" in reason
        assert "Traceback" not in result.stderr
    assert result.stdout == ""
    sync = site.cli("sync", config=config)
    assert sync.stdout.splitlines() == [
        "Sync (run 2)",
        "  no plan: the cycle stopped before it could make one",
        sync.stdout.splitlines()[-1],
    ]
    assert sync.stdout.splitlines()[-1].startswith(
        "Summary: no plan was made; nothing sent; FAILED"
    )
    assert scim_server.requests == []


def test_a_state_database_that_cannot_be_opened_exits_4(site: Site) -> None:
    (site.dir / "a-file").write_text("not a directory")
    config = site.write_config("bad-state.toml", state={"url": f"sqlite:///{site.dir}/a-file/s.db"})
    for args in (("sync",), ("roles",)):
        result = site.cli(*args, config=config)
        assert result.exit_code == 4
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("syncagent: failed: cannot create the directory ")
        assert "state database" in lines[0]


# -- exit code 1: partial ---------------------------------------------------------------------


def test_a_failed_object_makes_a_partial_run_and_the_next_run_retries_it(
    site: Site, scim_server: ScimServer
) -> None:
    site.provision("bob", "SourceMagnetAdmin", "SourceMagnetContractCreator")
    scim_server.fail_next(500, method="POST", times=1)  # the first POST: creating alice
    partial = site.cli("sync")
    assert partial.exit_code == 1
    lines = partial.stdout.splitlines()
    failed = lines.index("  + provision user alice@contoso.com  FAILED")
    assert lines[failed + 1].endswith("/Users answered 500 Internal Server Error")
    assert "members 2 added, 0 removed" in lines[-1]  # bob's two, not alice's
    assert "PARTIAL: 1 failed (retried next run) in " in lines[-1]
    assert syncagent_lines(partial.stderr) == [
        "syncagent: partial: 1 operation(s) failed; they are retried on the next run"
    ]
    assert [u["userName"] for u in dump(scim_server, "User")] == ["bob@contoso.com"]

    retried = site.cli("sync")
    assert retried.exit_code == 0, retried.stderr
    lines = retried.stdout.splitlines()
    assert "  + provision user alice@contoso.com" in lines
    assert "  + provision user bob@contoso.com" not in lines
    assert syncagent_lines(retried.stderr) == []
    assert sorted(u["userName"] for u in dump(scim_server, "User")) == [
        "alice@contoso.com",
        "bob@contoso.com",
    ]


# -- --debug and --verbose --------------------------------------------------------------------


def test_tracebacks_only_with_debug(site: Site) -> None:
    config = site.write_config(
        "no-graph.toml", graph={"base_url": f"http://127.0.0.1:{closed_port()}/v1.0"}
    )
    plain = site.cli("sync", config=config)
    debug = site.cli("--debug", "sync", config=config)
    assert plain.exit_code == debug.exit_code == 4
    assert "Traceback" not in plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    assert "syncagent.errors.SourceError: cannot reach Microsoft Graph" in debug.stderr
    assert syncagent_lines(debug.stderr)[-1] == syncagent_lines(plain.stderr)[-1]

    broken = site.dir / "broken.toml"
    broken.write_text(site.config.read_text().replace("[graph]\n", '[graph]\ncloud = "mars"\n'))
    assert "Traceback" not in site.cli("sync", config=broken).stderr
    debugged = site.cli("--debug", "sync", config=broken)
    assert debugged.exit_code == 2
    assert "Traceback (most recent call last)" in debugged.stderr
    assert debugged.stderr.splitlines()[-1].startswith("syncagent: configuration error: ")


def test_verbose_logs_syncagent_at_debug_and_debug_adds_the_libraries(site: Site) -> None:
    quiet = site.cli("sync", "--dry-run")
    verbose = site.cli("-v", "sync", "--dry-run")
    debug = site.cli("--debug", "sync", "--dry-run")
    assert quiet.exit_code == verbose.exit_code == debug.exit_code == 0
    assert " DEBUG syncagent." not in quiet.stderr
    assert " DEBUG syncagent." in verbose.stderr
    assert " DEBUG httpcore" not in verbose.stderr and "INFO httpx" not in verbose.stderr
    assert " DEBUG httpcore" in debug.stderr
    assert "Traceback" not in verbose.stderr + debug.stderr
    changes = [line for line in quiet.stdout.splitlines() if line.startswith("  +")]
    assert len(changes) == 5
    assert changes == [line for line in verbose.stdout.splitlines() if line.startswith("  +")]


def test_an_interrupted_run_exits_130_without_a_traceback(site: Site) -> None:
    config = site.write_config(
        "slow-scim.toml", scim={"base_url": f"http://127.0.0.1:{closed_port()}/v2"}
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "syncagent.cli", "sync", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert process.stderr is not None
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the first retry wait is our moment
            line = process.stderr.readline()
            seen.append(line)
            if not line or "retrying GET" in line:
                break
        assert "retrying GET" in seen[-1], seen
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert process.returncode == 130
    assert stderr.splitlines()[-1] == "syncagent: interrupted"
    assert "Traceback" not in stderr and stdout == ""


def test_a_reader_that_goes_away_does_not_change_the_exit_code(
    site: Site, scim_server: ScimServer
) -> None:
    # As in `syncagent sync --json | head -1`: stdout is closed before the result is printed.
    process = subprocess.Popen(
        [sys.executable, "-m", "syncagent.cli", "sync", "--json", "--config", str(site.config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert process.stdout is not None
    process.stdout.close()
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
    assert syncagent_lines(stderr) == []
    assert [u["userName"] for u in dump(scim_server, "User")] == ["alice@contoso.com"]


# -- roles ------------------------------------------------------------------------------------


def test_roles_from_state_and_live_from_graph(site: Site) -> None:
    site.provision("bob", "SourceMagnetSourcingViewer", "SourceMagnetProjectCreator")
    assert site.cli("roles").stdout == "No users.\n"
    assert site.cli("sync").exit_code == 0

    table = site.cli("roles")
    assert table.exit_code == 0
    assert table.stdout.splitlines() == [
        "USER               ACTIVE  ROLES",
        "alice@contoso.com  yes     Admin, Contract creator",
        "bob@contoso.com    yes     Sourcing viewer, Project creator",
    ]
    as_json = site.cli("roles", "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == [
        {
            "userName": "alice@contoso.com",
            "active": True,
            "roles": ["Admin", "Contract creator"],
            "groups": ["SourceMagnetAdmin", "SourceMagnetContractCreator"],
        },
        {
            "userName": "bob@contoso.com",
            "active": True,
            "roles": ["Sourcing viewer", "Project creator"],
            "groups": ["SourceMagnetProjectCreator", "SourceMagnetSourcingViewer"],
        },
    ]

    # Entra changes; until the next sync, only --live sees it.
    site.provision("carol", "SourceMagnetContractViewer")
    alice = site.tenant.find_user("alice@contoso.com")
    assert alice is not None
    site.leave(alice.id, "SourceMagnetContractCreator")
    live = site.cli("roles", "--live", "--json")
    assert live.exit_code == 0
    assert {row["userName"]: row["roles"] for row in json.loads(live.stdout)} == {
        "alice@contoso.com": ["Admin"],
        "bob@contoso.com": ["Sourcing viewer", "Project creator"],
        "carol@contoso.com": ["Contract viewer"],
    }
    live_table = site.cli("roles", "--live")
    assert "carol@contoso.com  yes     Contract viewer" in live_table.stdout.splitlines()
    assert len(site.cli("roles").stdout.splitlines()) == 3  # state is unchanged


# -- secrets ----------------------------------------------------------------------------------


@pytest.fixture
def secret_site(tmp_path: Path) -> Iterator[Site]:
    """Services that accept only distinctive secrets, so that any echo of them is found."""
    with (
        GraphEmulator(Tenant(), token=GRAPH_SECRET) as graph,
        scim_target(SCIM_SECRET) as target,
    ):
        site = Site(
            tmp_path,
            graph.tenant,
            graph.base_url,
            target.base_url,
            GRAPH_SECRET,
            SCIM_SECRET,
            config=tmp_path / "syncagent.toml",
        )
        site.write_config()
        site.provision("alice", "SourceMagnetAdmin", "SourceMagnetContractCreator")
        yield site


def test_secrets_never_reach_output_or_the_state_database(secret_site: Site) -> None:
    site = secret_site
    wrong = site.dir / "wrong-scim-secret"
    wrong.write_text(WRONG_SCIM_SECRET)
    rejected = site.write_config("rejected.toml", scim={"secret_file": str(wrong)})
    unreachable = site.write_config(
        "unreachable.toml",
        scim={"base_url": f"http://127.0.0.1:{closed_port()}/v2", "max_retries": 0},
    )
    runs = [
        (0, site.cli("--debug", "sync", "--dry-run", "--json")),
        (0, site.cli("--debug", "sync")),
        (0, site.cli("--debug", "sync", "--json")),
        (0, site.cli("-v", "roles")),
        (0, site.cli("--debug", "roles", "--live", "--json")),
        (4, site.cli("--debug", "sync", config=rejected)),  # SCIM answers 401
        (4, site.cli("--debug", "sync", config=unreachable)),
    ]
    graph_url = site.graph_url
    site.graph_url = f"http://127.0.0.1:{closed_port()}/v1.0"
    runs.append((4, site.cli("--debug", "sync", config=site.write_config("no-graph.toml"))))
    site.graph_url = graph_url
    runs.append((0, site.cli("sync")))
    runs.append((0, site.cli("--debug", "roles")))

    secrets = (GRAPH_SECRET, SCIM_SECRET, WRONG_SCIM_SECRET)
    for expected, result in runs:
        assert result.exit_code == expected, (result.stdout, result.stderr)
        for secret in secrets:
            assert secret not in result.stdout
            assert secret not in result.stderr
    everything = "".join(r.stderr for _, r in runs)
    assert "Traceback (most recent call last)" in everything  # the failures were debugged
    assert " DEBUG httpcore" in everything  # and the libraries logged what they do
    assert "answered 401" in everything

    files = sorted(site.dir.glob("state.db*"))
    assert site.db in files
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, path
    with sqlite3.connect(site.db) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert {"syncagent_users", "syncagent_groups", "syncagent_runs"} <= set(tables)
        rows = [repr(row) for name in tables for row in db.execute(f'SELECT * FROM "{name}"')]
    assert any("alice@contoso.com" in row for row in rows)  # the rows are really there
    for secret in secrets:
        assert not any(secret in row for row in rows)


# -- demo and help ----------------------------------------------------------------------------


def test_the_demo_runs_offline_to_its_end() -> None:
    result = run_cli("demo", timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "=== 1. What would a sync send?  (syncagent sync --dry-run)" in out
    assert "POST /Users (not sent)" in out
    assert "=== 3. Roles SourceMagnet now grants  (syncagent roles)" in out
    assert re.search(r"^adele\.vance@contoso\.com +yes +Admin, Contract creator$", out, re.M)
    assert re.search(r"^johanna\.lorenz@contoso\.com +no +\(no role\)$", out, re.M)
    last = out[out.index("=== 7.") :]
    assert "  nothing to change" in last
    assert "0 writes sent; done in " in last
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ((), ["Exit codes:", "1   partial", "3   refused", "4   failed", "130 interrupted"]),
        (("sync",), ["--dry-run", "--json", "--allow-deletions", "--config", "Exit codes:"]),
        (("roles",), ["--live", "--json", "--config", "Exit codes:"]),
        (("demo",), ["--keep", "Exit codes:"]),
    ],
)
def test_help_names_the_options_and_exit_codes(command: Sequence[str], mentions: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    for text in mentions:
        assert text in result.stdout, text
    if command == ("sync",):
        assert re.search(r"^\s+2\s+usage or configuration error$", result.stdout, re.M)


def dump(scim: ScimServer, kind: str) -> list[dict[str, Any]]:
    return [
        r.model_dump(mode="json", by_alias=True, exclude_none=True)
        for r in scim.storage.resources
        if type(r).__name__.startswith(kind)
    ]


# -- check ----------------------------------------------------------------------------------


def test_check_reports_each_part_and_sends_no_writes(site: Site, scim_server: ScimServer) -> None:
    result = site.cli("check")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("state  ok      ")
    assert "no run yet" in lines[0]
    assert (
        lines[1].startswith("graph  ok      ") and "2 in-scope groups, 1 member users" in lines[1]
    )
    assert lines[2] == (
        "       warning role groups not found: SourceMagnetContractViewer, "
        "SourceMagnetSourcingCreator, SourceMagnetSourcingViewer, SourceMagnetProjectCreator, "
        "SourceMagnetProjectViewer"
    )
    assert lines[3].startswith("scim   ok      ") and "(default dialect)" in lines[3]
    assert scim_server.writes() == []
    assert [r.method for r in scim_server.requests] == ["GET"]  # the probe alone


def test_check_names_every_failing_part_and_exits_4(site: Site) -> None:
    port = closed_port()
    config = site.write_config(
        "broken.toml",
        graph={"base_url": f"http://127.0.0.1:{port}/v1.0", "max_retries": 0},
        scim={"base_url": f"http://127.0.0.1:{port}/scim/v2", "max_retries": 0},
    )
    result = site.cli("check", "--json", config=config)
    assert result.exit_code == 4
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["state"]["ok"] is True
    assert checks["graph"]["ok"] is False and f"127.0.0.1:{port}" in checks["graph"]["detail"]
    assert checks["scim"]["ok"] is False and "connection refused" in checks["scim"]["detail"]
    assert syncagent_lines(result.stderr) == ["syncagent: failed: graph, scim (see above)"]
