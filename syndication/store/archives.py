"""Where each article sits in its feeds' archives (RFC 5005), and which pages need rewriting.

Every change to an article notes (``note_changes``, in the transaction of the change) each
feed it was or is in. A render of that feed files the noted articles that have no place yet
(``file_pending``: the next positions, oldest first), rewrites the pages of the noted
articles, and clears the notes it saw (``clear_pending``), unless they changed meanwhile.
A place is kept after an article leaves the feed, so a page never shifts.
"""
from __future__ import annotations

import uuid

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.orm import Session

from syndication.articles import StoredArticle
from syndication.store.articles import Version, load_versions
from syndication.store.archive_notes import note_changes
from syndication.store.schema import ArchiveItemRow, ArticleRow, FeedItemRow


# Notes one render handles at most: each is a bound parameter, and SQLite takes 32,766 per
# statement. An upgraded database (every article noted) is filed over several renders.
NOTES_PER_RENDER = 2000


@dataclass(frozen=True)
class Filed:
    """What ``file_pending`` found: the notes it saw, the pages they touch, the feed's page count."""

    notes: list[tuple[str, str]]  # (article id, token)
    pages: set[int]  # from 1
    page_count: int
    more: bool = False  # notes left for the next render (see NOTES_PER_RENDER)
    relayout: bool = False  # every page rewritten under a new page size


@dataclass(frozen=True)
class Tombstone:
    """A withdrawn article, as RFC 6721 names it: its id and when it was withdrawn."""

    article_id: str
    withdrawn_at: datetime


def file_pending(session: Session, feed_key: str, window: Sequence[str], *, page_size: int,
                 relayout: bool = False) -> Filed:
    """Give a place to each noted article of ``feed_key`` in the feed without one, and to any
    article of ``window`` (the current document's ids) without one, oldest first.

    ``relayout``: the page size is not the one the files were written with, so every page is
    rewritten. Call in a transaction; renders of one feed run one at a time (the unique position
    makes a second one fail rather than file an article twice).
    """
    if window:
        known = set(session.scalars(select(ArchiveItemRow.article_id).where(
            ArchiveItemRow.feed_key == feed_key, ArchiveItemRow.article_id.in_(window))))
        note_changes(session, [(feed_key, a) for a in window if a not in known])
    notes = [(a, t) for a, t in session.execute(
        select(ArchiveItemRow.article_id, ArchiveItemRow.pending)
        .where(ArchiveItemRow.feed_key == feed_key, ArchiveItemRow.pending.is_not(None))
        .order_by(ArchiveItemRow.article_id).limit(NOTES_PER_RENDER + 1))]
    more = len(notes) > NOTES_PER_RENDER
    notes = notes[:NOTES_PER_RENDER]
    last = session.scalar(select(func.max(ArchiveItemRow.position)).where(ArchiveItemRow.feed_key == feed_key))
    before = _page_count(last, page_size)
    noted = [a for a, _ in notes]
    unplaced = [a for a, in session.execute(
        select(ArchiveItemRow.article_id)
        .join(FeedItemRow, and_(FeedItemRow.feed_key == ArchiveItemRow.feed_key,
                                FeedItemRow.article_id == ArchiveItemRow.article_id))
        .where(ArchiveItemRow.feed_key == feed_key, ArchiveItemRow.position.is_(None),
               ArchiveItemRow.article_id.in_(noted))
        .order_by(FeedItemRow.published_at, FeedItemRow.article_id))] if noted else []
    first = 0 if last is None else last + 1
    if unplaced:
        # One statement, many parameter sets: an upgraded database files every article at once.
        session.execute(update(ArchiveItemRow.__table__).where(
            ArchiveItemRow.feed_key == bindparam("key"), ArchiveItemRow.article_id == bindparam("article"))
            .values(position=bindparam("place")),
            [{"key": feed_key, "article": a, "place": first + i} for i, a in enumerate(unplaced)])
    next_position = first + len(unplaced) - 1
    positions = session.scalars(select(ArchiveItemRow.position).where(
        ArchiveItemRow.feed_key == feed_key, ArchiveItemRow.article_id.in_(noted),
        ArchiveItemRow.position.is_not(None))) if noted else []
    pages = {p // page_size + 1 for p in positions}
    after = _page_count(None if next_position < 0 else next_position, page_size)
    if relayout:
        pages = set(range(1, after + 1))  # the page size changed: every page holds other articles
    elif after > before and before:
        pages.add(before)  # it gains a next-archive link
    return Filed(notes, pages, after, more, relayout)


def _page_count(last_position: int | None, page_size: int) -> int:
    return 0 if last_position is None else last_position // page_size + 1


def renote_pages(session: Session, feed_key: str, pages: Sequence[int], *, page_size: int) -> None:
    """Note every article of these pages again, so the next render writes them anew."""
    token = str(uuid.uuid4())
    for page in pages:
        first = (page - 1) * page_size
        session.execute(update(ArchiveItemRow).where(
            ArchiveItemRow.feed_key == feed_key, ArchiveItemRow.position >= first,
            ArchiveItemRow.position < first + page_size).values(pending=token)
            .execution_options(synchronize_session=False))


def page_entries(session: Session, feed_key: str, page: int, *, page_size: int,
                 known: MutableMapping[Version, StoredArticle]) -> list[StoredArticle]:
    """The published articles of archive page ``page`` (from 1) of a feed, newest first; those
    already in ``known`` are not read again (see ``load_versions``)."""
    first = (page - 1) * page_size
    rows = session.execute(
        select(ArticleRow.id, ArticleRow.revision, ArticleRow.modified_at)
        .join(ArchiveItemRow, ArchiveItemRow.article_id == ArticleRow.id)
        .join(FeedItemRow, and_(FeedItemRow.feed_key == ArchiveItemRow.feed_key,
                                FeedItemRow.article_id == ArchiveItemRow.article_id))
        .where(ArchiveItemRow.feed_key == feed_key, ArchiveItemRow.position >= first,
               ArchiveItemRow.position < first + page_size, ArticleRow.status == "published")
        .order_by(ArchiveItemRow.position.desc()))
    return load_versions(session, [(i, r, m) for i, r, m in rows], known)


def page_count(session: Session, feed_key: str, *, page_size: int) -> int:
    """How many archive pages a feed has (0 before its first render files anything)."""
    last = session.scalar(select(func.max(ArchiveItemRow.position)).where(ArchiveItemRow.feed_key == feed_key))
    return _page_count(last, page_size)


def tombstones(session: Session, feed_key: str, *, since: datetime, limit: int = 500) -> list[Tombstone]:
    """Articles of a feed withdrawn since ``since`` (and not published again), newest first."""
    rows = session.execute(
        select(ArticleRow.id, ArticleRow.modified_at)
        .join(ArchiveItemRow, and_(ArchiveItemRow.article_id == ArticleRow.id, ArchiveItemRow.feed_key == feed_key))
        .where(ArticleRow.status == "withdrawn", ArticleRow.modified_at >= since)
        .order_by(ArticleRow.modified_at.desc(), ArticleRow.id).limit(limit))
    return [Tombstone(a, at) for a, at in rows]
