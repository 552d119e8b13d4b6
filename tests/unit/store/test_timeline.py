"""An article's timeline reads in time order, whichever process committed its step first."""
from __future__ import annotations

from datetime import timedelta

from syndication.store import Store
from syndication.store.timeline import add_step, steps_of
from tests.conftest import FixedClock


def test_steps_are_listed_in_time_order_not_in_commit_order(store: Store, clock: FixedClock) -> None:
    # Given a render whose step commits after a planning that happened later (two workers)
    with store.transaction() as session:
        add_step(session, "art-1", "stored", now=clock())
    with store.transaction() as session:
        add_step(session, "art-1", "rendered", now=clock() + timedelta(milliseconds=440))
    with store.transaction() as session:
        add_step(session, "art-1", "delivery.planned", now=clock() + timedelta(milliseconds=10))
    # When the timeline is read (the /ops page, the API, `articles show`)
    with store.read() as session:
        steps = steps_of(session, "art-1")
    # Then it is in time order
    assert [s.kind for s in steps] == ["stored", "delivery.planned", "rendered"]
