"""`syndication run`: one command starts the product; signals stop it; a restart carries on; its
embedded redis-server heals."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import article_json
from tests.support.product import Product
from tests.support.stack import FAST, SITE_TOML, wait_for

pytestmark = pytest.mark.integration
TOKEN = "run-token-0123456789abcdefghijklmnop"


def publish(product: Product, *articles: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{product.base}/api/v1/articles", json=list(articles),
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


@pytest.mark.timeout(300)
def test_run_starts_everything_stops_cleanly_carries_on_and_heals_its_redis(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE_TOML)
    # (the sweeper's quick settings: messages the killed redis-server lost are re-sent in seconds)
    env = {"SYNDICATION_CONFIG": str(tmp_path / "site.toml"), "SYNDICATION_API_TOKENS": TOKEN,
           **{f"SYNDICATION_{k.upper()}": str(v) for k, v in FAST.items()}}
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
        # And its redis-server, SIGKILLed in a burst, comes back without an operator
        redis_killed_mid_burst_heals(product, tmp_path / "var" / "redis" / "redis.pid")
    finally:
        product.terminate()
    assert product.group_alive() == []


def readyz(product: Product) -> tuple[int, dict[str, str]]:
    try:
        r = httpx.get(f"{product.base}/readyz", timeout=5)
    except httpx.HTTPError:
        return 0, {}
    return r.status_code, r.json().get("checks", {})


def redis_killed_mid_burst_heals(product: Product, pidfile: Path) -> None:
    """SIGKILL the embedded redis-server after 15 of 45 publishes; then /readyz reports the outage
    while it lasts, the supervisor starts a new redis-server, and all 45 articles reach the feed."""
    killed_pid = int(pidfile.read_text())
    accepted: list[str] = []
    fifteen = threading.Event()

    def burst() -> None:
        for n in range(45):
            article = article_json(f"heal-{n}", published_at=f"2026-11-29T10:{n:02d}:00Z")
            if publish(product, article).status_code == 202:
                accepted.append(str(article["url"]))
            if len(accepted) == 15:
                fifteen.set()

    sender = threading.Thread(target=burst)
    sender.start()
    try:
        assert fifteen.wait(60), "the first 15 publishes"
        # When the redis-server is SIGKILLed after 15 of them
        os.kill(killed_pid, signal.SIGKILL)
        # Then /readyz reports the broker down while it is...
        status, checks = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(readyz(product)), 30,
                                  what="/readyz to report the outage")
        assert checks["broker"].startswith("error") and checks["database"] == "ok"
        # ...and ready again once the supervisor has started a new redis-server
        wait_for(lambda: readyz(product)[0] == 200, 60, interval=0.1, what="/readyz ready again")
        assert int(pidfile.read_text()) != killed_pid
    finally:
        sender.join(120)
    # And every article the API accepted (all 45) reaches the feed
    assert len(accepted) == 45
    wait_for(lambda: set(accepted) <= product.feed_links(), 90, interval=0.5, what="every article in all.rss")
    product.wait_settled()
