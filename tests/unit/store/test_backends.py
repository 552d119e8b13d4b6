"""SQLite and PostgreSQL are interchangeable: the same articles give the same feed files, byte for byte."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from config import SiteConfig
from syndication.publishing import parse_batch, publish, unpublish
from syndication.rendering import render_feed
from syndication.store import Store
from syndication.store.articles import all_feed_keys
from tests.conftest import FixedClock, article_json, fresh_postgres, make_site, postgres_url

FORMATS = ("rss", "atom", "json")

CORPUS: list[dict[str, object]] = [
    article_json(1, title="東京の新しい地下鉄路線が開業", section="経済", language="ja",
                 summary="新路線は2つの区を結ぶ。", tags=["交通", "Tokyo"],
                 authors=[{"name": "山田 花子"}]),
    article_json(2, title="البرلمان يقر الميزانية", section="السياسة", language="ar",
                 summary="<p dir=\"rtl\">صوّت المجلس بأغلبية</p>", authors=[{"name": "ليلى"}]),
    article_json(3, title="Late winner settles the derby ⚽🎉", section="Sport", tags=["Football", "⚽"]),
    article_json(4, title="Hostile <b>markup</b> & friends",
                 content_html=('<p onclick="x()" style="color:red">Hi <a href="javascript:alert(1)">js</a>'
                               ' <a href="/rel">rel</a></p><script>alert(1)</script>'
                               '<iframe src="https://evil.example/"></iframe>'),
                 summary="Ends with \x00 a control \ufffe character"),
    article_json(5, title="Budget vote, with photo",
                 image={"url": "https://img.test.example/budget.jpg", "type": "image/jpeg",
                        "length": 84211, "alt": "Council chamber"}),
    article_json(6, title="Naive date, read in Berlin", published_at="2026-11-20T18:05:00",
                 authors=[{"name": "Bruno Desk"}, {"name": "Ada Reporter", "x": "@adareporter"}]),
    article_json(7, title="Will be withdrawn"),
    article_json(8, title="Image of unknown size", image={"url": "https://img.test.example/chart.png"},
                 updated_at="2026-11-21T10:00:00Z"),
    # Three stories stamped with the same minute, whose ids differ in case and punctuation:
    # the tie is broken by id, which must not depend on the database's collation.
    *[article_json(9, id=tie, title=f"Tie {tie}", published_at="2026-11-25T12:00:00Z")
      for tie in ("art-a", "Art-B", "art_c")],
]
UPDATE = article_json(5, title="Budget vote, with photo (corrected)",
                      content_html="<p>Correction: the vote was 7–4.</p>")


def publish_and_render(store: Store, site: SiteConfig, feeds_dir: Path) -> dict[str, bytes]:
    """The same story on any backend: publish, update, withdraw, render every feed."""
    clock = FixedClock()
    articles, refused = parse_batch(CORPUS, site=site)
    assert refused == []
    publish(store, site, articles, clock=clock)
    clock.now += timedelta(hours=2)
    updated, refused = parse_batch([UPDATE], site=site)
    assert refused == []
    publish(store, site, updated, clock=clock)
    clock.now += timedelta(hours=1)
    unpublish(store, "art-7", clock=clock)
    clock.now += timedelta(minutes=1)
    with store.read() as session:
        keys = all_feed_keys(session)
    for key in keys:
        render_feed(store, site, feeds_dir, key, clock=clock)
    return {p.relative_to(feeds_dir).as_posix(): p.read_bytes()
            for p in sorted(feeds_dir.rglob("*")) if p.is_file()}


@pytest.mark.postgres
def test_sqlite_and_postgresql_render_byte_identical_feeds(tmp_path: Path) -> None:
    url = postgres_url()
    if url is None:
        pytest.skip("set SYNDICATION_TEST_POSTGRES_URL to compare against PostgreSQL")
    site = make_site()
    # Given the same newsroom day (CJK, Arabic, emoji, hostile HTML, an image, a naive
    # date, an update and a withdrawal) stored once in SQLite and once in PostgreSQL
    sqlite = Store.from_url(f"sqlite:///{tmp_path / 'test.db'}")
    postgres = fresh_postgres(url)
    try:
        # When every feed is rendered from each with the same clock
        from_sqlite = publish_and_render(sqlite, site, tmp_path / "sqlite-feeds")
        from_postgres = publish_and_render(postgres, site, tmp_path / "postgres-feeds")
    finally:
        sqlite.dispose()
        postgres.dispose()
    # Then both wrote the same set of files, every feed in every format
    assert sorted(from_sqlite) == sorted(from_postgres)
    keys = {name.rsplit(".", 1)[0] for name in from_sqlite}
    assert {"all", "section/sport", "author/ada-reporter", "tag/football"} <= keys
    assert sorted(from_sqlite) == sorted(f"{k}.{fmt}" for k in keys for fmt in FORMATS)
    # And each file is byte-for-byte the same, so switching database never changes what readers see
    different = [name for name in from_sqlite if from_sqlite[name] != from_postgres[name]]
    assert different == []
    # And the files hold what was sent (so "identical" is not "identically empty")
    assert "地下鉄".encode() in from_sqlite["all.json"]
    assert "(corrected)".encode() in from_sqlite["all.atom"]
    assert b"Will be withdrawn" not in from_sqlite["all.rss"]
    assert b"Tie Art-B" in from_sqlite["all.rss"]
