"""The dry run's target and state writer.

Reads go to the real target, so matching and diffs are computed exactly as in a real run;
writes are recorded as requests that were not sent, and nothing is written to state.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from syncagent.apply import RequestLog
from syncagent.model import GroupRecord, OperationOutcome, UserRecord
from syncagent.ports import ScimTarget
from syncagent.scim.client import SentRequest


class DryRunTarget:
    def __init__(self, target: ScimTarget, requests: RequestLog) -> None:
        self._target = target
        self._requests = requests

    def _withhold(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> None:
        self._requests(SentRequest(method, path, dict(body) if body else None, None, False))

    def probe(self) -> None:
        self._target.probe()

    def find_users(self, user_name: str) -> list[dict[str, Any]]:
        return self._target.find_users(user_name)

    def get_user(self, scim_id: str) -> dict[str, Any] | None:
        if scim_id.startswith("("):
            return None
        return self._target.get_user(scim_id)

    def create_user(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._withhold("POST", "/Users", body)
        return {**body, "id": f"(new user {body.get('userName', '')})"}

    def patch_user(self, scim_id: str, body: Mapping[str, Any]) -> None:
        self._withhold("PATCH", f"/Users/{scim_id}", body)

    def delete_user(self, scim_id: str) -> bool:
        self._withhold("DELETE", f"/Users/{scim_id}")
        return True

    def find_groups(self, display_name: str) -> list[dict[str, Any]]:
        return self._target.find_groups(display_name)

    def get_group(self, scim_id: str) -> dict[str, Any] | None:
        return self._target.get_group(scim_id)

    def create_group(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._withhold("POST", "/Groups", body)
        return {**body, "id": f"(new group {body.get('displayName', '')})"}

    def patch_group(self, scim_id: str, body: Mapping[str, Any]) -> None:
        self._withhold("PATCH", f"/Groups/{scim_id}", body)

    def delete_group(self, scim_id: str) -> bool:
        self._withhold("DELETE", f"/Groups/{scim_id}")
        return True


class DiscardingWriter:
    """A state writer that keeps nothing: a dry run leaves the state as it found it."""

    def record_user(self, run_id: int, record: UserRecord, outcome: OperationOutcome) -> None:
        pass

    def forget_user(self, run_id: int, entra_id: str, outcome: OperationOutcome) -> None:
        pass

    def record_group(self, run_id: int, record: GroupRecord, outcome: OperationOutcome) -> None:
        pass

    def forget_group(self, run_id: int, entra_id: str, outcome: OperationOutcome) -> None:
        pass

    def add_memberships(
        self,
        run_id: int,
        group_entra_id: str,
        user_entra_ids: Collection[str],
        outcome: OperationOutcome,
    ) -> None:
        pass

    def remove_memberships(
        self,
        run_id: int,
        group_entra_id: str,
        user_entra_ids: Collection[str],
        outcome: OperationOutcome,
    ) -> None:
        pass

    def log(self, run_id: int, outcome: OperationOutcome) -> None:
        pass
