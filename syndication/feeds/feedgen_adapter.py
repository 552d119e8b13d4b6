"""RSS 2.0 and Atom 1.0 documents: frames built with feedgen, the only module that imports it.

feedgen writes the channel or feed elements (title, links, dates, logo, rights) from
aware UTC dates; its output is parsed back with lxml, repaired where feedgen 1.0.0 is
wrong, and serialised pretty-printed as UTF-8 with an XML declaration, then cut where
the items go. The items themselves are written by ``xml_items``, one fragment each
(see ``fragments``). The output depends only on the arguments: the same entries give
byte-identical files.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from feedgen.feed import FeedGenerator
from lxml import etree

from config import SiteInfo
from syndication.articles import StoredArticle
from syndication.feeds.catalog import FORMATS, FeedSpec, Format
from syndication.feeds.fields import feed_id, feed_updated
from syndication.feeds.fragments import Frame
from syndication.feeds.paging import CURRENT, FH_NS, Paging
from syndication.feeds.xml_items import ATOM_NS, ATOM_NSMAP, RSS_NSMAP, atom_entry, rss_item
from syndication.text import strip_xml_invalid

_ATOM_LINK = f"{{{ATOM_NS}}}link"
# Where the items go: after the last channel (or feed) element, before these closing tags.
_RSS_TAIL = b"  </channel>\n</rss>\n"
_ATOM_TAIL = b"</feed>\n"

Clean = Callable[[str], str]

# feedgen.util.formatRFC2822 (called by rss_str for lastBuildDate) reads the
# process-wide locale, switches LC_ALL to "C" and back: the fix for localised day names
# from lkiesow/python-feedgen#26. setlocale is process-global and not thread-safe, so
# two threads rendering RSS at once can format a date under the other's locale or
# restore the wrong one. Every RSS frame holds this lock. Atom dates use isoformat(),
# which never reads the locale, and item dates come from xml_items.rfc822, which never
# reads it either.
_LOCALE_LOCK = threading.Lock()

# For reading feedgen's output back. Repairs work on the parsed document rather than on
# feedgen's private _create_atom() tree, which is not namespaced (it writes xmlns as a
# plain attribute): only the serialised form is real Atom. No entities, no network.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def render_rss(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
               generated_at: datetime) -> bytes:
    """Render one feed as RSS 2.0, every item serialised afresh.

    ``entries`` are already newest first, limited and without withdrawn articles; they
    are written in the order given. ``generated_at`` is only used as ``lastBuildDate``
    when there are no entries. ``render_formats`` gives the same bytes, reusing items.

    >>> render_rss(ALL, entries, site.site, now).startswith(b"<?xml")
    True
    """
    return rss_frame(spec, entries, site, generated_at).join([rss_item(s, site) for s in entries])


def render_atom(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
                generated_at: datetime) -> bytes:
    """Render one feed as Atom 1.0 (RFC 4287); same contract as ``render_rss``.

    >>> render_atom(ALL, entries, site.site, now).startswith(b"<?xml")
    True
    """
    return atom_frame(spec, entries, site, generated_at).join([atom_entry(s, site) for s in entries])


def rss_frame(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
              generated_at: datetime, paging: Paging = CURRENT) -> Frame:
    """The RSS document around its items: ``<rss><channel>`` and its elements, then the
    closing tags. ``entries`` only date it (``lastBuildDate``); they are not written.
    ``paging`` places it among the feed's archive documents (RFC 5005)."""
    return _frame(lambda clean: _rss_tree(spec, entries, site, generated_at, clean, paging), RSS_NSMAP, _RSS_TAIL)


def atom_frame(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
               generated_at: datetime, paging: Paging = CURRENT) -> Frame:
    """The Atom document around its entries; same contract as ``rss_frame``."""
    return _frame(lambda clean: _atom_tree(spec, entries, site, generated_at, clean, paging), ATOM_NSMAP,
                  _ATOM_TAIL)


def _as_given(text: str) -> str:
    return text


def _frame(build: Callable[[Clean], etree._Element], nsmap: dict[str | None, str], tail: bytes) -> Frame:
    try:
        root = build(_as_given)
    except ValueError:
        # lxml checks every string it is given and refuses characters XML 1.0 forbids
        # with ValueError (UnicodeEncodeError for lone surrogates). Site settings are not
        # cleaned like articles are: build again with all text scrubbed. Items have
        # their own fallback (xml_items).
        root = build(strip_xml_invalid)
    # Items are serialised under the prefixes xml_items declares; if feedgen ever
    # declares others, a joined document would use undeclared prefixes: fail loudly.
    if dict(root.nsmap) != nsmap:
        raise RuntimeError(f"feedgen declared {dict(root.nsmap)}, items are written for {nsmap}")
    data = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    if not data.endswith(tail):
        raise RuntimeError("feedgen wrote something after the place of the items")
    return Frame(data[:len(data) - len(tail)], tail)


