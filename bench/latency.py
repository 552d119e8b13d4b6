"""Publish-to-visible: how long from ``POST /api/v1/articles`` until ``all.rss`` serves the item.

Articles go out at a steady rate. One poller fetches ``all.rss`` about every 2 ms while any
article is in flight (a conditional GET, so an unchanged feed costs a 304) and checks every
in-flight article against each new body: each article is checked every ~2 ms, as if it had a
poller of its own, without multiplying the load the benchmark puts on the server.
"""
from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.product import Product
from bench.workload import Workload, utcnow

POLL_INTERVAL_S = 0.002
VISIBLE_TIMEOUT_S = 10.0


@dataclass
class Visibility:
    """In-flight articles (URL → send time) and the latencies seen so far."""

    inflight: dict[bytes, float] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    api_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    polls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def sent(self, url: str) -> None:
        with self.lock:
            self.inflight[url.encode()] = time.perf_counter()

    def seen_in(self, body: bytes, at: float) -> None:
        with self.lock:
            for url in [u for u in self.inflight if u in body]:
                self.latencies_s.append(at - self.inflight.pop(url))

    def expire(self, now: float) -> None:
        with self.lock:
            for url, sent_at in list(self.inflight.items()):
                if now - sent_at > VISIBLE_TIMEOUT_S:
                    del self.inflight[url]  # counted as never seen

    def busy(self) -> bool:
        with self.lock:
            return bool(self.inflight)


def _poll(http: httpx.Client, state: Visibility, interval_s: float) -> None:
    etag: str | None = None
    while not state.stop.is_set():
        started = time.perf_counter()
        if state.busy():
            headers = {"If-None-Match": etag} if etag else {}
            try:
                response = http.get("/feeds/all.rss", headers=headers)
            except httpx.HTTPError as exc:
                state.failures.append(f"GET all.rss: {exc!r}")
                time.sleep(interval_s)
                continue
            received = time.perf_counter()
            state.polls += 1
            if response.status_code == 200:
                etag = response.headers.get("etag")
                state.seen_in(response.content, received)
            state.expire(received)
        pause = interval_s - (time.perf_counter() - started)
        if pause > 0:
            time.sleep(pause)


def _publish(http: httpx.Client, product: Product, state: Visibility, article: dict[str, Any]) -> None:
    state.sent(article["url"])
    started = time.perf_counter()
    try:
        response = http.post("/api/v1/articles", json=article, headers=product.auth)
    except httpx.HTTPError as exc:
        state.failures.append(f"POST {article['id']}: {exc!r}")
        return
    state.api_s.append(time.perf_counter() - started)
    if response.status_code != 202:
        state.failures.append(f"POST {article['id']}: {response.status_code} {response.text[:200]}")


def wait_visible(product: Product, workload: Workload, phase: str, count: int, timeout: float = 60) -> None:
    """Publish ``count`` articles and wait until ``all.rss`` shows the last (warms up workers)."""
    with httpx.Client(base_url=product.base_url, timeout=30) as http:
        articles = [workload.article(phase, n, utcnow()) for n in range(count)]
        for article in articles:
            response = http.post("/api/v1/articles", json=article, headers=product.auth)
            response.raise_for_status()
            time.sleep(0.05)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            product.check_alive()
            if articles[-1]["url"].encode() in http.get("/feeds/all.rss").content:
                return
            time.sleep(0.05)
    raise TimeoutError(f"warm-up article not in all.rss after {timeout}s\n{product.log_tail()}")


def measure(product: Product, workload: Workload, *, rate_per_s: float = 20, duration_s: float = 30,
            senders: int = 4, poll_interval_s: float = POLL_INTERVAL_S, bare: bool = False) -> dict[str, Any]:
    """Publish ``rate_per_s`` articles a second for ``duration_s``; percentiles of publish-to-visible.

    Articles have a section, one or two authors and two tags (five feeds each), as in the
    burst; ``bare`` sends them without, so each publish dirties ``all`` alone.
    """
    state = Visibility()
    count = int(rate_per_s * duration_s)
    limits = httpx.Limits(max_connections=senders + 2, max_keepalive_connections=senders + 2)
    with httpx.Client(base_url=product.base_url, timeout=30, limits=limits) as http, \
            ThreadPoolExecutor(senders, thread_name_prefix="publish") as pool:
        poller = threading.Thread(target=_poll, args=(http, state, poll_interval_s), name="poll-all-rss",
                                  daemon=True)
        poller.start()
        cpu_started, started = time.process_time(), time.perf_counter()
        for n in range(count):
            pause = started + n / rate_per_s - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            # published_at is taken now, so each article is the newest yet and enters the top 50.
            article = workload.article("bare" if bare else "steady", n, utcnow(), bare=bare)
            pool.submit(_publish, http, product, state, article)
        pool.shutdown(wait=True)
        sending_s = time.perf_counter() - started
        deadline = time.monotonic() + VISIBLE_TIMEOUT_S + 1
        while state.busy() and time.monotonic() < deadline:
            time.sleep(0.05)
        state.stop.set()
        poller.join(5)
    product.check_alive()
    summary = _summary(state, count, sending_s, duration_s)
    # The benchmark shares the two cores with the product: say how much it took.
    summary["_notes"]["bench_cpu_s"] = round(time.process_time() - cpu_started, 1)
    return summary


def _percentile_ms(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1] * 1000, 1)


def _summary(state: Visibility, count: int, sending_s: float, duration_s: float) -> dict[str, Any]:
    # An article all.rss never showed (pushed out of the newest 50 before a render carried it,
    # or later than the timeout) counts as the timeout: leaving it out would flatter the
    # percentiles exactly when the pipeline falls behind.
    never = count - len(state.latencies_s)
    censored = state.latencies_s + [VISIBLE_TIMEOUT_S] * never
    return {
        "publish_to_visible_p50_ms": _percentile_ms(censored, 50),
        "publish_to_visible_p99_ms": _percentile_ms(censored, 99),
        "publish_to_visible_max_ms": round(max(censored) * 1000, 1) if censored else None,
        "publish_to_visible_articles": count,
        "publish_to_visible_never_seen": never,
        "publish_api_p50_ms": _percentile_ms(state.api_s, 50),
        "publish_api_p99_ms": _percentile_ms(state.api_s, 99),
        "publish_to_visible_seen_p50_ms": _percentile_ms(state.latencies_s, 50),
        "_notes": {"censored_at_ms": VISIBLE_TIMEOUT_S * 1000, "failures": state.failures[:10],
                   "failures_total": len(state.failures), "polls": state.polls,
                   "polls_per_s": round(state.polls / sending_s, 1), "sending_s": round(sending_s, 2),
                   "schedule_slip_s": round(sending_s - duration_s, 2)},
    }
