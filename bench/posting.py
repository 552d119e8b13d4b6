"""posts_per_s: posts made through the delivery ledger to each channel kind's stand-in, through
its real client library (tweepy, Mastodon.py, atproto, requests for the webhook), no rate limits.

Each post is a full ledger cycle: claim committed → the service's create call → remote id
committed, on SQLite in a temporary folder (or PostgreSQL for the production set-up), with eight
threads like the social worker's pool. Each stand-in runs in its own process, as the real service
would (not sharing our GIL). ``posts_per_s`` is X's (the number of record since the start);
``posts_per_s_by_kind`` has every kind's.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
from pydantic import SecretStr

from bench.results import merge, print_table
from bench.setups import reset_database
from config import SiteConfig
from syndication.articles import parse_article
from syndication.channels.base import Channel
from syndication.channels.bluesky import BlueskyChannel, BlueskySettings
from syndication.channels.mastodon import MastodonChannel, MastodonSettings
from syndication.channels.registry import Channels
from syndication.channels.webhook import WebhookChannel, WebhookSettings
from syndication.channels.x import XChannel, XSettings
from syndication.delivering import run_delivery
from syndication.publishing import publish
from syndication.social import plan_event
from syndication.store import Store
from tests.support.mastodon_standin import TOKEN as MASTODON_TOKEN
from tests.support.stack import free_port, wait_for

KINDS = ("x", "mastodon", "bluesky", "webhook")
SITE = {
    "site": {"title": "Bench", "base_url": "https://bench.example/"},
    "channels": {kind: {"posts_per_window": 1_000_000, "window_s": 900} for kind in KINDS},
}
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"bench-webhook-secret-0123456789").decode()
# The Bluesky stand-in's account when run standalone (tests/support/bluesky_standin.py).
BLUESKY_HANDLE, BLUESKY_PASSWORD = "gazette.bsky.social", "app-pass-word-1234"


@dataclass(frozen=True)
class Service:
    """How to run one kind's stand-in, count the posts it holds, and build a channel to it."""

    module: str
    state: str
    count: Callable[[dict], int]
    channel: Callable[[str], Channel]
    extra: tuple[str, ...] = ()


SERVICES: dict[str, Service] = {
    "x": Service("tests.support.x_standin", "/_standin/state", lambda s: len(s["tweets"]),
                 lambda url: XChannel(XSettings(consumer_key=SecretStr("k"), consumer_secret=SecretStr("s"),
                                                access_token=SecretStr("t"), access_token_secret=SecretStr("ts"),
                                                api_base_url=url))),
    "mastodon": Service("tests.support.mastodon_standin", "/_standin/state", lambda s: len(s["statuses"]),
                        lambda url: MastodonChannel(MastodonSettings(api_base_url=url,
                                                                     access_token=SecretStr(MASTODON_TOKEN)))),
    "bluesky": Service("tests.support.bluesky_standin", "/_standin/state",
                       lambda s: sum(r["collection"] == "app.bsky.feed.post" for r in s["records"]),
                       lambda url: BlueskyChannel(BlueskySettings(handle=BLUESKY_HANDLE, service_url=url,
                                                                  app_password=SecretStr(BLUESKY_PASSWORD)))),
    "webhook": Service("tests.support.webhook_receiver", "/_receiver/state", lambda s: s["accepted"],
                       lambda url: WebhookChannel(WebhookSettings(url=f"{url}/hooks/news",
                                                                  secret=SecretStr(WEBHOOK_SECRET))),
                       extra=("--secret", WEBHOOK_SECRET)),
}


class StandInProcess:
    """A kind's stand-in in its own process, as the real API would be: not sharing our GIL."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def __enter__(self) -> "StandInProcess":
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", self.service.module, "--port", str(self.port),
                                         *self.service.extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, 20, what=f"the stand-in {self.service.module}")
        return self

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.url}{self.service.state}", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def post_count(self) -> int:
        return self.service.count(httpx.get(f"{self.url}{self.service.state}", timeout=30).json())

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(10)


def run_kind(kind: str, posts: int = 600, threads: int = 8, database_url: str | None = None) -> float:
    """Posts per second to ``kind``'s stand-in, on SQLite in a temporary folder, or on
    ``database_url`` (emptied first)."""
    site = SiteConfig.model_validate({**SITE, "channels": {kind: SITE["channels"][kind]}})
    if database_url:
        reset_database(database_url)
    with tempfile.TemporaryDirectory() as tmp, StandInProcess(SERVICES[kind]) as service:
        store = Store.from_url(database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        channels = Channels(active={kind: SERVICES[kind].channel(service.url)})
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
        made = service.post_count()
    assert states.count("posted") == posts == made, (kind, states.count("posted"), made)
    return round(posts / elapsed, 1)


def run(posts: int = 600, threads: int = 8, database_url: str | None = None,
        kinds: tuple[str, ...] = KINDS) -> dict[str, object]:
    """Posts per second to each kind in turn; ``posts_per_s`` is X's. A kind that fails gets
    None (its goal not met) and the error in ``notes.posting_failures``; the others still run."""
    by_kind: dict[str, float | None] = {}
    failures: dict[str, str] = {}
    for kind in kinds:
        try:
            by_kind[kind] = run_kind(kind, posts, threads, database_url)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports a failure and measures the rest
            by_kind[kind] = None
            failures[kind] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    out: dict[str, object] = {"posts_per_s_by_kind": by_kind, "posts_measured": posts}
    if failures:
        out["notes"] = {"posting_failures": failures}
    if "x" in by_kind:
        out["posts_per_s"] = by_kind["x"]
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.posting [--write]``: print the rates; with ``--write`` merge them into
    bench/results.json (the embedded set-up's keys) and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.posting", description=main.__doc__)
    parser.add_argument("--write", action="store_true", help="merge into bench/results.json")
    parser.add_argument("--posts", type=int, default=600, help="posts per kind (default 600)")
    args = parser.parse_args(argv)
    load = round(os.getloadavg()[0], 2)
    out = run(posts=args.posts)
    out["notes"] = {**out.get("notes", {}),  # type: ignore[dict-item]
                    "posting": {"load_average_1m_before": load, "load_average_1m_after": round(os.getloadavg()[0], 2)}}
    if not args.write:
        print(json.dumps(out, indent=2))
        return
    print_table(merge(out), ["posts_per_s", *(f"posts_per_s.{kind}" for kind in KINDS)], title="posting")


if __name__ == "__main__":
    main()
