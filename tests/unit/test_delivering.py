"""Running a delivery: each article reaches each channel exactly once, whatever the service answers.

A real store (SQLite), the preview channel with failures scripted on demand, a fixed clock
and a fixed random source for the back-off jitter.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from kombu.exceptions import OperationalError

from config import SiteConfig, Settings
from syndication.channels.base import PostContext, PostResult
from syndication.channels.preview import PreviewChannel
from syndication.channels.registry import Channels
from syndication.delivering import LEASE, release_dead_claims, run_delivery
from syndication.errors import (
    AlreadyPosted,
    ChannelError,
    PermanentChannelError,
    RateLimited,
    RejectedPost,
    TransientChannelError,
)
from syndication.publishing import parse_batch, publish, unpublish
from syndication.social import plan_event
from syndication.store import Store
from syndication.store.deliveries import (
    PERMANENT_PAUSE,
    Delivery,
    claim,
    due_deliveries,
    get_delivery,
    get_pause,
)
from syndication.store.timeline import Step, steps_of
from syndication.sweeping import queue_deliveries
from tests.conftest import FixedClock, article_json
from workers.app import create_app
from workers.broker import BrokerState, client_for
from workers.dispatch import CeleryDispatcher
from workers.embedded_redis import EmbeddedRedis


def social_site(**preview: object) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": {"title": "Delivery Gazette", "base_url": "https://news.test.example/", "timezone": "UTC"},
        "staff": {"Ada Reporter": {"x": "adareporter"}},
        "channels": {"preview": preview},
    })


@dataclass(frozen=True)
class LostAnswer:
    """The service made the post, then the connection dropped before its answer arrived."""

    error: ChannelError


class ScriptedPreview(PreviewChannel):
    """The preview channel, with the service's next answers to ``post`` scripted by the test."""

    def __init__(self, clock: FixedClock, *, reject_duplicates: bool = False) -> None:
        super().__init__(clock=clock, reject_duplicates=reject_duplicates)
        self.script: list[ChannelError | LostAnswer] = []
        self.lookups = 0
        self.calling = threading.Event()  # set when a call to post has begun
        self.answer = threading.Event()  # a post waits for this before the service answers
        self.answer.set()
        self.before_post: Callable[[], None] = lambda: None

    def answer_next(self, *answers: ChannelError | LostAnswer) -> None:
        self.script.extend(answers)

    def post(self, text: str, *, url: str, context: PostContext | None = None,
             reply_to: str | None = None) -> PostResult:
        self.before_post()
        self.calling.set()
        assert self.answer.wait(10), "the test never let the post finish"
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, LostAnswer):
                super().post(text, url=url, reply_to=reply_to)
                raise answer.error
            raise answer
        return super().post(text, url=url, reply_to=reply_to)

    def find_post(self, url: str, *, text: str | None = None) -> PostResult | None:
        self.lookups += 1
        return super().find_post(url, text=text)

    @property
    def live(self) -> list[str]:
        """Ids of the posts the service shows."""
        return [p.remote_id for p in self.posts if not p.deleted]


@pytest.fixture
def channel(clock: FixedClock) -> ScriptedPreview:
    return ScriptedPreview(clock)


def no_jitter() -> float:
    return 0.5  # the back-off is exactly 1 s, 2 s, 4 s...


def claimed_by_a_worker(store: Store, site: SiteConfig, channel: PreviewChannel, clock: FixedClock) -> int:
    """A planned post that a worker (``worker-1:4242``) has claimed; returns the delivery id."""
    delivery_id = planned(store, site, channel, clock)
    with store.transaction() as session:
        assert claim(session, delivery_id, now=clock(), lease=LEASE, owner="worker-1:4242")
    return delivery_id


def planned(store: Store, site: SiteConfig, channel: PreviewChannel, clock: FixedClock, n: int | str = 1) -> int:
    """Publish a fresh article and plan its post; returns the delivery id."""
    articles, refused = parse_batch([article_json(n, published_at=clock().isoformat())], site=site)
    assert not refused
    [event] = publish(store, site, articles, clock=clock).events
    [delivery_id] = plan_event(store, site, {"preview": channel}, event.id, clock=clock)
    return delivery_id


def row(store: Store, delivery_id: int) -> Delivery:
    with store.read() as session:
        found = get_delivery(session, delivery_id)
    assert found is not None
    return found


