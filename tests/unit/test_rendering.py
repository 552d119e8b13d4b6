"""Rendering from the store reuses unchanged items and still writes exactly what a render
from scratch writes."""
from __future__ import annotations

import json
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from config import SiteConfig
from syndication.archiving import current_options
from syndication.articles import parse_article
from syndication.errors import NotFound
from syndication.feeds import FORMATS, FragmentCache, render_formats
from syndication.publishing import publish, unpublish
from syndication.rendering import damaged_feeds, fragment_cache, read_snapshot, render_all, render_feed
from syndication.store import Store
from syndication.store.archive_notes import note_changes
from syndication.store.feed_state import all_states, mark_dirty
from syndication.store.schema import Base
from tests.conftest import FixedClock, article_json, make_site, store_for
from tests.support.stack import wait_for
from tests.unit.feeds.reading import aggregate, xml

# Three items per feed, so publishing and withdrawing slide articles in and out of windows.
SITE = make_site(items=3)


def site_variant(**changes: Any) -> SiteConfig:
    """SITE with some of its ``site`` settings changed."""
    return SITE.model_copy(update={"site": type(SITE.site).model_validate(
        {**SITE.site.model_dump(mode="json"), **changes})})


SITES = [SITE, site_variant(language="de"), site_variant(base_url="https://other.test.example/",
                                                         title="Other & <Gazette>", hubs=[])]


def files(feeds_dir: Path, key: str) -> dict[str, bytes]:
    return {name: (feeds_dir / f"{key}.{fmt.extension}").read_bytes() for name, fmt in FORMATS.items()}


def assert_readable(rendered: dict[str, bytes], count: int) -> None:
    """lxml parses the XML, feedparser has no complaint, json.loads reads the JSON."""
    for name in ("rss", "atom"):
        xml(rendered[name])
        parsed = aggregate(rendered[name])
        assert parsed.bozo == 0, (name, parsed.get("bozo_exception"))
        assert len(parsed.entries) == count
    assert len(json.loads(rendered["json"])["items"]) == count


def wipe(store: Store) -> None:
    """Empty every table: each example starts from an empty store."""
    with store.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


DAYS = [f"2026-11-{day:02d}T08:00:00Z" for day in (3, 5, 5, 9)]
article_changes = st.fixed_dictionaries({}, optional={
    "title": st.sampled_from(["Budget passed", "Budget & <tax> rows", "Haushalt für 2027 ✓", "\u05e9\u05dc\u05d5\u05dd"]),
    "summary": st.sampled_from([None, "Short summary", "<p>Summary with <b>bold</b></p>"]),
    "content_html": st.sampled_from([None, "<p>Body</p>", "<p>Line one\r\nline two &amp; more</p>"]),
    "published_at": st.sampled_from(DAYS),
    "updated_at": st.sampled_from([None, "2026-11-20T10:00:00Z"]),
    "section": st.sampled_from([None, "Politics", "Sport"]),
    "authors": st.sampled_from([[], [{"name": "Ada Reporter", "email": "ada@news.test.example"}],
                                [{"name": "Bruno Desk"}, {"name": "Ada Reporter"}]]),
    "tags": st.sampled_from([[], ["Budget"], ["Budget", "Harbour"]]),
    "language": st.sampled_from([None, "en", "de"]),
    "image": st.sampled_from([None, {"url": "https://news.test.example/i/1.png", "length": 12}]),
})
steps = st.lists(st.one_of(
    st.tuples(st.just("publish"), st.integers(1, 5), article_changes),
    st.tuples(st.just("withdraw"), st.integers(1, 5), st.none()),
    st.tuples(st.just("tick"), st.integers(0, 90), st.none()),
    st.tuples(st.just("site"), st.integers(0, len(SITES) - 1), st.none()),
), min_size=1, max_size=10)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(script=steps)
def test_every_incremental_render_equals_a_render_from_scratch(store: Store, tmp_path: Path, script) -> None:
    # Given an empty store, a fixed clock and a render cache, as in a fresh worker
    wipe(store)
    clock, cache, site = FixedClock(), FragmentCache(), SITE
    feeds_dir = Path(tempfile.mkdtemp(dir=tmp_path))
    for action, number, changes in script:
        # When articles are published, updated and withdrawn (and, once in a while, the
        # site's settings change and time moves on)
        if action == "publish":
            article = parse_article(article_json(number, **changes), tz=site.site.tz)
            affected = publish(store, site, [article], clock=clock).feed_keys
        elif action == "withdraw":
            try:
                affected = unpublish(store, f"art-{number}", clock=clock).feed_keys
            except NotFound:
                continue
        elif action == "tick":
            clock.now += timedelta(minutes=number)
            continue
        else:
            site = SITES[number]
            with store.read() as session:
                affected = {state.feed_key for state in all_states(session)}
        # And every feed the step touched is rendered, reusing what the cache holds
        for key in sorted(affected):
            render_feed(store, site, feeds_dir, key, clock=clock, cache=cache)
            # Then the files hold, byte for byte, a render from scratch of the same snapshot
            snapshot = read_snapshot(store, site, key)
            cold = render_formats(snapshot.spec, snapshot.entries, site.site, clock(),
                                  **current_options(store, site, key, now=clock()))
            written = files(feeds_dir, key)
            assert written == cold, key
            # And every reader can read them
            assert_readable(written, len(snapshot.entries))


