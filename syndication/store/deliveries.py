"""The delivery ledger: one row per (article, revision, channel, action), and channel pauses.

States: ``pending`` → ``claimed`` (with a lease) → ``posted`` | ``failed``; also ``cancelled``
(withdrawn before it went out), ``skipped`` (nothing to do), ``discarded`` (by an operator)
and ``deleted`` (a post taken down again when its article was withdrawn).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from syndication.store.conflicts import insert_missing
from syndication.store.outbox import REDISPATCH_AFTER, redispatch_delay
from syndication.store.schema import ChannelStateRow, DeliveryRow, ListMemberRow

POST_ACTIONS = ("post", "correct")
SHARE = "share-"  # an operator's "share again": action "share-<first 10 hex of its event id>"


def makes_post(action: str) -> bool:
    """Whether a delivery of this action puts a post on the channel (a post, a correction or a
    share): it counts against the budget and is deleted when its article is withdrawn."""
    return action in POST_ACTIONS or action.startswith(SHARE)


def _makes_post() -> ColumnElement[bool]:
    return or_(DeliveryRow.action.in_(POST_ACTIONS), DeliveryRow.action.startswith(SHARE))


PERMANENT_PAUSE = timedelta(days=3650)  # a pause no clock ends: until an operator resumes the channel
FINAL = ("posted", "failed", "cancelled", "skipped", "discarded", "deleted")


@dataclass(frozen=True)
class Delivery:
    id: int
    article_id: str
    revision: int
    channel: str
    action: str
    state: str
    text: str | None
    attempts: int
    lease_until: datetime | None
    next_attempt_at: datetime | None
    remote_id: str | None
    remote_url: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    posted_at: datetime | None


def _delivery(row: DeliveryRow) -> Delivery:
    return Delivery(row.id, row.article_id, row.revision, row.channel, row.action, row.state, row.text,
                    row.attempts, row.lease_until, row.next_attempt_at, row.remote_id, row.remote_url,
                    row.last_error, row.created_at, row.updated_at, row.posted_at)


def _find(session: Session, article_id: str, revision: int, channel: str, action: str) -> DeliveryRow | None:
    return session.scalars(select(DeliveryRow).where(
        DeliveryRow.article_id == article_id, DeliveryRow.revision == revision,
        DeliveryRow.channel == channel, DeliveryRow.action == action)).first()


def ensure_delivery(session: Session, *, article_id: str, revision: int, channel: str, action: str,
                    text: str | None, now: datetime, state: str = "pending",
                    remote_id: str | None = None) -> tuple[Delivery, bool]:
    """The ledger row for this key, created if new. Returns (row, created).

    Safe when two workers plan the same event at once: the insert skips a key that is
    taken (on PostgreSQL after waiting for the transaction that took it), so exactly one
    caller gets ``created``; the others get the row it made.
    """
    inserted = insert_missing(session, DeliveryRow, [{
        "article_id": article_id, "revision": revision, "channel": channel, "action": action, "state": state,
        "text": text, "attempts": 0, "remote_id": remote_id, "created_at": now, "updated_at": now,
        "queue_count": 0}], key=["article_id", "revision", "channel", "action"], returning=[DeliveryRow.id])
    found = _find(session, article_id, revision, channel, action)
    assert found is not None  # inserted above, or by a transaction that committed first
    return _delivery(found), bool(inserted)


def get_delivery(session: Session, delivery_id: int) -> Delivery | None:
    row = session.get(DeliveryRow, delivery_id)
    return _delivery(row) if row else None


def claim(session: Session, delivery_id: int, *, now: datetime, lease: timedelta, owner: str = "") -> bool:
    """Take a delivery for one attempt; True if this caller owns it until ``now + lease``.

    Claimable: pending and due, or claimed by someone whose lease has expired (its outcome is
    unknown: the caller must reconcile before acting again). One conditional UPDATE, so two
    workers can never both win.
    """
    result = session.execute(
        update(DeliveryRow)
        .where(DeliveryRow.id == delivery_id)
        .where(or_(
            and_(DeliveryRow.state == "pending",
                 or_(DeliveryRow.next_attempt_at.is_(None), DeliveryRow.next_attempt_at <= now)),
            and_(DeliveryRow.state == "claimed", DeliveryRow.lease_until < now),
        ))
        .values(state="claimed", lease_until=now + lease, attempts=DeliveryRow.attempts + 1, updated_at=now,
                claimed_by=owner or None)
    )
    return bool(result.rowcount)


def claim_owners(session: Session, *, prefix: str, now: datetime) -> dict[int, str]:
    """Live claims (lease not yet expired) whose owner starts with ``prefix`` (e.g. this host)."""
    rows = session.execute(select(DeliveryRow.id, DeliveryRow.claimed_by).where(
        DeliveryRow.state == "claimed", DeliveryRow.lease_until >= now,
        DeliveryRow.claimed_by.startswith(prefix, autoescape=True)))
    return {int(i): str(o) for i, o in rows}


def expire_leases(session: Session, ids: list[int], *, now: datetime) -> None:
    """End these claims' leases now: their owner is known to be dead, so the outcome is unknown."""
    if ids:
        session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids), DeliveryRow.state == "claimed")
                        .values(lease_until=now - timedelta(microseconds=1)))


