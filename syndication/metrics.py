"""Prometheus metrics, every name prefixed ``syndication_``; aggregate numbers only, never ids.

Two kinds:

* Observed in worker processes (publish→feed latency, task durations): histograms that
  reach the web process through prometheus_client's multiprocess mode. ``syndication run``
  gives every child ``PROMETHEUS_MULTIPROC_DIR=<data_dir>/metrics`` and wipes it at start.
* Read from the database at scrape time (queue depth, outbox lag, renders per feed,
  deliveries by channel and state, paused channels), by ``StoreCollector``, so they are
  right whichever process answers the scrape.

>>> body, content_type = render_metrics(store, site, queue_depths=broker.queue_depths,
...                                     metrics_dir=Path("var/metrics"))
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from config import SiteConfig
from syndication.feeds.catalog import parse_key
from syndication.publishing import Clock, utcnow
from syndication.status import collect_status
from syndication.store import Store
from syndication.store.deliveries import count_by_state
from syndication.store.timeline import last_step_id, steps_after, steps_of_articles

log = logging.getLogger(__name__)
QueueDepths = Callable[[], Mapping[str, int] | None]  # None: the broker did not answer

PUBLISH_TO_FEED = Histogram(
    "syndication_publish_to_feed_seconds",
    "Seconds from an article being stored to the first render of a feed that carries it.",
    ["feed_kind"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900))
TASK_DURATION = Histogram(
    "syndication_task_duration_seconds", "Seconds a Celery task ran, by task name and final state.",
    ["task", "state"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


def observe_task(task: str, seconds: float, state: str) -> None:
    """Record one task run (called from the Celery signal hooks in ``workers.telemetry``)."""
    TASK_DURATION.labels(task=task, state=state).observe(max(0.0, seconds))


def timeline_mark(store: Store) -> int:
    """The newest timeline row id; take it before a render and pass it to ``observe_render``."""
    with store.read() as session:
        return last_step_id(session)


def observe_render(store: Store, feed_key: str, *, after: int) -> int:
    """Observe publish→feed latency for the articles a render of ``feed_key`` carried first.

    The render wrote a ``rendered`` step (timeline id above ``after``) for each article it is
    the first to carry; the latency runs from that revision's ``stored`` step. Imports have no
    ``stored`` step and are not counted. Returns how many observations were made.
    """
    with store.read() as session:
        rendered = [(a, at, d) for a, at, d in steps_after(session, after, "rendered") if d.get("feed") == feed_key]
        if not rendered:
            return 0
        stored: dict[tuple[str, object], datetime] = {}
        for article_id, at, detail in steps_of_articles(session, {a for a, _, _ in rendered}, "stored"):
            if detail.get("status") in ("created", "updated"):
                stored.setdefault((article_id, detail.get("revision")), at)
    kind = parse_key(feed_key).kind
    observed = 0
    for article_id, at, detail in rendered:
        began = stored.get((article_id, (detail or {}).get("revision")))
        if began is not None:
            PUBLISH_TO_FEED.labels(feed_kind=kind).observe(max(0.0, (at - began).total_seconds()))
            observed += 1
    return observed


class StoreCollector(Collector):
    """Gauges and counters read from the database (and queue depths from the broker) per scrape."""

    def __init__(self, store: Store, site: SiteConfig, queue_depths: QueueDepths | None = None,
                 channels: Collection[str] | None = None, clock: Clock = utcnow) -> None:
        self.store, self.site, self.queue_depths, self.clock = store, site, queue_depths, clock
        self.channels = channels

    def _queues(self) -> Mapping[str, int] | None:
        if self.queue_depths is None:
            return None
        try:
            return self.queue_depths()
        except Exception as exc:  # noqa: BLE001 - any broker failure is reported as broker_up 0
            log.warning("queue depths unavailable for metrics", extra={"error": type(exc).__name__})
            return None

    def collect(self) -> Iterator[Metric]:
        queues = self._queues()
        now = self.clock()
        status = collect_status(self.store, self.site, queues=queues, workers=[], now=now,
                                channels=self.channels)
        up = GaugeMetricFamily("syndication_broker_up", "1 when the broker answered for queue depths.")
        up.add_metric([], 1.0 if queues is not None else 0.0)
        yield up
        depth = GaugeMetricFamily("syndication_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"])
        for queue, n in sorted((queues or {}).items()):
            depth.add_metric([queue], float(n))
        yield depth
        lag = GaugeMetricFamily("syndication_outbox_lag_seconds",
                                "Age of the oldest outbox event not yet processed (0 when none).")
        lag.add_metric([], status.outbox.lag(now).total_seconds())
        yield lag
        pending = GaugeMetricFamily("syndication_outbox_pending", "Outbox events not yet processed.")
        pending.add_metric([], float(status.outbox.pending))
        yield pending
        yield from self._feeds(status)
        yield from self._channels(status)
        yield from self._hubs(status)

    def _hubs(self, status) -> Iterator[Metric]:  # type: ignore[no-untyped-def]
        pings = GaugeMetricFamily("syndication_hub_pings", "WebSub pings on record by hub and state "
                                  "(pending: owed, sent, failed).", labels=["hub", "state"])
        failing = GaugeMetricFamily("syndication_hub_failing", "1 while a hub keeps failing an owed ping.",
                                    labels=["hub"])
        for hub in status.hubs:
            for state in ("pending", "sent", "failed"):
                pings.add_metric([hub.hub, state], float(getattr(hub, state)))
            failing.add_metric([hub.hub], 1.0 if hub.failing else 0.0)
        yield from (pings, failing)

    def _feeds(self, status) -> Iterator[Metric]:  # type: ignore[no-untyped-def]
        renders = CounterMetricFamily("syndication_feed_renders", "Renders of a feed since it was created.",
                                      labels=["feed"])
        items = GaugeMetricFamily("syndication_feed_items", "Items in a feed's last render.", labels=["feed"])
        stale = GaugeMetricFamily("syndication_feed_stale_seconds",
                                  "Seconds a feed's oldest unrendered change has waited (0 when fresh).",
                                  labels=["feed"])
        last = GaugeMetricFamily("syndication_feed_last_render_timestamp_seconds",
                                 "Unix time of a feed's last render.", labels=["feed"])
        for feed in status.feeds:
            renders.add_metric([feed.feed], float(feed.renders))
            items.add_metric([feed.feed], float(feed.items))
            stale.add_metric([feed.feed], feed.stale_for(status.now).total_seconds())
            if feed.rendered_at:
                last.add_metric([feed.feed], feed.rendered_at.timestamp())
        yield from (renders, items, stale, last)

    def _channels(self, status) -> Iterator[Metric]:  # type: ignore[no-untyped-def]
        with self.store.read() as session:
            counts = count_by_state(session)
        deliveries = GaugeMetricFamily("syndication_deliveries",
                                       "Ledger rows by channel and state (posted, failed, pending...).",
                                       labels=["channel", "state"])
        for (channel, state), n in sorted(counts.items()):
            deliveries.add_metric([channel, state], float(n))
        yield deliveries
        paused = GaugeMetricFamily("syndication_channel_paused", "1 while a channel is paused.", labels=["channel"])
        budget = GaugeMetricFamily("syndication_channel_budget_left",
                                   "Posts a channel may still make in its current window.", labels=["channel"])
        for channel in status.channels:
            paused.add_metric([channel.name], 1.0 if channel.state == "paused" else 0.0)
            budget.add_metric([channel.name], float(channel.budget_left))
        yield from (paused, budget)


def render_metrics(store: Store, site: SiteConfig, *, queue_depths: QueueDepths | None,
                   metrics_dir: Path | None, channels: Collection[str] | None = None,
                   clock: Clock = utcnow) -> tuple[bytes, str]:
    """The Prometheus text exposition: worker-observed histograms plus the store's numbers."""
    registry = CollectorRegistry()
    if metrics_dir is not None and metrics_dir.is_dir():
        MultiProcessCollector(registry, path=str(metrics_dir))
    else:  # one process does everything (tests, `syndication render`): its own histograms
        registry.register(PUBLISH_TO_FEED)
        registry.register(TASK_DURATION)
    registry.register(StoreCollector(store, site, queue_depths, channels, clock))
    return generate_latest(registry), CONTENT_TYPE_LATEST
