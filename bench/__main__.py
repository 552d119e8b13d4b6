"""``python -m bench`` (``make bench``): every benchmark, on both set-ups (``bench.setups``).

On the embedded default and on the production set-up (PostgreSQL plus a redis-server of its
own), it starts the real product (``syndication run --workers 2``) in a temporary folder and
measures publish-to-visible latency at a steady rate, then a 10,000-article burst: accept
rate, time until every feed is up to date, and renders per feed; then, in a product of its own,
how soon scheduled articles are out after their time (``bench.release``). Also renders every feed once
in this process (the floor the burst is compared with), posts through the ledger to the X
stand-in, and reads a feed worker's memory with 1,000 and 100,000 articles stored. Runs
``bench.feed_render`` once. Results are merged into ``bench/results.json`` (the production
set-up's under ``"postgres"``) and printed as a table.

    python -m bench                # ten to fifteen minutes on two cores
    python -m bench --setups embedded --skip-memory   # the old three-to-six-minute run
    python -m bench --keep         # keep the folder: product.log and every worker's log
    python -m bench --profile      # also cProfile the floor renders (bench/.work/floor.prof)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import burst, feed_render, latency, memory, posting, release
from bench.product import Product, ProductError
from bench.results import met, merge, print_table
from bench.setups import Setup, postgres_reachable, production, reset_database
from bench.workload import Workload

WORK = Path(__file__).resolve().parent / ".work"
KEYS = [
    "publish_to_visible_p50_ms", "publish_to_visible_p99_ms", "publish_to_visible_max_ms",
    "publish_to_visible_never_seen", "publish_to_visible_seen_p50_ms", "publish_api_p50_ms",
    "burst_articles", "burst_accepted", "burst_accept_rate_per_s", "burst_consistent_s", "burst_floor_s",
    "burst_ratio", "renders_total", "feeds_total", "renders_per_feed_max", "renders_per_feed_mean",
    "renders_all", "render_windows_in_burst",
    "render_100_items_ms_ours_rss_atom_json", "render_100_items_ms_ours_rss_atom",
    "render_100_items_ms_plain_feedgen_rss_atom", "posts_per_s",
    *(f"posts_per_s.{kind}" for kind in posting.KINDS),
    "render_50_items_one_changed_ms", "render_50_items_cold_ms", "render_ratio_to_feedgen",
    "worker_rss_mb_1k", "worker_rss_mb_100k", "worker_rss_ratio_100k_to_1k",
    "release_to_visible_p50_ms", "release_to_visible_p99_ms", "release_to_visible_max_ms",
]
SETUP_KEYS = [k for k in KEYS if not k.startswith("render_")]
EMBEDDED = Setup("embedded")
console = Console(width=None if sys.stdout.isatty() else 110)


def _take(into: dict[str, Any], notes: dict[str, Any], name: str, found: dict[str, Any]) -> None:
    """Copy measurements into ``into``; ``_notes`` (evidence, not numbers) go under ``notes``."""
    for key, value in found.items():
        if key == "_notes":
            notes[name] = value
        elif not key.startswith("_"):
            into[key] = value


def _step(text: str) -> float:
    console.print(f"[bold]·[/bold] {text}")
    return time.perf_counter()


def measure_pipeline(args: argparse.Namespace, out: dict[str, Any], notes: dict[str, Any],
                     setup: Setup = EMBEDDED) -> None:
    """Latency and burst against ``syndication run``; the floor after it stopped."""
    workload = Workload()
    if setup.database_url:
        reset_database(setup.database_url)
    product = Product(workers=args.workers, keep=args.keep, database_url=setup.database_url,
                      broker_url=setup.broker_url)
    started = _step(f"starting syndication run --workers {args.workers} in {product.root}")
    try:
        with product:
            console.print(f"  ready after {time.perf_counter() - started:.1f}s on {product.base_url}")
            latency.wait_visible(product, workload, "warm", 10)
            _step(f"publish-to-visible: {args.rate:g}/s for {args.duration:g}s")
            _take(out, notes, "latency", latency.measure(
                product, workload, rate_per_s=args.rate, duration_s=args.duration,
                poll_interval_s=args.poll_ms / 1000, bare=args.bare))
            if not args.skip_burst:
                measure_burst(args, product, workload, out, notes)
            _step("stopping the product (SIGTERM)")
        notes["product_exit_status"] = product.process.returncode if product.process else None
        if not args.skip_burst:
            _step(f"floor: rendering all {out.get('feeds_total')} feeds once, in process")
            WORK.mkdir(exist_ok=True)
            _take(out, notes, "floor", burst.render_floor(
                product.db_url, product.site_toml, product.root,
                profile_to=WORK / "floor.prof" if args.profile else None))
    finally:
        if args.keep:
            console.print(f"  kept {product.root} (product.log, var/logs/*.log)")
        product.cleanup()
    consistent, floor = out.get("burst_consistent_s"), out.get("burst_floor_s")
    if "burst_floor_s" in out:
        out["burst_ratio"] = round(consistent / floor, 2) if consistent is not None and floor else None


def measure_burst(args: argparse.Namespace, product: Product, workload: Workload, out: dict[str, Any],
                  notes: dict[str, Any]) -> None:
    before = burst.settle_renders(product)  # counts before the burst, once renders are idle
    _step(f"burst: {args.articles} articles, {args.batch} per POST, {args.senders} senders")
    sent = burst.send(product, workload, articles=args.articles, batch=args.batch, senders=args.senders)
    _take(out, notes, "burst_send", sent)
    _step("waiting until every feed is rendered up to date")
    _take(out, notes, "burst_consistency",
          burst.wait_consistent(product, workload, sent["_last_accept"], timeout=args.consistency_timeout))
    took = (sent.get("_notes", {}).get("sending_s") or 0) + (out.get("burst_consistent_s") or 0)
    renders = burst.render_stats(before, burst.settle_renders(product), burst_s=took or None)
    if out.get("burst_consistent_s") is None:
        # The feeds never caught up, so the counts stop short: keep them as evidence, not as a result.
        renders["_notes"]["incomplete"] = {k: renders.pop(k) for k in ("renders_total", "renders_per_feed_max",
                                                                        "renders_per_feed_mean")}
        out.update(renders_total=None, renders_per_feed_max=None, renders_per_feed_mean=None)
    _take(out, notes, "renders", renders)


def measure_setup(args: argparse.Namespace, setup: Setup, out: dict[str, Any], notes: dict[str, Any]) -> None:
    """Posting, the pipeline and worker memory on one set-up."""
    if not args.skip_feed_render:
        _step(f"posting: posts through the ledger to each channel kind's stand-in ({setup.name})")
        posted = posting.run(database_url=setup.database_url)
        notes.update(posted.pop("notes", {}))  # type: ignore[call-overload]
        out.update(posted)
    measure_pipeline(args, out, notes, setup)
    _step(f"release: scheduled articles, from their time to all.rss and the channel ({setup.name})")
    _take(out, notes, "release", release.run(setup, workers=args.workers))
    if not args.skip_memory:
        _step(f"memory: a feed worker with 1,000 and with 100,000 articles stored ({setup.name})")
        small, large = (int(n) for n in args.memory_articles.split(","))
        _take(out, notes, "memory", memory.run(setup, (small, large)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="feed worker processes (default 2)")
    parser.add_argument("--rate", type=float, default=20, help="steady publishes per second (default 20)")
    parser.add_argument("--duration", type=float, default=30, help="seconds of steady publishing (default 30)")
    parser.add_argument("--poll-ms", type=float, default=2, help="all.rss poll interval (default 2)")
    parser.add_argument("--bare", action="store_true",
                        help="steady articles without section, authors or tags (all.rss only; a diagnostic)")
    parser.add_argument("--skip-burst", action="store_true", help="latency only (a diagnostic)")
    parser.add_argument("--articles", type=int, default=10_000, help="articles in the burst (default 10000)")
    parser.add_argument("--batch", type=int, default=250, help="articles per POST in the burst (default 250)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent burst senders (default 4)")
    parser.add_argument("--consistency-timeout", type=float, default=180, help="seconds (default 180)")
    parser.add_argument("--skip-feed-render", action="store_true", help="skip bench.feed_render (a diagnostic)")
    parser.add_argument("--setups", default="embedded,postgres",
                        help="comma-separated: embedded, postgres (default both)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the worker memory benchmark")
    parser.add_argument("--memory-articles", default="1000,100000",
                        help="stored articles for the two memory readings (default 1000,100000)")
    parser.add_argument("--profile", action="store_true", help="cProfile the floor renders")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and its logs")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json alone")
    args = parser.parse_args(argv)
    # A diagnostic run measures something else: it must not overwrite the numbers of record.
    no_write = args.no_write or args.memory_articles != "1000,100000" or args.bare or args.skip_burst or args.skip_feed_render or args.poll_ms != 2

    out: dict[str, Any] = {}
    # Other work on the machine skews every number here: record how busy it was.
    notes: dict[str, Any] = {"load_average_1m_before": round(os.getloadavg()[0], 2)}
    began = time.perf_counter()
    if not args.skip_feed_render:
        _step("feed_render: ours against plain feedgen; one changed item in a 50-item feed")
        out.update(feed_render.run())
    setups = [name.strip() for name in args.setups.split(",") if name.strip()]
    try:
        if "embedded" in setups:
            console.rule("embedded default: SQLite, embedded redis-server")
            measure_setup(args, EMBEDDED, out, notes)
        if "postgres" in setups:
            console.rule("production set-up: PostgreSQL, a redis-server of its own")
            why_not = postgres_reachable()
            if why_not:
                console.print(f"[yellow]skipped:[/yellow] {why_not}")
                out["postgres"] = {"skipped": why_not}
            else:
                pg: dict[str, Any] = {}
                pg_notes: dict[str, Any] = {}
                with production() as setup:
                    measure_setup(args, setup, pg, pg_notes)
                pg["notes"] = pg_notes
                out["postgres"] = pg
    except (ProductError, TimeoutError) as exc:
        console.print(f"[red]benchmark failed:[/red] {exc}")
        return 1
    notes["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    profile_top = notes.get("floor", {}).pop("profile_top", None)
    out["notes"] = notes
    results = merge(out) if not no_write else {**out, "met": met(out)}
    print_table(results, KEYS, console)
    if isinstance(results.get("postgres"), dict) and "skipped" not in results["postgres"]:
        print_table({**results["postgres"], "met": {k.removeprefix("postgres."): v for k, v in
                                                    results.get("met", {}).items() if k.startswith("postgres.")}},
                    SETUP_KEYS, console, title="production set-up (PostgreSQL, separate redis-server)")
    for name, found in notes.items():
        console.print(f"[dim]{name}:[/dim] {json.dumps(found)}", highlight=False, soft_wrap=True)
    if profile_top:
        print(profile_top, flush=True)
    console.print(f"done in {time.perf_counter() - began:.0f}s; "
                  f"{'not written' if no_write else 'written to bench/results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
