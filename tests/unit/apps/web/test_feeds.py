"""Feed readers fetch /feeds/<key>.<ext>: whatever formats the catalog declares are served, and
nothing else is read from disk."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import syndication.feeds.catalog as catalog
from apps.web.app import create_app
from apps.web.context import WebContext
from config import SiteConfig
from syndication.articles import parse_article
from syndication.publishing import publish
from syndication.rendering import render_feed
from syndication.store import Store
from tests.conftest import FixedClock, article_json, make_site
from tests.support.brokers import offline_dispatcher



def client(store: Store, site: SiteConfig, clock: FixedClock, feeds: Path) -> TestClient:
    return TestClient(create_app(WebContext(site=site, store=store, dispatcher=offline_dispatcher(), feeds_dir=feeds,
                                            clock=clock)))


def test_a_format_added_to_the_catalog_is_served_without_touching_the_web_layer(
        store: Store, site: SiteConfig, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a new format declared once, in the catalog, and a file of it on disk
    opml = catalog.Format("opml", "opml", "text/x-opml")
    monkeypatch.setitem(catalog.FORMATS, "opml", opml)
    monkeypatch.setitem(catalog.FORMAT_BY_EXTENSION, "opml", opml)
    (tmp_path / "section").mkdir()
    (tmp_path / "section" / "sport.opml").write_bytes(b"<opml version='2.0'/>")
    (tmp_path / "all.json").write_bytes(b"{}")
    with client(store, site, clock, tmp_path) as http:
        # When a reader asks for it
        served = http.get("/feeds/section/sport.opml")
        json_feed = http.get("/feeds/all.json")
    # Then it is served with the declared media type, and JSON Feed carries no charset
    assert served.status_code == 200
    assert served.headers["content-type"] == "text/x-opml; charset=utf-8"
    assert json_feed.headers["content-type"] == "application/feed+json"


@pytest.mark.parametrize("path", ["../private.txt", "section/../../etc/passwd.rss", "all.txt", "Section/sport.rss",
                                  "section/sport", "all.rss/..", "tag/.rss", "%2e%2e/all.rss",
                                  "all/archive/0.rss", "all/archive/-1.atom", "all/archive/1", "all/archive/x.atom",
                                  "all/archive/../../private.txt", "all/archive/1.atom/../../x.rss",
                                  "all/archive/01.atom", "archive/1.atom"])
def test_anything_but_a_feed_path_is_404_and_reads_nothing(store: Store, site: SiteConfig, clock: FixedClock,
                                                           tmp_path: Path, path: str) -> None:
    # Given a feeds folder next to other files
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (tmp_path / "private.txt").write_bytes(b"secret")
    with client(store, site, clock, feeds) as http:
        response = http.get(f"/feeds/{path}")
    # Then the answer is a plain 404
    assert response.status_code == 404
    assert b"secret" not in response.content


def test_feeds_name_their_hubs_and_themselves_and_full_archive_pages_are_cached_long(
        store: Store, clock: FixedClock, tmp_path: Path) -> None:
    # Given a feed of 25 articles filed in archive pages of 10 (two full pages and an open one)
    site = make_site(sections=[], authors=[], tags=[], archive_items=10)
    publish(store, site, [parse_article(article_json(n)) for n in range(1, 26)], clock=clock)
    render_feed(store, site, tmp_path, "all", clock=clock)
    with client(store, site, clock, tmp_path) as http:
        # When a reader fetches the current feed and the archive pages
        current = http.get("/feeds/all.atom")
        full, open_page = http.get("/feeds/all/archive/2.rss"), http.get("/feeds/all/archive/3.json")
    # Then every answer names the hub and its own URL in Link headers (WebSub discovery)
    base = site.site.feeds_base
    assert current.headers["link"] == f'<https://hub.test.example/>; rel="hub", <{base}/all.atom>; rel="self"'
    assert full.headers["link"].endswith(f'<{base}/all/archive/2.rss>; rel="self"')
    # And a full archive page may be cached for a day, while the open page and the current feed may not
    assert full.headers["cache-control"] == "public, max-age=86400"
    assert open_page.headers["cache-control"] == current.headers["cache-control"] == "public, max-age=60"
    assert open_page.headers["content-type"] == "application/feed+json"
