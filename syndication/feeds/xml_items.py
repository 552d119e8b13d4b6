"""RSS 2.0 items and Atom 1.0 entries, one fragment of XML text per article.

The feed frames come from feedgen (``feedgen_adapter``); items are written here, as
text, exactly as lxml serialises what feedgen 1.0.0 builds for them after our repairs:
same elements, same order, same escaping, same two-space indentation at their depth.
Building them as lxml elements (each one a Python proxy object) made a render from
scratch cost as much as plain feedgen's; as text it costs about 0.6 of it
(bench/feed_render.py). Writing items ourselves also sidesteps three feedgen defects for good:
entries prepended unless ``order="append"`` (lkiesow/python-feedgen#55, #70), Atom entry
links that lose rel, type and length (#135, open), and ``length="None"`` on an RSS
enclosure of unknown size.

The tests parse every rendered feed with lxml and check that writing it out again gives
the same bytes: the escaping here is libxml2's.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from config import SiteInfo
from syndication.articles import Article, StoredArticle
from syndication.feeds.fields import as_utc, categories, entry_id, image_type
from syndication.text import html_to_text, strip_xml_invalid

ATOM_NS = "http://www.w3.org/2005/Atom"
# Spec: RFC 6721 §2 — the tombstones namespace.
TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
# The prefixes items use; feedgen_adapter checks that its frames declare exactly these.
RSS_NSMAP: dict[str | None, str] = {"atom": ATOM_NS, "content": CONTENT_NS, "dc": DC_NS}
ATOM_NSMAP: dict[str | None, str] = {None: ATOM_NS}
# Bump when what rss_item or atom_entry writes changes: cached fragments carry it.
ITEM_VERSION = "1"

# Spec: RFC 5322 §3.3 via RSS 2.0 — English day and month names, whatever the locale.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Spec: XML 1.0 §2.2 Char — what may not appear: the C0 controls other than tab, LF
# and CR (in UTF-8, single bytes that never occur inside a longer sequence), U+FFFE,
# U+FFFF, and lone surrogates (which cannot be encoded at all).
_FORBIDDEN_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))

Clean = Callable[[str], str]


def rss_item(stored: StoredArticle, site: SiteInfo) -> bytes:
    """One ``<item>`` as it appears in an RSS 2.0 channel, indentation and newline included.

    >>> rss_item(entry, site.site).startswith(b"    <item>")
    True
    """
    return _checked(lambda clean: _rss_item(stored.article, site, clean))


def atom_entry(stored: StoredArticle, site: SiteInfo) -> bytes:
    """One ``<entry>`` as it appears in an Atom 1.0 feed of ``site``.

    >>> atom_entry(entry, site.site).startswith(b"  <entry")
    True
    """
    return _checked(lambda clean: _atom_entry(stored, site, clean))


def atom_tombstone(article_id: str, withdrawn_at: datetime, site: SiteInfo) -> bytes:
    """One ``<at:deleted-entry>`` (RFC 6721) for a withdrawn article, after the feed's entries.

    The element declares its own namespace, so the feed's root keeps only the Atom one.

    >>> atom_tombstone("a1", when, site.site).startswith(b"  <at:deleted-entry")
    True
    """
    # Spec: RFC 6721 §2.1 — ref is the atom:id of the deleted entry (required), when the
    # time of deletion (required, an RFC 3339 date).
    attributes = _attributes(("ref", entry_id(site, article_id)), ("when", as_utc(withdrawn_at).isoformat()))
    return f'  <at:deleted-entry xmlns:at="{TOMBSTONE_NS}"{attributes}/>\n'.encode("utf-8")


def rfc822(moment: datetime) -> str:
    """An RSS date, ``Fri, 01 May 2026 08:30:00 +0000``, as feedgen writes it under the C locale.

    Never reads the process locale, so it needs no lock (see feedgen_adapter).
    """
    utc = as_utc(moment)
    return (f"{_DAYS[utc.weekday()]}, {utc.day:02d} {_MONTHS[utc.month - 1]} {utc.year} "
            f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d} +0000")


def _as_given(text: str) -> str:
    return text


def _checked(write: Callable[[Clean], str]) -> bytes:
    """UTF-8 of ``write(clean)``, text scrubbed when it holds characters XML 1.0 forbids."""
    data = _valid_utf8(write(_as_given))
    if data is None:
        # parse_article strips these characters on the way in, so this only runs for an
        # article that reached the store some other way: write it again with its text
        # scrubbed. Scrubbing up front would scan every body on every build.
        data = _valid_utf8(write(strip_xml_invalid))
    if data is None:  # in a URL, email or language, which parse_article validated
        raise ValueError("an item holds characters XML 1.0 forbids in a field that is not text")
    return data


def _valid_utf8(text: str) -> bytes | None:
    """``text`` as UTF-8, or None if it holds a character XML 1.0 forbids."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if len(data.translate(None, _FORBIDDEN_BYTES)) != len(data):
        return None
    if not text.isascii() and ("\ufffe" in text or "\uffff" in text):
        return None
    return data


