"""Ops sessions, the failed-login throttle and shared keys live in the database, on SQLite and
PostgreSQL alike: every API process sees the same, and a copy of the tables opens no session."""
from __future__ import annotations

import threading
from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from syndication.store import Store
from syndication.store.schema import Base, LoginFailureRow, OpsSessionRow, SecretKeyRow
from syndication.store.sessions import (add_flash, clear_login_failures, create_session, drop_session, get_session,
                                        hash_session_id, login_retry_after, record_login_failure, shared_key,
                                        take_flash)
from tests.conftest import FixedClock

TTL = timedelta(hours=12)
WINDOW = timedelta(minutes=10)


def test_a_session_is_found_by_its_id_until_it_ends(any_store: Store, clock: FixedClock) -> None:
    # Given a session started now
    with any_store.transaction() as db:
        sid, created = create_session(db, "ops:1a2b3c", now=clock(), ttl=TTL)
    # Then its id finds it, with its actor and CSRF token; another id finds nothing
    with any_store.read() as db:
        found = get_session(db, sid, now=clock())
        assert found is not None and found.actor == "ops:1a2b3c" and found.csrf == created.csrf
        assert found.expires_at == clock() + TTL
        assert get_session(db, sid + "x", now=clock()) is None
    # When its time is up, it is gone, even though the row is still there
    with any_store.read() as db:
        assert get_session(db, sid, now=clock() + TTL - timedelta(seconds=1)) is not None
        assert get_session(db, sid, now=clock() + TTL) is None


def test_the_table_holds_no_session_id(any_store: Store, clock: FixedClock) -> None:
    # Given two sessions
    with any_store.transaction() as db:
        ids = [create_session(db, "ops:1a2b3c", now=clock(), ttl=TTL)[0] for _ in range(2)]
    # Then the table holds only the ids' SHA-256, so a copy of it opens no session
    with any_store.read() as db:
        rows = list(db.scalars(select(OpsSessionRow)))
    assert sorted(r.id_hash for r in rows) == sorted(hash_session_id(sid) for sid in ids)
    stored = " ".join(f"{r.id_hash} {r.actor} {r.csrf} {r.flash}" for r in rows)
    assert all(sid not in stored for sid in ids)


def test_a_new_session_purges_those_that_ended(any_store: Store, clock: FixedClock) -> None:
    with any_store.transaction() as db:
        create_session(db, "ops:old", now=clock(), ttl=TTL)
    clock.now += TTL
    with any_store.transaction() as db:
        create_session(db, "ops:new", now=clock(), ttl=TTL)
    with any_store.read() as db:
        assert [r.actor for r in db.scalars(select(OpsSessionRow))] == ["ops:new"]


def test_logging_out_ends_the_session(any_store: Store, clock: FixedClock) -> None:
    with any_store.transaction() as db:
        sid, _ = create_session(db, "ops:1a2b3c", now=clock(), ttl=TTL)
        other, _ = create_session(db, "ops:1a2b3c", now=clock(), ttl=TTL)
    with any_store.transaction() as db:
        drop_session(db, sid)
        drop_session(db, "never-issued")
    with any_store.read() as db:
        assert get_session(db, sid, now=clock()) is None
        assert get_session(db, other, now=clock()) is not None


def test_flash_messages_are_shown_once(any_store: Store, clock: FixedClock) -> None:
    # Given two messages left for a session (by whichever process handled the action)
    with any_store.transaction() as db:
        sid, _ = create_session(db, "ops:1a2b3c", now=clock(), ttl=TTL)
    for message in ("Delivery 7 is pending again.", "Channel x paused."):
        with any_store.transaction() as db:
            add_flash(db, sid, message)
    with any_store.read() as db:
        assert get_session(db, sid, now=clock()).flash == ("Delivery 7 is pending again.", "Channel x paused.")  # type: ignore[union-attr]
    # When the next page takes them, they come in order, and only once
    with any_store.transaction() as db:
        assert take_flash(db, sid) == ["Delivery 7 is pending again.", "Channel x paused."]
    with any_store.transaction() as db:
        assert take_flash(db, sid) == []
        add_flash(db, "never-issued", "lost")  # no session: nothing to keep it for
        assert take_flash(db, "never-issued") == []


def test_failed_logins_block_a_client_until_its_window_ends(any_store: Store, clock: FixedClock) -> None:
    start = clock()

    def retry_after(client: str = "192.0.2.7") -> timedelta | None:
        with any_store.read() as db:
            return login_retry_after(db, client, now=clock(), limit=3, window=WINDOW)

    def fail(client: str = "192.0.2.7") -> None:
        with any_store.transaction() as db:
            record_login_failure(db, client, now=clock(), window=WINDOW)

    # Given two failures a minute apart, the client may still try
    fail()
    clock.now += timedelta(minutes=1)
    fail()
    assert retry_after() is None
    # When a third comes within the window, it waits until the window (from the first) ends
    clock.now += timedelta(minutes=1)
    fail()
    assert retry_after() == start + WINDOW - clock()
    # And another address is not held up by it
    assert retry_after("198.51.100.1") is None
    # When the window has ended, it may try again, and a new failure starts a new window
    clock.now = start + WINDOW
    assert retry_after() is None
    fail()
    assert retry_after() is None
    with any_store.read() as db:
        row = db.get(LoginFailureRow, "192.0.2.7")
        assert row is not None and (row.failures, row.window_started) == (1, clock())


def test_a_successful_login_forgets_the_failures(any_store: Store, clock: FixedClock) -> None:
    for _ in range(3):
        with any_store.transaction() as db:
            record_login_failure(db, "192.0.2.7", now=clock(), window=WINDOW)
    with any_store.transaction() as db:
        clear_login_failures(db, "192.0.2.7")
    with any_store.read() as db:
        assert login_retry_after(db, "192.0.2.7", now=clock(), limit=3, window=WINDOW) is None
        assert db.get(LoginFailureRow, "192.0.2.7") is None


def test_failures_from_many_processes_at_once_are_all_counted(any_store: Store, clock: FixedClock) -> None:
    # Given eight API processes' failures for one client arriving at the same moment
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def fail() -> None:
        try:
            barrier.wait()
            with any_store.transaction() as db:
                record_login_failure(db, "192.0.2.7", now=clock(), window=WINDOW)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then none is lost
    assert errors == []
    with any_store.read() as db:
        assert db.get(LoginFailureRow, "192.0.2.7").failures == 8  # type: ignore[union-attr]


def test_a_shared_key_is_made_once_and_the_same_for_every_process(any_store: Store, clock: FixedClock) -> None:
    # Given several processes asking for the cookie key at their first start, at once
    barrier = threading.Barrier(4)
    keys: list[bytes] = []

    def ask() -> None:
        barrier.wait()
        with any_store.transaction() as db:
            keys.append(shared_key(db, "ops-session-cookie", now=clock()))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then they all got the same 32 random bytes, and a later start gets them too
    assert len(keys) == 4 and len(set(keys)) == 1 and len(keys[0]) == 32
    with any_store.transaction() as db:
        assert shared_key(db, "ops-session-cookie", now=clock()) == keys[0]
        assert shared_key(db, "another", now=clock()) != keys[0]
        assert len(list(db.scalars(select(SecretKeyRow)))) == 2


def test_the_migration_creates_these_tables_as_the_models_declare(any_store: Store) -> None:
    tables = {"ops_sessions", "login_failures", "secret_keys"}
    with any_store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if any(name in repr(d) for name in tables)] == []
