"""The outgoing webhook channel, against a local receiver that verifies signatures with the
``standardwebhooks`` library."""
from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pydantic
import pytest

from syndication.articles import parse_article
from syndication.channels.base import Channel, PostContext
from syndication.channels.webhook import WebhookChannel, WebhookSettings, message_id
from syndication.errors import PermanentChannelError, RateLimited, RejectedPost, TransientChannelError
from tests.conftest import FixedClock
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
ARTICLE = parse_article({"id": "a1", "url": "https://news.test.example/a/1", "title": "Budget passes",
                         "summary": "<p>After a long night.</p>", "published_at": "2026-05-01T09:30:00Z",
                         "authors": [{"name": "Ada Reporter", "email": "ada@news.test.example"}],
                         "content_html": "<p>Full text</p>", "section": "City"})
PUBLISHED = PostContext(key="a1/1/webhook/post", event="article.published",
                        occurred_at=datetime(2026, 5, 1, 9, 31, tzinfo=timezone.utc), article=ARTICLE)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as server:
        yield server


@pytest.fixture
def channel(receiver: WebhookReceiver) -> WebhookChannel:
    receiver.reset()
    return WebhookChannel(WebhookSettings(url=receiver.url, secret=SECRET, timeout_s=2))


def test_it_is_a_channel(channel: WebhookChannel) -> None:
    assert isinstance(channel, Channel)


def test_a_post_is_a_signed_article_published_message(channel: WebhookChannel, receiver: WebhookReceiver) -> None:
    # When an article's post is sent
    result = channel.post("Budget passes https://news.test.example/a/1", url=ARTICLE.url, context=PUBLISHED)
    # Then the receiver verified the signature and got the event, the article's public fields and the text
    [message] = receiver.accepted
    assert message.webhook_id == result.remote_id == message_id("a1/1/webhook/post")
    assert message.headers["webhook-signature"].startswith("v1,")
    payload = message.payload
    assert payload["type"] == "article.published"
    assert payload["timestamp"] == "2026-05-01T09:31:00+00:00"
    assert payload["data"]["text"] == "Budget passes https://news.test.example/a/1"
    article = payload["data"]["article"]
    assert (article["id"], article["url"], article["title"], article["section"]) == (
        "a1", "https://news.test.example/a/1", "Budget passes", "City")
    # And nothing that is not public: no e-mail address, no full text
    assert article["authors"] == [{"name": "Ada Reporter", "url": None}]
    assert "content_html" not in article and "ada@news.test.example" not in message.body.decode()


def test_every_retry_of_one_delivery_carries_the_same_webhook_id(
        channel: WebhookChannel, receiver: WebhookReceiver) -> None:
    # Given the endpoint fails twice with 503
    receiver.answer_next(503, 2)
    # When the delivery is attempted until it goes through
    for _ in range(2):
        with pytest.raises(TransientChannelError):
            channel.post("text", url=ARTICLE.url, context=PUBLISHED)
    channel.post("text", url=ARTICLE.url, context=PUBLISHED)
    # Then the three attempts were one message id, each correctly signed
    attempts = receiver.attempts_of(message_id(PUBLISHED.key))
    assert [a.status for a in attempts] == [503, 503, 204]
    assert all(a.verified for a in attempts)


def test_a_withdrawal_is_an_article_withdrawn_message(channel: WebhookChannel, receiver: WebhookReceiver) -> None:
    posted = channel.post("text", url=ARTICLE.url, context=PUBLISHED)
    withdrawn = PostContext(key="a1/2/webhook/delete", event="article.withdrawn",
                            occurred_at=PUBLISHED.occurred_at, article=ARTICLE)
    channel.delete(posted.remote_id, context=withdrawn)
    assert [m.type for m in receiver.accepted] == ["article.published", "article.withdrawn"]
    assert receiver.accepted[1].payload["data"]["webhook_id"] == posted.remote_id


def test_a_429_pauses_until_retry_after(receiver: WebhookReceiver) -> None:
    receiver.reset()
    clock = FixedClock(datetime(2026, 5, 1, 9, 30, tzinfo=timezone.utc))
    channel = WebhookChannel(WebhookSettings(url=receiver.url, secret=SECRET), clock=clock)
    receiver.answer_next(429, headers={"Retry-After": "120"})
    with pytest.raises(RateLimited) as caught:
        channel.post("text", url=ARTICLE.url, context=PUBLISHED)
    assert caught.value.retry_at == clock() + timedelta(seconds=120)


@pytest.mark.parametrize(("status", "error"), [
    (410, PermanentChannelError), (401, PermanentChannelError), (403, PermanentChannelError),
    (500, TransientChannelError), (502, TransientChannelError), (408, TransientChannelError),
])
def test_answers_that_pause_the_channel_or_retry(channel: WebhookChannel, receiver: WebhookReceiver,
                                                 status: int, error: type[Exception]) -> None:
    receiver.answer_next(status)
    with pytest.raises(error):
        channel.post("text", url=ARTICLE.url, context=PUBLISHED)


def test_a_410_says_the_endpoint_is_gone(channel: WebhookChannel, receiver: WebhookReceiver) -> None:
    receiver.answer_next(410)
    with pytest.raises(PermanentChannelError, match="gone"):
        channel.post("text", url=ARTICLE.url, context=PUBLISHED)


@pytest.mark.parametrize(("status", "body", "explained"), [
    (400, b"article.title: too long for our index", True), (422, b"", False), (404, b"", False),
    (302, b"", False),
])
def test_a_refused_request_fails_that_delivery(channel: WebhookChannel, receiver: WebhookReceiver,
                                               status: int, body: bytes, explained: bool) -> None:
    receiver.answer_next(status, body=body, headers={"Location": "http://elsewhere.example/"} if status == 302 else None)
    with pytest.raises(RejectedPost) as caught:
        channel.post("text", url=ARTICLE.url, context=PUBLISHED)
    assert caught.value.explained is explained
    assert len(receiver.requests) == 1  # a redirect is never followed


def test_an_endpoint_that_does_not_answer_is_transient() -> None:
    channel = WebhookChannel(WebhookSettings(url="http://127.0.0.1:9/hooks", secret=SECRET, timeout_s=1))
    with pytest.raises(TransientChannelError):
        channel.post("text", url=ARTICLE.url, context=PUBLISHED)


@pytest.mark.parametrize(("values", "field"), [
    ({"url": "hooks.example/in", "secret": SECRET}, "url"),
    ({"url": "https://hooks.example/in", "secret": "s3cret-but-not-whsec"}, "secret"),
    ({"url": "https://hooks.example/in", "secret": "whsec_not base64!"}, "secret"),
    ({"url": "https://hooks.example/in", "secret": "whsec_" + base64.b64encode(b"short").decode()}, "secret"),
])
def test_bad_settings_are_refused_naming_the_field(values: dict[str, str], field: str) -> None:
    # (The registry turns this into a ConfigError naming SYNDICATION_<ACCOUNT>__<FIELD>, without the value.)
    with pytest.raises(pydantic.ValidationError) as caught:
        WebhookSettings.model_validate(values)
    assert caught.value.errors()[0]["loc"] == (field,)