def story(store: Store, article_id: str = "art-1") -> list[Step]:
    """The article's timeline, delivery steps only."""
    with store.read() as session:
        return [s for s in steps_of(session, article_id) if s.kind.startswith("delivery.")]


def kinds(store: Store, article_id: str = "art-1") -> list[str]:
    return [s.kind for s in story(store, article_id)]


# -- a normal post ------------------------------------------------------------------------

def test_a_new_article_is_posted_once_with_its_remote_id_recorded(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a fresh article whose post is planned for the preview channel
    site = social_site()
    delivery_id = planned(store, site, channel, clock)
    assert row(store, delivery_id).state == "pending"
    seen_during_call: list[str] = []
    channel.before_post = lambda: seen_during_call.append(row(store, delivery_id).state)
    # When the delivery runs
    attempt = run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock, rng=no_jitter)
    # Then the claim was committed before the service was called, and the post is recorded
    assert seen_during_call == ["claimed"]
    assert attempt.state == "posted"
    [post] = channel.posts
    assert "https://news.test.example/a/1" in post.text.split()
    done = row(store, delivery_id)
    assert (done.state, done.attempts, done.remote_id) == ("posted", 1, post.remote_id)
    assert done.remote_url == f"preview://posts/{post.remote_id}" and done.posted_at == clock()
    assert kinds(store) == ["delivery.planned", "delivery.attempt", "delivery.posted"]
    assert story(store)[-1].detail["note"] == "posted"
    # And running it again (a duplicate message) posts nothing more
    assert run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock).state == "posted"
    assert len(channel.posts) == 1 and channel.lookups == 0


