"""The state database's tables, as SQLAlchemy Core metadata.

Table names carry a `syncagent_` prefix so the store can share a PostgreSQL database
(or schema) with other applications. The migrations in `migrations/versions` are the
source of truth for the deployed schema; this metadata must describe the same tables,
and is what autogenerate compares against when a new revision is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

PREFIX = "syncagent_"
VERSION_TABLE = f"{PREFIX}alembic_version"

# Deterministic constraint names, so later migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp on every backend.

    PostgreSQL keeps the offset (TIMESTAMP WITH TIME ZONE) but answers in the session's
    time zone; SQLite keeps no offset at all. Both are normalised to UTC, and naive
    values are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"refusing to store a naive datetime: {value!r}")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite's DATETIME text has no offset: store UTC wall time.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit log id.
LogId = BigInteger().with_variant(Integer(), "sqlite")

users = Table(
    f"{PREFIX}users",
    metadata,
    Column("entra_id", String(), primary_key=True),
    Column("scim_id", String(), nullable=False, unique=True),
    Column("user_name", String(), nullable=False),
    Column("attributes", JSON(), nullable=False),
    Column("deprovisioned", String(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

groups = Table(
    f"{PREFIX}groups",
    metadata,
    Column("entra_id", String(), primary_key=True),
    Column("scim_id", String(), nullable=False, unique=True),
    Column("display_name", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# user_entra_id is deliberately not a foreign key: a membership row can outlive its user
# row for the moment between the user's DELETE and the cleanup of its memberships.
memberships = Table(
    f"{PREFIX}memberships",
    metadata,
    Column(
        "group_entra_id",
        String(),
        ForeignKey(groups.c.entra_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_entra_id", String(), primary_key=True),
    Index(None, "user_entra_id"),
)

runs = Table(
    f"{PREFIX}runs",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("mode", String(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("status", String(), nullable=True),
    Column("summary", JSON(), nullable=False),
)

operations = Table(
    f"{PREFIX}operations",
    metadata,
    Column("id", LogId, primary_key=True, autoincrement=True),
    Column("run_id", Integer(), ForeignKey(runs.c.id), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("object_type", String(), nullable=False),
    Column("action", String(), nullable=False),
    Column("entra_id", String(), nullable=True),
    Column("scim_id", String(), nullable=True),
    Column("request", Text(), nullable=False),
    Column("status", String(), nullable=False),
    Column("error", Text(), nullable=True),
    Index(None, "run_id"),
)
