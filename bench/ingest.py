"""Where the time of ``POST /api/v1/articles`` goes, in one process, under cProfile.

    python -m bench.ingest [--batch 250] [--batches 8]

Runs what the API handler runs for each request (``parse_batch``, ``publish``, ``announce``
with the Celery dispatcher on an embedded redis-server), without HTTP and without workers,
on a fresh SQLite file. Prints the time of each step per article and the top of the profile.
It is a diagnostic for ``burst_accept_rate_per_s``; it writes nothing to results.json.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.product import SITE_TOML
from bench.setups import reset_database
from bench.workload import Workload, utcnow
from config import Settings
from syndication.publishing import announce, parse_batch, publish
from syndication.site import load_site
from syndication.store import Store
from workers.app import create_app
from workers.broker import BrokerState, client_for
from workers.dispatch import CeleryDispatcher
from workers.embedded_redis import EmbeddedRedis


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL (its schema is emptied first); default a fresh SQLite file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="syndication-ingest-") as tmp:
        root = Path(tmp)
        (root / "site.toml").write_text(SITE_TOML)
        site = load_site(root / "site.toml")
        if args.database_url:
            reset_database(args.database_url)
        store = Store.from_url(args.database_url or f"sqlite:///{root / 'syndication.db'}")
        redis = EmbeddedRedis(root)
        settings = Settings(config=root / "site.toml", data_dir=root, broker_url=redis.start())
        dispatcher = CeleryDispatcher(create_app(settings), BrokerState(client_for(settings.broker_url or "")),
                                      window_ms=settings.render_window_ms)
        try:
            workload = Workload()
            articles = workload.batch("ingest", args.batch * args.batches, utcnow(), timedelta(microseconds=100))
            bodies = [json.dumps(articles[i:i + args.batch]).encode() for i in range(0, len(articles), args.batch)]
            steps = {"json": 0.0, "parse_batch": 0.0, "publish": 0.0, "announce": 0.0}
            profiler = cProfile.Profile()
            profiler.enable()
            for body in bodies:
                t0 = time.perf_counter()
                raw = json.loads(body)
                t1 = time.perf_counter()
                parsed, refused = parse_batch(raw, site=site)
                assert not refused, refused
                t2 = time.perf_counter()
                outcome = publish(store, site, parsed)
                t3 = time.perf_counter()
                announce(store, dispatcher, outcome)
                t4 = time.perf_counter()
                for name, took in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    steps[name] += took
            profiler.disable()
        finally:
            redis.stop()
            store.dispose()
    total = sum(steps.values())
    count = len(articles)
    print(f"{count} articles in batches of {args.batch}: {count / total:.0f} articles/s in one thread")
    for name, took in steps.items():
        print(f"  {name:<12} {took / count * 1000:7.3f} ms/article  {took / total:6.1%}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
