"""Archive documents (RFC 5005), tombstones (RFC 6721) and the byte cap, read back the way
readers do: feedparser walks the archives, lxml checks the namespaces."""
from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from config import SiteConfig
from syndication.articles import parse_article
from syndication.publishing import publish, unpublish
from syndication.rendering import damaged_feeds, render_feed
from syndication.store import Store, archives
from syndication.store.feed_state import stale_feeds
from tests.conftest import FixedClock, article_json, make_site

FH = "http://purl.org/syndication/history/1.0"
AT = "http://purl.org/atompub/tombstones/1.0"
ATOM = "http://www.w3.org/2005/Atom"


def one_feed_site(**feeds: object) -> SiteConfig:
    """Only the site-wide feed, so each render is of ``all``."""
    return make_site(sections=[], authors=[], tags=[], **feeds)


def local(site: SiteConfig, feeds_dir: Path, url: str) -> Path:
    """The file a feed URL names (the walker reads files as a reader would fetch URLs)."""
    prefix = site.site.feeds_base + "/"
    assert url.startswith(prefix), url
    return feeds_dir / url.removeprefix(prefix)


def walk_atom(site: SiteConfig, feeds_dir: Path, start: str) -> tuple[list[str], list[list[str]]]:
    """Follow prev-archive from ``start`` with feedparser: (current ids, ids of each archive page, newest first)."""
    current = feedparser.parse((feeds_dir / start).read_bytes())
    assert current.bozo == 0, current.get("bozo_exception")
    pages: list[list[str]] = []
    doc, seen = current, set()
    while (older := [link.href for link in doc.feed.get("links", []) if link.rel == "prev-archive"]):
        path = local(site, feeds_dir, older[0])
        assert path not in seen, "the archive links loop"
        seen.add(path)
        data = path.read_bytes()
        doc = feedparser.parse(data)
        assert doc.bozo == 0, (path, doc.get("bozo_exception"))
        # Spec: RFC 5005 §4 — every archive document says so, and links back to the current one
        assert next(etree.fromstring(data).iter(f"{{{FH}}}archive"), None) is not None
        assert [link.href for link in doc.feed.links if link.rel == "current"] == [
            f"{site.site.feeds_base}/{start}"]
        pages.append([e.id for e in doc.entries])
    return [e.id for e in current.entries], pages


def walk_json(site: SiteConfig, feeds_dir: Path, start: str) -> list[list[str]]:
    """Follow next_url from ``start``: the ids of each document, the current one first."""
    docs, path = [], feeds_dir / start
    while True:
        doc = json.loads(path.read_bytes())
        docs.append([item["id"] for item in doc["items"]])
        if "next_url" not in doc:
            return docs
        path = local(site, feeds_dir, doc["next_url"])


def ids(site: SiteConfig, numbers: list[int]) -> set[str]:
    host = "news.test.example"
    return {f"tag:{host},2026:art-{n}" for n in numbers}


def test_a_walker_recovers_every_one_of_1000_articles_from_the_archives(store: Store, tmp_path: Path,
                                                                       clock: FixedClock) -> None:
    # Given 1,000 articles published in batches, in shuffled date order, the feed rendered after each
    site = one_feed_site(items=50, archive_items=100)
    numbers = list(range(1, 1001))
    random.Random(5005).shuffle(numbers)
    for start in range(0, 1000, 100):
        batch = [parse_article(article_json(n, published_at=(clock() - timedelta(minutes=n)).isoformat()))
                 for n in numbers[start:start + 100]]
        publish(store, site, batch, clock=clock)
        render_feed(store, site, tmp_path, "all", clock=clock)
        clock.now += timedelta(seconds=10)
    # And a few withdrawn, a few corrected
    withdrawn = numbers[:7] + numbers[500:503]
    for n in withdrawn:
        unpublish(store, f"art-{n}", clock=clock)
    publish(store, site, [parse_article(article_json(n, title=f"Article {n}, corrected")) for n in numbers[600:605]],
            clock=clock)
    render_feed(store, site, tmp_path, "all", clock=clock)
    live = ids(site, [n for n in numbers if n not in withdrawn])
    # When a reader follows prev-archive from all.atom
    current, pages = walk_atom(site, tmp_path, "all.atom")
    # Then it met every published, non-withdrawn article exactly once in the archives, in ten pages
    archived = [i for page in pages for i in page]
    assert len(archived) == len(set(archived)) == len(live)
    assert set(archived) == live
    assert len(pages) == 10 and len(current) == 50 and set(current) <= live
    # And the same holds in RSS, and through next_url in JSON Feed
    rss_current, rss_pages = walk_atom_rss(site, tmp_path)
    assert sorted(i for page in rss_pages for i in page) == sorted(archived)
    json_docs = walk_json(site, tmp_path, "all.json")
    assert json_docs[0] == current and sorted(i for doc in json_docs[1:] for i in doc) == sorted(archived)


