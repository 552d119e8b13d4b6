"""Which feeds exist, what they are called and where their files go.

A feed is named by its key: ``all``, ``section/<slug>``, ``author/<slug>`` or
``tag/<slug>``. Keys come from slugs, never from client text as given, so a hostile
section such as ``../../etc/passwd`` cannot name a path outside the feeds folder.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from config import FeedsConfig
from syndication.articles import Article
from syndication.errors import FieldError, ValidationError
from syndication.text import slugify

KINDS = ("all", "section", "author", "tag")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,120})$")


@dataclass(frozen=True)
class Format:
    """A feed format: its file extension and media type."""

    name: str
    extension: str
    media_type: str
    charset: bool = True  # XML formats say charset=utf-8; JSON media types take no charset (RFC 8259 §11)

    @property
    def content_type(self) -> str:
        """The Content-Type header a served file of this format carries."""
        return self.media_type + ("; charset=utf-8" if self.charset else "")


# Spec: RFC 4287 §7 (application/atom+xml); JSON Feed 1.1 "MIME type"; RSS has no IANA
# registration but application/rss+xml is what every reader and autodiscovery expects.
FORMATS: dict[str, Format] = {
    "rss": Format("rss", "rss", "application/rss+xml"),
    "atom": Format("atom", "atom", "application/atom+xml"),
    "json": Format("json", "json", "application/feed+json", charset=False),
}
FORMAT_BY_EXTENSION = {f.extension: f for f in FORMATS.values()}


@dataclass(frozen=True, order=True)
class FeedSpec:
    """One feed, in every format."""

    kind: str
    slug: str = ""
    label: str = ""

    @property
    def key(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}/{self.slug}"

    def relpath(self, fmt: Format) -> str:
        """Path under the feeds folder, e.g. ``section/sport.rss``."""
        return f"{self.key}.{fmt.extension}"

    def path(self, feeds_dir: Path, fmt: Format) -> Path:
        return feeds_dir / self.relpath(fmt)

    def archive_relpath(self, fmt: Format, page: int) -> str:
        """Path of archive page ``page`` (from 1, the oldest), e.g. ``section/sport/archive/3.rss``."""
        return f"{self.key}/{ARCHIVE_DIR}/{page}.{fmt.extension}"

    def title(self, site_title: str) -> str:
        if self.kind == "all":
            return site_title
        return f"{site_title} — {self.kind.capitalize()}: {self.label or self.slug}"


ALL = FeedSpec("all")
# Spec: RFC 5005 §4 leaves archive URLs to the publisher. Pages live beside the current
# document, under "<key>/archive/<n>.<ext>"; a feed key never contains "/archive/" followed
# by digits only, so the two layouts cannot name the same file.
ARCHIVE_DIR = "archive"
_PAGE = re.compile(r"^[1-9][0-9]{0,8}$")


@dataclass(frozen=True)
class ServedPath:
    """A path under /feeds: a feed, its format and, for an archive document, its page (from 1)."""

    spec: FeedSpec
    fmt: Format
    page: int | None = None

    def relpath(self) -> str:
        return self.spec.relpath(self.fmt) if self.page is None else self.spec.archive_relpath(self.fmt, self.page)


def parse_key(key: str) -> FeedSpec:
    """Turn ``section/sport`` into a FeedSpec; raises ``ValidationError`` on anything else."""
    if key == "all":
        return ALL
    kind, _, slug = key.partition("/")
    if kind not in KINDS[1:] or not _SLUG.match(slug):
        raise ValidationError([FieldError("feed", f"{key!r} is not a feed key such as all, section/sport")])
    return FeedSpec(kind, slug)


def parse_relpath(relpath: str) -> tuple[FeedSpec, Format]:
    """Turn ``section/sport.rss`` into its feed and format, for any format in ``FORMATS``.

    Raises ``ValidationError`` for anything that is not a feed file's path, so a served path
    never comes from client text as given.
    """
    stem, dot, extension = relpath.rpartition(".")
    fmt = FORMAT_BY_EXTENSION.get(extension) if dot else None
    if fmt is None:
        raise ValidationError([FieldError("path", f"{relpath!r} does not end in a feed extension "
                                                  f"({', '.join(sorted(FORMAT_BY_EXTENSION))})")])
    return parse_key(stem), fmt


def parse_served_path(relpath: str) -> ServedPath:
    """Turn a path under /feeds into the file it names: a current document (``all.atom``) or an
    archive page (``all/archive/3.atom``). Raises ``ValidationError`` for anything else.
    """
    stem, sep, page = relpath.rpartition(f"/{ARCHIVE_DIR}/")
    if sep and "." in page:
        number, _, extension = page.partition(".")
        if _PAGE.match(number):
            spec, fmt = parse_relpath(f"{stem}.{extension}")
            return ServedPath(spec, fmt, int(number))
    spec, fmt = parse_relpath(relpath)
    return ServedPath(spec, fmt)


def _wanted(selection: str | list[str], value: str) -> bool:
    if selection == "*":
        return True
    return value.casefold() in {v.casefold() for v in selection}


def feeds_for(article: Article, config: FeedsConfig) -> list[FeedSpec]:
    """Every feed an article belongs to under this configuration (``all`` first)."""
    specs = [ALL]
    if article.section and _wanted(config.sections, article.section):
        specs.append(FeedSpec("section", slugify(article.section), article.section))
    for author in article.authors:
        if _wanted(config.authors, author.name):
            specs.append(FeedSpec("author", slugify(author.name), author.name))
    for tag in article.tags:
        if _wanted(config.tags, tag):
            specs.append(FeedSpec("tag", slugify(tag), tag))
    unique: dict[str, FeedSpec] = {}
    for spec in specs:
        unique.setdefault(spec.key, spec)
    return list(unique.values())
