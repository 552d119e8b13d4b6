"""The transactional outbox: events written with the change, dispatched after commit."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from syndication.store.schema import OutboxRow


@dataclass(frozen=True)
class Event:
    """A change to announce: ``article.published``, ``article.updated`` or ``article.withdrawn``."""

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


def get_event(session: Session, event_id: str) -> Event | None:
    row = session.get(OutboxRow, event_id)
    return _event(row) if row else None


def mark_dispatched(session: Session, event_ids: list[str], *, now: datetime) -> None:
    if event_ids:
        session.execute(update(OutboxRow).where(OutboxRow.id.in_(event_ids))
                        .values(dispatched_at=now, dispatch_count=OutboxRow.dispatch_count + 1))


def mark_processed(session: Session, event_id: str, *, now: datetime) -> bool:
    """Record that an event was handled; False if it already was (a duplicate delivery)."""
    result = session.execute(update(OutboxRow).where(OutboxRow.id == event_id, OutboxRow.processed_at.is_(None))
                             .values(processed_at=now))
    return bool(result.rowcount)


def due_for_dispatch(session: Session, *, now: datetime, grace: timedelta, limit: int = 500) -> list[Event]:
    """Events never handed over, or handed over ``grace`` ago and still not processed."""
    rows = session.scalars(
        select(OutboxRow)
        .where(OutboxRow.processed_at.is_(None), OutboxRow.created_at <= now - grace)
        .where((OutboxRow.dispatched_at.is_(None)) | (OutboxRow.dispatched_at <= now - grace))
        .order_by(OutboxRow.created_at)
        .limit(limit)
    )
    return [_event(r) for r in rows]


def oldest_pending(session: Session) -> Event | None:
    row = session.scalars(select(OutboxRow).where(OutboxRow.processed_at.is_(None))
                          .order_by(OutboxRow.created_at).limit(1)).first()
    return _event(row) if row else None
