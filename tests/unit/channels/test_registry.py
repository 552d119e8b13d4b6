"""The channel registry: each kind declared once, the accounts a deployment posts to, and the
secrets every log line hides."""
from __future__ import annotations

import base64
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from config import Settings, SiteConfig
from syndication.channels.base import PostResult, PostRules
from syndication.channels.registry import CHANNEL_KINDS, ChannelKind, build_channels, channel_names, secrets_of
from syndication.errors import ConfigError
from syndication.logs import configure_logging

X_CREDENTIALS = {"consumer_key": "ck-abcd", "consumer_secret": "cs-abcd", "access_token": "at-abcd",
                 "access_token_secret": "ats-abcd"}
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"registry-test-secret-0123").decode()


def site(**channels: dict[str, object]) -> SiteConfig:
    return SiteConfig.model_validate({"site": {"title": "T", "base_url": "https://t.example/"},
                                      "channels": channels or {"preview": {}}})


def test_channels_listed_are_those_whose_settings_are_complete() -> None:
    config = site(preview={}, x={"max_attempts": 2})
    assert channel_names(config, Settings(x={"consumer_key": "ck-only"})) == ["preview"]
    assert channel_names(config, Settings(x=X_CREDENTIALS)) == ["preview", "x"]
    # A kind the site TOML does not mention is on when its settings are given
    both = Settings(x=X_CREDENTIALS, webhook={"url": "https://hooks.example/in", "secret": WEBHOOK_SECRET})
    assert channel_names(config, both) == ["preview", "webhook", "x"]
    # And off when the site TOML disables it
    assert channel_names(site(preview={}, webhook={"enabled": False}), both) == ["preview", "x"]


def test_a_second_account_of_a_kind_has_its_own_name_and_credentials(tmp_path: Path) -> None:
    # Given the main X account and a sport desk account, routed by section
    config = site(x={"except_sections": ["Sport"]}, x_sport={"kind": "x", "only_sections": ["Sport"]})
    settings = Settings(x=X_CREDENTIALS, x_sport={**X_CREDENTIALS, "access_token": "at-sport", "staff_list_id": "77"})
    # When the channels are built
    channels = build_channels(config, settings, tmp_path)
    # Then both are X channels, each under its own name, and only the sport desk keeps a staff list
    assert channels.kinds == {"x": "x", "x_sport": "x"}
    assert [c.name for c in channels.active.values()] == ["x", "x_sport"]
    assert channels.staff_lists == {"x_sport": "77"}


def test_an_account_of_an_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"channels\.x_sport: no channel kind 'x_sport'"):
        channel_names(site(x_sport={"only_sections": ["Sport"]}), Settings())


def test_a_setting_the_kind_refuses_names_the_variable_and_never_the_value() -> None:
    settings = Settings(webhook={"url": "https://hooks.example/in", "secret": "s3cret-not-whsec"})
    with pytest.raises(ConfigError) as caught:
        channel_names(site(), settings)
    assert "SYNDICATION_WEBHOOK__SECRET" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_account_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATION_X_SPORT__ACCESS_TOKEN", "at-from-env")
    monkeypatch.setenv("SYNDICATION_WEBHOOK__URL", "https://hooks.example/in")
    settings = Settings()
    assert settings.accounts["x_sport"]["access_token"] == "at-from-env"
    assert settings.accounts["webhook"]["url"] == "https://hooks.example/in"


SECRET_VALUES = {"secret": WEBHOOK_SECRET, "url": "https://hooks.example/services/T000/B000/tokenpart1234"}


@pytest.mark.parametrize(("kind", "field"), [(k, f) for k, kind in CHANNEL_KINDS.items() for f in kind.secret_fields])
@pytest.mark.parametrize("account", ["main", "second"])
def test_every_declared_secret_is_redacted_from_the_logs(kind: str, field: str, account: str) -> None:
    # Given an account of this kind (under its own name, or a second one) with this secret set
    value = SECRET_VALUES.get(field, f"{kind}-{field}-value-1234")
    name = kind if account == "main" else f"{kind}_second"
    settings = Settings(accounts={name: {field: value}})
    # When a log line carries it, in the message and in an extra
    stream = io.StringIO()
    configure_logging("INFO", secrets=secrets_of(settings))
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    logging.getLogger("test").warning("answer was %s", value, extra={"detail": value})
    # Then the line is written, without the secret
    assert "answer was ***" in stream.getvalue()
    assert value not in stream.getvalue()


