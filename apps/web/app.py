"""The HTTP service: publish API, feed files, the home page and health checks."""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from apps.web import api, docs, feeds, home, ops
from apps.web.auth import admission
from apps.web.context import WebContext
from apps.web.openapi import finished
from apps.web.limits import BodyLimit


def create_app(ctx: WebContext) -> Any:
    """Build the ASGI app; the entry point wires settings, store and dispatcher into ``ctx``.

    >>> app = create_app(WebContext(site=site, store=store, dispatcher=dispatcher, feeds_dir=path))
    >>> uvicorn.run(app)
    """
    # No Swagger UI or ReDoc from a CDN on the origin of /ops: /docs is our own page, when asked for.
    app = FastAPI(title="syndication", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Publish articles; get RSS 2.0, Atom 1.0 and JSON Feed.")
    routers = [api.build_router(ctx), feeds.build_router(ctx), home.build_router(ctx), ops.build_router(ctx)]
    for router in routers:
        app.include_router(router)

    if ctx.api_docs:
        app.include_router(docs.build_router(app))
    generate = app.openapi
    app.openapi = lambda: finished(generate())  # type: ignore[method-assign]

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Spec: RFC 9110 §15.5.6 — Allow lists every method the resource takes; Starlette
            # names only those of the first route that matched the path.
            routes = [*app.router.routes, *(r for router in routers for r in router.routes)]
            headers["Allow"] = ", ".join(allowed_methods(routes, request.url.path))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            ctx.store.ping()
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            checks["database"] = f"error: {type(exc).__name__}"
        ping = getattr(ctx.dispatcher, "ping", None)
        if ping is not None:
            try:
                checks["broker"] = "ok" if ping() else "error"
            except Exception as exc:  # noqa: BLE001
                checks["broker"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    admit = admission(api_tokens=ctx.api_tokens, webhook_secret=ctx.webhook_secret,
                      tolerance_s=ctx.webhook_tolerance_s, now=lambda: ctx.clock().timestamp(),
                      ops_cookie=ops.cookie_name(ctx.public_url))
    return BodyLimit(app, ctx.max_body_bytes, body_timeout_s=ctx.body_timeout_s, admit=admit)


def allowed_methods(routes: list[Any], path: str) -> list[str]:
    """Every method some route takes at ``path``."""
    methods: set[str] = set()
    for route in routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)
