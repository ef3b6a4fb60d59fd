"""Text for people: the plan and its requests, the run summary, the roles table.

Functions here return strings; only the CLI prints them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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
    lines: list[str] = []
    heading = "Dry run: nothing was sent but reads" if result.mode == "dry-run" else "Sync"
    if result.run_id is not None:
        heading += f" (run {result.run_id})"
    lines.append(heading)
    steps = result.report.steps if result.report else []
    if result.report is None and result.plan is not None:
        lines.extend(f"  {describe(op)}" for op in result.plan.changes)
    for step in steps:
        if step.operation.action is Action.PROBE and not show_requests:
            continue
        line = f"  {describe(step.operation)}"
        outcome = step.outcome
        if outcome.action not in (str(step.operation.action), "create"):
            line += f": {outcome.action}"
        if outcome.status.value != "success":
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
    if result.plan is not None and not result.plan.changes:
        lines.append("  nothing to change")
    if result.plan and result.plan.notes:
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in result.plan.notes)
    lines.extend(f"Warning: {w}" for w in result.warnings)
    lines.append(summary_line(result))
    return "\n".join(lines)


def summary_line(result: CycleResult) -> str:
    s = result.summary()
    parts = [
        _counts("users", s["users"]),
        _counts("groups", s["groups"]),
        f"members {s['members']['added']} added, {s['members']['removed']} removed",
    ]
    requests = s["requests"]
    sent = "not sent" if result.mode == "dry-run" else "sent"
    tail = f"{requests['reads']} reads, {requests['writes']} writes {sent}"
    status = {
        RunStatus.SUCCESS: "done",
        RunStatus.PARTIAL: f"PARTIAL: {s['failed']} failed (retried next run)",
        RunStatus.FAILED: "FAILED",
        RunStatus.REFUSED: "REFUSED",
    }[result.status]
    return (
        f"Summary: {'; '.join(p for p in parts if p)}; {tail}; {status} in {result.duration:.1f}s"
    )


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
