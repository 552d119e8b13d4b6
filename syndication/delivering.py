"""Running one delivery from the ledger, exactly once.

The claim is committed before the API is called and the remote id right after. A claim
whose lease expired, or any earlier attempt, has an unknown outcome: the account's recent
posts are searched for the article's URL first, and a post found there is adopted.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from config import SiteConfig
from syndication.channels.registry import Channels
from syndication.errors import AlreadyPosted, PermanentChannelError, RateLimited, TransientChannelError
from syndication.publishing import Clock, utcnow
from syndication.store import Store
from syndication.store.articles import get_article
from syndication.store.deliveries import (
    FINAL,
    PERMANENT_PAUSE,
    Delivery,
    add_list_member,
    claim,
    claim_owners,
    deliveries_of,
    expire_leases,
    get_delivery,
    get_pause,
    is_list_member,
    mark_failed,
    mark_posted,
    mark_retry,
    pause_channel,
    budget_frees_at,
    set_state,
)
from syndication.store.timeline import add_step

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=45)  # above one attempt: at most three API calls, each with a 10 s timeout
MAX_BACKOFF_S = 300.0


@dataclass(frozen=True)
class Attempt:
    """What running a delivery did: its state afterwards, and when to try again (if pending)."""

    delivery_id: int
    state: str
    retry_at: datetime | None = None


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """Exponential back-off with full jitter: 1 s, 2 s, 4 s... capped at five minutes."""
    return timedelta(seconds=min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1)) * (0.5 + rng()))


def _defer(store: Store, d: Delivery, at: datetime, why: str, now: datetime) -> Attempt:
    with store.transaction() as session:
        if claim(session, d.id, now=now, lease=LEASE):
            # Not an attempt: give the count back.
            mark_retry(session, d.id, at=at, error=why, now=now, refund=True)
    return Attempt(d.id, "pending", at)


def run_delivery(store: Store, site: SiteConfig, channels: Channels, delivery_id: int, *,
                 clock: Clock = utcnow, rng: Callable[[], float] = random.random, owner: str = "") -> Attempt:
    """Make one attempt at a delivery. Safe to call twice at once or after a crash.

    ``owner`` (``host:pid``) is recorded with the claim, so that a sweeper on the same host
    can tell a claim whose process died (``release_dead_claims``) without waiting out the lease.
    """
    now = clock()
    with store.read() as session:
        d = get_delivery(session, delivery_id)
        pause = get_pause(session, d.channel) if d else None
        stored = get_article(session, d.article_id) if d else None
        budget_wait = None
        if d is not None and d.action in ("post", "correct") and d.state not in FINAL:
            config = site.channel(d.channel)
            budget_wait = budget_frees_at(session, d.channel, budget=config.posts_per_window,
                                          window=timedelta(seconds=config.window_s), now=now)
    if d is None or stored is None or d.state in FINAL:
        return Attempt(delivery_id, d.state if d else "missing")
    if d.state == "claimed" and d.lease_until and d.lease_until > now:
        return Attempt(d.id, "claimed")  # another worker holds it
    if pause and pause.active(now):
        return _defer(store, d, pause.paused_until, f"channel paused: {pause.reason}", now)  # type: ignore[arg-type]
    if budget_wait is not None:
        return _defer(store, d, budget_wait, "posting budget spent for this window", now)
    channel = channels.active.get(d.channel)
    unknown_outcome = d.state == "claimed" or d.attempts > 0
    with store.transaction() as session:
        if not claim(session, d.id, now=now, lease=LEASE, owner=owner):
            return Attempt(d.id, "claimed")
        if channel is None:
            mark_failed(session, d.id, error=f"channel {d.channel!r} is not configured", now=now)
            return Attempt(d.id, "failed")
        add_step(session, d.article_id, "delivery.attempt", now=now, channel=d.channel, action=d.action,
                 delivery_id=d.id, attempt=d.attempts + 1)
    url = stored.article.url
    try:
        if d.action == "delete":
            _delete_posts(store, d, channel, clock)
            result_id, result_url, note = None, None, "deleted"
        else:
            found = channel.find_post(url) if unknown_outcome else None
            if found is not None:
                result_id, result_url, note = found.remote_id, found.remote_url, "adopted an earlier post"
            else:
                try:
                    posted = channel.post(d.text or url, url=url)
                    result_id, result_url, note = posted.remote_id, posted.remote_url, "posted"
                except AlreadyPosted:
                    found = channel.find_post(url)
                    result_id = found.remote_id if found else None
                    result_url = found.remote_url if found else None
                    note = "the service already had this post"
    except RateLimited as exc:
        with store.transaction() as session:
            pause_channel(session, d.channel, until=exc.retry_at, reason="rate limited (HTTP 429)", now=clock())
            mark_retry(session, d.id, at=exc.retry_at, error=str(exc), now=clock(), refund=True)
            add_step(session, d.article_id, "delivery.rate_limited", now=clock(), channel=d.channel,
                     delivery_id=d.id, retry_at=exc.retry_at.isoformat())
        log.warning("channel rate limited", extra={"channel": d.channel, "delivery_id": d.id,
                                                   "retry_at": exc.retry_at.isoformat()})
        return Attempt(d.id, "pending", exc.retry_at)
    except TransientChannelError as exc:
        attempts = d.attempts + 1
        with store.transaction() as session:
            if attempts >= site.channel(d.channel).max_attempts:
                mark_failed(session, d.id, error=str(exc), now=clock())
                add_step(session, d.article_id, "delivery.failed", now=clock(), channel=d.channel,
                         delivery_id=d.id, attempt=attempts, error=str(exc))
                log.error("delivery failed", extra={"channel": d.channel, "delivery_id": d.id, "error": str(exc)})
                return Attempt(d.id, "failed")
            at = clock() + backoff(attempts, rng)
            mark_retry(session, d.id, at=at, error=str(exc), now=clock())
            add_step(session, d.article_id, "delivery.retry", now=clock(), channel=d.channel, delivery_id=d.id,
                     attempt=attempts, error=str(exc), retry_at=at.isoformat())
        log.warning("delivery retry scheduled", extra={"channel": d.channel, "delivery_id": d.id,
                                                       "attempt": attempts, "retry_at": at.isoformat()})
        return Attempt(d.id, "pending", at)
    except PermanentChannelError as exc:
        with store.transaction() as session:
            mark_failed(session, d.id, error=str(exc), now=clock())
            pause_channel(session, d.channel, until=clock() + PERMANENT_PAUSE, reason=str(exc), now=clock())
            add_step(session, d.article_id, "delivery.failed", now=clock(), channel=d.channel,
                     delivery_id=d.id, error=str(exc), channel_paused=True)
        log.error("channel paused after a permanent error", extra={"channel": d.channel, "delivery_id": d.id,
                                                                   "error": str(exc)})
        return Attempt(d.id, "failed")
    with store.transaction() as session:
        mark_posted(session, d.id, remote_id=result_id, remote_url=result_url, now=clock())
        add_step(session, d.article_id, f"delivery.{'deleted' if d.action == 'delete' else 'posted'}",
                 now=clock(), channel=d.channel, delivery_id=d.id, remote_id=result_id, remote_url=result_url,
                 note=note)
    log.info("delivery done", extra={"channel": d.channel, "delivery_id": d.id, "action": d.action,
                                     "remote_id": result_id, "note": note})
    if d.action != "delete":
        _grow_staff_list(store, channels, d, stored.article.authors, site, clock)
    return Attempt(d.id, "posted")


def release_dead_claims(store: Store, *, host: str, alive: Callable[[int], bool], clock: Clock = utcnow) -> int:
    """End the leases of claims held by processes on ``host`` that no longer exist.

    Their outcome is unknown, so the next attempt reconciles first. Returns how many.
    """
    now = clock()
    with store.read() as session:
        owners = claim_owners(session, prefix=f"{host}:", now=now)
    dead = [i for i, owner in owners.items() if owner.rsplit(":", 1)[-1].isdigit()
            and not alive(int(owner.rsplit(":", 1)[-1]))]
    if dead:
        with store.transaction() as session:
            expire_leases(session, dead, now=now)
        log.warning("claims of dead processes released", extra={"deliveries": dead, "host": host})
    return len(dead)


def _delete_posts(store: Store, d: Delivery, channel, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    with store.read() as session:
        siblings = [s for s in deliveries_of(session, d.article_id) if s.channel == d.channel]
    if any(s.action in ("post", "correct") and s.state == "claimed" for s in siblings):
        # A post is in flight: its outcome decides what there is to delete.
        raise TransientChannelError("a post of this article is still in flight")
    for s in siblings:
        if s.action in ("post", "correct") and s.state == "posted" and s.remote_id:
            channel.delete(s.remote_id)
            with store.transaction() as session:
                set_state(session, s.id, "deleted", now=clock())


def _grow_staff_list(store: Store, channels: Channels, d: Delivery, authors, site: SiteConfig,  # type: ignore[no-untyped-def]
                     clock: Clock) -> None:
    """Make each mentioned staff author a member of the channel's staff list, once."""
    list_id = channels.staff_lists.get(d.channel)
    channel = channels.active.get(d.channel)
    if not list_id or channel is None:
        return
    staff = {name.casefold(): member for name, member in site.staff.items()}
    for author in authors:
        member = staff.get(author.name.casefold())
        handle = author.x or (member.x if member else None)
        if not handle or member is None:
            continue
        with store.read() as session:
            if is_list_member(session, d.channel, list_id, handle):
                continue
        try:
            channel.add_list_member(handle)
        except (TransientChannelError, PermanentChannelError) as exc:
            log.warning("staff list update failed", extra={"channel": d.channel, "handle": handle,
                                                           "error": str(exc)})
            continue
        with store.transaction() as session:
            add_list_member(session, d.channel, list_id, handle, now=clock())
            add_step(session, d.article_id, "staff_list.added", now=clock(), channel=d.channel, handle=handle)
