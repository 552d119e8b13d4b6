"""The transactional outbox: events written with the change, dispatched after commit."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from syndication.store.schema import OutboxRow


RELEASED = "article.released"  # a scheduled article at its time: posted as a new one, its age counted from now
SHARED = "article.shared"  # an operator's "share again"; ``article.shared:<channel>`` for one channel
EVENT_KIND_MAX = 32  # OutboxRow.kind


@dataclass(frozen=True)
class Event:
    """A change to announce: ``article.published``, ``article.updated``, ``article.withdrawn``,
    ``article.released`` or ``article.shared[:<channel>]``."""

    id: str
    kind: str
    article_id: str
    revision: int
    created_at: datetime


def _event(row: OutboxRow) -> Event:
    return Event(row.id, row.kind, row.article_id, row.revision, row.created_at)


def add_event(session: Session, kind: str, article_id: str, revision: int, *, now: datetime) -> Event:
    row = OutboxRow(id=str(uuid.uuid4()), kind=kind, article_id=article_id, revision=revision,
                    created_at=now, dispatch_count=0)
    session.add(row)
    return _event(row)


def add_events(session: Session, changes: list[tuple[str, str, int]], *, now: datetime) -> list[Event]:
    """Many events, (kind, article id, revision) each, in one statement."""
    events = [Event(str(uuid.uuid4()), kind, article_id, revision, now) for kind, article_id, revision in changes]
    if events:
        session.execute(insert(OutboxRow), [
            {"id": e.id, "kind": e.kind, "article_id": e.article_id, "revision": e.revision, "created_at": now,
             "dispatch_count": 0} for e in events])
    return events


def get_event(session: Session, event_id: str) -> Event | None:
    row = session.get(OutboxRow, event_id)
    return _event(row) if row else None


REDISPATCH_AFTER = timedelta(seconds=60)
REDISPATCH_MAX = timedelta(hours=1)


def redispatch_delay(dispatch_count: int, base: timedelta = REDISPATCH_AFTER) -> timedelta:
    """How long a dispatched event may stay unprocessed before it is sent again: 1, 2, 4...
    minutes (``base`` doubling), at most an hour. A backlog delays processing; doubling keeps
    duplicates few."""
    return min(REDISPATCH_MAX, base * 2 ** min(max(dispatch_count - 1, 0), 10))


def mark_dispatched(session: Session, event_ids: list[str], *, now: datetime,
                    redispatch_after: timedelta = REDISPATCH_AFTER) -> None:
    if not event_ids:
        return
    counts = {event_id: count for event_id, count in session.execute(
        select(OutboxRow.id, OutboxRow.dispatch_count).where(OutboxRow.id.in_(event_ids)))}
    by_count: dict[int, list[str]] = {}
    for event_id, count in counts.items():
        by_count.setdefault(int(count or 0) + 1, []).append(event_id)
    for count, ids in by_count.items():
        session.execute(update(OutboxRow).where(OutboxRow.id.in_(ids)).values(
            dispatched_at=now, dispatch_count=count, next_dispatch_at=now + redispatch_delay(count, redispatch_after)))


def mark_processed(session: Session, event_id: str, *, now: datetime) -> bool:
    """Record that an event was handled; False if it already was (a duplicate delivery)."""
    result = session.execute(update(OutboxRow).where(OutboxRow.id == event_id, OutboxRow.processed_at.is_(None))
                             .values(processed_at=now))
    return bool(result.rowcount)


def due_for_dispatch(session: Session, *, now: datetime, grace: timedelta, limit: int = 500) -> list[Event]:
    """Events never handed over (committed ``grace`` ago), or handed over and still not
    processed by their ``next_dispatch_at`` (the message may have been lost)."""
    rows = session.scalars(
        select(OutboxRow)
        .where(OutboxRow.processed_at.is_(None))
        .where(((OutboxRow.dispatched_at.is_(None)) & (OutboxRow.created_at <= now - grace))
               | (OutboxRow.next_dispatch_at <= now))
        .order_by(OutboxRow.created_at)
        .limit(limit)
    )
    return [_event(r) for r in rows]


def redispatch_all_unprocessed(session: Session, *, now: datetime) -> int:
    """After a broker restart, every dispatched-but-unprocessed message may be gone: due now."""
    result = session.execute(update(OutboxRow).where(OutboxRow.processed_at.is_(None),
                                                      OutboxRow.dispatched_at.is_not(None))
                             .values(next_dispatch_at=now))
    return int(result.rowcount or 0)


def oldest_pending(session: Session) -> Event | None:
    row = session.scalars(select(OutboxRow).where(OutboxRow.processed_at.is_(None))
                          .order_by(OutboxRow.created_at).limit(1)).first()
    return _event(row) if row else None


def count_pending(session: Session) -> int:
    """Outbox events not yet processed."""
    return int(session.scalar(select(func.count()).select_from(OutboxRow)
                              .where(OutboxRow.processed_at.is_(None))) or 0)
