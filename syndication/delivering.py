"""Running one delivery from the ledger, exactly once.

The claim is committed before the API is called and the remote id right after. A claim
whose lease expired, or any earlier attempt, has an unknown outcome: the account's recent
posts are searched for the article's URL first, and a post found there is adopted.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from config import SiteConfig
from syndication.articles import Article, Author
from syndication.channels.base import Channel, Media, PostContext, PostResult
from syndication.channels.registry import Channels, rules_for
from syndication.compose import staff_member
from syndication.errors import (
    AlreadyPosted,
    MediaRefused,
    NotPosted,
    PermanentChannelError,
    RateLimited,
    RejectedPost,
    TransientChannelError,
)
from syndication.media import fetch_image
from syndication.publishing import Clock, utcnow
from syndication.store import Store
from syndication.store.articles import get_article
from syndication.store.deliveries import (
    FINAL,
    PERMANENT_PAUSE,
    SHARE,
    Delivery,
    add_list_member,
    claim,
    claim_owners,
    clear_refusals,
    count_refusal,
    deliveries_of,
    expire_leases,
    get_delivery,
    get_pause,
    is_list_member,
    makes_post,
    mark_failed,
    mark_posted,
    mark_retry,
    pause_channel,
    budget_frees_at,
    set_state,
)
from syndication.store.timeline import add_step

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
# Above one attempt: an image fetch (5 s) and at most four API calls (find, upload, alt text, post), 10 s each.
LEASE = timedelta(seconds=60)
MAX_BACKOFF_S = 300.0


@dataclass(frozen=True)
class Attempt:
    """What running a delivery did: its state afterwards, and when to try again (if pending)."""

    delivery_id: int
    state: str
    retry_at: datetime | None = None


def backoff(attempts: int, rng: Callable[[], float] = random.random, *, base_s: float = 1.0,
            cap_s: float = MAX_BACKOFF_S) -> timedelta:
    """Exponential back-off with jitter: ``base_s`` (1 s), twice that, four times... capped at
    ``cap_s`` (five minutes), each times a factor between 0.5 and 1.5 from ``rng``."""
    return timedelta(seconds=min(cap_s, base_s * 2.0 ** max(0, attempts - 1)) * (0.5 + rng()))


def _wait(session: Session, site: SiteConfig, d: Delivery, now: datetime) -> tuple[datetime, str] | None:
    """When a delivery that is not final may next try, and why, if not now: a paused channel,
    or a spent posting budget (posts and corrections only)."""
    pause = get_pause(session, d.channel)
    if pause and pause.active(now):
        return pause.paused_until, f"channel paused: {pause.reason}"  # type: ignore[return-value]
    if makes_post(d.action):
        config = site.channel(d.channel)
        frees_at = budget_frees_at(session, d.channel, budget=config.posts_per_window,
                                   window=timedelta(seconds=config.window_s), now=now)
        if frees_at is not None:
            return frees_at, "posting budget spent for this window"
    return None


def _defer(store: Store, d: Delivery, at: datetime, why: str, now: datetime) -> Attempt:
    with store.transaction() as session:
        if claim(session, d.id, now=now, lease=LEASE):
            # Not an attempt: give the count back.
            mark_retry(session, d.id, at=at, error=why, now=now, refund=True)
    return Attempt(d.id, "pending", at)


def run_delivery(store: Store, site: SiteConfig, channels: Channels, delivery_id: int, *,
                 clock: Clock = utcnow, rng: Callable[[], float] = random.random, owner: str = "",
                 backoff_base_s: float = 1.0, backoff_cap_s: float = MAX_BACKOFF_S) -> Attempt:
    """Make one attempt at a delivery. Safe to call twice at once or after a crash.

    ``owner`` (``host:pid``) is recorded with the claim, so that a sweeper on the same host
    can tell a claim whose process died (``release_dead_claims``) without waiting out the lease.
    """
    now = clock()
    with store.read() as session:
        d = get_delivery(session, delivery_id)
        stored = get_article(session, d.article_id) if d else None
        wait = _wait(session, site, d, now) if d is not None and d.state not in FINAL else None
    if d is None or stored is None or d.state in FINAL:
        return Attempt(delivery_id, d.state if d else "missing")
    if d.state == "claimed" and d.lease_until and d.lease_until > now:
        return Attempt(d.id, "claimed")  # another worker holds it
    if wait is not None:
        return _defer(store, d, *wait, now)
    channel = channels.active.get(d.channel)
    unknown_outcome = d.state == "claimed" or d.attempts > 0
    with store.transaction() as session:
        if not claim(session, d.id, now=now, lease=LEASE, owner=owner):
            return Attempt(d.id, "claimed")
        if channel is None:
            mark_failed(session, d.id, error=f"channel {d.channel!r} is not configured", now=now)
            return Attempt(d.id, "failed")
        add_step(session, d.article_id, "delivery.attempt", now=now, channel=d.channel, action=d.action,
                 delivery_id=d.id, attempt=d.attempts + 1)
    try:
        images = site.image_hosts if d.channel in channels.media else None
        result = _attempt(store, channel, d, stored.article, unknown_outcome, clock, images)
    except NotPosted as exc:
        return _record_not_posted(store, d, exc, clock)
    except (TransientChannelError, PermanentChannelError, RejectedPost) as exc:
        # AlreadyPosted is settled inside _attempt. Any other error leaves the claim to expire:
        # the next attempt has an unknown outcome and reconciles first.
        return _record_failure(store, site, d, exc, clock,
                               lambda attempts: backoff(attempts, rng, base_s=backoff_base_s, cap_s=backoff_cap_s))
    return _record_success(store, site, channels, d, result, stored.article.authors, clock)


@dataclass(frozen=True)
class _Result:
    """What the service holds after an attempt that went through."""

    remote_id: str | None
    remote_url: str | None
    note: str
    image_skipped: str | None = None  # why the article's image did not go with the post


# An operator's share announces the article again: to a receiver it is a publication.
EVENTS = {"post": "article.published", "correct": "article.updated", "delete": "article.withdrawn",
          SHARE: "article.published"}


def post_context(d: Delivery, article: Article) -> PostContext:
    """What the channel may use besides the text; ``key`` is the ledger's unique key, so every
    attempt at this delivery (and only this one) carries the same."""
    return PostContext(key=f"{d.article_id}/{d.revision}/{d.channel}/{d.action}", event=EVENTS[SHARE if d.action.startswith(SHARE) else d.action],
                       occurred_at=d.created_at, article=article)


def _image(article: Article, image_hosts: list[str] | None) -> tuple[Media | None, str | None]:
    """The article's image for a channel that takes media, or why it goes without."""
    if image_hosts is None or article.image is None:
        return None, None
    try:
        return fetch_image(article.image.url, alt=article.image.alt, allowed_hosts=image_hosts), None
    except MediaRefused as exc:
        return None, str(exc)