def _rss_tree(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
              generated_at: datetime, clean: Clean, paging: Paging) -> etree._Element:
    fmt = FORMATS["rss"]
    fg = _feed(spec, entries, site, generated_at, fmt, clean, paging)
    # Spec: RSS 2.0 <channel> — description is required; fall back to the title.
    fg.description(clean(site.description) or clean(spec.title(site.title)) or site.home)
    # Declares xmlns:dc on <rss>, for the dc:creator of items. RSS only: Atom has its
    # own <author>.
    fg.load_extension("dc", atom=False, rss=True)
    with _LOCALE_LOCK:
        raw = fg.rss_str(pretty=False)
    root = etree.fromstring(raw, _PARSER)
    _add_rss_links(root, [("hub", str(hub)) for hub in site.hubs] + paging.links(site, spec, fmt))
    if paging.archive:
        _mark_archive(root.find("channel"))
    return root


def _atom_tree(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
               generated_at: datetime, clean: Clean, paging: Paging) -> etree._Element:
    fmt = FORMATS["atom"]
    fg = _feed(spec, entries, site, generated_at, fmt, clean, paging)
    for rel, href in paging.links(site, spec, fmt):
        # Spec: RFC 5005 §4 — current, prev-archive and next-archive links; feedgen writes
        # them in Atom only, so RSS gets them from _add_rss_links.
        fg.link(href=href, rel=rel, type=fmt.media_type)
    if site.description:
        fg.subtitle(clean(site.description))
    # Spec: RFC 4287 §4.1.1 — every entry needs an author, its own or the feed's. The
    # publication is the feed's author, so entries without a byline stay valid.
    fg.author({"name": clean(site.title) or site.home, "uri": site.home})
    root = etree.fromstring(fg.atom_str(pretty=False), _PARSER)
    if paging.archive:
        _mark_archive(root)
    return root


def _mark_archive(parent: etree._Element | None) -> None:
    """Add ``<fh:archive/>``, declaring its namespace on itself: the frame's root keeps exactly
    the prefixes the items are written for."""
    if parent is None:
        raise RuntimeError("feedgen wrote no channel")
    # Spec: RFC 5005 §4 — "archive documents ... MUST contain an fh:archive element".
    etree.SubElement(parent, f"{{{FH_NS}}}archive", nsmap={"fh": FH_NS})


def _feed(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
          generated_at: datetime, fmt: Format, clean: Clean, paging: Paging) -> FeedGenerator:
    """The channel/feed elements that RSS and Atom share."""
    fg = FeedGenerator()
    fg.id(feed_id(site, spec))
    fg.title(clean(spec.title(site.title)) or site.home)
    # Spec: RFC 4287 §4.2.7.2 / RSS Best Practices Profile "atom:link" — a self link
    # carrying the feed's own media type.
    fg.link(href=paging.self_href(site, spec, fmt), rel="self", type=fmt.media_type)
    for hub in site.hubs:
        # Spec: WebSub §4 — discovery by rel="hub" links beside rel="self". feedgen
        # writes these in Atom; _add_rss_links adds them to RSS.
        fg.link(href=str(hub), rel="hub")
    # Last on purpose: feedgen uses the last feed link as the RSS <channel><link>.
    fg.link(href=site.home, rel="alternate", type="text/html")
    fg.language(site.language)
    if site.logo:
        # Atom <logo> and RSS <image>, whose title and link default to the channel's
        # (the W3C validator warns when they differ).
        fg.logo(str(site.logo))
    if site.copyright:
        fg.rights(clean(site.copyright))
    # Spec: RSS 2.0 lastBuildDate / RFC 4287 §4.2.15 — from the entries, not the clock.
    fg.updated(feed_updated(entries, generated_at))
    return fg


def _add_rss_links(root: etree._Element, links: Sequence[tuple[str, str]]) -> None:
    """Add an ``<atom:link>`` for each (rel, href) after the self link; feedgen writes only rel=self."""
    if not links:
        return
    channel = root.find("channel")
    self_link = channel.find(_ATOM_LINK) if channel is not None else None
    if channel is None or self_link is None:
        raise RuntimeError("feedgen wrote no RSS channel self link")
    at = channel.index(self_link) + 1
    for offset, (rel, href) in enumerate(links):
        # Spec: WebSub §4 and RFC 5005 §3 — in RSS the links use the Atom namespace, like rel="self".
        channel.insert(at + offset, etree.Element(_ATOM_LINK, {"href": href, "rel": rel}))
