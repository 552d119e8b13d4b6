"""release_to_visible: how long after its ``published_at`` a scheduled article is in ``all.rss``
and posted (the preview channel), against ``syndication run``.

Articles are scheduled a few seconds ahead, a quarter of a second apart, so the releases do not
come in one batch. One poller fetches ``all.rss`` about every 5 ms (a conditional GET) and notes
when each article first appears; the post's time is the preview channel's own record of it. An
article's latency is the later of the two, minus its ``published_at``. Goal: p99 within 1 s.

    python -m bench.release                     # the embedded default; merged into results.json
    python -m bench.release --postgres-url postgresql://postgres@127.0.0.1:5432/mydb
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from bench.product import Product
from bench.results import RESULTS, merge, print_table
from bench.setups import Setup, redis_server, reset_database

ARTICLES = 30
LEAD_S = 4.0  # the first is due this long after it is sent (all are sent well before it)
SPACING_S = 0.25
POLL_INTERVAL_S = 0.005
KEYS = ["release_to_visible_p50_ms", "release_to_visible_p99_ms", "release_to_visible_max_ms",
        "release_to_feed_p99_ms", "release_to_post_p99_ms", "release_never_seen"]


def _url(n: int) -> str:
    return f"https://bench.example/embargo/{n}"


def _article(n: int, due: datetime) -> dict[str, Any]:
    return {"id": f"embargo-{n}", "url": _url(n), "title": f"Embargoed story {n}",
            "published_at": due.isoformat(), "section": "Embargo", "summary": "<p>Held until its time.</p>"}


def _poll_feed(product: Product, seen: dict[str, float], urls: set[str], stop: threading.Event) -> int:
    etag, polls = None, 0
    with httpx.Client(base_url=product.base_url, timeout=5) as http:
        while not stop.is_set() and len(seen) < len(urls):
            r = http.get("/feeds/all.rss", headers={"If-None-Match": etag} if etag else {})
            now, polls = time.time(), polls + 1
            if r.status_code == 200:
                etag = r.headers.get("etag")
                for url in urls - seen.keys():
                    if url.encode() in r.content:
                        seen[url] = now
            time.sleep(POLL_INTERVAL_S)
    return polls


def _posted(product: Product) -> dict[str, float]:
    path = product.data_dir / "preview-posts.jsonl"
    found: dict[str, float] = {}
    for line in (path.read_text().splitlines() if path.exists() else []):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("action") == "post":
            found.setdefault(record["url"], datetime.fromisoformat(record["at"]).timestamp())
    return found


def _release_late_ms(product: Product) -> list[float]:
    """How late each release transaction ran, in seconds, from the timeline's ``released`` steps."""
    conn = product.db()
    try:
        rows = conn.execute("SELECT detail FROM timeline WHERE kind = 'released'").fetchall()
    finally:
        conn.close()
    details = [json.loads(d) if isinstance(d, str) else d for (d,) in rows]
    return [float(d["late_ms"]) / 1000 for d in details if isinstance(d, dict) and "late_ms" in d]


def _ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def measure(product: Product, *, articles: int = ARTICLES, timeout_s: float = 30.0) -> dict[str, Any]:
    """Schedule ``articles`` releases against a running product and time each one."""
    first = datetime.now(timezone.utc) + timedelta(seconds=LEAD_S)
    dues = {_url(n): first + timedelta(seconds=n * SPACING_S) for n in range(articles)}
    r = httpx.post(f"{product.base_url}/api/v1/articles", headers=product.auth, timeout=30,
                   json=[_article(n, dues[_url(n)]) for n in range(articles)])
    r.raise_for_status()
    assert {a["status"] for a in r.json()["articles"]} == {"scheduled"}, r.text
    seen: dict[str, float] = {}
    stop = threading.Event()
    polls: list[int] = []
    poller = threading.Thread(target=lambda: polls.append(_poll_feed(product, seen, set(dues), stop)))
    poller.start()
    deadline = max(dues.values()).timestamp() + timeout_s
    while time.time() < deadline and (len(seen) < len(dues) or len(_posted(product).keys() & dues.keys()) < len(dues)):
        time.sleep(0.1)
    stop.set()
    poller.join()
    posted = _posted(product)
    feed_s = [seen[u] - d.timestamp() for u, d in dues.items() if u in seen]
    post_s = [posted[u] - d.timestamp() for u, d in dues.items() if u in posted]
    both = [max(seen[u], posted[u]) - d.timestamp() for u, d in dues.items() if u in seen and u in posted]
    early = [u for u, d in dues.items() if min(seen.get(u, 1e18), posted.get(u, 1e18)) < d.timestamp()]
    late = _release_late_ms(product)
    return {
        "release_to_visible_p50_ms": _ms(both, 0.5), "release_to_visible_p99_ms": _ms(both, 0.99),
        "release_to_visible_max_ms": _ms(both, 1.0), "release_to_feed_p99_ms": _ms(feed_s, 0.99),
        "release_to_post_p99_ms": _ms(post_s, 0.99), "release_never_seen": len(dues) - len(both),
        "_notes": {"articles": len(dues), "spacing_s": SPACING_S, "feed_polls": sum(polls),
                   "released_early": early, "feed_p50_ms": _ms(feed_s, 0.5), "post_p50_ms": _ms(post_s, 0.5),
                   "mean_ms": round(statistics.mean(both) * 1000, 1) if both else None,
                   # the release transaction itself, after the time (the rest is rendering and posting)
                   "release_step_late_p50_ms": _ms(late, 0.5), "release_step_late_max_ms": _ms(late, 1.0)},
    }


def run(setup: Setup, *, workers: int = 2) -> dict[str, Any]:
    """Start ``syndication run`` on ``setup``, measure, stop it."""
    if setup.database_url:
        reset_database(setup.database_url)
    with Product(workers=workers, database_url=setup.database_url, broker_url=setup.broker_url) as product:
        try:
            return measure(product)
        finally:
            product.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.release", description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", help="also on PostgreSQL (a database of yours: its schema is emptied)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json alone")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    found = run(Setup("embedded"))
    out.update({k: v for k, v in found.items() if not k.startswith("_")})
    notes: dict[str, Any] = {"release": found["_notes"]}
    if args.postgres_url:
        with redis_server() as broker:
            pg = run(Setup("postgres", args.postgres_url, broker))
        out["postgres"] = {k: v for k, v in pg.items() if not k.startswith("_")}
        notes["release_postgres"] = pg["_notes"]
    out["notes"] = notes
    if args.no_write:
        print(json.dumps(out, indent=2))
        return 0
    # Merge beside the other benchmarks' numbers, the production set-up's under "postgres" too.
    results = merge({**out, "postgres": {**_current_postgres(), **out.get("postgres", {})}})
    print_table(results, KEYS)
    print(json.dumps(notes))
    return 0


def _current_postgres() -> dict[str, Any]:
    try:
        current = json.loads(RESULTS.read_text()).get("postgres")
    except (OSError, json.JSONDecodeError):
        return {}
    return current if isinstance(current, dict) else {}


if __name__ == "__main__":
    sys.exit(main())
