"""One sync at a time per state database, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from syncagent.errors import Refused
from syncagent.state import StateStore


def test_a_second_run_is_refused_while_the_first_holds_the_lock(state_url: str) -> None:
    with StateStore.open(state_url) as first, StateStore.open(state_url) as second:
        with first.exclusive_run():
            with (
                pytest.raises(Refused, match="another sync is running") as caught,
                second.exclusive_run(),
            ):
                pytest.fail("the lock was granted twice")
            assert "password" not in str(caught.value)
        with second.exclusive_run():  # released: the next run may go
            pass


def test_the_lock_is_released_when_the_run_fails(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        with pytest.raises(RuntimeError), store.exclusive_run():
            raise RuntimeError("the run failed")
        with store.exclusive_run():
            pass
