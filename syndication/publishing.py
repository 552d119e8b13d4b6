"""Publishing: store a change, mark its feeds dirty and write its outbox event, in one transaction.

Nothing here talks to Celery. After commit the caller hands the events to a
``Dispatcher`` (``workers`` implements one); what it fails to hand over, the sweeper finds.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from config import SiteConfig
from syndication.articles import Article, parse_article
from syndication.errors import NotFound, ValidationError
from syndication.feeds.catalog import ALL, feeds_for
from syndication.store import Store
from syndication.store.articles import Upserted, upsert_articles, withdraw_article
from syndication.store.feed_state import existing_feeds, feeds_created_since, mark_dirty
from syndication.store.outbox import RELEASED, Event, add_event, add_events, mark_dispatched
from syndication.store.timeline import add_steps

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
# A release is armed (a Celery ETA) only this close to its time: far below any visibility
# timeout, so the message is never handed out twice; the database holds the time itself.
ARM_AHEAD = timedelta(seconds=6)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Dispatcher(Protocol):
    """Hands committed work to the task queue. ``workers`` implements it with Celery.

    ``redispatch_after``: how long work sent through it may stay unprocessed before it counts
    as lost and is sent again (then twice as long...: ``store.outbox.redispatch_delay``).
    """

    redispatch_after: timedelta

    def request_renders(self, feed_keys: Iterable[str]) -> None:
        """Ask for these feeds to be rendered soon (throttled, coalesced)."""

    def send_events(self, events: Sequence[Event]) -> None:
        """Queue the social side of these events."""

    def send_deliveries(self, delivery_ids: Sequence[int]) -> None:
        """Queue attempts at these ledger rows."""

    def schedule_release(self, at: datetime) -> None:
        """Run a release of the scheduled articles at ``at`` (soon: see ``releasing.ARM_AHEAD``)."""


@dataclass(frozen=True)
class Accepted:
    """One article taken in: ``created``, ``updated``, ``unchanged``, ``scheduled`` or ``withdrawn``.
    ``feeds_refused``: its new feeds that were not created, the caps on new feeds being reached."""

    article_id: str
    revision: int
    status: str
    event_id: str | None
    feeds_refused: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What a publish did: the articles taken, the events written, the feeds dirtied, and when
    the articles it scheduled are due."""

    accepted: list[Accepted] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    feed_keys: set[str] = field(default_factory=set)
    releases: list[datetime] = field(default_factory=list)


def event_kind(result: Upserted) -> str:
    """A first publication (new, or out of withdrawn) is ``article.published``: it is posted. A
    scheduled article sent again once its time has passed is released by that (``article.released``:
    its age counts from now). A change to a live article is ``article.updated``."""
    if result.previously == "scheduled":
        return RELEASED
    return "article.published" if result.created or result.previously == "withdrawn" else "article.updated"


def parse_batch(raw: Sequence[Any], *, site: SiteConfig) -> tuple[list[Article], list[ValidationError]]:
    """Validate many articles; returns the valid ones and one error per refused one (with its index)."""
    valid: list[Article] = []
    refused: list[ValidationError] = []
    for index, item in enumerate(raw):
        try:
            valid.append(parse_article(item, tz=site.site.tz, index=index))
        except ValidationError as exc:
            refused.append(exc)
    return valid, refused


def publish(store: Store, site: SiteConfig, articles: Sequence[Article], *, origin: str = "api",
            clock: Clock = utcnow) -> Outcome:
    """Store articles (insert or update by id) with their outbox events, in one transaction.

    ``origin="import"`` is the backfill path: no event is written, so nothing is ever
    announced or posted for it; its feeds are still marked for rendering. An article whose
    ``published_at`` is in the future is stored ``scheduled``: no feed, no event, until
    ``releasing.release_due`` releases it (``Outcome.releases`` says when).

    >>> outcome = publish(store, site, [article])
    >>> dispatcher.request_renders(outcome.feed_keys); dispatcher.send_events(outcome.events)
    """
    now = clock()
    outcome = Outcome()
    if not articles:
        return outcome
    labels: dict[str, str] = {}
    items = []
    for article in articles:
        specs = feeds_for(article, site.feeds)
        labels.update((s.key, s.label) for s in specs)
        items.append((article, [s.key for s in specs]))
    refused: dict[str, tuple[str, ...]] = {}
    if origin == "api":  # an operator's import is trusted with its archive's feeds
        items, refused = _cap_new_feeds(store, site, items, now)
    with store.transaction() as session:
        results = upsert_articles(session, items, origin=origin, now=now)
        dirty = {key for r in results for key in r.feed_keys}
        mark_dirty(session, ((k, labels.get(k, "")) for k in dirty), now=now)
        announced = [r for r in results if r.changed and origin != "import" and r.status == "published"]
        events = add_events(session, [(event_kind(r), r.article_id, r.revision) for r in announced], now=now)
        event_of = {id(r): e for r, e in zip(announced, events)}
        outcome.events.extend(events)
        due = {a.id: a.published_at for a in articles}
        steps = []
        for r in results:
            status = ("scheduled" if r.status == "scheduled" and r.changed else "created" if r.created
                      else "updated" if r.changed else "unchanged")
            event = event_of.get(id(r))
            steps.append((r.article_id, "imported" if origin == "import" else "stored",
                          {"revision": r.revision, "status": status,
                           **({"event_id": event.id} if event else {})}))
            if status == "scheduled":
                steps.append((r.article_id, "scheduled", {"revision": r.revision,
                                                          "release_at": due[r.article_id].isoformat()}))
                outcome.releases.append(due[r.article_id])
            outcome.accepted.append(Accepted(r.article_id, r.revision, status, event.id if event else None,
                                             refused.get(r.article_id, ())))
        add_steps(session, steps, now=now)
    outcome.feed_keys = dirty
    log.info("articles stored", extra={"count": len(results), "origin": origin, "events": len(outcome.events),
                                       "feeds": len(dirty)})
    return outcome


