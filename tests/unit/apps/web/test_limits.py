"""What every answer carries, and what the service refuses before it reads a body."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from apps.web.app import create_app
from apps.web.context import WebContext
from apps.web.limits import BodyLimit
from config import SiteConfig
from syndication.store import Store
from tests.conftest import FixedClock, article_json
from tests.support.brokers import offline_dispatcher

API_TOKEN = "api-token-unit-0123456789abcdefghij"
OPS_TOKEN = "ops-token-unit-0123456789abcdefghij"


def context(store: Store, site: SiteConfig, clock: FixedClock, feeds: Path, **overrides: Any) -> WebContext:
    return WebContext(**{"site": site, "store": store, "dispatcher": offline_dispatcher(), "feeds_dir": feeds,
                         "api_tokens": [API_TOKEN], "ops_tokens": [OPS_TOKEN], "clock": clock, **overrides})


@pytest.fixture
def http(store: Store, site: SiteConfig, clock: FixedClock, tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "all.rss").write_bytes(b"<rss version='2.0'><channel/></rss>")
    with TestClient(create_app(context(store, site, clock, tmp_path))) as client:
        yield client


def test_every_answer_says_nosniff_and_names_no_server(http: TestClient) -> None:
    # Given answers of every kind: a feed, a page, JSON, refusals by the app and by the gate
    answers = [http.get("/feeds/all.rss"), http.get("/"), http.get("/healthz"), http.get("/openapi.json"),
               http.get("/ops/login"), http.get("/nope"), http.put("/api/v1/articles/x"),
               http.post("/api/v1/articles", json=article_json(1)),  # no token: refused by the gate
               http.post("/api/v1/articles", json=[], headers={"Authorization": f"Bearer {API_TOKEN}"})]
    # Then the browser is told not to guess content types, and no server banner is sent
    assert [a.headers.get("x-content-type-options") for a in answers] == ["nosniff"] * len(answers)
    assert not [a for a in answers if "server" in a.headers]


def test_405_lists_every_method_the_path_takes(http: TestClient) -> None:
    # Given a path served by two routes (GET and DELETE of one article)
    answer = http.put("/api/v1/articles/art-1", headers={"Authorization": f"Bearer {API_TOKEN}"})
    # Then the Allow header names both (RFC 9110 §15.5.6), not just the first route's
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["allow"].split(",")} == {"DELETE", "GET"}
    assert http.patch("/api/v1/articles", headers={"Authorization": f"Bearer {API_TOKEN}"}).headers["allow"] == "POST"


def test_without_a_valid_token_no_body_is_read(http: TestClient) -> None:
    # Given a client with no token, or a wrong one, streaming a body that never ends
    def endless() -> Iterator[bytes]:
        yield b"[" + b" " * 65536
        raise AssertionError("the server read the body of a request it could refuse on its headers")

    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic eDp5"}):
        # Then it is answered 401 at once, with the usual challenge
        answer = http.post("/api/v1/articles", content=endless(), headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
    # And an ops action with neither a token nor a session cookie is too
    assert http.post("/ops/failures/retry-all", content=endless()).status_code == 401


def call(app: Any, chunks: list[tuple[float, bytes]], *, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """Drive ``app`` over ASGI with a body sent as (delay, bytes) chunks; returns what it sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not chunks:
            await asyncio.sleep(3600)
        delay, chunk = chunks.pop(0)
        await asyncio.sleep(delay)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/articles", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_body_that_trickles_in_is_cut_off_with_408() -> None:
    # Given the gate with a 0.3 s body timeout, and an app that must never see the body
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app was handed a body that took too long")

    gate = BodyLimit(app, 1024, body_timeout_s=0.3)
    # When a client sends one byte every 0.1 s (each gap shorter than the timeout)
    sent = call(gate, [(0.1, b"x")] * 20, headers=[(b"content-length", b"20")])
    # Then the whole body's deadline holds: 408, and the connection is to be closed
    start = sent[0]
    assert start["status"] == 408 and (b"connection", b"close") in start["headers"]
    assert "not received within 0.3 s" in json.loads(sent[1]["body"])["detail"]


def test_the_login_form_which_anyone_may_post_takes_no_large_body(http: TestClient) -> None:
    answer = http.post("/ops/login", data={"token": "x" * 70_000})
    assert answer.status_code == 413 and "65536 bytes" in answer.json()["detail"]
