"""Apply: run a plan against the SCIM target and record each success at once.

Each operation is one object's worth of requests. Its success is committed to the state
store, with its log line, before the next operation starts, so a crash costs at most the
request in flight, and a rerun converges. A failed object is logged and the run goes on; it
is planned again, and so retried, on the next run. Only an unreachable target stops the run.

The dry run goes through this very code with a target that performs the reads and only
records the writes, so what it shows is what a real run would send.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from syncagent.errors import TargetError, TargetUnavailable
from syncagent.model import (
    Deprovision,
    GroupRecord,
    OperationOutcome,
    OutcomeStatus,
    RecordedState,
    UserRecord,
)
from syncagent.plan import Action, Operation, Plan
from syncagent.ports import ScimTarget, StateWriter
from syncagent.scim.client import SentRequest
from syncagent.scim.requests import (
    GROUP_ATTRIBUTES,
    AttributeChange,
    Dialect,
    diff_attributes,
    flatten_user,
    group_create_body,
    group_patch_body,
    members_add_body,
    members_remove_bodies,
    user_create_body,
    user_patch_body,
)

log = logging.getLogger(__name__)

_PROGRESS_SECONDS = 10.0

_OBJECT_TYPES = {
    Action.PROBE: "probe",
    Action.ADD_MEMBERS: "membership",
    Action.REMOVE_MEMBERS: "membership",
    Action.CREATE_GROUP: "group",
    Action.UPDATE_GROUP: "group",
    Action.DELETE_GROUP: "group",
}


class RequestLog:
    """Collects the requests sent (or, in a dry run, withheld), by run and by step.

    A step runs on one thread; what it sends is captured for it, so steps running side by
    side keep their requests apart. Bodies cost about 4 KB a user in an initial sync; a run
    whose requests nobody will see keeps only method, path and status.
    """

    def __init__(self, *, keep_bodies: bool = True) -> None:
        self.entries: list[SentRequest] = []
        self.keep_bodies = keep_bodies
        self._lock = threading.Lock()
        self._local = threading.local()

    def __call__(self, request: SentRequest) -> None:
        if not self.keep_bodies and request.body is not None:
            request = replace(request, body=None)
        with self._lock:
            self.entries.append(request)
        step: list[SentRequest] | None = getattr(self._local, "step", None)
        if step is not None:
            step.append(request)

    @contextmanager
    def step(self) -> Iterator[list[SentRequest]]:
        """Capture, into the list yielded, what this thread sends until the block ends."""
        captured: list[SentRequest] = []
        self._local.step = captured
        try:
            yield captured
        finally:
            self._local.step = None

    def current(self) -> list[SentRequest]:
        step: list[SentRequest] | None = getattr(self._local, "step", None)
        return step if step is not None else []


@dataclass(frozen=True, slots=True)
class StepResult:
    operation: Operation
    outcome: OperationOutcome
    requests: tuple[SentRequest, ...]
    members_applied: int = 0  # members a membership step sent; unprovisioned ones are skipped


@dataclass(slots=True)
class ExecutionReport:
    steps: list[StepResult] = field(default_factory=list)
    aborted: str | None = None  # why the run stopped early, if it did
    not_attempted: int = 0

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps if s.outcome.status is OutcomeStatus.FAILED]

    @property
    def requests(self) -> list[SentRequest]:
        return [r for s in self.steps for r in s.requests]


class _Progress:
    """An INFO line every so often, so a long initial sync is visibly alive."""

    def __init__(self, total: int, every: float = _PROGRESS_SECONDS) -> None:
        self._total = total
        self._every = every
        self._next = time.monotonic() + every
        self._done = self._failed = 0
        self._lock = threading.Lock()

    def record(self, step: StepResult) -> None:
        with self._lock:
            self._done += 1
            self._failed += step.outcome.status is OutcomeStatus.FAILED
            now = time.monotonic()
            if now < self._next:
                return
            self._next = now + self._every
            done, failed = self._done, self._failed
        log.info("applied %d of %d operations (%d failed)", done, self._total, failed)


class _Failed(Exception):
    """An object-level failure: logged, and the run goes on."""


class _Links:
    """Entra object id ↔ SCIM id, as known at this point of the run (shared by workers)."""

    def __init__(self, links: Mapping[str, str]) -> None:
        self._scim = dict(links)
        self._entra = {scim: entra for entra, scim in links.items()}
        self._lock = threading.Lock()

    def scim_id(self, entra_id: str) -> str | None:
        with self._lock:
            return self._scim.get(entra_id)

    def link(self, entra_id: str, scim_id: str) -> None:
        with self._lock:
            self._scim[entra_id] = scim_id
            self._entra[scim_id] = entra_id

    def unlink(self, entra_id: str) -> None:
        with self._lock:
            scim_id = self._scim.pop(entra_id, None)
            if scim_id is not None:
                self._entra.pop(scim_id, None)

    @contextmanager
    def claimed(self, entra_id: str, scim_id: str, kind: str, label: str) -> Iterator[None]:
        """Link an adopted target object for the block; undone if the block fails.

        The claim is taken before the adoption's PATCH, and refused when another Entra
        object holds the target object already: adopting one for two would merge accounts.
        """
        with self._lock:
            owner = self._entra.get(scim_id)
            if owner is not None and owner != entra_id:
                raise _Failed(
                    f"the target {kind} {scim_id} matching {label!r} is already linked to "
                    f"Entra object {owner}; not adopting it twice"
                )
            self._scim[entra_id] = scim_id
            self._entra[scim_id] = entra_id
        try:
            yield
        except BaseException:
            self.unlink(entra_id)
            raise


class Executor:
    """Runs a plan: phase after phase (probe, users, groups, memberships), as Entra does.

    Within a phase the objects are independent, so with `concurrency` above one they are
    sent side by side; the membership steps of one group always run in order, on one worker,
    so that no two PATCHes of the same group are in flight at once.
    """

    def __init__(
        self,
        target: ScimTarget,
        writer: StateWriter,
        requests: RequestLog,
        *,
        run_id: int,
        dialect: Dialect,
        recorded: RecordedState,
        concurrency: int = 1,
        progress_seconds: float = _PROGRESS_SECONDS,
    ) -> None:
        self._target = target
        self._writer = writer
        self._requests = requests
        self._run_id = run_id
        self._dialect = dialect
        self._concurrency = max(1, concurrency)
        self._progress_seconds = progress_seconds
        self._users = _Links({uid: rec.scim_id for uid, rec in recorded.users.items()})
        self._groups = _Links({gid: rec.scim_id for gid, rec in recorded.groups.items()})
        self._local = threading.local()  # members_applied of the step a worker runs
        self._stop = threading.Event()
        self._stopped_by: str | None = None
        self._handlers: dict[Action, Callable[[Operation], OperationOutcome]] = {
            Action.PROBE: self._probe,
            Action.CREATE_USER: self._create_user,
            Action.UPDATE_USER: self._update_user,
            Action.ENABLE_USER: self._update_user,
            Action.DISABLE_USER: self._update_user,
            Action.DELETE_USER: self._delete_user,
            Action.RECORD_USER: self._record_user,
            Action.CREATE_GROUP: self._create_group,
            Action.UPDATE_GROUP: self._update_group,
            Action.DELETE_GROUP: self._delete_group,
            Action.ADD_MEMBERS: self._add_members,
            Action.REMOVE_MEMBERS: self._remove_members,
        }

    def execute(self, plan: Plan) -> ExecutionReport:
        operations = plan.operations
        results: list[StepResult | None] = [None] * len(operations)
        progress = _Progress(len(operations), self._progress_seconds)
        for phase in _phases(operations):
            if self._stop.is_set():
                break
            self._run_phase(phase, operations, results, progress)
        steps = [step for step in results if step is not None]
        return ExecutionReport(steps, self._stopped_by, len(results) - len(steps))

    def _run_phase(
        self,
        phase: list[list[int]],
        operations: Sequence[Operation],
        results: list[StepResult | None],
        progress: _Progress,
    ) -> None:
        def run(task: list[int]) -> None:
            try:
                for index in task:
                    if self._stop.is_set():
                        return
                    results[index] = step = self._run_one(operations[index])
                    progress.record(step)
            except BaseException:
                self._stop.set()  # an unexpected error: let no other worker go on
                raise

        if self._concurrency == 1 or len(phase) == 1:
            for task in phase:
                run(task)
            return
        workers = min(self._concurrency, len(phase))
        with ThreadPoolExecutor(workers, thread_name_prefix="syncagent-apply") as pool:
            for future in [pool.submit(run, task) for task in phase]:
                future.result()

    def _run_one(self, op: Operation) -> StepResult:
        self._local.members_applied = 0
        with self._requests.step() as sent:
            try:
                outcome = self._handlers[op.action](op)
            except TargetUnavailable as exc:
                outcome = self._failure(op, exc)
                self._stopped_by = self._stopped_by or str(exc)
                self._stop.set()
            except (TargetError, _Failed) as exc:
                if op.action is Action.PROBE:
                    raise
                outcome = self._failure(op, exc)
        return StepResult(op, outcome, tuple(sent), self._local.members_applied)

    # -- outcomes -------------------------------------------------------------------------

    def _outcome(
        self,
        op: Operation,
        *,
        action: str | None = None,
        scim_id: str | None = None,
        status: OutcomeStatus = OutcomeStatus.SUCCESS,
        error: str | None = None,
    ) -> OperationOutcome:
        sent = self._requests.current()
        return OperationOutcome(
            object_type=_OBJECT_TYPES.get(op.action, "user"),
            action=action or str(op.action),
            entra_id=op.entra_id,
            scim_id=scim_id or op.scim_id,
            request="; ".join(f"{r.method} {r.path.split('?', 1)[0]}" for r in sent),
            status=status,
            error=error,
        )

    def _failure(self, op: Operation, exc: Exception) -> OperationOutcome:
        outcome = self._outcome(op, status=OutcomeStatus.FAILED, error=str(exc))
        log.warning("%s %s failed: %s", op.action, op.label, exc)
        self._writer.log(self._run_id, outcome)
        return outcome

    # -- handlers -------------------------------------------------------------------------

    def _probe(self, op: Operation) -> OperationOutcome:
        self._target.probe()
        return self._outcome(op)

    def _create_user(self, op: Operation) -> OperationOutcome:
        assert op.entra_id is not None
        matches = self._target.find_users(op.label)
        if len(matches) > 1:
            raise _Failed(
                f"DuplicateTargetEntries: {len(matches)} target users have userName {op.label!r}"
            )
        if matches:
            scim_id = _resource_id(matches[0], "user")
            changes = diff_attributes(op.attributes, flatten_user(matches[0]))
            with self._users.claimed(op.entra_id, scim_id, "user", op.label):
                if changes:
                    self._target.patch_user(scim_id, user_patch_body(changes, self._dialect))
            action = "adopt"
        else:
            created = self._target.create_user(user_create_body(op.attributes))
            scim_id = _resource_id(created, "user")
            action = "create"
        self._users.link(op.entra_id, scim_id)
        outcome = self._outcome(op, action=action, scim_id=scim_id)
        self._writer.record_user(
            self._run_id, UserRecord(op.entra_id, scim_id, dict(op.attributes)), outcome
        )
        return outcome

    def _update_user(self, op: Operation) -> OperationOutcome:
        assert op.entra_id is not None
        assert op.scim_id is not None
        live = self._target.get_user(op.scim_id)
        if live is None:
            return self._lost(op, "user")
        changes = diff_attributes(op.attributes, flatten_user(live))
        if changes:
            self._target.patch_user(op.scim_id, user_patch_body(changes, self._dialect))
        outcome = self._outcome(op, action=None if changes else "unchanged")
        record = UserRecord(op.entra_id, op.scim_id, dict(op.attributes), _reason(op))
        self._writer.record_user(self._run_id, record, outcome)
        return outcome

    def _lost(self, op: Operation, kind: str) -> OperationOutcome:
        """Entra's InvalidAnchor: the linked user or group is gone from the target.

        The link is dropped, so the next run matches the object again (and creates it only
        if no target object has that name), as a restart of Entra's job would.
        """
        assert op.entra_id is not None
        outcome = self._outcome(
            op,
            status=OutcomeStatus.FAILED,
            error=f"InvalidAnchor: target {kind} {op.scim_id} no longer exists; "
            "it will be matched again on the next run",
        )
        if kind == "user":
            self._writer.forget_user(self._run_id, op.entra_id, outcome)
            self._users.unlink(op.entra_id)
        else:
            self._writer.forget_group(self._run_id, op.entra_id, outcome)
            self._groups.unlink(op.entra_id)
        return outcome

    def _delete_user(self, op: Operation) -> OperationOutcome:
        assert op.entra_id is not None
        assert op.scim_id is not None
        existed = self._target.delete_user(op.scim_id)
        outcome = self._outcome(op, action=None if existed else "already_deleted")
        self._writer.forget_user(self._run_id, op.entra_id, outcome)
        return outcome

    def _record_user(self, op: Operation) -> OperationOutcome:
        assert op.entra_id is not None
        assert op.scim_id is not None
        outcome = self._outcome(op)
        record = UserRecord(op.entra_id, op.scim_id, dict(op.attributes), _reason(op))
        self._writer.record_user(self._run_id, record, outcome)
        return outcome

    def _create_group(self, op: Operation) -> OperationOutcome:
        assert op.entra_id is not None
        matches = self._target.find_groups(op.label)
        if len(matches) > 1:
            raise _Failed(
                f"DuplicateTargetEntries: {len(matches)} target groups have displayName "
                f"{op.label!r}"
            )
        if matches:
            scim_id = _resource_id(matches[0], "group")
            changes = _group_changes(op.attributes, matches[0])
            with self._groups.claimed(op.entra_id, scim_id, "group", op.label):
                if changes:
                    self._target.patch_group(scim_id, group_patch_body(changes, self._dialect))
            action = "adopt"
        else:
            created = self._target.create_group(group_create_body(op.label, op.entra_id))
            scim_id = _resource_id(created, "group")
            action = "create"
        self._groups.link(op.entra_id, scim_id)
        outcome = self._outcome(op, action=action, scim_id=scim_id)
        self._writer.record_group(
            self._run_id, GroupRecord(op.entra_id, scim_id, op.label), outcome
        )
        return outcome

    def _update_group(self, op: Operation) -> OperationOutcome:
        assert op.entra_id is not None
        assert op.scim_id is not None
        live = self._target.get_group(op.scim_id)
        if live is None:
            return self._lost(op, "group")
        changes = _group_changes(op.attributes, live)
        if changes:
            self._target.patch_group(op.scim_id, group_patch_body(changes, self._dialect))
        outcome = self._outcome(op, action=None if changes else "unchanged")
        record = GroupRecord(op.entra_id, op.scim_id, op.label)
        self._writer.record_group(self._run_id, record, outcome)
        return outcome

    def _delete_group(self, op: Operation) -> OperationOutcome:
        assert op.entra_id is not None
        assert op.scim_id is not None
        existed = self._target.delete_group(op.scim_id)
        outcome = self._outcome(op, action=None if existed else "already_deleted")
        self._writer.forget_group(self._run_id, op.entra_id, outcome)
        return outcome

    def _membership_targets(self, op: Operation) -> tuple[str, dict[str, str]]:
        assert op.entra_id is not None
        group_id = self._groups.scim_id(op.entra_id)
        if group_id is None:
            raise _Failed(f"group {op.label!r} is not provisioned (its create failed)")
        members = {
            uid: scim_id for uid in op.members if (scim_id := self._users.scim_id(uid)) is not None
        }
        return group_id, members

    def _add_members(self, op: Operation) -> OperationOutcome:
        assert op.entra_id is not None
        group_id, members = self._membership_targets(op)
        missing = len(op.members) - len(members)
        if not members:
            raise _Failed("none of its users is provisioned (their creates failed)")
        self._target.patch_group(group_id, members_add_body(list(members.values()), self._dialect))
        self._local.members_applied = len(members)
        error = f"{missing} member(s) skipped: not provisioned" if missing else None
        outcome = self._outcome(op, scim_id=group_id, error=error)
        self._writer.add_memberships(self._run_id, op.entra_id, list(members), outcome)
        return outcome

    def _remove_members(self, op: Operation) -> OperationOutcome:
        assert op.entra_id is not None
        group_id, members = self._membership_targets(op)
        bodies = members_remove_bodies(list(members.values()), self._dialect)
        for body in bodies:
            self._target.patch_group(group_id, body)
        self._local.members_applied = len(members)
        outcome = self._outcome(op, scim_id=group_id)
        # A member whose user link is gone can no longer be named on the target: forget it.
        self._writer.remove_memberships(self._run_id, op.entra_id, list(op.members), outcome)
        return outcome


def _reason(op: Operation) -> Deprovision | None:
    return op.reason if isinstance(op.reason, Deprovision) else None


def _resource_id(resource: Mapping[str, Any], kind: str) -> str:
    value = resource.get("id")
    if not isinstance(value, str) or not value:
        raise _Failed(f"the target returned a {kind} without an id")
    return value


def _group_changes(want: Mapping[str, Any], live: Mapping[str, Any]) -> list[AttributeChange]:
    current = {path: live.get(path) for path in GROUP_ATTRIBUTES}
    return diff_attributes(want, current, paths=GROUP_ATTRIBUTES)


_PHASES: Mapping[Action, int] = {
    Action.PROBE: 0,
    Action.CREATE_USER: 1,
    Action.UPDATE_USER: 1,
    Action.ENABLE_USER: 1,
    Action.DISABLE_USER: 1,
    Action.DELETE_USER: 1,
    Action.RECORD_USER: 1,
    Action.CREATE_GROUP: 2,
    Action.UPDATE_GROUP: 2,
    Action.DELETE_GROUP: 2,
    Action.ADD_MEMBERS: 3,
    Action.REMOVE_MEMBERS: 3,
}


def _phases(operations: Sequence[Operation]) -> list[list[list[int]]]:
    """Plan positions as phases of tasks; a task's steps run in order on one worker.

    Each user and group step is a task of its own; the membership steps of one group
    form one task.
    """
    phases: dict[int, dict[object, list[int]]] = {}
    for index, op in enumerate(operations):
        phase = _PHASES[op.action]
        key: object = op.entra_id if phase == 3 else index
        phases.setdefault(phase, {}).setdefault(key, []).append(index)
    return [list(phases[phase].values()) for phase in sorted(phases)]
