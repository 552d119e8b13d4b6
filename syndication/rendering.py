"""Rendering a feed from the store to files."""
from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from config import SiteConfig
from syndication.archiving import archive_state, current_options, file_archive, missing_pages, write_pages
from syndication.articles import StoredArticle
from syndication.feeds.catalog import FeedSpec, parse_key
from syndication.feeds.files import holds_etag
from syndication.feeds.fragments import FragmentCache
from syndication.feeds.render import render_formats, write_feed
from syndication.store import Store
from syndication.store.archive_notes import clear_pending
from syndication.store.articles import Version, all_feed_keys, latest_for_feed
from syndication.store.feed_state import FeedState, all_states, get_state, mark_dirty, read_seq, record_render
from syndication.store.hub_pings import owe_pings
from syndication.store.timeline import add_steps

log = logging.getLogger(__name__)
T = TypeVar("T")

# One fragment cache per store, for as long as the store lives: per process in a worker,
# which builds its store once. Not one per process: an article id and revision name one
# version of an article only within one database, and tests (or a tool) may hold several.
_CACHES: weakref.WeakKeyDictionary[Store, FragmentCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


@dataclass(frozen=True)
class Rendered:
    """One render: the feed, how many items, which files changed (current documents, then
    archive pages) and how many hub pings it owes."""

    feed_key: str
    item_count: int
    changed: list[str]
    seq: int
    archive_changed: list[str] = field(default_factory=list)
    pings: int = 0


@dataclass(frozen=True)
class Snapshot:
    """What one render reads from the store: the feed, its items and its change count."""

    spec: FeedSpec
    entries: list[StoredArticle]
    seq: int
    before: FeedState | None


class ArticleCache(MutableMapping[Version, StoredArticle]):
    """Articles already loaded from one store, by (id, revision, modified_at), least recently
    used evicted first. A render reads the feed's window of versions and loads only the rest."""

    def __init__(self, max_entries: int = 1000) -> None:
        self._items: OrderedDict[Version, StoredArticle] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def __getitem__(self, key: Version) -> StoredArticle:
        with self._lock:
            self._items.move_to_end(key)
            return self._items[key]

    def __setitem__(self, key: Version, value: StoredArticle) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __delitem__(self, key: Version) -> None:
        with self._lock:
            del self._items[key]

    def __iter__(self) -> Iterator[Version]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)


_ARTICLES: weakref.WeakKeyDictionary[Store, ArticleCache] = weakref.WeakKeyDictionary()


def article_cache(store: Store) -> ArticleCache:
    """The articles that renders from ``store`` share in this process (one store: see ``_CACHES``)."""
    return _per_store(_ARTICLES, store, ArticleCache)


def fragment_cache(store: Store) -> FragmentCache:
    """The cache of serialised items that renders from ``store`` share in this process."""
    return _per_store(_CACHES, store, FragmentCache)


def _per_store(caches: weakref.WeakKeyDictionary[Store, T], store: Store, make: Callable[[], T]) -> T:
    with _CACHES_LOCK:
        cache = caches.get(store)
        if cache is None:
            cache = caches[store] = make()
        return cache


def read_snapshot(store: Store, site: SiteConfig, key: str) -> Snapshot:
    """The newest items of feed ``key``, newest first, as a render sees them.

    Raises ``ValidationError`` for a malformed key.
    """
    spec = parse_key(key)
    with store.read() as session:
        # Read the change count first: anything committed after it bumps it again,
        # so the feed stays stale and renders once more.
        seq, label = read_seq(session, key)
        before = get_state(session, key)
        entries = [e for e in latest_for_feed(session, key, site.feeds.items, known=article_cache(store))
                   if not e.withdrawn]
    return Snapshot(FeedSpec(spec.kind, spec.slug, label or spec.slug), entries, seq, before)