def test_a_second_render_serialises_only_the_item_that_changed(store: Store, tmp_path: Path,
                                                               clock: FixedClock) -> None:
    # Given ten published articles and the main feed rendered once
    site = make_site()
    publish(store, site, [parse_article(article_json(n)) for n in range(1, 11)], clock=clock)
    render_feed(store, site, tmp_path, "all", clock=clock)
    cache = fragment_cache(store)
    hits, misses = cache.hits, cache.misses
    # When one article is corrected and the feed rendered again
    clock.now += timedelta(minutes=5)
    publish(store, site, [parse_article(article_json(4, title="Article 4, corrected"))], clock=clock)
    render_feed(store, site, tmp_path, "all", clock=clock)
    # Then that one item was written anew in each format and the nine others were reused,
    # and the archive page that holds all ten was rewritten from the cache alone
    assert (cache.misses - misses, cache.hits - hits) == (3, 27 + 30)
    # And the feed shows the correction, as a render from scratch would
    snapshot = read_snapshot(store, site, "all")
    assert files(tmp_path, "all") == render_formats(snapshot.spec, snapshot.entries, site.site, clock(),
                                                    **current_options(store, site, "all", now=clock()))
    assert "Article 4, corrected" in [e.title for e in aggregate(files(tmp_path, "all")["rss"]).entries]


def test_two_stores_never_share_items(tmp_path: Path, clock: FixedClock) -> None:
    # Given two databases, each holding a different article under the same id and revision
    site = make_site()
    stores = [Store.from_url(f"sqlite:///{tmp_path / f'{name}.db'}") for name in ("one", "two")]
    try:
        for store, title in zip(stores, ("From store one", "From store two")):
            publish(store, site, [parse_article(article_json(1, title=title))], clock=clock)
        # When the main feed of each is rendered in the same process
        for store, name in zip(stores, ("one", "two")):
            render_feed(store, site, tmp_path / name, "all", clock=clock)
        # Then each feed shows its own store's article
        titles = [[e.title for e in aggregate(files(tmp_path / name, "all")["atom"]).entries]
                  for name in ("one", "two")]
        assert titles == [["From store one"], ["From store two"]]
    finally:
        for store in stores:
            store.dispose()


