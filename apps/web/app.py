"""The HTTP service: publish API, feed files, the home page and health checks."""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from apps.web import api, feeds, home, ops
from apps.web.context import WebContext
from apps.web.limits import BodyLimit


def create_app(ctx: WebContext) -> Any:
    """Build the ASGI app; the entry point wires settings, store and dispatcher into ``ctx``.

    >>> app = create_app(WebContext(site=site, store=store, dispatcher=dispatcher, feeds_dir=path))
    >>> uvicorn.run(app)
    """
    app = FastAPI(title="syndication", version="0.1.0",
                  description="Publish articles; get RSS 2.0, Atom 1.0 and JSON Feed.")
    app.include_router(api.build_router(ctx))
    app.include_router(feeds.build_router(ctx))
    app.include_router(home.build_router(ctx))
    app.include_router(ops.build_router(ctx))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

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

    return BodyLimit(app, ctx.max_body_bytes)
