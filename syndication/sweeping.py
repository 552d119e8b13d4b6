"""The sweeper: finds work that was committed but never handed over, or handed over and lost."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from syndication.publishing import Clock, Dispatcher, utcnow
from syndication.store import Store
from syndication.store.feed_state import stale_feeds
from syndication.store.outbox import due_for_dispatch, mark_dispatched

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Swept:
    events: int
    feeds: int


def sweep(store: Store, dispatcher: Dispatcher, *, grace: timedelta, clock: Clock = utcnow) -> Swept:
    """Re-dispatch outbox events older than ``grace`` that are not processed, and ask for renders of
    feeds whose changes are older than ``grace`` and still not rendered.

    Safe to run often and concurrently: events are idempotent by id and renders are throttled.
    """
    now = clock()
    with store.read() as session:
        events = due_for_dispatch(session, now=now, grace=grace)
        feeds = stale_feeds(session, dirty_before=now - grace)
    if feeds:
        dispatcher.request_renders(feeds)
    if events:
        dispatcher.send_events(events)
        with store.transaction() as session:
            mark_dispatched(session, [e.id for e in events], now=clock())
    if events or feeds:
        log.info("sweeper re-dispatched", extra={"events": len(events), "feeds": len(feeds)})
    return Swept(len(events), len(feeds))