@pytest.mark.parametrize("changes", [{"language": "de"}, {"base_url": "https://moved.test.example/"}])
def test_changed_site_settings_are_never_served_from_old_items(store: Store, tmp_path: Path,
                                                               clock: FixedClock, changes) -> None:
    # Given a feed rendered under the site's settings
    publish(store, SITE, [parse_article(article_json(n, language="en")) for n in (1, 2)], clock=clock)
    render_feed(store, SITE, tmp_path, "all", clock=clock)
    # When the worker renders it again under changed settings
    site = site_variant(**changes)
    render_feed(store, site, tmp_path, "all", clock=clock)
    # Then the files are what those settings give from scratch
    snapshot = read_snapshot(store, site, "all")
    assert files(tmp_path, "all") == render_formats(snapshot.spec, snapshot.entries, site.site, clock(),
                                                    **current_options(store, site, "all", now=clock()))


def test_a_feed_whose_files_were_lost_is_rendered_again_after_a_restart(store: Store, site: SiteConfig,
                                                                      tmp_path: Path, clock: FixedClock) -> None:
    # Given every feed rendered, then a machine crash that left one file empty and lost another
    feeds = tmp_path / "feeds"
    publish(store, site, [parse_article(article_json(1), tz=site.site.tz)], clock=clock)
    render_all(store, site, feeds, clock=clock)
    (feeds / "all.atom").write_bytes(b"")
    (feeds / "tag" / "budget.json").unlink()
    # When a worker starts and checks the files
    clock.now += timedelta(seconds=1)
    damaged = damaged_feeds(store, feeds, clock=clock)
    # Then exactly those feeds are stale again, and a render brings back valid files
    assert damaged == ["all", "tag/budget"]
    with store.read() as session:
        assert sorted(s.feed_key for s in all_states(session) if s.stale) == ["all", "tag/budget"]
    for key in damaged:
        render_feed(store, site, feeds, key, clock=clock)
    assert xml((feeds / "all.atom").read_bytes()).tag.endswith("feed")
    assert json.loads((feeds / "tag" / "budget.json").read_bytes())["items"][0]["url"] == "https://news.test.example/a/1"
    assert damaged_feeds(store, feeds, clock=clock) == []


@pytest.mark.postgres
def test_a_change_committed_during_a_render_is_neither_refused_nor_lost_on_postgresql(
        tmp_path: Path, clock: FixedClock) -> None:
    # Given an article in the site feed, rendered, then updated (its archive row is noted)
    store = store_for("postgres", tmp_path)
    try:
        publish(store, SITE, [parse_article(article_json(1))], clock=clock)
        render_feed(store, SITE, tmp_path / "feeds", "all", clock=clock)
        publish(store, SITE, [parse_article(article_json(1, title="Updated"))], clock=clock)
        errors: list[BaseException] = []
        noted, go_on = threading.Event(), threading.Event()

        def change() -> None:
            """A change to the article as publishing makes one: archive note first, then the feed."""
            try:
                with store.transaction() as session:
                    note_changes(session, [("all", "art-1")])
                    noted.set()
                    go_on.wait(10)
                    mark_dirty(session, [("all", "")], now=clock())
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        def render() -> None:
            try:
                render_feed(store, SITE, tmp_path / "feeds", "all", clock=clock)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        writer, renderer = threading.Thread(target=change), threading.Thread(target=render)
        writer.start()
        assert noted.wait(10)
        # When the feed's render reaches the rows the change holds, and waits for them...
        renderer.start()
        wait_for(lambda: waiting_on_locks(store) or not renderer.is_alive(), 10, what="the render to wait")
        # ...and the change then marks the feed dirty and commits
        go_on.set()
        writer.join(30)
        renderer.join(30)
        # Then both commit (no deadlock: a deadlock fails one of them), and the change is not
        # lost: the feed is stale, so it renders once more
        assert errors == []
        assert [s.stale for s in all_states_of(store) if s.feed_key == "all"] == [True]
    finally:
        store.dispose()


def waiting_on_locks(store: Store) -> bool:
    with store.read() as session:
        return bool(session.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND query ILIKE 'UPDATE archive_items%'")))


def all_states_of(store: Store) -> list[Any]:
    with store.read() as session:
        return all_states(session)
