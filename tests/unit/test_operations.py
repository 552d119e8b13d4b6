"""An operator retries, discards, pauses and resumes; each action is done once and recorded with who did it."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

import syndication.store.deliveries as deliveries_module
from syndication.errors import NotFound, ValidationError
from syndication.operations import discard_delivery, pause, resume, retry_all, retry_delivery
from syndication.store import Store
from syndication.store.deliveries import (
    PERMANENT_PAUSE,
    claim,
    due_deliveries,
    ensure_delivery,
    get_delivery,
    get_pause,
    mark_failed,
    mark_posted,
    mark_retry,
)
from syndication.store.schema import OpsActionRow
from syndication.store.timeline import steps_of
from tests.conftest import FixedClock

REQUEUE_AFTER = deliveries_module.REQUEUE_AFTER


def make(store: Store, clock: FixedClock, article: str, state: str, channel: str = "x") -> int:
    with store.transaction() as session:
        d, _ = ensure_delivery(session, article_id=article, revision=1, channel=channel, action="post",
                               text="t", now=clock())
        if state != "pending":
            assert claim(session, d.id, now=clock(), lease=timedelta(seconds=30))
            if state == "failed":
                mark_failed(session, d.id, error="HTTP 503", now=clock())
            elif state == "posted":
                mark_posted(session, d.id, remote_id="1", remote_url=None, now=clock())
    return d.id


def state_of(store: Store, delivery_id: int) -> str:
    with store.read() as session:
        found = get_delivery(session, delivery_id)
    assert found is not None
    return found.state


def actions(store: Store) -> list[tuple[str, str, str]]:
    with store.read() as session:
        return [(r.actor, r.action, r.target) for r in session.scalars(select(OpsActionRow).order_by(OpsActionRow.id))]


def due(store: Store, clock: FixedClock) -> list[int]:
    with store.read() as session:
        return due_deliveries(session, now=clock())


def test_a_retried_failure_is_due_for_the_sweeper_and_recorded(store: Store, clock: FixedClock) -> None:
    # Given a delivery that failed after its attempts
    failed = make(store, clock, "art-1", "failed")
    assert failed not in due(store, clock)
    # When alice retries it
    done = retry_delivery(store, failed, "alice", clock=clock)
    # Then it is pending with a fresh count of attempts, and the sweeper will queue it now
    with store.read() as session:
        d = get_delivery(session, failed)
    assert d is not None and (d.state, d.attempts, d.next_attempt_at) == ("pending", 0, None)
    assert failed in due(store, clock)
    assert done.ids == (failed,) and "pending again" in done.message
    # And the action is in the ops log and on the article's timeline
    assert actions(store) == [("alice", "retry", f"delivery:{failed}")]
    with store.read() as session:
        [step] = [s for s in steps_of(session, "art-1") if s.kind == "ops.retry"]
    assert step.detail == {"actor": "alice", "delivery_id": failed, "channel": "x"}


def test_a_posted_delivery_cannot_be_retried(store: Store, clock: FixedClock) -> None:
    posted = make(store, clock, "art-1", "posted")
    with pytest.raises(ValidationError, match="is posted; only failed or discarded"):
        retry_delivery(store, posted, "alice", clock=clock)
    assert state_of(store, posted) == "posted"
    assert actions(store) == []


def test_unknown_ids_raise_not_found(store: Store, clock: FixedClock) -> None:
    with pytest.raises(NotFound, match="no delivery with id 999"):
        retry_delivery(store, 999, "alice", clock=clock)
    with pytest.raises(NotFound, match="no delivery with id 999"):
        discard_delivery(store, 999, "alice", clock=clock)
    assert actions(store) == []


def test_retry_all_retries_every_failure_of_one_channel(store: Store, clock: FixedClock) -> None:
    # Given two failures on x, one on preview, and a posted delivery
    x1, x2 = make(store, clock, "a1", "failed"), make(store, clock, "a2", "failed")
    other = make(store, clock, "a3", "failed", channel="preview")
    posted = make(store, clock, "a4", "posted")
    # When bob retries all failures of x
    done = retry_all(store, "bob", "x", clock=clock)
    # Then exactly those two are pending again, with one recorded action
    assert sorted(done.ids) == [x1, x2]
    assert [state_of(store, i) for i in (x1, x2, other, posted)] == ["pending", "pending", "failed", "posted"]
    assert actions(store) == [("bob", "retry_all", "channel:x")]
    # And retrying all of every channel picks up the rest; doing it again finds nothing
    assert retry_all(store, "bob", clock=clock).ids == (other,)
    assert retry_all(store, "bob", clock=clock).ids == ()


def test_a_discarded_delivery_is_never_attempted_again(store: Store, clock: FixedClock) -> None:
    # Given a pending delivery whose queued message was lost (the sweeper would re-queue it)
    pending = make(store, clock, "art-1", "pending")
    clock.now += REQUEUE_AFTER
    assert pending in due(store, clock)
    # When carol discards it
    discard_delivery(store, pending, "carol", clock=clock)
    # Then the sweeper leaves it alone, and the action is recorded
    assert state_of(store, pending) == "discarded"
    assert pending not in due(store, clock)
    assert actions(store) == [("carol", "discard", f"delivery:{pending}")]
    # And a posted delivery is not discarded
    posted = make(store, clock, "art-2", "posted")
    with pytest.raises(ValidationError):
        discard_delivery(store, posted, "carol", clock=clock)


def test_pause_holds_a_channel_until_resumed_and_resume_releases_its_waiting_posts(
        store: Store, clock: FixedClock) -> None:
    # Given dave pauses x for a reason
    pause(store, "x", "dave", "account under review", known=["preview", "x"], clock=clock)
    with store.read() as session:
        paused = get_pause(session, "x")
    assert paused is not None and paused.active(clock() + timedelta(days=365))
    assert paused.reason == "paused by dave: account under review"
    # And a post that came up meanwhile was put off to the end of the pause (as run_delivery does)
    waiting = make(store, clock, "art-1", "pending")
    with store.transaction() as session:
        assert claim(session, waiting, now=clock(), lease=timedelta(seconds=30))
        mark_retry(session, waiting, at=clock() + PERMANENT_PAUSE, error="channel paused", now=clock(), refund=True)
    assert waiting not in due(store, clock)
    # When dave resumes x
    done = resume(store, "x", "dave", known=["preview", "x"], clock=clock)
    # Then the channel is active and the waiting post is due now
    with store.read() as session:
        resumed = get_pause(session, "x")
    assert resumed is not None and not resumed.active(clock())
    assert waiting in due(store, clock)
    assert "1 waiting deliveries due now" in done.message
    assert actions(store) == [("dave", "pause", "channel:x"), ("dave", "resume", "channel:x")]


def test_an_unknown_channel_cannot_be_paused(store: Store, clock: FixedClock) -> None:
    with pytest.raises(NotFound, match="no channel named 'X'"):
        pause(store, "X", "dave", known=["preview", "x"], clock=clock)
    with pytest.raises(NotFound):
        resume(store, "mastodon", "dave", known=["preview", "x"], clock=clock)
    assert actions(store) == []
