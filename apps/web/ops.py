"""``/ops``: the operators' page (status, failures, channels, one timeline per article) and ``/metrics``.

Auth: ``Authorization: Bearer <ops token>``, or a login form that trades the token for a
session cookie. The cookie holds a random session id signed with HMAC-SHA256, never the token;
it is HttpOnly, SameSite=Strict, and Secure over https; with an https ``SYNDICATION_PUBLIC_URL``
(behind a TLS proxy) it is always Secure and ``__Host-`` prefixed. A session ends when idle too. Sessions and the failed-login throttle
live in the database (``apps.web.sessions``), so every API process shares them.
Form posts from a session must carry the session's CSRF token (compared in constant time),
and an Origin or Referer header, when sent, must name this host (the public URL when set). Bearer requests carry no
ambient credential, so they need no CSRF token. Every action goes through
``syndication.operations`` as ``ops:<first 6 hex of sha256(token)>``.

``/metrics`` is unauthenticated, as Prometheus expects on an internal port: aggregate
numbers only (queues, feeds, channels, states), never an article, delivery or event id.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, PackageLoader

from syndication.errors import NotFound, ValidationError
from syndication.metrics import render_metrics
from syndication.operations import Done, discard_delivery, pause, resume, retry_all, retry_delivery, share_again
from syndication.publishing import announce
from syndication.status import Status, collect_status
from syndication.store.articles import feed_keys_of, find_by_url, get_article
from syndication.store.deliveries import deliveries_of, list_deliveries
from syndication.store.sessions import OpsSession
from syndication.store.timeline import steps_of
from apps.web.auth import token_matches
from apps.web.context import WebContext
from apps.web.paging import Paging
from apps.web.sessions import LoginThrottle, Sessions

COOKIE = "syndication_ops"
# With an https SYNDICATION_PUBLIC_URL: a cookie browsers take only over https, for the whole
# host and from no other (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain).
HOST_COOKIE = "__Host-syndication_ops"
SNAPSHOT_TTL_S = 3.0  # a worker ping waits out its whole timeout: share one answer between viewers


def actor_for(token: str) -> str:
    """The name an ops token acts under: ``ops:`` and 6 hex digits of its SHA-256, never the token."""
    return "ops:" + hashlib.sha256(token.encode()).hexdigest()[:6]


@dataclass(frozen=True)
class Principal:
    actor: str
    session: OpsSession | None  # None: a bearer request
    cookie: str | None = None  # the session's cookie value, to leave it a message


def cookie_name(public_url: str | None) -> str:
    """The session cookie's name: ``__Host-`` prefixed when the public address is https."""
    return HOST_COOKIE if public_url and public_url.startswith("https://") else COOKIE