def _attempt(store: Store, channel: Channel, d: Delivery, article: Article, unknown_outcome: bool,
             clock: Clock, image_hosts: list[str] | None = None) -> _Result:
    """Call the service for one delivery: at most three API calls. Raises the channel's errors.

    After an unknown outcome the account's recent posts are searched first, so a post that
    went out before a crash is adopted, never made twice. A correction (or a share) is only
    ever settled by a post of its own text: the original links to the same URL, and X's
    "duplicate" answer may be about an earlier post. Without one it raises ``NotPosted``.
    """
    url, context = article.url, post_context(d, article)
    if d.action == "delete":
        _delete_posts(store, d, channel, context, clock)
        return _Result(None, None, "deleted")
    text = d.text or url
    # The text a post must have to count as this one: a correction or a share shares its URL
    # with the original post, so only its own text tells them apart.
    own = {} if d.action == "post" else {"text": text}
    found = _find_own(store, channel, d, url, own) if unknown_outcome else None
    if found is not None:
        return _Result(found.remote_id, found.remote_url, "adopted an earlier post")
    media, skipped = _image(article, image_hosts)
    reply_to = _original_post(store, d) if d.action == "correct" else None
    try:
        posted = channel.post(text, url=url, context=replace(context, media=media), reply_to=reply_to)
    except AlreadyPosted as exc:
        found = _find_own(store, channel, d, url, own)
        if found is None and own:
            raise NotPosted(f"{d.channel}: refused as a duplicate, and no post of this {d.action}'s text "
                            "was found: not posted") from exc
        return _Result(found.remote_id if found else None, found.remote_url if found else None,
                       "the service already had this post")
    skipped = skipped or next((n for n in posted.notes if n.startswith("image")), None)
    return _Result(posted.remote_id, posted.remote_url, "posted", skipped)


def _find_own(store: Store, channel: Channel, d: Delivery, url: str, own: dict[str, str]) -> PostResult | None:
    """The channel's post that is this delivery's: for a correction or a share, one of its text
    that no other delivery of the article already holds (a share has the original's words)."""
    found = channel.find_post(url, **own)
    if found is None or not own:
        return found
    with store.read() as session:
        taken = {s.remote_id for s in deliveries_of(session, d.article_id)
                 if s.channel == d.channel and s.id != d.id and s.remote_id}
    return None if found.remote_id in taken else found