def walk_atom_rss(site: SiteConfig, feeds_dir: Path) -> tuple[list[str], list[list[str]]]:
    """The RSS walk: feedparser reads atom:link rel=prev-archive in RSS too."""
    return walk_atom(site, feeds_dir, "all.rss")


def page_files(feeds_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(feeds_dir).as_posix(): p.read_bytes() for p in (feeds_dir / "all" / "archive").iterdir()}


def test_an_update_or_withdrawal_rewrites_only_the_archive_page_that_holds_it(any_store: Store, tmp_path: Path,
                                                                               clock: FixedClock) -> None:
    # Given 35 articles filed in pages of 10, oldest first (four pages, the last one open)
    site = one_feed_site(items=5, archive_items=10)
    publish(any_store, site, [parse_article(article_json(n, published_at=f"2026-11-{n % 28 + 1:02d}T0{n % 10}:00:00Z"))
                          for n in range(1, 36)], clock=clock)
    render_feed(any_store, site, tmp_path, "all", clock=clock)
    before = page_files(tmp_path)
    assert len(before) == 4 * 3
    pages = walk_atom(site, tmp_path, "all.atom")[1]
    victim, corrected = pages[2][3], pages[1][0]  # on page 2 and page 3 (pages are newest first)
    # When one archived article is corrected and another withdrawn
    clock.now += timedelta(minutes=1)
    publish(any_store, site, [parse_article(article_json(int(corrected.rsplit("-", 1)[1]), title="Corrected"))],
            clock=clock)
    unpublish(any_store, victim.rsplit(":", 1)[1], clock=clock)
    render_feed(any_store, site, tmp_path, "all", clock=clock)
    # Then exactly the files of those two pages changed
    after = page_files(tmp_path)
    assert sorted(k for k in after if after[k] != before.get(k)) == sorted(
        f"all/archive/{page}.{ext}" for page in (2, 3) for ext in ("atom", "json", "rss"))
    # And the walk still finds every article but the withdrawn one, once
    archived = [i for page in walk_atom(site, tmp_path, "all.atom")[1] for i in page]
    assert sorted(archived) == sorted(ids(site, list(range(1, 36))) - {victim})


def test_a_withdrawn_article_stays_as_a_tombstone_for_the_configured_days(store: Store, tmp_path: Path,
                                                                          clock: FixedClock) -> None:
    # Given two published articles, one of them withdrawn
    site = one_feed_site(tombstone_days=30)
    publish(store, site, [parse_article(article_json(n)) for n in (1, 2)], clock=clock)
    withdrawn_at = clock()
    unpublish(store, "art-1", clock=clock)
    # When the feed is rendered
    render_feed(store, site, tmp_path, "all", clock=clock)
    data = (tmp_path / "all.atom").read_bytes()
    # Then feedparser accepts it and lists only the live entry
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert [e.id for e in parsed.entries] == ["tag:news.test.example,2026:art-2"]
    # And lxml finds one at:deleted-entry in the tombstones namespace, naming the entry id and when
    root = etree.fromstring(data)
    assert root.tag == f"{{{ATOM}}}feed" and root.nsmap == {None: ATOM}
    [tombstone] = root.findall(f"{{{AT}}}deleted-entry")
    assert tombstone.get("ref") == "tag:news.test.example,2026:art-1"
    assert tombstone.get("when") == withdrawn_at.isoformat()
    assert root.findall(f"{{{ATOM}}}entry")[-1].getnext() is tombstone  # after the entries
    # And 31 days later it is gone
    clock.now += timedelta(days=31)
    render_feed(store, site, tmp_path, "all", clock=clock)
    assert etree.fromstring((tmp_path / "all.atom").read_bytes()).findall(f"{{{AT}}}deleted-entry") == []


