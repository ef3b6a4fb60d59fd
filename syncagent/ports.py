"""The small interfaces the core needs from its edges.

The cycle is written against these; production plugs in Graph, the SCIM client and the SQL
store, and tests plug in the emulator, scim2-server and real SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from syncagent.model import (
    DirectorySnapshot,
    GroupRecord,
    OperationOutcome,
    Presence,
    RecordedState,
    UserRecord,
)


class DirectorySource(Protocol):
    def read_snapshot(self) -> DirectorySnapshot: ...

    def user_presence(self, user_ids: Collection[str]) -> dict[str, Presence]: ...


class ScimTarget(Protocol):
    def probe(self) -> None: ...

    def find_users(self, user_name: str) -> list[dict[str, Any]]: ...

    def get_user(self, scim_id: str) -> dict[str, Any] | None: ...

    def create_user(self, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def patch_user(self, scim_id: str, body: Mapping[str, Any]) -> None: ...

    def delete_user(self, scim_id: str) -> bool: ...

    def find_groups(self, display_name: str) -> list[dict[str, Any]]: ...

    def get_group(self, scim_id: str) -> dict[str, Any] | None: ...

    def create_group(self, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def patch_group(self, scim_id: str, body: Mapping[str, Any]) -> None: ...

    def delete_group(self, scim_id: str) -> bool: ...


class StateWriter(Protocol):
    """Each call commits the state change with its log line, in one transaction."""

    def record_user(self, run_id: int, record: UserRecord, outcome: OperationOutcome) -> None: ...

    def forget_user(self, run_id: int, entra_id: str, outcome: OperationOutcome) -> None: ...

    def record_group(self, run_id: int, record: GroupRecord, outcome: OperationOutcome) -> None: ...

    def forget_group(self, run_id: int, entra_id: str, outcome: OperationOutcome) -> None: ...

    def add_memberships(
        self,
        run_id: int,
        group_entra_id: str,
        user_entra_ids: Collection[str],
        outcome: OperationOutcome,
    ) -> None: ...

    def remove_memberships(
        self,
        run_id: int,
        group_entra_id: str,
        user_entra_ids: Collection[str],
        outcome: OperationOutcome,
    ) -> None: ...

    def log(self, run_id: int, outcome: OperationOutcome) -> None: ...


class StateStore(StateWriter, Protocol):
    def load(self) -> RecordedState: ...

    def start_run(self, mode: str) -> int: ...

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any]) -> None: ...
