"""The X channel, through real tweepy, against the local X API stand-in."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import requests

from syndication.channels.base import Channel, Media, PostContext, PostResult
from syndication.channels.x import XChannel, XSettings, _redirect_target
from syndication.errors import (
    AlreadyPosted,
    ChannelError,
    ConfigError,
    PermanentChannelError,
    RateLimited,
    RejectedPost,
    TransientChannelError,
)
from tests.support.x_standin import XStandIn

CONSUMER_KEY = "ck-public-part"
CONSUMER_SECRET = "cs-very-secret"
ACCESS_TOKEN = "1500000000000000001-at-public-part"
ACCESS_TOKEN_SECRET = "ats-very-secret"
SECRETS = (CONSUMER_KEY, CONSUMER_SECRET, ACCESS_TOKEN, ACCESS_TOKEN_SECRET)
ARTICLE = "https://news.example.org/2026/05/01/climate-deal"


def settings(base_url: str, **overrides: object) -> XSettings:
    values: dict[str, object] = dict(consumer_key=CONSUMER_KEY, consumer_secret=CONSUMER_SECRET,
                                     access_token=ACCESS_TOKEN, access_token_secret=ACCESS_TOKEN_SECRET,
                                     api_base_url=base_url)
    values.update(overrides)
    return XSettings(**values)


@pytest.fixture
def x() -> Iterator[XStandIn]:
    # The stand-in checks the OAuth 1.0a signature with the same secrets the channel holds.
    with XStandIn(secrets=(CONSUMER_SECRET, ACCESS_TOKEN_SECRET)) as standin:
        yield standin


@pytest.fixture
def channel(x: XStandIn) -> XChannel:
    return XChannel(settings(x.url, staff_list_id="1888"), timeout=2)


def assert_no_secret(exc: BaseException) -> None:
    for secret in SECRETS:
        assert secret not in str(exc)


def test_it_is_a_channel(channel: XChannel) -> None:
    assert isinstance(channel, Channel)
    assert channel.max_weighted_length == 280


def test_a_post_goes_to_the_account_and_returns_its_id(channel: XChannel, x: XStandIn) -> None:
    # Given an article link in a post text
    text = f"Leaders agree a climate deal {ARTICLE}"
    # When the channel posts it
    result = channel.post(text, url=ARTICLE)
    # Then X holds the tweet under the id the channel returned, with the link wrapped in t.co
    assert result == PostResult(x.tweets[0].id, f"https://x.com/i/web/status/{x.tweets[0].id}")
    assert x.tweets[0].original_text == text
    assert x.tweets[0].text.startswith("Leaders agree a climate deal https://t.co/")


def test_mentions_are_posted_as_written(channel: XChannel, x: XStandIn) -> None:
    channel.post(f"Climate deal {ARTICLE} @adareporter @brunodesk", url=ARTICLE)
    assert x.tweets[0].text.endswith("@adareporter @brunodesk")


def test_every_request_went_to_the_stand_in_with_a_valid_oauth1_signature(channel: XChannel, x: XStandIn) -> None:
    # Given a channel configured with the stand-in's URL
    # When it posts, looks for a post and deletes one
    result = channel.post(f"Signed {ARTICLE}", url=ARTICLE)
    channel.find_post(ARTICLE)
    channel.delete(result.remote_id)
    # Then the stand-in saw each request, OAuth 1.0a user context signed with our secrets
    assert [(r.method, r.path) for r in x.requests] == [
        ("POST", "/2/tweets"),
        ("GET", "/2/users/me"),
        ("GET", "/2/users/1500000000000000001/tweets"),
        ("DELETE", f"/2/tweets/{result.remote_id}"),
    ]
    for request in x.requests:
        assert request.oauth_signed and request.signature_valid
        assert (request.oauth_consumer_key, request.oauth_token) == (CONSUMER_KEY, ACCESS_TOKEN)


def test_the_same_text_twice_is_already_posted(channel: XChannel, x: XStandIn) -> None:
    # Given a text already on the account
    channel.post(f"Once {ARTICLE}", url=ARTICLE)
    # When it is posted again, X answers 403 "duplicate content"
    with pytest.raises(AlreadyPosted) as caught:
        channel.post(f"Once {ARTICLE}", url=ARTICLE)
    # Then the caller learns it is already there, and nothing new was posted
    assert len(x.tweets) == 1
    assert caught.value.__cause__ is not None
    assert_no_secret(caught.value)


def test_a_429_tells_when_to_try_again(channel: XChannel, x: XStandIn) -> None:
    # Given X says the window resets at a given second
    reset = int(time.time()) + 600
    x.rate_limit_next(reset, method="POST", path="/2/tweets")
    # When posting
    with pytest.raises(RateLimited) as caught:
        channel.post(f"Busy {ARTICLE}", url=ARTICLE)
    # Then the error carries that moment, in UTC, and it is a transient error
    assert caught.value.retry_at == datetime.fromtimestamp(reset, timezone.utc)
    assert isinstance(caught.value, TransientChannelError)
    assert x.tweets == []


def test_an_exhausted_daily_cap_wins_over_the_15_minute_window(channel: XChannel, x: XStandIn) -> None:
    # Given the 15-minute window resets soon but the account's 24-hour cap is used up
    soon, tomorrow = int(time.time()) + 60, int(time.time()) + 20 * 3600
    x.rate_limit_next(soon, extra_headers={"x-user-limit-24hour-remaining": "0",
                                           "x-user-limit-24hour-reset": str(tomorrow)})
    with pytest.raises(RateLimited) as caught:
        channel.post(f"Capped {ARTICLE}", url=ARTICLE)
    # Then retrying waits for the daily reset
    assert caught.value.retry_at == datetime.fromtimestamp(tomorrow, timezone.utc)


def test_a_429_without_a_usable_reset_header_waits_a_minute(channel: XChannel, x: XStandIn) -> None:
    x.fail_next(1, 429, headers={"x-rate-limit-reset": "soon"})
    before = datetime.now(timezone.utc)
    with pytest.raises(RateLimited) as caught:
        channel.post(f"No header {ARTICLE}", url=ARTICLE)
    assert before + timedelta(seconds=55) <= caught.value.retry_at <= before + timedelta(seconds=65)


def test_the_stand_in_rate_limit_window_gives_429_with_its_reset(x: XStandIn) -> None:
    # Given the stand-in allows 2 calls per minute
    x.rate_limit = (2, 60.0)
    channel = XChannel(settings(x.url))
    channel.post(f"One {ARTICLE}", url=ARTICLE)
    channel.post(f"Two {ARTICLE}", url=ARTICLE)
    # When a third call comes within the minute
    with pytest.raises(RateLimited) as caught:
        channel.post(f"Three {ARTICLE}", url=ARTICLE)
    # Then it must wait until the window ends
    assert datetime.now(timezone.utc) < caught.value.retry_at <= datetime.now(timezone.utc) + timedelta(seconds=61)
    assert len(x.tweets) == 2


def test_a_503_is_transient(channel: XChannel, x: XStandIn) -> None:
    x.fail_next(1, 503)
    with pytest.raises(TransientChannelError) as caught:
        channel.post(f"Later {ARTICLE}", url=ARTICLE)
    assert not isinstance(caught.value, RateLimited)
    assert "503" in str(caught.value)
    # And the next attempt goes through
    assert channel.post(f"Later {ARTICLE}", url=ARTICLE).remote_id == x.tweets[0].id


def test_a_dropped_connection_is_transient(channel: XChannel, x: XStandIn) -> None:
    x.drop_next()
    with pytest.raises(TransientChannelError):
        channel.post(f"Dropped {ARTICLE}", url=ARTICLE)


def test_a_stalled_answer_times_out_as_transient(x: XStandIn) -> None:
    # Given X takes longer to answer than the channel waits (tweepy itself never times out)
    channel = XChannel(settings(x.url), timeout=0.3)
    x.slow_next(2.0)
    started = time.monotonic()
    with pytest.raises(TransientChannelError):
        channel.post(f"Slow {ARTICLE}", url=ARTICLE)
    assert time.monotonic() - started < 1.5


def test_a_server_down_is_transient() -> None:
    # Given nothing listens where the API should be
    with XStandIn() as gone:
        url = gone.url
    channel = XChannel(settings(url), timeout=1)
    with pytest.raises(TransientChannelError):
        channel.post(f"Nobody home {ARTICLE}", url=ARTICLE)


def test_refused_credentials_are_permanent_and_not_echoed(x: XStandIn) -> None:
    # Given secrets X does not recognise (the signature check fails)
    channel = XChannel(settings(x.url, consumer_secret="wrong-secret"))
    with pytest.raises(PermanentChannelError) as caught:
        channel.post(f"Hello {ARTICLE}", url=ARTICLE)
    assert "401" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)
    assert_no_secret(caught.value)
    assert x.tweets == []


def test_a_401_is_permanent(channel: XChannel, x: XStandIn) -> None:
    x.fail_next(1, 401)
    with pytest.raises(PermanentChannelError):
        channel.post(f"Hello {ARTICLE}", url=ARTICLE)


def test_a_403_that_is_not_a_duplicate_is_permanent(channel: XChannel, x: XStandIn) -> None:
    x.fail_next(1, 403, body={"title": "Forbidden", "type": "about:blank", "status": 403,
                              "detail": "You are not permitted to perform this action."})
    with pytest.raises(PermanentChannelError) as caught:
        channel.post(f"Hello {ARTICLE}", url=ARTICLE)
    assert "not permitted" in str(caught.value)


def test_a_400_about_the_request_refuses_that_post_with_x_s_reason(channel: XChannel, x: XStandIn) -> None:
    x.fail_next(1, 400, body={"errors": [{"message": "text is too long"}], "title": "Invalid Request",
                              "detail": "One or more parameters to your request was invalid.", "status": 400})
    with pytest.raises(RejectedPost) as caught:
        channel.post(f"Hello {ARTICLE}", url=ARTICLE)
    assert caught.value.explained and "text is too long" in str(caught.value)


@pytest.mark.parametrize("body", ["<html>Bad Request</html>", ["not", "an", "object"], None],
                         ids=["a JSON string", "a JSON list", "no body"])
def test_a_malformed_400_refuses_that_post_unexplained(channel: XChannel, x: XStandIn, body: object) -> None:
    # Given X answers 400 with a body tweepy cannot read as an error object
    x.fail_next(1, 400, body=body if body is not None else {})
    # Then it is one refused post (not a bare AttributeError from inside tweepy), unexplained
    with pytest.raises(RejectedPost) as caught:
        channel.post(f"Hello {ARTICLE}", url=ARTICLE)
    assert not caught.value.explained and str(caught.value).startswith("X: refused while posting: 400")


def test_other_4xx_refuse_that_post_unexplained(channel: XChannel, x: XStandIn) -> None:
    x.fail_next(1, 409, body={})
    with pytest.raises(RejectedPost) as caught:
        channel.post(f"Hello {ARTICLE}", url=ARTICLE)
    assert not caught.value.explained


def test_a_410_is_permanent(channel: XChannel, x: XStandIn) -> None:
    x.fail_next(1, 410)
    with pytest.raises(PermanentChannelError):
        channel.post(f"Hello {ARTICLE}", url=ARTICLE)


def test_delete_removes_the_post_and_tolerates_one_already_gone(channel: XChannel, x: XStandIn) -> None:
    result = channel.post(f"Withdrawn {ARTICLE}", url=ARTICLE)
    channel.delete(result.remote_id)
    assert x.deleted_ids == [result.remote_id]
    assert x.live_tweets == []
    # When it is deleted again (a retry after a lost answer), nothing fails
    channel.delete(result.remote_id)


def test_find_post_recovers_an_unknown_outcome(channel: XChannel, x: XStandIn) -> None:
    # Given X stores the tweet but the answer is lost
    channel.post(f"Older story https://news.example.org/other", url="https://news.example.org/other")
    x.post_then_fail_next(drop=True)
    with pytest.raises(TransientChannelError):
        channel.post(f"Climate deal {ARTICLE}", url=ARTICLE)
    # When the publisher asks whether the article was posted
    found = channel.find_post(ARTICLE)
    # Then the tweet is found by the article URL behind its t.co link
    assert x.tweets[-1].text.count("https://t.co/") == 1 and ARTICLE not in x.tweets[-1].text
    assert found == PostResult(x.tweets[-1].id, f"https://x.com/i/web/status/{x.tweets[-1].id}")


def test_find_post_returns_none_when_nothing_links_to_the_article(channel: XChannel) -> None:
    channel.post("Something else https://news.example.org/other", url="https://news.example.org/other")
    assert channel.find_post(ARTICLE) is None


def test_find_post_ignores_deleted_posts(channel: XChannel) -> None:
    result = channel.post(f"Gone {ARTICLE}", url=ARTICLE)
    channel.delete(result.remote_id)
    assert channel.find_post(ARTICLE) is None


def test_add_list_member_adds_the_handle_to_the_staff_list(channel: XChannel, x: XStandIn) -> None:
    channel.add_list_member("@adareporter")
    channel.add_list_member("AdaReporter")  # the user id is cached: one lookup
    assert x.members_of("1888") == ["adareporter"]
    assert [r.path for r in x.requests].count("/2/users/by/username/adareporter") == 1


def test_add_list_member_for_an_unknown_account_is_permanent(channel: XChannel, x: XStandIn) -> None:
    x.auto_users = False
    with pytest.raises(PermanentChannelError, match="nobody_here"):
        channel.add_list_member("nobody_here")
    assert x.list_members == {}


def test_add_list_member_without_a_list_does_nothing(x: XStandIn) -> None:
    channel = XChannel(settings(x.url))
    channel.add_list_member("adareporter")
    assert x.requests == []


def test_missing_credentials_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="consumer_key"):
        XChannel(XSettings())


def test_a_base_url_that_is_not_a_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="api_base_url"):
        XChannel(settings("api.x.com"))


def test_only_a_base_other_than_the_real_api_redirects() -> None:
    assert _redirect_target("https://api.x.com") is None
    assert _redirect_target("https://api.twitter.com/") is None
    assert _redirect_target("http://127.0.0.1:8089") == "http://127.0.0.1:8089"


def test_random_failures_are_reproducible_and_only_channel_errors() -> None:
    # Given a stand-in failing 30% of requests with a fixed seed
    outcomes = []
    for _ in range(2):
        with XStandIn(seed=7, fail_rate=0.3) as flaky:
            channel = XChannel(settings(flaky.url))
            run = []
            for i in range(20):
                try:
                    channel.post(f"Item {i} {ARTICLE}", url=ARTICLE)
                    run.append("ok")
                except ChannelError as exc:
                    assert isinstance(exc, TransientChannelError)
                    run.append("retry")
            outcomes.append(run)
    # Then both runs fail the same calls, and some of each happened
    assert outcomes[0] == outcomes[1]
    assert {"ok", "retry"} == set(outcomes[0])


def test_another_process_can_queue_faults_and_read_the_state(channel: XChannel, x: XStandIn) -> None:
    # Given a full-stack test that only has the stand-in's URL
    queued = requests.post(f"{x.url}/_standin/faults", json={"kind": "fail", "status": 503, "path": "/2/tweets"},
                           timeout=2)
    assert queued.status_code == 200
    # When the channel posts twice
    with pytest.raises(TransientChannelError):
        channel.post(f"First try {ARTICLE}", url=ARTICLE)
    channel.post(f"Second try {ARTICLE}", url=ARTICLE)
    # Then the state it reads over HTTP shows one tweet, linking to the article
    state = requests.get(f"{x.url}/_standin/state", timeout=2).json()
    assert [t["urls"] for t in state["tweets"]] == [[ARTICLE]]
    assert [r["status"] for r in state["requests"]] == [503, 201]


def test_find_post_never_adopts_a_post_whose_link_merely_starts_with_the_url(channel: XChannel) -> None:
    # Given the account posted a story at ARTICLE + "0" (".../x1" vs ".../x10")
    channel.post(f"Another story {ARTICLE}0", url=f"{ARTICLE}0")
    # Then it is not taken for a post of ARTICLE: adopting it would leave ARTICLE never posted
    assert channel.find_post(ARTICLE) is None


# -- images -------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def with_image(data: bytes, alt: str | None = "Leaders shake hands in Belém") -> PostContext:
    return PostContext(key="a1/1/x/post", event="article.published", occurred_at=datetime.now(timezone.utc),
                       media=Media(data=data, mime="image/png", alt=alt))


def test_an_image_goes_with_the_post_carrying_its_alt_text(channel: XChannel, x: XStandIn) -> None:
    # When a post is made with the article's image
    result = channel.post(f"Deal agreed {ARTICLE}", url=ARTICLE, context=with_image(PNG))
    # Then X holds one post with the image attached, described by its alt text
    [tweet] = x.live_tweets
    assert tweet.id == result.remote_id and result.notes == ()
    assert [(m["type"], m["alt"]) for m in tweet.media] == [("image/png", "Leaders shake hands in Belém")]
    # And the upload went to X's upload host, signed like every other request
    uploads = [r for r in x.requests if r.path.startswith("/1.1/media/")]
    assert [r.path for r in uploads] == ["/1.1/media/upload.json", "/1.1/media/metadata/create.json"]
    assert all(r.signature_valid for r in uploads)


def test_an_image_x_refuses_never_blocks_the_post(channel: XChannel, x: XStandIn) -> None:
    # Given bytes X does not take as an image
    result = channel.post(f"Deal agreed {ARTICLE}", url=ARTICLE, context=with_image(b"<html>not an image</html>"))
    # Then the post is made without media, and the result says why
    [tweet] = x.live_tweets
    assert tweet.media == []
    assert result.notes and result.notes[0].startswith("image not attached: X: refused while uploading an image")
