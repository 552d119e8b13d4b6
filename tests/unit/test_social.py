"""Planning social posts: each outbox event writes its ledger rows once, and the rows say why
an article is not posted."""
from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text

from config import SiteConfig
from syndication.channels.preview import PreviewChannel
from syndication.channels.registry import Channels
from syndication.delivering import run_delivery
from syndication.publishing import parse_batch, publish, unpublish
from syndication.operations import share_again
from syndication.social import plan_event, plan_events
from syndication.store import Store
from syndication.store.deliveries import Delivery, deliveries_of, ensure_delivery
from syndication.store.schema import DeliveryRow
from syndication.store.timeline import steps_of
from tests.conftest import FixedClock, article_json
from tests.support.stack import wait_for


def social_site(*, correction_posts: bool = False) -> SiteConfig:
    return SiteConfig.model_validate({
        "site": {"title": "Planning Gazette", "base_url": "https://news.test.example/", "timezone": "UTC"},
        "social": {"max_age_hours": 24, "correction_posts": correction_posts},
        "channels": {"preview": {}},
    })


def publish_one(store: Store, site: SiteConfig, clock: FixedClock, *, origin: str = "api",
                **overrides: object) -> list[str]:
    """Publish article 1 (fresh unless told otherwise); returns the ids of the events written."""
    articles, refused = parse_batch([article_json(1, **{"published_at": clock().isoformat(), **overrides})],
                                    site=site)
    assert not refused
    return [e.id for e in publish(store, site, articles, origin=origin, clock=clock).events]


def ledger(store: Store, article_id: str = "art-1") -> list[Delivery]:
    with store.read() as session:
        return deliveries_of(session, article_id)


def steps(store: Store, kind: str, article_id: str = "art-1") -> list[dict[str, object]]:
    with store.read() as session:
        return [s.detail for s in steps_of(session, article_id) if s.kind == kind]


def test_planning_the_same_event_twice_creates_nothing_new(store: Store, clock: FixedClock) -> None:
    # Given a published article whose event was planned once
    site, channel = social_site(), PreviewChannel(clock=clock)
    [event_id] = publish_one(store, site, clock)
    first = plan_event(store, site, {"preview": channel}, event_id, clock=clock)
    # When the same event is planned again (a redelivered message)
    again = plan_event(store, site, {"preview": channel}, event_id, clock=clock)
    # Then it names the same pending delivery and writes no new row or step
    assert again == first and len(first) == 1
    [delivery] = ledger(store)
    assert (delivery.action, delivery.state, delivery.revision) == ("post", "pending", 1)
    assert len(steps(store, "delivery.planned")) == 1 and len(steps(store, "event.processed")) == 1
    # When it is posted and the event comes a third time
    assert run_delivery(store, site, Channels({"preview": channel}), first[0], clock=clock).state == "posted"
    assert plan_event(store, site, {"preview": channel}, event_id, clock=clock) == []
    # Then there is still one row and one post
    assert [d.state for d in ledger(store)] == ["posted"]
    assert len(channel.posts) == 1


def test_a_correction_is_planned_once_and_never_as_a_second_post(store: Store, clock: FixedClock) -> None:
    # Given a site that posts corrections, and an article already posted
    site, channel = social_site(correction_posts=True), PreviewChannel(clock=clock)
    channels = Channels({"preview": channel})
    [published] = publish_one(store, site, clock)
    [post_id] = plan_event(store, site, {"preview": channel}, published, clock=clock)
    assert run_delivery(store, site, channels, post_id, clock=clock).state == "posted"
    # When the article is corrected, and the update event is planned twice
    clock.now += timedelta(minutes=10)
    [updated] = publish_one(store, site, clock, title="Article 1, corrected")
    [correct_id] = plan_event(store, site, {"preview": channel}, updated, clock=clock)
    assert plan_event(store, site, {"preview": channel}, updated, clock=clock) == [correct_id]
    # Then one correction is planned for the new revision, and the original post stays the only post
    assert [(d.action, d.revision, d.state) for d in ledger(store)] == [("post", 1, "posted"),
                                                                         ("correct", 2, "pending")]
    assert "Article 1, corrected" in (ledger(store)[1].text or "")
    # And running it makes exactly one more post: the correction, in its own words, answering the original
    assert run_delivery(store, site, channels, correct_id, clock=clock).state == "posted"
    original, correction = channel.posts
    assert correction.text == "Correction: Article 1, corrected https://news.test.example/a/1"
    assert (original.reply_to, correction.reply_to) == (None, original.remote_id)
    assert [(d.action, d.state) for d in ledger(store)] == [("post", "posted"), ("correct", "posted")]


