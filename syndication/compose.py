"""Composing the text of a social post from an article and a channel's template.

The template is Jinja, rendered in a sandbox as plain text, with these variables:
``title``, ``summary`` (plain text), ``url``, ``section``, ``tags`` (list), ``hashtags``
(``"#Climate #COP30"``), ``mentions`` (``"@ada @bruno"``) and ``authors`` (list of names).

Length is the channel's own rule (``PostRules.length``: X's weighted length, Mastodon's
characters with every link at 23, Bluesky's graphemes...), and mentions are the handles its
rule finds (``PostRules.handle``). When the text is too long it is shortened in this
order: hashtags are dropped from the end, then the summary is cut, then the title, at a
word boundary (any character boundary for CJK) and never inside a grapheme (an emoji
ZWJ sequence, a flag, a skin tone, a letter with combining marks). The link and the
mentions are never cut.

The summary is cut before the title (not after): the headline is what a reader needs,
and a post reading "Cl…: <whole summary>" would be the worse outcome.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import jinja2
import regex
from jinja2.sandbox import SandboxedEnvironment

from config.site import ChannelConfig, StaffMember
from syndication.articles import Article
from syndication.channels.base import PostRules
from syndication.errors import ConfigError
from syndication.text import html_to_text, slugify

ELLIPSIS = "…"  # weighs 2 on X (outside its weight-1 ranges), still less than "..."
# Spec: X counting characters — U+FFFE, U+FEFF and U+FFFF make a post invalid (and no service wants them).
_INVALID = re.compile("[\ufffe\ufeff\uffff]")
_TRAILING = " \t\n,;:-–—/(["
# No cut that fits can keep more characters than this (each weighs at least 1, and only
# a very long link could make the kept part much longer than the limit).
_SEARCH_LIMIT = 4000

_env = SandboxedEnvironment(
    autoescape=False,               # plain text, not HTML
    undefined=jinja2.StrictUndefined,  # a misspelt variable is a config error, not a blank
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class ComposedPost:
    """A post ready for a channel, or the reason there is none.

    ``mentions`` are handles without "@". ``skipped`` is None when the post should be
    made; otherwise it says why not (``text`` is then empty or a best effort).
    """

    text: str
    weighted_length: int
    mentions: list[str] = field(default_factory=list)
    skipped: str | None = None


@dataclass(frozen=True)
class _Fields:
    """The parts of a post that may be shortened."""

    title: str
    summary: str
    hashtags: tuple[str, ...]


def template_for(channel_config: ChannelConfig, section: str | None) -> str:
    """The channel's template for ``section``: its per-section override when one matches
    (case-insensitively, or by slug: "Climate Change" ~ "climate-change"), else the default."""
    if section and section.strip():
        wanted = section.strip().casefold()
        wanted_slug = slugify(section)
        for key, template in channel_config.sections.items():
            if key.strip().casefold() == wanted or slugify(key) == wanted_slug:
                return template
    return channel_config.template


def compose_post(
    article: Article,
    *,
    template: str,
    staff: Mapping[str, StaffMember],
    mention_authors: bool,
    rules: PostRules,
    max_length: int = 280,
    template_name: str = "template",
) -> ComposedPost:
    """Render and fit the post for ``article``.

    ``article.social.text``, when set, replaces the template (it is never run as a
    template); the link is appended when missing. ``article.social.skip`` gives a skipped
    post. Mentions (the handles ``rules.handle`` finds: the author's own, else the staff
    list's) are appended when the text lacks them; length is ``rules.length``. Raises ``ConfigError`` naming ``template_name`` when the template is
    invalid or tries something the sandbox refuses.

    >>> from syndication.articles import parse_article
    >>> a = parse_article({"id": "a1", "url": "https://ex.org/a1", "title": "Hi",
    ...                    "published_at": "2026-05-01T09:30:00Z", "tags": ["COP 30"]})
    >>> compose_post(a, template="{{ title }} {{ url }} {{ hashtags }}", staff={}, mention_authors=True,
    ...              rules=PostRules(length=len)).text
    'Hi https://ex.org/a1 #COP30'
    """
    social = article.social
    if social is not None and social.skip:
        return ComposedPost("", 0, [], "the article asks not to be posted (social.skip)")
    mentions = _mentions(article, staff, rules) if mention_authors else []
    weight = rules.length
    url = article.url

    def finish(text: str) -> str:
        return _finish(text, url, mentions)

    if social is not None and social.text:
        result = _fit_social(social.text, url, finish, max_length, weight)
    else:
        compiled = _compile(template, template_name)
        base = {
            "url": url,
            "section": article.section or "",
            "tags": list(article.tags),
            "mentions": " ".join("@" + h for h in mentions),
            "authors": [a.name for a in article.authors],
        }

        def render(f: _Fields) -> str:
            values = {**base, "title": f.title, "summary": f.summary, "hashtags": " ".join(f.hashtags)}
            return finish(_render(compiled, values, template_name))

        fields = _Fields(article.title, html_to_text(article.summary) if article.summary else "",
                         tuple(_hashtags(article.tags)))
        result = _fit(render, fields, max_length, weight)
    text, length = result
    if length > max_length:
        return ComposedPost(text, length, mentions,
                            f"does not fit in {max_length} even shortened: the link, the mentions and "
                            f"the template's own text need {length}")
    return ComposedPost(text, length, mentions)


# -- mentions and hashtags -------------------------------------------------------------------


def _mentions(article: Article, staff: Mapping[str, StaffMember], rules: PostRules) -> list[str]:
    """Authors' handles on this channel: their own in the article, else the staff list's; deduplicated."""
    handles: dict[str, str] = {}
    for author in article.authors:
        handle = rules.handle(author, staff_member(staff, author.name))
        if handle:
            handles.setdefault(handle.casefold(), handle)
    return list(handles.values())


def staff_member(staff: Mapping[str, StaffMember], byline: str) -> StaffMember | None:
    """The ``[staff]`` entry for ``byline``, matched whatever its case and spacing."""
    key = _byline_key(byline)
    return next((member for name, member in staff.items() if _byline_key(name) == key), None)


def _byline_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _is_word_char(ch: str) -> bool:
    return ch == "_" or unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) == "Nd"


def hashtag(tag: str) -> str | None:
    """``"climate change"`` → ``"#ClimateChange"``; None when no hashtag can be made.

    Spec: X hashtags are letters, marks, digits and underscores, not digits alone.
    Apostrophes join ("women's" → "Womens"); other punctuation and spaces split words,
    which are CamelCased when there are several.
    """
    cleaned = re.sub(r"['’`ʼ]", "", tag.strip().lstrip("#＃"))
    words, current = [], []
    for ch in cleaned:
        if _is_word_char(ch):
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    if not words:
        return None
    body = words[0] if len(words) == 1 else "".join(w[:1].upper() + w[1:] for w in words)
    if not any(unicodedata.category(ch)[0] == "L" for ch in body):
        return None
    return "#" + body


def _hashtags(tags: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for tag in tags:
        made = hashtag(tag)
        if made:
            seen.setdefault(made.casefold(), made)
    return list(seen.values())


# -- rendering ----------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _compile_cached(source: str) -> jinja2.Template:
    return _env.from_string(source)


def _compile(source: str, name: str) -> jinja2.Template:
    try:
        return _compile_cached(source)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"channel template {name} is invalid: {exc}") from exc


def _render(compiled: jinja2.Template, values: dict[str, Any], name: str) -> str:
    try:
        return compiled.render(values)
    except jinja2.exceptions.SecurityError as exc:
        raise ConfigError(f"channel template {name} tried something the sandbox refuses: {exc}") from exc
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise ConfigError(f"channel template {name} failed to render: {exc}") from exc


def _finish(text: str, url: str, mentions: Sequence[str]) -> str:
    """Tidy white space, then make sure the link and every mention are there."""
    text = _INVALID.sub("", text)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if url not in text:
        text = f"{text} {url}".strip()
    for handle in mentions:
        if not re.search(rf"(?<![\w@])@{re.escape(handle)}(?!\w)", text, re.IGNORECASE):
            text = f"{text} @{handle}"
    # X counts (and stores) NFC, as the others do; measure what will be sent.
    return unicodedata.normalize("NFC", text)


# -- fitting -----------------------------------------------------------------------------------


def _fit(render: Callable[[_Fields], str], fields: _Fields, max_length: int,
         _weight: Callable[[str], int]) -> tuple[str, int]:
    """Shorten until the text fits: hashtags, then summary, then title. Returns the
    text and its weight; the weight is over ``max_length`` only when nothing fits."""
    text = render(fields)
    if _weight(text) <= max_length:
        return text, _weight(text)

    # 1. Hashtags, dropped from the end: keep the most that fit.
    if fields.hashtags:
        kept = _largest(len(fields.hashtags) - 1,
                        lambda k: _weight(render(replace(fields, hashtags=fields.hashtags[:k]))) <= max_length)
        fields = replace(fields, hashtags=fields.hashtags[:max(kept, 0)])
        if kept >= 0:
            text = render(fields)
            return text, _weight(text)

    # 2. The summary, if the template shows it; 3. the title.
    for name, floor in (("summary", ""), ("title", ELLIPSIS)):
        value = getattr(fields, name)
        if not value or render(replace(fields, **{name: floor})) == render(fields):
            continue
        shortened = _shorten(value, floor, lambda v: _weight(render(replace(fields, **{name: v}))) <= max_length)
        fields = replace(fields, **{name: shortened})
        text = render(fields)
        if _weight(text) <= max_length:
            return text, _weight(text)
    text = render(fields)
    return text, _weight(text)


def _fit_social(social_text: str, url: str, finish: Callable[[str], str], max_length: int,
                _weight: Callable[[str], int]) -> tuple[str, int]:
    """The editor's own text: as written when it fits; else cut, with the link moved to
    the end so the cut can never reach it."""
    text = finish(social_text)
    if _weight(text) <= max_length:
        return text, _weight(text)
    body = " ".join(social_text.replace(url, " ").split())
    shortened = _shorten(body, ELLIPSIS, lambda v: _weight(finish(f"{v} {url}")) <= max_length)
    text = finish(f"{shortened} {url}")
    return text, _weight(text)


def _largest(high: int, fits: Callable[[int], bool]) -> int:
    """The largest k in 0..high with fits(k), assuming fits is monotone; -1 if none."""
    low, best = 0, -1
    while low <= high:
        mid = (low + high) // 2
        if fits(mid):
            best, low = mid, mid + 1
        else:
            high = mid - 1
    return best


def _shorten(value: str, floor: str, fits: Callable[[str], bool]) -> str:
    """The longest cut of ``value`` ending in "…" that fits; ``floor`` when none does.

    Prefers a word boundary, unless that keeps less than half of what a cut at any
    grapheme boundary would (a long unbroken word, or text without spaces).
    """
    span = min(len(value), _SEARCH_LIMIT)
    graphemes = _grapheme_cuts(value, span)
    words = [i for i in graphemes if _word_boundary(value, i)]

    def best(cuts: list[int]) -> str | None:
        k = _largest(len(cuts) - 1, lambda k: fits(_cut(value, cuts[k])))
        return _cut(value, cuts[k]) if k >= 0 else None

    by_grapheme = best(graphemes)
    if by_grapheme is None:
        return floor
    by_word = best(words)
    if by_word is not None and len(by_word) * 2 >= len(by_grapheme):
        return by_word
    return by_grapheme


def _cut(value: str, index: int) -> str:
    kept = value[:index].rstrip(_TRAILING)
    return kept + ELLIPSIS if kept else ELLIPSIS


def _word_boundary(text: str, i: int) -> bool:
    """A place a line may break: at white space, or beside a wide (CJK, emoji) character."""
    before, after = text[i - 1], text[i]
    return (after.isspace() or before.isspace()
            or unicodedata.east_asian_width(before) in "WF" or unicodedata.east_asian_width(after) in "WF")


def _grapheme_cuts(text: str, span: int) -> list[int]:
    """Every index in ``1..span-1`` where a cut keeps each extended grapheme cluster whole."""
    # Spec: UAX #29 extended grapheme clusters, as the ``regex`` package's \X implements them for
    # the Unicode version it ships (flags, ZWJ emoji sequences, Hangul syllables, marks, CR LF).
    cuts, end = [], 0
    for cluster in regex.finditer(r"\X", text):
        end = cluster.end()
        if end >= span:
            break
        cuts.append(end)
    return cuts
