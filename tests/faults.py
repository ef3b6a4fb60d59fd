"""Helpers for the fault-tolerance and dialect tests.

A state store that can die on cue (`TappedStore`, `Crash`), a sync that runs through it,
and views of the target that two runs can be compared by (SCIM ids differ between runs,
user names and Entra ids do not).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from syncagent.config import Config
from syncagent.cycle import CycleResult, RunStatus, run_cycle
from syncagent.model import GroupRecord, OperationOutcome, RecordedState, UserRecord
from syncagent.state import StateStore
from tests.agent import Agent
from tests.fixtures.scim_server import RecordedScimRequest, ScimServer

PATCH_OP = ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]


class Crash(BaseException):
    """The process dying: no `except Exception` catches it, and nothing runs after it."""


class TappedStore:
    """A state store that runs `hook` at its `at`-th per-operation write (counted from 1).

    With `commit=True` the write commits first, then the hook runs: the process died right
    after a commit. With `commit=False` the hook runs instead of the write: the request was
    answered but its commit was lost. Once the hook has raised `Crash` every later call
    raises it too, so an unfinished run stays unfinished, as after a real crash.
    """

    def __init__(
        self, store: StateStore, *, at: int, hook: Callable[[], None], commit: bool = True
    ) -> None:
        self._store = store
        self._at = at
        self._hook = hook
        self._commit = commit
        self.writes = 0
        self.dead = False

    def _alive(self) -> None:
        if self.dead:
            raise Crash("the process is gone")

    def _write(self, write: Callable[[], None]) -> None:
        self._alive()
        self.writes += 1
        if self.writes != self._at:
            write()
            return
        if self._commit:
            write()
        try:
            self._hook()
        except Crash:
            self.dead = True
            raise

    # -- reads and runs pass through ------------------------------------------------------

    def load(self) -> RecordedState:
        self._alive()
        return self._store.load()

    def start_run(self, mode: str) -> int:
        self._alive()
        return self._store.start_run(mode)

    def finish_run(self, run_id: int, status: str, summary: Any) -> None:
        self._alive()
        self._store.finish_run(run_id, status, summary)

    # -- the writes the executor makes, one per operation ---------------------------------

    def record_user(self, run_id: int, record: UserRecord, outcome: OperationOutcome) -> None:
        self._write(lambda: self._store.record_user(run_id, record, outcome))

    def forget_user(self, run_id: int, entra_id: str, outcome: OperationOutcome) -> None:
        self._write(lambda: self._store.forget_user(run_id, entra_id, outcome))

    def record_group(self, run_id: int, record: GroupRecord, outcome: OperationOutcome) -> None:
        self._write(lambda: self._store.record_group(run_id, record, outcome))

    def forget_group(self, run_id: int, entra_id: str, outcome: OperationOutcome) -> None:
        self._write(lambda: self._store.forget_group(run_id, entra_id, outcome))

    def add_memberships(
        self, run_id: int, group: str, users: Collection[str], outcome: OperationOutcome
    ) -> None:
        self._write(lambda: self._store.add_memberships(run_id, group, users, outcome))

    def remove_memberships(
        self, run_id: int, group: str, users: Collection[str], outcome: OperationOutcome
    ) -> None:
        self._write(lambda: self._store.remove_memberships(run_id, group, users, outcome))

    def log(self, run_id: int, outcome: OperationOutcome) -> None:
        self._write(lambda: self._store.log(run_id, outcome))


def fast_config(config: Config, **scim: Any) -> Config:
    """`config` with quick SCIM retries, and any other `[scim]` values given.

    `agent_config` cannot take a `scim` section (its `scim` parameter is the server), so
    the SCIM values are set on the loaded configuration instead.
    """
    values = {"max_retries": 1, **scim}
    return config.model_copy(update={"scim": config.scim.model_copy(update=values)})


def crash() -> None:
    raise Crash("killed right after a state write")


def sync_through(agent: Agent, store: TappedStore) -> CycleResult:
    """`agent.sync()`, with the agent's state store seen through `store`."""
    agent.scim.clear()
    runtime = agent.runtime
    runtime.requests.entries.clear()
    cycle = runtime.options(dry_run=False, allow_deletions=False)
    return run_cycle(runtime.source, runtime.target, store, runtime.requests, cycle)


# -- building the directory -----------------------------------------------------------------


def add_groups(agent: Agent, *names: str) -> dict[str, str]:
    return {name: agent.tenant.add_group(name) for name in names}


def add_user(agent: Agent, alias: str, *groups: str, **attrs: Any) -> str:
    """A user alias@contoso.com, a direct member of the named groups."""
    defaults = {"given_name": alias.title(), "surname": "Tester", "job_title": "Buyer"}
    user_id = agent.tenant.add_user(f"{alias}@contoso.com", **{**defaults, **attrs})
    for name in groups:
        group = agent.tenant.find_group(name)
        assert group is not None, name
        agent.tenant.add_members(group.id, user_id)
    return user_id


def group_id(agent: Agent, name: str) -> str:
    group = agent.tenant.find_group(name)
    assert group is not None, name
    return group.id


def leave_all_groups(agent: Agent, user_id: str) -> None:
    for group in agent.tenant.groups():
        if user_id in agent.tenant.members(group.id):
            agent.tenant.remove_members(group.id, user_id)


# -- looking at the target and the wire -----------------------------------------------------


def ok(result: CycleResult) -> None:
    assert result.status is RunStatus.SUCCESS, (result.error, result.to_dict())


def _resources(scim: ScimServer, kind: str) -> list[dict[str, Any]]:
    return [
        r.model_dump(mode="json", by_alias=True, exclude_none=True)
        for r in scim.storage.resources
        if type(r).__name__.startswith(kind)
    ]


def user_resources(scim: ScimServer) -> list[dict[str, Any]]:
    return _resources(scim, "User")


def group_resources(scim: ScimServer) -> list[dict[str, Any]]:
    return _resources(scim, "Group")


def content(scim: ScimServer) -> dict[str, Any]:
    """The target as comparable data: users by userName, groups by displayName.

    Lists, not dicts, underneath, so a duplicated user, group or member shows up.
    """
    users = user_resources(scim)
    names = {u["id"]: u["userName"] for u in users}
    return {
        "users": sorted(
            (
                u["userName"],
                u.get("active"),
                u.get("title"),
                tuple(sorted(u.get("name", {}).items())),
            )
            for u in users
        ),
        "groups": sorted(
            (
                g["displayName"],
                g.get("externalId"),
                tuple(sorted(names.get(m["value"], m["value"]) for m in g.get("members") or [])),
            )
            for g in group_resources(scim)
        ),
    }


def writes(scim: ScimServer, method: str, prefix: str) -> list[RecordedScimRequest]:
    return [r for r in scim.writes() if r.method == method and r.target.startswith(prefix)]


def posted_names(scim: ScimServer) -> list[str]:
    """userName or displayName of every POST, in order."""
    return [
        r.body.get("userName") or r.body.get("displayName")
        for r in scim.writes()
        if r.method == "POST"
    ]


def rejected(scim: ScimServer) -> list[tuple[str, str, int]]:
    """Requests the target did not accept."""
    return [(r.method, r.target, r.status) for r in scim.requests if r.status >= 400]