# What libxml2 escapes when it writes text and attribute values (xmlEscapeContent,
# xmlBufAttrSerializeTxtContent): "&" first, so the others' ampersands stay.
def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _attr(value: str) -> str:
    return (_text(value).replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;"))


def _element(indent: str, tag: str, text: str | None, attributes: str = "") -> str:
    """One element with text, on its own line; empty text is written ``<tag/>``."""
    if text:
        return f"{indent}<{tag}{attributes}>{_text(text)}</{tag}>\n"
    return f"{indent}<{tag}{attributes}/>\n"


def _attributes(*pairs: tuple[str, str]) -> str:
    return "".join(f' {name}="{_attr(value)}"' for name, value in pairs)


def _rss_item(article: Article, site: SiteInfo, clean: Clean) -> str:
    at = "      "  # <rss><channel><item><child>: three levels deep
    # RSS readers render <title> as HTML (RSS 2.0 says nothing either way): tags are dropped
    # from the text, so a title of "<b>Budget</b>" or "<img onerror=…>" is text in every reader.
    out = ["    <item>\n", _element(at, "title", clean(html_to_text(article.title)) or article.url),
           _element(at, "link", article.url)]
    summary = clean(article.summary) if article.summary else None
    content = clean(article.content_html) if article.content_html else None
    if summary and content is not None:
        out.append(_element(at, "description", summary))
        # The body beside the summary; without a summary the body is the description.
        out.append(_element(at, "content:encoded", content))
    elif summary or content is not None:
        out.append(_element(at, "description", summary or content))
    names = [(name, author.email) for author in article.authors if (name := clean(author.name))]
    single = len(names) == 1 and bool(names[0][1])
    if single:
        # Spec: RSS 2.0 <item><author> — the author's email, in the customary
        # "email (Name)" form.
        out.append(_element(at, "author", f"{names[0][1]} ({names[0][0]})"))
    # Spec: RSS 2.0 <guid> — isPermaLink="false": an id, not a URL to open.
    out.append(_element(at, "guid", entry_id(site, article.id), ' isPermaLink="false"'))
    out.extend(_element(at, "category", term) for term in map(clean, categories(article)) if term)
    if article.image:
        # Spec: RSS 2.0 <enclosure> — url, length and type are all required; the RSS
        # Best Practices Profile says 0 when the size is unknown.
        out.append(_element(at, "enclosure", None, _attributes(
            ("url", article.image.url), ("length", str(article.image.length or 0)),
            ("type", image_type(article.image)))))
    out.append(_element(at, "pubDate", rfc822(article.published_at)))
    if names and not single:
        # Spec: RSS 2.0 allows one <author> per item, and the W3C validator warns when an
        # item has both <author> and dc:creator. So names without an email, and bylines
        # with several people, all go to dc:creator.
        out.extend(_element(at, "dc:creator", name) for name, _ in names)
    out.append("    </item>\n")
    return "".join(out)


def _atom_entry(stored: StoredArticle, site: SiteInfo, clean: Clean) -> str:
    article = stored.article
    at = "    "  # <feed><entry><child>: two levels deep
    language = article.language
    # Spec: RFC 4287 §2 — xml:lang on an entry overrides the feed's.
    lang = _attributes(("xml:lang", language)) if language and language != site.language else ""
    out = [f"  <entry{lang}>\n", _element(at, "id", entry_id(site, article.id)),
           _element(at, "title", clean(article.title) or article.url),
           _element(at, "updated", as_utc(stored.updated).isoformat())]
    for author in article.authors:
        name = clean(author.name)
        if name:
            out.append(f"{at}<author>\n")
            out.append(_element(at + "  ", "name", name))
            if author.email:
                out.append(_element(at + "  ", "email", author.email))
            if author.url:
                out.append(_element(at + "  ", "uri", author.url))
            out.append(f"{at}</author>\n")
    if article.content_html:
        out.append(_element(at, "content", clean(article.content_html), ' type="html"'))
    # Complete links, where feedgen 1.0.0 writes href only (#135): the enclosure would
    # otherwise read as a second rel="alternate" link, which RFC 4287 §4.1.1 forbids.
    out.append(_element(at, "link", None, _attributes(("href", article.url), ("rel", "alternate"),
                                                      ("type", "text/html"))))
    if article.image:
        enclosure = [("href", article.image.url), ("rel", "enclosure"), ("type", image_type(article.image))]
        if article.image.length is not None:
            # Spec: RFC 4287 §4.2.7.6 — length is advisory; left out when unknown.
            enclosure.append(("length", str(article.image.length)))
        out.append(_element(at, "link", None, _attributes(*enclosure)))
    if article.summary:
        out.append(_element(at, "summary", clean(article.summary), ' type="html"'))
    out.extend(_element(at, "category", None, _attributes(("term", term)))
               for term in map(clean, categories(article)) if term)
    out.append(_element(at, "published", as_utc(article.published_at).isoformat()))
    out.append("  </entry>\n")
    return "".join(out)
