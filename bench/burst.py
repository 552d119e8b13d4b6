"""The burst: 10,000 articles at once, then how long until every feed shows its newest items.

``send`` measures the accept rate of the API. ``wait_consistent`` watches the product's
SQLite file read-only (every ``feed_state`` row rendered up to its last change) and
confirms over HTTP that sampled feeds lead with the newest article sent to them.
``render_floor`` is the yardstick: the same feeds rendered once each, in one process.
"""
from __future__ import annotations

import cProfile
import io
import json
import pstats
import queue
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.product import Product
from bench.workload import Workload, utcnow
from syndication.rendering import render_feed
from syndication.site import load_site
from syndication.store import Store
from syndication.store.articles import all_feed_keys

_FIRST_ITEM_LINK = re.compile(rb"<item>.*?<link>(.*?)</link>", re.DOTALL)


@dataclass
class Sending:
    accepted: int = 0
    failures: list[str] = field(default_factory=list)
    request_s: list[float] = field(default_factory=list)
    last_accept: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(product: Product, workload: Workload, *, articles: int = 10_000, batch: int = 250,
         senders: int = 4) -> dict[str, Any]:
    """POST ``articles`` in batches from ``senders`` threads; accepted articles per second of sending."""
    # Newest last, 100 µs apart: the burst ends at most a second in the future.
    data = workload.batch("burst", articles, utcnow(), timedelta(microseconds=100))
    bodies: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for start in range(0, articles, batch):
        bodies.put(json.dumps(data[start:start + batch]).encode())
    state = Sending()
    headers = {**product.auth, "Content-Type": "application/json"}

    def sender(http: httpx.Client) -> None:
        while True:
            try:
                body = bodies.get_nowait()
            except queue.Empty:
                return
            started = time.perf_counter()
            try:
                response = http.post("/api/v1/articles", content=body, headers=headers)
            except httpx.HTTPError as exc:
                state.failures.append(repr(exc))
                continue
            done = time.perf_counter()
            if response.status_code != 202:
                state.failures.append(f"{response.status_code} {response.text[:200]}")
                continue
            taken = sum(a["status"] in ("created", "updated") for a in response.json()["articles"])
            with state.lock:
                state.accepted += taken
                state.request_s.append(done - started)
                state.last_accept = max(state.last_accept, done)

    with httpx.Client(base_url=product.base_url, timeout=120,
                      limits=httpx.Limits(max_connections=senders)) as http:
        threads = [threading.Thread(target=sender, args=(http,), name=f"burst-{i}") for i in range(senders)]
        cpu_started, started = time.process_time(), time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    product.check_alive()
    wall = (state.last_accept or time.perf_counter()) - started
    request_s = sorted(state.request_s)
    return {
        "burst_articles": articles,
        "burst_accepted": state.accepted,
        "burst_accept_rate_per_s": round(state.accepted / wall, 1) if wall > 0 else None,
        "_notes": {"batch": batch, "senders": senders, "sending_s": round(wall, 2),
                   "request_ms_median": round(request_s[len(request_s) // 2] * 1000, 1) if request_s else None,
                   "request_ms_max": round(request_s[-1] * 1000, 1) if request_s else None,
                   "failures": state.failures[:5], "failures_total": len(state.failures),
                   "bench_cpu_s": round(time.process_time() - cpu_started, 1)},
        "_last_accept": state.last_accept,
    }


def render_counts(conn: Any) -> dict[str, int]:
    return dict(conn.execute("SELECT feed_key, renders FROM feed_state"))


def _db_consistent(conn: Any, feeds_expected: int) -> bool:
    rows, stale = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN rendered_seq < dirty_seq THEN 1 ELSE 0 END), 0) "
        "FROM feed_state").fetchone()
    return rows >= feeds_expected and stale == 0