def test_without_correction_posts_an_update_plans_nothing(store: Store, clock: FixedClock) -> None:
    # Given a site that does not post corrections, and a posted article
    site, channel = social_site(), PreviewChannel(clock=clock)
    [published] = publish_one(store, site, clock)
    plan_event(store, site, {"preview": channel}, published, clock=clock)
    # When the article is updated
    [updated] = publish_one(store, site, clock, title="Article 1, corrected")
    # Then nothing is planned for the update
    assert plan_event(store, site, {"preview": channel}, updated, clock=clock) == []
    assert [d.action for d in ledger(store)] == ["post"]


def test_an_article_older_than_max_age_is_skipped_by_the_flood_guard(store: Store, clock: FixedClock) -> None:
    # Given an article published 25 hours before it reached us (a CMS replaying its archive)
    site = social_site()
    [event_id] = publish_one(store, site, clock, published_at=(clock() - timedelta(hours=25)).isoformat())
    # When its event is planned
    ids = plan_event(store, site, {"preview": PreviewChannel(clock=clock)}, event_id, clock=clock)
    # Then nothing is to be posted, and the ledger and the story say why
    assert ids == []
    assert [d.state for d in ledger(store)] == ["skipped"]
    assert [s["reason"] for s in steps(store, "delivery.skipped")] == [
        "older than 24 h when published (flood guard)"]


def test_an_article_that_asks_not_to_be_posted_is_skipped(store: Store, clock: FixedClock) -> None:
    # Given an article with social.skip set
    site = social_site()
    [event_id] = publish_one(store, site, clock, social={"skip": True})
    # When its event is planned
    ids = plan_event(store, site, {"preview": PreviewChannel(clock=clock)}, event_id, clock=clock)
    # Then it is skipped, with the reason
    assert ids == [] and [d.state for d in ledger(store)] == ["skipped"]
    assert [s["reason"] for s in steps(store, "delivery.skipped")] == [
        "the article asks not to be posted (social.skip)"]


def test_an_imported_article_is_never_posted_even_when_corrected_later(store: Store, clock: FixedClock) -> None:
    # Given a site that posts corrections, and a fresh article that came in by import (backfill)
    site, channel = social_site(correction_posts=True), PreviewChannel(clock=clock)
    assert publish_one(store, site, clock, origin="import") == []  # an import announces nothing
    # When the CMS later sends a correction through the API
    [updated] = publish_one(store, site, clock, title="Article 1, corrected")
    ids = plan_event(store, site, {"preview": channel}, updated, clock=clock)
    # Then the correction is skipped as an import, and nothing is posted
    assert ids == []
    assert [(d.action, d.state) for d in ledger(store)] == [("correct", "skipped")]
    assert [s["reason"] for s in steps(store, "delivery.skipped")] == ["imported (backfill is never posted)"]
    assert channel.posts == []


def test_an_article_withdrawn_before_its_event_was_planned_is_skipped(store: Store, clock: FixedClock) -> None:
    # Given an article published and withdrawn before its event was handled (the queue was slow)
    site = social_site()
    [published] = publish_one(store, site, clock)
    unpublish(store, "art-1", clock=clock)
    # When the published event is planned
    ids = plan_event(store, site, {"preview": PreviewChannel(clock=clock)}, published, clock=clock)
    # Then it is skipped as withdrawn
    assert ids == [] and [d.state for d in ledger(store)] == ["skipped"]
    assert [s["reason"] for s in steps(store, "delivery.skipped")] == ["withdrawn before it was posted"]


def test_withdrawing_before_the_post_went_out_cancels_it(store: Store, clock: FixedClock) -> None:
    # Given a planned post that has not run yet
    site, channel = social_site(), PreviewChannel(clock=clock)
    [published] = publish_one(store, site, clock)
    [post_id] = plan_event(store, site, {"preview": channel}, published, clock=clock)
    # When the article is withdrawn and that event is planned
    [withdrawn] = unpublish(store, "art-1", clock=clock).events
    ids = plan_event(store, site, {"preview": channel}, withdrawn.id, clock=clock)
    # Then the post is cancelled, there is nothing to delete, and the story says so
    assert ids == []
    assert [(d.action, d.state) for d in ledger(store)] == [("post", "cancelled")]
    assert steps(store, "delivery.cancelled") == [{"count": 1}]
    # And a late message for the post changes nothing and posts nothing
    assert run_delivery(store, site, Channels({"preview": channel}), post_id, clock=clock).state == "cancelled"
    assert channel.posts == []


