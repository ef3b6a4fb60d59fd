"""The agent wired to the Graph emulator, scim2-server and a real state store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncagent import mapping
from syncagent.config import Config, parse_config
from syncagent.cycle import CycleResult
from syncagent.emulator import GraphEmulator, Tenant
from syncagent.runtime import Runtime, open_runtime
from tests.fixtures.emulator import TEST_GRAPH_TOKEN
from tests.fixtures.scim_server import RecordedScimRequest, ScimServer

ROLE_GROUPS = tuple(mapping.ROLE_GROUPS)


def agent_config(
    tmp_path: Path,
    emulator: GraphEmulator,
    scim_server: ScimServer,
    state_url: str,
    *,
    compliant: bool = False,
    **sections: dict[str, Any],
) -> Config:
    """A configuration for the fixtures; `sections` add keys, e.g. `scim={"max_retries": 0}`."""
    scim = scim_server
    (tmp_path / "graph-token").write_text(TEST_GRAPH_TOKEN)
    (tmp_path / "scim-secret").write_text(scim.token + "\n")
    data: dict[str, Any] = {
        "graph": {
            "credential": "token",
            "token_file": "graph-token",
            "base_url": emulator.base_url,
        },
        "source": {"group_prefix": "SourceMagnet"},
        "scim": {
            "base_url": scim.base_url + ("?aadOptscim062020" if compliant else ""),
            "secret_file": "scim-secret",
            # One request at a time, so that tests can assert the order on the wire;
            # tests/test_sync_concurrency.py covers the default of several.
            "concurrency": 1,
        },
        "state": {"url": state_url},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return parse_config(data, base_dir=tmp_path, env={})


@dataclass
class Agent:
    """The agent under test and the two services it talks to."""

    tenant: Tenant
    graph: GraphEmulator
    scim: ScimServer
    runtime: Runtime

    def sync(self, **options: Any) -> CycleResult:
        self.scim.clear()
        return self.runtime.sync(**options)

    def writes(self) -> list[RecordedScimRequest]:
        return self.scim.writes()

    def wire(self) -> list[tuple[str, str]]:
        """Every SCIM request of the last sync as (method, target), in order."""
        return [(r.method, r.target) for r in self.scim.requests]

    def users(self) -> dict[str, dict[str, Any]]:
        """Target users by userName, as the SCIM server stores them."""
        return {u["userName"]: u for u in _dump(self.scim, "User")}

    def groups(self) -> dict[str, dict[str, Any]]:
        return {g["displayName"]: g for g in _dump(self.scim, "Group")}

    def member_names(self, group: str) -> set[str]:
        by_id = {u["id"]: name for name, u in self.users().items()}
        members = self.groups()[group].get("members") or []
        return {by_id.get(m["value"], m["value"]) for m in members}

    def scim_id(self, user_name: str) -> str:
        return str(self.users()[user_name]["id"])


def _dump(scim: ScimServer, kind: str) -> list[dict[str, Any]]:
    return [
        r.model_dump(mode="json", by_alias=True, exclude_none=True)
        for r in scim.storage.resources
        if type(r).__name__.startswith(kind)
    ]


@contextmanager
def running_agent(config: Config, emulator: GraphEmulator, scim: ScimServer) -> Iterator[Agent]:
    with open_runtime(config) as runtime:
        yield Agent(emulator.tenant, emulator, scim, runtime)