def spot_keys(workload: Workload) -> list[str]:
    """``all`` and three feeds of each kind, spread over the catalogue."""
    keys = ["all"]
    for kind in ("section", "author", "tag"):
        of_kind = sorted(k for k in workload.newest if k.startswith(kind + "/"))
        keys += sorted({of_kind[0], of_kind[len(of_kind) // 2], of_kind[-1]}) if of_kind else []
    return keys


def _spot_check(http: httpx.Client, workload: Workload, keys: list[str]) -> list[str]:
    """Feeds whose served files do not lead with the newest article sent to them."""
    wrong = []
    for key in keys:
        expected = workload.newest[key].url
        js = http.get(f"/feeds/{key}.json")
        rss = http.get(f"/feeds/{key}.rss")
        first_json = js.json()["items"][0]["url"] if js.status_code == 200 and js.json().get("items") else None
        match = _FIRST_ITEM_LINK.search(rss.content) if rss.status_code == 200 else None
        first_rss = match.group(1).decode() if match else None
        if first_json != expected or first_rss != expected:
            wrong.append(f"{key}: json {first_json}, rss {first_rss}, expected {expected}")
    return wrong


def wait_consistent(product: Product, workload: Workload, last_accept: float, *,
                    timeout: float = 180) -> dict[str, Any]:
    """Seconds from the last accept until every feed is rendered up to date (None on timeout)."""
    keys = spot_keys(workload)
    wrong: list[str] = []
    checks = 0
    with product.db() as conn, httpx.Client(base_url=product.base_url, timeout=30) as http:
        while time.perf_counter() - last_accept < timeout:
            if _db_consistent(conn, len(workload.newest)):
                seen_at = time.perf_counter()
                checks += 1
                wrong = _spot_check(http, workload, keys)
                if not wrong:
                    return {"burst_consistent_s": round(seen_at - last_accept, 2),
                            "_notes": {"spot_checked": keys, "db_checks_passed": checks}}
            else:
                product.check_alive()
            time.sleep(0.02)
    return {"burst_consistent_s": None,
            "_notes": {"timed_out_after_s": timeout, "spot_check_wrong": wrong[:5]}}


def settle_renders(product: Product, *, quiet_s: float = 2.0, timeout: float = 30) -> dict[str, int]:
    """Render counts once they stop moving (a trailing render may still be queued at consistency)."""
    deadline = time.monotonic() + timeout
    with product.db() as conn:
        counts = render_counts(conn)
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = render_counts(conn)
            if now != counts:
                counts, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= quiet_s:
                break
    return counts


def render_stats(before: dict[str, int], after: dict[str, int], *, burst_s: float | None = None,
                 window_ms: int = 50) -> dict[str, Any]:
    """Renders each feed did during the burst.

    The goal is two rules: every feed but ``all`` renders at most 3 times
    (``renders_per_feed_max``), and ``all``, which most readers poll, at most once per render
    window while the burst lasts (``renders_all`` against ``render_windows_in_burst``).
    """
    per_feed = {key: count - before.get(key, 0) for key, count in after.items()}
    total = sum(per_feed.values())
    windows = int(burst_s * 1000 // window_ms) + 1 if burst_s is not None else None
    return {
        "renders_total": total,
        "feeds_total": len(after),
        "renders_per_feed_max": max((n for key, n in per_feed.items() if key != "all"), default=0),
        "renders_all": per_feed.get("all", 0),
        "render_windows_in_burst": windows,
        "renders_per_feed_mean": round(total / len(after), 2) if after else None,
        "_notes": {"most_rendered": sorted(per_feed.items(), key=lambda kv: -kv[1])[:5]},
    }


def render_floor(db_url: str, site_toml: Path, work_dir: Path, *,
                 profile_to: Path | None = None) -> dict[str, Any]:
    """Render every feed once, sequentially, in this process, from the loaded store.

    Run after the product stopped, so nothing else competes for the CPU. With
    ``profile_to``, a second pass (not the timed one: cProfile slows it) runs under
    cProfile and its stats are written there.
    """
    store = Store.from_url(db_url, migrate_schema=False)
    site = load_site(site_toml)
    with store.read() as session:
        keys = all_feed_keys(session)
    render_feed(store, site, work_dir / "warm-up", "all", clock=utcnow)  # imports, caches, first connection
    started = time.perf_counter()
    for key in keys:
        render_feed(store, site, work_dir / "floor", key, clock=utcnow)
    elapsed = time.perf_counter() - started
    notes: dict[str, Any] = {"feeds": len(keys), "ms_per_feed": round(elapsed / len(keys) * 1000, 2)}
    if profile_to:
        profiler = cProfile.Profile()
        profiler.enable()
        for key in keys:
            render_feed(store, site, work_dir / "floor-profiled", key, clock=utcnow)
        profiler.disable()
        profiler.dump_stats(profile_to)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        notes["profile"] = str(profile_to)
        notes["profile_top"] = out.getvalue()
    store.dispose()
    return {"burst_floor_s": round(elapsed, 2), "_notes": notes}
