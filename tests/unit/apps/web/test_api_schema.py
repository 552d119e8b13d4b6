"""A CMS developer reads /openapi.json: the article schema there is the one the API enforces."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from apps.web.app import create_app
from apps.web.context import WebContext
from config import SiteConfig
from syndication.store import Store
from tests.conftest import FixedClock, article_json
from tests.support.brokers import offline_dispatcher



def body_schema(spec: dict[str, Any]) -> dict[str, Any]:
    body = spec["paths"]["/api/v1/articles"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    one, many = body["oneOf"]
    assert many["items"] == one
    return one


def test_the_documented_limits_are_the_enforced_ones(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    # Given the published OpenAPI document
    ctx = WebContext(site=site, store=store, dispatcher=offline_dispatcher(), feeds_dir=Path("unused"),
                     api_tokens=["api-token-for-tests"], clock=clock)
    with TestClient(create_app(ctx)) as http:
        schema = body_schema(http.get("/openapi.json").json())
        # Then it names every field and the limits of title and summary
        assert set(schema["properties"]) >= {"id", "url", "title", "summary", "published_at", "authors", "image"}
        assert schema["required"] == ["id", "url", "title", "published_at"]
        title_max = schema["properties"]["title"]["maxLength"]
        summary_max = next(s["maxLength"] for s in schema["properties"]["summary"]["anyOf"] if s["type"] == "string")
        assert "$ref" not in str(schema)
        # When a CMS sends a title one character over the documented limit
        response = http.post("/api/v1/articles", json=article_json(1, title="x" * (title_max + 1)),
                             headers={"Authorization": "Bearer api-token-for-tests"})
        # Then it is refused naming the field, and the documented maximum itself is accepted
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["title"]
        ok = http.post("/api/v1/articles", json=article_json(2, title="x" * title_max, summary="y" * summary_max),
                       headers={"Authorization": "Bearer api-token-for-tests"})
        assert ok.status_code == 202, ok.text


def spec_of(store: Store, site: SiteConfig, clock: FixedClock, **overrides: Any) -> tuple[TestClient, dict[str, Any]]:
    ctx = WebContext(site=site, store=store, dispatcher=offline_dispatcher(), feeds_dir=Path("unused"),
                     api_tokens=["api-token-for-tests"], clock=clock, **overrides)
    http = TestClient(create_app(ctx))
    return http, http.get("/openapi.json").json()


def strings(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every string schema inside ``schema``, with where it sits."""
    if isinstance(schema, dict):
        if schema.get("type") == "string":
            yield path, schema
        for key, value in schema.items():
            yield from strings(value, f"{path}.{key}" if key not in ("properties", "anyOf", "items") else path
                               if key != "items" else f"{path}[]")
    elif isinstance(schema, list):
        for value in schema:
            yield from strings(value, path)


def test_every_free_string_of_an_article_has_a_length_limit(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    _, spec = spec_of(store, site, clock)
    unbounded = [where for where, s in strings(body_schema(spec)) if "maxLength" not in s and "format" not in s]
    assert unbounded == []
    # And the limits hold: a 36-character language or a 256-character image type is refused by name
    http, _ = spec_of(store, site, clock)
    auth = {"Authorization": "Bearer api-token-for-tests"}
    answer = http.post("/api/v1/articles", headers=auth, json=article_json(
        1, language="en-" + "-".join(["abcdefgh"] * 4),
        image={"url": "https://img.test.example/a.jpg", "type": "image/" + "x" * 250}))
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"language", "image.type"}


def test_every_answer_and_how_to_authenticate_is_documented(store: Store, site: SiteConfig, clock: FixedClock) -> None:
    _, spec = spec_of(store, site, clock)
    paths = spec["paths"]
    documented = {(path, method): set(op["responses"]) for path, item in paths.items() for method, op in item.items()}
    assert documented == {
        ("/api/v1/articles", "post"): {"202", "400", "401", "408", "413", "422"},
        ("/api/v1/webhook", "post"): {"202", "400", "401", "408", "409", "413", "422"},
        ("/api/v1/articles/{article_id}", "delete"): {"202", "401", "404"},
        ("/api/v1/articles/{article_id}", "get"): {"200", "401", "404"},
    }
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "signature"}
    assert paths["/api/v1/webhook"]["post"]["security"] == [{"signature": []}]
    # And an empty batch, which is refused, is outside the schema too
    many = spec["paths"]["/api/v1/articles"]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"][1]
    assert many["minItems"] == 1 and many["maxItems"] == 1000


def test_docs_are_off_unless_asked_for_and_then_load_nothing_from_elsewhere(store: Store, site: SiteConfig,
                                                                              clock: FixedClock) -> None:
    http, _ = spec_of(store, site, clock)
    assert http.get("/docs").status_code == 404 and http.get("/redoc").status_code == 404
    http, _ = spec_of(store, site, clock, api_docs=True)
    for path in ("/docs", "/redoc"):
        page = http.get(path)
        assert page.status_code == 200 and "POST" in page.text and "/api/v1/webhook" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "<script" not in page.text and "<link" not in page.text and "cdn" not in page.text.lower()
