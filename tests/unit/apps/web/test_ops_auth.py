"""Only operators reach /ops: a bearer ops token or a signed session from the login form; form
posts from a session carry its CSRF token; the token itself is never stored in a cookie."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.requests import Request

from config import SiteConfig
from syndication.store import Store
from syndication.store.deliveries import claim, ensure_delivery, get_delivery, mark_failed
from syndication.publishing import parse_batch, publish
from syndication.store.schema import OpsActionRow, OutboxRow
from apps.web.app import create_app
from apps.web.context import WebContext
from apps.web.ops import COOKIE, Sessions, actor_for, same_origin
from tests.conftest import FixedClock, article_json
from tests.support.brokers import celery_dispatcher, running_broker, stopped_broker
from workers.dispatch import CeleryDispatcher

OPS_TOKEN = "ops-token-0123456789abcdef"
ACTOR = "ops:" + hashlib.sha256(OPS_TOKEN.encode()).hexdigest()[:6]
BROWSER = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryDispatcher]:
    """The real dispatcher on a running redis-server, shared by the module's apps."""
    with running_broker(tmp_path_factory.mktemp("broker")) as server:
        yield celery_dispatcher(server.url)


def context(store: Store, site: SiteConfig, dispatcher: CeleryDispatcher, **overrides: Any) -> WebContext:
    values: dict[str, Any] = {"clock": FixedClock(), "site": site, "store": store, "dispatcher": dispatcher,
                              "feeds_dir": Path("unused"),
                              "ops_tokens": [OPS_TOKEN], "channel_names": ["preview"],
                              "broker_snapshot": lambda: ({"feeds": 0, "social": 0, "control": 0}, ["w@h"])}
    values.update(overrides)
    return WebContext(**values)


@pytest.fixture
def http(store: Store, site: SiteConfig, clock: FixedClock, broker: CeleryDispatcher) -> Iterator[TestClient]:
    with TestClient(create_app(context(store, site, broker, clock=clock)), base_url="http://ops.test") as client:
        yield client


@pytest.fixture
def failed(store: Store, clock: FixedClock) -> int:
    with store.transaction() as session:
        d, _ = ensure_delivery(session, article_id="art-1", revision=1, channel="preview", action="post",
                               text="t", now=clock())
        claim(session, d.id, now=clock(), lease=timedelta(seconds=30))
        mark_failed(session, d.id, error="HTTP 503", now=clock())
    return d.id


def log_in(http: TestClient, token: str = OPS_TOKEN) -> Any:
    return http.post("/ops/login", data={"token": token, "next": "/ops"}, follow_redirects=False)


def csrf_of(http: TestClient) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', http.get("/ops").text)
    assert match
    return match.group(1)


def state(store: Store, delivery_id: int) -> str:
    with store.read() as session:
        found = get_delivery(session, delivery_id)
    assert found is not None
    return found.state


def ops_actions(store: Store) -> list[tuple[str, str]]:
    with store.read() as session:
        return [(r.actor, r.action) for r in session.scalars(select(OpsActionRow))]


def request(headers: dict[str, str], scheme: str = "http") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in {"host": "ops.test", **headers}.items()]
    return Request({"type": "http", "method": "POST", "scheme": scheme, "path": "/ops", "headers": raw,
                    "server": ("ops.test", 80), "query_string": b""})


# -- helpers ------------------------------------------------------------------------------------

def test_an_actor_names_a_token_without_revealing_it() -> None:
    assert actor_for(OPS_TOKEN) == ACTOR and len(ACTOR) == 10
    assert OPS_TOKEN not in ACTOR


def test_a_session_cookie_is_signed_and_expires(store: Store, clock: FixedClock) -> None:
    sessions = Sessions(store, secret="k" * 32, ttl_s=60, clock=clock)
    cookie, session = sessions.create(ACTOR)
    sid, mac = cookie.split(".")
    # The cookie is a random id and its MAC: it verifies, and any change is refused
    assert sessions.get(cookie) == session and session.actor == ACTOR
    assert sessions.get(f"{sid}.{'0' * len(mac)}") is None
    assert sessions.get(f"{sid[:-1]}x.{mac}") is None
    assert sessions.get(sid) is None and sessions.get(None) is None
    # A cookie signed under another key (a forger) is refused
    assert Sessions(store, secret="j" * 32, clock=clock).get(cookie) is None
    # And it ends after its time, or at log-out
    clock.now += timedelta(seconds=61)
    assert sessions.get(cookie) is None
    cookie, _ = sessions.create(ACTOR)
    sessions.drop(cookie)
    assert sessions.get(cookie) is None


