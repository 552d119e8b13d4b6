"""`syndication run`: one command starts the product; signals stop it; a restart carries on."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import article_json
from tests.support.product import Product
from tests.support.stack import SITE_TOML, wait_for

pytestmark = pytest.mark.integration
TOKEN = "run-token-0123456789"


def publish(product: Product, *articles: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{product.base}/api/v1/articles", json=list(articles),
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


@pytest.mark.timeout(240)
def test_run_starts_everything_stops_cleanly_and_carries_on(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE_TOML)
    env = {"SYNDICATION_CONFIG": str(tmp_path / "site.toml"), "SYNDICATION_API_TOKENS": TOKEN}
    # Given the product started with one command on the embedded default
    product = Product(tmp_path, env).start()
    # When an article is published, it is served (how fast is measured in bench/, not here)
    assert publish(product, article_json("run-1")).status_code == 202
    wait_for(lambda: "https://news.test.example/a/run-1" in product.feed_links(), 10, what="the article")
    # When it gets SIGTERM, everything stops and no process is left behind
    assert product.terminate() == 0
    assert product.group_alive() == []
    # And started again on the same data folder, it carries on where it stopped
    product.start()
    try:
        assert "https://news.test.example/a/run-1" in product.feed_links()
        assert publish(product, article_json("run-2")).status_code == 202
        wait_for(lambda: "https://news.test.example/a/run-2" in product.feed_links(), 10, what="the second article")
    finally:
        product.terminate()
    assert product.group_alive() == []
