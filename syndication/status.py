"""What an operator needs to see at a glance: queues, workers, outbox, channels, feeds, failures.

The broker's view (queue depths, workers answering a ping) comes in as arguments: the domain
never talks to Redis or Celery. ``None`` means "could not be asked", which is itself a problem.

>>> status = collect_status(store, site, queues={"feeds": 0}, workers=["feeds@host"], now=utcnow())
>>> status.problems
[]
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from config import SiteConfig
from syndication.store import Store
from syndication.store.deliveries import Delivery, all_pauses, count_by_state, list_deliveries, posts_in_window
from syndication.store.articles import count_articles, upcoming_releases
from syndication.store.feed_state import all_states
from syndication.store.hub_pings import hub_health
from syndication.store.outbox import count_pending, oldest_pending

OUTBOX_LAG_LIMIT = timedelta(seconds=60)
HUB_FAILING_AFTER = 3  # failed attempts at one owed ping before a hub is a problem
STALE_FEED_LIMIT = timedelta(minutes=5)
RECENT_FAILURES = 50
UPCOMING_RELEASES = 20


@dataclass(frozen=True)
class ChannelStatus:
    """A channel: active or paused (until when, why), and the posts left in its current window."""

    name: str
    paused_until: datetime | None
    reason: str | None
    posts_per_window: int
    window_s: int
    posted_in_window: int

    @property
    def state(self) -> str:
        return "paused" if self.paused_until is not None else "active"

    @property
    def budget_left(self) -> int:
        return max(0, self.posts_per_window - self.posted_in_window)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state,
                "paused_until": _iso(self.paused_until), "reason": self.reason,
                "budget": {"posts_per_window": self.posts_per_window, "window_s": self.window_s,
                           "used": self.posted_in_window, "left": self.budget_left}}


@dataclass(frozen=True)
class FeedStatus:
    """A feed: when it was last rendered, with how many items, and whether changes wait."""

    feed: str
    label: str
    rendered_at: datetime | None
    items: int
    renders: int
    stale_since: datetime | None

    def stale_for(self, now: datetime) -> timedelta:
        return now - self.stale_since if self.stale_since else timedelta(0)

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {"feed": self.feed, "label": self.label, "rendered_at": _iso(self.rendered_at),
                "items": self.items, "renders": self.renders, "stale": self.stale_since is not None,
                "stale_s": round(self.stale_for(now).total_seconds(), 1)}


@dataclass(frozen=True)
class HubStatus:
    """A WebSub hub: pings owed, sent and failed, and how long it has been failing."""

    hub: str
    pending: int
    sent: int
    failed: int
    most_attempts: int
    last_error: str | None

    @property
    def failing(self) -> bool:
        return self.most_attempts >= HUB_FAILING_AFTER

    def as_json(self) -> dict[str, Any]:
        return {"hub": self.hub, "state": "failing" if self.failing else "ok", "pending": self.pending,
                "sent": self.sent, "failed": self.failed, "attempts": self.most_attempts,
                "last_error": self.last_error}


def display_url(url: str) -> str:
    """A URL as status may show it: no user, password, query or fragment (they may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


@dataclass(frozen=True)
class OutboxStatus:
    """Events written but not yet processed, and the age of the oldest."""

    pending: int
    oldest_at: datetime | None
    oldest_article_id: str | None

    def lag(self, now: datetime) -> timedelta:
        return now - self.oldest_at if self.oldest_at else timedelta(0)

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {"pending": self.pending, "oldest_at": _iso(self.oldest_at),
                "lag_s": round(self.lag(now).total_seconds(), 1)}


@dataclass(frozen=True)
class ReleaseStatus:
    """Scheduled articles: how many, and the soonest (each with its time)."""

    count: int
    upcoming: list[tuple[str, str, datetime]]  # (article id, title, release time), soonest first

    def overdue(self, now: datetime) -> timedelta:
        """How long the soonest release is past its time (zero when none is)."""
        return max(timedelta(0), now - self.upcoming[0][2]) if self.upcoming else timedelta(0)

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {"count": self.count, "upcoming": [
            {"article_id": i, "title": t, "release_at": _iso(at), "in_s": round((at - now).total_seconds(), 1)}
            for i, t, at in self.upcoming]}


@dataclass
class Status:
    """One snapshot of the whole pipeline; ``problems`` lists what needs attention."""

    now: datetime
    queues: dict[str, int] | None
    workers: list[str] | None
    outbox: OutboxStatus
    channels: list[ChannelStatus]
    feeds: list[FeedStatus]
    failed: list[Delivery]
    failed_by_channel: dict[str, int]
    hubs: list[HubStatus] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    releases: ReleaseStatus = field(default_factory=lambda: ReleaseStatus(0, []))

    @property
    def failed_count(self) -> int:
        return sum(self.failed_by_channel.values())

    def as_json(self) -> dict[str, Any]:
        """Plain JSON with exactly the keys ``queues``, ``workers``, ``outbox``, ``channels``,
        ``feeds``, ``failures``, ``hubs`` and ``scheduled``; ``None`` for queues or workers means
        the broker was not reachable."""
        return {
            "queues": dict(self.queues) if self.queues is not None else None,
            "workers": list(self.workers) if self.workers is not None else None,
            "outbox": self.outbox.as_json(self.now),
            "channels": [c.as_json() for c in self.channels],
            "feeds": [f.as_json(self.now) for f in self.feeds],
            "failures": {"count": self.failed_count, "by_channel": dict(self.failed_by_channel),
                         "recent": [failure_json(d) for d in self.failed]},
            "hubs": [h.as_json() for h in self.hubs],
            "scheduled": self.releases.as_json(self.now),
        }


def failure_json(d: Delivery) -> dict[str, Any]:
    """A failed delivery as an operator reads it (no secrets: the ledger holds none)."""
    return {"id": d.id, "article_id": d.article_id, "revision": d.revision, "channel": d.channel,
            "action": d.action, "attempts": d.attempts, "error": d.last_error,
            "updated_at": _iso(d.updated_at)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _channels(store: Store, site: SiteConfig, names: Collection[str] | None, now: datetime) -> list[ChannelStatus]:
    with store.read() as session:
        pauses = {p.channel: p for p in all_pauses(session)}
        wanted = set(names) if names is not None else {n for n, c in site.channels.items() if c.enabled}
        names = sorted(wanted | set(pauses))
        result = []
        for name in names:
            config = site.channel(name)
            pause = pauses.get(name)
            active_pause = pause if pause and pause.active(now) else None
            sent = posts_in_window(session, name, window=timedelta(seconds=config.window_s), now=now)
            result.append(ChannelStatus(name, active_pause.paused_until if active_pause else None,
                                        active_pause.reason if active_pause else None,
                                        config.posts_per_window, config.window_s, sent))
    return result


def _feeds(store: Store) -> list[FeedStatus]:
    with store.read() as session:
        return [FeedStatus(s.feed_key, s.label, s.rendered_at, s.item_count, s.renders,
                           (s.dirty_at or s.rendered_at) if s.stale else None)
                for s in all_states(session)]


def _hubs(store: Store, site: SiteConfig) -> list[HubStatus]:
    with store.read() as session:
        health = hub_health(session, [str(h) for h in site.site.hubs])
    return [HubStatus(display_url(h.hub), h.pending, h.sent, h.failed, h.most_attempts, h.last_error)
            for h in health]


def _outbox(store: Store) -> OutboxStatus:
    with store.read() as session:
        oldest = oldest_pending(session)
        pending = count_pending(session)
    return OutboxStatus(int(pending), oldest.created_at if oldest else None, oldest.article_id if oldest else None)


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


def find_problems(status: Status, *, outbox_limit: timedelta = OUTBOX_LAG_LIMIT,
                  stale_limit: timedelta = STALE_FEED_LIMIT) -> list[str]:
    """What needs an operator: one short sentence each, no secrets, no URLs."""
    problems = []
    if status.queues is None:
        problems.append("broker unreachable: queue depths unknown")
    if status.workers is None:
        problems.append("workers unknown: the broker could not be asked")
    elif not status.workers:
        problems.append("no workers online")
    lag = status.outbox.lag(status.now)
    if status.outbox.oldest_at and lag > outbox_limit:
        problems.append(f"outbox: the oldest unprocessed event is {_minutes(lag)} old "
                        f"(article {status.outbox.oldest_article_id})")
    if status.failed_count:
        by = ", ".join(f"{c}: {n}" for c, n in sorted(status.failed_by_channel.items()))
        noun = "delivery" if status.failed_count == 1 else "deliveries"
        problems.append(f"{status.failed_count} failed {noun} ({by})")
    for channel in status.channels:
        if channel.state == "paused":
            problems.append(f"channel {channel.name} paused until {_iso(channel.paused_until)}: {channel.reason}")
    for hub in status.hubs:
        if hub.failing:
            problems.append(f"hub {urlsplit(hub.hub).hostname} failing: {hub.pending} ping(s) owed, "
                            f"{hub.most_attempts} attempts, last error {hub.last_error}")
    overdue = status.releases.overdue(status.now)
    if overdue > outbox_limit:
        problems.append(f"scheduled release {_minutes(overdue)} overdue (article {status.releases.upcoming[0][0]}): "
                        "are the workers and beat running?")
    for feed in status.feeds:
        if feed.stale_since and feed.stale_for(status.now) > stale_limit:
            problems.append(f"feed {feed.feed} stale for {_minutes(feed.stale_for(status.now))}")
    return problems


def collect_status(store: Store, site: SiteConfig, *, queues: Mapping[str, int] | None,
                   workers: list[str] | None, now: datetime, channels: Collection[str] | None = None) -> Status:
    """Read the store and combine it with the broker's view into a ``Status``.

    ``channels`` names the channels that post (``syndication.channels.registry.channel_names``); by default, every
    channel the site's TOML enables. Paused channels are listed either way.

    >>> collect_status(store, site, queues=None, workers=None, now=utcnow()).problems[0]
    'broker unreachable: queue depths unknown'
    """
    with store.read() as session:
        counts = count_by_state(session)
        failed = list_deliveries(session, state="failed", limit=RECENT_FAILURES)
        scheduled = count_articles(session, status="scheduled")
        upcoming = [(s.article.id, s.article.title, s.article.published_at)
                    for s in upcoming_releases(session, limit=UPCOMING_RELEASES)]
    status = Status(now=now, queues=dict(queues) if queues is not None else None,
                    workers=sorted(workers) if workers is not None else None,
                    outbox=_outbox(store), channels=_channels(store, site, channels, now), feeds=_feeds(store),
                    failed=failed,
                    failed_by_channel={c: n for (c, s), n in counts.items() if s == "failed" and n},
                    hubs=_hubs(store, site), releases=ReleaseStatus(scheduled, upcoming))
    status.problems = find_problems(status)
    return status
