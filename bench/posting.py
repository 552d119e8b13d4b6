"""posts_per_s: posts made through the delivery ledger to the X stand-in, real tweepy, no rate limits.

Each post is a full ledger cycle: claim committed → POST /2/tweets → remote id committed,
on SQLite in a temporary folder (or PostgreSQL for the production set-up), with eight threads like the social worker's pool.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
from pydantic import SecretStr

from bench.setups import reset_database
from config import SiteConfig
from syndication.articles import parse_article
from syndication.channels.registry import Channels
from syndication.channels.x import XChannel, XSettings
from syndication.delivering import run_delivery
from syndication.publishing import publish
from syndication.social import plan_event
from syndication.store import Store
from tests.support.stack import free_port, wait_for

SITE = {
    "site": {"title": "Bench", "base_url": "https://bench.example/"},
    "channels": {"x": {"posts_per_window": 1_000_000, "window_s": 900}},
}


class StandInProcess:
    """The X stand-in in its own process, as the real API would be: not sharing our GIL."""

    def __enter__(self) -> "StandInProcess":
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "tests.support.x_standin", "--port", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, 20, what="the X stand-in")
        return self

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/_standin/state", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def tweet_count(self) -> int:
        return len(httpx.get(f"{self.url}/_standin/state", timeout=10).json()["tweets"])

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(10)


def run(posts: int = 600, threads: int = 8, database_url: str | None = None) -> dict[str, float]:
    """Posts per second on SQLite in a temporary folder, or on ``database_url`` (emptied first)."""
    site = SiteConfig.model_validate(SITE)
    if database_url:
        reset_database(database_url)
    with tempfile.TemporaryDirectory() as tmp, StandInProcess() as x:
        store = Store.from_url(database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        channel = XChannel(XSettings(consumer_key=SecretStr("k"), consumer_secret=SecretStr("s"),
                                     access_token=SecretStr("t"), access_token_secret=SecretStr("ts"),
                                     api_base_url=x.url))
        channels = Channels(active={"x": channel})
        now = datetime.now(timezone.utc).isoformat()
        articles = [parse_article({"id": f"b{i}", "url": f"https://bench.example/a/{i}",
                                   "title": f"Bench story {i}", "published_at": now}) for i in range(posts)]
        outcome = publish(store, site, articles)
        ids = [d for e in outcome.events for d in plan_event(store, site, channels, e.id)]
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            states = list(pool.map(lambda i: run_delivery(store, site, channels, i).state, ids))
        elapsed = time.perf_counter() - started
        store.dispose()
        made = x.tweet_count()
    assert states.count("posted") == posts == made, (states.count("posted"), made)
    return {"posts_per_s": round(posts / elapsed, 1), "posts_measured": posts}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
