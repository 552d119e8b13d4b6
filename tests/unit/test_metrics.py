"""Prometheus sees how the pipeline does: latency from publish to feed, task durations, queues,
outbox lag, feeds, posts by outcome and paused channels — numbers only, never an id — and
every alert rule watches a series that really exists."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from config import SiteConfig
from syndication.metrics import observe_render, observe_task, render_metrics, timeline_mark
from syndication.publishing import parse_batch, publish
from syndication.rendering import render_feed
from syndication.store import Store
from syndication.store.deliveries import claim, ensure_delivery, mark_failed, pause_channel
from apps.web.app import create_app
from apps.web.context import WebContext
from tests.conftest import FixedClock, article_json
from tests.support.brokers import celery_dispatcher, running_broker
from workers.dispatch import CeleryDispatcher

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "config" / "alerts.yml"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryDispatcher]:
    """The real dispatcher on a running redis-server, with two section renders queued."""
    with running_broker(tmp_path_factory.mktemp("broker")) as server:
        dispatcher = celery_dispatcher(server.url)
        dispatcher.request_renders(["section/politics", "section/sport"])
        yield dispatcher


def latency(kind: str, what: str) -> float:
    return REGISTRY.get_sample_value(f"syndication_publish_to_feed_seconds_{what}", {"feed_kind": kind}) or 0.0


def store_articles(store: Store, site: SiteConfig, clock: FixedClock, *ids: str, origin: str = "api") -> None:
    articles, refused = parse_batch([article_json(i) for i in ids], site=site)
    assert not refused
    publish(store, site, articles, origin=origin, clock=clock)


def test_publish_to_feed_latency_is_observed_for_the_render_that_first_carries_an_article(
        store: Store, site: SiteConfig, clock: FixedClock, tmp_path: Path) -> None:
    # Given two articles stored, and a backfill import that is never "published"
    store_articles(store, site, clock, "1", "2")
    store_articles(store, site, clock, "bf", origin="import")
    count, total = latency("all", "count"), latency("all", "sum")
    # When the "all" feed is rendered 3 seconds later
    clock.now += timedelta(seconds=3)
    mark = timeline_mark(store)
    render_feed(store, site, tmp_path, "all", clock=clock)
    # Then two latencies of 3 s are observed (the import has no publish time)
    assert observe_render(store, "all", after=mark) == 2
    assert latency("all", "count") == count + 2
    assert abs(latency("all", "sum") - total - 6.0) < 1e-6
    # And a later render that carries nothing new observes nothing
    clock.now += timedelta(seconds=5)
    mark = timeline_mark(store)
    render_feed(store, site, tmp_path, "all", clock=clock)
    assert observe_render(store, "all", after=mark) == 0


def test_task_durations_are_observed_by_task_and_state() -> None:
    labels = {"task": "syndication.deliver", "state": "SUCCESS"}
    before = REGISTRY.get_sample_value("syndication_task_duration_seconds_count", labels) or 0.0
    observe_task("syndication.deliver", 0.25, "SUCCESS")
    assert REGISTRY.get_sample_value("syndication_task_duration_seconds_count", labels) == before + 1


def test_observations_in_worker_processes_reach_the_scrape(store: Store, site: SiteConfig,
                                                           tmp_path: Path) -> None:
    # Given a worker process that ran a render task, with the multiprocess folder set
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", "from syndication.metrics import observe_task; "
                    "observe_task('syndication.render_feed', 0.2, 'SUCCESS')"], env=env, check=True, cwd=ROOT)
    # When the web process renders /metrics from that folder
    body, content_type = render_metrics(store, site, queue_depths=None, metrics_dir=folder)
    # Then the worker's observation is there
    assert content_type.startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    key = ("syndication_task_duration_seconds_count", (("state", "SUCCESS"), ("task", "syndication.render_feed")))
    assert samples[key] == 1.0


def busy_store(store: Store, site: SiteConfig, clock: FixedClock, tmp_path: Path) -> None:
    """A store with a rendered feed, a failed delivery and a paused channel."""
    store_articles(store, site, clock, "1")
    render_feed(store, site, tmp_path / "feeds", "all", clock=clock)
    with store.transaction() as session:
        d, _ = ensure_delivery(session, article_id="art-1", revision=1, channel="preview", action="post",
                               text="t", now=clock())
        claim(session, d.id, now=clock(), lease=timedelta(seconds=30))
        mark_failed(session, d.id, error="HTTP 503", now=clock())
        pause_channel(session, "preview", until=clock() + timedelta(hours=1), reason="maintenance", now=clock())


def scrape(store: Store, site: SiteConfig, clock: FixedClock, broker: CeleryDispatcher) -> str:
    ctx = WebContext(site=site, store=store, dispatcher=broker, feeds_dir=Path("unused"), clock=clock,
                     ops_tokens=["ops-token-for-tests"], queue_depths=broker.broker.queue_depths)
    with TestClient(create_app(ctx)) as http:
        response = http.get("/metrics")  # no token: Prometheus scrapes without one
    assert response.status_code == 200
    return response.text


def test_metrics_are_aggregates_without_ids(store: Store, site: SiteConfig, clock: FixedClock, tmp_path: Path,
                                            broker: CeleryDispatcher) -> None:
    # Given a store with a rendered feed, a failed delivery and a paused channel, and two renders queued
    busy_store(store, site, clock, tmp_path)
    # When Prometheus scrapes /metrics
    text = scrape(store, site, clock, broker)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    # Then the numbers are there
    assert samples[("syndication_queue_depth", (("queue", "feeds"),))] == 2
    assert samples[("syndication_broker_up", ())] == 1
    assert samples[("syndication_feed_renders_total", (("feed", "all"),))] == 1
    assert samples[("syndication_feed_items", (("feed", "all"),))] == 1
    assert samples[("syndication_deliveries", (("channel", "preview"), ("state", "failed")))] == 1
    assert samples[("syndication_channel_paused", (("channel", "preview"),))] == 1
    assert ("syndication_outbox_lag_seconds", ()) in samples
    # And every series is ours, and no article id appears
    assert all(name.startswith("syndication_") for name, _ in samples)
    assert "art-1" not in text


# -- the alert rules --------------------------------------------------------------------------

def load_yaml(text: str) -> Any:
    """PyYAML when installed; otherwise ``_BlockYaml`` (PyYAML is not a dependency of the project)."""
    try:
        import yaml  # noqa: PLC0415 - optional
    except ImportError:
        return _BlockYaml(text).parse()
    return yaml.safe_load(text)


class _BlockYaml:
    """Block mappings and sequences (of mappings too) with plain or quoted scalars; anything else raises."""

    def __init__(self, text: str) -> None:
        self.lines = []
        for raw in text.splitlines():
            line = re.sub(r"""^((?:[^#'"]|'[^']*'|"[^"]*")*?)\s*#.*$""", r"\1", raw).rstrip()
            if line.strip():
                self.lines.append([len(line) - len(line.lstrip()), line.strip()])
        self.pos = 0

    def parse(self) -> Any:
        value = self._block(self.lines[0][0])
        if self.pos != len(self.lines):
            raise ValueError(f"unexpected indentation at {self.lines[self.pos][1]!r}")
        return value

    def _block(self, indent: int) -> Any:
        return self._sequence(indent) if self.lines[self.pos][1].startswith("- ") else self._mapping(indent)

    def _sequence(self, indent: int) -> list[Any]:
        items = []
        while self.pos < len(self.lines) and self.lines[self.pos][0] == indent and self.lines[self.pos][1].startswith("- "):
            item = self.lines[self.pos][1][2:].strip()
            if re.match(r"^[\w.-]+:( |$)", item):  # "- key: value" opens a mapping two columns in
                self.lines[self.pos] = [indent + 2, item]
                items.append(self._mapping(indent + 2))
            else:
                self.pos += 1
                items.append(self._scalar(item))
        return items

    def _mapping(self, indent: int) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        while self.pos < len(self.lines) and self.lines[self.pos][0] == indent and not self.lines[self.pos][1].startswith("- "):
            key, sep, rest = self.lines[self.pos][1].partition(":")
            if not sep or (rest and not rest.startswith(" ")) or key in mapping:
                raise ValueError(f"expected a new `key: value`, got {self.lines[self.pos][1]!r}")
            self.pos += 1
            if rest.strip():
                mapping[key] = self._scalar(rest.strip())
            elif self.pos < len(self.lines) and self.lines[self.pos][0] >= indent and (
                    self.lines[self.pos][0] > indent or self.lines[self.pos][1].startswith("- ")):
                mapping[key] = self._block(self.lines[self.pos][0])
            else:
                mapping[key] = None
        return mapping

    @staticmethod
    def _scalar(text: str) -> Any:
        if len(text) >= 2 and text[0] == text[-1] == "'":
            return text[1:-1].replace("''", "'")
        if len(text) >= 2 and text[0] == text[-1] == '"' and "\\" not in text:
            return text[1:-1]
        if text[0] in "|>{[&*!'\"%@`":
            raise ValueError(f"{text!r} is outside the subset this reader knows")
        return int(text) if re.fullmatch(r"-?\d+", text) else text


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset"}


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: identifiers that are not functions, keywords or labels."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)  # label matchers and range selectors
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)  # grouping labels
    return {m.group(1) for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare)
            if m.group(1) not in PROMQL_WORDS}


def test_every_alert_rule_watches_a_series_that_metrics_exposes(store: Store, site: SiteConfig,
                                                                clock: FixedClock, tmp_path: Path,
                                                                broker: CeleryDispatcher) -> None:
    # Given the alert rules, and a scrape of a busy test app
    rules = [rule for group in load_yaml(ALERTS.read_text())["groups"] for rule in group["rules"]]
    busy_store(store, site, clock, tmp_path)
    exposed = {s.name for family in text_string_to_metric_families(scrape(store, site, clock, broker)) for s in family.samples}
    # Then there are rules for a stale feed, outbox lag, a paused channel and growing failures
    watched = {name for rule in rules for name in metric_names(rule["expr"])}
    assert {"syndication_feed_stale_seconds", "syndication_outbox_lag_seconds", "syndication_channel_paused",
            "syndication_deliveries"} <= watched
    # And each rule is complete and names only series that /metrics has
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule
        assert metric_names(rule["expr"]), rule["expr"]
        assert metric_names(rule["expr"]) <= exposed, (rule["alert"], metric_names(rule["expr"]) - exposed)


def test_the_fallback_yaml_reader_refuses_what_it_does_not_know() -> None:
    assert _BlockYaml("a:\n  - b: 1\n    c: 'x # y'\n  - 2\n").parse() == {"a": [{"b": 1, "c": "x # y"}, 2]}
    for text in ("a: |\n  x\n", "a: {b: 1}\n", "a: &x 1\n"):
        try:
            _BlockYaml(text).parse()
        except ValueError:
            continue
        raise AssertionError(f"accepted {text!r}")
