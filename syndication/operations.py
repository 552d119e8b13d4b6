"""What an operator can do to the pipeline, each action recorded with who did it.

Retrying makes a failed delivery pending and due now; the sweeper (beat) queues it, since it
picks pending rows that have no message in the queue. Pausing stops a channel until an operator
resumes it. Every action writes an ``ops_actions`` row, and a step on the article's timeline.

>>> retry_delivery(store, 42, actor="alice")
>>> pause(store, "x", actor="alice", reason="account under review")
>>> done, outcome = share_again(store, "a1", actor="alice", channel="x")
"""
from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING


from syndication.errors import FieldError, NotFound, ValidationError
from syndication.publishing import Clock, Outcome, utcnow
from syndication.store import Store
from syndication.store.articles import get_article
from syndication.store.deliveries import (
    PERMANENT_PAUSE,
    Delivery,
    discard,
    get_delivery,
    get_pause,
    list_deliveries,
    pause_channel,
    requeue,
    resume_channel,
)
from syndication.store.outbox import EVENT_KIND_MAX, SHARED, add_event
from syndication.store.timeline import add_step, record_action

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
RETRYABLE = ("failed", "discarded")
DISCARDABLE = ("failed", "pending")


@dataclass(frozen=True)
class Done:
    """What an action did, in words an operator reads back."""

    action: str
    target: str
    message: str
    ids: tuple[int, ...] = ()


def _delivery_or_raise(session: Session, delivery_id: int) -> Delivery:
    found = get_delivery(session, delivery_id)
    if found is None:
        raise NotFound(f"no delivery with id {delivery_id}")
    return found


def _refuse(delivery: Delivery, verb: str, allowed: tuple[str, ...]) -> ValidationError:
    return ValidationError([FieldError("delivery", f"delivery {delivery.id} is {delivery.state}; only "
                                                   f"{' or '.join(allowed)} deliveries can be {verb}")])


def retry_delivery(store: Store, delivery_id: int, actor: str, *, clock: Clock = utcnow) -> Done:
    """Make a failed (or discarded) delivery pending and due now, with its attempts reset.

    Raises ``NotFound`` for an unknown id and ``ValidationError`` for one in another state.
    """
    now = clock()
    with store.transaction() as session:
        delivery = _delivery_or_raise(session, delivery_id)
        if not requeue(session, delivery_id, now=now):
            raise _refuse(delivery, "retried", RETRYABLE)
        record_action(session, actor, "retry", f"delivery:{delivery_id}", now=now, previous=delivery.state)
        add_step(session, delivery.article_id, "ops.retry", now=now, actor=actor, delivery_id=delivery_id,
                 channel=delivery.channel)
    log.info("delivery retried by an operator", extra={"delivery_id": delivery_id, "article_id": delivery.article_id,
                                                      "channel": delivery.channel, "actor": actor})
    return Done("retry", f"delivery:{delivery_id}", f"delivery {delivery_id} ({delivery.channel}, "
                f"article {delivery.article_id}) is pending again", (delivery_id,))


def retry_all(store: Store, actor: str, channel: str | None = None, *, clock: Clock = utcnow) -> Done:
    """Retry every failed delivery (of one channel, if given). Retrying none is not an error."""
    now = clock()
    retried: list[int] = []
    seen: set[int] = set()
    with store.transaction() as session:
        while True:
            batch = [d for d in list_deliveries(session, state="failed", channel=channel, limit=500)
                     if d.id not in seen]
            if not batch:
                break
            for d in batch:
                seen.add(d.id)
                if requeue(session, d.id, now=now):
                    retried.append(d.id)
                    add_step(session, d.article_id, "ops.retry", now=now, actor=actor, delivery_id=d.id,
                             channel=d.channel)
        target = f"channel:{channel}" if channel else "channel:*"
        record_action(session, actor, "retry_all", target, now=now, count=len(retried), ids=retried[:100])
    log.info("failed deliveries retried by an operator", extra={"channel": channel, "count": len(retried),
                                                                "actor": actor})
    scope = f" of channel {channel}" if channel else ""
    return Done("retry_all", target, f"{len(retried)} failed deliveries{scope} are pending again", tuple(retried))


