"""One sync at a time per state database.

Two runs applying the same plan at once would both create what is missing. A run takes an
exclusive lock tied to its state database: a lock file beside a SQLite file, or a session
advisory lock on PostgreSQL (so agents on several hosts sharing one database exclude each
other too). The lock dies with the process, so a crash never leaves it stuck.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from syncagent.errors import Refused, StateError

_KEY = "syncagent.sync"
_BUSY_REMEDY = "wait for it to finish; nothing was sent by this run"


@contextmanager
def exclusive_run(engine: Engine, display: str) -> Iterator[None]:
    """Hold the run lock for the block, or raise Refused when another run holds it."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with _file_lock(Path(f"{database}.lock"), display):
            yield
        return
    with _advisory_lock(engine, display):
        yield


@contextmanager
def _file_lock(path: Path, display: str) -> Iterator[None]:
    try:
        handle = path.open("a+")
    except OSError as exc:
        raise StateError(f"cannot open the run lock {path}: {exc.strerror}") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise Refused(
                f"another sync is running against {display} ({holder})", remedy=_BUSY_REMEDY
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(engine: Engine, display: str) -> Iterator[None]:
    key = text("hashtext(current_database() || '.' || current_schema() || :key)")
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise StateError(f"cannot open state database {display} to take the run lock") from exc
    with conn:
        acquired = conn.execute(
            text(f"SELECT pg_try_advisory_lock({key.text})"), {"key": _KEY}
        ).scalar()
        conn.commit()
        if not acquired:
            raise Refused(f"another sync is running against {display}", remedy=_BUSY_REMEDY)
        try:
            yield
        finally:
            conn.execute(text(f"SELECT pg_advisory_unlock({key.text})"), {"key": _KEY})
            conn.commit()
