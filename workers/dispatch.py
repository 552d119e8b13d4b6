"""The Celery implementation of ``syndication.publishing.Dispatcher``."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from celery import Celery

from syndication.store.outbox import Event
from workers.app import TASK_NAMES
from workers.broker import BrokerState

log = logging.getLogger(__name__)


class CeleryDispatcher:
    """Throttles renders through Redis and queues tasks by their stable names."""

    def __init__(self, app: Celery, broker: BrokerState, *, window_ms: int) -> None:
        self.app = app
        self.broker = broker
        self.window_ms = window_ms

    def request_renders(self, feed_keys: Iterable[str]) -> None:
        for key in feed_keys:
            delay = self.broker.claim_render(key, self.window_ms)
            if delay is None:
                continue  # a queued render will pick this change up
            self.app.send_task(TASK_NAMES["render_feed"], args=[key], queue="feeds",
                               countdown=delay or None)

    def send_events(self, events: Sequence[Event]) -> None:
        for event in events:
            self.app.send_task(TASK_NAMES["process_event"], args=[event.id], queue="social")

    def send_deliveries(self, delivery_ids: Sequence[int]) -> None:
        for delivery_id in delivery_ids:
            self.app.send_task(TASK_NAMES["deliver"], args=[delivery_id], queue="social")

    def ping(self) -> bool:
        """Readiness: can we reach the broker?"""
        return self.broker.ping()
