"""Operator sessions and the failed-login throttle, as the web layer sees them.

The state lives in the database (``syndication.store.sessions``), never in this process, so
every API process, on this host or another, knows every session, and a restart logs nobody
out. The cookie holds a random session id and its HMAC-SHA256 (``<id>.<hex mac>``), never a
token; the MAC key is the same in every process: derived from ``SYNDICATION_OPS_SESSION_SECRET``
or, without one, generated once and kept in the database.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import threading
from datetime import timedelta

from syndication.publishing import Clock, utcnow
from syndication.store import Store
from syndication.store.sessions import (OpsSession, add_flash, clear_login_failures, create_session,
                                        drop_session, login_retry_after, record_login_failure, shared_key,
                                        take_flash, touch_session)

SESSION_TTL_S = 12 * 3600
SESSION_IDLE_S = 1800
ALL_CLIENTS = "(all)"  # the throttle's count of every client's failures (no address looks like it)
COOKIE_KEY_NAME = "ops-session-cookie"


def cookie_key(secret: str) -> bytes:
    """The cookie's MAC key for a configured secret (HMAC-SHA256 under a fixed label, so the
    secret itself never signs anything and could serve another purpose without clashing)."""
    return hmac.new(secret.encode(), b"syndication ops session cookie", hashlib.sha256).digest()


class Sessions:
    """Database-backed ops sessions behind HMAC-signed cookie values.

    A session ends ``idle_s`` after its last request, and ``ttl_s`` after its start anyway.

    >>> sessions = Sessions(store, secret=None, ttl_s=3600, idle_s=900, clock=ctx.clock)
    >>> cookie, session = sessions.create("ops:1a2b3c")
    """

    def __init__(self, store: Store, *, secret: str | None = None, ttl_s: int = SESSION_TTL_S,
                 idle_s: int = SESSION_IDLE_S, clock: Clock = utcnow) -> None:
        self.store, self.ttl_s, self.idle_s, self.clock = store, ttl_s, idle_s, clock
        self._key_value = cookie_key(secret) if secret else None
        self._key_lock = threading.Lock()

    def _key(self) -> bytes:
        # Read on first use, not at start-up: a database that is down then must not stop the app.
        # The key never changes, so keeping it here is not state of this process.
        with self._key_lock:
            if self._key_value is None:
                with self.store.transaction() as db:
                    self._key_value = shared_key(db, COOKIE_KEY_NAME, now=self.clock())
            return self._key_value

    def _mac(self, sid: str) -> str:
        return hmac.new(self._key(), sid.encode(), hashlib.sha256).hexdigest()

    def _sid(self, cookie: str | None) -> str | None:
        sid, _, mac = (cookie or "").partition(".")
        if not sid or not mac or not hmac.compare_digest(self._mac(sid).encode(), mac.encode()):
            return None
        return sid

    def create(self, actor: str) -> tuple[str, OpsSession]:
        """A new session; returns (cookie value, session)."""
        with self.store.transaction() as db:
            sid, session = create_session(db, actor, now=self.clock(),
                                          ttl=timedelta(seconds=min(self.idle_s, self.ttl_s)))
        return f"{sid}.{self._mac(sid)}", session

    def get(self, cookie: str | None) -> OpsSession | None:
        """The live session a cookie names, kept alive for another ``idle_s``; None for a missing,
        forged, ended (idle too long) or unknown one."""
        sid = self._sid(cookie)
        if sid is None:
            return None
        with self.store.transaction() as db:
            return touch_session(db, sid, now=self.clock(), idle=timedelta(seconds=self.idle_s),
                                 ttl=timedelta(seconds=self.ttl_s))

    def drop(self, cookie: str | None) -> None:
        sid = self._sid(cookie)
        if sid is not None:
            with self.store.transaction() as db:
                drop_session(db, sid)

    def add_flash(self, cookie: str | None, message: str) -> None:
        """A message for the session's next page (which another process may serve)."""
        sid = self._sid(cookie)
        if sid is not None:
            with self.store.transaction() as db:
                add_flash(db, sid, message)

    def take_flash(self, cookie: str | None) -> list[str]:
        sid = self._sid(cookie)
        if sid is None:
            return []
        with self.store.transaction() as db:
            return take_flash(db, sid)


class LoginThrottle:
    """After ``limit`` failed ops logins from one client within ``window_s``, that client waits
    until the window ends; after ``total_limit`` from all clients together, everyone does.
    Counted in the database, so every API process counts together.

    >>> throttle = LoginThrottle(store, limit=10, total_limit=100, window_s=600)
    >>> throttle.retry_after("203.0.113.9")  # None, or the seconds for Retry-After
    """

    def __init__(self, store: Store, *, limit: int, window_s: int, total_limit: int | None = None,
                 clock: Clock = utcnow) -> None:
        self.store, self.limit, self.window, self.clock = store, limit, timedelta(seconds=window_s), clock
        self.total_limit = total_limit

    def retry_after(self, client: str) -> int | None:
        """Whole seconds ``client`` must wait (for ``Retry-After``); None: it may try now."""
        now = self.clock()
        with self.store.read() as db:
            waits = [login_retry_after(db, client, now=now, limit=self.limit, window=self.window)]
            if self.total_limit is not None:
                waits.append(login_retry_after(db, ALL_CLIENTS, now=now, limit=self.total_limit, window=self.window))
        wait = max((w for w in waits if w is not None), default=None)
        return None if wait is None else max(1, math.ceil(wait.total_seconds()))

    def failed(self, client: str) -> None:
        with self.store.transaction() as db:
            record_login_failure(db, client, now=self.clock(), window=self.window)
            if self.total_limit is not None:
                record_login_failure(db, ALL_CLIENTS, now=self.clock(), window=self.window)

    def succeeded(self, client: str) -> None:
        with self.store.transaction() as db:
            clear_login_failures(db, client)
