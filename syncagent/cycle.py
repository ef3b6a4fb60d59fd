"""One sync cycle, shared by `sync`, `sync --dry-run`, the demo and the daemon.

read Graph → load state → look up departed users → plan → safety guard → apply → summary.
The callers differ only in the options they pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from syncagent.apply import ExecutionReport, Executor, RequestLog
from syncagent.dryrun import DiscardingWriter, DryRunTarget
from syncagent.errors import Refused, SyncAgentError
from syncagent.model import DirectorySnapshot, OutcomeStatus, RecordedState
from syncagent.plan import Action, Plan, build_plan, departed_user_ids
from syncagent.ports import DirectorySource, ScimTarget, StateStore, StateWriter
from syncagent.scim.requests import Dialect

log = logging.getLogger(__name__)


class RunStatus(StrEnum):
    SUCCESS = "success"  # everything planned was applied (or, dry run, planned)
    PARTIAL = "partial"  # some objects failed; they are retried on the next run
    FAILED = "failed"  # the cycle could not run: a service could not be reached or read
    REFUSED = "refused"  # a safety guard stopped the run before anything was sent


@dataclass(frozen=True, slots=True)
class CycleOptions:
    dry_run: bool = False
    allow_deletions: bool = False
    max_deletions: int = 50
    members_per_patch: int = 100
    concurrency: int = 1
    skip_out_of_scope_deletions: bool = False
    dialect: Dialect = Dialect.DEFAULT


@dataclass(slots=True)
class CycleResult:
    mode: str
    status: RunStatus
    started_at: datetime
    duration: float = 0.0
    run_id: int | None = None
    plan: Plan | None = None
    report: ExecutionReport | None = None
    error: SyncAgentError | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return summarise(self.report, self.plan)

    def to_dict(self) -> dict[str, Any]:
        steps = self.report.steps if self.report else []
        return {
            "mode": self.mode,
            "status": str(self.status),
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "duration_seconds": round(self.duration, 3),
            "error": str(self.error) if self.error else None,
            "warnings": list(self.warnings),
            "notes": list(self.plan.notes) if self.plan else [],
            "summary": self.summary(),
            "operations": [
                {
                    **step.operation.to_dict(),
                    "result": step.outcome.action,
                    "status": str(step.outcome.status),
                    "scim_id": step.outcome.scim_id,
                    "error": step.outcome.error,
                    "requests": [
                        {
                            "method": r.method,
                            "path": r.path,
                            "body": r.body,
                            "status": r.status,
                            "sent": r.sent,
                        }
                        for r in step.requests
                    ],
                }
                for step in steps
            ]
            # A refused run applied nothing: show what it would have done.
            or [
                {**op.to_dict(), "result": None, "status": "not_attempted", "requests": []}
                for op in (self.plan.changes if self.plan and not self.report else ())
            ],
        }


def run_cycle(
    source: DirectorySource,
    target: ScimTarget,
    store: StateStore,
    requests: RequestLog,
    options: CycleOptions,
) -> CycleResult:
    """Run one cycle. Errors a user can act on are returned in the result, not raised."""
    mode = "dry-run" if options.dry_run else "sync"
    result = CycleResult(mode, RunStatus.FAILED, datetime.now(UTC))
    began = time.monotonic()
    if not options.dry_run:
        result.run_id = store.start_run(mode)
    try:
        _run(result, source=source, target=target, store=store, requests=requests, options=options)
    except Refused as exc:
        result.status, result.error = RunStatus.REFUSED, exc
    except SyncAgentError as exc:
        result.status, result.error = RunStatus.FAILED, exc
    finally:
        result.duration = time.monotonic() - began
    if result.run_id is not None:
        summary = {**result.summary(), "error": str(result.error) if result.error else None}
        try:
            store.finish_run(result.run_id, str(result.status), summary)
        except SyncAgentError as exc:
            # Every applied step is already committed; only the run's own row is stale.
            log.error("could not record the end of run %s: %s", result.run_id, exc)
            if result.error is None:
                result.status, result.error = RunStatus.FAILED, exc
    log.info(
        "run %s (%s) %s in %.1fs: %s",
        result.run_id if result.run_id is not None else "-",
        mode,
        result.status,
        result.duration,
        _log_summary(result.summary()),
    )
    return result


def _log_summary(summary: dict[str, Any]) -> str:
    """`users created=2 disabled=1, groups created=7, ...`: nonzero counts only."""
    parts = []
    for section in ("users", "groups", "members", "requests"):
        counts = " ".join(f"{k}={v}" for k, v in summary[section].items() if v)
        parts.append(f"{section} {counts or 'none'}")
    if summary["failed"]:
        parts.append(f"failed={summary['failed']}")
    if summary["not_attempted"]:
        parts.append(f"not_attempted={summary['not_attempted']}")
    return ", ".join(parts)


def _run(
    result: CycleResult,
    *,
    source: DirectorySource,
    target: ScimTarget,
    store: StateStore,
    requests: RequestLog,
    options: CycleOptions,
) -> None:
    snapshot = source.read_snapshot()
    recorded = store.load()
    presence = source.user_presence(departed_user_ids(snapshot, recorded))
    plan = build_plan(
        snapshot,
        recorded,
        presence,
        members_per_patch=options.members_per_patch,
        skip_out_of_scope_deletions=options.skip_out_of_scope_deletions,
    )
    result.plan = plan
    refusal = safety_refusal(plan, snapshot, recorded, options)
    if refusal is not None:
        if not options.dry_run:
            raise refusal
        result.warnings.append(f"a real run would be refused: {refusal}")

    writer: StateWriter = store
    if options.dry_run:
        target, writer = DryRunTarget(target, requests), DiscardingWriter()
    executor = Executor(
        target,
        writer,
        requests,
        run_id=result.run_id or 0,
        dialect=options.dialect,
        recorded=recorded,
        concurrency=options.concurrency,
    )
    report = executor.execute(plan)
    result.report = report
    if report.aborted:
        result.status = RunStatus.FAILED
        result.error = SyncAgentError(
            f"the run stopped: {report.aborted}; {report.not_attempted} operation(s) not "
            "attempted, they run on the next cycle"
        )
    elif report.failed:
        result.status = RunStatus.PARTIAL
    else:
        result.status = RunStatus.SUCCESS


def safety_refusal(
    plan: Plan, snapshot: DirectorySnapshot, recorded: RecordedState, options: CycleOptions
) -> Refused | None:
    """Entra's accidental-deletion guard, plus a guard against an empty read."""
    if options.allow_deletions:
        return None
    if not snapshot.groups and recorded.groups:
        return Refused(
            f"Graph returned no in-scope group while {len(recorded.groups)} are provisioned; "
            "refusing to delete them and disable their members",
            remedy="check source.group_prefix or source.groups and the app's Graph permissions; "
            "if this is intended, run `syncagent sync --allow-deletions`",
        )
    destructive = plan.destructive()
    if len(destructive) > options.max_deletions:
        return Refused(
            f"the plan would disable or delete {len(destructive)} users and groups, more than "
            f"safety.max_deletions ({options.max_deletions})",
            remedy="review it with `syncagent sync --dry-run`; if it is intended, run "
            "`syncagent sync --allow-deletions` once, or raise safety.max_deletions",
        )
    return None


