"""The state store: links between Entra and SCIM ids, what was applied, and the run log."""

from syncagent.state.store import (
    LoggedOperation,
    RunRecord,
    StateStore,
    alembic_config,
    head_revision,
)

__all__ = ["LoggedOperation", "RunRecord", "StateStore", "alembic_config", "head_revision"]
