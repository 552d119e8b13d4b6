"""After a commit, the work is handed to the task queue; what the queue never got, the sweeper hands over later."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from config import SiteConfig
from syndication.publishing import Dispatcher, Outcome, announce, parse_batch, publish, unpublish
from syndication.rendering import render_feed
from syndication.store import Store
from syndication.store.outbox import REDISPATCH_AFTER, Event, mark_processed
from syndication.store.schema import OutboxRow
from syndication.store.deliveries import ensure_delivery
from syndication.sweeping import queue_deliveries, sweep
from tests.conftest import FixedClock, article_json
from tests.support.brokers import celery_dispatcher, stopped_broker
from workers.dispatch import CeleryDispatcher

GRACE = timedelta(seconds=5)


class RecordingDispatcher:
    """A task queue that accepts everything and remembers what it was given."""

    def __init__(self, redispatch_after: timedelta = REDISPATCH_AFTER) -> None:
        self.redispatch_after = redispatch_after
        self.renders: list[list[str]] = []
        self.events: list[list[str]] = []
        self.deliveries: list[list[int]] = []
        self.releases: list[datetime] = []

    def request_renders(self, feed_keys: Iterable[str]) -> None:
        self.renders.append(list(feed_keys))

    def send_events(self, events: Sequence[Event]) -> None:
        self.events.append([e.id for e in events])

    def send_deliveries(self, delivery_ids: Sequence[int]) -> None:
        self.deliveries.append(list(delivery_ids))

    def schedule_release(self, at: datetime) -> None:
        self.releases.append(at)


def _is_dispatcher(d: Dispatcher) -> Dispatcher:  # the recorder satisfies the real protocol
    return d


@pytest.fixture
def broker_down(tmp_path: Path) -> CeleryDispatcher:
    """The real dispatcher, pointed at a redis-server that has stopped."""
    return celery_dispatcher(stopped_broker(tmp_path / "broker").url)


def store_articles(store: Store, site: SiteConfig, clock: FixedClock, *payloads: dict[str, object]) -> Outcome:
    articles, refused = parse_batch(list(payloads), site=site)
    assert refused == []
    return publish(store, site, articles, clock=clock)


def dispatch_state(store: Store) -> dict[str, tuple[datetime | None, int]]:
    with store.read() as session:
        return {r.id: (r.dispatched_at, r.dispatch_count) for r in session.scalars(select(OutboxRow))}


def test_announcing_hands_the_work_over_and_marks_the_events_dispatched(
        store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given two articles just committed
    outcome = store_articles(store, site, clock, article_json(1), article_json(2, section="Sport"))
    queue = _is_dispatcher(RecordingDispatcher())
    # When they are announced to a working queue
    clock.now += timedelta(milliseconds=30)
    assert announce(store, queue, outcome, clock=clock) is True
    # Then the queue was asked to render every touched feed and to handle both events
    assert queue.renders == [sorted(outcome.feed_keys)]
    assert {"all", "section/politics", "section/sport"} <= set(queue.renders[0])
    assert queue.events == [[e.id for e in outcome.events]]
    # And the outbox records that they were handed over, once, at that moment
    assert dispatch_state(store) == {e.id: (clock.now, 1) for e in outcome.events}


def test_announcing_a_withdrawal_hands_over_its_event(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given an article withdrawn by the newsroom
    store_articles(store, site, clock, article_json(1))
    outcome = unpublish(store, "art-1", clock=clock)
    queue = RecordingDispatcher()
    # When it is announced
    assert announce(store, queue, outcome, clock=clock)
    # Then the withdrawal goes to the queue (so the social posts are deleted) and its feeds re-render
    assert queue.events == [[outcome.events[0].id]]
    assert "all" in queue.renders[0]
    assert dispatch_state(store)[outcome.events[0].id] == (clock.now, 1)


def test_when_the_broker_is_down_the_events_wait_for_the_sweeper(
        store: Store, site: SiteConfig, clock: FixedClock, broker_down: CeleryDispatcher) -> None:
    # Given an article committed while the broker is unreachable
    outcome = store_articles(store, site, clock, article_json(1))
    # When it is announced
    ok = announce(store, _is_dispatcher(broker_down), outcome, clock=clock)
    # Then the caller hears it failed (without an exception: the article is safely stored)
    assert ok is False
    # And the event is still waiting, never marked as handed over
    assert dispatch_state(store) == {outcome.events[0].id: (None, 0)}

    # When the sweeper runs before the grace period is over
    queue = RecordingDispatcher()
    clock.now += GRACE / 2
    early = sweep(store, queue, grace=GRACE, clock=clock)
    # Then it leaves the work alone (announce may still be in flight)
    assert (early.events, early.feeds) == (0, 0)
    assert queue.events == [] and queue.renders == []

    # When the broker is back and the sweeper runs after the grace period
    clock.now += GRACE
    swept = sweep(store, queue, grace=GRACE, clock=clock)
    # Then it hands over the lost event and asks for the feeds that were never rendered
    assert swept.events == 1
    assert queue.events == [[outcome.events[0].id]]
    assert queue.renders == [sorted(outcome.feed_keys)]
    assert dispatch_state(store) == {outcome.events[0].id: (clock.now, 1)}


def test_the_sweeper_stops_once_the_event_is_processed(
        store: Store, site: SiteConfig, clock: FixedClock, broker_down: CeleryDispatcher) -> None:
    # Given an event announced while the broker was down, then swept
    outcome = store_articles(store, site, clock, article_json(1))
    assert announce(store, broker_down, outcome, clock=clock) is False
    queue = RecordingDispatcher()
    clock.now += GRACE * 2
    sweep(store, queue, grace=GRACE, clock=clock)
    assert len(queue.events) == 1
    # When a worker processes it
    with store.transaction() as session:
        assert mark_processed(session, outcome.events[0].id, now=clock.now)
    # Then later sweeps never send it again
    clock.now += GRACE * 10
    sweep(store, queue, grace=GRACE, clock=clock)
    assert len(queue.events) == 1


def test_the_sweeper_asks_again_for_an_event_handed_over_but_lost(
        store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given an event the queue accepted, but whose worker died before processing it
    outcome = store_articles(store, site, clock, article_json(1))
    assert announce(store, RecordingDispatcher(), outcome, clock=clock)
    queue = RecordingDispatcher()
    # When the sweeper runs while a backlog could still explain the delay
    clock.now += REDISPATCH_AFTER / 2
    sweep(store, queue, grace=GRACE, clock=clock)
    # Then it is not sent again yet (a backlog must not turn into a flood of duplicates)
    assert queue.events == []
    # When it is still unprocessed after the redispatch delay
    clock.now += REDISPATCH_AFTER
    sweep(store, queue, grace=GRACE, clock=clock)
    # Then the event is handed over a second time
    assert queue.events == [[outcome.events[0].id]]
    assert dispatch_state(store)[outcome.events[0].id] == (clock.now, 2)
    # And a third time only after twice as long
    clock.now += REDISPATCH_AFTER * 1.5
    sweep(store, queue, grace=GRACE, clock=clock)
    assert len(queue.events) == 1
    clock.now += REDISPATCH_AFTER
    sweep(store, queue, grace=GRACE, clock=clock)
    assert len(queue.events) == 2


def test_the_sweeper_asks_for_renders_of_stale_feeds_only(
        store: Store, site: SiteConfig, clock: FixedClock, tmp_path: Path) -> None:
    # Given a politics article and a sport article, both stored
    store_articles(store, site, clock, article_json(1, section="Politics", tags=[], authors=[]),
                   article_json(2, section="Sport", tags=[], authors=[]))
    # And the main feed and the politics feed rendered since, but not the sport feed
    for key in ("all", "section/politics"):
        render_feed(store, site, tmp_path / "feeds", key, clock=clock)
    # When the sweeper runs after the grace period
    clock.now += GRACE * 2
    queue = RecordingDispatcher()
    swept = sweep(store, queue, grace=GRACE, clock=clock)
    # Then it asks for the sport feed alone
    assert queue.renders == [["section/sport"]]
    assert swept.feeds == 1


def test_a_feed_changed_again_after_its_render_is_stale_again(
        store: Store, site: SiteConfig, clock: FixedClock, tmp_path: Path) -> None:
    # Given a rendered politics feed
    store_articles(store, site, clock, article_json(1, tags=[], authors=[]))
    for key in ("all", "section/politics"):
        render_feed(store, site, tmp_path / "feeds", key, clock=clock)
    # When a new politics article arrives and nobody renders it
    clock.now += timedelta(minutes=1)
    store_articles(store, site, clock, article_json(2, tags=[], authors=[]))
    queue = RecordingDispatcher()
    # Then a sweep inside the grace period waits, and one after it asks for both feeds
    sweep(store, queue, grace=GRACE, clock=clock)
    assert queue.renders == []
    clock.now += GRACE * 2
    sweep(store, queue, grace=GRACE, clock=clock)
    assert queue.renders == [["all", "section/politics"]]


def test_a_lost_delivery_message_is_sent_again_at_the_configured_pace(store: Store, clock: FixedClock) -> None:
    # Given a deployment configured to re-send lost work after seconds, not a minute
    after = timedelta(seconds=5)
    queue = RecordingDispatcher(redispatch_after=after)
    # And a delivery a worker queued, whose message was lost (a SIGKILLed worker)
    with store.transaction() as session:
        delivery, _ = ensure_delivery(session, article_id="art-1", revision=1, channel="preview", action="post",
                                      text="t", now=clock())
    queue_deliveries(store, queue, [delivery.id], clock=clock)
    # When the configured delay has passed, the sweeper sends it again, and not before
    clock.now += after - timedelta(seconds=1)
    sweep(store, queue, grace=GRACE, clock=clock)
    assert queue.deliveries == [[delivery.id]]
    clock.now += timedelta(seconds=1)
    sweep(store, queue, grace=GRACE, clock=clock)
    assert queue.deliveries == [[delivery.id], [delivery.id]]


def test_the_sweeper_re_sends_at_the_configured_pace(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given a deployment configured to re-send lost work after seconds, not a minute
    after = timedelta(seconds=5)
    queue = RecordingDispatcher(redispatch_after=after)
    # And an event the API handed over, then lost
    outcome = store_articles(store, site, clock, article_json(1))
    assert announce(store, queue, outcome, clock=clock)
    # When the configured delay has passed (not the default minute), the sweeper re-sends it
    clock.now += after - timedelta(seconds=1)
    sweep(store, queue, grace=GRACE, clock=clock)
    assert len(queue.events) == 1
    clock.now += timedelta(seconds=1)
    sweep(store, queue, grace=GRACE, clock=clock)
    assert len(queue.events) == 2
    # Then the next re-send waits twice the configured delay (10 s), not two minutes
    clock.now += after * 2 - timedelta(seconds=1)
    sweep(store, queue, grace=GRACE, clock=clock)
    assert len(queue.events) == 2
    clock.now += timedelta(seconds=1)
    sweep(store, queue, grace=GRACE, clock=clock)
    assert len(queue.events) == 3
