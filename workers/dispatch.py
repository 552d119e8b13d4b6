"""The Celery implementation of ``syndication.publishing.Dispatcher``."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from celery import Celery

from syndication.store.outbox import REDISPATCH_AFTER, Event
from workers.app import TASK_NAMES
from workers.broker import BrokerState

log = logging.getLogger(__name__)
EVENTS_PER_MESSAGE = 100


class BrokerUnavailable(ConnectionError):
    """Raised without trying while the broker is known to be down (the breaker is open)."""


class CeleryDispatcher:
    """Throttles renders through Redis and queues tasks by their stable names.

    A circuit breaker keeps the publish API fast while Redis is down: after one failure,
    dispatching fails at once for ``cooldown_s``, and the outbox sweeper catches up later.
    """

    def __init__(self, app: Celery, broker: BrokerState, *, window_ms: int, cooldown_s: float = 2.0,
                 redispatch_after: timedelta = REDISPATCH_AFTER) -> None:
        self.app = app
        self.broker = broker
        self.window_ms = window_ms
        self.redispatch_after = redispatch_after  # SYNDICATION_REDISPATCH_AFTER_S
        self.cooldown_s = cooldown_s
        self._open_until = 0.0

    @contextmanager
    def _breaker(self) -> Iterator[None]:
        if time.monotonic() < self._open_until:
            raise BrokerUnavailable("broker marked down; the sweeper will dispatch")
        try:
            yield
        except Exception:
            self._open_until = time.monotonic() + self.cooldown_s
            raise

    def request_renders(self, feed_keys: Iterable[str]) -> None:
        with self._breaker():
            self._request_renders(feed_keys)

    def _request_renders(self, feed_keys: Iterable[str]) -> None:
        # Feeds with a render already queued are left out: that render picks this change up.
        claimed = self.broker.claim_renders(list(feed_keys), self.window_ms)
        if not claimed:
            return
        with self.app.producer_or_acquire() as producer:
            # The site-wide feed first, on its own queue: it is what most readers poll.
            for key in sorted(claimed, key=lambda k: k != "all"):
                self.app.send_task(TASK_NAMES["render_feed"], args=[key], producer=producer,
                                   queue="urgent" if key == "all" else "feeds", countdown=claimed[key] or None)

    def send_events(self, events: Sequence[Event]) -> None:
        ids = [event.id for event in events]
        with self._breaker(), self.app.producer_or_acquire() as producer:
            # One message per hundred events: a batch publish is a few messages, not thousands.
            for start in range(0, len(ids), EVENTS_PER_MESSAGE):
                self.app.send_task(TASK_NAMES["process_events"], args=[ids[start:start + EVENTS_PER_MESSAGE]],
                                   queue="social", producer=producer)

    def send_deliveries(self, delivery_ids: Sequence[int]) -> None:
        with self._breaker(), self.app.producer_or_acquire() as producer:
            for delivery_id in delivery_ids:
                self.app.send_task(TASK_NAMES["deliver"], args=[delivery_id], queue="social", producer=producer)

    def schedule_release(self, at: datetime) -> None:
        # A short ETA only (the caller arms releases due within seconds): the database holds the
        # time, this is the alarm. An ETA beyond the visibility timeout would run twice.
        with self._breaker():
            self.app.send_task(TASK_NAMES["release"], args=[at.isoformat()], queue="urgent", eta=at)

    def ping(self) -> bool:
        """Readiness: can we reach the broker?"""
        return self.broker.ping()
