"""Every bad request is answered 4xx, names what is wrong, and changes nothing."""
from __future__ import annotations

import json
import time

import pytest

from syndication.store.articles import count_articles as count
from apps.web.auth import sign
from tests.conftest import article_json
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"  # nothing here depends on the database: one backend is enough


def count_articles(stack: Stack) -> int:
    with stack.runtime.store.read() as session:
        return count(session)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"},
                                     {"Authorization": "Bearer"}])
def test_publishing_without_a_valid_token_is_401(stack: Stack, headers: dict[str, str]) -> None:
    before = count_articles(stack)
    with stack.client() as http:
        r = http.post("/api/v1/articles", json=article_json("bad-auth"), headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert count_articles(stack) == before


def test_invalid_json_is_400_and_invalid_articles_422_with_fields(stack: Stack) -> None:
    before = count_articles(stack)
    with stack.client() as http:
        not_json = http.post("/api/v1/articles", content=b"{nope", headers=stack.auth())
        batch = http.post("/api/v1/articles", headers=stack.auth(), json=[
            article_json("ok-in-bad-batch"),
            article_json("bad-url", url="javascript:alert(1)"),
            {**article_json("no-title"), "title": "  "},
        ])
        empty = http.post("/api/v1/articles", json=[], headers=stack.auth())
        scalar = http.post("/api/v1/articles", json="hello", headers=stack.auth())
    assert not_json.status_code == 400 and "JSON" in not_json.json()["detail"]
    # The batch is refused whole; each error names the article's index and field
    assert batch.status_code == 422
    errors = {(e["index"], e["field"]) for e in batch.json()["errors"]}
    assert {(1, "url"), (2, "title")} <= errors
    assert empty.status_code == 422 and scalar.status_code == 422
    assert count_articles(stack) == before


def test_body_over_the_limit_is_413(stack: Stack) -> None:
    huge = json.dumps(article_json("huge", content_html="x" * (5 * 1024 * 1024))).encode()
    with stack.client() as http:
        declared = http.post("/api/v1/articles", content=huge, headers=stack.auth())

        def chunks():  # no Content-Length: the limit must hold on the streamed bytes too
            for i in range(0, len(huge), 65536):
                yield huge[i:i + 65536]

        streamed = http.post("/api/v1/articles", content=chunks(), headers=stack.auth())
    assert declared.status_code == 413 and streamed.status_code == 413


def test_unknown_articles_and_feeds_are_404_and_paths_cannot_escape(stack: Stack) -> None:
    with stack.client() as http:
        assert http.delete("/api/v1/articles/no-such", headers=stack.auth()).status_code == 404
        assert http.get("/api/v1/articles/no-such", headers=stack.auth()).status_code == 404
        for path in ["/feeds/../syndication.db", "/feeds/..%2F..%2Fetc%2Fpasswd", "/feeds/section/../../x.rss",
                     "/feeds/all.xml", "/feeds/nope/x.rss", "/feeds/%00.rss", "/feeds/section/sport.rss/"]:
            r = http.get(path)
            assert 400 <= r.status_code < 500, path
        assert http.put("/api/v1/articles", headers=stack.auth()).status_code == 405


def test_signed_webhook_checks_signature_and_replay_window(stack: Stack) -> None:
    # Given a stack with no webhook secret, and then the HMAC rules themselves
    body = json.dumps(article_json("hook-1")).encode()
    with stack.client() as http:
        unsigned = http.post("/api/v1/webhook", content=body)
        no_secret = http.post("/api/v1/webhook", content=body,
                              headers={"X-Syndication-Signature": sign("s3cret-value", int(time.time()), body)})
    assert unsigned.status_code == 401 and no_secret.status_code == 401


def test_an_id_with_a_newline_is_422_naming_id_and_forges_no_log_line(stack: Stack) -> None:
    # Given an id crafted to write a fake line into plain-text logs
    before = count_articles(stack)
    forged = article_json("x", id="a1\n2026-11-30 12:00:00,000 ERROR syndication: forged")
    # When it is published
    with stack.client() as http:
        r = http.post("/api/v1/articles", json=forged, headers=stack.auth())
    # Then it is refused, naming the field, and nothing is stored
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["id"]
    assert count_articles(stack) == before