def _finish(session: Session, delivery_id: int, now: datetime, **values: object) -> None:
    session.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id, DeliveryRow.state == "claimed")
                    .values(updated_at=now, lease_until=None, **values))


def mark_posted(session: Session, delivery_id: int, *, remote_id: str | None, remote_url: str | None,
                now: datetime) -> None:
    _finish(session, delivery_id, now, state="posted", remote_id=remote_id, remote_url=remote_url,
            posted_at=now, last_error=None)


def mark_retry(session: Session, delivery_id: int, *, at: datetime, error: str, now: datetime,
               refund: bool = False) -> None:
    """Back to pending, due at ``at``. ``refund``: the attempt does not count (a pause, a 429)."""
    extra = {"attempts": DeliveryRow.attempts - 1} if refund else {}
    _finish(session, delivery_id, now, state="pending", next_attempt_at=at, last_error=error, queued_at=None,
            **extra)


def mark_failed(session: Session, delivery_id: int, *, error: str, now: datetime) -> None:
    _finish(session, delivery_id, now, state="failed", last_error=error)


def set_state(session: Session, delivery_id: int, state: str, *, now: datetime, error: str | None = None) -> None:
    session.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id)
                    .values(state=state, updated_at=now, lease_until=None, last_error=error))


def cancel_pending_posts(session: Session, article_id: str, *, now: datetime) -> int:
    """Withdrawn before it went out: pending posts of this article will not be made."""
    result = session.execute(update(DeliveryRow).where(
        DeliveryRow.article_id == article_id, DeliveryRow.state == "pending",
        _makes_post()).values(state="cancelled", updated_at=now))
    return int(result.rowcount or 0)


def deliveries_of(session: Session, article_id: str) -> list[Delivery]:
    return [_delivery(r) for r in session.scalars(
        select(DeliveryRow).where(DeliveryRow.article_id == article_id).order_by(DeliveryRow.id))]


REQUEUE_AFTER = REDISPATCH_AFTER  # the same doubling policy as outbox events (``redispatch_delay``)


def due_deliveries(session: Session, *, now: datetime, limit: int = 500) -> list[int]:
    """Deliveries that should be running and may have no message in the queue: pending and
    due with no message sent, or whose message is overdue (``requeue_at``), or claimed by a
    process whose lease ran out."""
    rows = session.scalars(select(DeliveryRow.id).where(or_(
        and_(DeliveryRow.state == "pending",
             or_(DeliveryRow.next_attempt_at.is_(None), DeliveryRow.next_attempt_at <= now),
             or_(DeliveryRow.queued_at.is_(None), DeliveryRow.requeue_at <= now)),
        and_(DeliveryRow.state == "claimed", DeliveryRow.lease_until < now),
    )).order_by(DeliveryRow.id).limit(limit))
    return list(rows)


