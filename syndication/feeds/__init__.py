"""Feeds: which exist (``catalog``), how they are rendered and how their files are written.

>>> files = write_feed(feeds_dir, ALL, render_formats(ALL, entries, site.site, now))
>>> files["atom"].relpath
'all.atom'
"""
from syndication.feeds.catalog import ALL, FORMATS, FeedSpec, Format, feeds_for, parse_key
from syndication.feeds.feedgen_adapter import render_atom, render_rss
from syndication.feeds.fields import entry_id
from syndication.feeds.files import content_etag, write_atomically
from syndication.feeds.fragments import FragmentCache
from syndication.feeds.jsonfeed import render_json
from syndication.feeds.render import WrittenFile, render_formats, write_feed

__all__ = [
    "ALL",
    "FORMATS",
    "FeedSpec",
    "Format",
    "FragmentCache",
    "WrittenFile",
    "content_etag",
    "entry_id",
    "feeds_for",
    "parse_key",
    "render_atom",
    "render_formats",
    "render_json",
    "render_rss",
    "write_atomically",
    "write_feed",
]
