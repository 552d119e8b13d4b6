"""Many feeds cost the web process one page at a time: capped new feeds, paged tables, a cached /metrics."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import lxml.html
from fastapi.testclient import TestClient

from config import SiteConfig
from syndication.store import Store
from syndication.store.feed_state import mark_dirty, record_render
from apps.web.app import create_app
from apps.web.context import WebContext
from tests.conftest import FixedClock, article_json, make_site
from tests.support.brokers import offline_dispatcher

API_TOKEN, OPS_TOKEN = "api-token-0123456789abcdef0123456789", "ops-token-0123456789abcdef0123456789"


def web(store: Store, site: SiteConfig, clock: FixedClock, **overrides: Any) -> TestClient:
    values: dict[str, Any] = {"site": site, "store": store, "dispatcher": offline_dispatcher(),
                              "feeds_dir": Path("unused"), "clock": clock, "api_tokens": [API_TOKEN],
                              "ops_tokens": [OPS_TOKEN], "channel_names": ["preview"], "page_size": 10,
                              "broker_snapshot": lambda: ({"feeds": 0, "social": 0, "control": 0}, ["w@h"]),
                              **overrides}
    return TestClient(create_app(WebContext(**values)), base_url="http://feeds.test")


def rendered_feeds(store: Store, clock: FixedClock, count: int) -> list[str]:
    keys = ["all", *(f"tag/t{n:03d}" for n in range(count - 1))]
    with store.transaction() as session:
        mark_dirty(session, ((k, k) for k in keys), now=clock())
        for key in keys:
            record_render(session, key, seq=1, rendered_at=clock(), item_count=1, files={})
    return keys


def test_the_api_says_which_new_feeds_were_not_created(store: Store, clock: FixedClock) -> None:
    site = make_site(max_new_per_request=5)
    # Given one article with 40 new tags, sent with a valid token
    with web(store, site, clock) as http:
        r = http.post("/api/v1/articles", json=article_json(1, tags=[f"tag {n}" for n in range(40)]),
                      headers={"Authorization": f"Bearer {API_TOKEN}"})
    # Then it is accepted, and the answer lists the feeds it did not get, and why
    assert r.status_code == 202
    body = r.json()
    assert body["articles"][0]["status"] == "created"
    # (section and author came first: 5 new feeds are the section, the author and three tags)
    assert len(body["articles"][0]["feeds_refused"]) == 40 - 3
    assert "cap on new feeds" in body["feeds_refused"]


def test_the_home_page_shows_one_page_of_feeds(store: Store, clock: FixedClock) -> None:
    keys = rendered_feeds(store, clock, 25)
    with web(store, make_site(), clock) as http:
        first, last, beyond = http.get("/"), http.get("/?page=3"), http.get("/?page=99")
        refused = http.get("/?page=0")
    # Then the first page has the first 10 feeds, a link to the next, and the site feed's autodiscovery
    doc = lxml.html.fromstring(first.text)
    assert len(doc.xpath("//tbody/tr")) == 10
    assert doc.xpath("//a[@rel='next']/@href") == ["/?page=2"]
    assert doc.xpath("//link[@rel='alternate']/@href")[0] == "/feeds/all.rss"
    # And the last page has the rest, with autodiscovery still in its head
    doc = lxml.html.fromstring(last.text)
    assert len(doc.xpath("//tbody/tr")) == 5 and not doc.xpath("//a[@rel='next']")
    assert f"/feeds/tag/{keys[-1].removeprefix('tag/')}.rss" in last.text
    assert doc.xpath("//link[@rel='alternate']/@href")[0] == "/feeds/all.rss"
    # And a page past the end shows the last one; page 0 is refused, naming the parameter
    assert len(lxml.html.fromstring(beyond.text).xpath("//tbody/tr")) == 5
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "query.page"


def test_the_ops_feed_table_is_paged(store: Store, clock: FixedClock) -> None:
    rendered_feeds(store, clock, 25)
    with web(store, make_site(), clock) as http:
        auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
        pages = [lxml.html.fromstring(http.get(f"/ops?feeds_page={n}", headers=auth).text) for n in (1, 2, 3)]
    rows = [[r.text_content() for r in p.xpath("//table[@id='feeds']/tbody/tr/td[1]")] for p in pages]
    assert [len(r) for r in rows] == [10, 10, 5]
    assert len({key for r in rows for key in r}) == 25
    assert pages[0].xpath("//nav[@id='feeds-pages']//a[@rel='next']/@href") == ["?feeds_page=2#feeds-h"]


def test_metrics_are_rendered_once_per_cache_period_by_the_injected_clock(store: Store, site: SiteConfig,
                                                                         clock: FixedClock) -> None:
    rendered_feeds(store, clock, 3)
    with web(store, site, clock, metrics_cache_s=5.0) as http:
        # Given a scrape
        first = http.get("/metrics").text
        # When a feed appears, and /metrics is asked again within 5 s
        rendered_feeds(store, clock, 6)
        clock.now += timedelta(seconds=4)
        cached = http.get("/metrics").text
        # Then the answer is the copy; once 5 s have passed, it is fresh
        clock.now += timedelta(seconds=1)
        fresh = http.get("/metrics").text
    assert 'feed="tag/t004"' not in first
    assert cached == first
    assert 'syndication_feed_renders_total{feed="tag/t004"}' in fresh
