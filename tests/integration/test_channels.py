"""Several channels at once, from the registry: X (through real tweepy against its stand-in) and
the outgoing webhook (against a local receiver that verifies every signature)."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
import pytest
from typer.testing import CliRunner

from apps.cli.app import app
from syndication.store.deliveries import all_pauses, list_deliveries
from tests.conftest import article_json
from tests.integration.conftest import running
from tests.integration.test_social import SOCIAL_SITE, now_iso, publish, standin, tweets_for, x_env
from tests.support.image_host import image_host
from tests.support.stack import Stack, wait_for
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.x_standin import XStandIn

pytestmark = pytest.mark.integration
# The site's images are served from 127.0.0.1 here (tests/support/image_host.py).
CHANNELS_SITE = SOCIAL_SITE.replace("[social]\n", '[social]\nimage_hosts = ["127.0.0.1"]\n')
SECRET = "whsec_" + base64.b64encode(b"integration-webhook-secret-42").decode()


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"  # the ledger's behaviour on both databases is test_social's; this is about channels


@pytest.fixture(scope="module")
def x() -> Iterator[XStandIn]:
    with standin() as server:
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory, backend: str, x: XStandIn,
                 receiver: WebhookReceiver) -> Iterator[Stack]:
    env = {**x_env(x), "WEBHOOK__URL": receiver.url, "WEBHOOK__SECRET": SECRET}
    with running(tmp_path_factory.mktemp("channels"), backend, extra_env=env, site_toml=CHANNELS_SITE) as stack:
        yield stack


@pytest.fixture
def both(shared_stack: Stack, x: XStandIn, receiver: WebhookReceiver) -> Stack:
    """The module's stack settled, with an empty X account and receiver, and no channel paused."""
    shared_stack.wait_settled()
    assert httpx.post(f"{x.url}/_standin/reset", timeout=5).status_code == 200
    receiver.reset()
    CliRunner().invoke(app, ["channels", "resume", "webhook"], env=cli_env(shared_stack))
    return shared_stack


def cli_env(stack: Stack) -> dict[str, str]:
    return {k: v for k, v in stack.env().items() if k.startswith("SYNDICATION_")}


def test_status_lists_every_configured_channel(both: Stack) -> None:
    # Given X and webhook settings (and no preview in the site TOML)
    result = CliRunner().invoke(app, ["status", "--json"], env=cli_env(both))
    # Then status lists both channels, and none of their secrets
    data = json.loads(result.stdout)
    assert sorted(c["name"] for c in data["channels"]) == ["webhook", "x"]
    assert SECRET not in result.output and "cs-test-secret" not in result.output


def test_an_article_reaches_x_and_the_webhook_once_and_its_withdrawal_both(
        both: Stack, x: XStandIn, receiver: WebhookReceiver) -> None:
    # When an article by a staff reporter is published
    article = article_json("both", published_at=now_iso(), authors=[{"name": "Ada Reporter"}])
    publish(both, article)
    wait_for(lambda: x.live_tweets and receiver.accepted, 30, what="the post and the message")
    both.wait_settled()
    # Then X has one post, and the receiver one signed article.published with the composed text
    [text] = tweets_for(x, str(article["url"]))
    [message] = receiver.accepted
    assert message.type == "article.published"
    assert message.payload["data"]["article"]["url"] == article["url"]
    assert str(article["url"]) in message.payload["data"]["text"]
    # When it is withdrawn
    with both.client() as http:
        assert http.delete("/api/v1/articles/art-both", headers=both.auth()).status_code == 202
    # Then the X post is deleted and the receiver is told, with a new message id
    wait_for(lambda: not x.live_tweets and len(receiver.accepted) == 2, 30, what="the withdrawal on both")
    assert [m.type for m in receiver.accepted] == ["article.published", "article.withdrawn"]
    assert all(r.verified for r in receiver.requests)


def test_a_gone_endpoint_pauses_the_webhook_and_x_goes_on(both: Stack, x: XStandIn, receiver: WebhookReceiver) -> None:
    # Given the endpoint answers 410 Gone
    receiver.answer_next(410)
    # When an article is published
    publish(both, article_json("gone-hook", published_at=now_iso()))
    wait_for(lambda: x.live_tweets, 30, what="the X post")
    both.wait_settled()
    # Then the webhook channel is paused, saying why, and X posted as usual
    with both.runtime.store.read() as session:
        pauses = {p.channel: p for p in all_pauses(session) if p.active(datetime.now(timezone.utc))}
        [delivery] = [d for d in list_deliveries(session) if d.article_id == "art-gone-hook" and d.channel == "webhook"]
    assert list(pauses) == ["webhook"] and "gone (410)" in (pauses["webhook"].reason or "")
    assert delivery.state == "failed"
    assert len(x.live_tweets) == 1


def test_the_article_s_image_goes_to_x_with_its_alt_text_and_a_bad_one_never_blocks(
        both: Stack, x: XStandIn) -> None:
    with image_host() as images:
        # Given one article with an image from the site's host, one whose image is not an image
        good = article_json("pictured", published_at=now_iso(),
                            image={"url": f"{images}/ok.png", "alt": "The harbour at dawn"})
        bad = article_json("badpicture", published_at=now_iso(), image={"url": f"{images}/page"})
        # When both are published
        publish(both, good, bad)
        wait_for(lambda: len(x.live_tweets) == 2, 30, what="both posts")
        both.wait_settled()
    # Then the first went with its image and alt text, the second without an image
    media = {url: t.media for url in (good["url"], bad["url"]) for t in x.live_tweets
             if str(url) in t.original_text.split()}
    assert [(m["type"], m["alt"]) for m in media[good["url"]]] == [("image/png", "The harbour at dawn")]
    assert media[bad["url"]] == []
    # And the second article's story, as the API shows it, says why
    with both.client() as http:
        r = http.get("/api/v1/articles/art-badpicture", headers=both.auth())
    [skipped] = [s for s in r.json()["timeline"] if s["kind"] == "delivery.image_skipped"]
    assert skipped["channel"] == "x" and skipped["reason"] == "not an image: text/html"
