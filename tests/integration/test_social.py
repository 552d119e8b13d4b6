"""Posting to X on publish, through real tweepy against a local X API stand-in."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner
from twitter_text import parse_tweet

from apps.cli.app import app
from syndication.store.deliveries import all_pauses, list_deliveries
from tests.conftest import article_json
from tests.integration.conftest import running
from tests.support.stack import Stack, wait_for
from tests.support.x_standin import XStandIn

pytestmark = pytest.mark.integration

SOCIAL_SITE = """
[site]
title = "Social Gazette"
base_url = "https://news.test.example/"
timezone = "UTC"

[feeds]
sections = "*"
authors = "*"
tags = "*"

[social]
max_age_hours = 24
mention_authors = true

[staff."Ada Reporter"]
x = "adareporter"

[staff."Ben Columnist"]
x = "bencolumnist"

[channels.x]
template = "{{ title }} {{ url }} {{ mentions }} {{ hashtags }}"
posts_per_window = 10000
window_s = 900
max_attempts = 6
"""


def now_iso(offset_s: int = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset_s)).isoformat()


def x_env(standin: XStandIn) -> dict[str, str]:
    return {"X__CONSUMER_KEY": "ck-test-key", "X__CONSUMER_SECRET": "cs-test-secret",
            "X__ACCESS_TOKEN": "at-test-token", "X__ACCESS_TOKEN_SECRET": "ats-test-secret",
            "X__STAFF_LIST_ID": "1234", "X__API_BASE_URL": standin.url}


def standin() -> XStandIn:
    return XStandIn(secrets=("cs-test-secret", "ats-test-secret"))


@pytest.fixture(scope="module")
def x() -> Iterator[XStandIn]:
    """One X stand-in for the module's stack, emptied before each test (``social_stack``)."""
    with standin() as server:
        yield server


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory, backend: str, x: XStandIn) -> Iterator[Stack]:
    with running(tmp_path_factory.mktemp("social"), backend, extra_env=x_env(x), site_toml=SOCIAL_SITE) as stack:
        yield stack


@pytest.fixture
def social_stack(shared_stack: Stack, x: XStandIn) -> Stack:
    """The module's stack with nothing left in motion by an earlier test, and an X account with
    nothing on it (reset through the stand-in's control API, as another process would)."""
    shared_stack.wait_settled()
    assert httpx.post(f"{x.url}/_standin/reset", timeout=5).status_code == 200
    return shared_stack


def publish(stack: Stack, *articles: dict[str, object]) -> None:
    with stack.client() as http:
        r = http.post("/api/v1/articles", json=list(articles), headers=stack.auth())
    assert r.status_code == 202, r.text


def tweets_for(x: XStandIn, url: str) -> list[str]:
    """The texts (as we sent them, before X shortens links) of live posts linking to ``url``."""
    return [t.original_text for t in x.live_tweets if url in t.original_text.split()]


def test_each_article_is_posted_once_within_280_weighted_characters(social_stack: Stack, x: XStandIn) -> None:
    # Given articles in English, Japanese and emoji, by a staff reporter no other test mentions
    titles = {
        "en": "Council passes the budget after a long night of negotiations " * 6,
        "ja": "東京の新しい地下鉄路線が開業、通勤時間が大幅に短縮される見込み" * 5,
        "emoji": "🎉👨‍👩‍👧‍👦🇺🇦👍🏽 celebration " * 12,
    }
    articles = [article_json(k, title=t, published_at=now_iso(), tags=["City Hall", "Budget 2027"],
                             authors=[{"name": "Ben Columnist"}]) for k, t in titles.items()]
    # When they are published
    publish(social_stack, *articles)
    # Then each is posted exactly once, with its link and the reporter's mention, within 280
    wait_for(lambda: len(x.live_tweets) >= 3, 30, what="three posts")
    social_stack.wait_settled()  # nothing more arrives
    assert len(x.tweets) == 3
    for article in articles:
        [text] = tweets_for(x, str(article["url"]))
        assert parse_tweet(text).weightedLength <= 280
        assert "@bencolumnist" in text
    # And the reporter was added to the staff list once
    wait_for(lambda: x.members_of("1234"), 10, what="list membership")
    assert x.members_of("1234") == ["bencolumnist"]


def test_withdrawal_deletes_the_post(social_stack: Stack, x: XStandIn) -> None:
    article = article_json("gone", published_at=now_iso())
    publish(social_stack, article)
    wait_for(lambda: x.live_tweets, 30, what="the post")
    # When the article is withdrawn
    with social_stack.client() as http:
        assert http.delete("/api/v1/articles/art-gone", headers=social_stack.auth()).status_code == 202
    # Then its post is deleted on X
    wait_for(lambda: not x.live_tweets, 30, what="the deletion")
    assert len(x.deleted_ids) == 1


def test_imports_and_old_articles_are_never_posted(social_stack: Stack, x: XStandIn, tmp_path: Path) -> None:
    # Given an import of fresh articles, and an API publish of a week-old article
    path = tmp_path / "backfill.ndjson"
    path.write_text("\n".join(json.dumps(article_json(f"bf-{i}", published_at=now_iso()))
                              for i in range(3)))
    env = {k: v for k, v in social_stack.env().items() if k.startswith("SYNDICATION_")}
    result = CliRunner().invoke(app, ["import", str(path)], env=env)
    assert result.exit_code == 0, result.output
    publish(social_stack, article_json("old", published_at=now_iso(-7 * 86400)))
    # And then one fresh article, as a marker that posting works
    publish(social_stack, article_json("fresh", published_at=now_iso()))
    wait_for(lambda: x.live_tweets, 30, what="the fresh post")
    social_stack.wait_settled()
    # Then only the fresh one was posted
    assert len(x.tweets) == 1
    assert tweets_for(x, "https://news.test.example/a/fresh")


