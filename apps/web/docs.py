"""``/docs`` (and ``/redoc``): the API described from ``/openapi.json``, as one static page.

Served only when ``SYNDICATION_API_DOCS`` asks for it. No Swagger UI or ReDoc script from a
CDN on the origin of ``/ops``: the page is rendered here, holds no script at all, and its
Content-Security-Policy forbids any.
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader

CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; "
       "base-uri 'none'")
METHODS = ("get", "post", "put", "patch", "delete")


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation of an OpenAPI document, in path order, with what the page shows of it."""
    found = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if (op := item.get(method)) is not None:
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                found.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                              "description": op.get("description", ""),
                              "security": [name for entry in op.get("security", []) for name in entry],
                              "responses": {code: r.get("description", "") for code, r in op["responses"].items()},
                              "body": json.dumps(body, indent=2) if body else None})
    return found


def build_router(app: FastAPI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    template = Environment(autoescape=True, loader=PackageLoader("apps.web")).get_template("api_docs.html")

    def page() -> HTMLResponse:
        document = app.openapi()
        html = template.render(info=document["info"], operations=operations(document))
        return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
                                           "Referrer-Policy": "same-origin"})

    router.add_api_route("/docs", page, methods=["GET"])
    router.add_api_route("/redoc", page, methods=["GET"])
    return router
