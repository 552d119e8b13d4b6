"""worker_rss_mb_1k / _100k: a feed worker's memory with 1,000 and with 100,000 articles stored.

The store is filled in this process through the real ``publish`` (as a backfill import, so
nothing is posted), then ``syndication run`` starts on it; its sweeper finds every feed stale
and the feed worker renders them all. Once every feed is current, the peak resident memory
(VmHWM) of the feed worker's processes is read from /proc. A worker that loaded whole
tables would grow with the store; one that reads the newest N items per feed stays flat.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.burst import _db_consistent
from bench.product import SITE_TOML, Product, _group_members
from bench.setups import Setup, reset_database
from bench.workload import Workload
from syndication.publishing import parse_batch, publish
from syndication.site import load_site
from syndication.store import Store

BATCH = 1000


def seed(product: Product, articles: int) -> int:
    """Store ``articles`` articles in the product's database; returns how many feeds they make."""
    product.site_toml.write_text(SITE_TOML)
    site = load_site(product.site_toml)
    store = Store.from_url(product.db_url)
    workload = Workload()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for first in range(0, articles, BATCH):
        raw = [workload.article("mem", n, start + timedelta(minutes=n))
               for n in range(first, min(first + BATCH, articles))]
        parsed, refused = parse_batch(raw, site=site)
        assert not refused, refused[0]
        publish(store, site, parsed, origin="import")
    store.dispose()
    return len(workload.newest)


def _feed_worker_peak_mb(pgid: int) -> float:
    """The largest VmHWM among the feed worker's processes (its main process and pool children)."""
    peak_kb = 0
    for pid in _group_members(pgid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"urgent,feeds" not in cmdline:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak_kb = max(peak_kb, int(line.split()[1]))
    return round(peak_kb / 1024, 1)


def worker_rss_mb(articles: int, setup: Setup, *, timeout: float = 600) -> dict[str, Any]:
    if setup.database_url:
        reset_database(setup.database_url)
    product = Product(workers=1, database_url=setup.database_url, broker_url=setup.broker_url)
    try:
        seeded_at = time.perf_counter()
        feeds = seed(product, articles)
        seed_s = time.perf_counter() - seeded_at
        with product:
            deadline = time.monotonic() + timeout
            with product.db() as conn:
                while not _db_consistent(conn, feeds):
                    product.check_alive()
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"feeds not rendered within {timeout}s with {articles} articles")
                    time.sleep(0.2)
            assert product.process is not None
            peak = _feed_worker_peak_mb(product.process.pid)
    finally:
        product.cleanup()
    return {"rss_mb": peak, "feeds": feeds, "seed_s": round(seed_s, 1)}


def run(setup: Setup, sizes: tuple[int, int] = (1_000, 100_000)) -> dict[str, Any]:
    small, large = (worker_rss_mb(n, setup) for n in sizes)
    return {
        "worker_rss_mb_1k": small["rss_mb"],
        "worker_rss_mb_100k": large["rss_mb"],
        "worker_rss_ratio_100k_to_1k": round(large["rss_mb"] / small["rss_mb"], 2) if small["rss_mb"] else None,
        "_notes": {"articles": list(sizes), "small": small, "large": large},
    }
