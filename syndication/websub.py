"""Telling WebSub hubs that feeds changed, through the hub ping outbox.

A render that changes a feed owes each hub in ``[site] hubs`` one ping for that feed's URL
(``store.hub_pings.owe_pings``, in the render's own transaction). ``deliver_pings`` sends what is due:
a 2xx closes the ping and writes ``pinged`` on the timeline of each article it carries; a
5xx, a 429, a timeout or a refused connection is tried again with back-off; any other
answer, or running out of attempts, makes it ``failed`` (``ping.failed`` on the timelines).
Nothing here blocks a render or a post: a render only writes rows.

>>> delivered = deliver_pings(store, clock=utcnow)
>>> delivered.sent, delivered.retrying
(3, 0)
"""
from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from syndication.store import Store
from syndication.store.hub_pings import HubPing, claim_due, forget_final, next_due, record_failure, record_sent
from syndication.store.timeline import add_steps

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

LEASE = timedelta(seconds=60)  # longer than one attempt can take (the timeout is far below)
KEEP_FINAL = timedelta(days=7)  # sent and failed pings stay this long, for status and metrics


@dataclass(frozen=True)
class Backoff:
    """How pings are retried: ``base_s * 2**(attempt-1)`` with ±20% jitter, at most ``cap_s``,
    for ``max_attempts`` attempts in all."""

    base_s: float = 2.0
    cap_s: float = 600.0
    max_attempts: int = 12
    timeout_s: float = 5.0

    def delay(self, attempts: int) -> timedelta:
        seconds = min(self.cap_s, self.base_s * 2 ** min(max(attempts - 1, 0), 20))
        return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


@dataclass(frozen=True)
class Delivered:
    """What one ``deliver_pings`` run did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0


class _Retry(Exception):
    """The hub may accept the same ping later (5xx, 429, timeout, connection refused)."""


class _Refused(Exception):
    """The hub will not accept this ping (any other non-2xx answer)."""


def backoff_from(settings: Any) -> Backoff:
    """The ``Backoff`` of these ``config.Settings`` (its ``hub_*`` fields)."""
    return Backoff(settings.hub_backoff_base_s, settings.hub_backoff_cap_s, settings.hub_max_attempts,
                   settings.hub_timeout_s)


def pings_due(store: Store, *, now: datetime) -> bool:
    """Whether any owed ping has fallen due (the sweeper then asks for ``deliver_pings``)."""
    with store.read() as session:
        due = next_due(session)
    return due is not None and due <= now


def publish_notification(hub: str, feed_url: str, *, timeout: float) -> int:
    """POST one WebSub publish notification; returns the hub's status code.

    Raises ``_Retry`` or ``_Refused``.
    """
    # Spec: WebSub (W3C Recommendation, 2018) §6 "Publishing" leaves the publisher→hub call
    # to the hub; the convention every public hub accepts is PubSubHubbub 0.4's form POST of
    # hub.mode=publish with hub.url = the topic (the feed's self URL). Some hubs (Flask-WebSub,
    # Switchboard) read hub.topic instead, as in subscription requests: both carry the same URL.
    form = [("hub.mode", "publish"), ("hub.url", feed_url), ("hub.topic", feed_url)]
    try:
        response = requests.post(hub, data=form, timeout=timeout, allow_redirects=False)
    except requests.Timeout as exc:
        raise _Retry("timeout") from exc
    except requests.RequestException as exc:
        raise _Retry(f"unreachable: {type(exc).__name__}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return status
    if status >= 500 or status == 429:
        raise _Retry(f"HTTP {status}")
    raise _Refused(f"HTTP {status}: {response.text[:200].strip()}")


def deliver_pings(store: Store, *, clock: Clock, backoff: Backoff = Backoff(),
                  limit: int = 50) -> Delivered:
    """Send every ping that is due (at most ``limit``); safe to run in several processes at once.

    >>> deliver_pings(store, clock=utcnow, backoff=Backoff(base_s=0.5))
    Delivered(sent=2, retrying=0, failed=0)
    """
    with store.transaction() as session:
        forget_final(session, before=clock() - KEEP_FINAL)
        due = claim_due(session, now=clock(), lease=LEASE, limit=limit)
    sent = retrying = failed = 0
    for ping in due:
        try:
            status = publish_notification(ping.hub, ping.feed_url, timeout=backoff.timeout_s)
        except _Retry as exc:
            final = _failed(store, ping, str(exc), clock=clock, backoff=backoff, retry=True)
            failed, retrying = failed + final, retrying + (not final)
        except _Refused as exc:
            failed += _failed(store, ping, str(exc), clock=clock, backoff=backoff, retry=False)
        else:
            sent += _sent(store, ping, status, clock=clock)
    return Delivered(sent, retrying, failed)


def _sent(store: Store, ping: HubPing, status: int, *, clock: Clock) -> bool:
    now = clock()
    with store.transaction() as session:
        closed = record_sent(session, ping, now=now)
        add_steps(session, [(a, "pinged", {"hub": ping.hub, "feed_url": ping.feed_url, "status": status})
                            for a in ping.article_ids], now=now)
    log.info("hub pinged", extra={"hub": ping.hub, "feed_url": ping.feed_url, "status": status,
                                  "articles": len(ping.article_ids), "again": not closed})
    return True


def _failed(store: Store, ping: HubPing, error: str, *, clock: Clock, backoff: Backoff, retry: bool) -> bool:
    """Record a failed attempt; True when the ping is now final (``failed``)."""
    now = clock()
    attempts = ping.attempts + 1
    retry_at = now + backoff.delay(attempts) if retry and attempts < backoff.max_attempts else None
    with store.transaction() as session:
        record_failure(session, ping, error, now=now, retry_at=retry_at)
        if retry_at is None:
            add_steps(session, [(a, "ping.failed", {"hub": ping.hub, "feed_url": ping.feed_url, "error": error,
                                                    "attempts": attempts}) for a in ping.article_ids], now=now)
    log.warning("hub ping failed", extra={"hub": ping.hub, "feed_url": ping.feed_url, "error": error,
                                          "attempts": attempts,
                                          "retry_at": retry_at.isoformat() if retry_at else None})
    return retry_at is None
