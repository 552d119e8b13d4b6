"""Releasing scheduled (embargoed) articles at their time.

The time is held in the database (the article's ``published_at``, status ``scheduled``); a
Celery ETA is only the alarm clock. Three things ring it, and any of them is enough:

* the publish that scheduled an article, when it is due within ``ARM_AHEAD``;
* every sweep (beat, every couple of seconds): overdue articles are released at once (after
  a restart, a lost message, a Redis restart), and the next release due within ``ARM_AHEAD``
  is armed;
* a release that released something arms the next one.

So no ETA is ever longer than ``ARM_AHEAD`` (seconds, against a visibility timeout of an
hour: a long ETA would be handed to a second worker and run twice), and a lost one costs at
most a sweep interval. Extra alarms are harmless: one conditional UPDATE decides which
release takes an article.

>>> outcome = release_due(store, site, clock=utcnow)
>>> announce(store, dispatcher, outcome)
"""
from __future__ import annotations

import logging
from datetime import datetime

from config import SiteConfig
from syndication.feeds.catalog import feeds_for
from syndication.publishing import ARM_AHEAD, Accepted, Clock, Dispatcher, Outcome, announce, utcnow
from syndication.store import Store
from syndication.store.articles import add_memberships, next_release_at, release_scheduled
from syndication.store.feed_state import mark_dirty
from syndication.store.outbox import RELEASED, add_events
from syndication.store.timeline import add_steps

log = logging.getLogger(__name__)


def release_due(store: Store, site: SiteConfig, *, clock: Clock = utcnow) -> Outcome:
    """Publish every scheduled article whose time has come, in one transaction: into its feeds,
    an ``article.released`` event each (so it is posted; the planner skips an imported one),
    a ``released`` step each.

    The caller hands the outcome to ``announce``. Safe to call at any time, from many processes.
    """
    now = clock()
    outcome = Outcome()
    with store.read() as session:  # most sweeps find nothing due: no write lock for them (SQLite has one)
        due = next_release_at(session)
    if due is None or due > now:
        return outcome
    with store.transaction() as session:
        released = release_scheduled(session, now=now)
        if not released:
            return outcome
        labels: dict[str, str] = {}
        items = []
        for stored in released:
            specs = feeds_for(stored.article, site.feeds)
            labels.update((s.key, s.label) for s in specs)
            items.append((stored.article, [s.key for s in specs]))
        add_memberships(session, items)
        mark_dirty(session, labels.items(), now=now)
        events = add_events(session, [(RELEASED, s.article.id, s.revision) for s in released], now=now)
        event_of = {e.article_id: e for e in events}
        steps = []
        for stored in released:
            event = event_of.get(stored.article.id)
            late_ms = round((now - stored.article.published_at).total_seconds() * 1000)
            steps.append((stored.article.id, "released", {"revision": stored.revision, "late_ms": late_ms,
                                                          **({"event_id": event.id} if event else {})}))
            outcome.accepted.append(Accepted(stored.article.id, stored.revision, "released",
                                             event.id if event else None))
        add_steps(session, steps, now=now)
    outcome.events = events
    outcome.feed_keys = set(labels)
    log.info("scheduled articles released", extra={"count": len(released), "feeds": len(labels),
                                                   "articles": [s.article.id for s in released][:20]})
    return outcome


def arm_next(store: Store, dispatcher: Dispatcher, *, clock: Clock = utcnow) -> datetime | None:
    """Arm the next release if it is due within ``ARM_AHEAD``; returns its time (or None)."""
    with store.read() as session:
        at = next_release_at(session)
    if at is None or at - clock() > ARM_AHEAD:
        return None
    dispatcher.schedule_release(at)
    return at


def release_and_arm(store: Store, site: SiteConfig, dispatcher: Dispatcher, *, clock: Clock = utcnow,
                    arm: bool = True) -> Outcome:
    """Release what is due, hand it over, and arm the next release (what the sweeper, a worker
    that starts and a release alarm each do). Returns what was released.

    A dispatch that fails is left to the sweeper, as for any publish (``announce``).
    """
    outcome = release_due(store, site, clock=clock)
    if outcome.accepted:
        announce(store, dispatcher, outcome, clock=clock)
    if arm:
        try:
            arm_next(store, dispatcher, clock=clock)
        except Exception as exc:  # noqa: BLE001 - any broker failure: the next sweep arms it again
            log.warning("could not arm the next release; the sweeper will", extra={"error": repr(exc)})
    return outcome
