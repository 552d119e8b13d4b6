"""An embargoed article, through a SIGKILL of the whole stack (workers, beat and redis-server: the
armed alarm goes with them): in no feed and no channel before its time, in both after it, released once.

How soon after its time is measured in bench/ (``release_to_visible_*``), not asserted here.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import feedparser
import pytest

from syndication.store.timeline import steps_of
from tests.conftest import article_json
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.integration
URL = "https://news.test.example/a/embargoed"


def preview_posts(root: Path) -> list[dict[str, object]]:
    """The preview channel's posts of the embargoed article, from its JSON-lines file."""
    path = root / "var" / "preview-posts.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [r for r in (json.loads(line) for line in lines if line.strip())
            if r.get("action") == "post" and r.get("url") == URL]


def article_state(stack: Stack) -> dict[str, object]:
    with stack.client() as http:
        r = http.get("/api/v1/articles/embargoed", headers=stack.auth())
    assert r.status_code == 200, r.text
    return r.json()


def feed_links(stack: Stack) -> set[str]:
    with stack.client() as http:
        r = http.get("/feeds/all.rss")
    return {e.link for e in feedparser.parse(r.content).entries} if r.status_code == 200 else set()


@pytest.mark.timeout(180)
def test_an_article_scheduled_5_s_ahead_comes_out_at_its_time_through_a_sigkill(tmp_path: Path) -> None:
    stack = Stack(tmp_path).start()
    try:
        # Given an article the CMS schedules 5 s ahead
        due = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5)
        with stack.client() as http:
            r = http.post("/api/v1/articles", headers=stack.auth(), json=article_json(
                "embargoed", id="embargoed", url=URL, section="Embargoed", published_at=due.isoformat()))
        # Then the API answers that it is scheduled, and shows it so
        assert r.status_code == 202 and r.json()["articles"][0]["status"] == "scheduled"
        assert article_state(stack)["status"] == "scheduled"
        assert URL not in feed_links(stack) and preview_posts(tmp_path) == []
        # When the whole stack is SIGKILLed before its time (the armed alarm in redis-server with it)
        stack.kill_workers()
        stack.kill_redis()
        assert datetime.now(timezone.utc) < due, "the machine was too slow to kill the stack before the due time"
        # And started again on the same data folder
        stack.restart_redis()
        stack.start_workers()
        # Then it comes out, in the feed and in the channel
        wait_for(lambda: URL in feed_links(stack), 60, what="the embargoed article in all.rss")
        wait_for(lambda: preview_posts(tmp_path), 60, what="the embargoed article posted")
        stack.wait_settled()
        state = article_state(stack)
        with stack.runtime.store.read() as session:
            steps = steps_of(session, "embargoed")
    finally:
        stack.stop()
    # And never before its time: released, rendered and posted at or after it, each once
    assert state["status"] == "published"
    released = [s for s in steps if s.kind == "released"]
    rendered_all = [s for s in steps if s.kind == "rendered" and s.detail.get("feed") == "all"]
    assert len(released) == 1 and released[0].at >= due
    assert rendered_all and min(s.at for s in rendered_all) >= due
    [post] = preview_posts(tmp_path)
    assert datetime.fromisoformat(str(post["at"])) >= due
    # And its timeline tells the story in order: scheduled, then released
    kinds = [s.kind for s in steps]
    assert kinds.index("scheduled") < kinds.index("released")
