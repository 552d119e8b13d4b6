"""Per-feed bookkeeping: how many changes seen and rendered, and what the files hold."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from syndication.store.conflicts import insert_for, insert_missing
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
    """Record that these feeds (key, label) changed and need a render.

    One ``INSERT ... ON CONFLICT DO UPDATE``: a feed seen for the first time by several
    processes at once gets one row, and every change is counted (the count is raised by
    the database, never from a value read earlier).
    """
    wanted = dict(keys)
    if not wanted:
        return
    stmt = insert_for(session, FeedStateRow)
    table, new = FeedStateRow.__table__.c, stmt.excluded
    stmt = stmt.on_conflict_do_update(index_elements=["feed_key"], set_={
        # the first change not yet rendered: the lag starts here
        "dirty_at": case((table.dirty_seq <= table.rendered_seq, new.dirty_at), else_=table.dirty_at),
        "dirty_seq": table.dirty_seq + 1,
        "label": case((new.label != "", new.label), else_=table.label),
    })
    session.execute(stmt, [{"feed_key": key, "label": label, "dirty_seq": 1, "rendered_seq": 0, "dirty_at": now,
                            "item_count": 0, "renders": 0, "files": {}, "created_at": now}
                           for key, label in sorted(wanted.items())])


def read_seq(session: Session, key: str) -> tuple[int, str]:
    """The change count and label of a feed, read *before* a render takes its snapshot."""
    row = session.get(FeedStateRow, key)
    return (row.dirty_seq, row.label) if row else (0, "")


def record_render(session: Session, key: str, *, seq: int, rendered_at: datetime, item_count: int,
                  files: dict[str, Any]) -> FeedState:
    """Note a finished render of everything up to change number ``seq``."""
    insert_missing(session, FeedStateRow, [{"feed_key": key, "label": "", "dirty_seq": seq, "rendered_seq": 0,
                                            "item_count": 0, "renders": 0, "files": {}}], key=["feed_key"])
    row = session.get(FeedStateRow, key, with_for_update=True, populate_existing=True)
    assert row is not None  # inserted above, or by another transaction that committed first
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


def forget_feeds(session: Session, keys: Iterable[str]) -> None:
    """Drop the state of feeds that no longer exist (their files are deleted by the caller)."""
    wanted = list(keys)
    if wanted:
        session.execute(delete(FeedStateRow).where(FeedStateRow.feed_key.in_(wanted)))


def existing_feeds(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of these feeds exist already."""
    wanted = sorted(set(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists
        found.update(session.scalars(select(FeedStateRow.feed_key)
                                     .where(FeedStateRow.feed_key.in_(wanted[start:start + 500]))))
    return found


def feeds_created_since(session: Session, since: datetime, *, excluding: Iterable[str] = ()) -> int:
    """How many feeds (other than ``excluding``) first appeared at or after ``since``."""
    return int(session.scalar(select(func.count()).select_from(FeedStateRow).where(
        FeedStateRow.created_at >= since, FeedStateRow.feed_key.not_in(list(excluding)))) or 0)


def _rendered(query: Any, rendered_only: bool) -> Any:
    return query.where(FeedStateRow.rendered_at.is_not(None)) if rendered_only else query


def count_states(session: Session, *, rendered_only: bool = False) -> int:
    """How many feeds there are (rendered at least once, with ``rendered_only``)."""
    return int(session.scalar(_rendered(select(func.count()).select_from(FeedStateRow), rendered_only)) or 0)


def states_page(session: Session, *, offset: int, limit: int, rendered_only: bool = False) -> list[FeedState]:
    """One page of feeds in key order."""
    query = _rendered(select(FeedStateRow), rendered_only).order_by(FeedStateRow.feed_key)
    return [_state(r) for r in session.scalars(query.offset(offset).limit(limit))]