def mark_queued(session: Session, ids: list[int], *, now: datetime,
                redispatch_after: timedelta = REQUEUE_AFTER) -> None:
    """A message for each was sent. If one is still pending ``redispatch_after`` (a minute),
    then twice, four times as long... later (at most an hour), it is sent again: doubling keeps
    duplicates few while a backlog drains."""
    if not ids:
        return
    counts = {delivery_id: count for delivery_id, count in session.execute(
        select(DeliveryRow.id, DeliveryRow.queue_count).where(DeliveryRow.id.in_(ids)))}
    by_count: dict[int, list[int]] = {}
    for delivery_id, count in counts.items():
        by_count.setdefault(int(count or 0) + 1, []).append(delivery_id)
    for count, group in by_count.items():
        session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(group))
                        .values(queued_at=now, queue_count=count, requeue_at=now + redispatch_delay(count, redispatch_after)))


def unmark_queued(session: Session, ids: list[int]) -> None:
    """The messages were not sent after all."""
    if ids:
        session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids), DeliveryRow.state == "pending")
                        .values(queued_at=None, requeue_at=None))


def requeue_all_pending(session: Session, *, now: datetime) -> int:
    """After a broker restart, queued messages may be gone: every queued pending row is due now."""
    result = session.execute(update(DeliveryRow).where(DeliveryRow.state == "pending",
                                                        DeliveryRow.queued_at.is_not(None))
                             .values(requeue_at=now))
    return int(result.rowcount or 0)


def list_deliveries(session: Session, *, state: str | None = None, channel: str | None = None,
                    limit: int = 200) -> list[Delivery]:
    query = select(DeliveryRow).order_by(DeliveryRow.id.desc()).limit(limit)
    if state:
        query = query.where(DeliveryRow.state == state)
    if channel:
        query = query.where(DeliveryRow.channel == channel)
    return [_delivery(r) for r in session.scalars(query)]


