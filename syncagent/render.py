"""Text for people: the plan and its requests, the run summary, the roles table.

Functions here return strings; only the CLI prints them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from syncagent.check import Check
from syncagent.cycle import CycleResult, RunStatus
from syncagent.plan import Action, Operation

_VERBS = {
    Action.PROBE: "probe the SCIM endpoint",
    Action.CREATE_USER: "provision user",
    Action.UPDATE_USER: "update user",
    Action.ENABLE_USER: "enable user",
    Action.DISABLE_USER: "disable user",
    Action.DELETE_USER: "delete user",
    Action.RECORD_USER: "note (state only) user",
    Action.CREATE_GROUP: "provision group",
    Action.UPDATE_GROUP: "rename group",
    Action.DELETE_GROUP: "delete group",
    Action.ADD_MEMBERS: "add members to",
    Action.REMOVE_MEMBERS: "remove members from",
}
_SIGNS = {
    Action.CREATE_USER: "+",
    Action.CREATE_GROUP: "+",
    Action.ADD_MEMBERS: "+",
    Action.DELETE_USER: "-",
    Action.DELETE_GROUP: "-",
    Action.REMOVE_MEMBERS: "-",
    Action.DISABLE_USER: "-",
}


def describe(op: Operation) -> str:
    text = f"{_SIGNS.get(op.action, '~')} {_VERBS[op.action]} {op.label}"
    if op.action is Action.PROBE:
        return f"  {_VERBS[op.action]}"
    if op.members:
        text += f" ({len(op.members)} member{'s' if len(op.members) != 1 else ''})"
    if op.reason:
        text += f" [{op.reason}]"
    if op.action is Action.UPDATE_GROUP and op.previous:
        text += f" (was {op.previous.get('displayName')})"
    return text


def result_text(result: CycleResult, *, show_requests: bool) -> str:
    """The run as an administrator reads it; the reason for a failure goes to stderr."""
    lines: list[str] = []
    heading = "Dry run: nothing was sent but reads" if result.mode == "dry-run" else "Sync"
    if result.run_id is not None:
        heading += f" (run {result.run_id})"
    lines.append(heading)
    report, plan = result.report, result.plan
    if report is None and plan is not None and plan.changes:
        # Refused (or stopped) after planning: the plan is the thing to review.
        lines.append("  not applied; the plan was:")
        lines.extend(f"  {describe(op)}" for op in plan.changes)
    elif plan is None and result.status is RunStatus.FAILED:
        lines.append("  no plan: the cycle stopped before it could make one")
    for step in report.steps if report else []:
        outcome = step.outcome
        failed = outcome.status.value != "success"
        if step.operation.action is Action.PROBE and not (show_requests or failed):
            continue
        line = f"  {describe(step.operation)}"
        if outcome.action not in (str(step.operation.action), "create"):
            line += f": {outcome.action}"
        if failed:
            line += f"  {outcome.status.value.upper()}"
        lines.append(line)
        if outcome.error:
            lines.append(f"      {outcome.error}")
        if show_requests:
            for request in step.requests:
                status = f"-> {request.status}" if request.sent else "(not sent)"
                lines.append(f"      {request.method} {request.path} {status}")
                if request.body is not None:
                    lines.append(f"        {json.dumps(request.body, separators=(',', ':'))}")
    if report is not None and report.not_attempted:
        lines.append(
            f"  {report.not_attempted} operation(s) not attempted: they run on the next cycle"
        )
    if plan is not None and not plan.changes:
        lines.append("  nothing to change")
    if plan and plan.notes:
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in plan.notes)
    lines.extend(f"Warning: {w}" for w in result.warnings)
    lines.append(summary_line(result))
    return "\n".join(lines)


def summary_line(result: CycleResult) -> str:
    """One line, stable in form: what changed, what went over the wire, how it ended."""
    s = result.summary()
    took = f"in {result.duration:.1f}s"
    if result.report is None:
        # Nothing was executed: counts of zero would read as "checked, all unchanged".
        if result.plan is None:
            return f"Summary: no plan was made; nothing sent; {result.status.upper()} {took}"
        return (
            f"Summary: {s['planned']} change(s) planned; nothing sent; "
            f"{result.status.upper()} {took}"
        )
    parts = [
        _counts("users", s["users"]),
        _counts("groups", s["groups"]),
        f"members {s['members']['added']} added, {s['members']['removed']} removed",
    ]
    requests = s["requests"]
    sent = "not sent" if result.mode == "dry-run" else "sent"
    tail = f"{requests['reads']} reads, {requests['writes']} writes {sent}"
    return f"Summary: {'; '.join(p for p in parts if p)}; {tail}; {_ending(result)} {took}"


def _ending(result: CycleResult) -> str:
    s = result.summary()
    if result.status is RunStatus.SUCCESS:
        return "done"
    if result.status is RunStatus.PARTIAL:
        return f"PARTIAL: {s['failed']} failed (retried next run)"
    counts = [f"{s['failed']} failed"] if s["failed"] else []
    if s["not_attempted"]:
        counts.append(f"{s['not_attempted']} not attempted")
    ending = result.status.upper()
    return f"{ending}: {', '.join(counts)}" if counts else ending


def _counts(name: str, counts: dict[str, int]) -> str:
    shown = [f"{n} {k}" for k, n in counts.items() if n and k != "unchanged"]
    return f"{name} {', '.join(shown)}" if shown else f"{name} unchanged"


@dataclass(frozen=True, slots=True)
class RoleRow:
    user_name: str
    active: bool
    roles: Sequence[str]
    groups: Sequence[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "userName": self.user_name,
            "active": self.active,
            "roles": list(self.roles),
            "groups": list(self.groups),
        }


def roles_table(rows: Iterable[RoleRow]) -> str:
    rows = list(rows)
    if not rows:
        return "No users."
    width = max(len("USER"), *(len(r.user_name) for r in rows))
    lines = [f"{'USER'.ljust(width)}  ACTIVE  ROLES"]
    for row in rows:
        roles = ", ".join(row.roles) if row.roles else "(no role)"
        lines.append(f"{row.user_name.ljust(width)}  {'yes' if row.active else 'no ':6}  {roles}")
    return "\n".join(lines)


def checks_table(checks: Iterable[Check]) -> str:
    lines = []
    for check in checks:
        lines.append(f"{check.name:<6} {'ok' if check.ok else 'FAILED':<7} {check.detail}")
        if check.warning:
            lines.append(f"{'':<6} {'warning':<7} {check.warning}")
    return "\n".join(lines)