def test_same_origin_checks_origin_then_referer() -> None:
    assert same_origin(request({}))  # neither header: the CSRF token decides alone
    assert same_origin(request({"origin": "http://ops.test"}))
    assert not same_origin(request({"origin": "https://evil.example"}))
    assert not same_origin(request({"origin": "null"}))
    assert not same_origin(request({"origin": "https://ops.test"}))  # another scheme is another origin
    assert same_origin(request({"referer": "http://ops.test/ops/articles/a"}))
    assert not same_origin(request({"referer": "http://ops.test.evil.example/ops"}))
    assert same_origin(request({"origin": "https://ops.test"}, scheme="https"))


# -- the page -----------------------------------------------------------------------------------

def test_without_a_token_ops_is_refused(http: TestClient, failed: int, store: Store) -> None:
    # A script without credentials gets 401, never the page
    for path in ("/ops", "/ops/status.json", "/ops/articles?q=art-1", "/ops/articles/art-1"):
        response = http.get(path, follow_redirects=False)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
    # A wrong bearer token is refused the same way
    assert http.get("/ops", headers={"Authorization": "Bearer nope"}).status_code == 401
    # A browser is sent to the login page instead
    response = http.get("/ops/articles/art-1", headers=BROWSER, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ops/login?next=/ops/articles/art-1"
    # And an action without credentials changes nothing
    assert http.post(f"/ops/deliveries/{failed}/retry", data={"csrf": "x"}).status_code == 401
    assert state(store, failed) == "failed" and ops_actions(store) == []


def test_a_bearer_token_serves_the_page_and_acts_without_a_csrf_token(http: TestClient, failed: int,
                                                                      store: Store) -> None:
    bearer = {"Authorization": f"Bearer {OPS_TOKEN}"}
    page = http.get("/ops", headers=bearer)
    assert page.status_code == 200 and "Pipeline status" in page.text
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert set(http.get("/ops/status.json", headers=bearer).json()) >= {"queues", "workers", "failures", "problems"}
    # A bearer request carries no ambient credential, so it needs no CSRF token
    response = http.post(f"/ops/deliveries/{failed}/retry", headers=bearer)
    assert response.status_code == 200 and response.json()["action"] == "retry"
    assert state(store, failed) == "pending" and ops_actions(store) == [(ACTOR, "retry")]


def test_the_login_form_sets_a_strict_signed_cookie_that_is_not_the_token(http: TestClient) -> None:
    # A wrong token is refused, and not echoed back
    wrong = log_in(http, "not-the-token-123")
    assert wrong.status_code == 401 and COOKIE not in wrong.headers.get("set-cookie", "")
    assert "not-the-token-123" not in wrong.text
    # The right token sets an HttpOnly, SameSite=Strict cookie holding no token
    response = log_in(http)
    assert response.status_code == 303 and response.headers["location"] == "/ops"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http (a test client): a Secure cookie would never come back
    assert OPS_TOKEN not in cookie
    page = http.get("/ops")
    assert page.status_code == 200 and ACTOR in page.text and OPS_TOKEN not in page.text


def test_over_https_the_cookie_is_secure(store: Store, site: SiteConfig, broker: CeleryDispatcher) -> None:
    with TestClient(create_app(context(store, site, broker)), base_url="https://ops.test") as http:
        assert "Secure" in log_in(http).headers["set-cookie"]


def test_a_session_post_needs_its_csrf_token_and_our_origin(http: TestClient, failed: int, store: Store) -> None:
    log_in(http)
    token = csrf_of(http)
    # Without the token, or with another, the retry is refused and nothing changes
    assert http.post(f"/ops/deliveries/{failed}/retry", data={}).status_code == 403
    assert http.post(f"/ops/deliveries/{failed}/retry", data={"csrf": token[:-1] + "x"}).status_code == 403
    # With the token but from another site, it is refused too
    evil = http.post(f"/ops/deliveries/{failed}/retry", data={"csrf": token},
                     headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert state(store, failed) == "failed" and ops_actions(store) == []
    # With the token from this page, it is done, recorded under the token's actor, and said
    done = http.post(f"/ops/deliveries/{failed}/retry", data={"csrf": token, "next": "/ops"},
                     headers={"Origin": "http://ops.test"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/ops"
    assert state(store, failed) == "pending" and ops_actions(store) == [(ACTOR, "retry")]
    assert "is pending again" in http.get("/ops").text


def test_a_redirect_after_an_action_stays_on_ops(http: TestClient, failed: int) -> None:
    log_in(http)
    response = http.post(f"/ops/deliveries/{failed}/discard",
                         data={"csrf": csrf_of(http), "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/ops"


def test_logging_out_ends_the_session(http: TestClient) -> None:
    log_in(http)
    assert http.post("/ops/logout", data={"csrf": csrf_of(http)}, follow_redirects=False).status_code == 303
    assert http.get("/ops", follow_redirects=False).status_code == 401


def test_without_ops_tokens_configured_nobody_gets_in(store: Store, site: SiteConfig, broker: CeleryDispatcher) -> None:
    with TestClient(create_app(context(store, site, broker, ops_tokens=[]))) as http:
        assert log_in(http, "").status_code == 401
        assert http.get("/ops", headers={"Authorization": "Bearer anything"}).status_code == 401


def test_pausing_a_channel_from_the_page(http: TestClient, store: Store) -> None:
    log_in(http)
    token = csrf_of(http)
    assert http.post("/ops/channels/preview/pause", data={"csrf": token, "reason": "storm"}).status_code == 200
    assert "paused by " + ACTOR + ": storm" in http.get("/ops").text
    assert http.post("/ops/channels/nope/pause", data={"csrf": token}).status_code == 404
    assert http.post("/ops/channels/preview/resume", data={"csrf": token}).status_code == 200
    assert [a for _, a in ops_actions(store)] == ["pause", "resume"]


def test_sharing_an_article_again_from_its_page(http: TestClient, store: Store, site: SiteConfig,
                                               clock: FixedClock) -> None:
    # Given a published article, and one scheduled for tomorrow
    articles, _ = parse_batch([article_json(1, published_at=clock().isoformat()),
                               article_json(2, published_at=(clock() + timedelta(days=1)).isoformat())], site=site)
    publish(store, site, articles, clock=clock)
    log_in(http)
    # Then the overview lists the upcoming release, and the published article's page offers "Share again"
    overview = http.get("/ops").text
    assert 'href="/ops/articles/art-2"' in overview and "in 24 h" in overview
    assert "Share again" in http.get("/ops/articles/art-1").text
    assert "Share again" not in http.get("/ops/articles/art-2").text
    token = csrf_of(http)
    # When the form is posted without its CSRF token, nothing is shared
    assert http.post("/ops/share", data={"article": "art-1"}).status_code == 403
    # When it is posted with it, for one channel
    done = http.post("/ops/share", data={"csrf": token, "article": "art-1", "channel": "preview",
                                         "next": "/ops/articles/art-1"},
                     headers={"Origin": "http://ops.test"}, follow_redirects=False)
    # Then it is recorded as an operator action, with a share event for that channel waiting for the workers
    assert done.status_code == 303 and done.headers["location"] == "/ops/articles/art-1"
    assert ops_actions(store) == [(ACTOR, "share")]
    with store.read() as session:
        assert sorted(session.scalars(select(OutboxRow.kind))) == ["article.published", "article.shared:preview"]
    assert "will be posted again to channel preview" in http.get("/ops/articles/art-1").text
    # And an article not released yet, or unknown, is not shared
    assert "Not done" in http.post("/ops/share", data={"csrf": token, "article": "art-2"}).text
    assert http.post("/ops/share", data={"csrf": token, "article": "nope"}).status_code == 404
    assert ops_actions(store) == [(ACTOR, "share")]


# -- health ---------------------------------------------------------------------------------------

def test_readiness_checks_the_database_and_the_broker(store: Store, site: SiteConfig, tmp_path: Path,
                                                      broker: CeleryDispatcher) -> None:
    with TestClient(create_app(context(store, site, broker))) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    with TestClient(create_app(context(store, site, celery_dispatcher(stopped_broker(tmp_path / "down").url)))) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "broker": "error: ConnectionError"}
