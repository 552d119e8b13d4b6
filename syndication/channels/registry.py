"""The channel kinds, each declared once, and the accounts a deployment posts to.

A kind is everything the rest of the product needs to know about one service: its settings
model, which of those settings are secrets (log redaction reads them here), how it counts a
post's length and finds an author's handle, whether it keeps a staff list, and how to build it.
Status, ``/ops``, metrics, the workers, redaction and the docker-compose test all read
``CHANNEL_KINDS``; adding a service is one module and one line below.

An *account* is one configured use of a kind, under a name: ``x`` (the kind's own name), or
``x_sport`` with ``[channels.x_sport] kind = "x"`` in the site TOML, its credentials in
``SYNDICATION_X_SPORT__*``. The ledger, pauses and budgets are per account.

Usage::

    channels = build_channels(site, settings, data_dir)
    channels.active["x"].post(...)
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, SecretStr

from config import Settings, SiteConfig
from syndication.channels.base import Channel, PostRules
from syndication.channels.bluesky import BLUESKY_RULES, BlueskyChannel, BlueskySettings
from syndication.channels.mastodon import MASTODON_RULES, MastodonChannel, MastodonSettings
from syndication.channels.preview import PREVIEW_RULES, PreviewChannel, PreviewSettings
from syndication.channels.webhook import WEBHOOK_RULES, WebhookChannel, WebhookSettings
from syndication.channels.x import X_RULES, XChannel, XSettings
from syndication.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Account:
    """One configured account: its name (the channel name in the ledger), its kind, its settings."""

    name: str
    kind: str
    settings: Any
    data_dir: Path
    image_hosts: tuple[str, ...] = ()  # where its images may come from (``syndication.media``)


@dataclass(frozen=True)
class ChannelKind:
    """One service, declared once.

    ``settings``: the pydantic model of one account's settings (SYNDICATION_<ACCOUNT>__<FIELD>).
    ``build``: makes the channel of an account. ``rules``: length and handles. ``secrets``: the
    settings fields to redact (default: every ``SecretStr`` field). ``staff_list``: the account's
    staff list id, or None for a kind without staff lists. ``configured``: whether an account's
    settings are complete enough to post (an X account without its four credentials is off).
    ``media``: whether it takes the article's image (fetched by ``syndication.media``).
    """

    settings: type[BaseModel]
    build: Callable[[Account], Channel]
    rules: PostRules
    secrets: tuple[str, ...] | None = None
    staff_list: Callable[[Any], str | None] | None = None
    configured: Callable[[Any], bool] = lambda settings: True
    media: bool = False

    @property
    def secret_fields(self) -> tuple[str, ...]:
        if self.secrets is not None:
            return self.secrets
        return tuple(name for name, f in self.settings.model_fields.items()
                     if f.annotation is not None and SecretStr in getattr(f.annotation, "__args__", (f.annotation,)))


CHANNEL_KINDS: dict[str, ChannelKind] = {
    "preview": ChannelKind(settings=PreviewSettings, rules=PREVIEW_RULES,
                           build=lambda a: PreviewChannel(a.data_dir / "preview-posts.jsonl", name=a.name)),
    "x": ChannelKind(settings=XSettings, rules=X_RULES, build=lambda a: XChannel(a.settings, name=a.name),
                     staff_list=lambda s: s.staff_list_id, configured=lambda s: s.enabled, media=True),
    "mastodon": ChannelKind(settings=MastodonSettings, rules=MASTODON_RULES, media=True,
                            build=lambda a: MastodonChannel(a.settings, name=a.name),
                            staff_list=lambda s: s.staff_list_id, configured=lambda s: s.enabled),
    "bluesky": ChannelKind(settings=BlueskySettings, rules=BLUESKY_RULES, media=True,
                           build=lambda a: BlueskyChannel(a.settings, name=a.name),
                           staff_list=lambda s: s.staff_list_uri, configured=lambda s: s.enabled),
    # The URL too: a Slack-style endpoint carries its token in the path.
    "webhook": ChannelKind(settings=WebhookSettings, rules=WEBHOOK_RULES, secrets=("url", "secret"),
                           build=lambda a: WebhookChannel(a.settings, name=a.name), configured=lambda s: s.enabled),
}


@dataclass
class Channels(Mapping[str, Channel]):
    """The active channels by account name (it reads as that mapping), each one's rules, and
    staff list id (if it keeps one)."""

    active: dict[str, Channel] = field(default_factory=dict)
    staff_lists: dict[str, str] = field(default_factory=dict)
    rules: dict[str, PostRules] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    media: set[str] = field(default_factory=set)  # the accounts that take images

    def __getitem__(self, name: str) -> Channel:
        return self.active[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.active)

    def __len__(self) -> int:
        return len(self.active)


def rules_for(channels: Mapping[str, Channel], name: str) -> PostRules:
    """The rules of the channel ``name``: as built, else its kind's when it is named after one,
    else the preview's (a channel a test built by hand)."""
    if isinstance(channels, Channels) and name in channels.rules:
        return channels.rules[name]
    kind = CHANNEL_KINDS.get(name)
    return kind.rules if kind else PREVIEW_RULES


