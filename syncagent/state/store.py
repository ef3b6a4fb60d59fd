"""The state store: what the agent has applied to the target, and what it did when.

Every write commits on its own, together with its operation-log row, so a crash between
two SCIM requests loses at most the request in flight (the next run sees the target as
far as it was recorded). Reads are a handful of set-wise SELECTs; nothing here issues a
query per row.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    String,
    Table,
    bindparam,
    column,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    make_url,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from syncagent.errors import StateError
from syncagent.model import (
    Deprovision,
    GroupRecord,
    OperationOutcome,
    OutcomeStatus,
    RecordedState,
    UserRecord,
)
from syncagent.state.lock import exclusive_run
from syncagent.state.schema import VERSION_TABLE, groups, memberships, operations, runs, users

_log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_BUSY_TIMEOUT_MS = 5000
_CONNECT_TIMEOUT_S = 10
# Serialises concurrent migrate() calls on one PostgreSQL database (any stable 64-bit key).
_MIGRATE_LOCK_KEY = 0x73796E6361676E74
# Execution option that makes the SQLite "begin" hook take the write lock up front.
_WRITE_OPTION = "syncagent_write"
_DEPROVISION = {reason.value: reason for reason in Deprovision}
_OUTCOME_STATUS = {status.value: status for status in OutcomeStatus}


@dataclass(frozen=True)
class RunRecord:
    """One run of the cycle, as the store remembers it."""

    id: int
    mode: str
    started_at: datetime
    finished_at: datetime | None
    status: str | None
    summary: dict[str, Any]


@dataclass(frozen=True)
class LoggedOperation:
    """One operation-log row: an outcome, the run it belongs to and when it was recorded."""

    id: int
    run_id: int
    at: datetime
    outcome: OperationOutcome


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic configuration of the store, built in code (there is no alembic.ini).

    Also the way to drive Alembic by hand, e.g. to write a new revision:
    `command.revision(alembic_config(), message=..., autogenerate=True)` with
    `sqlalchemy.url` set as a main option.
    """
    config = Config()
    # Config values go through ConfigParser interpolation: a literal % must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str | None:
    """The schema revision this version of syncagent migrates to."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _now() -> datetime:
    return datetime.now(UTC)


def _one_line(text_: str) -> str:
    return " ".join(text_.split())


class StateStore:
    """The state database, SQLite (default) or PostgreSQL, behind one small API."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            # Parser messages may repeat parts of the URL, password included: leave them out.
            raise StateError(
                "the state database URL cannot be parsed",
                remedy="use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB",
            ) from None
        if parsed.drivername == "postgresql":
            # psycopg 3 is the only PostgreSQL driver syncagent depends on.
            parsed = parsed.set(drivername="postgresql+psycopg")
        self._password = str(parsed.password) if parsed.password else None
        self._display = parsed.render_as_string(hide_password=True)
        self._backend = parsed.get_backend_name()
        if self._backend not in ("sqlite", "postgresql"):
            raise StateError(
                f"unsupported state database {self._display}",
                remedy="use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB",
            )
        if self._backend == "sqlite":
            self._prepare_sqlite_path(parsed)
        try:
            self._engine = self._create_engine(parsed)
        except (SQLAlchemyError, ImportError) as exc:
            raise self._error("cannot open state database", exc) from exc
        # Built once: every write of a run reuses them (and SQLAlchemy's compiled cache).
        self._upsert_user = self._upsert(
            users, ("scim_id", "user_name", "attributes", "deprovisioned", "updated_at")
        )
        self._upsert_group = self._upsert(groups, ("scim_id", "display_name", "updated_at"))
        self._insert_membership = self._insert(memberships).on_conflict_do_nothing()
        self._insert_operation = insert(operations)

    @contextmanager
    def exclusive_run(self) -> Iterator[None]:
        """Hold the run lock for the block; Refused if another run holds it (see lock.py)."""
        with exclusive_run(self._engine, self._display):
            yield

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def open(cls, url: str) -> StateStore:
        """Open the store and bring its schema to the head revision."""
        store = cls(url)
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    @property
    def url(self) -> str:
        """The database URL with the password masked: safe to show and log."""
        return self._display

    def __repr__(self) -> str:
        return f"StateStore({self._display!r})"

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def migrate(self) -> None:
        """Upgrade the schema to head; a database already at head is left untouched."""
        with self._transaction("migrate", write=True) as conn:
            if self._backend == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK_KEY})
            before = self._current_revision(conn)
            if before == head_revision():
                # Already current: skip Alembic entirely (and its log lines on every start).
                return
            try:
                command.upgrade(alembic_config(conn), "head")
            except (CommandError, RevisionError) as exc:
                raise StateError(
                    f"cannot migrate state database {self._display} "
                    f"(at revision {before!r}): {_one_line(str(exc))}",
                    remedy="the database may have been written by a newer syncagent: "
                    "upgrade syncagent or use another database",
                ) from exc
            after = self._current_revision(conn)
        if before != after:
            _log.info("state database %s migrated from %s to %s", self._display, before, after)

    def schema_revision(self) -> str | None:
        with self._transaction("read the schema revision", write=False) as conn:
            return self._current_revision(conn)

    # -- reading -------------------------------------------------------------------------

    def load(self) -> RecordedState:
        """Everything recorded, read in one snapshot with one SELECT per table."""
        user_query = select(
            users.c.entra_id, users.c.scim_id, users.c.attributes, users.c.deprovisioned
        )
        group_query = select(groups.c.entra_id, groups.c.scim_id, groups.c.display_name)
        membership_query = select(memberships.c.group_entra_id, memberships.c.user_entra_id)
        with self._transaction("load the recorded state", write=False) as conn:
            user_rows = conn.execute(user_query).all()
            group_rows = conn.execute(group_query).all()
            membership_rows = conn.execute(membership_query).all()
        # Built after the transaction, so the snapshot is held no longer than the reads.
        recorded_users = {
            entra_id: UserRecord(
                entra_id, scim_id, attributes, self._deprovision(entra_id, deprovisioned)
            )
            for entra_id, scim_id, attributes, deprovisioned in user_rows
        }
        recorded_groups = {
            entra_id: GroupRecord(entra_id, scim_id, name) for entra_id, scim_id, name in group_rows
        }
        return RecordedState(
            users=recorded_users,
            groups=recorded_groups,
            memberships=frozenset((group, user) for group, user in membership_rows),
        )

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first."""
        with self._transaction("read runs", write=False) as conn:
            rows = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit))
            return [
                RunRecord(
                    id=row.id,
                    mode=row.mode,
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    status=row.status,
                    summary=dict(row.summary),
                )
                for row in rows
            ]

    def last_run(self) -> RunRecord | None:
        found = self.runs(limit=1)
        return found[0] if found else None

    def operations(self, run_id: int) -> list[LoggedOperation]:
        """The operation log of one run, in the order it was written."""
        with self._transaction("read the operation log", write=False) as conn:
            rows = conn.execute(
                select(operations).where(operations.c.run_id == run_id).order_by(operations.c.id)
            )
            return [
                LoggedOperation(
                    id=row.id,
                    run_id=row.run_id,
                    at=row.at,
                    outcome=OperationOutcome(
                        object_type=row.object_type,
                        action=row.action,
                        entra_id=row.entra_id,
                        scim_id=row.scim_id,
                        request=row.request,
                        status=self._status(row.id, row.status),
                        error=row.error,
                    ),
                )
                for row in rows
            ]

    # -- runs ----------------------------------------------------------------------------

    def start_run(self, mode: str) -> int:
        with self._transaction("start a run", write=True) as conn:
            result = conn.execute(insert(runs).values(mode=mode, started_at=_now(), summary={}))
            run_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        if not isinstance(run_id, int):
            raise StateError(f"state database {self._display} returned no id for the new run")
        return run_id

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any]) -> None:
        with self._transaction("finish a run", write=True) as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(finished_at=_now(), status=status, summary=dict(summary))
            )
            if result.rowcount == 0:
                raise StateError(f"state database {self._display} has no run {run_id}")

    # -- writes, each with its log row in one transaction --------------------------------

    def record_user(self, run_id: int, record: UserRecord, outcome: OperationOutcome) -> None:
        now = _now()
        values = {
            "entra_id": record.entra_id,
            "scim_id": record.scim_id,
            "user_name": record.user_name,
            "attributes": dict(record.attributes),
            "deprovisioned": record.deprovisioned.value if record.deprovisioned else None,
            "created_at": now,
            "updated_at": now,
        }
        with self._transaction("record a user", write=True) as conn:
            conn.execute(self._upsert_user, values)
            self._append_log(conn, run_id, outcome, now)

    def forget_user(self, run_id: int, entra_id: str, outcome: OperationOutcome) -> None:
        now = _now()
        with self._transaction("forget a user", write=True) as conn:
            conn.execute(delete(memberships).where(memberships.c.user_entra_id == entra_id))
            conn.execute(delete(users).where(users.c.entra_id == entra_id))
            self._append_log(conn, run_id, outcome, now)

    def record_group(self, run_id: int, record: GroupRecord, outcome: OperationOutcome) -> None:
        now = _now()
        values = {
            "entra_id": record.entra_id,
            "scim_id": record.scim_id,
            "display_name": record.display_name,
            "created_at": now,
            "updated_at": now,
        }
        with self._transaction("record a group", write=True) as conn:
            conn.execute(self._upsert_group, values)
            self._append_log(conn, run_id, outcome, now)

    def forget_group(self, run_id: int, entra_id: str, outcome: OperationOutcome) -> None:
        now = _now()
        with self._transaction("forget a group", write=True) as conn:
            # The foreign key cascades too; deleting explicitly does not depend on it.
            conn.execute(delete(memberships).where(memberships.c.group_entra_id == entra_id))
            conn.execute(delete(groups).where(groups.c.entra_id == entra_id))
            self._append_log(conn, run_id, outcome, now)

    def add_memberships(
        self,
        run_id: int,
        group_entra_id: str,
        user_entra_ids: Collection[str],
        outcome: OperationOutcome,
    ) -> None:
        """Record members of a group; rows already recorded are left as they are."""
        now = _now()
        rows = [
            {"group_entra_id": group_entra_id, "user_entra_id": user_id}
            for user_id in sorted(set(user_entra_ids))
        ]
        with self._transaction("add memberships", write=True) as conn:
            if rows:
                conn.execute(self._insert_membership, rows)
            self._append_log(conn, run_id, outcome, now)

    def remove_memberships(
        self,
        run_id: int,
        group_entra_id: str,
        user_entra_ids: Collection[str],
        outcome: OperationOutcome,
    ) -> None:
        now = _now()
        rows = [{"group_id": group_entra_id, "user_id": user_id} for user_id in set(user_entra_ids)]
        statement = delete(memberships).where(
            memberships.c.group_entra_id == bindparam("group_id"),
            memberships.c.user_entra_id == bindparam("user_id"),
        )
        with self._transaction("remove memberships", write=True) as conn:
            if rows:
                conn.execute(statement, rows)
            self._append_log(conn, run_id, outcome, now)

    def log(self, run_id: int, outcome: OperationOutcome) -> None:
        """Log an outcome that changed nothing recorded (a failure, a skip, a probe)."""
        with self._transaction("log an operation", write=True) as conn:
            self._append_log(conn, run_id, outcome, _now())

    # -- internals -----------------------------------------------------------------------

    def _prepare_sqlite_path(self, url: URL) -> None:
        database = url.database
        if not database or database == ":memory:":
            return
        if url.query.get("uri") or database.startswith("file:"):
            return
        directory = Path(database).parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create the directory {directory} of state database "
                f"{self._display}: {exc.strerror or exc}",
                remedy="create the directory or choose another path",
            ) from exc

    def _create_engine(self, url: URL) -> Engine:
        if self._backend == "sqlite":
            engine = create_engine(url)
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
        # Pre-ping: a long-running daemon outlives server restarts and idle disconnects.
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)

    @contextmanager
    def _transaction(self, what: str, *, write: bool) -> Iterator[Connection]:
        """One connection, one transaction, committed on leaving; driver errors wrapped."""
        try:
            conn = self._engine.connect()
        except SQLAlchemyError as exc:
            raise self._error("cannot open state database", exc) from exc
        try:
            with conn:
                if write:
                    conn.execution_options(**{_WRITE_OPTION: True})
                elif self._backend == "postgresql":
                    # Several SELECTs must see one snapshot, not each its own.
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise self._error(f"cannot {what} in state database", exc) from exc

    def _error(self, prefix: str, exc: BaseException) -> StateError:
        cause = getattr(exc, "orig", None) or exc
        message = _one_line(str(cause)) or type(cause).__name__
        if self._password:
            message = message.replace(self._password, "***")
        return StateError(f"{prefix} {self._display}: {message}")

    def _current_revision(self, conn: Connection) -> str | None:
        # Read directly rather than through Alembic's MigrationContext, which logs at INFO
        # on every call. Unqualified, so PostgreSQL resolves it through the search_path.
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        version_num = column("version_num", String())
        query = select(version_num).select_from(table(VERSION_TABLE))
        return ",".join(sorted(conn.execute(query).scalars())) or None

    def _insert(self, target: Table) -> postgresql.Insert | sqlite.Insert:
        if self._backend == "postgresql":
            return postgresql.insert(target)
        return sqlite.insert(target)

    def _upsert(self, target: Table, changed: Collection[str]) -> Insert:
        statement = self._insert(target)
        primary_key = [key.name for key in target.primary_key.columns]
        return statement.on_conflict_do_update(
            index_elements=primary_key,
            set_={name: statement.excluded[name] for name in changed},
        )

    def _deprovision(self, entra_id: str, value: str | None) -> Deprovision | None:
        if value is None:
            return None
        try:
            return _DEPROVISION[value]
        except KeyError:
            raise StateError(
                f"state database {self._display} records an unknown deprovision reason "
                f"{value!r} for user {entra_id}",
                remedy="the database may have been written by a newer syncagent",
            ) from None

    def _status(self, operation_id: int, value: str) -> OutcomeStatus:
        try:
            return _OUTCOME_STATUS[value]
        except KeyError:
            raise StateError(
                f"state database {self._display} records an unknown status {value!r} "
                f"for operation {operation_id}",
                remedy="the database may have been written by a newer syncagent",
            ) from None

    def _append_log(
        self, conn: Connection, run_id: int, outcome: OperationOutcome, at: datetime
    ) -> None:
        conn.execute(
            self._insert_operation,
            {
                "run_id": run_id,
                "at": at,
                "object_type": outcome.object_type,
                "action": outcome.action,
                "entra_id": outcome.entra_id,
                "scim_id": outcome.scim_id,
                "request": outcome.request,
                "status": outcome.status.value,
                "error": outcome.error,
            },
        )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin: that makes
    # SELECTs transactional and DDL part of the migration's transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        mode = cursor.fetchone()
        if mode and str(mode[0]).lower() not in ("wal", "memory"):
            _log.warning("SQLite refused WAL journal mode; using %s", mode[0])
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        # WAL + NORMAL: a commit survives a crash of the process (not of the machine's power).
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # A write transaction takes the lock at BEGIN, so it waits for (busy_timeout) rather
    # than fails on another writer mid-way.
    immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