def discard_delivery(store: Store, delivery_id: int, actor: str, *, clock: Clock = utcnow) -> Done:
    """Give up on a failed or pending delivery: it will not be attempted again (until retried).

    Raises ``NotFound`` for an unknown id and ``ValidationError`` for one in another state.
    """
    now = clock()
    with store.transaction() as session:
        delivery = _delivery_or_raise(session, delivery_id)
        if not discard(session, delivery_id, now=now):
            raise _refuse(delivery, "discarded", DISCARDABLE)
        record_action(session, actor, "discard", f"delivery:{delivery_id}", now=now, previous=delivery.state)
        add_step(session, delivery.article_id, "ops.discard", now=now, actor=actor, delivery_id=delivery_id,
                 channel=delivery.channel)
    log.info("delivery discarded by an operator", extra={"delivery_id": delivery_id,
                                                         "article_id": delivery.article_id, "actor": actor})
    return Done("discard", f"delivery:{delivery_id}", f"delivery {delivery_id} ({delivery.channel}, "
                f"article {delivery.article_id}) discarded", (delivery_id,))


def _check_channel(session: Session, channel: str, known: Collection[str] | None) -> None:
    if known is not None and channel not in known and get_pause(session, channel) is None:
        raise NotFound(f"no channel named {channel!r} (known: {', '.join(sorted(known)) or 'none'})")


def pause(store: Store, channel: str, actor: str, reason: str = "", *, known: Collection[str] | None = None,
          clock: Clock = utcnow) -> Done:
    """Stop posting to a channel until an operator resumes it; its deliveries wait, pending.

    ``known`` are the configured channel names: another name raises ``NotFound``.
    """
    now = clock()
    why = f"paused by {actor}" + (f": {reason}" if reason else "")
    with store.transaction() as session:
        _check_channel(session, channel, known)
        pause_channel(session, channel, until=now + PERMANENT_PAUSE, reason=why, now=now)
        record_action(session, actor, "pause", f"channel:{channel}", now=now, reason=reason)
    log.info("channel paused by an operator", extra={"channel": channel, "actor": actor})
    return Done("pause", f"channel:{channel}", f"channel {channel} paused ({why})")


def resume(store: Store, channel: str, actor: str, *, known: Collection[str] | None = None,
           clock: Clock = utcnow) -> Done:
    """Resume a paused channel (an operator's pause, a rate limit or a permanent error).

    Deliveries the pause had put off become due now; the sweeper queues them. ``known`` as
    for ``pause``.
    """
    now = clock()
    with store.transaction() as session:
        _check_channel(session, channel, known)
        previous = get_pause(session, channel)
        waiting = resume_channel(session, channel, now=now)
        record_action(session, actor, "resume", f"channel:{channel}", now=now,
                      previous_reason=previous.reason if previous else None, released=int(waiting))
    log.info("channel resumed by an operator", extra={"channel": channel, "actor": actor, "released": waiting})
    return Done("resume", f"channel:{channel}", f"channel {channel} resumed; {waiting} waiting deliveries due now")


def share_again(store: Store, article_id: str, actor: str, channel: str | None = None, *,
                known: Collection[str] | None = None, clock: Clock = utcnow) -> tuple[Done, Outcome]:
    """Post an article again, on purpose, to every channel or to ``channel``: an outbox event
    (``article.shared``) that the social worker plans as new posts, whatever the flood guard says.

    Returns what was done and the outcome to ``announce`` (left alone, the sweeper hands it
    over). Raises ``NotFound`` for an unknown article or channel (``known`` as for ``pause``),
    ``ValidationError`` for an article that is withdrawn or not released yet.
    """
    now = clock()
    kind = SHARED + (f":{channel}" if channel else "")
    with store.transaction() as session:
        stored = get_article(session, article_id)
        if stored is None:
            raise NotFound(f"no article with id {article_id!r}")
        if stored.status != "published":
            raise ValidationError([FieldError("article", f"article {article_id} is {stored.status}; only a "
                                                         "published article can be shared again")])
        if channel is not None:
            _check_channel(session, channel, known)
            if len(kind) > EVENT_KIND_MAX:
                raise ValidationError([FieldError("channel", f"the name {channel!r} is too long to share to it "
                                                             "alone; share to every channel")])
        event = add_event(session, kind, article_id, stored.revision, now=now)
        target = f"article:{article_id}"
        record_action(session, actor, "share", target, now=now, channel=channel, event_id=event.id)
        add_step(session, article_id, "ops.share", now=now, actor=actor, channel=channel, event_id=event.id)
    log.info("article shared again by an operator", extra={"article_id": article_id, "channel": channel,
                                                           "actor": actor, "event_id": event.id})
    where = f"channel {channel}" if channel else "every channel"
    return (Done("share", target, f"article {article_id} will be posted again to {where}"),
            Outcome(events=[event]))
