"""The real dispatcher (``workers.dispatch.CeleryDispatcher``) on a real redis-server, up or down.

Unit tests about a broker that is down use these instead of a fake that raises: the dispatcher,
its redis-py client and Celery's producer meet a redis-server that was started and then stopped,
so the failure is the one production sees (a refused connection), with the real breaker.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from config import Settings
from workers.app import create_app
from workers.broker import BrokerState, client_for
from workers.dispatch import CeleryDispatcher
from workers.embedded_redis import EmbeddedRedis


def celery_dispatcher(url: str, *, window_ms: int = 0) -> CeleryDispatcher:
    """The dispatcher the API and the workers build, for the broker at ``url``."""
    return CeleryDispatcher(create_app(Settings(broker_url=url)), BrokerState(client_for(url)), window_ms=window_ms)


@contextmanager
def running_broker(folder: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server under ``folder``, stopped afterwards."""
    server = EmbeddedRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def stopped_broker(folder: Path) -> EmbeddedRedis:
    """A redis-server that ran under ``folder`` and was stopped: its URL refuses connections.
    ``start()`` brings it back on the same URL (the broker is back)."""
    server = EmbeddedRedis(folder)
    server.start()
    server.stop()
    return server


@lru_cache(maxsize=1)
def offline_dispatcher() -> CeleryDispatcher:
    """The real dispatcher for a broker that is down (a redis-server started once, then stopped):
    for web tests that dispatch nothing, or where a refused hand-over is what happens."""
    folder = Path(tempfile.mkdtemp(prefix="syndication-offline-broker-"))
    return celery_dispatcher(stopped_broker(folder).url)
