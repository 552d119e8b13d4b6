"""How long rendering a 100-item feed takes: ours against plain feedgen on the same items.

    python -m bench.feed_render

prints medians in milliseconds over 50 renders, as JSON. "ours" includes the lxml
repair pass and the dc extension; "plain" is naive feedgen use (one FeedGenerator,
``add_entry`` per item, ``rss_str`` + ``atom_str``) and produces invalid Atom (#135).
"""
from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from feedgen.feed import FeedGenerator

from config import SiteInfo
from syndication.articles import StoredArticle, parse_article
from syndication.feeds import ALL, render_atom, render_json, render_rss

ITEMS = 100
RUNS = 50
_PARAGRAPH = (
    "The council voted on Tuesday to extend the harbour redevelopment, after a debate "
    "that ran past midnight. Residents of the old quarter said the plan would price "
    "them out; the mayor's office said 400 new homes would be affordable. "
)


def _site() -> SiteInfo:
    return SiteInfo(title="The Example Gazette", base_url="https://news.example.org/",
                    description="News from the example newsroom", language="en",
                    logo="https://news.example.org/static/logo.png",
                    copyright="© 2026 The Example Gazette", hubs=["https://hub.example.org/"])


def _entries() -> list[StoredArticle]:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)
    body = "".join(f"<p>{_PARAGRAPH}<a href=\"/related/{i}\">Related</a></p>" for i in range(14))
    entries = []
    for n in range(ITEMS):
        published = start - timedelta(minutes=17 * n)
        article = parse_article({
            "id": f"story-{n:04d}",
            "url": f"https://news.example.org/2026/05/story-{n:04d}",
            "title": f"Harbour plan approved after long night, story {n}",
            "summary": f"<p>{_PARAGRAPH}</p>",
            "content_html": body,
            "published_at": published.isoformat(),
            "section": ["Politics", "Sport", "Culture"][n % 3],
            "authors": [{"name": "Ada Reporter", "email": "ada@news.example.org"}]
            if n % 2 else [{"name": "Bruno Desk"}, {"name": "Cleo Wire"}],
            "tags": ["harbour", "council", f"topic-{n % 7}"],
            "image": {"url": f"https://news.example.org/img/{n}.jpg", "length": 120_000 + n},
        })
        entries.append(StoredArticle(article, 1, "published", "api", published, published))
    return entries


def _plain_feedgen(entries: list[StoredArticle], site: SiteInfo) -> tuple[bytes, bytes]:
    fg = FeedGenerator()
    fg.id(site.home)
    fg.title(site.title)
    fg.link(href=site.home, rel="alternate")
    fg.description(site.description)
    fg.language(site.language)
    for stored in entries:
        a = stored.article
        fe = fg.add_entry()
        fe.id(a.url)
        fe.title(a.title)
        fe.link(href=a.url)
        fe.summary(a.summary)
        fe.content(a.content_html, type="html")
        fe.published(a.published_at)
        fe.updated(stored.updated)
        for author in a.authors:
            fe.author(name=author.name, email=author.email)
        for term in a.tags:
            fe.category(term=term)
        if a.image:
            fe.enclosure(a.image.url, str(a.image.length or 0), "image/jpeg")
    return fg.rss_str(pretty=True), fg.atom_str(pretty=True)


def _medians_ms(variants: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median wall time of each variant; rounds interleave them so drift hits all alike."""
    for work in variants.values():
        work()  # warm up imports and caches
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(RUNS):
        for name, work in variants.items():
            started = time.perf_counter()
            work()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(times), 2) for name, times in samples.items()}


def run() -> dict[str, float]:
    """Median milliseconds to render the same 100 items three ways."""
    site, entries = _site(), _entries()
    now = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)

    def ours_xml() -> None:
        render_rss(ALL, entries, site, now)
        render_atom(ALL, entries, site, now)

    def ours_all() -> None:
        ours_xml()
        render_json(ALL, entries, site, now)

    return _medians_ms({
        "render_100_items_ms_ours_rss_atom_json": ours_all,
        "render_100_items_ms_ours_rss_atom": ours_xml,
        "render_100_items_ms_plain_feedgen_rss_atom": lambda: _plain_feedgen(entries, site),
    })


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
