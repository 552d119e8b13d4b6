"""``bench/results.json``: merged with what is already there, and printed as a table."""
from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results.json"

# Targets, and whether a number must stay at or below (True) or reach (False) its goal.
GOALS: dict[str, float] = {
    "publish_to_visible_p50_ms": 30,
    "publish_to_visible_p99_ms": 100,
    "burst_accept_rate_per_s": 2000,
    "burst_ratio": 1.5,  # every feed current within 1.5x the in-process floor
    "renders_per_feed_max": 3,
    "posts_per_s": 100,
    "render_50_items_one_changed_ms": 3,
    "render_ratio_to_feedgen": 1.0,
    "worker_rss_ratio_100k_to_1k": 1.2,
    "release_to_visible_p99_ms": 1000,  # a scheduled article in all.rss and posted, after its time
}
LOWER_IS_BETTER = {"publish_to_visible_p50_ms", "publish_to_visible_p99_ms", "burst_ratio", "renders_per_feed_max",
                   "render_50_items_one_changed_ms", "render_ratio_to_feedgen", "worker_rss_ratio_100k_to_1k",
                   "release_to_visible_p99_ms"}


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def met(measured: dict[str, Any]) -> dict[str, bool]:
    """For each goal this run measured: was it met? A missing measurement (None) is not.

    The production set-up's numbers (``measured["postgres"]``) get verdicts named ``postgres.<key>``;
    each channel kind's posting rate (``posts_per_s_by_kind``) one named ``posts_per_s.<kind>``,
    against the goal of ``posts_per_s``.
    """
    verdicts = {}
    if measured.get("renders_all") is not None and measured.get("render_windows_in_burst"):
        verdicts["renders_all"] = measured["renders_all"] <= measured["render_windows_in_burst"]
    nested = measured.get("postgres")
    if isinstance(nested, dict) and "skipped" not in nested:
        verdicts.update({f"postgres.{key}": ok for key, ok in met(nested).items()})
    by_kind = measured.get("posts_per_s_by_kind")
    if isinstance(by_kind, dict):
        verdicts.update({f"posts_per_s.{kind}": value is not None and value >= GOALS["posts_per_s"]
                         for kind, value in by_kind.items()})
    for key, goal in GOALS.items():
        if key not in measured:
            continue
        value = measured[key]
        if value is None:
            verdicts[key] = False
        else:
            verdicts[key] = value <= goal if key in LOWER_IS_BETTER else value >= goal
    return verdicts


def merge(measured: dict[str, Any], path: Path = RESULTS) -> dict[str, Any]:
    """Update ``path`` with this run's keys; keys written by other benchmarks stay.

    ``goals``, ``met`` and ``notes`` are merged key by key, so another benchmark's survive.
    """
    try:
        current = json.loads(path.read_text())
        if not isinstance(current, dict):
            current = {}
    except (FileNotFoundError, json.JSONDecodeError):
        current = {}
    merged = {**current, **measured}
    merged["machine"] = machine()
    merged["goals"] = {**current.get("goals", {}), **GOALS}
    merged["met"] = {**current.get("met", {}), **met(measured)}
    merged["notes"] = {**current.get("notes", {}), **measured.get("notes", {})}
    # Write beside and rename, so a reader (or a crash) never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results.", suffix=".json")
    with os.fdopen(fd, "w") as out:
        json.dump(merged, out, indent=2, sort_keys=False)
        out.write("\n")
    os.replace(tmp, path)
    return merged


def table(results: dict[str, Any], keys: list[str], title: str = "syndication benchmarks") -> Table:
    """The measured keys, with their goal and verdict where they have one."""
    view = Table(title=title, show_lines=False)
    view.add_column("metric")
    view.add_column("value", justify="right")
    view.add_column("goal", justify="right")
    view.add_column("met", justify="center")
    verdicts = results.get("met", {})
    for key in keys:
        goal = GOALS.get(key.split(".")[0])
        goal_text = "" if goal is None else f"{'≤' if key in LOWER_IS_BETTER else '≥'} {goal:g}"
        verdict = verdicts.get(key)
        mark = "" if verdict is None else "[green]yes[/green]" if verdict else "[red]no[/red]"
        value = _value(results, key)
        view.add_row(key, "—" if value is None else f"{value:g}" if isinstance(value, float) else str(value),
                     goal_text, mark)
    return view


def _value(results: dict[str, Any], key: str) -> Any:
    """``results[key]``, or for ``posts_per_s.<kind>`` that kind's rate."""
    if key.startswith("posts_per_s."):
        return (results.get("posts_per_s_by_kind") or {}).get(key.removeprefix("posts_per_s."))
    return results.get(key)


def print_table(results: dict[str, Any], keys: list[str], console: Console | None = None,
                title: str = "syndication benchmarks") -> None:
    (console or Console()).print(table(results, keys, title))
