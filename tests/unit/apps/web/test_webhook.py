"""A CMS posts signed webhooks: each signed request is taken once, and hostile bodies and headers
are refused with 4xx, never a 500 and never a traceback in the logs."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from apps.web.app import create_app
from apps.web.auth import sign
from apps.web.context import WebContext
from config import SiteConfig
from syndication.store import Store
from syndication.store.schema import WebhookSignatureRow
from tests.conftest import FixedClock, article_json
from tests.support.brokers import offline_dispatcher

SECRET = "whsec-unit-0123456789abcdefghijkl"
API_TOKEN = "api-token-unit-0123456789abcdefghij"
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


def process(store: Store, site: SiteConfig, clock: FixedClock) -> TestClient:
    """One API process on the shared database (500s come back as responses, not exceptions)."""
    ctx = WebContext(site=site, store=store, dispatcher=offline_dispatcher(), feeds_dir=Path("unused"),
                     api_tokens=[API_TOKEN], webhook_secret=SECRET, webhook_tolerance_s=300, clock=clock)
    return TestClient(create_app(ctx), raise_server_exceptions=False)


@pytest.fixture
def http(store: Store, site: SiteConfig, clock: FixedClock) -> Iterator[TestClient]:
    with process(store, site, clock) as client:
        yield client


def signed(body: bytes, clock: FixedClock, secret: str = SECRET) -> dict[str, str]:
    return {"X-Syndication-Signature": sign(secret, int(clock().timestamp()), body),
            "Content-Type": "application/json"}


def test_a_signed_request_replayed_after_a_delete_is_refused(store: Store, site: SiteConfig,
                                                             clock: FixedClock) -> None:
    # Given an article published through a signed webhook, then withdrawn by the newsroom
    body = json.dumps(article_json("hook-1")).encode()
    headers = signed(body, clock)
    with process(store, site, clock) as a, process(store, site, clock) as b:
        assert a.post("/api/v1/webhook", content=body, headers=headers).status_code == 202
        assert a.delete("/api/v1/articles/art-hook-1", headers=BEARER).status_code == 202
        # When someone who captured the request sends it again, within its window, to any process
        clock.now += timedelta(seconds=60)
        replays = [p.post("/api/v1/webhook", content=body, headers=headers) for p in (a, b)]
        # Then both are refused, saying why, and the article stays withdrawn
        assert [r.status_code for r in replays] == [409, 409]
        assert "already accepted" in replays[0].json()["detail"]
        status = a.get("/api/v1/articles/art-hook-1", headers=BEARER)
        assert status.status_code == 404 and status.json()["status"] == "withdrawn" and status.json()["revision"] == 2
        # And a fresh signature of the same body (the CMS publishing again) is taken
        clock.now += timedelta(seconds=1)
        assert b.post("/api/v1/webhook", content=body, headers=signed(body, clock)).status_code == 202


def test_remembered_signatures_are_purged_once_their_window_is_over(http: TestClient, store: Store,
                                                                     clock: FixedClock) -> None:
    # Given two signed requests taken
    for n in (1, 2):
        body = json.dumps(article_json(n)).encode()
        assert http.post("/api/v1/webhook", content=body, headers=signed(body, clock)).status_code == 202
    # When the window has passed and another arrives
    clock.now += timedelta(seconds=301)
    body = json.dumps(article_json(3)).encode()
    assert http.post("/api/v1/webhook", content=body, headers=signed(body, clock)).status_code == 202
    # Then only the new one is still kept
    with store.read() as db:
        assert db.scalar(select(func.count()).select_from(WebhookSignatureRow)) == 1


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("body", [
    nested(200_000),
    json.dumps(article_json(1)).encode().replace(b'"tags": [', b'"tags": [' + nested(600) + b","),
    b"[" * 100_000,  # left open
], ids=["200000-deep", "600-deep-in-a-field", "unclosed"])
def test_deep_json_is_a_400_on_both_routes_and_logs_no_traceback(http: TestClient, clock: FixedClock,
                                                                  body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    # When a deeply nested JSON body arrives with a token, or correctly signed
    with caplog.at_level(logging.WARNING):
        answers = [http.post("/api/v1/articles", content=body, headers={**BEARER, "Content-Type": "application/json"}),
                   http.post("/api/v1/webhook", content=body, headers=signed(body, clock))]
    # Then each is refused 400, naming the depth limit, and nothing was logged as an error
    for answer in answers:
        assert answer.status_code == 400, answer.text[:200]
        assert "nested at most 16 deep" in answer.json()["detail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("header", [
    "t=" + "9" * 400 + ",v1=00",
    "t=-" + "1" * 400 + ",v1=00",
    "t=1e400,v1=00",
    "t=,v1=00",
])
def test_a_huge_or_odd_timestamp_is_a_401(http: TestClient, header: str) -> None:
    body = json.dumps(article_json(1)).encode()
    answer = http.post("/api/v1/webhook", content=body, headers={"X-Syndication-Signature": header})
    assert answer.status_code == 401 and "unix seconds" in answer.json()["detail"]


def test_an_unsigned_or_stale_webhook_is_refused_before_its_body_is_read(http: TestClient, clock: FixedClock) -> None:
    # Given a body far over the limit, with no signature or one an hour old
    def endless() -> Iterator[bytes]:
        yield b"[" + b" " * 65536
        raise AssertionError("the server read the body of a request it could refuse on its headers")

    stale = {"X-Syndication-Signature": sign(SECRET, int(clock().timestamp()) - 3600, b"")}
    for headers in ({}, stale, {"X-Syndication-Signature": "t=1"}):
        # Then each is refused 401 on its headers
        answer = http.post("/api/v1/webhook", content=endless(), headers=headers)
        assert answer.status_code == 401
