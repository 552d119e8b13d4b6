"""Queries on articles and feed membership."""
from __future__ import annotations

import hashlib
import json
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from syndication.articles import Article, StoredArticle
from syndication.store.archive_notes import note_changes
from syndication.store.conflicts import insert_missing
from syndication.store.schema import ArticleRow, FeedItemRow


@dataclass(frozen=True)
class Upserted:
    """What storing one article did."""

    article_id: str
    revision: int
    created: bool
    changed: bool
    feed_keys: frozenset[str]  # feeds whose content changed (old and new membership)
    status: str = "published"  # what it is now: "published", "scheduled" (a future published_at)...
    previously: str | None = None  # its status before (None: it is new)


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
    sent again is published again, as a new revision. Safe when several processes send
    the same new id at once: the first insert wins revision 1, the others wait for it and
    update it in turn, so revisions count up one by one and the last one stored is the
    content kept. Statements per batch: an insert of the new ids, a locking select, the
    updates, one delete and one insert of feed memberships.

    An article whose ``published_at`` is after ``now`` is stored as ``scheduled``: it is in
    no feed until ``release_scheduled`` releases it (and leaves the feeds it was in).
    """
    digests = [content_hash(article) for article, _ in items]
    first: dict[str, dict[str, object]] = {}
    for (article, _), digest in zip(items, digests):
        if article.id not in first:
            first[article.id] = {"id": article.id, "revision": 1, "origin": origin, "received_at": now,
                                 **_values(article, digest, now)}
    # Claim the new ids first. An id another transaction is inserting right now waits for
    # it, then counts as existing. This write also takes SQLite's write lock before any read.
    created = {article_id for article_id, in insert_missing(session, ArticleRow, list(first.values()),
                                                             key=["id"], returning=[ArticleRow.id], probe=True)}
    ids = sorted(first)
    # Every row now exists: lock them (in one order, so batches cannot deadlock) and read the
    # newest committed state, so that an update counts on from the last revision.
    rows = {r.id: r for r in session.scalars(
        select(ArticleRow).where(ArticleRow.id.in_(ids)).order_by(ArticleRow.id)
        .with_for_update().execution_options(populate_existing=True))}
    members = _memberships(session, ids)
    had_members = {article_id for article_id, keys in members.items() if keys}
    new_keys: dict[str, list[str]] = {}
    published_at: dict[str, datetime] = {}
    results: list[Upserted] = []
    for (article, keys), digest in zip(items, digests):
        row = rows[article.id]
        old_keys = members.get(article.id, set())
        status = _status_of(article, now)
        previously = None if article.id in created else row.status
        if article.id in created:  # its first occurrence, inserted above with this content
            created.discard(article.id)
            revision, fresh = 1, True
        elif (row.content_hash, row.status) == (digest, status):
            results.append(Upserted(article.id, row.revision, False, False, frozenset(), status, status))
            continue
        else:
            for name, value in _values(article, digest, now).items():
                setattr(row, name, value)
            row.revision += 1  # the row is locked: no one else counts on from the same number
            revision, fresh = row.revision, False
        # A scheduled article is in no feed: its feeds are filled when it is released.
        keys = keys if status == "published" else []
        new_keys[article.id] = list(dict.fromkeys(keys))
        published_at[article.id] = article.published_at
        members[article.id] = set(keys)
        results.append(Upserted(article.id, revision, fresh, True, frozenset(old_keys | set(keys)), status,
                                previously))
    session.flush()
    replaced = sorted(had_members & set(new_keys))
    if replaced:
        session.execute(delete(FeedItemRow).where(FeedItemRow.article_id.in_(replaced)))
    insert_missing(session, FeedItemRow, [
        {"feed_key": key, "article_id": article_id, "published_at": published_at[article_id]}
        for article_id, keys in new_keys.items() for key in keys], key=["feed_key", "article_id"])
    _note_archive_changes(session, results)
    return results


def _status_of(article: Article, now: datetime) -> str:
    return "scheduled" if article.published_at > now else "published"


def _values(article: Article, digest: str, now: datetime) -> dict[str, object]:
    """The columns that a new version of ``article`` sets."""
    return {"url": article.url, "data": article.model_dump(mode="json"), "content_hash": digest,
            "published_at": article.published_at, "status": _status_of(article, now), "modified_at": now}


def release_scheduled(session: Session, *, now: datetime) -> list[StoredArticle]:
    """Make every scheduled article whose time has come published, and return them.

    One conditional UPDATE decides, so of two concurrent releases each article goes to one.
    The caller files them into their feeds (``add_memberships``).
    """
    ids = list(session.scalars(
        update(ArticleRow).where(ArticleRow.status == "scheduled", ArticleRow.published_at <= now)
        .values(status="published", modified_at=now).returning(ArticleRow.id)
        .execution_options(synchronize_session=False)))
    if not ids:
        return []
    return [to_stored(r) for r in session.scalars(
        select(ArticleRow).where(ArticleRow.id.in_(ids)).order_by(ArticleRow.id)
        .execution_options(populate_existing=True))]


def add_memberships(session: Session, items: Sequence[tuple[Article, list[str]]]) -> None:
    """File articles into feeds (article, feed keys each); memberships already there stay."""
    insert_missing(session, FeedItemRow, [
        {"feed_key": key, "article_id": article.id, "published_at": article.published_at}
        for article, keys in items for key in dict.fromkeys(keys)], key=["feed_key", "article_id"])


def articles_after(session: Session, after: str, limit: int) -> list[StoredArticle]:
    """Up to ``limit`` stored articles (any status) whose id sorts after ``after``, by id: a walk
    over every article in batches."""
    return [to_stored(r) for r in session.scalars(
        select(ArticleRow).where(ArticleRow.id > after).order_by(ArticleRow.id).limit(limit))]


def memberships_of(session: Session, ids: Sequence[str]) -> dict[str, set[str]]:
    """The feeds each of these articles is filed in (article id → feed keys)."""
    return _memberships(session, ids)


def remove_memberships(session: Session, pairs: Sequence[tuple[str, str]]) -> None:
    """Take articles out of feeds: (article id, feed key) each."""
    for article_id, key in pairs:
        session.execute(delete(FeedItemRow).where(FeedItemRow.article_id == article_id, FeedItemRow.feed_key == key))


def upcoming_releases(session: Session, *, limit: int = 50) -> list[StoredArticle]:
    """Scheduled articles, soonest first."""
    return [to_stored(r) for r in session.scalars(
        select(ArticleRow).where(ArticleRow.status == "scheduled")
        .order_by(ArticleRow.published_at, ArticleRow.id).limit(limit))]


def next_release_at(session: Session) -> datetime | None:
    """When the soonest scheduled article is due, if there is one."""
    return session.scalar(select(func.min(ArticleRow.published_at)).where(ArticleRow.status == "scheduled"))


def withdraw_article(session: Session, article_id: str, *, now: datetime) -> Upserted | None:
    """Mark an article withdrawn (a tombstone) and take it out of every feed.

    Returns None when there is no such article; an already-withdrawn one is unchanged.
    The conditional UPDATE comes first, so it both locks the row and decides: of two
    concurrent withdrawals only one makes a new revision.
    """
    revision = session.scalar(
        update(ArticleRow).where(ArticleRow.id == article_id, ArticleRow.status != "withdrawn")
        .values(status="withdrawn", revision=ArticleRow.revision + 1, modified_at=now)
        .returning(ArticleRow.revision).execution_options(synchronize_session=False))
    if revision is None:
        row = session.get(ArticleRow, article_id, populate_existing=True)
        return None if row is None else Upserted(article_id, row.revision, False, False, frozenset())
    keys = set(session.scalars(select(FeedItemRow.feed_key).where(FeedItemRow.article_id == article_id)))
    session.execute(delete(FeedItemRow).where(FeedItemRow.article_id == article_id))
    result = Upserted(article_id, int(revision), False, True, frozenset(keys))
    _note_archive_changes(session, [result])
    return result


def _note_archive_changes(session: Session, results: Sequence[Upserted]) -> None:
    """Every feed a changed article was or is in must rewrite its archive page (``store.archives``)."""
    note_changes(session, ((key, r.article_id) for r in results if r.changed for key in r.feed_keys))


def get_article(session: Session, article_id: str) -> StoredArticle | None:
    row = session.get(ArticleRow, article_id)
    return to_stored(row) if row else None


def find_by_url(session: Session, url: str) -> StoredArticle | None:
    row = session.scalars(select(ArticleRow).where(ArticleRow.url == url).limit(1)).first()
    return to_stored(row) if row else None


def feed_keys_of(session: Session, article_id: str) -> list[str]:
    return sorted(session.scalars(select(FeedItemRow.feed_key).where(FeedItemRow.article_id == article_id)))


Version = tuple[str, int, datetime]  # (article id, revision, modified_at): one stored version


def latest_for_feed(session: Session, feed_key: str, limit: int, *,
                    known: MutableMapping[Version, StoredArticle] | None = None) -> list[StoredArticle]:
    """The newest ``limit`` published articles of a feed, newest first (an index scan).

    With ``known`` (articles already loaded, by version), only the window's versions are
    read first and whole rows only for the articles not in it, which are then added: a feed
    that gained one item loads one row instead of re-validating fifty.
    """
    window = (select(ArticleRow.id, ArticleRow.revision, ArticleRow.modified_at) if known is not None
              else select(ArticleRow))
    window = (window.join(FeedItemRow, FeedItemRow.article_id == ArticleRow.id)
              .where(FeedItemRow.feed_key == feed_key)
              .order_by(FeedItemRow.published_at.desc(), FeedItemRow.article_id.desc())
              .limit(limit))
    if known is None:
        return [to_stored(r) for r in session.scalars(window)]
    return load_versions(session, [(i, r, m) for i, r, m in session.execute(window)], known)


def load_versions(session: Session, versions: Sequence[Version],
                  known: MutableMapping[Version, StoredArticle]) -> list[StoredArticle]:
    """The articles of these versions, in their order: from ``known`` where it has them, the
    rest read in one query (and added to ``known``)."""
    hits = {v: known.get(v) for v in versions}
    missing = [v[0] for v, stored in hits.items() if stored is None]
    loaded = {row.id: to_stored(row) for row in session.scalars(
        select(ArticleRow).where(ArticleRow.id.in_(missing)))} if missing else {}
    for stored in loaded.values():
        known[(stored.article.id, stored.revision, stored.modified_at)] = stored
    # A row loaded after the window was read may be newer (PostgreSQL reads each statement at
    # its own snapshot); it is used as loaded: the feed's change count was read first, so a
    # change that slipped in between is rendered again.
    return [hit or loaded[v[0]] for v, hit in hits.items()]


def list_articles(session: Session, *, limit: int = 50, status: str | None = None) -> list[StoredArticle]:
    query = select(ArticleRow).order_by(ArticleRow.published_at.desc(), ArticleRow.id.desc()).limit(limit)
    if status:
        query = query.where(ArticleRow.status == status)
    return [to_stored(r) for r in session.scalars(query)]


def count_articles(session: Session, *, status: str | None = None) -> int:
    query = select(func.count()).select_from(ArticleRow)
    return session.scalar(query.where(ArticleRow.status == status) if status else query) or 0


def all_feed_keys(session: Session) -> list[str]:
    return list(session.scalars(select(FeedItemRow.feed_key).distinct().order_by(FeedItemRow.feed_key)))
