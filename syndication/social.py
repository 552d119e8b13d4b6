"""Planning social posts: an outbox event becomes rows in the delivery ledger.

Exactly once comes from the ledger's unique key (article, revision, channel, action):
planning the same event twice finds the rows it made the first time.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from config import SiteConfig
from syndication.articles import StoredArticle
from config.site import ChannelConfig
from syndication.channels.base import Channel, PostRules
from syndication.channels.registry import rules_for
from syndication.compose import ComposedPost, compose_post, template_for
from syndication.text import slugify
from syndication.publishing import Clock, utcnow
from syndication.store import Store
from syndication.store.articles import get_article
from syndication.store.deliveries import SHARE, cancel_pending_posts, deliveries_of, ensure_delivery, makes_post
from syndication.store.outbox import RELEASED, SHARED, Event, get_event, mark_processed
from syndication.store.timeline import add_step

log = logging.getLogger(__name__)


def skip_reason(stored: StoredArticle, event: Event, site: SiteConfig, action: str = "post") -> str | None:
    """Why this article must not be posted, or None. The flood guard lives here.

    The flood guard counts from when the article went out: for a released article that is
    the release (its event), so an embargoed story is posted however long it was held; a
    correction the CMS asked for and an operator's share are posted whatever the age.
    """
    if action.startswith(SHARE):  # on purpose: an operator asked for it, backfill and all
        return "withdrawn" if stored.withdrawn else "scheduled: not released yet" if stored.scheduled else None
    if stored.origin == "import":
        return "imported (backfill is never posted)"
    if stored.withdrawn:
        return "withdrawn before it was posted"
    if stored.scheduled:
        return "scheduled: not released yet"
    asked = action == "correct" and bool(stored.article.social and stored.article.social.correction)
    max_age = timedelta(hours=site.social.max_age_hours)
    if event.kind != RELEASED and not asked and stored.article.published_at < event.created_at - max_age:
        return f"older than {site.social.max_age_hours:g} h when published (flood guard)"
    if stored.article.social and stored.article.social.skip:
        return "the article asks not to be posted (social.skip)"
    return None


def _in(section: str | None, names: Sequence[str]) -> bool:
    """Whether ``section`` is one of ``names``, by name whatever the case, or by slug."""
    return bool(section) and any(slugify(n) == slugify(section or "") or n.casefold() == (section or "").casefold()
                                 for n in names)


def route_reason(config: ChannelConfig, section: str | None) -> str | None:
    """Why an account does not take an article of ``section`` (its ``only_sections`` /
    ``except_sections``), or None."""
    if config.only_sections and not _in(section, config.only_sections):
        return f"routed to another account: this one takes only {', '.join(config.only_sections)}"
    if config.except_sections and _in(section, config.except_sections):
        return f"routed to another account: this one leaves out {section}"
    return None


def _compose(stored: StoredArticle, action: str, name: str, channel: Channel, site: SiteConfig,
             rules: PostRules) -> ComposedPost:
    config = site.channel(name)
    if action == "correct":
        # Its own template, never the article's social.text (the text of the original post).
        article = stored.article.model_copy(update={"social": None})
        return compose_post(article, template=config.correction_template, staff=site.staff, mention_authors=False,
                            max_length=channel.max_weighted_length, rules=rules,
                            template_name=f"channels.{name}.correction_template")
    return compose_post(stored.article, template=template_for(config, stored.article.section), staff=site.staff,
                        mention_authors=site.social.mention_authors, max_length=channel.max_weighted_length,
                        rules=rules, template_name=f"channels.{name}.template")


def _plan_posts(session, stored: StoredArticle, event: Event, action: str, site: SiteConfig,  # type: ignore[no-untyped-def]
                channels: Mapping[str, Channel], now: datetime) -> list[int]:
    reason = skip_reason(stored, event, site, action)
    existing = deliveries_of(session, stored.article.id)
    ids: list[int] = []
    for name, channel in channels.items():
        if action == "post" and any(d.channel == name and d.action == "post" and d.revision != event.revision
                                    and d.state in ("pending", "claimed", "posted") for d in existing):
            continue  # already posted (or on its way) for an earlier revision
        config = site.channel(name)
        not_here = reason or route_reason(config, stored.article.section)
        # An article that will not be posted is not composed: in a backfill burst that was a third
        # of the social worker's time.
        composed = None if not_here else _compose(stored, action, name, channel, site, rules_for(channels, name))
        why = not_here or (composed.skipped if composed else None)
        delivery, created = ensure_delivery(session, article_id=stored.article.id, revision=event.revision,
                                            channel=name, action=action, text=composed.text if composed else None,
                                            now=now,
                                            state="skipped" if why else "pending")
        if created and why:
            add_step(session, stored.article.id, "delivery.skipped", now=now, channel=name, reason=why,
                     delivery_id=delivery.id)
        elif created:
            add_step(session, stored.article.id, "delivery.planned", now=now, channel=name, action=action,
                     delivery_id=delivery.id, length=composed.weighted_length if composed else None)
        if delivery.state == "pending":
            ids.append(delivery.id)
    return ids


def _plan_deletes(session, stored: StoredArticle, event: Event, channels: Mapping[str, Channel],  # type: ignore[no-untyped-def]
                  now: datetime) -> list[int]:
    cancelled = cancel_pending_posts(session, stored.article.id, now=now)
    if cancelled:
        add_step(session, stored.article.id, "delivery.cancelled", now=now, count=cancelled)
    ids = []
    live = {d.channel for d in deliveries_of(session, stored.article.id)
            if makes_post(d.action) and d.state in ("posted", "claimed")}
    for name in sorted(live):
        delivery, created = ensure_delivery(session, article_id=stored.article.id, revision=event.revision,
                                            channel=name, action="delete", text=None, now=now)
        if created:
            add_step(session, stored.article.id, "delivery.planned", now=now, channel=name, action="delete",
                     delivery_id=delivery.id)
        if delivery.state == "pending":
            ids.append(delivery.id)
    return ids


def plan_event(store: Store, site: SiteConfig, channels: Mapping[str, Channel], event_id: str,
               *, clock: Clock = utcnow) -> list[int]:
    """Write the ledger rows an outbox event calls for and mark it processed, in one transaction.

    Returns the ids of deliveries to run. Planning an event again returns the still-pending
    rows of the first planning and creates nothing new.
    """
    with store.transaction() as session:
        return _plan_one(session, site, channels, event_id, clock())


def plan_events(store: Store, site: SiteConfig, channels: Mapping[str, Channel], event_ids: Sequence[str],
                *, clock: Clock = utcnow) -> list[int]:
    """``plan_event`` for each of many events (a batch publish's message), a transaction each.

    Deliberately not one transaction for the batch. Measured on the embedded default (SQLite,
    whose one write lock a transaction holds until it commits), a 10,000-article burst had every
    feed current 41 s after its last accept with a commit per 100 events, 19 s per 10, and 11 s
    per event: longer transactions starve the renders of the lock.
    """
    return [d for event_id in event_ids for d in plan_event(store, site, channels, event_id, clock=clock)]


def _correction_wanted(stored: StoredArticle, event: Event, site: SiteConfig) -> bool:
    """An update is posted as a correction when the site posts every one (``correction_posts``)
    or the CMS marked this one (``social.correction: true``, on the revision of the event)."""
    asked = stored.revision == event.revision and bool(stored.article.social and stored.article.social.correction)
    return site.social.correction_posts or asked


def _plan_one(session, site: SiteConfig, channels: Mapping[str, Channel], event_id: str,  # type: ignore[no-untyped-def]
              now: datetime) -> list[int]:
    event = get_event(session, event_id)
    if event is None:
        log.warning("unknown event", extra={"event_id": event_id})
        return []
    stored = get_article(session, event.article_id)
    if stored is None:
        return []
    if event.kind in ("article.published", RELEASED):
        ids = _plan_posts(session, stored, event, "post", site, channels, now)
    elif event.kind == "article.updated" and _correction_wanted(stored, event, site):
        ids = _plan_posts(session, stored, event, "correct", site, channels, now)
    elif event.kind.startswith(SHARED):
        only = event.kind.partition(":")[2]
        ids = _plan_posts(session, stored, event, SHARE + event.id.replace("-", "")[:10], site,
                          {n: c for n, c in channels.items() if not only or n == only}, now)
    elif event.kind == "article.withdrawn":
        ids = _plan_deletes(session, stored, event, channels, now)
    else:
        ids = []
    if mark_processed(session, event_id, now=now):
        add_step(session, event.article_id, "event.processed", now=now, event_id=event_id,
                 event_kind=event.kind, deliveries=len(ids))
    return ids
