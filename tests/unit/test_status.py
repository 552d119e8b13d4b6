"""An operator asks "is everything all right?" and gets queues, workers, outbox, channels, feeds,
failures — and a list of problems that is empty only when nothing needs attention."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from config import SiteConfig
from syndication.publishing import parse_batch, publish
from syndication.rendering import render_feed
from syndication.status import collect_status
from syndication.store import Store
from syndication.store.deliveries import claim, ensure_delivery, mark_failed, mark_posted, pause_channel
from syndication.store.outbox import add_event, due_for_dispatch, mark_processed
from tests.conftest import FixedClock, article_json

ALL_GOOD = {"queues": {"feeds": 0, "social": 0, "control": 0}, "workers": ["feeds@h", "social@h"]}


def site_with_budget(posts: int, window_s: int) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": {"title": "Status Gazette", "base_url": "https://news.test.example/"},
        "channels": {"preview": {"posts_per_window": posts, "window_s": window_s}},
    })


def publish_one(store: Store, site: SiteConfig, clock: FixedClock, n: int = 1) -> None:
    articles, refused = parse_batch([article_json(n)], site=site)
    assert not refused
    publish(store, site, articles, clock=clock)


def settle_outbox(store: Store, clock: FixedClock) -> None:
    with store.transaction() as session:
        for event in due_for_dispatch(session, now=clock() + timedelta(days=1), grace=timedelta(0)):
            mark_processed(session, event.id, now=clock())


def delivery(store: Store, clock: FixedClock, *, article: str, state: str, channel: str = "preview",
             at_offset: timedelta = timedelta(0)) -> int:
    now = clock() + at_offset
    with store.transaction() as session:
        d, _ = ensure_delivery(session, article_id=article, revision=1, channel=channel, action="post",
                               text="t", now=now)
        if state in ("posted", "failed"):
            assert claim(session, d.id, now=now, lease=timedelta(seconds=30))
            if state == "posted":
                mark_posted(session, d.id, remote_id="r1", remote_url=None, now=now)
            else:
                mark_failed(session, d.id, error="HTTP 503 from the service", now=now)
    return d.id


def test_a_quiet_healthy_pipeline_has_no_problems(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given a published article whose event was processed, its feeds changed seconds ago
    publish_one(store, site, clock)
    settle_outbox(store, clock)
    # When the status is collected with the broker answering and workers online
    status = collect_status(store, site, now=clock(), **ALL_GOOD)
    # Then the JSON has exactly the seven sections
    data = status.as_json()
    assert set(data) == {"queues", "workers", "outbox", "channels", "feeds", "failures", "hubs", "scheduled"}
    assert data["queues"] == {"feeds": 0, "social": 0, "control": 0}
    assert data["workers"] == ["feeds@h", "social@h"]
    assert data["outbox"] == {"pending": 0, "oldest_at": None, "lag_s": 0.0}
    assert data["failures"] == {"count": 0, "by_channel": {}, "recent": []}
    # And feeds changed seconds ago are not yet a problem
    assert status.problems == []


def test_a_broker_that_cannot_be_asked_is_a_problem(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given the broker's view could not be had
    status = collect_status(store, site, queues=None, workers=None, now=clock())
    # Then queues and workers are null, and both are reported
    assert status.as_json()["queues"] is None and status.as_json()["workers"] is None
    assert "broker unreachable: queue depths unknown" in status.problems
    assert any(p.startswith("workers unknown") for p in status.problems)


def test_no_worker_online_is_a_problem(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    status = collect_status(store, site, queues={"feeds": 3}, workers=[], now=clock())
    assert status.problems == ["no workers online"]


def test_an_outbox_event_waiting_over_a_minute_is_a_problem(store: Store, site: SiteConfig,
                                                            clock: FixedClock) -> None:
    # Given an event written 90 seconds ago and never processed
    with store.transaction() as session:
        add_event(session, "article.published", "art-late", 1, now=clock())
    clock.now += timedelta(seconds=90)
    # Then the outbox shows its lag and the status names it
    status = collect_status(store, site, now=clock(), **ALL_GOOD)
    assert status.as_json()["outbox"]["pending"] == 1
    assert status.as_json()["outbox"]["lag_s"] == 90.0
    assert status.problems == ["outbox: the oldest unprocessed event is 90 s old (article art-late)"]


def test_failed_deliveries_are_listed_and_counted(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given one failed and one posted delivery
    failed_id = delivery(store, clock, article="art-1", state="failed")
    delivery(store, clock, article="art-2", state="posted")
    # Then the failure is listed with its error, and counted as a problem
    failures = collect_status(store, site, now=clock(), **ALL_GOOD).as_json()["failures"]
    assert failures["count"] == 1 and failures["by_channel"] == {"preview": 1}
    [row] = failures["recent"]
    assert row["id"] == failed_id and row["article_id"] == "art-1" and row["error"] == "HTTP 503 from the service"
    assert collect_status(store, site, now=clock(), **ALL_GOOD).problems == ["1 failed delivery (preview: 1)"]


def test_a_paused_channel_says_until_when_and_why(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given the preview channel is paused for ten minutes after a rate limit
    until = clock() + timedelta(minutes=10)
    with store.transaction() as session:
        pause_channel(session, "preview", until=until, reason="rate limited (HTTP 429)", now=clock())
    # Then it is paused, with the time and reason, and that is a problem
    status = collect_status(store, site, now=clock(), **ALL_GOOD)
    [channel] = status.as_json()["channels"]
    assert channel["state"] == "paused" and channel["paused_until"] == until.isoformat()
    assert channel["reason"] == "rate limited (HTTP 429)"
    assert status.problems == [f"channel preview paused until {until.isoformat()}: rate limited (HTTP 429)"]
    # And once the pause has run out it is active again
    clock.now += timedelta(minutes=11)
    later = collect_status(store, site, now=clock(), **ALL_GOOD)
    assert later.as_json()["channels"][0]["state"] == "active" and later.problems == []


def test_the_budget_counts_only_posts_in_the_current_window(store: Store, clock: FixedClock) -> None:
    # Given a channel allowed 3 posts per 15 minutes, with one post 20 minutes ago and two just now
    site = site_with_budget(3, 900)
    delivery(store, clock, article="old", state="posted", at_offset=timedelta(minutes=-20))
    delivery(store, clock, article="new-1", state="posted")
    delivery(store, clock, article="new-2", state="posted")
    # Then one post is left in the window
    [channel] = collect_status(store, site, now=clock(), **ALL_GOOD).as_json()["channels"]
    assert channel["budget"] == {"posts_per_window": 3, "window_s": 900, "used": 2, "left": 1}


def test_a_feed_unrendered_for_five_minutes_is_stale(store: Store, site: SiteConfig, clock: FixedClock,
                                                     tmp_path: Path) -> None:
    # Given a published article whose feeds are not rendered
    publish_one(store, site, clock)
    settle_outbox(store, clock)
    # When a minute has passed, that is normal; after six minutes it is a problem
    clock.now += timedelta(minutes=1)
    assert collect_status(store, site, now=clock(), **ALL_GOOD).problems == []
    clock.now += timedelta(minutes=5)
    problems = collect_status(store, site, now=clock(), **ALL_GOOD).problems
    assert "feed all stale for 6 min" in problems
    # And once rendered, the feed shows its render time and item count, and is fresh
    render_feed(store, site, tmp_path / "feeds", "all", clock=clock)
    status = collect_status(store, site, now=clock(), **ALL_GOOD)
    [feed] = [f for f in status.as_json()["feeds"] if f["feed"] == "all"]
    assert feed == {"feed": "all", "label": feed["label"], "rendered_at": clock().isoformat(), "items": 1,
                    "renders": 1, "stale": False, "stale_s": 0.0}
    assert not any(p.startswith("feed all ") for p in status.problems)


def test_scheduled_articles_are_shown_and_an_overdue_release_is_a_problem(
        store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given an article scheduled for ten minutes ahead
    articles, _ = parse_batch([article_json(1, published_at=(clock() + timedelta(minutes=10)).isoformat())], site=site)
    publish(store, site, articles, clock=clock)
    # Then status lists it as an upcoming release, and nothing is wrong
    status = collect_status(store, site, now=clock(), **ALL_GOOD)
    assert status.as_json()["scheduled"] == {"count": 1, "upcoming": [
        {"article_id": "art-1", "title": "Article 1", "release_at": (clock() + timedelta(minutes=10)).isoformat(),
         "in_s": 600.0}]}
    assert status.problems == []
    # When its time is long past and nothing released it (no workers, no beat)
    late = collect_status(store, site, now=clock() + timedelta(minutes=15), **ALL_GOOD)
    # Then that is a problem an operator sees
    assert late.problems == ["scheduled release 5 min overdue (article art-1): are the workers and beat running?"]
