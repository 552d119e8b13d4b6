"""The articles the pipeline benchmark publishes, and which feed each one lands in.

20 sections, 200 authors and 50 tags, so a burst touches 271 feeds. Every article gets a
new id and a ``published_at`` later than any sent before it, so the newest article sent
to a feed is the first item that feed must show.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from config import FeedsConfig
from syndication.articles import parse_article
from syndication.feeds.catalog import feeds_for

SECTIONS = ["Politics", "World", "Business", "Economy", "Science", "Technology", "Health", "Climate",
            "Sport", "Football", "Culture", "Books", "Film", "Music", "Travel", "Food", "Education",
            "Opinion", "Local", "Obituaries"]
_FIRST = ["Ada", "Bruno", "Cleo", "Dev", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kemi",
          "Luca", "Mira", "Nils", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tove"]
_LAST = ["Reporter", "Desk", "Wire", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad"]
AUTHORS = [f"{first} {last}" for first, last in itertools.product(_FIRST, _LAST)]
TAGS = ["harbour", "council", "elections", "budget", "housing", "transport", "rail", "energy", "water",
        "schools", "hospitals", "police", "courts", "weather", "floods", "wildlife", "farming", "fishing",
        "tourism", "startups", "banks", "markets", "jobs", "wages", "pensions", "migration", "europe",
        "asia", "africa", "americas", "space", "ai", "privacy", "cycling", "tennis", "rugby", "cricket",
        "athletics", "theatre", "opera", "art", "poetry", "festivals", "recipes", "restaurants", "wine",
        "universities", "research", "history", "religion"]
FEEDS = FeedsConfig(items=50, sections="*", authors="*", tags="*")

_PARAGRAPH = ("The council voted on Tuesday to extend the harbour redevelopment, after a debate that ran "
              "past midnight. Residents of the old quarter said the plan would price them out; the mayor's "
              "office said 400 new homes would be affordable. ")
_BODY = "".join(f"<p>{_PARAGRAPH}<a href=\"/related/{i}\">Related</a></p>" for i in range(4))


@dataclass(frozen=True)
class Sent:
    """The newest article sent to one feed."""

    published_at: datetime
    article_id: str
    url: str


@dataclass
class Workload:
    """Makes articles and remembers, per feed key, the newest one sent."""

    base_url: str = "https://bench.example"
    newest: dict[str, Sent] = field(default_factory=dict)

    def article(self, phase: str, n: int, published_at: datetime, *, bare: bool = False) -> dict[str, Any]:
        """Article ``n`` of a phase: its section, authors and tags cycle through the catalogue
        (``bare``: none of them, so the article is in ``all`` only)."""
        authors = [{"name": AUTHORS[n % len(AUTHORS)]}]
        if n % 3 == 0:
            authors.append({"name": AUTHORS[(n * 7 + 3) % len(AUTHORS)]})
        data: dict[str, Any] = {
            "id": f"bench-{phase}-{n:05d}",
            "url": f"{self.base_url}/{phase}/{n:05d}",
            "title": f"Harbour plan approved after long night ({phase} {n})",
            "summary": f"<p>{_PARAGRAPH}</p>",
            "content_html": _BODY,
            "published_at": published_at.astimezone(timezone.utc).isoformat(),
            "section": SECTIONS[n % len(SECTIONS)],
            "authors": authors,
            "tags": list(dict.fromkeys([TAGS[n % len(TAGS)], TAGS[(n * 3 + 1) % len(TAGS)]])),
            "image": {"url": f"{self.base_url}/img/{n}.jpg", "type": "image/jpeg", "length": 120_000 + n},
        }
        if bare:
            for key in ("section", "authors", "tags"):
                del data[key]
        self._remember(data)
        return data

    def batch(self, phase: str, count: int, start: datetime, step: timedelta) -> list[dict[str, Any]]:
        return [self.article(phase, n, start + n * step) for n in range(count)]

    def feed_keys(self, data: dict[str, Any]) -> list[str]:
        return [spec.key for spec in feeds_for(parse_article(data), FEEDS)]

    def _remember(self, data: dict[str, Any]) -> None:
        # The product's key rules (slugs, dedup) decide membership, not a copy of them here.
        sent = Sent(datetime.fromisoformat(data["published_at"]), data["id"], data["url"])
        for key in self.feed_keys(data):
            now = self.newest.get(key)
            if now is None or (sent.published_at, sent.article_id) > (now.published_at, now.article_id):
                self.newest[key] = sent


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
