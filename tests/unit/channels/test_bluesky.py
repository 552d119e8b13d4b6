"""The Bluesky channel, through the real atproto SDK, against the local PDS stand-in."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
import pytest

from config.site import StaffMember
from syndication.articles import Article, Author
from syndication.channels.base import Channel, Media, PostContext
from syndication.channels.bluesky import BLUESKY_RULES, BlueskyChannel, BlueskySettings, bluesky_length, record_key
from syndication.errors import (
    AlreadyPosted,
    ConfigError,
    PermanentChannelError,
    RateLimited,
    RejectedPost,
    TransientChannelError,
)
from tests.support.bluesky_standin import BlueskyStandIn

ARTICLE = "https://news.example.org/2026/05/01/climate-deal"
TEXT = f"Climate deal reached {ARTICLE}"
PLANNED = datetime(2026, 5, 1, 9, 30, tzinfo=timezone.utc)
LIST = "at://did:plc:standingazette0000000001/app.bsky.graph.list/3kstafflist22"


def delivery(key: str, *, media: Media | None = None, language: str = "en") -> PostContext:
    """What the delivery loop hands a channel: a key the same on every attempt, when it was
    planned, the article and its fetched image."""
    article = Article(id="a1", url=ARTICLE, title="Climate deal reached", summary="Negotiators agreed overnight.",
                      language=language, published_at=PLANNED)
    return PostContext(key=key, event="article.published", occurred_at=PLANNED, article=article, media=media)


def make(standin: BlueskyStandIn) -> BlueskyChannel:
    settings = BlueskySettings(handle=standin.handle, app_password=standin.password, service_url=standin.url,
                               staff_list_uri=LIST)
    return BlueskyChannel(settings, timeout=2)


@pytest.fixture(scope="module")
def server() -> Iterator[BlueskyStandIn]:
    with BlueskyStandIn() as standin:
        yield standin


@pytest.fixture
def bsky(server: BlueskyStandIn) -> BlueskyStandIn:
    server.reset()
    return server


@pytest.fixture
def channel(bsky: BlueskyStandIn) -> BlueskyChannel:
    return make(bsky)


def test_it_is_a_channel_of_300_graphemes(channel: BlueskyChannel) -> None:
    assert isinstance(channel, Channel)
    assert channel.max_weighted_length == 300


def test_a_post_is_a_record_with_a_link_card_under_the_delivery_s_key(channel: BlueskyChannel,
                                                                     bsky: BlueskyStandIn) -> None:
    result = channel.post(TEXT, url=ARTICLE, context=delivery("delivery-1", language="pt-BR"))
    [record] = bsky.live_posts()
    assert record["text"] == TEXT and record["langs"] == ["pt-BR"]
    card = record["embed"]["external"]
    assert (record["embed"]["$type"], card["uri"], card["title"], card["description"]) == (
        "app.bsky.embed.external", ARTICLE, "Climate deal reached", "Negotiators agreed overnight.")
    rkey = record_key("delivery-1", PLANNED)
    assert bsky.keys("app.bsky.feed.post") == [rkey]
    assert result.remote_id == f"at://{bsky.did}/app.bsky.feed.post/{rkey}"
    assert result.remote_url == f"https://bsky.app/profile/{bsky.handle}/post/{rkey}"


def test_record_keys_are_tids_near_the_planned_time_and_differ_per_delivery() -> None:
    keys = {record_key(f"delivery-{i}", PLANNED) for i in range(1000)}
    assert len(keys) == 1000
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    for key in keys:
        value = 0
        for char in key:
            value = value * 32 + alphabet.index(char)
        assert len(key) == 13 and value >> 63 == 0
        assert abs((value >> 10) / 1e6 - PLANNED.timestamp()) < 1.1


def test_a_lost_answer_is_settled_by_the_record_key(channel: BlueskyChannel, bsky: BlueskyStandIn) -> None:
    # Given a post the PDS made, but whose answer was lost
    bsky.fail_next(1, 503, method="POST", path="/xrpc/com.atproto.repo.createRecord", handle_first=True)
    # Then the attempt finds its key taken: already posted, and find_post gives the post
    with pytest.raises(AlreadyPosted):
        channel.post(TEXT, url=ARTICLE, context=delivery("delivery-2"))
    assert len(bsky.live_posts()) == 1
    found = channel.find_post(ARTICLE)
    assert found is not None and found.remote_id.endswith(record_key("delivery-2", PLANNED))


def test_a_retry_of_a_delivery_that_posted_makes_no_second_post(channel: BlueskyChannel,
                                                                bsky: BlueskyStandIn) -> None:
    channel.post(TEXT, url=ARTICLE, context=delivery("delivery-2b"))
    # The PDS answers a taken key with a 500 (atproto issue #3718): still "already posted".
    with pytest.raises(AlreadyPosted):
        channel.post(TEXT, url=ARTICLE, context=delivery("delivery-2b"))
    assert len(bsky.live_posts()) == 1


def test_find_post_recovers_an_unknown_outcome_and_only_for_that_link(channel: BlueskyChannel,
                                                                      bsky: BlueskyStandIn) -> None:
    channel.post("Other https://news.example.org/other", url="https://news.example.org/other",
                 context=delivery("delivery-3"))
    # Given a post made while its answer and the check of its key both failed
    bsky.fail_next(1, 502, method="POST", path="/xrpc/com.atproto.repo.createRecord", handle_first=True)
    bsky.fail_next(1, 503, path="/xrpc/com.atproto.repo.getRecord")
    with pytest.raises(TransientChannelError):
        channel.post(TEXT, url=ARTICLE, context=delivery("delivery-4"))
    # When the account's recent posts are searched, then it is found by its link
    found = channel.find_post(ARTICLE)
    assert found is not None and found.remote_id.endswith(record_key("delivery-4", PLANNED))
    assert channel.find_post(ARTICLE + "-2") is None


def test_delete_removes_the_record_and_tolerates_one_already_gone(channel: BlueskyChannel,
                                                                 bsky: BlueskyStandIn) -> None:
    result = channel.post(TEXT, url=ARTICLE, context=delivery("delivery-5"))
    channel.delete(result.remote_id)
    assert bsky.live_posts() == []
    channel.delete(result.remote_id)
    assert channel.find_post(ARTICLE) is None


def test_a_429_is_rate_limited_until_ratelimit_reset(channel: BlueskyChannel, bsky: BlueskyStandIn) -> None:
    channel.find_post(ARTICLE)  # logged in
    reset_at = bsky.rate_limit_next(int(time.time()) + 600, path="/xrpc/com.atproto.repo.createRecord")
    with pytest.raises(RateLimited) as caught:
        channel.post(TEXT, url=ARTICLE, context=delivery("delivery-6"))
    assert caught.value.retry_at == datetime.fromtimestamp(reset_at, timezone.utc)
    assert bsky.live_posts() == []


def test_the_stand_in_rate_limit_window_gives_429_with_its_headers() -> None:
    with BlueskyStandIn(rate_limit=(3, 30.0)) as bsky:
        channel = make(bsky)
        with pytest.raises(RateLimited) as caught:
            for i in range(4):
                channel.post(f"post {i}", url=ARTICLE, context=delivery(f"w-{i}"))
        assert 0 < (caught.value.retry_at - datetime.now(timezone.utc)).total_seconds() <= 31


def test_a_503_is_transient(channel: BlueskyChannel, bsky: BlueskyStandIn) -> None:
    channel.find_post(ARTICLE)
    bsky.fail_next(1, 503, path="/xrpc/com.atproto.repo.createRecord")
    with pytest.raises(TransientChannelError) as caught:
        channel.post(TEXT, url=ARTICLE, context=delivery("delivery-7"))
    assert not isinstance(caught.value, RateLimited) and "503" in str(caught.value)


def test_a_dropped_connection_is_transient(channel: BlueskyChannel, bsky: BlueskyStandIn) -> None:
    channel.find_post(ARTICLE)
    bsky.drop_next(path="/xrpc/com.atproto.repo.createRecord")
    with pytest.raises(TransientChannelError):
        channel.post(TEXT, url=ARTICLE, context=delivery("delivery-8"))


def test_a_refused_app_password_pauses_the_channel_and_is_not_echoed(bsky: BlueskyStandIn) -> None:
    settings = BlueskySettings(handle="someone.bsky.social", app_password="wrong-app-password", service_url=bsky.url)
    with pytest.raises(PermanentChannelError) as caught:
        BlueskyChannel(settings, timeout=2).post(TEXT, url=ARTICLE, context=delivery("delivery-9"))
    assert "401" in str(caught.value) and "wrong-app-password" not in str(caught.value)


@pytest.mark.parametrize("raw", [b"<html>Bad Request</html>", b"[1, 2]"], ids=["html", "list"])
def test_a_malformed_400_refuses_that_post_unexplained(channel: BlueskyChannel, bsky: BlueskyStandIn,
                                                       raw: bytes) -> None:
    channel.find_post(ARTICLE)
    bsky.fail_next(1, 400, path="/xrpc/com.atproto.repo.createRecord", raw=raw)
    with pytest.raises(RejectedPost) as caught:
        channel.post(TEXT, url=ARTICLE, context=delivery("delivery-10"))
    assert "400" in str(caught.value) and not caught.value.explained
    # The channel goes on.
    assert channel.post(TEXT, url=ARTICLE, context=delivery("delivery-11")).remote_id


def test_links_and_mentions_are_facets_at_utf8_byte_offsets(channel: BlueskyChannel, bsky: BlueskyStandIn) -> None:
    # Given a text with accents, an emoji and a flag before a mention and a link
    ana = bsky.add_handle("ana.bsky.social")
    link = "https://news.example.org/2026/05/01/été"
    text = f"Café ☕ 🇧🇷 com @ana.bsky.social e @nobody.example: {link}."
    channel.post(text, url=link, context=delivery("delivery-12"))
    [record] = bsky.live_posts()
    encoded = record["text"].encode()
    # Then each facet's bytes are exactly the mention and the link (not the final period)
    spans = {encoded[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode(): f["features"][0]
             for f in record["facets"]}
    assert spans == {"@ana.bsky.social": {"$type": "app.bsky.richtext.facet#mention", "did": ana},
                     link: {"$type": "app.bsky.richtext.facet#link", "uri": link}}


def test_300_graphemes_go_and_301_are_refused(channel: BlueskyChannel, bsky: BlueskyStandIn) -> None:
    # A flag is 2 code points and 8 bytes but one grapheme.
    text = "🇧🇷" * 300
    assert bluesky_length(text) == 300 and len(text) == 600
    channel.post(text, url=ARTICLE, context=delivery("delivery-13"))
    with pytest.raises(RejectedPost, match="300 graphemes") as caught:
        channel.post(text + "!", url=ARTICLE, context=delivery("delivery-14"))
    assert caught.value.explained
    assert len(bsky.live_posts()) == 1


def test_the_article_image_becomes_the_card_thumbnail(channel: BlueskyChannel, bsky: BlueskyStandIn) -> None:
    jpeg = Media(b"\xff\xd8\xff\xe0 a tiny jpeg", "image/jpeg", alt="A signing")
    channel.post(TEXT, url=ARTICLE, context=delivery("delivery-15", media=jpeg))
    thumb = bsky.live_posts()[0]["embed"]["external"]["thumb"]
    assert bsky.blobs[thumb["ref"]["$link"]] == jpeg.data
    assert (thumb["mimeType"], thumb["size"]) == ("image/jpeg", len(jpeg.data))


def test_a_failed_thumbnail_never_blocks_the_post(channel: BlueskyChannel, bsky: BlueskyStandIn) -> None:
    jpeg = Media(b"\xff\xd8\xff\xe0 a tiny jpeg", "image/jpeg")
    bsky.fail_next(1, 503, path="/xrpc/com.atproto.repo.uploadBlob")
    result = channel.post(TEXT, url=ARTICLE, context=delivery("delivery-16", media=jpeg))
    assert "thumb" not in bsky.live_posts()[0]["embed"]["external"]
    assert result.notes and "image not attached" in result.notes[0]


def test_the_kind_s_rules_count_graphemes_and_find_bluesky_handles() -> None:
    assert BLUESKY_RULES.length("🇧🇷 ok") == 4
    assert BLUESKY_RULES.handle(Author(name="Ana", social={"bluesky": "@ana.bsky.social"}), None) == "ana.bsky.social"
    assert BLUESKY_RULES.handle(Author(name="Ben"), StaffMember(bluesky="not a handle")) is None


def test_a_staff_member_becomes_one_listitem(channel: BlueskyChannel, bsky: BlueskyStandIn) -> None:
    did = bsky.add_handle("ana.bsky.social")
    channel.add_list_member("@ana.bsky.social")
    channel.add_list_member("ana.bsky.social")  # a retry adds nothing
    items = [v for (c, _), v in bsky.records.items() if c == "app.bsky.graph.listitem"]
    assert [(i["subject"], i["list"]) for i in items] == [(did, LIST)]
    with pytest.raises(RejectedPost, match="no account"):
        channel.add_list_member("nobody.example")


def test_one_login_serves_many_posts_and_channels() -> None:
    # Given a fresh service
    with BlueskyStandIn() as bsky:
        # When two channels of one account (two builds in one process) post five times
        first, second = make(bsky), make(bsky)
        for i in range(3):
            first.post(f"one {i}", url=ARTICLE, context=delivery(f"s-{i}"))
        for i in range(2):
            second.post(f"two {i}", url=ARTICLE, context=delivery(f"t-{i}"))
        # Then the account logged in once
        assert (bsky.logins, len(bsky.live_posts())) == (1, 5)


def test_a_session_near_expiry_is_refreshed_not_created_again() -> None:
    # Access tokens living 10 minutes: the SDK refreshes those within 15 minutes of expiry.
    with BlueskyStandIn(access_ttl=600) as bsky:
        channel = make(bsky)
        for i in range(3):
            channel.post(f"post {i}", url=ARTICLE, context=delivery(f"r-{i}"))
        assert bsky.logins == 1 and bsky.refreshes >= 3


def test_a_token_the_service_expired_is_renewed_with_the_refresh_token() -> None:
    with BlueskyStandIn() as bsky:
        channel = make(bsky)
        channel.post("before", url=ARTICLE, context=delivery("e-1"))
        bsky.expire_tokens()
        channel.post("after", url=ARTICLE, context=delivery("e-2"))
        assert (bsky.logins, bsky.refreshes, len(bsky.live_posts())) == (1, 1, 2)
        # Only when the refresh token is refused too does it log in again.
        bsky.expire_tokens(refresh_too=True)
        channel.post("later", url=ARTICLE, context=delivery("e-3"))
        assert (bsky.logins, len(bsky.live_posts())) == (2, 3)


def test_settings_need_a_handle_and_an_app_password() -> None:
    with pytest.raises(ConfigError):
        BlueskyChannel(BlueskySettings(handle="news.example.org"))
    assert BlueskySettings().service_url == "https://bsky.social"
    assert "secret-pw" not in repr(BlueskySettings(handle="h.example", app_password="secret-pw"))


def test_empty_variables_from_the_compose_file_mean_the_defaults() -> None:
    found = BlueskySettings.model_validate({"handle": "", "app_password": "", "service_url": "", "language": ""})
    assert (found.enabled, found.service_url, found.language) == (False, "https://bsky.social", "en")