def render_feed(store: Store, site: SiteConfig, feeds_dir: Path, key: str,
                *, clock: Callable[[], datetime], cache: FragmentCache | None = None) -> Rendered:
    """Render one feed in every format from the newest items in the store, and write the files.

    Items unchanged since an earlier render in this process are reused from ``cache``
    (by default the store's, see ``fragment_cache``), not serialised again; the bytes
    are those of a render from scratch. Raises ``ValidationError`` for a malformed key.
    Files whose content is unchanged are left untouched (same mtime, same ETag).

    >>> render_feed(store, site, Path("var/feeds"), "section/sport", clock=utcnow)
    """
    started = clock()
    snap = read_snapshot(store, site, key)
    entries = snap.entries
    cache = cache if cache is not None else fragment_cache(store)
    archive = file_archive(store, site, key, [e.article.id for e in entries],
                           written=(snap.before.files.get("archive") if snap.before else None))
    rendered = render_formats(snap.spec, entries, site.site, started, cache=cache,
                              **current_options(store, site, key, now=started, pages=archive.page_count))
    written = write_feed(feeds_dir, snap.spec, rendered)
    archive_changed = write_pages(store, site, feeds_dir, snap.spec, archive, started, cache=cache,
                                  known=article_cache(store))
    files: dict[str, Any] = {fmt: {"relpath": w.relpath, "etag": w.etag, "size": w.size}
                             for fmt, w in written.items()}
    files["archive"] = archive_state(site, archive)
    changed = [w.relpath for w in written.values() if w.changed]
    # ``rendered_at`` is when a render took its snapshot: an article changed after the previous
    # snapshot began is one this render may be the first to carry, and its timeline says so.
    last_render = snap.before.rendered_at if snap.before else None
    fresh = [e for e in entries if last_render is None or e.modified_at >= last_render]
    with store.transaction() as session:
        # Lock order: an article's change notes its archive rows, then marks its feeds dirty
        # (``publishing``); this transaction takes the same rows in the same order. The other
        # way round, a withdrawal committing during this render deadlocked on PostgreSQL.
        clear_pending(session, key, archive.notes)
        record_render(session, key, seq=snap.seq, rendered_at=started, item_count=len(entries), files=files)
        add_steps(session, [(e.article.id, "rendered", {"feed": key, "revision": e.revision}) for e in fresh],
                  now=clock())
        if archive.more:
            mark_dirty(session, [(key, "")], now=clock())  # the rest of the notes: another render
        # Spec: WebSub §6 — the hub is told the topic (the feed's self URL) changed; the ping
        # goes out after commit, from the hub ping outbox (syndication.websub).
        pings = owe_pings(session, [str(h) for h in site.site.hubs],
                          [f"{site.site.feeds_base}/{path}" for path in changed],
                          [e.article.id for e in fresh], now=clock())
    log.info("feed rendered", extra={"feed": key, "items": len(entries), "changed": len(changed),
                                     "archive_changed": len(archive_changed), "pings": pings, "seq": snap.seq})
    return Rendered(key, len(entries), changed, snap.seq, archive_changed, pings)


def damaged_feeds(store: Store, feeds_dir: Path, *, clock: Callable[[], datetime]) -> list[str]:
    """Mark for a new render every feed whose files are missing or do not hold the bytes its
    last render wrote (a machine crash before the page cache reached the disk, a file removed
    or edited by hand). Returns their keys; the sweeper dispatches the renders.

    Called when a worker starts: feed files are written without fsync (``write_atomically``).
    """
    with store.read() as session:
        states = all_states(session)
    damaged = []
    for s in states:
        files = s.files or {}
        broken = any(not holds_etag(feeds_dir / f["relpath"], f["etag"]) for f in files.values()
                     if isinstance(f, dict) and "relpath" in f and "etag" in f)
        # Archive pages are not in ``files`` (a feed may have thousands): a lost one is noted
        # again, so the render rewrites it (and only it).
        lost = missing_pages(store, feeds_dir, s.feed_key, files.get("archive"))
        if broken or lost:
            damaged.append(s.feed_key)
    if damaged:
        with store.transaction() as session:
            mark_dirty(session, ((key, "") for key in damaged), now=clock())
        log.warning("feed files damaged or missing: marked for a new render", extra={"feeds": len(damaged)})
    return damaged


def render_all(store: Store, site: SiteConfig, feeds_dir: Path, *, clock: Callable[[], datetime]) -> list[Rendered]:
    """Render every feed that has items (used by ``syndication render --all`` and imports)."""
    with store.read() as session:
        keys = all_feed_keys(session)
    return [render_feed(store, site, feeds_dir, key, clock=clock) for key in keys or ["all"]]
