"""The publish API: ``/api/v1/articles`` for CMSs, with bearer tokens or signed webhooks."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from syndication.errors import NotFound
from syndication.publishing import Outcome, announce, parse_batch, publish, unpublish
from syndication.store import retried
from syndication.store.articles import feed_keys_of, get_article
from syndication.store.feed_state import get_state
from syndication.store.replays import remember_signature
from syndication.store.timeline import steps_of
from apps.web.auth import SIGNATURE_HEADER, require_bearer, verify_signature
from apps.web.context import WebContext
from apps.web.openapi import (BEARER, INGEST, NOT_FOUND, SIGNATURE, UNAUTHORIZED, WEBHOOK, ArticleStatus,
                              Problem, articles_body, secured_by)

# Deeper than any article (array > article > authors > author): a JSON nesting this deep is
# refused before it is parsed, since parsing and validating it recurse once per level.
MAX_JSON_DEPTH = 16
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_INNERMOST = re.compile(rb"\[[^\[\]{}]*\]|\{[^\[\]{}]*\}")


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """True when the JSON in ``body`` nests arrays and objects more than ``limit`` deep (or
    leaves one open). Without recursion: each pass of a regex removes the innermost level."""
    rest = _JSON_STRING.sub(b"", body)
    for _ in range(limit):
        rest, removed = _INNERMOST.subn(b"", rest)
        if not removed:
            break
    return b"[" in rest or b"{" in rest


def _error(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def _accepted(outcome: Outcome, dispatched: bool) -> JSONResponse:
    content: dict[str, Any] = {
        "events": [e.id for e in outcome.events],
        "articles": [{"id": a.article_id, "revision": a.revision, "status": a.status, "event_id": a.event_id,
                      **({"feeds_refused": list(a.feeds_refused)} if a.feeds_refused else {})}
                     for a in outcome.accepted],
        "dispatched": dispatched,
    }
    if any(a.feeds_refused for a in outcome.accepted):
        content["feeds_refused"] = ("the cap on new feeds per request or per hour was reached: these articles "
                                    "are stored, but the new feeds listed under them were not created")
    return JSONResponse(status_code=202, content=content)


def build_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["articles"])

    def ingest(body: bytes) -> JSONResponse:
        if nested_deeper_than(body, MAX_JSON_DEPTH):
            return _error(400, f"body is not JSON nested at most {MAX_JSON_DEPTH} deep")
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        items = payload if isinstance(payload, list) else [payload]
        if not items:
            return _error(422, "no articles given", [{"index": None, "field": "(body)", "reason": "empty array"}])
        if len(items) > ctx.max_batch:
            return _error(422, f"at most {ctx.max_batch} articles per request",
                          [{"index": None, "field": "(body)", "reason": f"more than {ctx.max_batch} articles"}])
        articles, refused = parse_batch(items, site=ctx.site)
        if refused:
            # All or nothing: a batch with one bad article changes nothing.
            errors = [{"index": exc.index, **e} for exc in refused for e in exc.as_json()]
            return _error(422, f"{len(refused)} of {len(items)} article(s) refused; nothing was stored", errors)
        # A deadlock victim is run again (one transaction, nothing committed): never a 500.
        outcome = retried(lambda: publish(ctx.store, ctx.site, articles, clock=ctx.clock))
        return _accepted(outcome, announce(ctx.store, ctx.dispatcher, outcome, clock=ctx.clock))

    body = articles_body(ctx.max_batch)

    @router.post("/articles", status_code=202, openapi_extra={**body, **secured_by(BEARER)},
                 responses={**INGEST, **UNAUTHORIZED})
    async def post_articles(request: Request) -> JSONResponse:
        """Publish or update one article, or a JSON array of them. Answers 202 with the event ids."""
        require_bearer(request, ctx.api_tokens)
        return await run_in_threadpool(ingest, await request.body())

    @router.post("/webhook", status_code=202, openapi_extra={**body, **secured_by(SIGNATURE)},
                 responses={**INGEST, **WEBHOOK})
    async def post_webhook(request: Request) -> JSONResponse:
        """Like POST /articles, authenticated by an HMAC signature header instead of a token:
        ``X-Syndication-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
        Each signed request is accepted once: the same one again, within its window, is a 409."""
        raw = await request.body()
        now = ctx.clock()
        timestamp, mac = verify_signature(request.headers.get(SIGNATURE_HEADER), raw, ctx.webhook_secret,
                                          tolerance_s=ctx.webhook_tolerance_s, now=now.timestamp())
        if not await run_in_threadpool(first_use, mac, timestamp, now):
            return _error(409, f"this signed request was already accepted: a replay is refused (sign each "
                               f"request anew, with the current time in t=)")
        return await run_in_threadpool(ingest, raw)

    def first_use(mac: str, timestamp: int, now: datetime) -> bool:
        expires_at = datetime.fromtimestamp(timestamp + ctx.webhook_tolerance_s, timezone.utc)
        with ctx.store.transaction() as db:
            return remember_signature(db, mac, expires_at=expires_at, now=now)

    @router.delete("/articles/{article_id:path}", status_code=202, openapi_extra=secured_by(BEARER),
                   responses={202: INGEST[202], **UNAUTHORIZED, **NOT_FOUND})
    def delete_article(request: Request, article_id: str) -> JSONResponse:
        """Withdraw an article: it leaves its feeds and its social posts are deleted."""
        require_bearer(request, ctx.api_tokens)
        try:
            outcome = retried(lambda: unpublish(ctx.store, article_id, clock=ctx.clock))
        except NotFound as exc:
            return _error(404, str(exc))
        return _accepted(outcome, announce(ctx.store, ctx.dispatcher, outcome, clock=ctx.clock))

    @router.get("/articles/{article_id:path}", openapi_extra=secured_by(BEARER),
                responses={200: {"model": ArticleStatus, "description": "the article, its feeds and timeline"},
                           **UNAUTHORIZED,
                           404: {"model": Problem, "description": "no article with this id; for one withdrawn, "
                                                                  "its tombstone and timeline beside the detail"}})
    def get_article_status(request: Request, article_id: str) -> JSONResponse:
        """The stored article, its feeds (rendered yet or not) and its timeline."""
        require_bearer(request, ctx.api_tokens)
        with ctx.store.read() as session:
            stored = get_article(session, article_id)
            if stored is None:
                return _error(404, f"no article with id {article_id!r}")
            feeds = []
            for key in feed_keys_of(session, article_id):
                state = get_state(session, key)
                feeds.append({"feed": key, "rendered": bool(state and not state.stale),
                              "rendered_at": state.rendered_at.isoformat() if state and state.rendered_at else None})
            timeline = [{"at": s.at.isoformat(), "kind": s.kind, **s.detail} for s in steps_of(session, article_id)]
        found = {"article": stored.article.model_dump(mode="json"), "revision": stored.revision,
                 "status": stored.status, "origin": stored.origin, "feeds": feeds, "timeline": timeline}
        if stored.withdrawn:  # no longer here (404), but its tombstone and timeline are still shown
            return JSONResponse({"detail": f"article {article_id!r} was withdrawn", **found}, status_code=404)
        return JSONResponse(found)

    return router