def count_by_state(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(select(DeliveryRow.channel, DeliveryRow.state, func.count())
                           .group_by(DeliveryRow.channel, DeliveryRow.state))
    return {(c, s): int(n) for c, s, n in rows}


def requeue(session: Session, delivery_id: int, *, now: datetime) -> bool:
    """An operator's retry: a failed (or discarded) delivery becomes pending and due now."""
    result = session.execute(update(DeliveryRow).where(
        DeliveryRow.id == delivery_id, DeliveryRow.state.in_(("failed", "discarded")))
        .values(state="pending", next_attempt_at=None, queued_at=None, attempts=0, updated_at=now))
    return bool(result.rowcount)


def discard(session: Session, delivery_id: int, *, now: datetime) -> bool:
    result = session.execute(update(DeliveryRow).where(
        DeliveryRow.id == delivery_id, DeliveryRow.state.in_(("failed", "pending")))
        .values(state="discarded", updated_at=now))
    return bool(result.rowcount)


def budget_frees_at(session: Session, channel: str, *, budget: int, window: timedelta,
                    now: datetime) -> datetime | None:
    """None while the channel has posted fewer than ``budget`` times in the last ``window``;
    otherwise when the oldest post that counts leaves the window. Two indexed queries."""
    since = now - window
    counted = (DeliveryRow.channel == channel, DeliveryRow.posted_at >= since,
               _makes_post())
    made = session.scalar(select(func.count()).select_from(DeliveryRow).where(*counted)) or 0
    if made < budget:
        return None
    oldest = session.scalar(select(DeliveryRow.posted_at).where(*counted).order_by(DeliveryRow.posted_at)
                            .offset(made - budget).limit(1))
    return (oldest or now) + window


def posts_in_window(session: Session, channel: str, *, window: timedelta, now: datetime) -> int:
    """How many posts this channel made in the last ``window`` (for the budget left in status)."""
    return session.scalar(select(func.count()).select_from(DeliveryRow).where(
        DeliveryRow.channel == channel, DeliveryRow.posted_at >= now - window,
        _makes_post())) or 0


# -- channel pauses ------------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelPause:
    channel: str
    paused_until: datetime | None
    reason: str | None
    updated_at: datetime

    def active(self, now: datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now


def get_pause(session: Session, channel: str) -> ChannelPause | None:
    row = session.get(ChannelStateRow, channel)
    return ChannelPause(row.channel, row.paused_until, row.reason, row.updated_at) if row else None


def all_pauses(session: Session) -> list[ChannelPause]:
    return [ChannelPause(r.channel, r.paused_until, r.reason, r.updated_at)
            for r in session.scalars(select(ChannelStateRow).order_by(ChannelStateRow.channel))]


def pause_channel(session: Session, channel: str, *, until: datetime, reason: str, now: datetime) -> None:
    """Pause a channel until ``until``; a pause still running that ends later is kept.

    The row is created if missing (once, however many workers are rate limited at the same
    moment), then locked, so concurrent pauses keep the longest.
    """
    insert_missing(session, ChannelStateRow, [{"channel": channel, "paused_until": None, "reason": None,
                                               "updated_at": now}], key=["channel"])
    row = session.get(ChannelStateRow, channel, with_for_update=True, populate_existing=True)
    assert row is not None  # inserted above, or by a transaction that committed first
    row.paused_until = max(until, row.paused_until) if row.paused_until and row.paused_until > now else until
    row.reason, row.updated_at = reason, now


def count_refusal(session: Session, channel: str, *, now: datetime) -> int:
    """Count one more unexplained refusal in a row on ``channel``; returns how many now."""
    insert_missing(session, ChannelStateRow, [{"channel": channel, "paused_until": None, "reason": None,
                                               "updated_at": now, "refusals": 0}], key=["channel"])
    row = session.get(ChannelStateRow, channel, with_for_update=True, populate_existing=True)
    assert row is not None
    row.refusals = (row.refusals or 0) + 1
    return row.refusals


def clear_refusals(session: Session, channel: str) -> None:
    """A request went through: the refusals before it are no longer "in a row"."""
    session.execute(update(ChannelStateRow).where(ChannelStateRow.channel == channel, ChannelStateRow.refusals > 0)
                    .values(refusals=0))


def resume_channel(session: Session, channel: str, *, now: datetime) -> int:
    """End a channel's pause. Deliveries the pause had put off (to its end: years, for a
    permanent one) become due now. Returns how many."""
    row = session.get(ChannelStateRow, channel)
    if row is not None:
        row.paused_until, row.reason, row.updated_at, row.refusals = None, None, now, 0
    waiting = session.execute(update(DeliveryRow).where(
        DeliveryRow.channel == channel, DeliveryRow.state == "pending", DeliveryRow.next_attempt_at > now)
        .values(next_attempt_at=None, queued_at=None, updated_at=now))
    return int(waiting.rowcount or 0)


# -- staff list membership -----------------------------------------------------------------

def is_list_member(session: Session, channel: str, list_id: str, handle: str) -> bool:
    return session.get(ListMemberRow, (channel, list_id, handle.lower())) is not None


def add_list_member(session: Session, channel: str, list_id: str, handle: str, *, now: datetime) -> None:
    """Remember that ``handle`` is on the list; adding it again (or at the same time) changes nothing."""
    insert_missing(session, ListMemberRow, [{"channel": channel, "list_id": list_id, "handle": handle.lower(),
                                             "added_at": now}], key=["channel", "list_id", "handle"])