def posted_then_withdrawn(store: Store, site: SiteConfig, channel: PreviewChannel, clock: FixedClock) -> None:
    """Article 1 posted, then withdrawn: the event planned twice and the deletion run."""
    channels = Channels({"preview": channel})
    [published] = publish_one(store, site, clock)
    [post_id] = plan_event(store, site, {"preview": channel}, published, clock=clock)
    run_delivery(store, site, channels, post_id, clock=clock)
    [withdrawn] = unpublish(store, "art-1", clock=clock).events
    [delete_id] = plan_event(store, site, {"preview": channel}, withdrawn.id, clock=clock)
    assert plan_event(store, site, {"preview": channel}, withdrawn.id, clock=clock) == [delete_id]
    assert run_delivery(store, site, channels, delete_id, clock=clock).state == "posted"


def test_withdrawing_after_the_post_went_out_deletes_it(store: Store, clock: FixedClock) -> None:
    # Given a posted article, when it is withdrawn, the event planned twice, and the deletion run
    site, channel = social_site(), PreviewChannel(clock=clock)
    posted_then_withdrawn(store, site, channel, clock)
    # Then the post is gone from the service, and the ledger says so
    assert [p.deleted for p in channel.posts] == [True]
    assert [(d.action, d.state) for d in ledger(store)] == [("post", "deleted"), ("delete", "posted")]


def test_republishing_a_withdrawn_article_posts_it_again(store: Store, clock: FixedClock) -> None:
    # Given an article posted, then withdrawn (its post deleted)
    site, channel = social_site(), PreviewChannel(clock=clock)
    channels = Channels({"preview": channel})
    posted_then_withdrawn(store, site, channel, clock)
    # When the CMS publishes it again
    clock.now += timedelta(minutes=30)
    [republished] = publish_one(store, site, clock)
    [again_id] = plan_event(store, site, {"preview": channel}, republished, clock=clock)
    assert run_delivery(store, site, channels, again_id, clock=clock).state == "posted"
    # Then it is posted again: a second post, live, for the new revision
    assert [p.deleted for p in channel.posts] == [True, False]
    assert [(d.action, d.revision, d.state) for d in ledger(store)] == [
        ("post", 1, "deleted"), ("delete", 2, "posted"), ("post", 3, "posted")]


def test_two_planners_inserting_the_same_key_make_one_row(any_store: Store, clock: FixedClock) -> None:
    # Given one planner that has inserted a ledger row and not yet committed
    key = {"article_id": "art-1", "revision": 1, "channel": "preview", "action": "post", "text": "t"}
    second_inserting = threading.Event()

    def note_insert(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "second-planner" and \
                statement.lstrip().upper().startswith("INSERT INTO DELIVERIES"):
            second_inserting.set()

    sa_event.listen(any_store.engine, "before_cursor_execute", note_insert)
    results: dict[str, tuple[Delivery, bool]] = {}

    def second_planner() -> None:
        with any_store.transaction() as session:
            results["second"] = ensure_delivery(session, **key, now=clock())  # type: ignore[arg-type]

    with any_store.transaction() as session:
        results["first"] = ensure_delivery(session, **key, now=clock())  # type: ignore[arg-type]
        # When a second planner inserts the same key (it found no row: the first is not committed)
        planner = threading.Thread(target=second_planner, name="second-planner")
        planner.start()
        wait_for(lambda: second_inserting.is_set() or not planner.is_alive(), 10,
                 what="the second planner to look for the row")
        if any_store.engine.dialect.name == "postgresql":
            # It found no row (the first is not committed), so it inserts, and waits on the first.
            assert second_inserting.is_set()
            wait_for(lambda: _blocked_inserts(any_store) == 1, 10, what="the second insert to wait on the first")
        # (On SQLite the second planner waits for the database's single write lock instead.)
    # (the first commits here)
    planner.join(30)
    assert not planner.is_alive()
    # Then there is one row, the first planner created it, and the second was handed it
    first, created_first = results["first"]
    second, created_second = results["second"]
    assert (created_first, created_second) == (True, False)
    assert second.id == first.id and second.state == "pending"
    with any_store.read() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryRow)) == 1


