"""Reading rendered feeds back the way readers do: lxml for the tree, feedparser for
what an aggregator makes of it."""
from __future__ import annotations

from typing import Any

import feedparser
from lxml import etree

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def xml(data: bytes) -> etree._Element:
    """The document element; raises ``etree.XMLSyntaxError`` if not well-formed."""
    return etree.fromstring(data, _PARSER)


def written_back(data: bytes) -> bytes:
    """The bytes lxml writes for the document it parsed from ``data``, whitespace kept.

    Equal to ``data`` when every character was escaped as libxml2 escapes it.
    """
    # pretty_print only adds the final newline: every element with children already has
    # whitespace text, so libxml2 indents nothing further.
    return etree.tostring(xml(data).getroottree(), xml_declaration=True, encoding="UTF-8", pretty_print=True)


def aggregate(data: bytes) -> Any:
    """What feedparser makes of the bytes (``.bozo`` is 1 when it had to guess)."""
    return feedparser.parse(data)


def texts(root: etree._Element, path: str) -> list[str]:
    """Text of every element matching ``path``."""
    return [el.text or "" for el in root.xpath(path, namespaces=NS)]
