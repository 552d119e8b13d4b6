"""One feed in every format: render the bytes, then write the files that changed."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from config import SiteInfo
from syndication.articles import StoredArticle
from syndication.feeds.catalog import FORMATS, FeedSpec
from syndication.feeds.feedgen_adapter import render_atom, render_rss
from syndication.feeds.files import content_etag, write_atomically
from syndication.feeds.jsonfeed import render_json

Renderer = Callable[[FeedSpec, Sequence[StoredArticle], SiteInfo, datetime], bytes]

RENDERERS: dict[str, Renderer] = {"rss": render_rss, "atom": render_atom, "json": render_json}


@dataclass(frozen=True)
class WrittenFile:
    """One feed file after ``write_feed``: where it is, its ETag, size and whether it changed."""

    relpath: str
    etag: str
    changed: bool
    size: int


def render_formats(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
                   generated_at: datetime) -> dict[str, bytes]:
    """Render a feed as RSS, Atom and JSON Feed: ``{"rss": ..., "atom": ..., "json": ...}``.

    ``entries`` are newest first, already limited, without withdrawn articles.

    >>> sorted(render_formats(ALL, entries, site.site, now))
    ['atom', 'json', 'rss']
    """
    return {name: render(spec, entries, site, generated_at) for name, render in RENDERERS.items()}


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