def authenticate(request: Request, tokens: list[str], sessions: Sessions, cookie_name: str = COOKIE
                 ) -> Principal | None:
    """Who is asking: a valid bearer ops token, or a valid session cookie; None otherwise."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        token = value.strip()
        return Principal(actor_for(token), None) if tokens and token_matches(token, tokens) else None
    cookie = request.cookies.get(cookie_name)
    session = sessions.get(cookie)
    return Principal(session.actor, session, cookie) if session else None


def bearer_presented(request: Request) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


def client_of(request: Request) -> str:
    """The client a failed login counts against: its address. Behind a proxy that uvicorn trusts
    (``FORWARDED_ALLOW_IPS``; by default one on this host), the address it forwards."""
    return request.client.host if request.client else "unknown"


def same_origin(request: Request, public_url: str | None = None) -> bool:
    """False when an Origin (or, without one, a Referer) header names another site than
    ``public_url`` (or, without one, the scheme and Host of the request)."""
    expected = public_url or f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower().rstrip("/") == expected
    referer = request.headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() == expected
    return True


def csrf_ok(principal: Principal, presented: str, request: Request, public_url: str | None = None) -> bool:
    """A form post is ours: bearer requests pass; sessions need their token and a same-origin post."""
    if principal.session is None:
        return True
    return same_origin(request, public_url) and hmac.compare_digest(principal.session.csrf.encode(), presented.encode())


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/ops") and not target.startswith("//") else "/ops"


def _ts(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = int((now - value).total_seconds())
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago" if seconds < 7200 else f"{seconds // 3600} h ago"


def _within(seconds: float) -> str:
    """How far ahead a time is, as a person says it."""
    s = int(seconds)
    return f"{s} s" if s < 120 else f"{s // 60} min" if s < 7200 else f"{s // 3600} h" if s < 172800 else f"{s // 86400} days"


def _web_link(url: str | None) -> str | None:
    return url if url and urlsplit(url).scheme in ("http", "https") else None


def templates() -> Environment:
    env = Environment(autoescape=True, loader=PackageLoader("apps.web"))
    env.filters.update(ts=_ts, clock=_clock, web_link=_web_link, within=_within)
    env.globals.update(ago=_ago)
    return env


def build_router(ctx: WebContext, *, sessions: Sessions | None = None) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    sessions = sessions or Sessions(ctx.store, secret=ctx.ops_session_secret, ttl_s=ctx.ops_session_ttl_s,
                                    idle_s=ctx.ops_session_idle_s, clock=ctx.clock)
    throttle = LoginThrottle(ctx.store, limit=ctx.ops_login_max_failures, window_s=ctx.ops_login_window_s,
                             total_limit=ctx.ops_login_max_failures_total, clock=ctx.clock)
    cookie = cookie_name(ctx.public_url)
    cookie_path = "/" if cookie == HOST_COOKIE else "/ops"

    def who(request: Request) -> Principal | None:
        return authenticate(request, ctx.ops_tokens, sessions, cookie)
    env = templates()
    # Not shared state: a short-lived copy of the broker's answer, so that many viewers cost one
    # worker ping per process and period. Each process asking on its own is just as correct.
    cache: dict[str, Any] = {"at": 0.0, "value": (None, None)}
    cache_lock = threading.Lock()

    def snapshot() -> tuple[Any, Any]:
        if ctx.broker_snapshot is None:
            return None, None
        with cache_lock:
            if time.monotonic() - cache["at"] > SNAPSHOT_TTL_S:
                cache["value"], cache["at"] = ctx.broker_snapshot(), time.monotonic()
            return cache["value"]

    def status() -> Status:
        queues, workers = snapshot()
        return collect_status(ctx.store, ctx.site, queues=queues, workers=workers, now=ctx.clock(),
                              channels=ctx.channel_names)

    def page(request: Request, name: str, principal: Principal | None, status_code: int = 200,
             **values: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        flash = (sessions.take_flash(principal.cookie)
                 if principal and principal.session and principal.session.flash else [])
        html = env.get_template(name).render(
            request=request, principal=principal, csrf=principal.session.csrf if principal and principal.session else "",
            nonce=nonce, flash=flash, now=ctx.clock(), site=ctx.site.site, path=request.url.path, **values)
        return HTMLResponse(html, status_code=status_code, headers={
            "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; "
                                       "connect-src 'self'; img-src 'self' data:; form-action 'self'; "
                                       "frame-ancestors 'none'; base-uri 'none'",
            "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store"})

    def require(request: Request) -> Principal:
        # A bearer token is a login too: guessing one is throttled like the form.
        guessing = bearer_presented(request)
        if guessing and (wait := throttle.retry_after(client_of(request))):
            raise HTTPException(429, f"too many failed ops logins: try again in {wait} s",
                                headers={"Retry-After": str(wait)})
        principal = who(request)
        if principal is not None:
            return principal
        if guessing:
            throttle.failed(client_of(request))
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "log in first", headers={"Location": f"/ops/login?next={quote(target)}"})
        raise HTTPException(401, "an ops token is required (Authorization: Bearer, or log in at /ops/login)",
                            headers={"WWW-Authenticate": 'Bearer realm="syndication-ops"'})

    def act(request: Request, csrf: str, next_path: str | None, action: Callable[[str], Done]) -> Response:
        principal = require(request)
        if not csrf_ok(principal, csrf, request, ctx.public_url):
            raise HTTPException(403, "CSRF check failed: reload the page and try again")
        try:
            done = action(principal.actor)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except ValidationError as exc:
            if principal.session is None:
                raise HTTPException(409, str(exc)) from exc
            sessions.add_flash(principal.cookie, f"Not done: {exc}")
            return RedirectResponse(_safe_next(next_path), status_code=303)
        if principal.session is None:
            return JSONResponse({"action": done.action, "target": done.target, "message": done.message,
                                 "ids": list(done.ids)})
        sessions.add_flash(principal.cookie, done.message)
        return RedirectResponse(_safe_next(next_path), status_code=303)

    # /metrics needs no token, so anyone who reaches it could make every scrape a dozen queries:
    # one rendering serves every request for ``metrics_cache_s`` (a scrape interval is 15 s or more).
    scraped: dict[str, Any] = {"at": None, "value": None}
    scrape_lock = threading.Lock()

    @router.get("/metrics")
    def metrics() -> Response:
        with scrape_lock:
            now, at = ctx.clock(), scraped["at"]
            if at is None or not at <= now < at + timedelta(seconds=ctx.metrics_cache_s):
                scraped["value"] = render_metrics(ctx.store, ctx.site, queue_depths=ctx.queue_depths,
                                                  metrics_dir=ctx.metrics_dir, channels=ctx.channel_names,
                                                  clock=ctx.clock)
                scraped["at"] = now
            body, content_type = scraped["value"]
        return Response(body, media_type=content_type)

    @router.get("/ops/login")
    def login_form(request: Request, next: str = "/ops") -> Response:  # noqa: A002 - the query name
        if who(request):
            return RedirectResponse(_safe_next(next), status_code=303)
        return page(request, "ops_login.html", None, next=_safe_next(next), error=None,
                    configured=bool(ctx.ops_tokens))

    @router.post("/ops/login")
    def login(request: Request, token: str = Form(""), next: str = Form("/ops")) -> Response:  # noqa: A002
        if not same_origin(request, ctx.public_url):
            raise HTTPException(403, "cross-site login refused")
        client = client_of(request)
        if wait := throttle.retry_after(client):
            # Checked before the token, so a throttled client learns nothing from its guesses.
            response = page(request, "ops_login.html", None, status_code=429, next=_safe_next(next),
                            error=f"Too many failed logins from your address: try again in {wait} s.",
                            configured=bool(ctx.ops_tokens))
            response.headers["Retry-After"] = str(wait)
            return response
        token = token.strip()
        if not ctx.ops_tokens or not token or not token_matches(token, ctx.ops_tokens):
            throttle.failed(client)
            return page(request, "ops_login.html", None, status_code=401, next=_safe_next(next),
                        error="That is not a valid ops token.", configured=bool(ctx.ops_tokens))
        throttle.succeeded(client)
        value, _ = sessions.create(actor_for(token))
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(cookie, value, max_age=sessions.ttl_s, path=cookie_path, httponly=True, samesite="strict",
                            secure=cookie == HOST_COOKIE or request.url.scheme == "https")
        return response

    @router.post("/ops/logout")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        principal = require(request)
        if not csrf_ok(principal, csrf, request, ctx.public_url):
            raise HTTPException(403, "CSRF check failed")
        sessions.drop(request.cookies.get(cookie))
        response = RedirectResponse("/ops/login", status_code=303)
        response.delete_cookie(cookie, path=cookie_path, secure=cookie == HOST_COOKIE, httponly=True,
                               samesite="strict")
        return response

    @router.get("/ops")
    def overview(request: Request, feeds_page: int = Query(1, ge=1)) -> Response:
        principal = require(request)
        current = status()
        with ctx.store.read() as session:
            failed = list_deliveries(session, state="failed", limit=100)
        paging = Paging.of(feeds_page, ctx.page_size, len(current.feeds))
        return page(request, "ops_overview.html", principal, status=current, data=current.as_json(), failed=failed,
                    feeds=current.feeds[paging.offset:paging.offset + paging.size], feeds_paging=paging)

    @router.get("/ops/status.json")
    def status_json(request: Request) -> JSONResponse:
        require(request)
        current = status()
        return JSONResponse({**current.as_json(), "problems": current.problems},
                            headers={"Cache-Control": "no-store"})

    @router.get("/ops/articles")
    def search(request: Request, q: str = "") -> Response:
        principal = require(request)
        q = q.strip()
        with ctx.store.read() as session:
            found = (get_article(session, q) or find_by_url(session, q) or find_by_url(session, q.rstrip("/"))
                     if q else None)
        if found is not None:
            return RedirectResponse(f"/ops/articles/{quote(found.article.id, safe='')}", status_code=303)
        return page(request, "ops_article.html", principal, status_code=404 if q else 200, q=q, stored=None)

    @router.get("/ops/articles/{article_id:path}")
    def article(request: Request, article_id: str) -> Response:
        principal = require(request)
        with ctx.store.read() as session:
            stored = get_article(session, article_id)
            if stored is None:
                return page(request, "ops_article.html", principal, status_code=404, q=article_id, stored=None)
            steps, deliveries = steps_of(session, article_id), deliveries_of(session, article_id)
            feeds = feed_keys_of(session, article_id)
        channels = (ctx.channel_names if ctx.channel_names is not None
                    else [n for n, c in ctx.site.channels.items() if c.enabled])
        return page(request, "ops_article.html", principal, q=article_id, stored=stored, steps=steps,
                    deliveries=deliveries, feeds=feeds, channels=channels)

    @router.post("/ops/deliveries/{delivery_id}/retry")
    def retry_one(request: Request, delivery_id: int, csrf: str = Form(""), next: str = Form("/ops")) -> Response:  # noqa: A002
        return act(request, csrf, next, lambda actor: retry_delivery(ctx.store, delivery_id, actor, clock=ctx.clock))

    @router.post("/ops/deliveries/{delivery_id}/discard")
    def discard_one(request: Request, delivery_id: int, csrf: str = Form(""), next: str = Form("/ops")) -> Response:  # noqa: A002
        return act(request, csrf, next, lambda actor: discard_delivery(ctx.store, delivery_id, actor, clock=ctx.clock))

    @router.post("/ops/failures/retry-all")
    def retry_every(request: Request, csrf: str = Form(""), channel: str = Form(""),
                    next: str = Form("/ops")) -> Response:  # noqa: A002
        return act(request, csrf, next, lambda actor: retry_all(ctx.store, actor, channel or None, clock=ctx.clock))

    @router.post("/ops/share")
    def share(request: Request, csrf: str = Form(""), article: str = Form(""), channel: str = Form(""),
              next: str = Form("/ops")) -> Response:  # noqa: A002
        def action(actor: str) -> Done:
            done, outcome = share_again(ctx.store, article, actor, channel or None, known=ctx.channel_names,
                                        clock=ctx.clock)
            announce(ctx.store, ctx.dispatcher, outcome, clock=ctx.clock)  # or the sweeper, if the broker is down
            return done
        return act(request, csrf, next, action)

    @router.post("/ops/channels/{channel}/pause")
    def pause_channel(request: Request, channel: str, csrf: str = Form(""), reason: str = Form(""),
                      next: str = Form("/ops")) -> Response:  # noqa: A002
        return act(request, csrf, next, lambda actor: pause(ctx.store, channel, actor, reason[:500],
                                                            known=ctx.channel_names, clock=ctx.clock))

    @router.post("/ops/channels/{channel}/resume")
    def resume_channel(request: Request, channel: str, csrf: str = Form(""), next: str = Form("/ops")) -> Response:  # noqa: A002
        return act(request, csrf, next, lambda actor: resume(ctx.store, channel, actor, known=ctx.channel_names,
                                                             clock=ctx.clock))

    return router
