"""Notes that an article changed in a feed, so that the feed's next render rewrites its archive page.

Written in the transaction of the change (``store.articles``), read by ``store.archives``.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import tuple_, update
from sqlalchemy.orm import Session

from syndication.store.conflicts import insert_for
from syndication.store.schema import ArchiveItemRow


def note_changes(session: Session, pairs: Iterable[tuple[str, str]]) -> None:
    """Note that these (feed key, article id) changed: their archive pages need rewriting."""
    token = str(uuid.uuid4())
    rows = [{"feed_key": k, "article_id": a, "position": None, "pending": token} for k, a in sorted(set(pairs))]
    if not rows:
        return
    stmt = insert_for(session, ArchiveItemRow)
    session.execute(stmt.on_conflict_do_update(index_elements=["feed_key", "article_id"],
                                               set_={"pending": stmt.excluded.pending}), rows)


def clear_pending(session: Session, feed_key: str, notes: Sequence[tuple[str, str]]) -> None:
    """Clear the notes a render saw; a note changed since (a newer change) stays."""
    if notes:
        session.execute(update(ArchiveItemRow).where(
            ArchiveItemRow.feed_key == feed_key,
            tuple_(ArchiveItemRow.article_id, ArchiveItemRow.pending).in_(list(notes)))
            .values(pending=None).execution_options(synchronize_session=False))
