"""A transaction the database rolls back as a deadlock victim is run again, not reported as a failure."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from syndication.store import Store, retried
from syndication.store.feed_state import all_states, mark_dirty
from tests.conftest import FixedClock, store_for


def crossed(store: Store, first: str, second: str, barrier: threading.Barrier, runs: list[str]) -> None:
    """One transaction counting a render of ``first``, then of ``second``; its first run waits
    until the other transaction holds its own first row."""
    runs.append(first)
    with store.transaction() as session:
        session.execute(text("UPDATE feed_state SET renders = renders + 1 WHERE feed_key = :k"), {"k": first})
        if runs.count(first) == 1:
            barrier.wait(10)
        session.execute(text("UPDATE feed_state SET renders = renders + 1 WHERE feed_key = :k"), {"k": second})


@pytest.mark.postgres
def test_of_two_transactions_locking_rows_in_opposite_orders_each_commits_exactly_once(
        tmp_path: Path, clock: FixedClock) -> None:
    store = store_for("postgres", tmp_path)
    try:
        with store.transaction() as session:
            mark_dirty(session, [("a", ""), ("b", "")], now=clock())
        # Given two transactions that take rows a and b in opposite orders, at the same moment:
        # PostgreSQL aborts one of them as a deadlock victim
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []
        runs: list[str] = []

        def run(first: str, second: str) -> None:
            try:
                retried(lambda: crossed(store, first, second, barrier, runs))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        # When each runs through ``retried``
        threads = [threading.Thread(target=run, args=pair) for pair in (("a", "b"), ("b", "a"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        # Then one was run again, and both commit, each exactly once: every row counts two renders
        assert errors == []
        assert sorted(runs) in (["a", "a", "b"], ["a", "b", "b"])
        with store.read() as session:
            assert {s.feed_key: s.renders for s in all_states(session)} == {"a": 2, "b": 2}
    finally:
        store.dispose()


def test_other_errors_are_raised_at_once(store: Store) -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        with store.transaction() as session:
            session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(DBAPIError):
        retried(broken)
    assert calls == [1]
