"""Corrections: posted only when asked, in their own words, as a reply to the original post, and
marked posted only when a post of the correction's text exists.

The X channel through real tweepy against the local X stand-in, a real store, a fixed clock.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from config import SiteConfig
from syndication.channels.registry import Channels
from syndication.channels.x import XChannel
from syndication.delivering import run_delivery
from syndication.publishing import parse_batch, publish
from syndication.operations import share_again
from syndication.social import plan_event
from syndication.store import Store
from syndication.store.deliveries import Delivery, claim, deliveries_of, get_pause
from syndication.store.timeline import steps_of
from tests.conftest import FixedClock, article_json
from tests.support.x_standin import DUPLICATE_DETAIL, XStandIn, problem
from tests.unit.channels.test_x import CONSUMER_SECRET, ACCESS_TOKEN_SECRET, settings

URL = "https://news.test.example/a/1"


def site_with(*, correction_posts: bool = False, **x: object) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": {"title": "Corrections Gazette", "base_url": "https://news.test.example/", "timezone": "UTC"},
        "social": {"correction_posts": correction_posts, "mention_authors": False},
        "channels": {"x": {"template": "{{ title }} {{ url }}", **x}},
    })


@pytest.fixture
def x() -> Iterator[XStandIn]:
    with XStandIn(secrets=(CONSUMER_SECRET, ACCESS_TOKEN_SECRET)) as standin:
        yield standin


@pytest.fixture
def channels(x: XStandIn) -> Channels:
    return Channels({"x": XChannel(settings(x.url), timeout=2)})


def send(store: Store, site: SiteConfig, clock: FixedClock, **overrides: Any) -> list[str]:
    """Article 1 as the CMS sends it now; returns the ids of the events written."""
    articles, refused = parse_batch([article_json(1, published_at=clock().isoformat(), **overrides)], site=site)
    assert not refused
    return [e.id for e in publish(store, site, articles, clock=clock).events]


def deliver_all(store: Store, site: SiteConfig, channels: Channels, clock: FixedClock, event_id: str) -> list[str]:
    """Plan an event and run each delivery it calls for once; returns their states."""
    ids = plan_event(store, site, channels.active, event_id, clock=clock)
    return [run_delivery(store, site, channels, i, clock=clock).state for i in ids]


def ledger(store: Store) -> list[Delivery]:
    with store.read() as session:
        return deliveries_of(session, "art-1")


def posted_original(store: Store, site: SiteConfig, channels: Channels, clock: FixedClock) -> None:
    [published] = send(store, site, clock)
    assert deliver_all(store, site, channels, clock, published) == ["posted"]
    clock.now += timedelta(minutes=10)


def planned_correction(store: Store, site: SiteConfig, channels: Channels, clock: FixedClock) -> int:
    """Article 1 posted, then an update the CMS marks as a correction, planned; its delivery id."""
    posted_original(store, site, channels, clock)
    [updated] = send(store, site, clock, title="Article 1, corrected", social={"correction": True})
    [delivery_id] = plan_event(store, site, channels.active, updated, clock=clock)
    return delivery_id


def live_texts(x: XStandIn) -> list[str]:
    return [t.original_text for t in x.live_tweets]


def test_an_update_the_cms_marks_as_a_correction_is_posted_as_a_reply(
        store: Store, clock: FixedClock, x: XStandIn, channels: Channels) -> None:
    # Given a site that does not post every update, and an article already on X
    site = site_with()
    posted_original(store, site, channels, clock)
    # When the CMS sends an update marked as a correction
    [updated] = send(store, site, clock, title="Article 1, corrected", social={"correction": True})
    # Then one correction is posted, in the default correction wording, as a reply to the original
    assert deliver_all(store, site, channels, clock, updated) == ["posted"]
    original, correction = x.live_tweets
    assert correction.original_text == f"Correction: Article 1, corrected {URL}"
    assert correction.in_reply_to == original.id
    assert [(d.action, d.state, d.remote_id) for d in ledger(store)] == [
        ("post", "posted", original.id), ("correct", "posted", correction.id)]


def test_an_update_not_marked_is_not_posted_unless_the_site_posts_corrections(
        store: Store, clock: FixedClock, x: XStandIn, channels: Channels) -> None:
    # Given an article already on X
    quiet, eager = site_with(), site_with(correction_posts=True, correction_template="Fixed: {{ title }} {{ url }}")
    posted_original(store, quiet, channels, clock)
    # When the CMS sends an update without asking for a correction
    [updated] = send(store, quiet, clock, title="Article 1, new headline")
    # Then nothing is planned or posted for it
    assert deliver_all(store, quiet, channels, clock, updated) == []
    assert len(live_texts(x)) == 1
    # But on a site with correction_posts on, the next update is posted, in that channel's correction template
    [again] = send(store, eager, clock, title="Article 1, newer headline")
    assert deliver_all(store, eager, channels, clock, again) == ["posted"]
    assert live_texts(x)[-1] == f"Fixed: Article 1, newer headline {URL}"


def test_a_duplicate_answer_does_not_mark_a_correction_posted(
        store: Store, clock: FixedClock, x: XStandIn, channels: Channels) -> None:
    # Given an article on X, and a correction that X will call a duplicate although no post of its
    # text is among the account's recent posts (X's check reaches further back than the search)
    site = site_with()
    delivery_id = planned_correction(store, site, channels, clock)
    x.fail_next(1, 403, method="POST", path="/2/tweets",
                body=problem(403, "Forbidden", DUPLICATE_DETAIL))
    # When the correction runs and X answers that the text is a duplicate
    state = run_delivery(store, site, channels, delivery_id, clock=clock).state
    # Then it is not marked posted: the URL search finds the original, which is not the correction
    assert state == "failed"
    correction = [d for d in ledger(store) if d.action == "correct"][0]
    assert correction.remote_id is None and "not posted" in (correction.last_error or "")
    assert live_texts(x) == [f"Article 1 {URL}"]
    # And the timeline says why, without pausing the channel (nothing a retry or a pause would fix)
    with store.read() as session:
        failed = [s.detail for s in steps_of(session, "art-1") if s.kind == "delivery.failed"]
        assert get_pause(session, "x") is None
    assert len(failed) == 1 and "duplicate" in failed[0]["error"]


def test_a_duplicate_answer_adopts_the_correction_when_it_is_there(
        store: Store, clock: FixedClock, x: XStandIn, channels: Channels) -> None:
    # Given a correction that went out, but whose answer was lost (X posted, the connection dropped)
    site = site_with()
    delivery_id = planned_correction(store, site, channels, clock)
    x.post_then_fail_next(status=503)
    assert run_delivery(store, site, channels, delivery_id, clock=clock).state == "pending"
    # When it is tried again (its outcome unknown)
    clock.now += timedelta(minutes=5)
    assert run_delivery(store, site, channels, delivery_id, clock=clock).state == "posted"
    # Then the correction X holds is adopted, never posted twice
    texts = live_texts(x)
    assert texts == [f"Article 1 {URL}", f"Correction: Article 1, corrected {URL}"]
    correction = [d for d in ledger(store) if d.action == "correct"][0]
    assert correction.remote_id == x.live_tweets[1].id


def test_an_unknown_outcome_with_only_the_original_there_posts_the_correction(
        store: Store, clock: FixedClock, x: XStandIn, channels: Channels) -> None:
    # Given a correction whose worker died holding it before X got anything
    site = site_with()
    delivery_id = planned_correction(store, site, channels, clock)
    with store.transaction() as session:
        assert claim(session, delivery_id, now=clock(), lease=timedelta(seconds=45), owner="web-1:999")
    # When its lease runs out and it is tried again
    clock.now += timedelta(minutes=1)
    assert run_delivery(store, site, channels, delivery_id, clock=clock).state == "posted"
    # Then the search finds the original (same URL) but does not take it for the correction: it is posted
    original, correction = x.live_tweets
    assert correction.original_text == f"Correction: Article 1, corrected {URL}"
    assert [d.remote_id for d in ledger(store)] == [original.id, correction.id]


def test_a_share_x_refuses_as_a_duplicate_is_not_taken_for_the_original(
        store: Store, clock: FixedClock, x: XStandIn, channels: Channels) -> None:
    # Given an article on X
    site = site_with()
    posted_original(store, site, channels, clock)
    # When an operator shares it again, with the same words (X refuses a text it already holds)
    _, outcome = share_again(store, "art-1", "alice", "x", known=["x"], clock=clock)
    [share_id] = plan_event(store, site, channels.active, outcome.events[0].id, clock=clock)
    # Then the share fails, saying why, rather than claiming the original post as its own
    assert run_delivery(store, site, channels, share_id, clock=clock).state == "failed"
    original, share = ledger(store)
    assert share.remote_id is None and "duplicate" in (share.last_error or "")
    assert original.remote_id == x.live_tweets[0].id and len(x.live_tweets) == 1
