"""What every feed format derives from the site and an article in the same way.

Ids, self URLs, dates, categories and enclosure types are computed here once, so RSS,
Atom and JSON Feed can never disagree about them.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
import posixpath
from urllib.parse import quote, urlsplit

from config import SiteInfo
from syndication.articles import Article, Image, StoredArticle
from syndication.feeds.catalog import FeedSpec, Format

# Spec: RFC 4151 §2.1 — the date in a tag URI only has to be one on which the tagging
# entity owned the authority name. A constant (not the article's date) means an id never
# changes when an article is edited, re-dated or moved to another section.
TAG_DATE = "2026"

# Deliberately not ``mimetypes.guess_type``: it reads /etc/mime.types, so two hosts could
# render different bytes for the same input.
_IMAGE_TYPES = {
    ".avif": "image/avif",
    ".gif": "image/gif",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}
DEFAULT_IMAGE_TYPE = "image/jpeg"


def _tag_uri(site: SiteInfo, specific: str) -> str:
    host = urlsplit(site.home).hostname or "localhost"
    return f"tag:{host},{TAG_DATE}:{specific}"


def entry_id(site: SiteInfo, article_id: str) -> str:
    """The permanent id of an article in every feed: ``tag:<host>,2026:<quoted id>``.

    It depends only on the site's host and the article id, never on the title, URL or
    revision, so readers do not show an edited article as new.

    >>> entry_id(site, "a/1 ü")
    'tag:news.example.org,2026:a%2F1%20%C3%BC'
    """
    # Spec: RFC 4151 §2.1 — "specific" is pchar / "/" / "?"; quoting everything outside
    # the unreserved set keeps any CMS id (slashes, spaces, non-ASCII) inside that grammar.
    return _tag_uri(site, quote(article_id, safe=""))


def feed_id(site: SiteInfo, spec: FeedSpec) -> str:
    """The permanent id of a feed (Atom ``feed/id``), independent of where it is served."""
    return _tag_uri(site, "feed/" + quote(spec.key, safe="/"))


def self_url(site: SiteInfo, spec: FeedSpec, fmt: Format) -> str:
    """The public URL of one feed file, e.g. ``https://ex.org/feeds/section/sport.rss``."""
    return f"{site.feeds_base}/{spec.relpath(fmt)}"


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is read as UTC (feedgen refuses naive dates)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def feed_updated(entries: Sequence[StoredArticle], generated_at: datetime) -> datetime:
    """When the feed last changed: the newest entry's ``updated``, else ``generated_at``.

    Not the wall clock, so rendering the same entries twice gives the same bytes.
    """
    if entries:
        return max(as_utc(stored.updated) for stored in entries)
    return as_utc(generated_at)


def categories(article: Article) -> list[str]:
    """The section, then the tags, without case-insensitive duplicates."""
    terms = ([article.section] if article.section else []) + list(article.tags)
    unique: dict[str, str] = {}
    for term in terms:
        unique.setdefault(term.casefold(), term)
    return list(unique.values())


def image_type(image: Image) -> str:
    """The media type of an enclosure: as given, else guessed from the URL's extension."""
    if image.type:
        return image.type
    suffix = posixpath.splitext(urlsplit(image.url).path)[1].lower()
    return _IMAGE_TYPES.get(suffix, DEFAULT_IMAGE_TYPE)
