"""One feed in every format: render the bytes (reusing cached items), then write the files that changed."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from config import SiteInfo
from syndication.articles import StoredArticle
from syndication.feeds import jsonfeed, xml_items
from syndication.feeds.catalog import FORMATS, FeedSpec, ServedPath
from syndication.feeds.feedgen_adapter import atom_frame, rss_frame
from syndication.feeds.files import content_etag, write_atomically
from syndication.feeds.fragments import FragmentCache, Frame, site_fingerprint
from syndication.feeds.jsonfeed import json_frame, json_item
from syndication.feeds.paging import CURRENT, Paging
from syndication.feeds.xml_items import atom_entry, atom_tombstone, rss_item

Tombstone = tuple[str, datetime]  # (article id, when it was withdrawn)


@dataclass(frozen=True)
class Writer:
    """How one format is written: its frame, built per render, and one item's fragment.

    ``version`` names what ``item`` writes; it is part of every cache key, so fragments
    written by another version are never joined into a document. ``tombstone`` writes a
    withdrawn article after the items, in the formats that have a way to say so.
    """

    frame: Callable[[FeedSpec, Sequence[StoredArticle], SiteInfo, datetime, Paging], Frame]
    item: Callable[[StoredArticle, SiteInfo], bytes]
    version: str
    tombstone: Callable[[str, datetime, SiteInfo], bytes] | None = None


# One line per format; the keys are those of catalog.FORMATS.
WRITERS: dict[str, Writer] = {
    "rss": Writer(rss_frame, rss_item, xml_items.ITEM_VERSION),
    "atom": Writer(atom_frame, atom_entry, xml_items.ITEM_VERSION, atom_tombstone),
    "json": Writer(json_frame, json_item, jsonfeed.ITEM_VERSION),
}


@dataclass(frozen=True)
class WrittenFile:
    """One feed file after ``write_feed``: where it is, its ETag, size and whether it changed."""

    relpath: str
    etag: str
    changed: bool
    size: int


def render_formats(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
                   generated_at: datetime, *, cache: FragmentCache | None = None, paging: Paging = CURRENT,
                   tombstones: Sequence[Tombstone] = (), max_bytes: int = 0) -> dict[str, bytes]:
    """Render a feed as RSS, Atom and JSON Feed: ``{"rss": ..., "atom": ..., "json": ...}``.

    ``entries`` are newest first, already limited, without withdrawn articles. With a
    ``cache``, an item already serialised for the same article id, revision, site
    settings and format version is joined in as it is; the bytes are the same as
    without one. The cache must only ever see entries from one store: an article id and
    revision name one version of an article only within one database.

    ``paging`` places the document among the feed's archive pages (RFC 5005);
    ``tombstones`` are written by the formats that can (Atom, RFC 6721); with ``max_bytes``,
    a document longer than that keeps its newest items only, at least one.

    >>> sorted(render_formats(ALL, entries, site.site, now, cache=FragmentCache()))
    ['atom', 'json', 'rss']
    """
    rendered: dict[str, bytes] = {}
    fingerprint = site_fingerprint(site) if cache is not None else ""
    for name, writer in WRITERS.items():
        frame = writer.frame(spec, entries, site, generated_at, paging)
        if cache is None:
            fragments = [writer.item(stored, site) for stored in entries]
        else:
            fragments = [
                # modified_at too: it moves with every revision, so a store that ever
                # reused a revision number would still not serve a stale fragment.
                cache.get_or_build((name, writer.version, fingerprint, stored.article.id, stored.revision,
                                    stored.modified_at), _builder(writer, stored, site))
                for stored in entries
            ]
        ended = [writer.tombstone(a, when, site) for a, when in tombstones] if writer.tombstone else []
        rendered[name] = frame.join(_capped(frame, fragments, ended, max_bytes) + ended)
    return rendered


def _capped(frame: Frame, fragments: list[bytes], ended: list[bytes], max_bytes: int) -> list[bytes]:
    """The newest fragments whose document stays within ``max_bytes`` (at least one)."""
    if not max_bytes:
        return fragments
    size = len(frame.head) + len(frame.tail) + sum(map(len, ended)) + len(frame.separator) * len(ended)
    kept = 0
    for fragment in fragments:
        size += len(fragment) + (len(frame.separator) if kept else 0)
        if size > max_bytes and kept:
            break
        kept += 1
    return fragments[:kept]


def _builder(writer: Writer, stored: StoredArticle, site: SiteInfo) -> Callable[[], bytes]:
    return lambda: writer.item(stored, site)


def write_feed(feeds_dir: Path, spec: FeedSpec, rendered: Mapping[str, bytes], *,
               page: int | None = None) -> dict[str, WrittenFile]:
    """Write each rendered format under ``feeds_dir``; unchanged files are left alone.
    With ``page``, the files are that archive page's (``all/archive/3.rss``).

    Keys of ``rendered`` are format names from ``FORMATS``; an unknown one raises
    KeyError. Raises ``ValidationError`` if a path would leave ``feeds_dir``.

    >>> write_feed(Path("var/feeds"), ALL, rendered)["rss"].relpath
    'all.rss'
    """
    written: dict[str, WrittenFile] = {}
    for name, data in rendered.items():
        relpath = ServedPath(spec, FORMATS[name], page).relpath()
        changed = write_atomically(feeds_dir / relpath, data, feeds_dir)
        written[name] = WrittenFile(relpath, content_etag(data), changed, len(data))
    return written
