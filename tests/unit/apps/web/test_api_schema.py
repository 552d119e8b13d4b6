"""A CMS developer reads /openapi.json: the article schema there is the one the API enforces."""
from __future__ import annotations

from pathlib import Path
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
