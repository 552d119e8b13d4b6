"""Which feeds an article lands in, what a feed key may be, and where the files go."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from config import FeedsConfig
from syndication.articles import parse_article
from syndication.errors import ValidationError
from syndication.feeds.catalog import ALL, FORMATS, feeds_for, parse_key
from syndication.publishing import publish
from syndication.rendering import render_feed
from syndication.store import Store
from tests.conftest import FixedClock, article_json, make_site


def keys(article_payload: dict[str, object], config: FeedsConfig) -> list[str]:
    return [spec.key for spec in feeds_for(parse_article(article_payload), config)]


ARTICLE = article_json(1, section="Politics", tags=["Budget", "City Council"],
                       authors=[{"name": "Ada Reporter"}, {"name": "Bruno Desk"}])


def test_with_every_selection_open_an_article_lands_in_all_its_feeds() -> None:
    # Given a site that makes a feed for every section, author and tag
    config = FeedsConfig(sections="*", authors="*", tags="*")
    # When an article with one section, two authors and two tags arrives
    # Then it is in the main feed first, and in one feed for each of them
    assert keys(ARTICLE, config) == [
        "all", "section/politics", "author/ada-reporter", "author/bruno-desk",
        "tag/budget", "tag/city-council",
    ]


def test_a_listed_selection_makes_only_the_named_feeds_ignoring_case() -> None:
    # Given a site that only wants a politics feed, one author's feed, and no tag feeds
    config = FeedsConfig(sections=["POLITICS"], authors=["ada reporter"], tags=[])
    # When the article arrives
    # Then only those feeds get it (the names matched whatever their case)
    assert keys(ARTICLE, config) == ["all", "section/politics", "author/ada-reporter"]


def test_an_article_outside_every_selection_is_still_in_the_main_feed() -> None:
    # Given a site that lists sections, authors and tags the article has none of
    config = FeedsConfig(sections=["Sport"], authors=["Nobody"], tags=["Weather"])
    # Then the article is still published, in the main feed only
    assert keys(ARTICLE, config) == ["all"]


def test_the_default_site_makes_no_tag_feeds() -> None:
    # Given the feeds configuration nobody changed
    # Then tags do not spawn feeds (there are too many of them), sections and authors do
    assert keys(ARTICLE, FeedsConfig()) == [
        "all", "section/politics", "author/ada-reporter", "author/bruno-desk"]


def test_two_spellings_of_one_tag_make_one_feed() -> None:
    # Given an article whose tags differ only in punctuation
    payload = article_json(1, tags=["City Council", "city-council"], section=None, authors=[])
    # Then there is one tag feed, not two that would overwrite each other's file
    assert keys(payload, FeedsConfig(tags="*")) == ["all", "tag/city-council"]


def test_a_feed_keeps_its_human_label() -> None:
    # Given a section with a non-ASCII name
    specs = feeds_for(parse_article(article_json(1, section="経済", authors=[], tags=[])), FeedsConfig())
    # Then its feed is titled with the name readers know, not the hash in its file name
    section = specs[1]
    assert section.kind == "section" and section.label == "経済"
    assert section.title("Gazette") == "Gazette — Section: 経済"
    assert parse_key(section.key).slug == section.slug


@pytest.mark.parametrize("key", ["all", "section/sport", "author/ada-reporter", "tag/x-91fe20ca12"])
def test_a_well_formed_key_names_a_feed(key: str) -> None:
    # Given a key like the ones the catalogue makes, then it is understood
    assert parse_key(key).key == key


@pytest.mark.parametrize("key", [
    "../x", "section/../../etc", "section/", "nope/x", "section/a/b", "section/.hidden",
    "section/Sport", "all/", "", "/section/sport", "section\\..\\x", "section/-x", "section/a\x00",
])
def test_a_malformed_or_hostile_key_is_refused(key: str) -> None:
    # Given a feed key typed by an operator or sent by a client
    # When it is parsed
    with pytest.raises(ValidationError) as caught:
        parse_key(key)
    # Then it is refused as a bad feed key, before any path is built from it
    assert [e.field for e in caught.value.errors] == ["feed"]


def test_a_hostile_section_writes_only_inside_the_feeds_folder(tmp_path: Path) -> None:
    # Given a deployment folder with the feeds folder inside it and the database elsewhere
    root = tmp_path / "deploy"
    feeds_dir = root / "public" / "feeds"
    feeds_dir.mkdir(parents=True)
    site = make_site()
    clock = FixedClock()
    store = Store.from_url(f"sqlite:///{tmp_path / 'db' / 'test.db'}")
    try:
        # And an article whose section, author and tag try to climb out of it
        hostile = parse_article(article_json(
            1, section="../../etc/passwd", tags=["../../../x", "/abs/path"],
            authors=[{"name": "../../.ssh/authorized_keys"}]), tz=site.site.tz)
        outcome = publish(store, site, [hostile], clock=clock)
        # When every feed it touched is rendered
        for key in sorted(outcome.feed_keys):
            render_feed(store, site, feeds_dir, key, clock=clock)
    finally:
        store.dispose()
    # Then every file written is inside the feeds folder
    written = [p for p in root.rglob("*") if p.is_file()]
    assert written
    outside = [p for p in written if not p.resolve().is_relative_to(feeds_dir.resolve())]
    assert outside == []
    assert not (tmp_path / "etc").exists() and not (root / "etc").exists()
    # And the article is in its section's feed under a harmless name, with no leftover temp files
    assert sorted(p.relative_to(feeds_dir).as_posix() for p in written) == sorted(
        f"{key}{page}.{ext}" for key in outcome.feed_keys for ext in ("rss", "atom", "json")
        for page in ("", "/archive/1"))
    section = json.loads((feeds_dir / "section" / "etc-passwd.json").read_text(encoding="utf-8"))
    assert [item["title"] for item in section["items"]] == ["Article 1"]


def test_feed_files_are_named_after_their_key() -> None:
    # Given the main feed and a section feed
    # Then their files sit where readers' URLs expect them, one per format
    assert [ALL.relpath(fmt) for fmt in FORMATS.values()] == ["all.rss", "all.atom", "all.json"]
    assert parse_key("section/sport").relpath(FORMATS["atom"]) == "section/sport.atom"