def kind_of(site: SiteConfig, name: str) -> str:
    """The kind of the account ``name``: its ``kind`` in the site TOML, else its own name."""
    return site.channel(name).kind or name


def accounts(site: SiteConfig, settings: Settings, data_dir: Path) -> Iterator[Account]:
    """The accounts that post: each channel the site TOML enables or the environment configures,
    whose settings are complete. Raises ``ConfigError`` for an unknown kind in the site TOML or
    a setting its kind refuses, naming the variable."""
    for name in sorted(set(site.channels) | set(settings.accounts)):
        if not site.channel(name).enabled:
            continue
        kind_name = kind_of(site, name)
        kind = CHANNEL_KINDS.get(kind_name)
        if kind is None:
            if name in site.channels:
                raise ConfigError(f"channels.{name}: no channel kind {kind_name!r} "
                                  f"(known: {', '.join(sorted(CHANNEL_KINDS))}); set kind = \"...\"")
            log.warning("settings for an unknown channel ignored", extra={"account": name})
            continue
        # An empty variable is an unset one (a compose file passes "${SYNDICATION_X__...:-}").
        given = {k: v for k, v in settings.accounts.get(name, {}).items() if v not in ("", None)}
        if not given and name not in site.channels:
            continue
        try:
            model = kind.settings.model_validate(given)
        except pydantic.ValidationError as exc:
            problems = "; ".join(f"SYNDICATION_{name.upper()}__{'__'.join(str(p) for p in e['loc']).upper()}: "
                                 f"{e['msg']}" for e in exc.errors())
            raise ConfigError(f"channel {name} ({kind_name}): {problems}") from None
        if kind.configured(model):
            yield Account(name, kind_name, model, data_dir, tuple(site.image_hosts))


def channel_names(site: SiteConfig, settings: Settings) -> list[str]:
    """The names of the accounts that post, for status, ``/ops`` and metrics."""
    return [a.name for a in accounts(site, settings, Path("."))]


def build_channels(site: SiteConfig, settings: Settings, data_dir: Path) -> Channels:
    """Build every account's channel, once per process."""
    channels = Channels()
    for account in accounts(site, settings, data_dir):
        kind = CHANNEL_KINDS[account.kind]
        channels.active[account.name] = kind.build(account)
        channels.rules[account.name] = kind.rules
        channels.kinds[account.name] = account.kind
        if kind.media:
            channels.media.add(account.name)
        list_id = kind.staff_list(account.settings) if kind.staff_list else None
        if list_id:
            channels.staff_lists[account.name] = list_id
    return channels


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value in ``settings``, for log redaction: its own, and each account's
    settings that any kind declares secret (so an account whose kind is only known from the
    site TOML, or is misspelt, is redacted too)."""
    secret_fields = {f for kind in CHANNEL_KINDS.values() for f in kind.secret_fields}
    values = list(settings.secrets())
    for given in settings.accounts.values():
        for name, value in given.items():
            if name in secret_fields and value:
                values.append(value.get_secret_value() if isinstance(value, SecretStr) else str(value))
    return values
