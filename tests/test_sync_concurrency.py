"""Several requests side by side (the default `[scim] concurrency`): same results, same phases.

Most end-to-end tests send one request at a time so that they can assert the order on the
wire; these check that running users and groups side by side changes only the speed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncagent.config import Config
from syncagent.cycle import CycleResult, RunStatus
from syncagent.emulator import GraphEmulator, Tenant
from syncagent.plan import Action
from tests.agent import ROLE_GROUPS, Agent, agent_config, running_agent
from tests.fixtures.scim_server import ScimServer, start_scim_server

USERS = 60


def with_scim(config: Config, **values: Any) -> Config:
    return config.model_copy(update={"scim": config.scim.model_copy(update=values)})


@pytest.fixture
def agent(
    tmp_path: Path, graph_emulator: GraphEmulator, scim_server: ScimServer, state_url: str
) -> Iterator[Agent]:
    config = agent_config(tmp_path, graph_emulator, scim_server, state_url)
    config = with_scim(config, concurrency=4, members_per_patch=7, max_retries=0)
    with running_agent(config, graph_emulator, scim_server) as agent:
        yield agent


def populate(tenant: Tenant) -> dict[str, str]:
    groups = {name: tenant.add_group(name) for name in ROLE_GROUPS}
    users = {}
    for i in range(USERS):
        uid = tenant.add_user(f"user{i:03}@contoso.com", given_name=f"U{i}", job_title="Buyer")
        users[f"user{i:03}"] = uid
        for n, group in enumerate(ROLE_GROUPS):
            if (i + n) % 3 == 0:
                tenant.add_members(groups[group], uid)
    return users


def content(agent: Agent) -> dict[str, Any]:
    return {
        "users": sorted(
            (name, u.get("active"), u.get("title"), json.dumps(u.get("name"), sort_keys=True))
            for name, u in agent.users().items()
        ),
        "groups": {name: sorted(agent.member_names(name)) for name in agent.groups()},
    }


def ok(result: CycleResult) -> None:
    assert result.status is RunStatus.SUCCESS, (result.error, result.summary())


def test_a_concurrent_initial_sync_keeps_the_phases_and_creates_each_user_once(
    agent: Agent,
) -> None:
    populate(agent.tenant)
    result = agent.sync()
    ok(result)

    requests = agent.scim.requests
    posts = [r for r in requests if r.method == "POST" and r.target == "/Users"]
    assert len({r.body["userName"] for r in posts}) == len(posts) == USERS
    # Entra's phases hold: every user request, then every group request, then memberships.
    phase = [
        0 if r.target.startswith("/Users") else 2 if r.method == "PATCH" else 1 for r in requests
    ]
    assert phase == sorted(phase)
    # The report keeps the plan's order, whatever order the requests went out in.
    assert result.plan is not None and result.report is not None
    assert [s.operation for s in result.report.steps] == list(result.plan.operations)
    assert result.summary()["users"]["created"] == USERS

    again = agent.sync()
    ok(again)
    assert agent.writes() == []


def test_one_groups_membership_patches_go_out_one_after_another(agent: Agent) -> None:
    populate(agent.tenant)
    ok(agent.sync())
    entra_by_name = {u.user_principal_name: u.id for u in agent.tenant.users()}
    entra_by_scim = {u["id"]: entra_by_name[name] for name, u in agent.users().items()}
    sent: dict[str, list[str]] = {}
    for request in agent.scim.requests:
        if request.method == "PATCH":
            (operation,) = request.body["Operations"]
            sent.setdefault(request.target, []).extend(
                entra_by_scim[v["value"]] for v in operation["value"]
            )
    assert len(sent) == len(ROLE_GROUPS)
    for target, members in sent.items():
        # The planner sorts a group's members and cuts them into chunks of 7: only if the
        # chunks of one group go out in turn do their members arrive in sorted order.
        assert members == sorted(members), target


def test_the_result_is_the_same_as_one_request_at_a_time(
    tmp_path: Path, graph_emulator: GraphEmulator, state_url: str
) -> None:
    tenant = graph_emulator.tenant
    users = populate(tenant)
    admin = tenant.find_group("SourceMagnetAdmin")
    assert admin is not None
    outcomes = []
    for workers, url in ((1, f"sqlite:///{tmp_path / 'one.db'}"), (4, state_url)):
        with start_scim_server(strict=False) as server:
            config = with_scim(
                agent_config(tmp_path, graph_emulator, server, url), concurrency=workers
            )
            with running_agent(config, graph_emulator, server) as agent:
                ok(agent.sync())
                tenant.update_user(users["user001"], job_title="Director")
                tenant.update_user(users["user004"], account_enabled=False)
                tenant.remove_members(admin.id, users["user003"])
                ok(agent.sync())
                outcomes.append(content(agent))
                tenant.update_user(users["user001"], job_title="Buyer")  # as it was
                tenant.update_user(users["user004"], account_enabled=True)
                tenant.add_members(admin.id, users["user003"])
    assert outcomes[0] == outcomes[1]
    assert ("user004@contoso.com", False) in {(u[0], u[1]) for u in outcomes[1]["users"]}


def test_a_failed_object_among_workers_is_the_only_failure(agent: Agent) -> None:
    populate(agent.tenant)
    agent.scim.fail_next(500, method="POST", body={"detail": "boom"})
    result = agent.sync()
    assert result.status is RunStatus.PARTIAL
    assert result.report is not None
    failed_creates = [s for s in result.report.failed if s.operation.action is Action.CREATE_USER]
    assert len(failed_creates) == 1
    ok(agent.sync())
    assert len(agent.users()) == USERS


def test_an_unreachable_target_stops_every_worker(agent: Agent) -> None:
    populate(agent.tenant)
    agent.scim.fail_next(503, method="POST", times=50)
    result = agent.sync()
    assert result.status is RunStatus.FAILED
    assert result.report is not None and result.report.aborted
    assert result.report.not_attempted > 0
    posts = [r for r in agent.scim.requests if r.method == "POST"]
    assert len(posts) <= 8  # a few in flight when the first failed; then no worker went on
    agent.scim.clear_faults()
    ok(agent.sync())
    assert len(agent.users()) == USERS