def _original_post(store: Store, d: Delivery) -> str | None:
    """The remote id of the article's post on this channel, which a correction answers.

    Raises ``TransientChannelError`` while that post is in flight (its id decides the reply).
    """
    with store.read() as session:
        posts = [s for s in deliveries_of(session, d.article_id) if s.channel == d.channel and s.action == "post"]
    if any(s.state == "claimed" for s in posts):
        raise TransientChannelError("the original post of this article is still in flight")
    live = [s for s in posts if s.state == "posted" and s.remote_id]
    return live[-1].remote_id if live else None


def _record_success(store: Store, site: SiteConfig, channels: Channels, d: Delivery, result: _Result,
                    authors: Sequence[Author], clock: Clock) -> Attempt:
    """Note the remote id at once (the claim was committed before the call), then grow the staff list."""
    with store.transaction() as session:
        mark_posted(session, d.id, remote_id=result.remote_id, remote_url=result.remote_url, now=clock())
        clear_refusals(session, d.channel)
        add_step(session, d.article_id, f"delivery.{'deleted' if d.action == 'delete' else 'posted'}",
                 now=clock(), channel=d.channel, delivery_id=d.id, remote_id=result.remote_id,
                 remote_url=result.remote_url, note=result.note)
        if result.image_skipped:
            # The post went without its image; the story says why, so an editor can fix the image.
            add_step(session, d.article_id, "delivery.image_skipped", now=clock(), channel=d.channel,
                     delivery_id=d.id, reason=result.image_skipped)
    log.info("delivery done", extra={"channel": d.channel, "delivery_id": d.id, "action": d.action,
                                     "remote_id": result.remote_id, "note": result.note})
    if d.action != "delete":
        _grow_staff_list(store, channels, d, authors, site, clock)
    return Attempt(d.id, "posted")


def _record_failure(store: Store, site: SiteConfig, d: Delivery,
                    exc: TransientChannelError | PermanentChannelError | RejectedPost, clock: Clock,
                    delay: Callable[[int], timedelta]) -> Attempt:
    """A 429 pauses the channel and refunds the attempt; other transient errors retry with
    back-off until ``max_attempts``; a refused request fails that delivery only (unless it is
    one unexplained refusal too many); a permanent error fails it and pauses the channel."""
    if isinstance(exc, RateLimited):
        return _record_rate_limit(store, d, exc, clock)
    if isinstance(exc, TransientChannelError):
        return _record_retry(store, site, d, exc, clock, delay)
    if isinstance(exc, RejectedPost):
        return _record_rejection(store, site, d, exc, clock)
    return _record_pause(store, d, exc, clock)


def _record_rejection(store: Store, site: SiteConfig, d: Delivery, exc: RejectedPost, clock: Clock) -> Attempt:
    """The delivery goes to the failed set with the service's reason; the channel goes on,
    until ``breaker_refusals`` unexplained refusals in a row pause it (its breaker)."""
    limit = site.channel(d.channel).breaker_refusals
    with store.transaction() as session:
        mark_failed(session, d.id, error=str(exc), now=clock())
        in_a_row = 0 if exc.explained else count_refusal(session, d.channel, now=clock())
        tripped = in_a_row >= limit
        if tripped:
            pause_channel(session, d.channel, until=clock() + PERMANENT_PAUSE, now=clock(),
                          reason=f"breaker: {in_a_row} unexplained refusals in a row, the last: {exc}")
        add_step(session, d.article_id, "delivery.failed", now=clock(), channel=d.channel, delivery_id=d.id,
                 error=str(exc), rejected=True, channel_paused=tripped)
    log.error("delivery refused", extra={"channel": d.channel, "delivery_id": d.id, "error": str(exc),
                                         "unexplained_in_a_row": in_a_row, "channel_paused": tripped})
    return Attempt(d.id, "failed")


def _record_not_posted(store: Store, d: Delivery, exc: NotPosted, clock: Clock) -> Attempt:
    """Failed, and the channel stays open: trying again would be refused the same way."""
    with store.transaction() as session:
        mark_failed(session, d.id, error=str(exc), now=clock())
        add_step(session, d.article_id, "delivery.failed", now=clock(), channel=d.channel, delivery_id=d.id,
                 action=d.action, error=str(exc))
    log.warning("delivery not posted", extra={"channel": d.channel, "delivery_id": d.id, "error": str(exc)})
    return Attempt(d.id, "failed")


def _record_rate_limit(store: Store, d: Delivery, exc: RateLimited, clock: Clock) -> Attempt:
    with store.transaction() as session:
        pause_channel(session, d.channel, until=exc.retry_at, reason="rate limited (HTTP 429)", now=clock())
        mark_retry(session, d.id, at=exc.retry_at, error=str(exc), now=clock(), refund=True)
        add_step(session, d.article_id, "delivery.rate_limited", now=clock(), channel=d.channel,
                 delivery_id=d.id, retry_at=exc.retry_at.isoformat())
    log.warning("channel rate limited", extra={"channel": d.channel, "delivery_id": d.id,
                                               "retry_at": exc.retry_at.isoformat()})
    return Attempt(d.id, "pending", exc.retry_at)


