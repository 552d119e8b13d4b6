"""Per-feed bookkeeping: how many changes seen and rendered, and what the files hold."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from syndication.store.schema import FeedStateRow


@dataclass(frozen=True)
class FeedState:
    feed_key: str
    label: str
    dirty_seq: int
    rendered_seq: int
    dirty_at: datetime | None
    rendered_at: datetime | None
    item_count: int
    renders: int
    files: dict[str, Any] = field(default_factory=dict)

    @property
    def stale(self) -> bool:
        return self.dirty_seq > self.rendered_seq


def _state(row: FeedStateRow) -> FeedState:
    return FeedState(row.feed_key, row.label, row.dirty_seq, row.rendered_seq, row.dirty_at,
                     row.rendered_at, row.item_count, row.renders, dict(row.files or {}))


def mark_dirty(session: Session, keys: Iterable[tuple[str, str]], *, now: datetime) -> None:
    """Record that these feeds (key, label) changed and need a render."""
    wanted = dict(keys)
    if not wanted:
        return
    rows = {r.feed_key: r for r in session.scalars(
        select(FeedStateRow).where(FeedStateRow.feed_key.in_(sorted(wanted))).with_for_update())}
    for key, label in sorted(wanted.items()):
        row = rows.get(key)
        if row is None:
            session.add(FeedStateRow(feed_key=key, label=label, dirty_seq=1, rendered_seq=0, dirty_at=now,
                                     item_count=0, renders=0, files={}))
            continue
        if row.dirty_seq <= row.rendered_seq:
            row.dirty_at = now  # first change not yet rendered: the lag starts here
        row.dirty_seq += 1
        if label:
            row.label = label


def read_seq(session: Session, key: str) -> tuple[int, str]:
    """The change count and label of a feed, read *before* a render takes its snapshot."""
    row = session.get(FeedStateRow, key)
    return (row.dirty_seq, row.label) if row else (0, "")


def record_render(session: Session, key: str, *, seq: int, rendered_at: datetime, item_count: int,
                  files: dict[str, Any]) -> FeedState:
    """Note a finished render of everything up to change number ``seq``."""
    row = session.get(FeedStateRow, key, with_for_update=True)
    if row is None:
        row = FeedStateRow(feed_key=key, label="", dirty_seq=seq, rendered_seq=0, item_count=0, renders=0,
                           files={})
        session.add(row)
    row.rendered_seq = max(row.rendered_seq or 0, seq)
    row.rendered_at = rendered_at
    row.item_count = item_count
    row.renders = (row.renders or 0) + 1
    row.files = files
    session.flush()
    return _state(row)


def get_state(session: Session, key: str) -> FeedState | None:
    row = session.get(FeedStateRow, key)
    return _state(row) if row else None


def all_states(session: Session) -> list[FeedState]:
    return [_state(r) for r in session.scalars(select(FeedStateRow).order_by(FeedStateRow.feed_key))]


def stale_feeds(session: Session, *, dirty_before: datetime | None = None) -> list[str]:
    """Feeds with changes not yet rendered (first dirtied before ``dirty_before``, if given)."""
    query = select(FeedStateRow.feed_key).where(FeedStateRow.dirty_seq > FeedStateRow.rendered_seq)
    if dirty_before is not None:
        query = query.where(FeedStateRow.dirty_at <= dirty_before)
    return list(session.scalars(query.order_by(FeedStateRow.feed_key)))
