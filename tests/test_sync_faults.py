"""End to end under faults: failed objects, crashes, outages, throttling and safety guards.

The agent runs against the Graph emulator and scim2-server, on SQLite and PostgreSQL
state; faults are injected on the wire (`fail_next`, `inject_fault`) or by a state store
that dies on cue. Every test asserts what reached the target and what the state recorded,
then that the next run converges.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from syncagent.cycle import RunStatus
from syncagent.emulator import GraphEmulator
from syncagent.errors import SourceError
from syncagent.model import OutcomeStatus
from tests.agent import Agent, agent_config, running_agent
from tests.faults import (
    PATCH_OP,
    Crash,
    TappedStore,
    add_groups,
    add_user,
    content,
    crash,
    fast_config,
    group_id,
    group_resources,
    leave_all_groups,
    ok,
    posted_names,
    rejected,
    sync_through,
    user_resources,
    writes,
)
from tests.fixtures.scim_server import ScimServer, start_scim_server

ADMIN = "SourceMagnetAdmin"
CONTRACT = "SourceMagnetContractViewer"
SOURCING = "SourceMagnetSourcingViewer"
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

# No Graph retries (kiota would wait 3 s between them); `fast_config` sets one SCIM retry.
GRAPH: dict[str, Any] = {"max_retries": 0}

MakeAgent = Callable[..., Agent]


@pytest.fixture
def make_agent(
    tmp_path: Path, graph_emulator: GraphEmulator, scim_server: ScimServer, state_url: str
) -> Iterator[MakeAgent]:
    """Agents on the one emulator, SCIM server and state database, closed after the test."""
    with ExitStack() as stack:

        def make(safety: dict[str, Any] | None = None) -> Agent:
            config = fast_config(
                agent_config(
                    tmp_path,
                    graph_emulator,
                    scim_server,
                    state_url,
                    graph=GRAPH,
                    safety=safety or {},
                )
            )
            return stack.enter_context(running_agent(config, graph_emulator, scim_server))

        yield make


@pytest.fixture
def agent(make_agent: MakeAgent) -> Agent:
    return make_agent()


def three_users(agent: Agent) -> dict[str, str]:
    """alice in Admin and Sourcing, bob in Contract and Sourcing, carol in Sourcing."""
    add_groups(agent, ADMIN, CONTRACT, SOURCING)
    return {
        "alice": add_user(agent, "alice", ADMIN, SOURCING),
        "bob": add_user(agent, "bob", CONTRACT, SOURCING),
        "carol": add_user(agent, "carol", SOURCING),
    }


def member_names(agent: Agent, group: str) -> list[str]:
    """Members of a target group by userName, duplicates kept."""
    names = {u["id"]: u["userName"] for u in user_resources(agent.scim)}
    (found,) = [g for g in group_resources(agent.scim) if g["displayName"] == group]
    return sorted(names.get(m["value"], m["value"]) for m in found.get("members") or [])


def failures(agent: Agent, run_id: int | None) -> list[tuple[str, str | None, str]]:
    assert run_id is not None
    return [
        (e.outcome.action, e.outcome.entra_id, e.outcome.error or "")
        for e in agent.runtime.store.operations(run_id)
        if e.outcome.status is OutcomeStatus.FAILED
    ]


# -- 1. a failed object ---------------------------------------------------------------------


def test_a_failed_create_is_logged_the_run_goes_on_and_the_next_run_creates_it(
    agent: Agent,
) -> None:
    ids = three_users(agent)
    agent.scim.fail_next(
        500, method="POST", body={"schemas": [SCIM_ERROR], "status": "500", "detail": "disk full"}
    )  # the first POST is alice's: users go in userName order

    result = agent.sync()

    assert result.status is RunStatus.PARTIAL, result.to_dict()
    assert [(r.body["userName"], r.status) for r in writes(agent.scim, "POST", "/Users")] == [
        ("alice@contoso.com", 500),
        ("bob@contoso.com", 201),
        ("carol@contoso.com", 201),
    ]
    assert sorted(u["userName"] for u in user_resources(agent.scim)) == [
        "bob@contoso.com",
        "carol@contoso.com",
    ]
    assert sorted(g["displayName"] for g in group_resources(agent.scim)) == [
        ADMIN,
        CONTRACT,
        SOURCING,
    ]
    logged = failures(agent, result.run_id)
    assert logged[0][:2] == ("create_user", ids["alice"])
    assert "POST" in logged[0][2] and "/Users answered 500" in logged[0][2]
    assert "disk full" in logged[0][2]
    # Admin's only member failed: nothing to add, and that too is logged.
    assert logged[1][:2] == ("add_members", group_id(agent, ADMIN))
    assert len(logged) == 2
    assert member_names(agent, ADMIN) == []
    assert member_names(agent, SOURCING) == ["bob@contoso.com", "carol@contoso.com"]
    recorded = agent.runtime.store.load()
    assert set(recorded.users) == {ids["bob"], ids["carol"]}
    assert all(user != ids["alice"] for _, user in recorded.memberships)
    assert agent.runtime.store.runs()[0].status == "partial"
    assert result.summary()["failed"] == 2
    assert result.summary()["members"]["added"] == 3  # bob and carol; alice is skipped

    again = agent.sync()

    ok(again)
    assert posted_names(agent.scim) == ["alice@contoso.com"]
    alice = next(u["id"] for u in user_resources(agent.scim) if u["userName"].startswith("alice"))
    member_adds = [r.body["Operations"] for r in writes(agent.scim, "PATCH", "/Groups/")]
    assert member_adds == [[{"op": "Add", "path": "members", "value": [{"value": alice}]}]] * 2
    assert len(user_resources(agent.scim)) == 3
    assert member_names(agent, ADMIN) == ["alice@contoso.com"]
    assert member_names(agent, SOURCING) == [
        "alice@contoso.com",
        "bob@contoso.com",
        "carol@contoso.com",
    ]
    assert rejected(agent.scim) == []


# -- 2. a uniqueness conflict ---------------------------------------------------------------


def test_a_409_on_create_is_logged_and_the_next_run_adopts_the_existing_user(
    agent: Agent,
) -> None:
    add_groups(agent, ADMIN)
    alice = add_user(agent, "alice", ADMIN, job_title="Director")
    agent.scim.fail_next(
        409,
        method="POST",
        body={
            "schemas": [SCIM_ERROR],
            "status": "409",
            "scimType": "uniqueness",
            "detail": "userName is already in use",
        },
    )

    result = agent.sync()

    assert result.status is RunStatus.PARTIAL
    ((action, entra_id, error), _members) = failures(agent, result.run_id)
    assert (action, entra_id) == ("create_user", alice)
    assert "answered 409 Conflict (uniqueness): userName is already in use" in error
    assert user_resources(agent.scim) == []
    assert agent.runtime.store.load().users == {}

    # The account the conflict was about, invisible to the first match, now answers it.
    existing = agent.runtime.target.create_user(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Alice@Contoso.com",
            "title": "Intern",
        }
    )
    again = agent.sync()

    ok(again)
    assert posted_names(agent.scim) == []
    assert [r.body for r in writes(agent.scim, "PATCH", "/Users/")] == [
        {
            "schemas": PATCH_OP,
            "Operations": [
                {"op": "Replace", "path": "userName", "value": "alice@contoso.com"},
                {"op": "Add", "path": "active", "value": "True"},
                {"op": "Replace", "path": "title", "value": "Director"},
                {"op": "Add", "path": "name.givenName", "value": "Alice"},
                {"op": "Add", "path": "name.familyName", "value": "Tester"},
            ],
        }
    ]
    assert [u["id"] for u in user_resources(agent.scim)] == [existing["id"]]
    assert agent.runtime.store.load().users[alice].scim_id == existing["id"]
    assert again.summary()["users"]["adopted"] == 1
    assert member_names(agent, ADMIN) == ["alice@contoso.com"]


# -- 3. a crash mid-run ---------------------------------------------------------------------

# Writes of the three_users run, in order: 1-3 users (alice, bob, carol), 4-6 groups
# (Admin, Contract, Sourcing), 7-9 member additions.
CRASH_POINTS = [
    pytest.param(2, True, id="after-2nd-user-commit"),
    pytest.param(3, False, id="3rd-user-sent-commit-lost"),
    pytest.param(4, True, id="after-1st-group-commit"),
    pytest.param(5, False, id="2nd-group-sent-commit-lost"),
    pytest.param(7, True, id="after-1st-member-add-commit"),
    pytest.param(8, False, id="member-add-sent-commit-lost"),
]


def clean_run_content(graph: GraphEmulator, tmp_path: Path) -> dict[str, Any]:
    """The target a crash-free first run produces from the same directory."""
    with start_scim_server(strict=False) as scim:
        config = fast_config(
            agent_config(
                tmp_path / "clean", graph, scim, f"sqlite:///{tmp_path}/clean/state.db", graph=GRAPH
            )
        )
        with running_agent(config, graph, scim) as clean:
            ok(clean.sync())
        return content(scim)


@pytest.mark.parametrize(("at", "committed"), CRASH_POINTS)
def test_a_crash_mid_run_converges_without_duplicates(
    at: int,
    committed: bool,
    tmp_path: Path,
    graph_emulator: GraphEmulator,
    scim_server: ScimServer,
    state_url: str,
) -> None:
    config = fast_config(
        agent_config(tmp_path, graph_emulator, scim_server, state_url, graph=GRAPH)
    )
    with running_agent(config, graph_emulator, scim_server) as first:
        three_users(first)
        (tmp_path / "clean").mkdir()
        expected = clean_run_content(graph_emulator, tmp_path)
        tapped = TappedStore(first.runtime.store, at=at, hook=crash, commit=committed)
        with pytest.raises(Crash):
            sync_through(first, tapped)
        assert tapped.writes == at
        assert first.runtime.store.runs()[0].finished_at is None  # it died, unfinished
        created = set(posted_names(first.scim))
        assert len(created) == (at if at <= 6 else 6)

    with running_agent(config, graph_emulator, scim_server) as second:
        result = second.sync()

        ok(result)
        assert content(scim_server) == expected
        assert len(user_resources(scim_server)) == 3
        assert len(group_resources(scim_server)) == 3
        # Nothing created before the crash is created again: it is linked or matched.
        assert created.isdisjoint(posted_names(scim_server))
        assert len(created) + len(posted_names(scim_server)) == 6
        assert rejected(scim_server) == []
        summary = result.summary()
        lost = 0 if committed or at > 6 else 1
        assert summary["users"]["adopted"] + summary["groups"]["adopted"] == lost

        ok(second.sync())  # and it has converged: the next run changes nothing
        assert second.writes() == []


# -- 4. the target goes away mid-run --------------------------------------------------------


def test_an_unreachable_target_stops_the_run_and_the_next_run_converges(agent: Agent) -> None:
    ids = three_users(agent)
    # Right after alice is recorded, the target answers everything with 503. Retry-After: 0
    # keeps the one retry (scim.max_retries = 1) from sleeping.
    outage = TappedStore(
        agent.runtime.store,
        at=1,
        hook=lambda: agent.scim.fail_next(503, headers={"Retry-After": "0"}, times=2),
    )

    result = sync_through(agent, outage)

    assert result.status is RunStatus.FAILED
    assert result.report is not None and result.report.aborted
    assert result.plan is not None
    attempted = len(result.report.steps)
    assert attempted == 3  # probe, alice, bob
    assert result.report.not_attempted == len(result.plan.operations) - attempted > 0
    assert "operation(s) not attempted" in str(result.error)
    wire = [(r.method, unquote_plus(r.target), r.status) for r in agent.scim.requests]
    assert wire[0][0] == "GET" and wire[0][2] == 200  # the probe
    assert wire[1:] == [
        ("GET", '/Users?filter=userName eq "alice@contoso.com"', 200),
        ("POST", "/Users", 201),
        ("GET", '/Users?filter=userName eq "bob@contoso.com"', 503),
        ("GET", '/Users?filter=userName eq "bob@contoso.com"', 503),
    ]
    recorded = agent.runtime.store.load()
    assert set(recorded.users) == {ids["alice"]}
    assert recorded.groups == {} and recorded.memberships == frozenset()
    log = agent.runtime.store.operations(result.run_id or 0)
    assert [(e.outcome.action, e.outcome.status) for e in log] == [
        ("create", OutcomeStatus.SUCCESS),
        ("create_user", OutcomeStatus.FAILED),
    ]
    assert "503" in (log[1].outcome.error or "")
    run = agent.runtime.store.runs()[0]
    assert run.status == "failed" and run.summary["not_attempted"] == result.report.not_attempted

    again = agent.sync()

    ok(again)
    assert posted_names(agent.scim) == [
        "bob@contoso.com",
        "carol@contoso.com",
        ADMIN,
        CONTRACT,
        SOURCING,
    ]
    assert member_names(agent, SOURCING) == [
        "alice@contoso.com",
        "bob@contoso.com",
        "carol@contoso.com",
    ]
    assert len(user_resources(agent.scim)) == 3


# -- 5. throttling --------------------------------------------------------------------------


def test_a_429_with_retry_after_is_waited_for_and_retried(agent: Agent) -> None:
    add_groups(agent, ADMIN)
    add_user(agent, "alice", ADMIN)
    agent.scim.fail_next(429, headers={"Retry-After": "1"}, method="POST")

    started = time.monotonic()
    result = agent.sync()
    elapsed = time.monotonic() - started

    ok(result)
    posts = writes(agent.scim, "POST", "/Users")
    assert [r.status for r in posts] == [429, 201]
    assert posts[0].body == posts[1].body
    assert result.duration >= 1.0 and elapsed < 3.0
    assert len(user_resources(agent.scim)) == 1
    assert member_names(agent, ADMIN) == ["alice@contoso.com"]


# -- 6. safety guards -----------------------------------------------------------------------


def test_the_deletion_guard_refuses_then_allow_deletions_disables(make_agent: MakeAgent) -> None:
    agent = make_agent(safety={"max_deletions": 2})
    add_groups(agent, ADMIN)
    ids = [add_user(agent, alias, ADMIN) for alias in ("ann", "ben", "cid", "dot")]
    ok(agent.sync())
    before = agent.runtime.store.load()
    for user_id in ids[:3]:
        leave_all_groups(agent, user_id)

    refused = agent.sync()

    assert refused.status is RunStatus.REFUSED
    assert "3 users and groups" in str(refused.error) and "max_deletions (2)" in str(refused.error)
    assert agent.scim.requests == []
    assert agent.runtime.store.load() == before
    assert agent.runtime.store.runs()[0].status == "refused"

    allowed = agent.sync(allow_deletions=True)

    ok(allowed)
    users = {u["userName"]: u["id"] for u in user_resources(agent.scim)}
    disabled = [(r.target, r.body) for r in writes(agent.scim, "PATCH", "/Users/")]
    assert disabled == [
        (
            f"/Users/{users[f'{alias}@contoso.com']}",
            {
                "schemas": PATCH_OP,
                "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
            },
        )
        for alias in ("ann", "ben", "cid")
    ]
    assert {u["userName"]: u.get("active") for u in user_resources(agent.scim)} == {
        "ann@contoso.com": False,
        "ben@contoso.com": False,
        "cid@contoso.com": False,
        "dot@contoso.com": True,
    }
    assert member_names(agent, ADMIN) == ["dot@contoso.com"]


def test_an_empty_read_is_refused_even_under_the_deletion_limit(make_agent: MakeAgent) -> None:
    agent = make_agent(safety={"max_deletions": 1000})
    three_users(agent)
    ok(agent.sync())
    before = agent.runtime.store.load()
    stored = content(agent.scim)
    for group in agent.tenant.groups():
        agent.tenant.delete_group(group.id)

    refused = agent.sync()

    assert refused.status is RunStatus.REFUSED
    assert "no in-scope group while 3 are provisioned" in str(refused.error)
    assert agent.scim.requests == []
    assert agent.runtime.store.load() == before

    dry = agent.sync(dry_run=True)

    assert any(
        w.startswith("a real run would be refused: Graph returned no in-scope group")
        for w in dry.warnings
    ), dry.warnings
    assert agent.writes() == []
    assert dry.report is not None
    withheld = sorted({r.method for r in dry.report.requests if not r.sent})
    assert withheld == ["DELETE", "PATCH"]  # what a real run would have sent
    assert agent.runtime.store.load() == before
    assert content(agent.scim) == stored


# -- 7. Graph faults never deprovision ------------------------------------------------------


def test_a_graph_fault_reading_members_fails_the_run_without_writes(agent: Agent) -> None:
    three_users(agent)
    ok(agent.sync())
    stored = content(agent.scim)
    agent.graph.inject_fault(503, path_contains="/members", times=50)

    started = time.monotonic()
    result = agent.sync()

    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, SourceError)
    assert "Graph answered 503" in str(result.error)
    assert re.search(
        r"at http://127\.0\.0\.1:\d+/v1\.0/groups/[0-9a-f-]{36}/members/graph\.user\?",
        str(result.error),
    ), str(result.error)
    assert agent.scim.requests == []
    assert content(agent.scim) == stored
    assert time.monotonic() - started < 2.0  # graph.max_retries = 0: no 3 s waits


def test_a_graph_fault_looking_up_a_departed_user_fails_without_writes(agent: Agent) -> None:
    ids = three_users(agent)
    ok(agent.sync())
    stored = content(agent.scim)
    before = agent.runtime.store.load()
    leave_all_groups(agent, ids["carol"])
    agent.graph.inject_fault(503, path_contains="/users/", times=50)

    result = agent.sync()

    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, SourceError)
    assert f"/users/{ids['carol']}" in str(result.error)
    assert agent.scim.requests == []
    assert content(agent.scim) == stored
    assert agent.runtime.store.load() == before


# -- 8. a linked user deleted out of band ---------------------------------------------------


def test_a_user_deleted_in_the_target_is_dropped_then_matched_and_created_again(
    agent: Agent,
) -> None:
    ids = three_users(agent)
    ok(agent.sync())
    old = next(u["id"] for u in user_resources(agent.scim) if u["userName"].startswith("bob"))
    assert agent.runtime.target.delete_user(old)
    agent.tenant.update_user(ids["bob"], job_title="Lead Buyer")

    result = agent.sync()

    assert result.status is RunStatus.PARTIAL
    wire = [(r.method, r.target, r.status) for r in agent.scim.requests]
    assert wire[1:] == [("GET", f"/Users/{old}", 404)]  # after the probe, nothing is sent
    ((action, entra_id, error),) = failures(agent, result.run_id)
    assert (action, entra_id) == ("update_user", ids["bob"])
    assert error.startswith(f"InvalidAnchor: target user {old} no longer exists")
    recorded = agent.runtime.store.load()
    assert ids["bob"] not in recorded.users
    assert all(user != ids["bob"] for _, user in recorded.memberships)

    again = agent.sync()

    ok(again)
    unquoted = [(r.method, unquote_plus(r.target)) for r in agent.scim.requests]
    assert ("GET", '/Users?filter=userName eq "bob@contoso.com"') in unquoted
    assert posted_names(agent.scim) == ["bob@contoso.com"]
    bobs = [u for u in user_resources(agent.scim) if u["userName"] == "bob@contoso.com"]
    assert len(bobs) == 1 and bobs[0]["title"] == "Lead Buyer"
    new = bobs[0]["id"]
    assert agent.runtime.store.load().users[ids["bob"]].scim_id == new
    for group in (CONTRACT, SOURCING):
        gid = next(g["id"] for g in group_resources(agent.scim) if g["displayName"] == group)
        assert [r.body["Operations"] for r in writes(agent.scim, "PATCH", f"/Groups/{gid}")] == [
            [{"op": "Add", "path": "members", "value": [{"value": new}]}]
        ]
        assert "bob@contoso.com" in member_names(agent, group)


# -- 9. a large group -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_a_group_of_1050_members_pages_and_chunks_end_to_end(agent: Agent) -> None:
    size = 1050
    viewer = agent.tenant.add_group(SOURCING)
    user_ids = [
        agent.tenant.add_user(f"user{n:04d}@contoso.com", given_name="U", surname=f"{n}")
        for n in range(size)
    ]
    agent.tenant.add_members(viewer, *user_ids)
    agent.graph.clear_requests()

    result = agent.sync()

    ok(result)
    member_pages = [r for r in agent.graph.requests if "/members/" in r.path]
    assert len(member_pages) == 2  # 999 + 51
    assert len(user_resources(agent.scim)) == size
    assert len(member_names(agent, SOURCING)) == size
    assert set(member_names(agent, SOURCING)) == {f"user{n:04d}@contoso.com" for n in range(size)}
    per_patch = agent.runtime.config.scim.members_per_patch
    patches = writes(agent.scim, "PATCH", "/Groups/")
    assert len(patches) == math.ceil(size / per_patch)
    assert [len(p.body["Operations"][0]["value"]) for p in patches] == [per_patch] * (
        size // per_patch
    ) + [size % per_patch]
    assert len(agent.runtime.store.load().memberships) == size
