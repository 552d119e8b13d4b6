"""What ``/openapi.json`` says about the publish API, derived from the models that enforce it.

The request body is the ``Article`` model's own JSON schema (one object, or an array of 1 to
``max_batch`` of them); every answer a route gives is listed with its body's model, and each
operation names how it is authenticated. A client generated from the document is right.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from syndication.articles import Article

BEARER = "bearer"  # the security scheme of the token routes
SIGNATURE = "signature"  # ...and of the signed webhook
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {"type": "http", "scheme": "bearer", "description": "An API token (SYNDICATION_API_TOKENS)."},
    SIGNATURE: {"type": "apiKey", "in": "header", "name": "X-Syndication-Signature",
                "description": 't=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>; each signature '
                               "is accepted once."},
}


class FieldProblem(BaseModel):
    """One refused field: its dotted path, why, and (in a batch) the article's index."""

    field: str
    reason: str
    index: int | None = None


class Problem(BaseModel):
    """Every error answer: what went wrong, and for refused input each field and reason."""

    detail: str
    errors: list[FieldProblem] | None = None


class AcceptedArticle(BaseModel):
    id: str
    revision: int
    status: str
    event_id: str | None


class Accepted(BaseModel):
    """A publish or withdrawal taken in: its events and articles, and whether the workers were told."""

    events: list[str]
    articles: list[AcceptedArticle]
    dispatched: bool


class FeedState(BaseModel):
    feed: str
    rendered: bool
    rendered_at: str | None


class ArticleStatus(BaseModel):
    """The stored article, its feeds and its timeline."""

    article: dict[str, Any]
    revision: int
    status: str
    origin: str
    feeds: list[FeedState]
    timeline: list[dict[str, Any]]


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


def articles_body(max_batch: int) -> dict[str, Any]:
    """``openapi_extra`` for a route that takes one article or an array of 1 to ``max_batch``."""
    one = article_schema()
    many = {"type": "array", "items": one, "minItems": 1, "maxItems": max_batch}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [one, many]}}}}}


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


UNAUTHORIZED = {401: _problem("no valid bearer token")}
NOT_FOUND = {404: _problem("no article with this id")}
INGEST = {202: {"model": Accepted, "description": "taken in; rendering and posting follow"},
          400: _problem("the body is not JSON, or nested deeper than the API reads"),
          408: _problem("the body did not arrive in time"),
          413: _problem("the body, or the batch, is too large"),
          422: _problem("articles refused, each field with its reason; nothing was stored")}
WEBHOOK = {401: _problem("no signature, a stale one, or one that does not match the body"),
           409: _problem("this signed request was already accepted (a replay)")}


def secured_by(scheme: str) -> dict[str, Any]:
    """``openapi_extra`` naming the operation's security scheme."""
    return {"security": [{scheme: []}]}


def finished(document: dict[str, Any]) -> dict[str, Any]:
    """The generated document made true: our security schemes declared, and FastAPI's own 422
    (``HTTPValidationError``, added to every route with a parameter) dropped, since no route
    answers in that shape: a path parameter here is any string, and refusals are ``Problem``s."""
    components = document.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    fastapi_422 = "#/components/schemas/HTTPValidationError"
    for item in document.get("paths", {}).values():
        for operation in item.values():
            answer = operation.get("responses", {}).get("422", {})
            if answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref") == fastapi_422:
                del operation["responses"]["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    return document
