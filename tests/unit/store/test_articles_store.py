"""Storing articles: updates by id, tombstones, the outbox, and reading a feed's newest items."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
from sqlalchemy import event, func, select

from config import SiteConfig
from syndication.publishing import parse_batch, publish, unpublish
from syndication.rendering import render_feed
from syndication.store import Store
from syndication.store.articles import count_articles, get_article, latest_for_feed
from syndication.store.schema import ArticleRow, OutboxRow
from tests.conftest import FixedClock, article_json


def send(store: Store, site: SiteConfig, clock: FixedClock, *payloads: dict[str, object],
         origin: str = "api") -> Any:
    """What the API does with a CMS request: validate, then publish."""
    articles, refused = parse_batch(list(payloads), site=site)
    assert refused == []
    return publish(store, site, articles, origin=origin, clock=clock)


def outbox(store: Store) -> list[tuple[str, str, int]]:
    with store.read() as session:
        return [(r.kind, r.article_id, r.revision)
                for r in session.scalars(select(OutboxRow).order_by(OutboxRow.created_at, OutboxRow.revision))]


def read_feed(feeds_dir: Path, key: str, fmt: str) -> Any:
    """What a reader makes of a feed file: feedparser for RSS and Atom, the JSON itself for JSON Feed."""
    data = (feeds_dir / f"{key}.{fmt}").read_bytes()
    return feedparser.parse(data) if fmt != "json" else json.loads(data)


def titles(feeds_dir: Path, key: str, fmt: str) -> list[str]:
    feed = read_feed(feeds_dir, key, fmt)
    items = feed["items"] if fmt == "json" else feed.entries
    return [item["title"] for item in items]


def test_resending_an_id_updates_the_article_instead_of_adding_one(
        any_store: Store, site: SiteConfig, clock: FixedClock, tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    # Given an article published and rendered
    send(any_store, site, clock, article_json(1, title="Council to vote on budget"))
    render_feed(any_store, site, feeds, "all", clock=clock)
    first = read_feed(feeds, "all", "atom").entries[0]
    # When the CMS sends the same id an hour later with a corrected title
    clock.now += timedelta(hours=1)
    outcome = send(any_store, site, clock, article_json(1, title="Council passes budget"))
    render_feed(any_store, site, feeds, "all", clock=clock)
    # Then the store holds one article, at revision 2, with the new title
    with any_store.read() as session:
        assert count_articles(session) == 1
        stored = get_article(session, "art-1")
    assert stored is not None and stored.revision == 2 and stored.article.title == "Council passes budget"
    assert [a.status for a in outcome.accepted] == ["updated"]
    # And every feed format shows ONE entry, the corrected one, with the same id as before
    atom = read_feed(feeds, "all", "atom")
    assert [(e.id, e.title) for e in atom.entries] == [(first.id, "Council passes budget")]
    assert titles(feeds, "all", "rss") == ["Council passes budget"]
    assert titles(feeds, "all", "json") == ["Council passes budget"]
    # And its updated time moved, so readers know it changed
    assert atom.entries[0].updated_parsed > first.updated_parsed
    assert atom.entries[0].published_parsed == first.published_parsed


def test_resending_identical_content_is_not_a_new_revision(
        any_store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given an article already stored
    send(any_store, site, clock, article_json(1))
    # When the CMS retries the very same request later
    clock.now += timedelta(minutes=5)
    outcome = send(any_store, site, clock, article_json(1))
    # Then nothing changed: same revision, no feed to re-render, nothing new to announce
    assert [(a.status, a.revision, a.event_id) for a in outcome.accepted] == [("unchanged", 1, None)]
    assert outcome.feed_keys == set()
    assert outbox(any_store) == [("article.published", "art-1", 1)]
    with any_store.read() as session:
        stored = get_article(session, "art-1")
    assert stored is not None and stored.revision == 1 and stored.modified_at == stored.received_at


def test_withdrawing_keeps_a_tombstone_and_empties_the_feeds(
        any_store: Store, site: SiteConfig, clock: FixedClock, tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    # Given two articles published and rendered
    send(any_store, site, clock, article_json(1), article_json(2))
    render_feed(any_store, site, feeds, "section/politics", clock=clock)
    assert len(read_feed(feeds, "section/politics", "atom").entries) == 2
    # When the newsroom withdraws one
    clock.now += timedelta(minutes=10)
    outcome = unpublish(any_store, "art-1", clock=clock)
    for key in sorted(outcome.feed_keys):
        render_feed(any_store, site, feeds, key, clock=clock)
    # Then it is still on record, as withdrawn
    with any_store.read() as session:
        stored = get_article(session, "art-1")
        latest = [s.article.id for s in latest_for_feed(session, "all", 50)]
    assert stored is not None and stored.status == "withdrawn" and stored.withdrawn
    # And no feed offers it any more, in the store or in any rendered file
    assert latest == ["art-2"]
    for key in ("all", "section/politics", "author/ada-reporter", "tag/budget"):
        for fmt in ("rss", "atom", "json"):
            listed = titles(feeds, key, fmt)
            assert listed == ["Article 2"], f"{key}.{fmt} lists {listed}"
    # And the withdrawal is announced, so the social posts can be deleted
    assert outbox(any_store)[-1] == ("article.withdrawn", "art-1", 2)


def test_withdrawing_twice_changes_nothing_the_second_time(
        any_store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given a withdrawn article
    send(any_store, site, clock, article_json(1))
    unpublish(any_store, "art-1", clock=clock)
    # When someone withdraws it again
    again = unpublish(any_store, "art-1", clock=clock)
    # Then no second event is written
    assert [a.status for a in again.accepted] == ["unchanged"]
    assert [kind for kind, _, _ in outbox(any_store)] == ["article.published", "article.withdrawn"]


def test_an_imported_article_is_never_announced(
        any_store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given an archive backfill
    outcome = send(any_store, site, clock, article_json(1), article_json(2), origin="import")
    # Then the articles are stored and their feeds are due a render
    assert [a.status for a in outcome.accepted] == ["created", "created"]
    assert "all" in outcome.feed_keys
    # But nothing goes to the outbox, so nothing is ever posted for them
    assert outcome.events == []
    assert outbox(any_store) == []
    with any_store.read() as session:
        assert {s.origin for s in (get_article(session, "art-1"), get_article(session, "art-2"))} == {"import"}


def test_the_latest_of_a_feed_is_newest_first_and_at_most_n(
        any_store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given twelve articles sent in no particular order, one per day
    days = [7, 2, 11, 1, 12, 5, 9, 3, 10, 4, 8, 6]
    send(any_store, site, clock, *[article_json(d, published_at=f"2026-11-{d:02d}T08:00:00Z") for d in days])
    # When the feed asks for the newest five
    with any_store.read() as session:
        latest = latest_for_feed(session, "all", 5)
        sport = latest_for_feed(session, "section/sport", 5)
    # Then it gets exactly those, newest first
    assert [s.article.id for s in latest] == ["art-12", "art-11", "art-10", "art-9", "art-8"]
    assert [s.article.published_at for s in latest] == sorted((s.article.published_at for s in latest),
                                                             reverse=True)
    # And a feed nobody wrote for is simply empty
    assert sport == []


def test_articles_published_at_the_same_instant_keep_a_stable_order(
        any_store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given three articles stamped with the same minute
    send(any_store, site, clock, *[article_json(n, published_at="2026-11-20T08:00:00Z") for n in ("a", "c", "b")])
    # Then every read returns them in the same order, so feed files do not churn
    with any_store.read() as session:
        orders = {tuple(s.article.id for s in latest_for_feed(session, "all", 10)) for _ in range(3)}
    assert orders == {("art-c", "art-b", "art-a")}


def test_reading_the_latest_n_uses_the_index_not_a_table_scan(
        store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given a SQLite store with articles in several feeds
    send(store, site, clock, *[article_json(n, section="Sport" if n % 2 else "Politics") for n in range(40)])
    # When the feed's newest items are read, catching the SQL the real query sends
    sent: list[tuple[str, Any]] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        sent.append((statement, parameters))

    with store.read() as session:
        latest = latest_for_feed(session, "section/sport", 5)
    event.remove(store.engine, "before_cursor_execute", capture)
    assert len(latest) == 5
    (statement, parameters), = [s for s in sent if "feed_items" in s[0]]
    # Then SQLite's plan walks ix_feed_items_latest for that feed, already in order
    with store.engine.connect() as conn:
        plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert any("feed_items" in step and "ix_feed_items_latest" in step for step in plan), plan
    # And it neither scans a whole table nor sorts the feed's rows to find the newest
    assert not [step for step in plan if step.startswith("SCAN")], plan
    assert not [step for step in plan if "TEMP B-TREE" in step], plan


def test_a_batch_with_one_id_twice_yields_one_article(
        any_store: Store, site: SiteConfig, clock: FixedClock, tmp_path: Path) -> None:
    # Given a CMS batch that carries the same article twice, the second time edited
    send(any_store, site, clock, article_json(1, title="First draft"), article_json(2),
         article_json(1, title="Final"))
    # Then the store holds that article once, as last sent
    with any_store.read() as session:
        assert session.scalar(select(func.count()).select_from(ArticleRow).where(ArticleRow.id == "art-1")) == 1
        stored = get_article(session, "art-1")
        latest = [s.article.title for s in latest_for_feed(session, "all", 10)]
    assert stored is not None and stored.article.title == "Final"
    # And its feed lists it once
    assert sorted(latest) == ["Article 2", "Final"]
    render_feed(any_store, site, tmp_path / "feeds", "all", clock=clock)
    for fmt in ("rss", "atom", "json"):
        assert sorted(titles(tmp_path / "feeds", "all", fmt)) == ["Article 2", "Final"]


def test_a_withdrawn_article_sent_again_comes_back(
        any_store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given a withdrawn article
    send(any_store, site, clock, article_json(1))
    unpublish(any_store, "art-1", clock=clock)
    # When the CMS publishes it again unchanged
    clock.now += timedelta(hours=1)
    outcome = send(any_store, site, clock, article_json(1))
    # Then it is back in its feeds, as a new revision, and announced as an update
    with any_store.read() as session:
        latest = [s.article.id for s in latest_for_feed(session, "all", 10)]
        stored = get_article(session, "art-1")
    assert latest == ["art-1"]
    assert stored is not None and stored.status == "published" and stored.revision == 3
    assert [e.kind for e in outcome.events] == ["article.published"]


def test_dates_come_back_from_the_store_aware_and_in_utc(
        any_store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given an article whose date the CMS sent in Berlin time
    send(any_store, site, clock, article_json(1, published_at="2026-07-01T10:00:00"))
    # Then the store gives back the same instant, in UTC, on every backend
    with any_store.read() as session:
        stored = get_article(session, "art-1")
    assert stored is not None
    assert stored.article.published_at == datetime.fromisoformat("2026-07-01T08:00:00+00:00")
    assert stored.received_at == clock.now and stored.received_at.utcoffset() == timedelta(0)


def test_a_feed_read_with_known_articles_loads_only_what_changed(
        any_store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given a feed of three articles read once, with a cache of the articles loaded
    send(any_store, site, clock, article_json(1), article_json(2), article_json(3))
    known: dict[Any, Any] = {}
    with any_store.read() as session:
        first = latest_for_feed(session, "all", 10, known=known)
    assert len(known) == 3
    # When one article is corrected and the feed is read again
    clock.now += timedelta(minutes=1)
    send(any_store, site, clock, article_json(2, title="Corrected"))
    loads: list[str] = []

    def count_row_loads(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "articles.data" in statement:
            loads.append(statement)

    event.listen(any_store.engine, "before_cursor_execute", count_row_loads)
    with any_store.read() as session:
        second = latest_for_feed(session, "all", 10, known=known)
        uncached = latest_for_feed(session, "all", 10)
    event.remove(any_store.engine, "before_cursor_execute", count_row_loads)
    # Then the reader sees the correction, in the same order as a read without the cache,
    # and only one query loaded whole rows
    assert [s.article.title for s in second] == [s.article.title for s in uncached]
    assert "Corrected" in [s.article.title for s in second] and "Article 2" in [s.article.title for s in first]
    assert [(s.article.id, s.revision) for s in second] == [(s.article.id, s.revision) for s in uncached]
    assert len(loads) == 2  # the cached read's one load, and the uncached read
