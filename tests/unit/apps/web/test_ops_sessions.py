"""An operator's login is good on every API process and survives a restart, because sessions and
the login throttle live in the database, not in one process. (Each app below stands for one
process: it has its own Sessions and nothing else in common with the others but the database.
tests/integration/test_api_workers.py does the same with real processes.)"""
from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from config import Settings, SiteConfig
from syndication.store import Store
from syndication.store.schema import OpsSessionRow, SecretKeyRow
from syndication.store.sessions import hash_session_id
from apps.web.app import create_app
from apps.web.context import WebContext
from apps.web.ops import COOKIE
from tests.conftest import FixedClock
from tests.support.brokers import offline_dispatcher

OPS_TOKEN = "ops-token-0123456789abcdef"
ACTOR = "ops:" + hashlib.sha256(OPS_TOKEN.encode()).hexdigest()[:6]
ATTACKER = ("203.0.113.9", 40000)



def process(store: Store, site: SiteConfig, clock: FixedClock, client: tuple[str, int] = ("192.0.2.1", 50000),
            **overrides: Any) -> TestClient:
    """A fresh API process on the shared database, as a browser at ``client`` reaches it."""
    values: dict[str, Any] = {"site": site, "store": store, "dispatcher": offline_dispatcher(), "feeds_dir": Path("unused"),
                              "clock": clock, "ops_tokens": [OPS_TOKEN], "channel_names": ["preview"],
                              "broker_snapshot": lambda: ({"feeds": 0, "social": 0, "control": 0}, ["w@h"]),
                              "ops_login_max_failures": 3, "ops_login_window_s": 600, **overrides}
    return TestClient(create_app(WebContext(**values)), base_url="http://ops.test", client=client)


def log_in(http: TestClient, token: str = OPS_TOKEN) -> Any:
    return http.post("/ops/login", data={"token": token, "next": "/ops"}, follow_redirects=False)


