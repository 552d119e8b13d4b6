"""Archive documents (RFC 5005 §4) and tombstones (RFC 6721), rendered with their feed.

Each feed files its articles in pages of ``[feeds] archive_items``, oldest first, in the
order renders meet them (``store.archives``). A render rewrites only the pages whose
articles changed since the last one, and the page before a page that was just opened
(it gains its next-archive link). A full page is never rewritten otherwise.

>>> archive = file_archive(store, site, "all", window_ids, written=state.files.get("archive"))
>>> write_pages(store, site, feeds_dir, ALL, archive, now, cache=cache, known=article_cache(store))
['all/archive/3.rss', 'all/archive/3.atom', 'all/archive/3.json']
"""
from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from config import SiteConfig
from syndication.articles import StoredArticle
from syndication.feeds.catalog import FORMATS, FeedSpec, parse_key
from syndication.feeds.fragments import FragmentCache
from syndication.feeds.paging import Paging
from syndication.feeds.render import Tombstone, render_formats, write_feed
from syndication.store import Store
from syndication.store.articles import Version
from syndication.store.archives import Filed, file_pending, page_count, page_entries, renote_pages, tombstones


def file_archive(store: Store, site: SiteConfig, key: str, window: Sequence[str], *,
                 written: dict[str, Any] | None) -> Filed:
    """File the feed's noted articles (and any of ``window`` not yet filed); which pages to rewrite.

    ``written`` is what the feed's last render recorded of its archive (``archive_state``):
    pages written with another page size are all rewritten.
    """
    size = site.feeds.archive_items
    relayout = bool(written) and written.get("page_size", size) != size
    with store.transaction() as session:
        return file_pending(session, key, window, page_size=size, relayout=relayout)


def archive_state(site: SiteConfig, archive: Filed) -> dict[str, Any]:
    """What a render records of the archive it wrote (in the feed's state, beside its files)."""
    return {"pages": archive.page_count, "page_size": site.feeds.archive_items}


def recent_tombstones(store: Store, site: SiteConfig, key: str, *, now: datetime) -> list[Tombstone]:
    """The feed's articles withdrawn within ``[feeds] tombstone_days``, newest first."""
    if not site.feeds.tombstone_days:
        return []
    with store.read() as session:
        found = tombstones(session, key, since=now - timedelta(days=site.feeds.tombstone_days))
    return [(t.article_id, t.withdrawn_at) for t in found]


def current_options(store: Store, site: SiteConfig, key: str, *, now: datetime,
                    pages: int | None = None) -> dict[str, Any]:
    """The ``render_formats`` options of a feed's current document as the store has it now:
    its link to the newest of its ``pages`` archive pages (read from the store when None),
    its tombstones and the byte cap."""
    if pages is None:
        with store.read() as session:
            pages = page_count(session, key, page_size=site.feeds.archive_items)
    return {"paging": Paging(None, pages), "tombstones": recent_tombstones(store, site, key, now=now),
            "max_bytes": site.feeds.max_file_bytes}


def write_pages(store: Store, site: SiteConfig, feeds_dir: Path, spec: FeedSpec, archive: Filed,
                generated_at: datetime, *, cache: FragmentCache,
                known: MutableMapping[Version, StoredArticle]) -> list[str]:
    """Render and write the archive pages ``archive`` names; returns the files that changed.
    Articles in ``known`` (by version) are not read again."""
    changed: list[str] = []
    for page in sorted(archive.pages):
        with store.read() as session:
            entries = page_entries(session, spec.key, page, page_size=site.feeds.archive_items, known=known)
        paging = Paging(page, archive.page_count)
        rendered = render_formats(spec, entries, site.site, generated_at, cache=cache, paging=paging)
        written = write_feed(feeds_dir, spec, rendered, page=page)
        changed.extend(w.relpath for w in written.values() if w.changed)
    if archive.relayout:  # only a larger page size leaves fewer pages than before
        _remove_pages_after(feeds_dir, spec, archive.page_count)
    return changed


def missing_pages(store: Store, feeds_dir: Path, key: str, written: dict[str, Any] | None) -> list[int]:
    """Note again the archive pages of feed ``key`` that its last render wrote (``written``,
    see ``archive_state``) and whose files are gone; returns their numbers. The feed still
    needs marking dirty for the render that writes them."""
    if not written or not written.get("pages"):
        return []
    spec = parse_key(key)
    lost = [page for page in range(1, int(written["pages"]) + 1)
            if not all((feeds_dir / spec.archive_relpath(fmt, page)).is_file() for fmt in FORMATS.values())]
    if lost:
        with store.transaction() as session:
            renote_pages(session, key, lost, page_size=int(written.get("page_size") or 1))
    return lost


def _remove_pages_after(feeds_dir: Path, spec: FeedSpec, last: int) -> None:
    """Pages beyond the last, left by a larger page count under an earlier page size."""
    page = last + 1
    while True:
        paths = [feeds_dir / spec.archive_relpath(fmt, page) for fmt in FORMATS.values()]
        if not any(p.exists() for p in paths):
            return
        for path in paths:
            path.unlink(missing_ok=True)
        page += 1
