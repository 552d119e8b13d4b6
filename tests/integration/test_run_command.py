"""`syndication run`: one command starts the product; signals stop it; a crash loses nothing."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from tests.conftest import article_json
from tests.integration.test_social import SOCIAL_SITE, x_env
from tests.support.product import Product
from tests.support.stack import SITE_TOML, wait_for
from tests.support.x_standin import XStandIn

pytestmark = pytest.mark.integration
TOKEN = "run-token-0123456789abcdefghijklmnop"


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


@pytest.mark.timeout(300)
def test_sixty_articles_posted_exactly_once_through_a_crash_and_a_flaky_rate_limited_x(tmp_path: Path) -> None:
    # Given X fails 15% of calls with 503 and allows 20 calls per 3 s
    with XStandIn(fail_rate=0.15, rate_limit=(20, 3.0), seed=7) as x:
        (tmp_path / "site.toml").write_text(SOCIAL_SITE.replace("posts_per_window = 10000", "posts_per_window = 100"))
        env = {"SYNDICATION_CONFIG": str(tmp_path / "site.toml"), "SYNDICATION_API_TOKENS": TOKEN,
               **{f"SYNDICATION_{k}": v for k, v in x_env(x).items()}}
        product = Product(tmp_path, env).start()
        now = datetime.now(timezone.utc).isoformat()
        articles = [article_json(f"x{i}", published_at=now, title=f"Story number {i} of the day") for i in range(60)]
        started = time.monotonic()
        try:
            # When 60 articles are published, and the whole stack is SIGKILLed halfway
            for i, article in enumerate(articles):
                if i == 30:
                    product.kill()
                    product.start()
                assert publish(product, article).status_code == 202
                time.sleep(0.1)

            # Then each is posted exactly once, within 90 s
            def counts() -> dict[str, int]:
                texts = [t.original_text.split() for t in x.live_tweets]
                return {str(a["url"]): sum(str(a["url"]) in words for words in texts) for a in articles}

            try:
                wait_for(lambda: min(counts().values()) >= 1, 90 - (time.monotonic() - started), interval=0.5,
                         what="every article posted")
            except AssertionError:
                missing = [u for u, n in counts().items() if n == 0]
                raise AssertionError(f"not posted within 90 s: {missing}; "
                                     f"X holds {[t.original_text for t in x.tweets][:5]}...") from None
            product.wait_settled()
            assert set(counts().values()) == {1}, {k: v for k, v in counts().items() if v != 1}
        finally:
            product.terminate()
