"""The event pipeline seen from outside: publish over HTTP, read the served feeds."""
from __future__ import annotations

import json

import feedparser
import httpx
import pytest
from lxml import html as lxml_html

from tests.conftest import article_json
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.integration


def feed_ids(stack: Stack, path: str = "all.rss") -> list[str]:
    with stack.client() as http:
        response = http.get(f"/feeds/{path}")
    if response.status_code != 200:
        return []
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return [e.link for e in parsed.entries]


def test_published_article_appears_in_every_served_format(stack: Stack) -> None:
    # Given a running stack
    article = article_json("flow-1", section="Science", tags=["Space"], title="Rocket lands")
    # When the CMS publishes an article
    with stack.client() as http:
        response = http.post("/api/v1/articles", json=article, headers=stack.auth())
    # Then it is accepted with an event id
    assert response.status_code == 202
    body = response.json()
    assert body["events"] and body["articles"][0]["status"] == "created"
    # And it shows in the site feed, its section feed and its tag feed, in all three formats
    wait_for(lambda: article["url"] in feed_ids(stack), 10, what="article in all.rss")
    wait_for(lambda: article["url"] in feed_ids(stack, "section/science.atom"), 10, what="section atom")

    def tag_feed() -> httpx.Response | None:  # each feed renders on its own: wait for this one too
        with stack.client() as http:
            js = http.get("/feeds/tag/space.json")
        return js if js.status_code == 200 and article["url"] in [i["url"] for i in js.json()["items"]] else None

    js = wait_for(tag_feed, 10, what="tag json feed")
    assert js.headers["content-type"].startswith("application/feed+json")
    assert [i["url"] for i in js.json()["items"]] == [article["url"]]
    # And its status names the feeds, each rendered once its render has run
    def status() -> dict[str, object] | None:
        with stack.client() as http:
            found = http.get("/api/v1/articles/art-flow-1", headers=stack.auth()).json()
        return found if all(f["rendered"] for f in found["feeds"]) else None

    rendered = wait_for(status, 10, what="every feed of the article rendered")
    assert {f["feed"] for f in rendered["feeds"]} >= {"all", "section/science", "tag/space"}  # type: ignore[attr-defined]


def test_update_replaces_the_entry_and_withdraw_removes_it(stack: Stack) -> None:
    # Given a published article
    article = article_json("flow-2", title="First headline")
    with stack.client() as http:
        assert http.post("/api/v1/articles", json=article, headers=stack.auth()).status_code == 202
    wait_for(lambda: article["url"] in feed_ids(stack), 10, what="article")
    # When the CMS re-sends it with a new title
    with stack.client() as http:
        r = http.post("/api/v1/articles", json={**article, "title": "Corrected headline"}, headers=stack.auth())
    assert r.json()["articles"][0] == {**r.json()["articles"][0], "status": "updated", "revision": 2}

    def titles() -> list[str]:
        with stack.client() as http:
            parsed = feedparser.parse(http.get("/feeds/all.atom").content)
        return [e.title for e in parsed.entries if e.link == article["url"]]

    # Then the feed holds one entry for it, with the new title
    wait_for(lambda: titles() == ["Corrected headline"], 10, what="updated title")
    # When it is withdrawn
    with stack.client() as http:
        assert http.delete("/api/v1/articles/art-flow-2", headers=stack.auth()).status_code == 202
    # Then it leaves the feed, and its status says withdrawn
    wait_for(lambda: article["url"] not in feed_ids(stack), 10, what="withdrawal")
    with stack.client() as http:
        assert http.get("/api/v1/articles/art-flow-2", headers=stack.auth()).json()["status"] == "withdrawn"


def test_unchanged_feed_answers_304_and_gzip_when_asked(stack: Stack) -> None:
    # Given a rendered feed, with no render still to come that could change it under the reader
    with stack.client() as http:
        http.post("/api/v1/articles", json=article_json("flow-3"), headers=stack.auth())
    wait_for(lambda: "https://news.test.example/a/flow-3" in feed_ids(stack), 10, what="feed")
    stack.wait_settled()
    with stack.client() as http:
        first = http.get("/feeds/all.rss", headers={"Accept-Encoding": "identity"})
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        # When a reader comes back with its validators
        again = http.get("/feeds/all.rss", headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
        by_date = http.get("/feeds/all.rss", headers={"If-Modified-Since": modified, "Accept-Encoding": "identity"})
        head = http.head("/feeds/all.rss", headers={"Accept-Encoding": "identity"})
        zipped = http.get("/feeds/all.rss", headers={"Accept-Encoding": "gzip"})
    # Then it gets 304 Not Modified with no body, by ETag and by date
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/rss+xml")
    assert etag.startswith('"') and "max-age" in first.headers["cache-control"]
    assert again.status_code == 304 and again.content == b""
    assert by_date.status_code == 304
    # And HEAD gives the headers without a body
    assert head.status_code == 200 and head.headers["etag"] == etag and head.content == b""
    # And a gzip-capable reader gets the same feed compressed, under its own validator
    assert zipped.headers.get("content-encoding") == "gzip"
    assert zipped.headers["etag"] != etag
    assert zipped.content == first.content  # httpx decodes; same document


def test_home_page_lists_feeds_with_autodiscovery(stack: Stack) -> None:
    with stack.client() as http:
        http.post("/api/v1/articles", json=article_json("flow-4"), headers=stack.auth())
    wait_for(lambda: feed_ids(stack), 10, what="feed")
    with stack.client() as http:
        page = http.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    doc = lxml_html.fromstring(page.content)
    alternates = {l.get("type"): l.get("href") for l in doc.xpath('//link[@rel="alternate"]')}
    assert alternates["application/rss+xml"] == "/feeds/all.rss"
    assert alternates["application/atom+xml"] == "/feeds/all.atom"
    assert alternates["application/feed+json"] == "/feeds/all.json"


def test_openapi_describes_the_publish_api(stack: Stack) -> None:
    with stack.client() as http:
        spec = http.get("/openapi.json").json()
    assert {"/api/v1/articles", "/api/v1/articles/{article_id}", "/api/v1/webhook"} <= set(spec["paths"])
    json.dumps(spec)