def _record_retry(store: Store, site: SiteConfig, d: Delivery, exc: TransientChannelError, clock: Clock,
                  delay: Callable[[int], timedelta]) -> Attempt:
    attempts = d.attempts + 1
    with store.transaction() as session:
        if attempts >= site.channel(d.channel).max_attempts:
            mark_failed(session, d.id, error=str(exc), now=clock())
            add_step(session, d.article_id, "delivery.failed", now=clock(), channel=d.channel,
                     delivery_id=d.id, attempt=attempts, error=str(exc))
            log.error("delivery failed", extra={"channel": d.channel, "delivery_id": d.id, "error": str(exc)})
            return Attempt(d.id, "failed")
        at = clock() + delay(attempts)
        mark_retry(session, d.id, at=at, error=str(exc), now=clock())
        add_step(session, d.article_id, "delivery.retry", now=clock(), channel=d.channel, delivery_id=d.id,
                 attempt=attempts, error=str(exc), retry_at=at.isoformat())
    log.warning("delivery retry scheduled", extra={"channel": d.channel, "delivery_id": d.id,
                                                   "attempt": attempts, "retry_at": at.isoformat()})
    return Attempt(d.id, "pending", at)


def _record_pause(store: Store, d: Delivery, exc: PermanentChannelError, clock: Clock) -> Attempt:
    with store.transaction() as session:
        mark_failed(session, d.id, error=str(exc), now=clock())
        pause_channel(session, d.channel, until=clock() + PERMANENT_PAUSE, reason=str(exc), now=clock())
        add_step(session, d.article_id, "delivery.failed", now=clock(), channel=d.channel,
                 delivery_id=d.id, error=str(exc), channel_paused=True)
    log.error("channel paused after a permanent error", extra={"channel": d.channel, "delivery_id": d.id,
                                                               "error": str(exc)})
    return Attempt(d.id, "failed")


def release_dead_claims(store: Store, *, host: str, alive: Callable[[int], bool], clock: Clock = utcnow) -> int:
    """End the leases of claims held by processes on ``host`` that no longer exist.

    Their outcome is unknown, so the next attempt reconciles first. Returns how many.
    """
    now = clock()
    with store.read() as session:
        owners = claim_owners(session, prefix=f"{host}:", now=now)
    dead = [i for i, owner in owners.items() if owner.rsplit(":", 1)[-1].isdigit()
            and not alive(int(owner.rsplit(":", 1)[-1]))]
    if dead:
        with store.transaction() as session:
            expire_leases(session, dead, now=now)
        log.warning("claims of dead processes released", extra={"deliveries": dead, "host": host})
    return len(dead)


def _delete_posts(store: Store, d: Delivery, channel: Channel, context: PostContext, clock: Clock) -> None:
    with store.read() as session:
        siblings = [s for s in deliveries_of(session, d.article_id) if s.channel == d.channel]
    if any(makes_post(s.action) and s.state == "claimed" for s in siblings):
        # A post is in flight: its outcome decides what there is to delete.
        raise TransientChannelError("a post of this article is still in flight")
    for s in siblings:
        if makes_post(s.action) and s.state == "posted" and s.remote_id:
            channel.delete(s.remote_id, context=context)
            with store.transaction() as session:
                set_state(session, s.id, "deleted", now=clock())


def _grow_staff_list(store: Store, channels: Channels, d: Delivery, authors: Sequence[Author],
                     site: SiteConfig, clock: Clock) -> None:
    """Make each staff author (a ``[staff]`` entry, or marked ``"staff": true`` by the CMS) with a
    handle on this channel a member of its staff list, once."""
    list_id = channels.staff_lists.get(d.channel)
    channel = channels.active.get(d.channel)
    rules = rules_for(channels, d.channel)
    if not list_id or channel is None:
        return
    for author in authors:
        member = staff_member(site.staff, author.name)
        handle = rules.handle(author, member)
        if not handle or (member is None and not author.staff):
            continue
        with store.read() as session:
            if is_list_member(session, d.channel, list_id, handle):
                continue
        try:
            channel.add_list_member(handle)
        except (TransientChannelError, PermanentChannelError, RejectedPost) as exc:
            log.warning("staff list update failed", extra={"channel": d.channel, "handle": handle,
                                                           "error": str(exc)})
            continue
        with store.transaction() as session:
            add_list_member(session, d.channel, list_id, handle, now=clock())
            add_step(session, d.article_id, "staff_list.added", now=clock(), channel=d.channel, handle=handle)
