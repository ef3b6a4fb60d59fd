"""The executor on its own: against scim2-server over HTTP, with a state store on SQLite."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from syncagent.apply import Executor, RequestLog
from syncagent.model import DirectorySnapshot, DirectoryUser, RecordedState
from syncagent.plan import build_plan
from syncagent.scim.client import ScimClient
from syncagent.scim.requests import Dialect
from syncagent.state import StateStore
from tests.fixtures.scim_server import ScimServer


def test_a_long_run_logs_its_progress(
    tmp_path: Path, scim_server: ScimServer, caplog: pytest.LogCaptureFixture
) -> None:
    users = {f"u{i}": DirectoryUser(f"u{i}", f"user{i}@contoso.com") for i in range(3)}
    plan = build_plan(DirectorySnapshot({}, users), RecordedState(), {})
    requests = RequestLog()
    with (
        StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store,
        ScimClient(scim_server.base_url, scim_server.token, on_request=requests) as client,
    ):
        executor = Executor(
            client,
            store,
            requests,
            run_id=store.start_run("sync"),
            dialect=Dialect.DEFAULT,
            recorded=RecordedState(),
            progress_seconds=0.0,
        )
        with caplog.at_level(logging.INFO, logger="syncagent.apply"):
            report = executor.execute(plan)
        assert len(store.load().users) == 3
    assert not report.failed
    lines = [r.getMessage() for r in caplog.records if r.name == "syncagent.apply"]
    assert lines == [f"applied {i} of 4 operations (0 failed)" for i in range(1, 5)]
