"""The broker's view for ``syndication status``, ``/ops`` and ``/metrics``: queue depths, workers.

Both are best effort: a broker that is down gives ``None``, which the status reports as a
problem instead of failing.
"""
from __future__ import annotations

import logging

import kombu.exceptions
import redis
from celery import Celery

from workers.broker import BrokerState

log = logging.getLogger(__name__)
BROKER_ERRORS = (OSError, redis.RedisError, kombu.exceptions.OperationalError)


def queue_depths(broker_state: BrokerState) -> dict[str, int] | None:
    """Messages waiting per queue, or None when Redis cannot be reached."""
    try:
        return broker_state.queue_depths()
    except BROKER_ERRORS as exc:
        log.warning("broker unreachable for queue depths", extra={"error": type(exc).__name__})
        return None


def online_workers(app: Celery, *, timeout: float = 1.0) -> list[str] | None:
    """Names of the workers that answer a ping within ``timeout``, or None if none could be asked."""
    try:
        replies = app.control.inspect(timeout=timeout).ping() or {}
    except BROKER_ERRORS as exc:
        log.warning("broker unreachable for a worker ping", extra={"error": type(exc).__name__})
        return None
    return sorted(replies)


def broker_snapshot(app: Celery, broker_state: BrokerState, *, timeout: float = 1.0
                    ) -> tuple[dict[str, int] | None, list[str] | None]:
    """(queue depths, workers online); either is None when the broker could not be asked.

    >>> queues, workers = broker_snapshot(create_app(settings), BrokerState(client_for(url)))
    """
    queues = queue_depths(broker_state)
    if queues is None:
        return None, None  # a ping through a dead broker would only wait out its retries
    return queues, online_workers(app, timeout=timeout)
