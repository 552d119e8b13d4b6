"""The sweeper: finds work that was committed but never handed over, or handed over and lost."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from syndication.publishing import Clock, Dispatcher, utcnow
from syndication.store import Store
from syndication.store.deliveries import due_deliveries, mark_queued, requeue_all_pending, unmark_queued
from syndication.store.feed_state import stale_feeds
from syndication.store.outbox import due_for_dispatch, mark_dispatched, redispatch_all_unprocessed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Swept:
    events: int
    feeds: int
    deliveries: int = 0


def sweep(store: Store, dispatcher: Dispatcher, *, grace: timedelta, clock: Clock = utcnow) -> Swept:
    """Re-dispatch outbox events older than ``grace`` that are not processed, ask for renders of
    feeds whose changes are older than ``grace`` and still not rendered, and queue deliveries
    that are due (a retry's time has come, or a claim's lease expired after a crash). A re-sent
    event is due again the dispatcher's ``redispatch_after`` later, then twice as long
    (``redispatch_delay``).

    Safe to run often and concurrently: events are idempotent by id and renders are throttled.
    """
    now = clock()
    with store.read() as session:
        events = due_for_dispatch(session, now=now, grace=grace)
        feeds = stale_feeds(session, dirty_before=now - grace)
        deliveries = due_deliveries(session, now=now)
    if feeds:
        dispatcher.request_renders(feeds)
    if events:
        dispatcher.send_events(events)
        with store.transaction() as session:
            mark_dispatched(session, [e.id for e in events], now=clock(),
                            redispatch_after=dispatcher.redispatch_after)
    if deliveries:
        queue_deliveries(store, dispatcher, deliveries, clock=clock)
    if events or feeds or deliveries:
        log.info("sweeper dispatched", extra={"events": len(events), "feeds": len(feeds),
                                              "deliveries": len(deliveries)})
    return Swept(len(events), len(feeds), len(deliveries))


def queue_deliveries(store: Store, dispatcher: Dispatcher, ids: list[int], *, clock: Clock = utcnow) -> None:
    """Send a message for each delivery, noting it as queued *first*: the task may run, and
    reschedule itself, before this process could note anything after sending. One still
    pending the dispatcher's ``redispatch_after`` later is sent again by the sweeper."""
    with store.transaction() as session:
        mark_queued(session, ids, now=clock(), redispatch_after=dispatcher.redispatch_after)
    try:
        dispatcher.send_deliveries(ids)
    except Exception:
        with store.transaction() as session:
            unmark_queued(session, ids)  # not sent: due for the next sweep
        raise


def forget_dispatches(store: Store, *, clock: Clock = utcnow) -> tuple[int, int]:
    """The broker restarted and may have lost queued messages: make every unprocessed event and
    every queued pending delivery due for the next sweep. Duplicates are harmless."""
    with store.transaction() as session:
        events = redispatch_all_unprocessed(session, now=clock())
        deliveries = requeue_all_pending(session, now=clock())
    log.warning("broker restarted; re-sending unprocessed work", extra={"events": events, "deliveries": deliveries})
    return events, deliveries