def test_a_staff_author_joins_the_staff_list_once(store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a channel that keeps a staff list, and two articles by the same staff reporter
    site = social_site()
    channels = Channels({"preview": channel}, staff_lists={"preview": "staff-1"})
    first, second = planned(store, site, channel, clock, 1), planned(store, site, channel, clock, 2)
    # When both are posted
    for delivery_id in (first, second):
        assert run_delivery(store, site, channels, delivery_id, clock=clock).state == "posted"
    # Then the reporter was added to the list once, and the first article's story says so
    assert channel.list_members == ["adareporter"]
    assert kinds(store, "art-1")[-1] == "delivery.posted"
    with store.read() as session:
        assert [s.detail["handle"] for s in steps_of(session, "art-1") if s.kind == "staff_list.added"] == [
            "adareporter"]
        assert not [s for s in steps_of(session, "art-2") if s.kind == "staff_list.added"]


def test_an_author_the_cms_marks_as_staff_joins_the_list_with_the_channel_s_handle(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given an author on no [staff] entry, marked "staff": true, with handles on several services,
    # and a non-staff guest with an X handle
    site = social_site()
    channels = Channels({"preview": channel}, staff_lists={"preview": "staff-1"})
    authors = [{"name": "Nia Newhire", "staff": True, "social": {"x": "nianewhire", "mastodon": "@nia@news.social"}},
               {"name": "Guest Writer", "social": {"x": "guestwriter"}}]
    articles, refused = parse_batch([article_json(1, published_at=clock().isoformat(), authors=authors)], site=site)
    assert not refused
    [event] = publish(store, site, articles, clock=clock).events
    [delivery_id] = plan_event(store, site, channels, event.id, clock=clock)
    # When the post goes out
    assert run_delivery(store, site, channels, delivery_id, clock=clock).state == "posted"
    # Then both are mentioned, but only the staff author joins the list, under this channel's (X-like) handle
    assert "@nianewhire" in channel.posts[0].text and "@guestwriter" in channel.posts[0].text
    assert channel.list_members == ["nianewhire"]


def test_an_image_that_cannot_be_fetched_never_blocks_the_post_and_the_story_says_why(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a channel that takes images, and an article whose image is on a host the site does not allow
    site = social_site()
    channels = Channels({"preview": channel}, media={"preview"})
    image = {"url": "https://cdn.elsewhere.example/lead.jpg", "alt": "The council chamber"}
    articles, refused = parse_batch([article_json(1, published_at=clock().isoformat(), image=image)], site=site)
    assert not refused
    [event] = publish(store, site, articles, clock=clock).events
    [delivery_id] = plan_event(store, site, channels, event.id, clock=clock)
    # When the post goes out
    assert run_delivery(store, site, channels, delivery_id, clock=clock).state == "posted"
    # Then it was made without the image, and the article's story says why
    assert len(channel.live) == 1
    [skipped] = [s for s in story(store) if s.kind == "delivery.image_skipped"]
    assert skipped.detail["reason"] == "image host cdn.elsewhere.example is not allowed"


# -- transient errors -----------------------------------------------------------------------

def test_a_transient_error_is_retried_after_a_jittered_backoff(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a service that answers 503 once
    site = social_site()
    delivery_id = planned(store, site, channel, clock)
    channel.answer_next(TransientChannelError("HTTP 503 from the service"))
    # When the delivery runs, with a random source that draws 0.25
    attempt = run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock, rng=lambda: 0.25)
    # Then a retry is scheduled 1 s x (0.5 + 0.25) later, and the attempt is counted
    assert attempt.state == "pending" and attempt.retry_at == clock() + timedelta(seconds=0.75)
    waiting = row(store, delivery_id)
    assert (waiting.state, waiting.attempts, waiting.last_error) == ("pending", 1, "HTTP 503 from the service")
    assert waiting.next_attempt_at == attempt.retry_at
    assert kinds(store) == ["delivery.planned", "delivery.attempt", "delivery.retry"]
    assert story(store)[-1].detail == {"channel": "preview", "delivery_id": delivery_id, "attempt": 1,
                                       "error": "HTTP 503 from the service",
                                       "retry_at": attempt.retry_at.isoformat()}
    # And before that time, running it again does nothing
    run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock)
    assert row(store, delivery_id).attempts == 1 and channel.posts == []
    # When the time comes
    clock.now = attempt.retry_at
    assert run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock).state == "posted"
    # Then the service was searched first (the outcome of attempt 1 was not known), and posted to once
    assert channel.lookups == 1 and len(channel.posts) == 1
    assert row(store, delivery_id).attempts == 2
    assert kinds(store)[-2:] == ["delivery.attempt", "delivery.posted"]


def test_the_backoff_base_and_cap_come_from_the_settings(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given an operator who set a 10 s back-off base, capped at 15 s, and a service that answers 503
    site = social_site()
    delivery_id = planned(store, site, channel, clock)
    channels = Channels({"preview": channel})
    retry_ats = []
    for _ in range(2):
        channel.answer_next(TransientChannelError("HTTP 503 from the service"))
        # When the delivery runs (jitter factor exactly 1)
        attempt = run_delivery(store, site, channels, delivery_id, clock=clock, rng=lambda: 0.5,
                               backoff_base_s=10, backoff_cap_s=15)
        retry_ats.append(attempt.retry_at - clock())
        clock.now = attempt.retry_at
    # Then the first retry waits the base, and the second is held to the cap instead of 20 s
    assert retry_ats == [timedelta(seconds=10), timedelta(seconds=15)]


def test_after_max_attempts_transient_errors_fail_the_delivery(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a channel allowed three attempts, and a service that answers 503 every time
    site = social_site(max_attempts=3)
    delivery_id = planned(store, site, channel, clock)
    channel.answer_next(*(TransientChannelError("HTTP 503 from the service") for _ in range(3)))
    # When the delivery runs each time its retry falls due
    retries = []
    for _ in range(2):
        attempt = run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock, rng=no_jitter)
        assert attempt.state == "pending" and attempt.retry_at is not None
        retries.append(attempt.retry_at - clock())
        clock.now = attempt.retry_at
    last = run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock, rng=no_jitter)
    # Then the back-off doubled, and the third attempt failed the delivery for good
    assert retries == [timedelta(seconds=1), timedelta(seconds=2)]
    assert last.state == "failed"
    failed = row(store, delivery_id)
    assert (failed.state, failed.attempts, failed.last_error) == ("failed", 3, "HTTP 503 from the service")
    assert kinds(store) == ["delivery.planned", "delivery.attempt", "delivery.retry", "delivery.attempt",
                            "delivery.retry", "delivery.attempt", "delivery.failed"]
    assert story(store)[-1].detail["attempt"] == 3
    # And nothing was posted, and the channel is not paused by it
    assert channel.posts == []
    with store.read() as session:
        assert get_pause(session, "preview") is None


# -- 429 and permanent errors -------------------------------------------------------------

def test_a_429_pauses_the_channel_until_retry_at_and_refunds_the_attempt(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given two articles, and a service that answers the first post with 429 for 15 minutes
    site = social_site()
    first, second = planned(store, site, channel, clock, 1), planned(store, site, channel, clock, 2)
    retry_at = clock() + timedelta(minutes=15)
    channel.answer_next(RateLimited("HTTP 429 Too Many Requests", retry_at=retry_at))
    # When the first delivery runs
    attempt = run_delivery(store, site, Channels({"preview": channel}), first, clock=clock, rng=no_jitter)
    # Then it waits for retry_at, the attempt does not count, and the channel is paused until then
    assert (attempt.state, attempt.retry_at) == ("pending", retry_at)
    waiting = row(store, first)
    assert (waiting.state, waiting.attempts, waiting.next_attempt_at) == ("pending", 0, retry_at)
    with store.read() as session:
        pause = get_pause(session, "preview")
    assert pause is not None and (pause.paused_until, pause.reason) == (retry_at, "rate limited (HTTP 429)")
    assert kinds(store, "art-1")[-1] == "delivery.rate_limited"
    assert story(store, "art-1")[-1].detail["retry_at"] == retry_at.isoformat()
    # When the second delivery runs during the pause
    clock.now += timedelta(minutes=5)
    deferred = run_delivery(store, site, Channels({"preview": channel}), second, clock=clock, rng=no_jitter)
    # Then it is put off to the end of the pause without an attempt
    assert (deferred.state, deferred.retry_at) == ("pending", retry_at)
    put_off = row(store, second)
    assert (put_off.attempts, put_off.last_error) == (0, "channel paused: rate limited (HTTP 429)")
    assert channel.posts == [] and "delivery.attempt" not in kinds(store, "art-2")
    # When the pause ends, both go out, once each
    clock.now = retry_at
    for delivery_id in (first, second):
        assert run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock).state == "posted"
    assert sorted(p.url for p in channel.posts) == ["https://news.test.example/a/1", "https://news.test.example/a/2"]
    assert row(store, first).attempts == 1 and row(store, second).attempts == 1


def test_a_permanent_error_fails_the_delivery_and_pauses_the_channel(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given two articles, and a service that refuses our credentials
    site = social_site()
    first, second = planned(store, site, channel, clock, 1), planned(store, site, channel, clock, 2)
    channel.answer_next(PermanentChannelError("HTTP 401 from the service: could not authenticate you"))
    # When the first delivery runs
    attempt = run_delivery(store, site, Channels({"preview": channel}), first, clock=clock, rng=no_jitter)
    # Then it fails with the service's words, and the channel is paused until an operator resumes it
    assert attempt.state == "failed"
    failed = row(store, first)
    assert (failed.state, failed.last_error) == ("failed", "HTTP 401 from the service: could not authenticate you")
    with store.read() as session:
        pause = get_pause(session, "preview")
    assert pause is not None and pause.paused_until == clock() + PERMANENT_PAUSE
    assert pause.reason == "HTTP 401 from the service: could not authenticate you"
    assert kinds(store, "art-1")[-1] == "delivery.failed" and story(store, "art-1")[-1].detail["channel_paused"]
    # When the second delivery runs, even a day later
    clock.now += timedelta(days=1)
    deferred = run_delivery(store, site, Channels({"preview": channel}), second, clock=clock, rng=no_jitter)
    # Then it waits for the pause to end, without an attempt, and nothing was posted
    assert (deferred.state, deferred.retry_at) == ("pending", pause.paused_until)
    put_off = row(store, second)
    assert put_off.attempts == 0
    assert put_off.last_error == "channel paused: HTTP 401 from the service: could not authenticate you"
    assert channel.posts == []


def test_a_request_the_service_refuses_fails_that_delivery_and_the_channel_goes_on(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given two articles, and a service that answers the first post "400: text is invalid"
    site = social_site()
    first, second = planned(store, site, channel, clock, 1), planned(store, site, channel, clock, 2)
    channel.answer_next(RejectedPost("HTTP 400: the text parameter is invalid"))
    # When both deliveries run
    refused = run_delivery(store, site, Channels({"preview": channel}), first, clock=clock, rng=no_jitter)
    posted = run_delivery(store, site, Channels({"preview": channel}), second, clock=clock, rng=no_jitter)
    # Then the first is in the failed set with the service's reason, the second went out
    assert (refused.state, posted.state) == ("failed", "posted")
    assert row(store, first).last_error == "HTTP 400: the text parameter is invalid"
    assert len(channel.live) == 1
    # And the channel was never paused
    with store.read() as session:
        pause = get_pause(session, "preview")
    assert pause is None or not pause.active(clock())
    assert not story(store, "art-1")[-1].detail["channel_paused"]


def test_unexplained_refusals_in_a_row_trip_the_breaker_and_say_why(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a channel whose breaker trips at three unexplained refusals in a row
    site = social_site(breaker_refusals=3)
    ids = [planned(store, site, channel, clock, n) for n in range(1, 6)]
    # When two posts are refused without a reason, one goes through, then three are refused
    channel.answer_next(RejectedPost("HTTP 404", explained=False), RejectedPost("HTTP 404", explained=False))
    states = [run_delivery(store, site, Channels({"preview": channel}), i, clock=clock).state for i in ids[:3]]
    # Then a success in between means they were not "in a row": the channel goes on
    assert states == ["failed", "failed", "posted"]
    with store.read() as session:
        pause = get_pause(session, "preview")
    assert pause is None or not pause.active(clock())
    # When three in a row are refused (an explained 400 among them does not count)
    more = [planned(store, site, channel, clock, n) for n in range(6, 8)]
    channel.answer_next(RejectedPost("HTTP 409", explained=False), RejectedPost("HTTP 400: bad text"),
                        RejectedPost("HTTP 409", explained=False), RejectedPost("HTTP 418 teapot", explained=False))
    states = [run_delivery(store, site, Channels({"preview": channel}), i, clock=clock).state
              for i in [*ids[3:], *more]]
    # Then all four failed, and the third unexplained one paused the channel, saying why
    assert states == ["failed"] * 4
    with store.read() as session:
        pause = get_pause(session, "preview")
    assert pause is not None and pause.active(clock())
    assert pause.reason == "breaker: 3 unexplained refusals in a row, the last: HTTP 418 teapot"


# -- budget and configuration -----------------------------------------------------------

def test_a_spent_posting_budget_puts_the_post_off_without_an_attempt(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a channel allowed one post per 15 minutes, which just posted
    site = social_site(posts_per_window=1, window_s=900)
    first, second = planned(store, site, channel, clock, 1), planned(store, site, channel, clock, 2)
    posted_at = clock()
    assert run_delivery(store, site, Channels({"preview": channel}), first, clock=clock).state == "posted"
    # When the next post is due a minute later
    clock.now += timedelta(minutes=1)
    deferred = run_delivery(store, site, Channels({"preview": channel}), second, clock=clock, rng=no_jitter)
    # Then it is put off until the first post leaves the window, and no attempt is counted
    assert (deferred.state, deferred.retry_at) == ("pending", posted_at + timedelta(seconds=900))
    put_off = row(store, second)
    assert (put_off.state, put_off.attempts) == ("pending", 0)
    assert put_off.last_error == "posting budget spent for this window"
    assert len(channel.posts) == 1 and kinds(store, "art-2") == ["delivery.planned"]
    # When the window has passed, it goes out
    clock.now = posted_at + timedelta(seconds=901)
    assert run_delivery(store, site, Channels({"preview": channel}), second, clock=clock).state == "posted"
    assert len(channel.posts) == 2 and row(store, second).attempts == 1


def test_a_channel_no_longer_configured_fails_the_delivery_with_a_clear_error(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a post planned for the preview channel
    site = social_site()
    delivery_id = planned(store, site, channel, clock)
    # When it runs in a process where that channel is not configured (credentials removed, say)
    attempt = run_delivery(store, site, Channels(), delivery_id, clock=clock, rng=no_jitter)
    # Then it fails, naming the channel
    assert attempt.state == "failed"
    failed = row(store, delivery_id)
    assert (failed.state, failed.last_error) == ("failed", "channel 'preview' is not configured")
    assert channel.posts == []


# -- unknown outcomes ---------------------------------------------------------------------

def test_a_post_whose_answer_was_lost_is_adopted_never_posted_twice(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a service that makes the post and then drops the connection before answering
    site = social_site()
    delivery_id = planned(store, site, channel, clock)
    channel.answer_next(LostAnswer(TransientChannelError("connection reset by peer")))
    attempt = run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock, rng=no_jitter)
    assert attempt.state == "pending" and len(channel.posts) == 1
    # When the retry runs
    clock.now = attempt.retry_at  # type: ignore[assignment]
    assert run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock).state == "posted"
    # Then the earlier post was found and adopted: one post on the service, its id in the ledger
    [post] = channel.posts
    assert row(store, delivery_id).remote_id == post.remote_id
    assert channel.lookups == 1
    assert story(store)[-1].detail["note"] == "adopted an earlier post"


def test_a_claim_whose_worker_died_after_posting_is_adopted_once_its_lease_expires(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a worker that claimed the delivery, made the post and died before noting it
    site = social_site()
    delivery_id = claimed_by_a_worker(store, site, channel, clock)
    channel.post(row(store, delivery_id).text or "", url="https://news.test.example/a/1")
    # When another worker runs it while the lease still holds
    held = run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock)
    # Then it leaves it alone
    assert held.state == "claimed" and channel.lookups == 0
    # When it runs after the lease expired
    clock.now += LEASE + timedelta(seconds=1)
    assert run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock).state == "posted"
    # Then the post found on the service is adopted, not made again
    [post] = channel.posts
    done = row(store, delivery_id)
    assert (done.state, done.remote_id, done.attempts) == ("posted", post.remote_id, 2)
    assert story(store)[-1].detail["note"] == "adopted an earlier post"


def test_a_claim_whose_worker_died_before_posting_is_posted_once(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a worker that claimed the delivery and died before the service got the post
    site = social_site()
    delivery_id = claimed_by_a_worker(store, site, channel, clock)
    # When it runs after the lease expired
    clock.now += LEASE + timedelta(seconds=1)
    assert run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock).state == "posted"
    # Then the service was searched, found nothing, and was posted to once
    assert channel.lookups == 1 and len(channel.posts) == 1
    assert story(store)[-1].detail["note"] == "posted"


def test_a_post_the_service_already_holds_is_adopted(clock: FixedClock, store: Store) -> None:
    # Given a service that refuses duplicates and already holds this very post (made by hand, say)
    channel = ScriptedPreview(clock, reject_duplicates=True)
    site = social_site()
    delivery_id = planned(store, site, channel, clock)
    earlier = channel.post(row(store, delivery_id).text or "", url="https://news.test.example/a/1")
    # When the delivery runs
    assert run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock).state == "posted"
    # Then the post is not made twice: the one there is recorded
    assert len(channel.posts) == 1
    assert row(store, delivery_id).remote_id == earlier.remote_id
    assert story(store)[-1].detail["note"] == "the service already had this post"


def test_a_duplicate_the_service_cannot_show_is_marked_posted_without_an_id(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a service that calls the post a duplicate but whose recent posts do not show it
    site = social_site()
    delivery_id = planned(store, site, channel, clock)
    channel.answer_next(AlreadyPosted("the service says: status is a duplicate"))
    # When the delivery runs
    assert run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock).state == "posted"
    # Then it is not posted again, and the ledger says so (no remote id to link to)
    assert channel.posts == []
    done = row(store, delivery_id)
    assert (done.state, done.remote_id, done.remote_url) == ("posted", None, None)
    assert run_delivery(store, site, Channels({"preview": channel}), delivery_id, clock=clock).state == "posted"
    assert channel.posts == []


# -- the sweeper's part -------------------------------------------------------------------

def test_claims_of_dead_processes_on_this_host_are_released(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given three claims: a dead process on this host, a live one, and one on another host
    site = social_site()
    owners = {owner: planned(store, site, channel, clock, n)
              for n, owner in enumerate(("web-1:111", "web-1:222", "web-2:111"), start=1)}
    with store.transaction() as session:
        for owner, delivery_id in owners.items():
            assert claim(session, delivery_id, now=clock(), lease=LEASE, owner=owner)
    leases = {owner: row(store, i).lease_until for owner, i in owners.items()}
    # When this host ("web-1") releases the claims of its dead processes (only pid 222 is alive)
    released = release_dead_claims(store, host="web-1", alive=lambda pid: pid == 222, clock=clock)
    # Then only the dead process's claim is released, and it is due at once
    assert released == 1
    with store.read() as session:
        assert due_deliveries(session, now=clock()) == [owners["web-1:111"]]
    assert row(store, owners["web-1:222"]).lease_until == leases["web-1:222"]
    assert row(store, owners["web-2:111"]).lease_until == leases["web-2:111"]
    # And running it reconciles first (its outcome is unknown) and posts once; the others are left alone
    channels = Channels({"preview": channel})
    assert run_delivery(store, site, channels, owners["web-1:111"], clock=clock).state == "posted"
    assert channel.lookups == 1 and len(channel.posts) == 1
    assert run_delivery(store, site, channels, owners["web-1:222"], clock=clock).state == "claimed"
    assert run_delivery(store, site, channels, owners["web-2:111"], clock=clock).state == "claimed"
    assert len(channel.posts) == 1


def test_deliveries_not_sent_to_a_stopped_broker_stay_due_for_the_sweeper(
        store: Store, channel: ScriptedPreview, clock: FixedClock, tmp_path: Path) -> None:
    # Given the real Celery dispatcher on a real redis-server, and two planned posts
    site = social_site()
    first, second = planned(store, site, channel, clock, 1), planned(store, site, channel, clock, 2)
    redis_server = EmbeddedRedis(tmp_path)
    url = redis_server.start()
    try:
        dispatcher = CeleryDispatcher(create_app(Settings(broker_url=url)), BrokerState(client_for(url)),
                                      window_ms=50)
        # When the first is queued while Redis runs
        queue_deliveries(store, dispatcher, [first], clock=clock)
        # Then its message is in the social queue, and it is no longer due for the sweeper
        [message] = client_for(url).lrange("social", 0, -1)
        headers = json.loads(message)["headers"]
        assert (headers["task"], headers["argsrepr"]) == ("syndication.deliver", f"[{first}]")
    finally:
        redis_server.stop()
    with store.read() as session:
        assert due_deliveries(session, now=clock()) == [second]
    # When the second is queued after Redis stopped
    with pytest.raises(OperationalError):
        queue_deliveries(store, dispatcher, [second], clock=clock)
    # Then it is not noted as queued: the next sweep sends it
    with store.read() as session:
        assert due_deliveries(session, now=clock()) == [second]
    assert row(store, second).state == "pending"


# -- withdrawal while a post is in flight -------------------------------------------------

def test_withdrawing_during_a_post_deletes_it_once_the_post_lands(
        store: Store, channel: ScriptedPreview, clock: FixedClock) -> None:
    # Given a worker in the middle of posting an article (the service has not answered yet)
    site = social_site()
    post_id = planned(store, site, channel, clock)
    channels = Channels({"preview": channel})
    channel.answer.clear()
    worker = threading.Thread(target=run_delivery, args=(store, site, channels, post_id), kwargs={"clock": clock})
    worker.start()
    try:
        assert channel.calling.wait(10)
        # When the article is withdrawn
        [event] = unpublish(store, "art-1", clock=clock).events
        [delete_id] = plan_event(store, site, {"preview": channel}, event.id, clock=clock)
        # Then the post in flight is not cancelled, and the deletion waits for it
        assert row(store, post_id).state == "claimed"
        waiting = run_delivery(store, site, channels, delete_id, clock=clock, rng=no_jitter)
        assert (waiting.state, waiting.retry_at) == ("pending", clock() + timedelta(seconds=1))
        assert row(store, delete_id).last_error == "a post of this article is still in flight"
    finally:
        # When the post lands
        channel.answer.set()
        worker.join(10)
    assert not worker.is_alive()
    assert len(channel.live) == 1 and row(store, post_id).state == "posted"
    # Then the retried deletion takes it down, once
    clock.now = waiting.retry_at  # type: ignore[assignment]
    assert run_delivery(store, site, channels, delete_id, clock=clock).state == "posted"
    assert [p.deleted for p in channel.posts] == [True]
    assert row(store, post_id).state == "deleted"
    assert kinds(store)[-1] == "delivery.deleted"
    assert "delivery.cancelled" not in kinds(store)
