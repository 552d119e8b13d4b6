"""One feed in every format: render the bytes (reusing cached items), then write the files that changed."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from config import SiteInfo
from syndication.articles import StoredArticle
from syndication.feeds import jsonfeed, xml_items
from syndication.feeds.catalog import FORMATS, FeedSpec
from syndication.feeds.feedgen_adapter import atom_frame, rss_frame
from syndication.feeds.files import content_etag, write_atomically
from syndication.feeds.fragments import FragmentCache, Frame, site_fingerprint
from syndication.feeds.jsonfeed import json_frame, json_item
from syndication.feeds.xml_items import atom_entry, rss_item


@dataclass(frozen=True)
class Writer:
    """How one format is written: its frame, built per render, and one item's fragment.

    ``version`` names what ``item`` writes; it is part of every cache key, so fragments
    written by another version are never joined into a document.
    """

    frame: Callable[[FeedSpec, Sequence[StoredArticle], SiteInfo, datetime], Frame]
    item: Callable[[StoredArticle, SiteInfo], bytes]
    version: str


# One line per format; the keys are those of catalog.FORMATS.
WRITERS: dict[str, Writer] = {
    "rss": Writer(rss_frame, rss_item, xml_items.ITEM_VERSION),
    "atom": Writer(atom_frame, atom_entry, xml_items.ITEM_VERSION),
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
                   generated_at: datetime, *, cache: FragmentCache | None = None) -> dict[str, bytes]:
    """Render a feed as RSS, Atom and JSON Feed: ``{"rss": ..., "atom": ..., "json": ...}``.

    ``entries`` are newest first, already limited, without withdrawn articles. With a
    ``cache``, an item already serialised for the same article id, revision, site
    settings and format version is joined in as it is; the bytes are the same as
    without one. The cache must only ever see entries from one store: an article id and
    revision name one version of an article only within one database.

    >>> sorted(render_formats(ALL, entries, site.site, now, cache=FragmentCache()))
    ['atom', 'json', 'rss']
    """
    rendered: dict[str, bytes] = {}
    fingerprint = site_fingerprint(site) if cache is not None else ""
    for name, writer in WRITERS.items():
        frame = writer.frame(spec, entries, site, generated_at)
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
        rendered[name] = frame.join(fragments)
    return rendered


def _builder(writer: Writer, stored: StoredArticle, site: SiteInfo) -> Callable[[], bytes]:
    return lambda: writer.item(stored, site)


def write_feed(feeds_dir: Path, spec: FeedSpec, rendered: Mapping[str, bytes]) -> dict[str, WrittenFile]:
    """Write each rendered format under ``feeds_dir``; unchanged files are left alone.

    Keys of ``rendered`` are format names from ``FORMATS``; an unknown one raises
    KeyError. Raises ``ValidationError`` if a path would leave ``feeds_dir``.

    >>> write_feed(Path("var/feeds"), ALL, rendered)["rss"].relpath
    'all.rss'
    """
    written: dict[str, WrittenFile] = {}
    for name, data in rendered.items():
        fmt = FORMATS[name]
        changed = write_atomically(spec.path(feeds_dir, fmt), data, feeds_dir)
        written[name] = WrittenFile(spec.relpath(fmt), content_etag(data), changed, len(data))
    return written
