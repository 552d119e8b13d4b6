"""The one module that issues Redis commands of our own: render throttling and queue depths.

Redis is transport and scratch space. Losing it loses nothing durable: the database
knows which feeds are stale and which events are unprocessed, and the sweeper re-sends.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

PREFIX = "syndication:"
QUEUES = ("urgent", "feeds", "social", "control")


def client_for(url: str) -> redis.Redis:
    """A redis-py client for a Celery broker URL (``redis://`` or ``redis+socket://``).

    Short timeouts and two quick retries: a broker that is down must not hold up a publish
    (the outbox sweeper dispatches later), while a restarted one is reconnected at once.
    """
    options = {"socket_timeout": 5, "socket_connect_timeout": 1,
               "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), 2)}
    if url.startswith("redis+socket://"):
        return redis.Redis(unix_socket_path=url.removeprefix("redis+socket://").split("?")[0], **options)
    return redis.Redis.from_url(url, **options)


@dataclass
class BrokerState:
    """Throttle and bookkeeping state kept in Redis, shared by every process."""

    redis: redis.Redis
    pending_ttl_s: int = 300
    render_lock_s: float = 15.0  # SYNDICATION_RENDER_LOCK_S (``lock``)

    def _pending(self, key: str) -> str:
        return f"{PREFIX}render:pending:{key}"

    def _last(self, key: str) -> str:
        return f"{PREFIX}render:last:{key}"

    def claim_render(self, key: str, window_ms: int) -> float | None:
        """Leading-plus-trailing throttle. Returns the delay in seconds before the render should
        run (0 = now), or None if a render is already queued and will pick this change up."""
        return self.claim_renders([key], window_ms).get(key)

    def claim_renders(self, keys: list[str], window_ms: int) -> dict[str, float]:
        """``claim_render`` for many feeds in two round trips; only the feeds to render are returned."""
        if not keys:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.set(self._pending(key), b"1", nx=True, ex=self.pending_ttl_s)
        claimed = [key for key, ok in zip(keys, pipe.execute()) if ok]
        if not claimed:
            return {}
        lasts = self.redis.mget([self._last(key) for key in claimed])
        now_ms = time.time() * 1000
        return {key: 0.0 if last is None else max(0.0, (float(last) + window_ms - now_ms) / 1000)
                for key, last in zip(claimed, lasts)}

    def start_render(self, key: str) -> None:
        """Called as a render begins: later changes must queue another render."""
        pipe = self.redis.pipeline()
        pipe.delete(self._pending(key))
        pipe.set(self._last(key), str(time.time() * 1000), ex=3600)
        pipe.execute()

    def is_pending(self, key: str) -> bool:
        return bool(self.redis.exists(self._pending(key)))

    def clear_pending(self) -> int:
        """Forget every queued-render flag (their messages may be lost); the sweeper re-sends."""
        keys = list(self.redis.scan_iter(f"{PREFIX}render:pending:*", count=1000))
        return int(self.redis.delete(*keys)) if keys else 0

    def lock(self, key: str) -> redis.lock.Lock:
        """One render of a feed at a time, so an older snapshot never overwrites a newer one.

        A render takes milliseconds; the short expiry (``render_lock_s``) frees the lock of a
        worker killed mid-render, or of one whose release the broker never got, quickly, and
        waiters wait a little longer than that.
        """
        return self.redis.lock(f"{PREFIX}render:lock:{key}", timeout=self.render_lock_s,
                               blocking_timeout=self.render_lock_s + 5)

    def server_restarted(self) -> bool:
        """True once after redis-server restarted (its run_id changed): flags may name lost messages."""
        run_id = str(self.redis.info("server").get("run_id", ""))
        seen = self.redis.getset(f"{PREFIX}run_id", run_id)
        return seen is not None and seen.decode() != run_id

    def queue_depths(self) -> dict[str, int]:
        return {q: int(self.redis.llen(q)) for q in QUEUES}

    def ping(self) -> bool:
        return bool(self.redis.ping())
