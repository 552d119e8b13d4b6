"""RSS 2.0 and Atom 1.0 documents, built with feedgen: the only module that imports it.

feedgen is given aware UTC dates and the entries in order. Its output is parsed back
with lxml, repaired where feedgen 1.0.0 is wrong, and serialised pretty-printed as
UTF-8 with an XML declaration. The output depends only on the arguments: the same
entries give byte-identical files.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree

from config import SiteInfo
from syndication.articles import Article, StoredArticle
from syndication.feeds.catalog import FORMATS, FeedSpec, Format
from syndication.feeds.fields import (
    as_utc,
    categories,
    entry_id,
    feed_id,
    feed_updated,
    image_type,
    self_url,
)
from syndication.text import strip_xml_invalid

ATOM_NS = "http://www.w3.org/2005/Atom"
_ATOM_LINK = f"{{{ATOM_NS}}}link"
_ATOM_ENTRY = f"{{{ATOM_NS}}}entry"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

Clean = Callable[[str], str]

# feedgen.util.formatRFC2822 (called by rss_str for every pubDate and lastBuildDate)
# reads the process-wide locale, switches LC_ALL to "C" and back: the fix for localised
# day names from lkiesow/python-feedgen#26. setlocale is process-global and not
# thread-safe, so two threads rendering RSS at once can format a date under the other's
# locale or restore the wrong one. Every RSS build holds this lock. Atom dates use
# isoformat(), which never reads the locale, so Atom needs no lock.
_LOCALE_LOCK = threading.Lock()

# For reading feedgen's output back. Repairs work on the parsed document rather than on
# feedgen's private _create_atom() tree, which is not namespaced (it writes xmlns as a
# plain attribute): only the serialised form is real Atom. No entities, no network;
# huge_tree lifts libxml2's 10 MB text-node limit, which a body at Article's
# 2,000,000-character cap can reach in UTF-8 - the input is our own output anyway.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def render_rss(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
               generated_at: datetime) -> bytes:
    """Render one feed as RSS 2.0.

    ``entries`` are already newest first, limited and without withdrawn articles; they
    are written in the order given. ``generated_at`` is only used as ``lastBuildDate``
    when there are no entries.

    >>> render_rss(ALL, entries, site.site, now).startswith(b"<?xml")
    True
    """
    return _render(lambda clean: _rss_tree(spec, entries, site, generated_at, clean))


def render_atom(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
                generated_at: datetime) -> bytes:
    """Render one feed as Atom 1.0 (RFC 4287); same contract as ``render_rss``.

    >>> render_atom(ALL, entries, site.site, now).startswith(b"<?xml")
    True
    """
    return _render(lambda clean: _atom_tree(spec, entries, site, generated_at, clean))


def _as_given(text: str) -> str:
    return text


def _render(build: Callable[[Clean], etree._Element]) -> bytes:
    try:
        root = build(_as_given)
    except ValueError:
        # lxml checks every string it is given and refuses characters XML 1.0 forbids
        # with ValueError (UnicodeEncodeError for lone surrogates). parse_article strips
        # them on the way in, so this only runs for an article that reached the store
        # some other way: build again with all text scrubbed. Scrubbing up front instead
        # would scan every article body again, per format, on every render.
        root = build(strip_xml_invalid)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8",
                          pretty_print=True)


def _rss_tree(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
              generated_at: datetime, clean: Clean) -> etree._Element:
    fg = _feed(spec, entries, site, generated_at, FORMATS["rss"], clean)
    # Spec: RSS 2.0 <channel> — description is required; fall back to the title.
    fg.description(clean(site.description) or clean(spec.title(site.title)) or site.home)
    # add_entry attaches the extensions loaded so far, so this comes first. RSS only:
    # Atom has its own <author>.
    fg.load_extension("dc", atom=False, rss=True)
    for stored in entries:
        # add_entry prepends by default (lkiesow/python-feedgen#55; the order argument
        # came with #70). Entries arrive newest first and must stay that way.
        _rss_item(fg.add_entry(order="append"), stored.article, site, clean)
    with _LOCALE_LOCK:
        raw = fg.rss_str(pretty=False)
    root = etree.fromstring(raw, _PARSER)
    _add_rss_hubs(root, site)
    return root


def _atom_tree(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
               generated_at: datetime, clean: Clean) -> etree._Element:
    fg = _feed(spec, entries, site, generated_at, FORMATS["atom"], clean)
    if site.description:
        fg.subtitle(clean(site.description))
    # Spec: RFC 4287 §4.1.1 — every entry needs an author, its own or the feed's. The
    # publication is the feed's author, so entries without a byline stay valid.
    fg.author({"name": clean(site.title) or site.home, "uri": site.home})
    links = [_atom_entry(fg.add_entry(order="append"), s, site, clean) for s in entries]
    root = etree.fromstring(fg.atom_str(pretty=False), _PARSER)
    _repair_atom_entries(root, entries, links, site)
    return root


def _feed(spec: FeedSpec, entries: Sequence[StoredArticle], site: SiteInfo,
          generated_at: datetime, fmt: Format, clean: Clean) -> FeedGenerator:
    """The channel/feed elements that RSS and Atom share."""
    fg = FeedGenerator()
    fg.id(feed_id(site, spec))
    fg.title(clean(spec.title(site.title)) or site.home)
    # Spec: RFC 4287 §4.2.7.2 / RSS Best Practices Profile "atom:link" — a self link
    # carrying the feed's own media type.
    fg.link(href=self_url(site, spec, fmt), rel="self", type=fmt.media_type)
    for hub in site.hubs:
        # Spec: WebSub §4 — discovery by rel="hub" links beside rel="self". feedgen
        # writes these in Atom; _add_rss_hubs adds them to RSS.
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


def _common_entry(fe: FeedEntry, article: Article, site: SiteInfo, clean: Clean) -> None:
    """Fields RSS and Atom set the same way: id, title, date, text, categories."""
    fe.id(entry_id(site, article.id))  # RSS: <guid isPermaLink="false">
    fe.title(clean(article.title) or article.url)
    fe.published(as_utc(article.published_at))
    if article.summary:
        fe.summary(clean(article.summary), type="html")
    if article.content_html:
        # RSS: <content:encoded> beside the summary, or <description> when there is none.
        fe.content(clean(article.content_html), type="html")
    terms = [{"term": term} for term in map(clean, categories(article)) if term]
    if terms:
        fe.category(terms)


def _rss_item(fe: FeedEntry, article: Article, site: SiteInfo, clean: Clean) -> None:
    _common_entry(fe, article, site, clean)
    fe.link(href=article.url, rel="alternate")
    if article.image:
        # Spec: RSS 2.0 <enclosure> — url, length and type are all required; the RSS
        # Best Practices Profile says 0 when the size is unknown. (fe.enclosure() with
        # length=None would write length="None".)
        fe.link(href=article.image.url, rel="enclosure", type=image_type(article.image),
                length=str(article.image.length or 0))
    names = [(name, author.email) for author in article.authors if (name := clean(author.name))]
    if len(names) == 1 and names[0][1]:
        # Spec: RSS 2.0 <item><author> — the author's email; feedgen writes the customary
        # "email (Name)" form.
        fe.author(name=names[0][0], email=names[0][1])
    elif names:
        # Spec: RSS 2.0 allows one <author> per item, and the W3C validator warns when an
        # item has both <author> and dc:creator. So names without an email, and bylines
        # with several people, all go to dc:creator.
        fe.dc.dc_creator([name for name, _ in names])


def _atom_entry(fe: FeedEntry, stored: StoredArticle, site: SiteInfo,
                clean: Clean) -> list[dict[str, str]]:
    """Fill an Atom entry; return the links it must carry (see _repair_atom_entries)."""
    article = stored.article
    _common_entry(fe, article, site, clean)
    fe.updated(as_utc(stored.updated))
    links = [{"href": article.url, "rel": "alternate", "type": "text/html"}]
    if article.image:
        enclosure = {"href": article.image.url, "rel": "enclosure",
                     "type": image_type(article.image)}
        if article.image.length is not None:
            # Spec: RFC 4287 §4.2.7.6 — length is advisory; left out when unknown.
            enclosure["length"] = str(article.image.length)
        links.append(enclosure)
    # feedgen needs the alternate link to accept an entry without content
    # (RFC 4287 §4.1.1); it modifies the dicts it is given, so it gets copies.
    fe.link([dict(link) for link in links])
    for author in article.authors:
        person: dict[str, Any] = {"name": clean(author.name)}
        if author.email:
            person["email"] = author.email
        if author.url:
            person["uri"] = author.url
        if person["name"]:
            fe.author(person)
    return links


def _repair_atom_entries(root: etree._Element, entries: Sequence[StoredArticle],
                         links: list[list[dict[str, str]]], site: SiteInfo) -> None:
    """Put back what feedgen leaves out of Atom entries.

    feedgen 1.0.0 writes entry links with ``href`` only: the loop variable is rebound to
    the new element before rel/type/length are read (lkiesow/python-feedgen#135, open).
    The enclosure then reads as a second rel="alternate" link, which RFC 4287 §4.1.1
    forbids. The links feedgen wrote are replaced by complete ones in the same place.
    """
    elements = root.findall(_ATOM_ENTRY)
    if len(elements) != len(entries):  # feedgen changed shape: fail loudly, not silently
        raise RuntimeError(f"feedgen wrote {len(elements)} Atom entries for {len(entries)}")
    for element, stored, wanted in zip(elements, entries, links):
        old = element.findall(_ATOM_LINK)
        at = element.index(old[0]) if old else len(element)
        for link in old:
            element.remove(link)
        for offset, attributes in enumerate(wanted):
            element.insert(at + offset, etree.Element(_ATOM_LINK, attributes))
        language = stored.article.language
        if language and language != site.language:
            # Spec: RFC 4287 §2 — xml:lang on an entry overrides the feed's.
            element.set(_XML_LANG, language)


def _add_rss_hubs(root: etree._Element, site: SiteInfo) -> None:
    """Add ``<atom:link rel="hub">`` after the self link; feedgen writes only rel=self."""
    if not site.hubs:
        return
    channel = root.find("channel")
    self_link = channel.find(_ATOM_LINK) if channel is not None else None
    if channel is None or self_link is None:
        raise RuntimeError("feedgen wrote no RSS channel self link")
    at = channel.index(self_link) + 1
    for offset, hub in enumerate(site.hubs):
        # Spec: WebSub §4 — in RSS the links use the Atom namespace, like rel="self".
        channel.insert(at + offset, etree.Element(_ATOM_LINK, {"href": str(hub), "rel": "hub"}))
