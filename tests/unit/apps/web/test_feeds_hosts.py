"""Several API hosts serving the same feed files answer alike: the ETag comes from the bytes,
not from the process, the inode or the host, so a reader's conditional request gets its 304
from whichever host the load balancer picks. (Each app below stands for one host.)"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from fastapi.testclient import TestClient

from config import SiteConfig
from syndication.publishing import parse_batch, publish
from syndication.rendering import render_all
from syndication.store import Store
from apps.web.app import create_app
from apps.web.context import WebContext
from tests.conftest import FixedClock, article_json
from tests.support.brokers import offline_dispatcher



def host(store: Store, site: SiteConfig, feeds_dir: Path) -> TestClient:
    return TestClient(create_app(WebContext(site=site, store=store, dispatcher=offline_dispatcher(), feeds_dir=feeds_dir)))


def render(store: Store, site: SiteConfig, feeds_dir: Path, clock: FixedClock, *ids: int) -> None:
    articles, refused = parse_batch([article_json(n) for n in ids], site=site)
    assert refused == []
    publish(store, site, articles, origin="import", clock=clock)
    render_all(store, site, feeds_dir, clock=clock)


@pytest.fixture
def shared(tmp_path: Path, store: Store, site: SiteConfig, clock: FixedClock) -> Path:
    """The feeds folder the workers write (on a shared volume, every host mounts it)."""
    render(store, site, tmp_path / "feeds", clock, 1, 2)
    return tmp_path / "feeds"


@pytest.fixture
def two_hosts(store: Store, site: SiteConfig, shared: Path) -> Iterator[tuple[TestClient, TestClient]]:
    with host(store, site, shared) as a, host(store, site, shared) as b:
        yield a, b


def test_two_hosts_on_one_feeds_folder_give_the_same_etag_and_304(two_hosts: tuple[TestClient, TestClient]) -> None:
    a, b = two_hosts
    for encoding in ("identity", "gzip"):
        # Given a reader that fetched all.rss from host A
        first = a.get("/feeds/all.rss", headers={"Accept-Encoding": encoding})
        assert first.status_code == 200
        assert {e.link for e in feedparser.parse(first.content).entries} == {
            "https://news.test.example/a/1", "https://news.test.example/a/2"}
        # When its next poll lands on host B, B names the same representation...
        again = b.get("/feeds/all.rss", headers={"Accept-Encoding": encoding})
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["last-modified"] == first.headers["last-modified"]
        assert again.content == first.content
        # ...and answers its conditional requests with 304
        assert b.get("/feeds/all.rss", headers={"Accept-Encoding": encoding,
                                                "If-None-Match": first.headers["etag"]}).status_code == 304
        assert b.get("/feeds/all.rss", headers={"Accept-Encoding": encoding,
                                                "If-Modified-Since": first.headers["last-modified"]}).status_code == 304


def test_a_new_render_is_a_new_etag_on_every_host(two_hosts: tuple[TestClient, TestClient], store: Store,
                                                  site: SiteConfig, shared: Path, clock: FixedClock) -> None:
    a, b = two_hosts
    old = a.get("/feeds/all.rss").headers["etag"]
    assert b.get("/feeds/all.rss", headers={"If-None-Match": old}).status_code == 304
    # When a worker writes a new version of the file (atomically, by rename: a new inode)
    clock.now += timedelta(minutes=5)
    render(store, site, shared, clock, 3)
    # Then both hosts see it at once: the old ETag no longer matches anywhere
    for h in (a, b):
        fresh = h.get("/feeds/all.rss", headers={"If-None-Match": old})
        assert fresh.status_code == 200 and fresh.headers["etag"] != old
        assert "https://news.test.example/a/3" in {e.link for e in feedparser.parse(fresh.content).entries}
    assert a.get("/feeds/all.rss").headers["etag"] == b.get("/feeds/all.rss").headers["etag"]


def test_the_etag_comes_from_the_bytes_not_the_file(tmp_path: Path, store: Store, site: SiteConfig,
                                                    shared: Path) -> None:
    # Given a host serving its own copy of the files (other inodes, other modification times)
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in shared.rglob("*"):
        if path.is_file():
            (copy / path.relative_to(shared)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy / path.relative_to(shared))
    assert (copy / "all.rss").stat().st_ino != (shared / "all.rss").stat().st_ino
    with host(store, site, shared) as a, host(store, site, copy) as b:
        etag = a.get("/feeds/all.rss").headers["etag"]
        # Then its ETag is the same, so If-None-Match gets a 304 there too
        assert b.get("/feeds/all.rss").headers["etag"] == etag
        assert b.get("/feeds/all.rss", headers={"If-None-Match": etag}).status_code == 304
