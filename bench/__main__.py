"""``python -m bench`` (``make bench``): every benchmark, on the embedded default.

Starts the real product (``syndication run --workers 2``) in a temporary folder and measures
publish-to-visible latency at a steady rate, then a 10,000-article burst: accept rate, time
until every feed is up to date, and renders per feed. Also renders every feed once in this
process (the floor the burst is compared with) and runs ``bench.feed_render``. Results are
merged into ``bench/results.json`` and printed as a table.

    python -m bench                # three to six minutes on two cores
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

from bench import burst, feed_render, latency, posting
from bench.product import Product, ProductError
from bench.results import met, merge, print_table
from bench.workload import Workload

WORK = Path(__file__).resolve().parent / ".work"
KEYS = [
    "publish_to_visible_p50_ms", "publish_to_visible_p99_ms", "publish_to_visible_max_ms",
    "publish_to_visible_never_seen", "publish_to_visible_seen_p50_ms", "publish_api_p50_ms",
    "burst_articles", "burst_accepted", "burst_accept_rate_per_s", "burst_consistent_s", "burst_floor_s",
    "burst_ratio", "renders_total", "feeds_total", "renders_per_feed_max", "renders_per_feed_mean",
    "render_100_items_ms_ours_rss_atom_json", "render_100_items_ms_ours_rss_atom",
    "render_100_items_ms_plain_feedgen_rss_atom", "posts_per_s",
]
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


def measure_pipeline(args: argparse.Namespace, out: dict[str, Any], notes: dict[str, Any]) -> None:
    """Latency and burst against ``syndication run``; the floor after it stopped."""
    workload = Workload()
    product = Product(workers=args.workers, keep=args.keep)
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
                product.db_path, product.site_toml, product.root,
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
    renders = burst.render_stats(before, burst.settle_renders(product))
    if out.get("burst_consistent_s") is None:
        # The feeds never caught up, so the counts stop short: keep them as evidence, not as a result.
        renders["_notes"]["incomplete"] = {k: renders.pop(k) for k in ("renders_total", "renders_per_feed_max",
                                                                        "renders_per_feed_mean")}
        out.update(renders_total=None, renders_per_feed_max=None, renders_per_feed_mean=None)
    _take(out, notes, "renders", renders)


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
    parser.add_argument("--profile", action="store_true", help="cProfile the floor renders")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and its logs")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json alone")
    args = parser.parse_args(argv)
    # A diagnostic run measures something else: it must not overwrite the numbers of record.
    no_write = args.no_write or args.bare or args.skip_burst or args.skip_feed_render or args.poll_ms != 2

    out: dict[str, Any] = {}
    # Other work on the machine skews every number here: record how busy it was.
    notes: dict[str, Any] = {"load_average_1m_before": round(os.getloadavg()[0], 2)}
    began = time.perf_counter()
    if not args.skip_feed_render:
        _step("feed_render: 100 items, ours against plain feedgen")
        out.update(feed_render.run())
    if not args.skip_feed_render:
        _step("posting: posts through the ledger to the X stand-in")
        out.update(posting.run())
    try:
        measure_pipeline(args, out, notes)
    except (ProductError, TimeoutError) as exc:
        console.print(f"[red]benchmark failed:[/red] {exc}")
        return 1
    notes["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    profile_top = notes.get("floor", {}).pop("profile_top", None)
    out["notes"] = notes
    results = merge(out) if not no_write else {**out, "met": met(out)}
    print_table(results, KEYS, console)
    for name, found in notes.items():
        console.print(f"[dim]{name}:[/dim] {json.dumps(found)}", highlight=False, soft_wrap=True)
    if profile_top:
        print(profile_top, flush=True)
    console.print(f"done in {time.perf_counter() - began:.0f}s; "
                  f"{'not written' if no_write else 'written to bench/results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
