"""The hub ping outbox: WebSub notifications owed, written in the transaction of the render.

States: ``pending`` (with ``next_attempt_at``, and a lease while an attempt runs) → ``sent`` |
``failed`` (the hub refused, or kept failing until the attempts ran out).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from syndication.store.conflicts import insert_missing
from syndication.store.schema import HubPingRow

# A ping names the articles it carries for their timelines; an import of thousands names the first.
MAX_ARTICLES_PER_PING = 500


@dataclass(frozen=True)
class HubPing:
    id: int
    hub: str
    feed_url: str
    article_ids: list[str]
    state: str
    version: int
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class HubHealth:
    """One hub as an operator sees it: pings owed and failed, and the newest failure."""

    hub: str
    pending: int
    sent: int
    failed: int
    most_attempts: int  # of a ping still owed: how long the hub has been failing
    last_error: str | None


def _ping(row: HubPingRow) -> HubPing:
    return HubPing(row.id, row.hub, row.feed_url, list(row.article_ids or []), row.state, row.version,
                   row.attempts, row.next_attempt_at, row.last_error, row.updated_at)


def _pending_key(hub: str, feed_url: str) -> str:
    return hashlib.sha256(f"{hub}\n{feed_url}".encode()).hexdigest()


def owe_pings(session: Session, hubs: Sequence[str], feed_urls: Sequence[str], article_ids: Sequence[str], *,
              now: datetime) -> int:
    """Owe each hub a ping for each feed URL, joining a ping already owed for the same pair.

    Returns how many pings are owed for these pairs (new or joined).
    """
    pairs = {_pending_key(h, u): (h, u) for h in hubs for u in feed_urls}
    if not pairs:
        return 0
    insert_missing(session, HubPingRow, [
        {"hub": h, "feed_url": u, "pending_key": key, "article_ids": [], "state": "pending", "version": 0,
         "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now}
        for key, (h, u) in pairs.items()], key=["pending_key"])
    rows = session.scalars(select(HubPingRow).where(HubPingRow.pending_key.in_(sorted(pairs)))
                           .order_by(HubPingRow.id).with_for_update().execution_options(populate_existing=True))
    joined = 0
    for row in rows:
        carried = list(dict.fromkeys([*(row.article_ids or []), *article_ids]))[:MAX_ARTICLES_PER_PING]
        row.article_ids = carried
        row.version += 1
        row.updated_at = now
        if row.next_attempt_at is None or row.next_attempt_at > now and row.attempts == 0:
            row.next_attempt_at = now
        joined += 1
    session.flush()
    return joined


def claim_due(session: Session, *, now: datetime, lease: timedelta, limit: int = 50) -> list[HubPing]:
    """Take the pings that are due and not leased by another attempt; each is leased until ``now + lease``."""
    candidates = list(session.scalars(
        select(HubPingRow.id).where(HubPingRow.state == "pending", HubPingRow.next_attempt_at <= now,
                                    or_(HubPingRow.lease_until.is_(None), HubPingRow.lease_until < now))
        .order_by(HubPingRow.next_attempt_at, HubPingRow.id).limit(limit)))
    claimed = []
    for ping_id in candidates:
        # A conditional UPDATE: of two processes claiming at once, one gets the row.
        result = session.execute(update(HubPingRow).where(
            HubPingRow.id == ping_id, HubPingRow.state == "pending",
            or_(HubPingRow.lease_until.is_(None), HubPingRow.lease_until < now))
            .values(lease_until=now + lease).execution_options(synchronize_session=False))
        if result.rowcount:
            claimed.append(ping_id)
    if not claimed:
        return []
    rows = session.scalars(select(HubPingRow).where(HubPingRow.id.in_(claimed)).order_by(HubPingRow.id)
                           .execution_options(populate_existing=True))
    return [_ping(r) for r in rows]


def record_sent(session: Session, ping: HubPing, *, now: datetime) -> bool:
    """Close a ping the hub accepted. False if a render joined it during the attempt: it stays
    owed (due now), since the hub may have fetched the feed before that render wrote it."""
    row = session.get(HubPingRow, ping.id, with_for_update=True, populate_existing=True)
    if row is None:
        return False
    row.lease_until = None
    row.updated_at = now
    row.last_error = None
    if row.version != ping.version:
        row.next_attempt_at = now
        row.attempts = 0
        return False
    row.state, row.pending_key, row.sent_at = "sent", None, now
    row.attempts += 1
    return True


def record_failure(session: Session, ping: HubPing, error: str, *, now: datetime,
                   retry_at: datetime | None) -> HubPing | None:
    """Note a failed attempt: due again at ``retry_at``, or final (``failed``) when it is None."""
    row = session.get(HubPingRow, ping.id, with_for_update=True, populate_existing=True)
    if row is None:
        return None
    row.attempts += 1
    row.last_error = error[:500]
    row.lease_until = None
    row.updated_at = now
    if retry_at is None:
        row.state, row.pending_key, row.next_attempt_at = "failed", None, None
    else:
        row.next_attempt_at = retry_at
    session.flush()
    return _ping(row)


def next_due(session: Session) -> datetime | None:
    """When the earliest owed ping falls due (None when none is owed)."""
    return session.scalar(select(func.min(HubPingRow.next_attempt_at)).where(HubPingRow.state == "pending"))


def hub_health(session: Session, hubs: Sequence[str]) -> list[HubHealth]:
    """Every configured hub (and any other with pings on record), with its counts by state."""
    counts: dict[str, dict[str, int]] = {h: {} for h in hubs}
    for hub, state, n in session.execute(select(HubPingRow.hub, HubPingRow.state, func.count())
                                         .group_by(HubPingRow.hub, HubPingRow.state)):
        counts.setdefault(hub, {})[state] = int(n)
    worst = dict(session.execute(select(HubPingRow.hub, func.max(HubPingRow.attempts))
                                 .where(HubPingRow.state == "pending").group_by(HubPingRow.hub)).all())
    health = []
    for hub in sorted(counts):
        last_error = session.scalar(select(HubPingRow.last_error).where(
            HubPingRow.hub == hub, HubPingRow.last_error.is_not(None)).order_by(HubPingRow.updated_at.desc()).limit(1))
        by_state = counts[hub]
        health.append(HubHealth(hub, by_state.get("pending", 0), by_state.get("sent", 0), by_state.get("failed", 0),
                                int(worst.get(hub) or 0), last_error))
    return health


def pings_of(session: Session, *, hub: str | None = None) -> list[HubPing]:
    """Every ping on record (of one hub), oldest first."""
    query = select(HubPingRow).order_by(HubPingRow.id)
    if hub is not None:
        query = query.where(HubPingRow.hub == hub)
    return [_ping(r) for r in session.scalars(query)]


def forget_final(session: Session, *, before: datetime) -> int:
    """Delete the pings that were final (sent or failed) before ``before``; returns how many."""
    result = session.execute(delete(HubPingRow).where(HubPingRow.state != "pending", HubPingRow.updated_at < before))
    return int(result.rowcount or 0)
