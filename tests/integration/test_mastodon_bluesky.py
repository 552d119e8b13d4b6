"""Mastodon and Bluesky from the registry, through real workers: the real Mastodon.py and atproto
clients in the social worker processes talk to the local stand-ins over HTTP."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from apps.cli.app import app
from tests.conftest import article_json
from tests.integration.conftest import running
from tests.integration.test_social import SOCIAL_SITE, now_iso, publish
from tests.support.bluesky_standin import BlueskyStandIn
from tests.support.mastodon_standin import MastodonStandIn
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.integration
LIST = "at://did:plc:standingazette0000000001/app.bsky.graph.list/3kstafflist22"
# The social site of test_social, with these two services and their handles for its reporter.
SITE = SOCIAL_SITE.split('[staff."Ada Reporter"]')[0] + """[staff."Ada Reporter"]
mastodon = "ada@social.example"
bluesky = "ada.bsky.social"

[channels.mastodon]
posts_per_window = 10000

[channels.bluesky]
posts_per_window = 10000
"""


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"  # the ledger on both databases is test_social's; this is about the two services


@pytest.fixture(scope="module")
def masto() -> Iterator[MastodonStandIn]:
    with MastodonStandIn() as server:
        server.add_account("ada@social.example")
        yield server


@pytest.fixture(scope="module")
def bsky() -> Iterator[BlueskyStandIn]:
    with BlueskyStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, backend: str, masto: MastodonStandIn,
          bsky: BlueskyStandIn) -> Iterator[Stack]:
    env = {"MASTODON__API_BASE_URL": masto.url, "MASTODON__ACCESS_TOKEN": masto.token,
           "MASTODON__STAFF_LIST_ID": "42",
           "BLUESKY__HANDLE": bsky.handle, "BLUESKY__APP_PASSWORD": bsky.password,
           "BLUESKY__SERVICE_URL": bsky.url, "BLUESKY__STAFF_LIST_URI": LIST}
    with running(tmp_path_factory.mktemp("fediverse"), backend, extra_env=env, site_toml=SITE) as shared:
        yield shared


def test_an_article_reaches_mastodon_and_bluesky_once_and_its_withdrawal_both(
        stack: Stack, masto: MastodonStandIn, bsky: BlueskyStandIn) -> None:
    ada = bsky.add_handle("ada.bsky.social")
    # Given both services configured, status lists them and none of their secrets
    env = {k: v for k, v in stack.env().items() if k.startswith("SYNDICATION_")}
    result = CliRunner().invoke(app, ["status", "--json"], env=env)
    assert sorted(c["name"] for c in json.loads(result.stdout)["channels"]) == ["bluesky", "mastodon"]
    assert masto.token not in result.output and bsky.password not in result.output
    # When an article by a staff reporter is published
    article = article_json("fedi", published_at=now_iso(), authors=[{"name": "Ada Reporter"}])
    publish(stack, article)
    wait_for(lambda: masto.live_statuses and bsky.live_posts(), 60, what="a post on each service")
    stack.wait_settled()
    # Then each holds one post linking it and mentioning the reporter by their handle there
    [status] = masto.live_statuses
    [post] = bsky.live_posts()
    assert article["url"] in status.text and "@ada@social.example" in status.text
    assert post["embed"]["external"]["uri"] == article["url"] and "@ada.bsky.social" in post["text"]
    assert {"$type": "app.bsky.richtext.facet#mention", "did": ada} in [f["features"][0] for f in post["facets"]]
    # And the reporter joins each staff list (followed first on Mastodon; the list grows just
    # after the delivery is final), with no more than one login to Bluesky per worker
    def listitems() -> list[str]:
        return [v["subject"] for (c, _), v in list(bsky.records.items()) if c == "app.bsky.graph.listitem"]

    wait_for(lambda: masto.members_of("42") and listitems(), 30, what="the staff lists")
    assert masto.members_of("42") == ["ada@social.example"] and masto.accounts["ada@social.example"].followed
    assert listitems() == [ada]
    assert bsky.logins <= stack.social_workers
    # When it is withdrawn, then both posts are deleted
    with stack.client() as http:
        assert http.delete("/api/v1/articles/art-fedi", headers=stack.auth()).status_code == 202
    wait_for(lambda: not masto.live_statuses and not bsky.live_posts(), 60, what="the withdrawal on both")
