"""WebSub end to end: a running stack pings a real hub (Flask-WebSub's, in its own process),
which fetches the feed and hands the new content to a subscriber."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import feedparser
import httpx
import pytest

from syndication.publishing import utcnow
from syndication.status import collect_status
from syndication.store.timeline import steps_of
from tests.conftest import article_json
from tests.integration.conftest import running
from tests.support.stack import Stack, free_port, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"  # the hub path is the same on every database; the outbox rows are tested on both


class Subscriber:
    """A WebSub subscriber on 127.0.0.1: confirms intent (echoes hub.challenge), keeps each delivery."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                # Spec: WebSub §5.3 — answer the hub's verification with its challenge, 200
                challenge = parse_qs(urlsplit(self.path).query).get("hub.challenge", [""])[0].encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(challenge)))
                self.end_headers()
                self.wfile.write(challenge)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({"link": self.headers.get("Link", ""), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, "-m", "tests.support.websub_hub", str(port),
                                str(tmp_path_factory.mktemp("hub"))], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/control/pings", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 30, interval=0.1, what="the Flask-WebSub hub")
        yield f"{base}/hub"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the hub and its Celery worker
        process.wait()


@pytest.fixture(scope="module")
def hub_stack(tmp_path_factory: pytest.TempPathFactory, hub_url: str) -> Iterator[Stack]:
    """A stack whose feeds are served where the hub can fetch them, with one hub configured."""
    port = free_port()
    toml = f"""
[site]
title = "WebSub Gazette"
base_url = "http://127.0.0.1:{port}/"
timezone = "UTC"
hubs = ["{hub_url}"]

[feeds]
items = 50
sections = []
authors = []
tags = []
"""
    with running(tmp_path_factory.mktemp("stack"), "sqlite", site_toml=toml, port=port,
                 extra_env={"hub_backoff_base_s": "0.5", "hub_backoff_cap_s": "2"}) as stack:
        yield stack


def pings(hub_url: str) -> list[dict[str, Any]]:
    return httpx.get(hub_url.replace("/hub", "/control/pings"), timeout=5).json()


def test_a_published_article_reaches_a_subscriber_through_the_hub_retried_through_a_503(
        hub_stack: Stack, hub_url: str, request: pytest.FixtureRequest) -> None:
    def request_cleanup(subscriber: Subscriber) -> None:
        request.addfinalizer(subscriber.server.server_close)
        request.addfinalizer(subscriber.server.shutdown)

    base = f"{hub_stack.base}/feeds"
    topics = [f"{base}/all.atom", f"{base}/all.rss", f"{base}/all.json"]
    # Given a subscriber to all.atom, verified by the hub, and the feeds rendered once
    with hub_stack.client() as http:
        http.post("/api/v1/articles", json=article_json("hub-0", title="Before"), headers=hub_stack.auth())
    hub_stack.wait_settled()
    wait_for(lambda: Counter(p["topic"] for p in pings(hub_url) if p["status"] == 202) == Counter(topics), 30,
             what="the first pings")
    subscriber = Subscriber()
    request_cleanup(subscriber)
    answer = httpx.post(hub_url, data={"hub.mode": "subscribe", "hub.topic": topics[0],
                                       "hub.callback": subscriber.url}, timeout=10)
    assert answer.status_code == 202
    # And the feed names the hub in its Link headers, as the hub checks
    with hub_stack.client() as http:
        links = http.get("/feeds/all.atom").headers["link"]
    assert f'<{hub_url}>; rel="hub"' in links and f'<{topics[0]}>; rel="self"' in links
    # When the hub answers the next ping with 503 and an article is published
    seen = len(pings(hub_url))
    httpx.post(hub_url.replace("/hub", "/control/fail-next?n=1"), timeout=5)
    with hub_stack.client() as http:
        http.post("/api/v1/articles", json=article_json("hub-1", title="Harbour reopens"), headers=hub_stack.auth())
    # Then the subscriber receives the new feed content from the hub
    delivery = wait_for(lambda: next((d for d in subscriber.deliveries if b"Harbour reopens" in d["body"]), None),
                        60, interval=0.2, what="the hub's delivery to the subscriber")
    parsed = feedparser.parse(delivery["body"])
    assert parsed.bozo == 0 and parsed.entries[0].title == "Harbour reopens"
    # And the hub got exactly one accepted ping per changed feed, one of them after a 503
    hub_stack.wait_settled()
    wait_for(lambda: len([p for p in pings(hub_url)[seen:] if p["status"] == 202]) >= 3, 30, what="every ping")
    later = pings(hub_url)[seen:]
    assert Counter(p["topic"] for p in later if p["status"] == 202) == Counter(topics)
    assert [p["status"] for p in later].count(503) == 1
    assert all(p["url"] == p["topic"] for p in later)  # hub.url and hub.topic name the same feed
    # And the article's timeline records a ping of each of its feeds, and status shows the hub healthy
    with hub_stack.runtime.store.read() as session:
        pinged = [s.detail["feed_url"] for s in steps_of(session, "art-hub-1") if s.kind == "pinged"]
    assert sorted(pinged) == sorted(topics)
    [hub] = collect_status(hub_stack.runtime.store, hub_stack.runtime.site, queues={}, workers=["w"],
                           now=utcnow()).as_json()["hubs"]
    assert hub["state"] == "ok" and hub["pending"] == 0 and hub["sent"] >= 6
