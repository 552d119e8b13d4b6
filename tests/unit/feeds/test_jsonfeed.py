"""JSON Feed 1.1 as a reader sees it: parsed with json.loads, checked against the spec."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from syndication.articles import Article, StoredArticle
from syndication.feeds import ALL, FeedSpec, entry_id, render_json, render_rss
from tests.unit.feeds.factories import BASE, HUBS, T0, article, corpus, entries, site, stored
from tests.unit.feeds.reading import aggregate

NOW = T0 + timedelta(days=3)
VERSION = "https://jsonfeed.org/version/1.1"


def read(data: bytes) -> dict:
    return json.loads(data.decode("utf-8"))


def nulls(value, path="$"):
    """Paths of every null in a JSON value."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}[{i}]")]
    return []


def test_top_level_has_what_json_feed_1_1_requires_and_describes_the_site():
    # Given a site with hubs and a logo
    gazette = site(hubs=HUBS)
    # When a tag feed is rendered as JSON Feed
    feed = read(render_json(FeedSpec("tag", "harbour", "harbour"), entries(2), gazette, NOW))
    # Then version, title and items are present
    assert feed["version"] == VERSION
    assert feed["title"] == FeedSpec("tag", "harbour", "harbour").title(gazette.title)
    assert isinstance(feed["items"], list)
    # And the home page, the feed's own URL, description, icons, language and authors
    assert feed["home_page_url"] == gazette.home
    assert feed["feed_url"] == f"{gazette.feeds_base}/tag/harbour.json"
    assert feed["description"] == gazette.description
    assert feed["icon"] == feed["favicon"] == str(gazette.logo)
    assert feed["language"] == "en"
    assert feed["authors"][0]["name"] == gazette.title
    # And each WebSub hub
    assert feed["hubs"] == [{"type": "WebSub", "url": str(h)} for h in gazette.hubs]


def test_items_are_newest_first_with_the_same_ids_as_rss():
    # Given three articles, newest first
    gazette, items = site(), entries(3)
    # When rendered as JSON Feed and as RSS
    feed = read(render_json(ALL, items, gazette, NOW))
    rss = aggregate(render_rss(ALL, items, gazette, NOW))
    # Then the items keep the order and share ids with the RSS guids
    assert [i["id"] for i in feed["items"]] == [entry_id(gazette, s.article.id) for s in items]
    assert [i["id"] for i in feed["items"]] == [e.id for e in rss.entries]
    for item, entry in zip(feed["items"], items):
        assert item["url"] == entry.article.url
        assert item["title"] == entry.article.title
        assert item["content_html"] == entry.article.content_html
        assert datetime.fromisoformat(item["date_published"]) == entry.article.published_at
        assert datetime.fromisoformat(item["date_modified"]) == entry.updated
        assert item["authors"] == [{"name": a.name} for a in entry.article.authors]
        assert item["tags"] == [entry.article.section, *entry.article.tags]


def test_summary_is_plain_text():
    # Given an article whose summary is HTML
    item = article(1, summary="<p>Rates <b>rise</b> &amp; fall</p>")
    # When rendered
    (rendered,) = read(render_json(ALL, [stored(item)], site(), NOW))["items"]
    # Then the JSON summary has no markup (JSON Feed allows HTML only in content_html)
    assert rendered["summary"] == "Rates rise & fall"


def test_image_is_also_an_attachment_with_type_and_size():
    # Given one image of known size and one of unknown size
    sized = article(1, image={"url": f"{BASE}/i/1.png", "length": 4096})
    unsized = article(2, image={"url": f"{BASE}/i/2.jpeg"})
    # When rendered
    first, second = read(render_json(ALL, [stored(sized), stored(unsized)], site(), NOW))["items"]
    # Then both are the item image and an attachment; the unknown size is left out
    assert first["image"] == f"{BASE}/i/1.png"
    assert first["attachments"] == [
        {"url": f"{BASE}/i/1.png", "mime_type": "image/png", "size_in_bytes": 4096}]
    assert second["attachments"] == [{"url": f"{BASE}/i/2.jpeg", "mime_type": "image/jpeg"}]


def test_null_fields_are_left_out():
    # Given an article with no summary, body, section, tags, authors, language or image,
    # and a site with no description or logo
    bare = article(1, summary=None, content_html=None, section=None, tags=[], authors=[])
    # When rendered
    feed = read(render_json(ALL, [stored(bare)], site(description="", logo=None), NOW))
    # Then there is no null anywhere, and the item still has text content, as 1.1 requires
    assert nulls(feed) == []
    (item,) = feed["items"]
    assert "content_html" in item or "content_text" in item
    for absent in ("summary", "image", "tags", "authors", "attachments", "language"):
        assert absent not in item
    for absent in ("description", "icon", "favicon", "hubs"):
        assert absent not in feed


def test_item_language_is_given_when_the_article_has_one():
    (item,) = read(render_json(ALL, [stored(article(1, language="pt-BR"))], site(), NOW))["items"]
    assert item["language"] == "pt-BR"


def test_output_is_deterministic_utf8_without_ascii_escapes():
    # Given the awkward corpus (CJK, Arabic, emoji, hostile HTML, a long body)
    items = corpus()
    # When rendered twice, at different wall-clock times
    first = render_json(ALL, items, site(hubs=HUBS), NOW)
    second = render_json(ALL, items, site(hubs=HUBS), NOW + timedelta(hours=1))
    # Then the bytes are identical, valid UTF-8 JSON, and non-ASCII text is not \u-escaped
    assert first == second
    feed = read(first)
    assert [i["title"] for i in feed["items"]] == [s.article.title for s in items]
    japanese = next(s.article.title for s in items if s.article.language == "ja")
    assert japanese.encode("utf-8") in first


def test_empty_feed_has_an_empty_item_list():
    feed = read(render_json(ALL, [], site(), NOW))
    assert feed["version"] == VERSION and feed["items"] == []


def test_a_lone_surrogate_that_bypassed_parse_article_does_not_break_the_file():
    # Given an article built without parse_article, holding a lone surrogate
    bad = Article.model_construct(**{**dict(article(1)), "title": "Half\ud800 a pair"})
    # When rendered as JSON Feed
    feed = read(render_json(ALL, [StoredArticle(bad, 1, "published", "api", T0, T0)], site(), NOW))
    # Then the file is valid UTF-8 JSON without the surrogate
    assert feed["items"][0]["title"] == "Half a pair"
