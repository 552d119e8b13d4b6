"""Signed webhook requests already accepted: a second use of one inside its window is a replay.

The table is shared by every API process, so a request replayed to another process (or after a
restart) is refused too. "Now" is passed in, never read here.

>>> with store.transaction() as db:
...     first = remember_signature(db, mac, expires_at=signed_at + window, now=now)  # True; then False
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from syndication.store.conflicts import insert_for
from syndication.store.schema import WebhookSignatureRow


def remember_signature(db: Session, mac: str, *, expires_at: datetime, now: datetime) -> bool:
    """Keep ``mac`` until ``expires_at``; False when it is already kept (the request is a replay).

    Signatures whose window is over are purged here: the timestamp check refuses them anyway.
    One INSERT ... ON CONFLICT DO NOTHING, so two processes given the same request at once
    cannot both accept it.
    """
    db.execute(delete(WebhookSignatureRow).where(WebhookSignatureRow.expires_at <= now))
    inserted = db.execute(insert_for(db, WebhookSignatureRow).values(mac=mac, expires_at=expires_at)
                          .on_conflict_do_nothing(index_elements=[WebhookSignatureRow.mac])
                          .returning(WebhookSignatureRow.mac))
    return inserted.scalar_one_or_none() is not None  # no row back: the conflict, a replay