def test_a_current_document_over_the_byte_cap_keeps_its_newest_items(store: Store, tmp_path: Path,
                                                                     clock: FixedClock) -> None:
    # Given ten articles of about 20 KB each and a cap of 64 KB per feed file
    site = one_feed_site(max_file_bytes=64 * 1024)
    body = "<p>" + "x" * 20_000 + "</p>"
    publish(store, site, [parse_article(article_json(n, content_html=body, published_at=f"2026-11-{n:02d}T08:00:00Z"))
                          for n in range(1, 11)], clock=clock)
    # When the feed is rendered
    render_feed(store, site, tmp_path, "all", clock=clock)
    # Then every current file is within the cap and holds the newest items only
    for ext in ("atom", "rss", "json"):
        assert (tmp_path / f"all.{ext}").stat().st_size <= 64 * 1024
    current, pages = walk_atom(site, tmp_path, "all.atom")
    assert 1 <= len(current) < 10
    assert current == [f"tag:news.test.example,2026:art-{n}" for n in range(10, 10 - len(current), -1)]
    # And the older ones are still in the archives
    assert sorted(i for page in pages for i in page) == sorted(ids(site, list(range(1, 11))))


def test_a_new_page_size_rewrites_every_page_and_removes_the_extra_ones(store: Store, tmp_path: Path,
                                                                       clock: FixedClock) -> None:
    # Given 25 articles archived in pages of 10 (three pages)
    publish(store, one_feed_site(archive_items=10), [parse_article(article_json(n)) for n in range(1, 26)],
            clock=clock)
    render_feed(store, one_feed_site(archive_items=10), tmp_path, "all", clock=clock)
    assert len(walk_atom(one_feed_site(), tmp_path, "all.atom")[1]) == 3
    # When the operator sets pages of 20 and the feed is rendered
    site = one_feed_site(archive_items=20)
    render_feed(store, site, tmp_path, "all", clock=clock)
    # Then the walk finds two pages holding every article once, and no third page is left behind
    pages = walk_atom(site, tmp_path, "all.atom")[1]
    assert [len(p) for p in pages] == [5, 20]
    assert sorted(i for page in pages for i in page) == sorted(ids(site, list(range(1, 26))))
    assert sorted(p.name for p in (tmp_path / "all" / "archive").iterdir()) == [
        f"{n}.{ext}" for n in (1, 2) for ext in ("atom", "json", "rss")]


def test_a_backlog_of_notes_is_filed_over_several_renders(store: Store, tmp_path: Path, clock: FixedClock,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 20 articles noted at once and renders that take 7 notes each (as after an upgrade)
    monkeypatch.setattr(archives, "NOTES_PER_RENDER", 7)
    site = one_feed_site(items=5, archive_items=10)
    publish(store, site, [parse_article(article_json(n)) for n in range(1, 21)], clock=clock)
    # When the feed is rendered while it says it is stale
    renders = 0
    while True:
        render_feed(store, site, tmp_path, "all", clock=clock)
        renders += 1
        with store.read() as session:
            if not stale_feeds(session):
                break
    # Then it took several renders, and the archives hold every article once
    assert renders == 3
    archived = [i for page in walk_atom(site, tmp_path, "all.atom")[1] for i in page]
    assert sorted(archived) == sorted(ids(site, list(range(1, 21))))


def test_a_lost_archive_page_is_written_again_when_a_worker_starts(store: Store, tmp_path: Path,
                                                                   clock: FixedClock) -> None:
    # Given 25 articles in pages of 10, and a crash that lost page 2's Atom file
    site = one_feed_site(archive_items=10)
    publish(store, site, [parse_article(article_json(n)) for n in range(1, 26)], clock=clock)
    render_feed(store, site, tmp_path, "all", clock=clock)
    before = page_files(tmp_path)
    (tmp_path / "all" / "archive" / "2.atom").unlink()
    # When a worker starts and checks the files, then renders what it marked
    assert damaged_feeds(store, tmp_path, clock=clock) == ["all"]
    render_feed(store, site, tmp_path, "all", clock=clock)
    # Then the page is back, byte for byte, and the walk finds every article once
    assert page_files(tmp_path) == before
    archived = [i for page in walk_atom(site, tmp_path, "all.atom")[1] for i in page]
    assert sorted(archived) == sorted(ids(site, list(range(1, 26))))