@pytest.mark.parametrize("kind", sorted(CHANNEL_KINDS))
def test_every_secret_looking_setting_is_declared_secret(kind: str) -> None:
    # A kind whose settings hold a token, a password or a key must declare it, or logs could show it.
    declared = set(CHANNEL_KINDS[kind].secret_fields)
    for name, field in CHANNEL_KINDS[kind].settings.model_fields.items():
        if any(word in name for word in ("token", "secret", "password", "key")):
            assert name in declared, f"{kind}: setting {name} looks secret but is not declared"
            assert SecretStr in getattr(field.annotation, "__args__", (field.annotation,)), \
                f"{kind}: {name} should be a SecretStr, so repr() hides it too"


class _Pager:
    """A made-up fifth kind, declared the way the README's "Adding a channel" shows."""

    max_weighted_length = 160

    def __init__(self, settings: "_PagerSettings", *, name: str) -> None:
        self.name, self.sent = name, []

    def post(self, text: str, *, url: str, context: object = None, reply_to: str | None = None) -> PostResult:
        self.sent.append(text)
        return PostResult(str(len(self.sent)), "")

    def delete(self, remote_id: str, *, context: object = None) -> None:
        pass

    def find_post(self, url: str, *, text: str | None = None) -> PostResult | None:
        return None

    def add_list_member(self, handle: str) -> None:
        pass


class _PagerSettings(BaseModel):
    number: str | None = None
    api_key: SecretStr | None = None


def test_a_fifth_kind_is_one_declaration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given a new kind, declared with one line in the registry
    monkeypatch.setitem(CHANNEL_KINDS, "pager", ChannelKind(
        settings=_PagerSettings, rules=PostRules(length=len), build=lambda a: _Pager(a.settings, name=a.name),
        configured=lambda s: bool(s.number and s.api_key)))
    settings = Settings(pager={"number": "+15550100", "api_key": "pager-key-9876"})
    # Then it is listed, built with its rules, and its secret is redacted, with nothing else changed
    assert channel_names(site(), settings) == ["pager", "preview"]
    channels = build_channels(site(), settings, tmp_path)
    assert isinstance(channels.active["pager"], _Pager) and channels.rules["pager"].length("ab") == 2
    assert "pager-key-9876" in secrets_of(settings)


# What a process imports is checked in a fresh interpreter: this one has loaded every adapter already.
LOADED = """
import json, sys
from pathlib import Path
from config import Settings, SiteConfig
from syndication.channels.registry import build_channels
site = SiteConfig.model_validate({"site": {"title": "T", "base_url": "https://t.example/"}, "channels": {"preview": {}}})
build_channels(site, Settings(**json.loads(sys.argv[1])), Path(sys.argv[2]))
print(json.dumps(sorted(m for m in ("tweepy", "mastodon", "atproto", "standardwebhooks") if m in sys.modules)))
"""


@pytest.mark.parametrize(("accounts", "libraries"), [
    ({}, []),
    ({"x": X_CREDENTIALS}, ["tweepy"]),
    ({"webhook": {"url": "https://hooks.example/in", "secret": WEBHOOK_SECRET}}, ["standardwebhooks"]),
])
def test_a_process_loads_the_client_libraries_of_its_own_accounts_only(
        accounts: dict[str, dict[str, str]], libraries: list[str], tmp_path: Path) -> None:
    # Given a process whose only accounts are ``accounts`` (atproto alone costs 0.4 s to import)
    # When it builds its channels
    found = subprocess.run([sys.executable, "-c", LOADED, json.dumps(accounts), str(tmp_path)],
                           capture_output=True, text=True, timeout=60, check=True)
    # Then it has loaded the client libraries of those kinds, and no other
    assert json.loads(found.stdout) == libraries
