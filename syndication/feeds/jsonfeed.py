"""JSON Feed 1.1 documents (https://jsonfeed.org/version/1.1), written with the stdlib.

Ids, dates, categories and enclosure types come from ``fields``, so an item here has
the same id as the RSS guid and the Atom id. Keys are written in a fixed order and null
fields are left out, so the same entries give byte-identical output. Each item is
dumped on its own (a fragment, see ``fragments``): a compact JSON array is its items
joined by commas, so the joined document is what dumping it whole would give.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from config import SiteInfo
from syndication.articles import Article, Image, StoredArticle
from syndication.feeds.catalog import FORMATS, FeedSpec
from syndication.feeds.fields import as_utc, categories, entry_id, image_type
from syndication.feeds.fragments import Frame
from syndication.feeds.paging import CURRENT, Paging
from syndication.text import html_to_text, strip_xml_invalid

VERSION = "https://jsonfeed.org/version/1.1"
# Bump when what json_item writes changes: cached fragments carry it.
ITEM_VERSION = "1"
_TAIL = "]}\n"  # closes the items array and the top-level object


def render_json(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
                generated_at: datetime) -> bytes:
    """Render one feed as JSON Feed 1.1, UTF-8, items in the order given.

    ``generated_at`` is accepted for symmetry with ``render_rss``: JSON Feed has no
    feed-level date, so it does not affect the output.

    >>> json.loads(render_json(ALL, entries, site.site, now))["version"]
    'https://jsonfeed.org/version/1.1'
    """
    return json_frame(spec, entries, site, generated_at).join([json_item(s, site) for s in entries])


def json_frame(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
               generated_at: datetime, paging: Paging = CURRENT) -> Frame:
    """The top-level object around ``items``: everything up to ``"items":[`` and ``]}``.

    ``paging`` places it among the feed's archive pages: ``next_url`` leads to older items."""
    fmt = FORMATS["json"]
    del entries, generated_at  # Spec: JSON Feed 1.1 "Top-level" has no updated/lastBuildDate.
    title = spec.title(site.title) or site.home
    feed: dict[str, Any] = {
        "version": VERSION,
        "title": title,
        "home_page_url": site.home,
        "feed_url": paging.self_href(site, spec, fmt),
        "description": site.description or None,
        "icon": str(site.logo) if site.logo else None,
        "favicon": str(site.logo) if site.logo else None,
        "authors": [{"name": site.title or site.home, "url": site.home}],
        "language": site.language,
        # Spec: JSON Feed 1.1 "hubs" — endpoints for real-time notification; WebSub here.
        "hubs": [{"type": "WebSub", "url": str(hub)} for hub in site.hubs] or None,
        # Spec: JSON Feed 1.1 "next_url" — the URL of a feed with the next (older) items.
        "next_url": paging.older(site, spec, fmt),
        "items": [],  # last, so the items go between the head and _TAIL
    }
    head = _dump(feed) + "\n"
    if not head.endswith("[" + _TAIL):
        raise RuntimeError("the JSON Feed top level does not end with its items")
    return Frame(_encode(head[:-len(_TAIL)]), _TAIL.encode(), b",")


def json_item(stored: StoredArticle, site: SiteInfo) -> bytes:
    """One item object of a JSON Feed, UTF-8."""
    return _encode(_dump(_item(stored, site)))


def _dump(value: dict[str, Any]) -> str:
    # Compact on purpose: with ``indent`` the stdlib falls back to its pure-Python
    # encoder, several times slower for a 100-item feed.
    return json.dumps(_without_nulls(value), ensure_ascii=False, separators=(",", ":"))


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (never from parse_article, which strips them) cannot be UTF-8.
        # Removing characters inside string literals cannot break the JSON around them.
        return strip_xml_invalid(text).encode("utf-8")


def _item(stored: StoredArticle, site: SiteInfo) -> dict[str, Any]:
    article = stored.article
    content_html = article.content_html or article.summary
    return {
        "id": entry_id(site, article.id),
        "url": article.url,
        "title": article.title,
        "content_html": content_html or None,
        # Spec: JSON Feed 1.1 — one of content_html/content_text must be present.
        "content_text": None if content_html else "",
        # Spec: JSON Feed 1.1 "summary" is plain text; ours is cleaned HTML.
        "summary": html_to_text(article.summary) if article.summary else None,
        "image": article.image.url if article.image else None,
        "date_published": as_utc(article.published_at).isoformat(),
        "date_modified": as_utc(stored.updated).isoformat(),
        "authors": _authors(article) or None,
        "tags": categories(article) or None,
        "language": article.language,
        "attachments": [_attachment(article.image)] if article.image else None,
    }


def _authors(article: Article) -> list[dict[str, Any]]:
    # Spec: JSON Feed 1.1 "authors" — name, url, avatar; there is no email field.
    return [{"name": a.name, "url": a.url} for a in article.authors if a.name]


def _attachment(image: Image) -> dict[str, Any]:
    return {
        "url": image.url,
        "mime_type": image_type(image),
        # Spec: JSON Feed 1.1 "size_in_bytes" is optional; left out when unknown.
        "size_in_bytes": image.length,
    }


def _without_nulls(value: Any) -> Any:
    """Drop ``None`` values from every object, recursively (JSON Feed: omit, not null)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