def test_rate_limit_pauses_the_channel_until_reset(social_stack: Stack, x: XStandIn) -> None:
    # Given X answers the next post with 429, resetting in 4 seconds
    reset_at = x.rate_limit_next(int(time.time()) + 4, method="POST", path="/2/tweets")
    publish(social_stack, article_json("limited", published_at=now_iso()))
    # Then the channel is paused until the reset time, where every worker sees it
    def paused() -> bool:
        with social_stack.runtime.store.read() as session:
            return any(p.channel == "x" and p.paused_until and p.paused_until.timestamp() >= reset_at - 1
                       for p in all_pauses(session))
    wait_for(paused, 20, what="the pause")
    # And the post goes out after the reset, once
    wait_for(lambda: x.live_tweets, 40, what="the post after reset")
    assert time.time() >= reset_at
    assert len(x.tweets) == 1


def test_server_errors_are_retried_to_success(social_stack: Stack, x: XStandIn) -> None:
    # Given X answers the next three posts with 503
    x.fail_next(3, 503, method="POST", path="/2/tweets")
    publish(social_stack, article_json("retry", published_at=now_iso()))
    # Then the post is made once, after retries
    wait_for(lambda: x.live_tweets, 60, what="the post after 503s")
    social_stack.wait_settled()
    assert len(x.tweets) == 1
    with social_stack.runtime.store.read() as session:
        [delivery] = [d for d in list_deliveries(session) if d.channel == "x" and d.article_id == "art-retry"]
    assert delivery.state == "posted" and delivery.attempts >= 4


def test_an_unknown_outcome_is_reconciled_not_posted_twice(social_stack: Stack, x: XStandIn) -> None:
    # Given X stores the post but the answer is lost (503 after storing)
    x.post_then_fail_next()
    publish(social_stack, article_json("ambiguous", published_at=now_iso()))
    # Then the retry finds the post on the account and adopts it
    def settled() -> bool:
        with social_stack.runtime.store.read() as session:
            return any(d.channel == "x" and d.article_id == "art-ambiguous" and d.state == "posted"
                       for d in list_deliveries(session))
    wait_for(settled, 60, what="reconciliation")
    social_stack.wait_settled()
    assert len(x.tweets) == 1


def test_a_malformed_400_fails_one_delivery_and_the_channel_goes_on(social_stack: Stack, x: XStandIn) -> None:
    # Given X answers the next post with a 400 whose body is not an error object
    x.fail_next(1, 400, method="POST", path="/2/tweets", body="<html>Bad Request</html>")
    # When two articles are published, one after the other
    publish(social_stack, article_json("refused", published_at=now_iso()))
    social_stack.wait_settled()
    publish(social_stack, article_json("after", published_at=now_iso()))
    wait_for(lambda: x.live_tweets, 30, what="the second post")
    social_stack.wait_settled()
    # Then the first delivery is in the failed set with X's answer, and the second was posted
    with social_stack.runtime.store.read() as session:
        by_article = {d.article_id: d for d in list_deliveries(session) if d.channel == "x"}
        pauses = [p for p in all_pauses(session) if p.channel == "x" and p.active(datetime.now(timezone.utc))]
    assert by_article["art-refused"].state == "failed"
    assert "400" in (by_article["art-refused"].last_error or "")
    assert by_article["art-after"].state == "posted"
    assert tweets_for(x, "https://news.test.example/a/after")
    # And the channel was never paused
    assert pauses == []


@pytest.fixture
def own_x() -> Iterator[XStandIn]:
    with standin() as server:
        yield server


@pytest.fixture
def own_stack(tmp_path: Path, backend: str, own_x: XStandIn) -> Iterator[Stack]:
    """A stack of the test's own, with its own X stand-in: the test kills it."""
    with running(tmp_path / "stack", backend, extra_env=x_env(own_x), site_toml=SOCIAL_SITE) as stack:
        yield stack


@pytest.mark.timeout(300)
def test_stack_killed_while_posting_a_burst_posts_each_exactly_once(own_stack: Stack, own_x: XStandIn) -> None:
    stack, x = own_stack, own_x
    # Given slow X answers, so that posts are in flight when the stack dies
    x.slow_next(1.5, count=6, method="POST", path="/2/tweets")
    articles = [article_json(f"burst-{i}", published_at=now_iso(), title=f"Burst story {i}") for i in range(30)]
    sender = threading.Thread(target=lambda: [publish(stack, a) for a in articles])
    sender.start()
    wait_for(lambda: len(x.requests) > 3, 30, what="posting to start")
    # When every worker and redis-server are SIGKILLed mid-burst
    stack.kill_workers()
    stack.kill_redis()
    sender.join(60)
    # And the stack is started again on the same data
    stack.restart_redis()
    stack.start_workers()
    # Then every article is posted exactly once
    def all_posted() -> bool:
        return all(tweets_for(x, str(a["url"])) for a in articles)
    wait_for(all_posted, 150, interval=1, what="every article posted")
    stack.wait_settled()
    counts = {str(a["url"]): len(tweets_for(x, str(a["url"]))) for a in articles}
    assert set(counts.values()) == {1}, counts
