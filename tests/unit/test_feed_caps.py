"""Feed fan-out: one request (or one busy hour) cannot create feeds without bound.

An article with a hundred new tags is stored and served in the feeds that exist; its new
tags make feeds only while the caps on new feeds per request and per hour allow.
"""
from __future__ import annotations

from datetime import timedelta

from config import SiteConfig
from syndication.articles import parse_article
from syndication.publishing import publish
from syndication.store import Store
from syndication.store.articles import all_feed_keys, feed_keys_of, get_article
from tests.conftest import FixedClock, article_json, make_site


def articles(site: SiteConfig, prefix: str, count: int, tags: int) -> list:
    return [parse_article(article_json(f"{prefix}{n}", section="News", authors=[],
                                       tags=[f"{prefix}{n} tag {t}" for t in range(tags)]), tz=site.site.tz)
            for n in range(count)]


def feed_keys(store: Store) -> set[str]:
    with store.read() as session:
        return set(all_feed_keys(session))


def test_a_request_creates_at_most_the_per_request_cap_of_new_feeds(store: Store, clock: FixedClock) -> None:
    site = make_site(max_new_per_request=10, max_new_per_hour=1000)
    # Given a request of 20 articles with 100 new tags each (the 2,000-feed request of the review)
    outcome = publish(store, site, articles(site, "a", 20, 100), clock=clock)
    # Then every article is stored and in the site feed...
    assert [a.status for a in outcome.accepted] == ["created"] * 20
    with store.read() as session:
        assert all(get_article(session, f"art-a{n}") is not None for n in range(20))
        assert "all" in feed_keys_of(session, "art-a19")
    # ...but only 10 new feeds exist (the section, then the first tags named)
    assert len(feed_keys(store) - {"all"}) == 10
    assert "section/news" in feed_keys(store)
    # And the answer names, per article, the new feeds it did not get
    refused = {a.article_id: a.feeds_refused for a in outcome.accepted}
    assert len(refused["art-a0"]) == 91 and refused["art-a0"][0] == "tag/a0-tag-9"
    assert len(refused["art-a19"]) == 100
    assert sum(len(r) for r in refused.values()) == 20 * 100 + 1 - 10


def test_the_hourly_cap_holds_across_requests_and_frees_up_an_hour_later(store: Store, clock: FixedClock) -> None:
    site = make_site(max_new_per_request=100, max_new_per_hour=25)
    # Given two requests in one hour, each with 20 new feeds (a section and 19 tags)
    first = publish(store, site, articles(site, "b", 1, 19), clock=clock)
    clock.now += timedelta(minutes=30)
    second = publish(store, site, articles(site, "c", 1, 20), clock=clock)
    # Then the first got all of its own, the second (its section exists now) only 5 of its 20 new tags
    assert first.accepted[0].feeds_refused == ()
    assert len(second.accepted[0].feeds_refused) == 20 - (25 - 20)
    assert len(feed_keys(store) - {"all"}) == 25
    # When an hour has passed since the first request
    clock.now += timedelta(minutes=31)
    third = publish(store, site, articles(site, "d", 1, 10), clock=clock)
    # Then new feeds are created again
    assert third.accepted[0].feeds_refused == ()


def test_feeds_that_exist_are_never_refused(store: Store, clock: FixedClock) -> None:
    site = make_site(max_new_per_request=3, max_new_per_hour=3)
    # Given the caps used up by a first article
    publish(store, site, articles(site, "e", 1, 2), clock=clock)
    # When another article names the same section and tags, and one new tag
    again = parse_article(article_json("e-again", section="News", authors=[], tags=["e0 tag 0", "e0 tag 1", "new"]),
                          tz=site.site.tz)
    outcome = publish(store, site, [again], clock=clock)
    # Then it joins the existing feeds; only the new tag is refused
    assert outcome.accepted[0].feeds_refused == ("tag/new",)
    with store.read() as session:
        assert set(feed_keys_of(session, "art-e-again")) == {"all", "section/news", "tag/e0-tag-0", "tag/e0-tag-1"}


def test_an_operators_import_is_not_capped(store: Store, clock: FixedClock) -> None:
    site = make_site(max_new_per_request=1, max_new_per_hour=1)
    outcome = publish(store, site, articles(site, "f", 2, 5), origin="import", clock=clock)
    assert all(a.feeds_refused == () for a in outcome.accepted)
    assert len(feed_keys(store) - {"all"}) == 11