def _cap_new_feeds(store: Store, site: SiteConfig, items: list[tuple[Article, list[str]]], now: datetime,
                   ) -> tuple[list[tuple[Article, list[str]]], dict[str, tuple[str, ...]]]:
    """Keep at most the caps' worth of new feeds, in the order the articles name them; return the
    items with the others removed, and per article id the feeds it was refused.

    Read before the publish transaction (on SQLite a read before its first write could not
    take the write lock later): two requests at once may each create up to the per-request cap,
    so the hourly cap can be passed by that much, never by more.
    """
    caps = site.feeds
    wanted = [key for _, keys in items for key in keys if key != ALL.key]
    if not wanted:
        return items, {}
    with store.read() as session:
        existing = existing_feeds(session, wanted)
        new = [key for key in dict.fromkeys(wanted) if key not in existing]
        if not new:
            return items, {}
        budget = min(caps.max_new_per_request,
                     caps.max_new_per_hour - feeds_created_since(session, now - timedelta(hours=1),
                                                                          excluding=[ALL.key]))
    allowed = set(new[:max(budget, 0)])
    refused_keys = set(new) - allowed
    if not refused_keys:
        return items, {}
    capped, refused = [], {}
    for article, keys in items:
        kept = [k for k in keys if k not in refused_keys]
        if len(kept) != len(keys):
            refused[article.id] = tuple(k for k in keys if k in refused_keys)
        capped.append((article, kept))
    log.warning("new feeds refused: cap reached", extra={"refused": len(refused_keys), "new_feeds": len(allowed),
                                                         "per_request": caps.max_new_per_request,
                                                         "per_hour": caps.max_new_per_hour})
    return capped, refused


def unpublish(store: Store, article_id: str, *, clock: Clock = utcnow) -> Outcome:
    """Withdraw an article: keep a tombstone, drop it from its feeds, write an event.

    Raises ``NotFound`` for an unknown id. Withdrawing twice changes nothing.
    """
    now = clock()
    outcome = Outcome()
    with store.transaction() as session:
        result = withdraw_article(session, article_id, now=now)
        if result is None:
            raise NotFound(f"no article with id {article_id!r}")
        event = None
        if result.changed:
            mark_dirty(session, ((k, "") for k in result.feed_keys | {ALL.key}), now=now)
            event = add_event(session, "article.withdrawn", article_id, result.revision, now=now)
            outcome.events.append(event)
            add_steps(session, [(article_id, "withdrawn", {"revision": result.revision, "event_id": event.id})],
                      now=now)
        outcome.accepted.append(Accepted(article_id, result.revision,
                                         "withdrawn" if result.changed else "unchanged",
                                         event.id if event else None))
    outcome.feed_keys = set(result.feed_keys)
    return outcome


def announce(store: Store, dispatcher: Dispatcher, outcome: Outcome, *, clock: Clock = utcnow) -> bool:
    """Hand a committed outcome to the dispatcher. Returns False (and logs) if the broker is down:
    the sweeper dispatches it later, so the caller still answers success."""
    try:
        if outcome.feed_keys:
            dispatcher.request_renders(sorted(outcome.feed_keys))
        if outcome.events:
            dispatcher.send_events(outcome.events)
        # Only a release due soon is armed here; the sweeper arms the others as their time nears.
        for at in sorted(set(outcome.releases)):
            if at - clock() <= ARM_AHEAD:
                dispatcher.schedule_release(at)
    except Exception as exc:  # noqa: BLE001 - any broker failure leaves the work to the sweeper
        log.warning("dispatch failed; the sweeper will retry", extra={"error": repr(exc),
                                                                     "events": [e.id for e in outcome.events]})
        return False
    if outcome.events:
        with store.transaction() as session:
            mark_dispatched(session, [e.id for e in outcome.events], now=clock(),
                            redispatch_after=dispatcher.redispatch_after)
    return True
