"""How long rendering a feed takes: ours against plain feedgen on the same items.

    python -m bench.feed_render

prints medians in milliseconds over 50 renders, as JSON. "ours" cold is a render from
scratch (feedgen frames with our repairs, items written with lxml); "plain" is naive
feedgen use (one FeedGenerator, ``add_entry`` per item, ``rss_str`` + ``atom_str``),
which produces invalid Atom (#135). ``render_ratio_to_feedgen`` divides our cold
100-item RSS + Atom render by plain feedgen's. ``render_50_items_one_changed_ms`` is
the steady state of a worker: a 50-item feed, all three formats, rendered again after
one of its items changed, every other item reused from the fragment cache.
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
from syndication.feeds import ALL, FragmentCache, render_atom, render_formats, render_json, render_rss

ITEMS = 100
WINDOW = 50  # items per feed in the one-changed case (the default feeds.items)
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


def _entries(count: int = ITEMS, edit: int = 0) -> list[StoredArticle]:
    """``count`` stories, newest first; ``edit`` > 0 gives each that revision and a new title."""
    start = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)
    body = "".join(f"<p>{_PARAGRAPH}<a href=\"/related/{i}\">Related</a></p>" for i in range(14))
    entries = []
    for n in range(count):
        published = start - timedelta(minutes=17 * n)
        article = parse_article({
            "id": f"story-{n:04d}",
            "url": f"https://news.example.org/2026/05/story-{n:04d}",
            "title": f"Harbour plan approved after long night, story {n}" + (f" (edit {edit})" if edit else ""),
            "summary": f"<p>{_PARAGRAPH}</p>",
            "content_html": body,
            "published_at": published.isoformat(),
            "section": ["Politics", "Sport", "Culture"][n % 3],
            "authors": [{"name": "Ada Reporter", "email": "ada@news.example.org"}]
            if n % 2 else [{"name": "Bruno Desk"}, {"name": "Cleo Wire"}],
            "tags": ["harbour", "council", f"topic-{n % 7}"],
            "image": {"url": f"https://news.example.org/img/{n}.jpg", "length": 120_000 + n},
        })
        modified = published + timedelta(minutes=edit)
        entries.append(StoredArticle(article, 1 + edit, "published", "api", published, modified))
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


def _one_changed_feeds() -> list[list[StoredArticle]]:
    """One 50-item feed per run, each differing from the one before in one item: run i
    edits item i % 50 (a new revision and title), as a worker sees an article updated."""
    feed = _entries(WINDOW)
    edits = _entries(WINDOW, edit=1)
    feeds = []
    for run in range(RUNS + 1):
        at = run % WINDOW
        feed = feed[:at] + [StoredArticle(edits[at].article, edits[at].revision + run, "published", "api",
                                          edits[at].received_at, edits[at].modified_at)] + feed[at + 1:]
        feeds.append(feed)
    return feeds


def run() -> dict[str, float]:
    """Median milliseconds: cold 100-item renders three ways, and a 50-item feed with one item changed."""
    site, entries = _site(), _entries()
    now = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)

    def ours_xml() -> None:
        render_rss(ALL, entries, site, now)
        render_atom(ALL, entries, site, now)

    def ours_all() -> None:
        ours_xml()
        render_json(ALL, entries, site, now)

    cold = _medians_ms({
        "render_100_items_ms_ours_rss_atom_json": ours_all,
        "render_100_items_ms_ours_rss_atom": ours_xml,
        "render_100_items_ms_plain_feedgen_rss_atom": lambda: _plain_feedgen(entries, site),
    })
    cold["render_ratio_to_feedgen"] = round(
        cold["render_100_items_ms_ours_rss_atom"] / cold["render_100_items_ms_plain_feedgen_rss_atom"], 2)
    return {**cold, **_one_changed(site, now)}


def _one_changed(site: SiteInfo, now: datetime) -> dict[str, float]:
    """A warm cache, then each run renders a feed one item of which is new to it; each
    run also renders the same feed from scratch, interleaved, for comparison."""
    feeds, cache = _one_changed_feeds(), FragmentCache()
    render_formats(ALL, feeds[0], site, now, cache=cache)  # the renders before: the cache is warm
    reusing, cold = [], []
    for feed in feeds[1:]:
        started = time.perf_counter()
        render_formats(ALL, feed, site, now, cache=cache)
        reusing.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        render_formats(ALL, feed, site, now)
        cold.append((time.perf_counter() - started) * 1000)
    # Each run reused all but one item per format: the bench measures what it says.
    assert cache.misses == 3 * (WINDOW + RUNS), cache.misses
    return {"render_50_items_one_changed_ms": round(statistics.median(reusing), 2),
            "render_50_items_cold_ms": round(statistics.median(cold), 2)}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
