"""Signed webhook requests already taken: a second use within the window is told apart, on
SQLite and PostgreSQL alike, and the expired ones are purged."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from syndication.store import Store
from syndication.store.replays import remember_signature
from syndication.store.schema import WebhookSignatureRow
from tests.conftest import FixedClock

WINDOW = timedelta(seconds=300)


def test_a_signature_is_new_once_until_its_window_ends(any_store: Store, clock: FixedClock) -> None:
    with any_store.transaction() as db:
        assert remember_signature(db, "a" * 64, expires_at=clock() + WINDOW, now=clock())
    with any_store.transaction() as db:
        assert not remember_signature(db, "a" * 64, expires_at=clock() + WINDOW, now=clock())
        assert remember_signature(db, "b" * 64, expires_at=clock() + WINDOW, now=clock())
    # When both windows are over, the next one purges them
    later = clock() + WINDOW
    with any_store.transaction() as db:
        assert remember_signature(db, "c" * 64, expires_at=later + WINDOW, now=later)
    with any_store.read() as db:
        assert db.scalar(select(func.count()).select_from(WebhookSignatureRow)) == 1