_USER_RESULTS = {
    "create": "created",
    "adopt": "adopted",
    str(Action.UPDATE_USER): "updated",
    str(Action.ENABLE_USER): "enabled",
    str(Action.DISABLE_USER): "disabled",
    str(Action.DELETE_USER): "deleted",
    "already_deleted": "deleted",
    "unchanged": "unchanged",
}
_GROUP_RESULTS = {
    "create": "created",
    "adopt": "adopted",
    str(Action.UPDATE_GROUP): "renamed",
    str(Action.DELETE_GROUP): "deleted",
    "already_deleted": "deleted",
    "unchanged": "unchanged",
}


def summarise(report: ExecutionReport | None, plan: Plan | None) -> dict[str, Any]:
    users = dict.fromkeys(
        ("created", "adopted", "updated", "enabled", "disabled", "deleted", "unchanged"), 0
    )
    groups = dict.fromkeys(("created", "adopted", "renamed", "deleted", "unchanged"), 0)
    members = {"added": 0, "removed": 0}
    failed = 0
    reads = writes = 0
    for step in report.steps if report else []:
        outcome = step.outcome
        for request in step.requests:
            if request.method == "GET":
                reads += 1
            else:
                writes += 1
        if outcome.status is OutcomeStatus.FAILED:
            failed += 1
            continue
        if outcome.object_type == "user" and outcome.action in _USER_RESULTS:
            users[_USER_RESULTS[outcome.action]] += 1
        elif outcome.object_type == "group" and outcome.action in _GROUP_RESULTS:
            groups[_GROUP_RESULTS[outcome.action]] += 1
        elif step.operation.action is Action.ADD_MEMBERS:
            members["added"] += step.members_applied
        elif step.operation.action is Action.REMOVE_MEMBERS:
            members["removed"] += step.members_applied
    return {
        "planned": len(plan.changes) if plan else 0,
        "users": users,
        "groups": groups,
        "members": members,
        "failed": failed,
        "not_attempted": report.not_attempted if report else 0,
        "requests": {"reads": reads, "writes": writes},
    }
