"""Scheduled (embargoed) articles: held out of every feed and channel until their time, then
released once, by whichever alarm rings first."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import feedparser

from config import SiteConfig
from syndication.channels.preview import PreviewChannel
from syndication.channels.registry import Channels
from syndication.delivering import run_delivery
from syndication.publishing import ARM_AHEAD, Outcome, announce, parse_batch, publish, unpublish
from syndication.releasing import arm_next, release_and_arm, release_due
from syndication.rendering import render_feed
from syndication.social import plan_event
from syndication.store import Store
from syndication.store.articles import get_article, latest_for_feed
from syndication.store.deliveries import deliveries_of
from syndication.store.feed_state import all_states
from syndication.store.outbox import count_pending
from syndication.store.timeline import steps_of
from tests.conftest import FixedClock, article_json
from tests.unit.test_publishing import RecordingDispatcher


def schedule(store: Store, site: SiteConfig, clock: FixedClock, at: datetime, **overrides: object) -> Outcome:
    """The CMS sends article 1 (section Embargoed) with ``published_at`` = ``at``."""
    articles, refused = parse_batch([article_json(1, published_at=at.isoformat(), section="Embargoed",
                                                  **overrides)], site=site)
    assert not refused
    return publish(store, site, articles, clock=clock)


def in_feed(store: Store, key: str = "all") -> list[str]:
    with store.read() as session:
        return [s.article.id for s in latest_for_feed(session, key, 50)]


def kinds(store: Store) -> list[str]:
    with store.read() as session:
        return [s.kind for s in steps_of(session, "art-1")]


def test_a_future_article_is_stored_scheduled_and_is_in_no_feed(store: Store, site: SiteConfig,
                                                                clock: FixedClock, tmp_path: Path) -> None:
    # When the CMS sends an article whose published_at is an hour ahead
    at = clock() + timedelta(hours=1)
    outcome = schedule(store, site, clock, at)
    # Then the answer says scheduled, and the article is stored as such
    assert [(a.article_id, a.status, a.event_id) for a in outcome.accepted] == [("art-1", "scheduled", None)]
    with store.read() as session:
        stored = get_article(session, "art-1")
        states = all_states(session)
    assert stored is not None and stored.status == "scheduled"
    # And nothing announces it: no event, no feed (not even its section's name), nothing to render
    assert outcome.events == [] and outcome.feed_keys == set() and states == []
    assert outcome.releases == [at]
    render_feed(store, site, tmp_path, "all", clock=clock)
    assert feedparser.parse((tmp_path / "all.atom").read_bytes()).entries == []
    # And its timeline says when it is due
    assert kinds(store) == ["stored", "scheduled"]


def test_only_a_release_due_soon_is_armed_when_it_is_published(store: Store, site: SiteConfig,
                                                               clock: FixedClock) -> None:
    queue = RecordingDispatcher()
    # Given one article due in 5 s and another due tomorrow
    soon, later = clock() + timedelta(seconds=5), clock() + timedelta(days=1)
    announce(store, queue, schedule(store, site, clock, soon), clock=clock)
    announce(store, queue, schedule(store, site, clock, later, id="art-2"), clock=clock)
    # Then only the one due within ARM_AHEAD got an alarm (no long ETA); nothing else was sent
    assert soon - clock() <= ARM_AHEAD < later - clock()
    assert queue.releases == [soon] and queue.events == [] and queue.renders == []
    # And the sweeper's arming looks at the soonest only
    assert arm_next(store, queue, clock=clock) == soon


def test_at_its_time_it_is_released_once_into_its_feeds_and_announced(any_store: Store, site: SiteConfig,
                                                                      clock: FixedClock) -> None:
    at = clock() + timedelta(seconds=5)
    schedule(any_store, site, clock, at)
    # When a release runs a little early
    clock.now = at - timedelta(milliseconds=1)
    assert release_due(any_store, site, clock=clock).accepted == []
    assert in_feed(any_store) == []
    # And then at its time, twice (two alarms ringing)
    clock.now = at
    queue = RecordingDispatcher()
    released = release_and_arm(any_store, site, queue, clock=clock)
    assert release_and_arm(any_store, site, queue, clock=clock).accepted == []
    # Then it was released once: in its feeds, with one event that posts it, and a timeline step
    assert [(a.article_id, a.status) for a in released.accepted] == [("art-1", "released")]
    assert in_feed(any_store) == in_feed(any_store, "section/embargoed") == ["art-1"]
    assert released.feed_keys >= {"all", "section/embargoed"}
    assert [e.kind for e in released.events] == ["article.released"]
    assert queue.events == [[released.events[0].id]] and sorted(queue.renders[0]) == sorted(released.feed_keys)
    assert kinds(any_store)[-1] == "released"
    with any_store.read() as session:
        assert get_article(session, "art-1").status == "published"  # type: ignore[union-attr]


def test_an_overdue_release_is_posted_however_late(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given an article scheduled for an hour ahead, and a stack that was down for two days after that
    at = clock() + timedelta(hours=1)
    schedule(store, site, clock, at)
    clock.now = at + timedelta(days=2)
    # When the first sweep after the restart releases it
    released = release_due(store, site, clock=clock)
    channel = PreviewChannel(clock=clock)
    [delivery] = plan_event(store, site, {"preview": channel}, released.events[0].id, clock=clock)
    # Then it is posted: max_age_hours counts from the release, not from published_at
    assert run_delivery(store, site, Channels({"preview": channel}), delivery, clock=clock).state == "posted"
    assert len(channel.posts) == 1
    with store.read() as session:
        released_step = [s for s in steps_of(session, "art-1") if s.kind == "released"][0]
    assert released_step.detail["late_ms"] == 2 * 86_400_000


def test_moving_the_time_releases_at_the_new_time_only(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    first = clock() + timedelta(seconds=5)
    schedule(store, site, clock, first)
    # When the CMS moves it an hour later
    moved = schedule(store, site, clock, first + timedelta(hours=1))
    assert [a.status for a in moved.accepted] == ["scheduled"]
    # Then the old time releases nothing, and the new time releases it
    clock.now = first
    assert release_due(store, site, clock=clock).accepted == [] and in_feed(store) == []
    clock.now = first + timedelta(hours=1)
    assert [a.article_id for a in release_due(store, site, clock=clock).accepted] == ["art-1"]


def test_moving_the_time_into_the_past_publishes_it_now(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    schedule(store, site, clock, clock() + timedelta(hours=1))
    # When the CMS lifts the embargo (published_at now)
    lifted = schedule(store, site, clock, clock())
    # Then it is published at once and announced as released (so it is posted, its age counted from now)
    assert [e.kind for e in lifted.events] == ["article.released"]
    assert in_feed(store) == ["art-1"] and lifted.releases == []


def test_an_update_before_the_release_is_what_is_released(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    at = clock() + timedelta(minutes=5)
    schedule(store, site, clock, at)
    # When the CMS updates the scheduled article
    updated = schedule(store, site, clock, at, title="Embargoed, final headline")
    # Then it stays scheduled and unannounced, as a new revision
    assert [(a.status, a.revision) for a in updated.accepted] == [("scheduled", 2)]
    assert updated.events == []
    with store.read() as session:
        assert count_pending(session) == 0
    # And at its time the latest revision is released
    clock.now = at
    released = release_due(store, site, clock=clock)
    assert [(e.revision, e.kind) for e in released.events] == [(2, "article.released")]
    with store.read() as session:
        assert [s.article.title for s in latest_for_feed(session, "all", 5)] == ["Embargoed, final headline"]


def test_withdrawing_before_the_release_means_it_never_comes_out(store: Store, site: SiteConfig,
                                                                 clock: FixedClock) -> None:
    at = clock() + timedelta(minutes=5)
    schedule(store, site, clock, at)
    # When the newsroom withdraws it before its time
    withdrawn = unpublish(store, "art-1", clock=clock)
    channel = PreviewChannel(clock=clock)
    assert plan_event(store, site, {"preview": channel}, withdrawn.events[0].id, clock=clock) == []
    # Then its time comes and goes without a release, a feed entry or a post
    clock.now = at + timedelta(minutes=1)
    assert release_due(store, site, clock=clock).accepted == []
    assert in_feed(store) == [] and channel.posts == []
    with store.read() as session:
        assert deliveries_of(session, "art-1") == []
