"""The Mastodon channel, through real Mastodon.py, against the local Mastodon API stand-in."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
import pytest

from config.site import StaffMember
from syndication.articles import Article, Author
from syndication.channels.base import Channel, Media, PostContext
from syndication.channels.mastodon import MASTODON_RULES, MastodonChannel, MastodonSettings, mastodon_length
from syndication.errors import (
    ConfigError,
    PermanentChannelError,
    RateLimited,
    RejectedPost,
    TransientChannelError,
)
from tests.support.mastodon_standin import MastodonStandIn

ARTICLE = "https://news.example.org/2026/05/01/climate-deal"
TEXT = f"Climate deal reached {ARTICLE}"


def delivery(key: str, language: str | None = None, media: Media | None = None) -> PostContext:
    """What the delivery loop hands a channel: a key the same on every attempt, the article."""
    article = Article(id="a1", url=ARTICLE, title="Climate deal reached", language=language,
                      published_at=datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc))
    return PostContext(key=key, event="article.published", occurred_at=datetime(2026, 5, 1, 9, 30, tzinfo=timezone.utc),
                       article=article, media=media)


@pytest.fixture(scope="module")
def server() -> Iterator[MastodonStandIn]:
    with MastodonStandIn() as standin:
        yield standin


@pytest.fixture
def masto(server: MastodonStandIn) -> MastodonStandIn:
    server.reset()
    server.max_characters = 500
    return server


@pytest.fixture
def channel(masto: MastodonStandIn) -> MastodonChannel:
    return MastodonChannel(MastodonSettings(api_base_url=masto.url, access_token=masto.token, staff_list_id="42",
                                            visibility="unlisted", language="en"), timeout=2)


def test_it_is_a_channel_whose_limit_is_the_instance_s(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    # Given an instance that allows 1000 characters
    masto.max_characters = 1000
    assert isinstance(channel, Channel)
    # Then before the process has asked (posts are composed in a transaction: no request), 500
    assert channel.max_weighted_length == 500
    assert masto.count("GET", "/api/v2/instance") == 0
    # And once it has posted, the instance's limit, asked once per process
    channel.post("one", url=ARTICLE)
    channel.post("two", url=ARTICLE)
    assert channel.max_weighted_length == 1000
    assert masto.count("GET", "/api/v2/instance") == 1


def test_a_configured_limit_is_never_asked(masto: MastodonStandIn) -> None:
    channel = MastodonChannel(MastodonSettings(api_base_url=masto.url, access_token=masto.token, max_characters=5000))
    channel.post("one", url=ARTICLE)
    assert channel.max_weighted_length == 5000 and masto.count("GET", "/api/v2/instance") == 0


def test_an_instance_that_cannot_say_its_limit_leaves_500(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    masto.fail_next(1, 503, path="/api/v2/instance")
    channel.post("one", url=ARTICLE)
    assert channel.max_weighted_length == 500 and len(masto.live_statuses) == 1


def test_a_post_carries_visibility_language_and_an_idempotency_key(channel: MastodonChannel,
                                                                   masto: MastodonStandIn) -> None:
    # Given a delivery of a Brazilian Portuguese article
    # When it is posted
    result = channel.post(TEXT, url=ARTICLE, context=delivery("delivery-7", "pt-BR"))
    # Then the account holds one status with the configured visibility and the article's language
    [status] = masto.live_statuses
    assert (status.text, status.visibility, status.language) == (TEXT, "unlisted", "pt")
    assert status.idempotency_key == "delivery-7"
    assert result.remote_id == status.id
    assert result.remote_url.endswith(f"/{status.id}")


def test_a_retry_of_one_delivery_makes_no_second_status(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    # Given a post that Mastodon made, but whose answer was lost
    masto.fail_next(1, 503, method="POST", path="/api/v1/statuses", handle_first=True)
    with pytest.raises(TransientChannelError):
        channel.post(TEXT, url=ARTICLE, context=delivery("delivery-8"))
    # When the delivery is tried again
    again = channel.post(TEXT, url=ARTICLE, context=delivery("delivery-8"))
    # Then the account still has one status, and it is the one returned
    assert [s.id for s in masto.live_statuses] == [again.remote_id]


def test_without_a_delivery_key_the_same_post_keeps_one_key(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    first = channel.post(TEXT, url=ARTICLE)
    second = channel.post(TEXT, url=ARTICLE)
    assert first == second
    assert len(masto.live_statuses) == 1


def test_find_post_recovers_an_unknown_outcome(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    # Given a post made while the connection dropped
    channel.post("Something else https://news.example.org/other", url="https://news.example.org/other")
    masto.fail_next(1, 502, method="POST", path="/api/v1/statuses", handle_first=True)
    with pytest.raises(TransientChannelError):
        channel.post(TEXT, url=ARTICLE, context=delivery("delivery-9"))
    # When the account's own statuses are searched for the article
    found = channel.find_post(ARTICLE)
    # Then the post is found, and a link that merely starts with the URL is not
    assert found is not None and found.remote_id == masto.live_statuses[-1].id
    assert channel.find_post(ARTICLE + "-2") is None


def test_delete_removes_the_status_and_tolerates_one_already_gone(channel: MastodonChannel,
                                                                 masto: MastodonStandIn) -> None:
    result = channel.post(TEXT, url=ARTICLE)
    channel.delete(result.remote_id)
    assert masto.live_statuses == []
    channel.delete(result.remote_id)
    assert channel.find_post(ARTICLE) is None


def test_a_429_is_rate_limited_until_the_reset_mastodon_gives(channel: MastodonChannel,
                                                             masto: MastodonStandIn) -> None:
    reset_at = masto.rate_limit_next(int(time.time()) + 600, method="POST")
    with pytest.raises(RateLimited) as caught:
        channel.post(TEXT, url=ARTICLE)
    # Mastodon.py corrects the reset by the server's Date header: within the same second here.
    assert abs(caught.value.retry_at - datetime.fromtimestamp(reset_at, timezone.utc)).total_seconds() < 2
    assert masto.live_statuses == []


def test_the_stand_in_rate_limit_window_gives_429_with_its_headers() -> None:
    with MastodonStandIn(rate_limit=(2, 30.0)) as masto:
        channel = MastodonChannel(MastodonSettings(api_base_url=masto.url, access_token=masto.token,
                                                   max_characters=500), timeout=2)
        channel.post("one", url=ARTICLE)
        channel.post("two", url=ARTICLE)
        with pytest.raises(RateLimited) as caught:
            channel.post("three", url=ARTICLE)
        assert 0 < (caught.value.retry_at - datetime.now(timezone.utc)).total_seconds() <= 31


def test_a_503_is_transient(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    masto.fail_next(1, 503, path="/api/v1/statuses")
    with pytest.raises(TransientChannelError) as caught:
        channel.post(TEXT, url=ARTICLE)
    assert not isinstance(caught.value, RateLimited)
    assert "503" in str(caught.value)


def test_a_dropped_connection_is_transient(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    masto.drop_next(path="/api/v1/statuses")
    with pytest.raises(TransientChannelError):
        channel.post(TEXT, url=ARTICLE)


def test_a_refused_token_pauses_the_channel_and_is_not_echoed(masto: MastodonStandIn) -> None:
    channel = MastodonChannel(MastodonSettings(api_base_url=masto.url, access_token="wrong-secret-token"))
    with pytest.raises(PermanentChannelError) as caught:
        channel.post(TEXT, url=ARTICLE)
    assert "401" in str(caught.value) and "wrong-secret-token" not in str(caught.value)


def test_a_403_pauses_the_channel(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    masto.fail_next(1, 403, path="/api/v1/statuses", body={"error": "Your login is currently disabled"})
    with pytest.raises(PermanentChannelError):
        channel.post(TEXT, url=ARTICLE)


def test_a_422_refuses_that_status_with_mastodon_s_reason(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    # Given an instance that allows 100 characters, and a longer text
    masto.max_characters = 100
    with pytest.raises(RejectedPost) as caught:
        channel.post("x" * 101, url=ARTICLE)
    # Then only that delivery fails, with the reason, counted as explained
    assert "character limit of 100" in str(caught.value) and caught.value.explained
    assert channel.post("short", url=ARTICLE).remote_id


@pytest.mark.parametrize("raw", [b"<html>Bad Request</html>", b"[1, 2]", b""], ids=["html", "list", "empty"])
def test_a_malformed_400_refuses_that_status_unexplained(channel: MastodonChannel, masto: MastodonStandIn,
                                                         raw: bytes) -> None:
    masto.fail_next(1, 400, path="/api/v1/statuses", raw=raw)
    with pytest.raises(RejectedPost) as caught:
        channel.post(TEXT, url=ARTICLE)
    assert "400" in str(caught.value) and not caught.value.explained


def test_the_length_rule_counts_links_as_23_and_remote_mentions_by_name() -> None:
    assert mastodon_length("Read https://news.example.org/" + "a" * 80) == 5 + 23
    assert mastodon_length("by @ana@social.example") == len("by @ana")
    # User-perceived characters: a flag and a family are one each.
    assert mastodon_length("🇧🇷 👨‍👩‍👧") == 3


def test_the_length_rule_agrees_with_the_instance(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    text = "é" * (500 - 24) + " " + ARTICLE + "/" + "z" * 200
    assert mastodon_length(text) == 500
    channel.post(text, url=ARTICLE)
    with pytest.raises(RejectedPost):
        channel.post(text + "!", url=ARTICLE)


def test_the_image_goes_with_its_alt_text_and_a_refused_one_never_blocks(channel: MastodonChannel,
                                                                       masto: MastodonStandIn) -> None:
    # Given an article whose image was fetched, and one whose image the instance refuses
    png = Media(b"\x89PNG\r\n\x1a\n a tiny png", "image/png", alt="The harbour at dawn")
    channel.post(TEXT, url=ARTICLE, context=delivery("pictured", media=png))
    masto.fail_next(1, 422, path="/api/v2/media", body={"error": "Validation failed: File could not be processed"})
    refused = channel.post("Another " + ARTICLE + "/2", url=ARTICLE + "/2", context=delivery("refused", media=png))
    # Then the first status carries the image with its alt text, the second went without, saying why
    first, second = masto.live_statuses
    assert [(m["mime"], m["description"]) for m in first.media] == [("image/png", "The harbour at dawn")]
    assert second.media == [] and refused.notes and "File could not be processed" in refused.notes[0]


def test_the_kind_s_rules_measure_and_find_mastodon_handles() -> None:
    assert MASTODON_RULES.length("by @ana@social.example") == len("by @ana")
    assert MASTODON_RULES.handle(Author(name="Ana", social={"mastodon": "@ana@social.example"}), None) == \
        "ana@social.example"
    assert MASTODON_RULES.handle(Author(name="Ben"), StaffMember(mastodon="ben@news.example")) == "ben@news.example"


def test_a_staff_member_is_followed_then_added_to_the_list(channel: MastodonChannel, masto: MastodonStandIn) -> None:
    # Given a staff member on another instance the account does not follow
    masto.add_account("ana@social.example")
    # When they are added to the staff list (twice: a retry)
    channel.add_list_member("@ana@social.example")
    channel.add_list_member("@ana@social.example")
    # Then the account follows them and the list holds them once
    assert masto.accounts["ana@social.example"].followed
    assert masto.members_of("42") == ["ana@social.example"]
    assert masto.count("POST", "/api/v1/accounts/") == 1  # one follow


def test_a_locked_account_awaiting_approval_fails_only_that_add(channel: MastodonChannel,
                                                                masto: MastodonStandIn) -> None:
    masto.add_account("guarded@social.example", locked=True)
    with pytest.raises(RejectedPost, match="not accepted the follow"):
        channel.add_list_member("guarded@social.example")
    assert masto.members_of("42") == []


def test_an_unknown_staff_account_fails_only_that_add(channel: MastodonChannel) -> None:
    with pytest.raises(RejectedPost, match="no account"):
        channel.add_list_member("@nobody@nowhere.example")


def test_settings_need_a_url_and_a_token() -> None:
    with pytest.raises(ConfigError):
        MastodonChannel(MastodonSettings(api_base_url="https://mastodon.example"))
    with pytest.raises(ValueError, match="absolute http"):
        MastodonSettings(api_base_url="mastodon.example", access_token="t")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Env(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="SYNDICATION_", env_nested_delimiter="__")
        mastodon: MastodonSettings = MastodonSettings()

    monkeypatch.setenv("SYNDICATION_MASTODON__API_BASE_URL", "https://mastodon.example/")
    monkeypatch.setenv("SYNDICATION_MASTODON__ACCESS_TOKEN", "env-secret-token")
    monkeypatch.setenv("SYNDICATION_MASTODON__STAFF_LIST_ID", "7")
    found = Env().mastodon
    assert (found.api_base_url, found.staff_list_id, found.enabled) == ("https://mastodon.example", "7", True)
    assert "env-secret-token" not in repr(found)


def test_empty_variables_from_the_compose_file_mean_the_defaults() -> None:
    found = MastodonSettings.model_validate({"api_base_url": "", "access_token": "", "visibility": "",
                                             "language": "", "max_characters": "", "staff_list_id": ""})
    assert (found.enabled, found.visibility, found.language, found.max_characters) == (False, "public", "en", None)
