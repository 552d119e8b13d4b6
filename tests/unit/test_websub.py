"""WebSub pings through the hub ping outbox, against a local HTTP hub that real ``requests`` talks to.

(The whole path with a real hub, Flask-WebSub's, and a subscriber is in
tests/integration/test_websub_hub.py.)
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from config import SiteConfig
from syndication.articles import parse_article
from syndication.publishing import publish
from syndication.rendering import render_feed
from syndication.status import collect_status
from syndication.store import Store
from syndication.store.hub_pings import pings_of
from syndication.store.timeline import steps_of
from syndication.websub import Backoff, deliver_pings
from tests.conftest import FixedClock, article_json, make_site
from tests.support.hub_standin import Hub

ALL_GOOD = {"queues": {"feeds": 0}, "workers": ["feeds@h"]}


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub()
    yield h
    h.close()


def site_with(hub: Hub) -> SiteConfig:
    site = make_site(sections=[], authors=[], tags=[])
    return site.model_copy(update={"site": type(site.site).model_validate(
        {**site.site.model_dump(mode="json"), "hubs": [hub.url]})})


FAST = Backoff(base_s=1.0, cap_s=60.0, max_attempts=3, timeout_s=2.0)


def test_two_renders_before_the_ping_goes_out_make_one_ping_per_feed_url(any_store: Store, tmp_path: Path,
                                                                         clock: FixedClock, hub: Hub) -> None:
    # Given a site with one hub, and the feed rendered twice before any ping is sent
    site = site_with(hub)
    for n in (1, 2):
        publish(any_store, site, [parse_article(article_json(n))], clock=clock)
        render_feed(any_store, site, tmp_path, "all", clock=clock)
        clock.now += timedelta(seconds=1)
    # When the due pings are delivered
    delivered = deliver_pings(any_store, clock=clock, backoff=FAST)
    # Then the hub got one WebSub publish per feed URL, each naming the feed's self URL
    base = site.site.feeds_base
    assert delivered.sent == 3
    assert sorted(hub.topics()) == [f"{base}/all.atom", f"{base}/all.json", f"{base}/all.rss"]
    assert all(dict(form)["hub.mode"] == "publish" for form in hub.forms)
    # And each article the pings carried has them on its timeline
    with any_store.read() as session:
        for article_id in ("art-1", "art-2"):
            pinged = [s.detail["feed_url"] for s in steps_of(session, article_id) if s.kind == "pinged"]
            assert sorted(pinged) == sorted(hub.topics())
    # And nothing more is owed: a second run sends nothing
    assert deliver_pings(any_store, clock=clock, backoff=FAST).sent == 0 and len(hub.forms) == 3


def test_a_hub_answering_503_once_is_tried_again_after_the_back_off(store: Store, tmp_path: Path,
                                                                    clock: FixedClock, hub: Hub) -> None:
    # Given a hub that answers 503 to the first ping
    site = site_with(hub)
    hub.answers = [503]
    publish(store, site, [parse_article(article_json(1))], clock=clock)
    render_feed(store, site, tmp_path, "all", clock=clock)
    # When the pings are delivered
    first = deliver_pings(store, clock=clock, backoff=FAST)
    # Then one waits for its back-off, and is not sent before it ends
    assert (first.sent, first.retrying) == (2, 1)
    assert deliver_pings(store, clock=clock, backoff=FAST).sent == 0
    # And once it ended, it goes out: every feed URL reached the hub, the refused one twice
    clock.now += timedelta(seconds=1.3)
    assert deliver_pings(store, clock=clock, backoff=FAST).sent == 1
    assert len(hub.forms) == 4 and len(set(hub.topics())) == 3
    with store.read() as session:
        assert {p.state for p in pings_of(session)} == {"sent"}


def test_a_hub_that_keeps_failing_shows_in_status_and_never_blocks_rendering(store: Store, tmp_path: Path,
                                                                            clock: FixedClock, hub: Hub) -> None:
    # Given a hub that answers 503 every time
    site = site_with(hub)
    hub.answers = [503] * 100
    publish(store, site, [parse_article(article_json(1))], clock=clock)
    render_feed(store, site, tmp_path, "all", clock=clock)
    # When three attempts have failed
    for _ in range(3):
        deliver_pings(store, clock=clock, backoff=Backoff(base_s=1.0, max_attempts=12))
        clock.now += timedelta(seconds=10)
    # Then status names the hub as failing (its host only), and counts what is owed
    status = collect_status(store, site, now=clock(), **ALL_GOOD)
    [entry] = status.as_json()["hubs"]
    assert entry["state"] == "failing" and entry["pending"] == 3 and entry["last_error"] == "HTTP 503"
    assert status.problems == ["hub 127.0.0.1 failing: 3 ping(s) owed, 3 attempts, last error HTTP 503"]
    # And renders go on: a new article reaches the feed while the pings wait, joining them
    publish(store, site, [parse_article(article_json(2))], clock=clock)
    assert render_feed(store, site, tmp_path, "all", clock=clock).item_count == 2
    with store.read() as session:
        assert len(pings_of(session)) == 3


def test_a_hub_that_refuses_a_ping_fails_it_at_once_and_says_so_on_the_timeline(store: Store, tmp_path: Path,
                                                                                clock: FixedClock, hub: Hub) -> None:
    # Given a hub that answers 400 (it does not know the topic)
    site = site_with(hub)
    hub.answers = [400, 400, 400]
    publish(store, site, [parse_article(article_json(1))], clock=clock)
    render_feed(store, site, tmp_path, "all", clock=clock)
    # When the pings are delivered
    delivered = deliver_pings(store, clock=clock, backoff=FAST)
    # Then none is retried, and the article's timeline records each failure
    assert (delivered.failed, delivered.retrying) == (3, 0)
    with store.read() as session:
        assert [s.kind for s in steps_of(session, "art-1")].count("ping.failed") == 3


def test_a_render_that_changes_no_file_owes_no_ping(store: Store, tmp_path: Path, clock: FixedClock,
                                                    hub: Hub) -> None:
    # Given a rendered feed whose pings went out
    site = site_with(hub)
    publish(store, site, [parse_article(article_json(1))], clock=clock)
    render_feed(store, site, tmp_path, "all", clock=clock)
    deliver_pings(store, clock=clock, backoff=FAST)
    # When it is rendered again with nothing changed
    assert render_feed(store, site, tmp_path, "all", clock=clock).pings == 0
    # Then the hub hears nothing more
    assert deliver_pings(store, clock=clock, backoff=FAST).sent == 0 and len(hub.forms) == 3


def test_pings_final_for_a_week_are_forgotten(store: Store, tmp_path: Path, clock: FixedClock, hub: Hub) -> None:
    # Given pings sent eight days ago
    site = site_with(hub)
    publish(store, site, [parse_article(article_json(1))], clock=clock)
    render_feed(store, site, tmp_path, "all", clock=clock)
    deliver_pings(store, clock=clock, backoff=FAST)
    # When pings are delivered again eight days later
    clock.now += timedelta(days=8)
    deliver_pings(store, clock=clock, backoff=FAST)
    # Then the old rows are gone, so the table stays small
    with store.read() as session:
        assert pings_of(session) == []