def csrf_in(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


@pytest.fixture
def two(store: Store, site: SiteConfig, clock: FixedClock) -> Iterator[tuple[TestClient, TestClient]]:
    with process(store, site, clock) as a, process(store, site, clock) as b:
        yield a, b


def cookie_of(http: TestClient) -> str:
    return http.cookies[COOKIE]


def on(http: TestClient, cookie: str, path: str = "/ops", **kwargs: Any) -> Any:
    """A request to ``path`` carrying the session cookie, as the browser sends it to any process."""
    http.cookies.clear()
    http.cookies.set(COOKIE, cookie, domain="ops.test", path="/ops")
    return http.get(path, follow_redirects=False, **kwargs)


def test_a_login_on_one_process_is_good_on_another(two: tuple[TestClient, TestClient]) -> None:
    a, b = two
    # Given an operator logged in through process A
    assert log_in(a).status_code == 303
    cookie = cookie_of(a)
    # When the next request lands on process B, B knows the session
    page = on(b, cookie)
    assert page.status_code == 200 and ACTOR in page.text
    # And a form B renders posts fine to A (the same CSRF token, from the database)
    on(a, cookie)
    assert a.post("/ops/channels/preview/pause", data={"csrf": csrf_in(page.text), "reason": "storm"},
                  follow_redirects=False).status_code == 303
    # And the message A left for the next page is shown by B, once
    shown = on(b, cookie).text
    assert 'class="flash"' in shown and "storm" in shown.split('class="flash"', 1)[1].split("</div>", 1)[0]
    assert 'class="flash"' not in on(a, cookie).text


def test_logging_out_on_one_process_ends_the_session_on_all(two: tuple[TestClient, TestClient]) -> None:
    a, b = two
    log_in(a)
    cookie = cookie_of(a)
    assert b.post("/ops/logout", data={"csrf": csrf_in(on(b, cookie).text)}, follow_redirects=False).status_code == 303
    assert on(a, cookie).status_code == 401


def test_a_restart_keeps_the_session(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given an operator logged in, with no session secret configured
    with process(store, site, clock) as before:
        log_in(before)
        cookie = cookie_of(before)
    # When the process is replaced by a new one (a restart), the cookie is still good: the MAC
    # key was generated once and kept in the database
    with process(store, site, clock) as after:
        assert on(after, cookie).status_code == 200


def test_a_configured_secret_signs_the_cookie(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given processes configured with one session secret
    with process(store, site, clock, ops_session_secret="s3cret-" * 5) as a:
        log_in(a)
        cookie = cookie_of(a)
    with process(store, site, clock, ops_session_secret="s3cret-" * 5) as b:
        assert on(b, cookie).status_code == 200
    # When the secret is changed, the old cookies no longer verify: everyone logs in again
    with process(store, site, clock, ops_session_secret="rotated-" * 5) as c:
        assert on(c, cookie).status_code == 401


def test_a_session_ends_after_its_time_by_the_injected_clock(store: Store, site: SiteConfig,
                                                             clock: FixedClock) -> None:
    with process(store, site, clock, ops_session_ttl_s=3600, ops_session_idle_s=3600) as a:
        response = log_in(a)
        assert "Max-Age=3600" in response.headers["set-cookie"]
        cookie = cookie_of(a)
        clock.now += timedelta(seconds=3599)
        assert on(a, cookie).status_code == 200
        clock.now += timedelta(seconds=1)
        assert on(a, cookie).status_code == 401


def test_a_database_copy_opens_no_session(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given an operator logged in, and someone holding a copy of the database, keys and all
    with process(store, site, clock) as a:
        log_in(a)
        cookie = cookie_of(a)
    with store.read() as db:
        rows = list(db.scalars(select(OpsSessionRow)))
        key = bytes.fromhex(db.scalars(select(SecretKeyRow.value)).one())
    # Then the table holds only the id's hash, and that hash, correctly signed, opens nothing
    assert [r.id_hash for r in rows] == [hash_session_id(cookie.split(".")[0])]
    forged = f"{rows[0].id_hash}.{hmac.new(key, rows[0].id_hash.encode(), hashlib.sha256).hexdigest()}"
    with process(store, site, clock) as b:
        assert on(b, forged).status_code == 401
        assert on(b, cookie).status_code == 200


def test_failed_logins_from_one_address_are_throttled_on_every_process(store: Store, site: SiteConfig,
                                                                       clock: FixedClock) -> None:
    # Given an address that guessed wrong three times, across two processes
    with process(store, site, clock, ATTACKER) as a, process(store, site, clock, ATTACKER) as b:
        assert log_in(a, "guess-1-xxxxxxxxxx").status_code == 401
        assert log_in(b, "guess-2-xxxxxxxxxx").status_code == 401
        assert log_in(a, "guess-3-xxxxxxxxxx").status_code == 401
        # When it tries again, even with the right token, it gets 429 and when to come back
        blocked = log_in(b)
        assert blocked.status_code == 429 and blocked.headers["retry-after"] == "600"
        assert COOKIE not in blocked.headers.get("set-cookie", "") and "try again in 600 s" in blocked.text
        # And a bearer token from there is held back the same way
        bearer = a.get("/ops/status.json", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        assert bearer.status_code == 429 and bearer.headers["retry-after"] == "600"
        # When the window has passed, the right token gets in
        clock.now += timedelta(seconds=599)
        assert log_in(a).headers["retry-after"] == "1"
        clock.now += timedelta(seconds=1)
        assert log_in(a).status_code == 303
    # And meanwhile another address was never held up
    with process(store, site, clock, ("192.0.2.50", 1234)) as other:
        assert log_in(other).status_code == 303


def test_guessing_bearer_tokens_is_throttled_too(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    with process(store, site, clock, ATTACKER) as a:
        for n in range(3):
            assert a.get("/ops/status.json", headers={"Authorization": f"Bearer guess-{n}"}).status_code == 401
        assert a.get("/ops/status.json", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).status_code == 429
        assert log_in(a).status_code == 429


def test_the_session_settings_are_read_checked_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the deployment's variables
    monkeypatch.setenv("SYNDICATION_OPS_SESSION_SECRET", "a-long-shared-session-secret")
    monkeypatch.setenv("SYNDICATION_OPS_LOGIN_MAX_FAILURES", "5")
    monkeypatch.setenv("SYNDICATION_API_WORKERS", "4")
    settings = Settings()
    # Then they are read, and the secret is one of those the logs redact
    assert settings.ops_login_max_failures == 5 and settings.api_workers == 4
    assert "a-long-shared-session-secret" in settings.secrets()
    # And a value that makes no sense is refused, naming the variable
    for name, value in (("SYNDICATION_OPS_LOGIN_MAX_FAILURES", "0"), ("SYNDICATION_API_WORKERS", "0"),
                        ("SYNDICATION_OPS_SESSION_TTL_S", "-1")):
        monkeypatch.setenv(name, value)
        with pytest.raises(pydantic.ValidationError, match=name.removeprefix("SYNDICATION_").lower()):
            Settings()
        monkeypatch.delenv(name)


def test_failed_logins_from_many_addresses_are_throttled_together(store: Store, site: SiteConfig,
                                                                   clock: FixedClock) -> None:
    # Given a guesser spread over five addresses, each under its own limit, with an overall limit of 5
    for n in range(5):
        with process(store, site, clock, (f"198.51.100.{n}", 4000), ops_login_max_failures_total=5) as p:
            assert log_in(p, f"guess-{n}-xxxxxxxxxxxxxxxxxxxxxxxxxxxx").status_code == 401
    # When anyone tries next, from an address that never failed, on another process
    with process(store, site, clock, ("192.0.2.77", 5000), ops_login_max_failures_total=5) as fresh:
        blocked = log_in(fresh)
        # Then it is held back until the window ends, and told when to come back
        assert blocked.status_code == 429 and blocked.headers["retry-after"] == "600"
        clock.now += timedelta(seconds=600)
        assert log_in(fresh).status_code == 303


def test_a_session_ends_after_it_sits_idle(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given an operator logged in, sessions lasting 8 hours but ending after 15 idle minutes
    with process(store, site, clock, ops_session_ttl_s=8 * 3600, ops_session_idle_s=900) as a:
        log_in(a)
        cookie = cookie_of(a)
        # When they keep working, a request every 14 minutes, the session lives on past 15 minutes
        for _ in range(4):
            clock.now += timedelta(minutes=14)
            assert on(a, cookie).status_code == 200
        # And when they leave it for 15 minutes, it is over, on every process
        clock.now += timedelta(minutes=15)
        assert on(a, cookie).status_code == 401
    with process(store, site, clock, ops_session_ttl_s=8 * 3600, ops_session_idle_s=900) as b:
        assert on(b, cookie).status_code == 401


PUBLIC = "https://news.example.org"


def test_behind_a_tls_proxy_the_cookie_is_secure_host_only_and_origin_is_the_public_one(
        store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given the service on plain http behind a TLS proxy, told its public address
    with process(store, site, clock, public_url=PUBLIC) as a:
        # When an operator logs in from the public page
        login = a.post("/ops/login", data={"token": OPS_TOKEN, "next": "/ops"}, follow_redirects=False,
                       headers={"Origin": PUBLIC})
        # Then the cookie is Secure although the request came over http, and __Host- prefixed
        assert login.status_code == 303
        cookie = login.headers["set-cookie"]
        name, value = cookie.split(";")[0].split("=", 1)
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert name == "__Host-syndication_ops" and {"secure", "httponly", "path"} <= attributes
        assert "Path=/;" in cookie + ";" and "domain" not in attributes
        # And the session works with it
        page = a.get("/ops", headers={"Cookie": f"{name}={value}"}, follow_redirects=False)
        assert page.status_code == 200
        csrf = csrf_in(page.text)
        # And a form post whose Origin is the internal address is refused; the public one passes
        form = {"csrf": csrf, "next": "/ops"}
        internal = a.post("/ops/failures/retry-all", data=form, follow_redirects=False,
                          headers={"Cookie": f"{name}={value}", "Origin": "http://ops.test"})
        public = a.post("/ops/failures/retry-all", data=form, follow_redirects=False,
                        headers={"Cookie": f"{name}={value}", "Origin": PUBLIC})
        assert internal.status_code == 403 and public.status_code == 303
        # And a login posted from the internal address is refused too
        assert a.post("/ops/login", data={"token": OPS_TOKEN}, headers={"Origin": "http://ops.test"},
                      follow_redirects=False).status_code == 403


def test_the_public_url_must_be_an_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATION_PUBLIC_URL", "HTTPS://News.Example.org/")
    assert Settings().public_url == "https://news.example.org"
    for bad in ("news.example.org", "ftp://news.example.org", "https://news.example.org/ops"):
        monkeypatch.setenv("SYNDICATION_PUBLIC_URL", bad)
        with pytest.raises(pydantic.ValidationError, match="public_url"):
            Settings()
