"""`syncagent check`: can the agent work with this configuration? Reads only.

Like Entra's "Test Connection", and a little more: it opens the state database, reads the
role groups from Graph, and probes the SCIM endpoint, each on its own so that one failure
does not hide the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from syncagent.config import Config
from syncagent.errors import SyncAgentError
from syncagent.mapping import ROLE_GROUPS
from syncagent.scim.client import ScimClient
from syncagent.state import StateStore


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: str | None = None


def run_checks(config: Config) -> list[Check]:
    return [
        _attempt("state", config.state.safe_url, lambda: _state(config)),
        _attempt("graph", config.graph.base_url, lambda: _graph(config)),
        _attempt("scim", config.scim.base_url, lambda: _scim(config)),
    ]


def _attempt(name: str, where: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except SyncAgentError as exc:
        text = str(exc)
        return Check(name, False, text if where in text else f"{where}: {text}")


def _state(config: Config) -> Check:
    with StateStore.open(config.state.url) as store:
        revision = store.schema_revision()
        last = store.last_run()
        users = len(store.load().users)
    if last is None:
        history = "no run yet"
    else:
        history = f"last run {last.id} ({last.mode}) {last.status or 'unfinished'}"
        history += f" at {last.started_at:%Y-%m-%d %H:%M:%S %Z}"
    detail = f"{config.state.safe_url}: schema {revision}, {users} users linked, {history}"
    return Check("state", True, detail)


def _graph(config: Config) -> Check:
    from syncagent.graph import GraphSource  # the SDK import is heavy

    with GraphSource.from_config(config.graph, config.source) as source:
        snapshot = source.read_snapshot()
    names = {group.display_name for group in snapshot.groups.values()}
    detail = (
        f"{config.graph.base_url}: {len(snapshot.groups)} in-scope groups, "
        f"{len(snapshot.users)} member users"
    )
    missing = [name for name in ROLE_GROUPS if name not in names]
    if not snapshot.groups:
        return Check("graph", False, detail + "; no group matches source.group_prefix/groups")
    warning = f"role groups not found: {', '.join(missing)}" if missing else None
    return Check("graph", True, detail, warning)


def _scim(config: Config) -> Check:
    scim = config.scim
    verify: bool | str = str(scim.ca_file) if scim.ca_file else True
    with ScimClient(
        scim.base_url,
        scim.secret,
        timeout=scim.timeout_seconds,
        max_retries=scim.max_retries,
        verify=verify,
    ) as client:
        client.probe()
    return Check(
        "scim",
        True,
        f"{scim.base_url}: the probe got an empty list, as Entra expects ({scim.dialect} dialect)",
    )
