"""The publish API: ``/api/v1/articles`` for CMSs, with bearer tokens or signed webhooks."""
from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from syndication.articles import Article
from syndication.errors import NotFound
from syndication.publishing import Outcome, announce, parse_batch, publish, unpublish
from syndication.store.articles import feed_keys_of, get_article
from syndication.store.feed_state import get_state
from syndication.store.timeline import steps_of
from apps.web.auth import SIGNATURE_HEADER, require_bearer, verify_signature
from apps.web.context import WebContext

def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace every ``{"$ref": "#/$defs/X"}`` with X itself (the body schema sits in one route)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def article_schema() -> dict[str, Any]:
    """The JSON schema of one article, from the model that validates it, so the two never drift."""
    schema = Article.model_json_schema()
    return _inline(schema, schema.get("$defs", {}))


ARTICLE_SCHEMA: dict[str, Any] = article_schema()
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [ARTICLE_SCHEMA, {"type": "array", "items": ARTICLE_SCHEMA}]}}}}}


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
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        items = payload if isinstance(payload, list) else [payload]
        if not items:
            return _error(422, "no articles given", [{"index": None, "field": "(body)", "reason": "empty array"}])
        if len(items) > ctx.max_batch:
            return _error(413, f"at most {ctx.max_batch} articles per request")
        articles, refused = parse_batch(items, site=ctx.site)
        if refused:
            # All or nothing: a batch with one bad article changes nothing.
            errors = [{"index": exc.index, **e} for exc in refused for e in exc.as_json()]
            return _error(422, f"{len(refused)} of {len(items)} article(s) refused; nothing was stored", errors)
        outcome = publish(ctx.store, ctx.site, articles, clock=ctx.clock)
        return _accepted(outcome, announce(ctx.store, ctx.dispatcher, outcome, clock=ctx.clock))

    @router.post("/articles", status_code=202, openapi_extra=_BODY,
                 responses={401: {"description": "no valid bearer token"}, 413: {"description": "body too large"},
                            422: {"description": "refused articles, with field and reason"}})
    async def post_articles(request: Request) -> JSONResponse:
        """Publish or update one article, or a JSON array of them. Answers 202 with the event ids."""
        require_bearer(request, ctx.api_tokens)
        return await run_in_threadpool(ingest, await request.body())

    @router.post("/webhook", status_code=202, openapi_extra=_BODY)
    async def post_webhook(request: Request) -> JSONResponse:
        """Like POST /articles, authenticated by an HMAC signature header instead of a token:
        ``X-Syndication-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
        body = await request.body()
        verify_signature(request.headers.get(SIGNATURE_HEADER), body, ctx.webhook_secret,
                         tolerance_s=ctx.webhook_tolerance_s)
        return await run_in_threadpool(ingest, body)

    @router.delete("/articles/{article_id:path}", status_code=202)
    def delete_article(request: Request, article_id: str) -> JSONResponse:
        """Withdraw an article: it leaves its feeds and its social posts are deleted."""
        require_bearer(request, ctx.api_tokens)
        try:
            outcome = unpublish(ctx.store, article_id, clock=ctx.clock)
        except NotFound as exc:
            return _error(404, str(exc))
        return _accepted(outcome, announce(ctx.store, ctx.dispatcher, outcome, clock=ctx.clock))

    @router.get("/articles/{article_id:path}")
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
        return JSONResponse({"article": stored.article.model_dump(mode="json"), "revision": stored.revision,
                             "status": stored.status, "origin": stored.origin, "feeds": feeds,
                             "timeline": timeline})

    return router
