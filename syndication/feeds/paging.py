"""Where a feed document sits among its archive documents (RFC 5005 §4), and its links.

The current document (``all.atom``) points at the newest archive page; each page points
at the pages before and after it and at the current document. Pages count from 1, the
oldest. JSON Feed has one link, ``next_url``, which leads to older items.
"""
from __future__ import annotations

from dataclasses import dataclass

from config import SiteInfo
from syndication.feeds.catalog import FeedSpec, Format
from syndication.feeds.fields import self_url

# Spec: RFC 5005 §4 — the fh:archive element marks an archive document.
FH_NS = "http://purl.org/syndication/history/1.0"


@dataclass(frozen=True)
class Paging:
    """A document's place: ``page`` None for the current document, else its page number."""

    page: int | None
    page_count: int

    @property
    def archive(self) -> bool:
        return self.page is not None

    def self_href(self, site: SiteInfo, spec: FeedSpec, fmt: Format) -> str:
        return self_url(site, spec, fmt) if self.page is None else page_url(site, spec, fmt, self.page)

    def links(self, site: SiteInfo, spec: FeedSpec, fmt: Format) -> list[tuple[str, str]]:
        """(rel, href) of the archive links this document carries, in document order."""
        if self.page is None:
            # Spec: RFC 5005 §4 — a current document links to the newest archive document.
            return [("prev-archive", page_url(site, spec, fmt, self.page_count))] if self.page_count else []
        links = [("current", self_url(site, spec, fmt))]
        if self.page > 1:
            links.append(("prev-archive", page_url(site, spec, fmt, self.page - 1)))
        if self.page < self.page_count:
            links.append(("next-archive", page_url(site, spec, fmt, self.page + 1)))
        return links

    def older(self, site: SiteInfo, spec: FeedSpec, fmt: Format) -> str | None:
        """The document with the next older items (JSON Feed ``next_url``), if any."""
        return dict(self.links(site, spec, fmt)).get("prev-archive")


CURRENT = Paging(None, 0)


def page_url(site: SiteInfo, spec: FeedSpec, fmt: Format, page: int) -> str:
    """The public URL of one archive page, e.g. ``https://ex.org/feeds/all/archive/3.atom``."""
    return f"{site.feeds_base}/{spec.archive_relpath(fmt, page)}"
