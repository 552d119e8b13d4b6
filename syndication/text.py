"""Cleaning text for XML and the web: control characters, HTML, URLs, slugs."""
from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import quote, urljoin, urlsplit

import nh3

# Spec: XML 1.0 §2.2 Char — tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, U+10000–U+10FFFF.
# Everything else (C0 controls, lone surrogates, U+FFFE/U+FFFF) makes a feed ill-formed;
# feedgen/lxml raise ValueError on it, so it is stripped on the way in.
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dfn", "div",
    "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "ol": {"start"},
}
_URL_ATTRIBUTES = {"href", "src", "cite"}
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"
# An absolute http(s) URL that ``_absolute`` would return unchanged: only characters quote()
# keeps, and no dot segment for urljoin to resolve (RFC 3986 §5.2.4) nor empty part to drop.
_ALREADY_ABSOLUTE = re.compile(r"https?://[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]{1,5})?"
                               r"(?:[/?#][A-Za-z0-9\-_.~:/?#@!$&'()*+,=%]*)?")  # no ; (params) nor []
_DOT_SEGMENT = re.compile(r"/\.\.?(?:[/?#]|$)|[?#](?:#|$)")  # also an empty query or fragment: urljoin drops it


def strip_xml_invalid(text: str) -> str:
    """Remove the characters XML 1.0 forbids."""
    return _XML_INVALID.sub("", text)


def clean_html(html: str, base_url: str) -> str:
    """Sanitise HTML with an allow-list and make relative links absolute against ``base_url``.

    Scripts, styles, iframes, event handlers and ``javascript:`` URLs are removed.
    """

    def absolutise(tag: str, attribute: str, value: str) -> str | None:
        if attribute in _URL_ATTRIBUTES:
            return absolute_url(value, base_url)
        return value

    cleaned = nh3.clean(
        strip_xml_invalid(html),
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        attribute_filter=absolutise,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return strip_xml_invalid(cleaned)


def absolute_url(value: str, base_url: str) -> str:
    """``value`` resolved against ``base_url`` and percent-encoded where a URI may not hold it."""
    value = value.strip()
    if _ALREADY_ABSOLUTE.fullmatch(value) and not _DOT_SEGMENT.search(value):
        return value  # the common case, and most of ingest's time before this shortcut
    return quote(urljoin(base_url, value), safe=_URL_SAFE)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment (for posts and plain-text summaries)."""
    text = nh3.clean(html, tags=set(), attributes={})
    text = re.sub(r"\s+", " ", text).strip()
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&#39;", "'").replace("&nbsp;", " ").replace("&amp;", "&"))


def normalise_url(value: str) -> str:
    """Check an absolute http(s) URL and percent-encode what a URI may not hold.

    Raises ``ValueError`` with the reason.
    """
    value = value.strip()
    if len(value) > 2048:
        raise ValueError("longer than 2048 characters")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain white space")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an absolute http(s) URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    return quote(value, safe=_URL_SAFE)


def slugify(text: str, max_length: int = 80) -> str:
    """A path-safe ASCII slug: ``"Culture & Arts"`` → ``"culture-arts"``.

    Text whose letters are not ASCII (``"経済"``) gets a short stable hash, so two
    different names never share a file. The result never contains ``/`` or dots.
    """
    folded = unicodedata.normalize("NFKD", text)
    ascii_part = folded.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_part).strip("-")[:max_length].strip("-")
    lossy = any(
        ch.isalnum() and not ch.isascii() and unicodedata.category(ch)[0] in "LN"
        for ch in folded
    )
    if lossy or not slug:
        digest = hashlib.sha1(text.strip().casefold().encode("utf-8", "surrogatepass")).hexdigest()[:10]
        slug = f"{slug}-{digest}" if slug else f"x-{digest}"
    return slug
