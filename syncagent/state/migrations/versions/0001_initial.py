"""Initial schema: links, last-applied attributes, memberships, runs and the operation log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types as they were at this revision, not imports from schema.py.
Timestamp = sa.DateTime(timezone=True)
LogId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "syncagent_users",
        sa.Column("entra_id", sa.String(), nullable=False),
        sa.Column("scim_id", sa.String(), nullable=False),
        sa.Column("user_name", sa.String(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("deprovisioned", sa.String(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("entra_id", name="pk_syncagent_users"),
        sa.UniqueConstraint("scim_id", name="uq_syncagent_users_scim_id"),
    )
    op.create_table(
        "syncagent_groups",
        sa.Column("entra_id", sa.String(), nullable=False),
        sa.Column("scim_id", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("entra_id", name="pk_syncagent_groups"),
        sa.UniqueConstraint("scim_id", name="uq_syncagent_groups_scim_id"),
    )
    op.create_table(
        "syncagent_memberships",
        sa.Column("group_entra_id", sa.String(), nullable=False),
        sa.Column("user_entra_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_entra_id"],
            ["syncagent_groups.entra_id"],
            name="fk_syncagent_memberships_group_entra_id_syncagent_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_entra_id", "user_entra_id", name="pk_syncagent_memberships"),
    )
    op.create_index(
        "ix_syncagent_memberships_user_entra_id", "syncagent_memberships", ["user_entra_id"]
    )
    op.create_table(
        "syncagent_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_syncagent_runs"),
    )
    op.create_table(
        "syncagent_operations",
        sa.Column("id", LogId, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("object_type", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("entra_id", sa.String(), nullable=True),
        sa.Column("scim_id", sa.String(), nullable=True),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["syncagent_runs.id"],
            name="fk_syncagent_operations_run_id_syncagent_runs",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_syncagent_operations"),
    )
    op.create_index("ix_syncagent_operations_run_id", "syncagent_operations", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_syncagent_operations_run_id", table_name="syncagent_operations")
    op.drop_table("syncagent_operations")
    op.drop_table("syncagent_runs")
    op.drop_index("ix_syncagent_memberships_user_entra_id", table_name="syncagent_memberships")
    op.drop_table("syncagent_memberships")
    op.drop_table("syncagent_groups")
    op.drop_table("syncagent_users")