def _blocked_inserts(store: Store) -> int:
    """PostgreSQL: sessions waiting on a lock while inserting into the ledger."""
    with store.engine.connect() as conn:
        return int(conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query ILIKE 'INSERT INTO deliveries%'")) or 0)


def test_a_batch_of_events_is_planned_as_each_would_be_alone(store: Store, clock: FixedClock) -> None:
    # Given a batch publish: one fresh article, one from the archive, one that asks not to be posted
    site, channel = social_site(), PreviewChannel(clock=clock)
    articles, refused = parse_batch([
        article_json(1, published_at=clock().isoformat()),
        article_json(2, published_at=(clock() - timedelta(hours=25)).isoformat()),
        article_json(3, published_at=clock().isoformat(), social={"skip": True})], site=site)
    assert not refused
    events = [e.id for e in publish(store, site, articles, clock=clock).events]
    # When the batch's message is planned, and planned again (a redelivered message)
    ids = plan_events(store, site, {"preview": channel}, events, clock=clock)
    assert plan_events(store, site, {"preview": channel}, events, clock=clock) == ids
    # Then only the fresh article is to be posted, with its text; the others are skipped with
    # their reasons and no text, and every event is processed once
    assert [(d.state, d.text is not None) for d in ledger(store, "art-1")] == [("pending", True)]
    assert [(d.id, d.article_id) for d in ledger(store, "art-1")] == [(ids[0], "art-1")] and len(ids) == 1
    assert [(d.state, d.text) for a in ("art-2", "art-3") for d in ledger(store, a)] == [("skipped", None)] * 2
    assert [s["reason"] for a in ("art-2", "art-3") for s in steps(store, "delivery.skipped", a)] == [
        "older than 24 h when published (flood guard)", "the article asks not to be posted (social.skip)"]
    assert sum(len(steps(store, "event.processed", a)) for a in ("art-1", "art-2", "art-3")) == 3


def test_accounts_of_one_kind_take_the_sections_routed_to_them(store: Store, clock: FixedClock) -> None:
    # Given a main account that leaves sport out, and a sport desk account that takes only sport
    site = SiteConfig.model_validate({
        "site": {"title": "Routing Gazette", "base_url": "https://news.test.example/", "timezone": "UTC"},
        "channels": {"preview": {"except_sections": ["Sport"]},
                     "preview_sport": {"kind": "preview", "only_sections": ["sport"]}},
    })
    channels = {"preview": PreviewChannel(clock=clock), "preview_sport": PreviewChannel(clock=clock, name="preview_sport")}
    # When a sport article and a politics article are published and planned
    for n, section in ((1, "Sport"), (2, "Politics")):
        [event_id] = publish_one(store, site, clock, id=f"art-{n}", url=f"https://news.test.example/a/{n}",
                                 section=section)
        plan_event(store, site, channels, event_id, clock=clock)
    # Then each goes to one account, and the other's ledger row says where it went
    states = {(d.article_id, d.channel): d.state for n in (1, 2) for d in ledger(store, f"art-{n}")}
    assert states == {("art-1", "preview"): "skipped", ("art-1", "preview_sport"): "pending",
                      ("art-2", "preview"): "pending", ("art-2", "preview_sport"): "skipped"}
    [why] = [s["reason"] for s in steps(store, "delivery.skipped", "art-1")]
    assert str(why).startswith("routed to another account")


def test_an_operator_share_posts_the_article_again_once(store: Store, clock: FixedClock) -> None:
    # Given an article posted two days ago (older than the flood guard's 24 h)
    site, channel = social_site(), PreviewChannel(clock=clock)
    channels = Channels({"preview": channel})
    [published] = publish_one(store, site, clock)
    [post_id] = plan_event(store, site, {"preview": channel}, published, clock=clock)
    run_delivery(store, site, channels, post_id, clock=clock)
    clock.now += timedelta(days=2)
    # When an operator shares it again, and the share is planned twice (a redelivered message)
    done, outcome = share_again(store, "art-1", "alice", clock=clock)
    [share_id] = plan_event(store, site, {"preview": channel}, outcome.events[0].id, clock=clock)
    assert plan_event(store, site, {"preview": channel}, outcome.events[0].id, clock=clock) == [share_id]
    # Then it is posted again, once, on purpose, whatever its age
    assert run_delivery(store, site, channels, share_id, clock=clock).state == "posted"
    assert [p.text for p in channel.posts] == [channel.posts[0].text] * 2
    assert [d.action.split("-")[0] for d in ledger(store)] == ["post", "share"]
    assert done.action == "share" and steps(store, "ops.share")[0]["actor"] == "alice"
