"""Queries on articles and feed membership."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from syndication.articles import Article, StoredArticle
from syndication.store.schema import ArticleRow, FeedItemRow


@dataclass(frozen=True)
class Upserted:
    """What storing one article did."""

    article_id: str
    revision: int
    created: bool
    changed: bool
    feed_keys: frozenset[str]  # feeds whose content changed (old and new membership)


def content_hash(article: Article) -> str:
    canonical = json.dumps(article.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def to_stored(row: ArticleRow) -> StoredArticle:
    return StoredArticle(
        article=Article.model_validate(row.data, context={"stored": True}),
        revision=row.revision,
        status=row.status,
        origin=row.origin,
        received_at=row.received_at,
        modified_at=row.modified_at,
    )


def _memberships(session: Session, ids: Sequence[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for article_id, key in session.execute(
        select(FeedItemRow.article_id, FeedItemRow.feed_key).where(FeedItemRow.article_id.in_(ids))
    ):
        found.setdefault(article_id, set()).add(key)
    return found


def upsert_articles(
    session: Session, items: Sequence[tuple[Article, list[str]]], *, origin: str, now: datetime
) -> list[Upserted]:
    """Insert or update articles by id; ``items`` pairs each article with its feed keys.

    Re-sending identical content is not a new revision. A withdrawn article that is
    sent again is published again, as a new revision. One round of statements per batch:
    a select, the inserts and updates, one delete and one insert of feed memberships.
    """
    ids = list(dict.fromkeys(a.id for a, _ in items))
    existing = {r.id: r for r in session.scalars(select(ArticleRow).where(ArticleRow.id.in_(ids)))}
    members = _memberships(session, ids)
    had_members = {article_id for article_id, keys in members.items() if keys}
    fresh: dict[str, dict[str, object]] = {}  # new articles, inserted in one statement
    new_keys: dict[str, list[str]] = {}
    published_at: dict[str, datetime] = {}
    results: list[Upserted] = []
    for article, keys in items:
        digest = content_hash(article)
        row = existing.get(article.id)
        new = fresh.get(article.id)
        old_keys = members.get(article.id, set())
        current = (new["content_hash"], new["status"]) if new else (row.content_hash, row.status) if row else None
        if current == (digest, "published"):
            revision = int(new["revision"]) if new else row.revision  # type: ignore[union-attr,call-overload]
            results.append(Upserted(article.id, revision, False, False, frozenset()))
            continue
        values = {"url": article.url, "data": article.model_dump(mode="json"), "content_hash": digest,
                  "published_at": article.published_at, "status": "published", "modified_at": now}
        created = row is None and new is None
        if new is not None:  # the same new id twice in one batch: the second is an update
            new.update(values, revision=int(new["revision"]) + 1)  # type: ignore[call-overload]
            revision = int(new["revision"])  # type: ignore[call-overload]
        elif row is not None:
            for name, value in values.items():
                setattr(row, name, value)
            row.revision += 1
            revision = row.revision
        else:
            fresh[article.id] = {"id": article.id, "revision": 1, "origin": origin, "received_at": now, **values}
            revision = 1
        new_keys[article.id] = list(dict.fromkeys(keys))
        published_at[article.id] = article.published_at
        members[article.id] = set(keys)
        results.append(Upserted(article.id, revision, created, True, frozenset(old_keys | set(keys))))
    session.flush()
    if fresh:
        session.execute(insert(ArticleRow), list(fresh.values()))
    replaced = sorted(had_members & set(new_keys))
    if replaced:
        session.execute(delete(FeedItemRow).where(FeedItemRow.article_id.in_(replaced)))
    memberships = [{"feed_key": key, "article_id": article_id, "published_at": published_at[article_id]}
                   for article_id, keys in new_keys.items() for key in keys]
    if memberships:
        session.execute(insert(FeedItemRow), memberships)
    return results


def withdraw_article(session: Session, article_id: str, *, now: datetime) -> Upserted | None:
    """Mark an article withdrawn (a tombstone) and take it out of every feed.

    Returns None when there is no such article; an already-withdrawn one is unchanged.
    """
    row = session.get(ArticleRow, article_id, with_for_update=True)
    if row is None:
        return None
    if row.status == "withdrawn":
        return Upserted(article_id, row.revision, False, False, frozenset())
    keys = set(session.scalars(select(FeedItemRow.feed_key).where(FeedItemRow.article_id == article_id)))
    session.execute(delete(FeedItemRow).where(FeedItemRow.article_id == article_id))
    row.status, row.revision, row.modified_at = "withdrawn", row.revision + 1, now
    return Upserted(article_id, row.revision, False, True, frozenset(keys))


def get_article(session: Session, article_id: str) -> StoredArticle | None:
    row = session.get(ArticleRow, article_id)
    return to_stored(row) if row else None


def find_by_url(session: Session, url: str) -> StoredArticle | None:
    row = session.scalars(select(ArticleRow).where(ArticleRow.url == url).limit(1)).first()
    return to_stored(row) if row else None


def feed_keys_of(session: Session, article_id: str) -> list[str]:
    return sorted(session.scalars(select(FeedItemRow.feed_key).where(FeedItemRow.article_id == article_id)))


def latest_for_feed(session: Session, feed_key: str, limit: int) -> list[StoredArticle]:
    """The newest ``limit`` published articles of a feed, newest first (an index scan)."""
    rows = session.scalars(
        select(ArticleRow)
        .join(FeedItemRow, FeedItemRow.article_id == ArticleRow.id)
        .where(FeedItemRow.feed_key == feed_key)
        .order_by(FeedItemRow.published_at.desc(), FeedItemRow.article_id.desc())
        .limit(limit)
    )
    return [to_stored(r) for r in rows]


def list_articles(session: Session, *, limit: int = 50, status: str | None = None) -> list[StoredArticle]:
    query = select(ArticleRow).order_by(ArticleRow.published_at.desc(), ArticleRow.id.desc()).limit(limit)
    if status:
        query = query.where(ArticleRow.status == status)
    return [to_stored(r) for r in session.scalars(query)]


def count_articles(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ArticleRow)) or 0


def all_feed_keys(session: Session) -> list[str]:
    return list(session.scalars(select(FeedItemRow.feed_key).distinct().order_by(FeedItemRow.feed_key)))
