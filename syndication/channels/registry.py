"""The channel kinds, each declared once, and the accounts a deployment posts to.

A kind is everything the rest of the product needs to know about one service: its settings
model, which of those settings are secrets (log redaction reads them here), how it counts a
post's length and finds an author's handle, whether it keeps a staff list, and how to build it.
Each adapter module declares its kind as ``KIND`` (a ``ChannelKind``); ``CHANNEL_KINDS`` below
names each kind's module, one line a kind. Status, ``/ops``, metrics, the workers, redaction and
the docker-compose test all read ``CHANNEL_KINDS``; adding a service is one module and one line.

A kind's module is imported the first time it is asked for: by an account of that kind, or by
whoever lists every kind (a test). So a process loads only the client libraries of the services
it posts to: atproto alone takes 0.4 s of CPU to import, in every worker, scheduler and API
process that would otherwise load it for nothing.

An *account* is one configured use of a kind, under a name: ``x`` (the kind's own name), or
``x_sport`` with ``[channels.x_sport] kind = "x"`` in the site TOML, its credentials in
``SYNDICATION_X_SPORT__*``. The ledger, pauses and budgets are per account.

Usage::

    channels = build_channels(site, settings, data_dir)
    channels.active["x"].post(...)
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

import pydantic
from pydantic import SecretStr

from config import Settings, SiteConfig
from syndication.channels.base import Account, Channel, ChannelKind, PostRules
from syndication.channels.preview import PREVIEW_RULES
from syndication.errors import ConfigError

__all__ = ["CHANNEL_KINDS", "Account", "ChannelKind", "ChannelKinds", "Channels", "accounts", "build_channels",
           "channel_names", "kind_of", "rules_for", "secrets_of"]

log = logging.getLogger(__name__)


class ChannelKinds(MutableMapping[str, ChannelKind]):
    """The kinds by name. A value is a ``ChannelKind``, or the name of the module that declares
    it as ``KIND``, imported when the kind is first asked for."""

    def __init__(self, kinds: Mapping[str, str | ChannelKind]) -> None:
        self._kinds: dict[str, str | ChannelKind] = dict(kinds)

    def __getitem__(self, name: str) -> ChannelKind:
        kind = self._kinds[name]
        if isinstance(kind, str):
            kind = self._kinds[name] = importlib.import_module(kind).KIND
        return kind

    def __setitem__(self, name: str, kind: str | ChannelKind) -> None:
        self._kinds[name] = kind

    def __delitem__(self, name: str) -> None:
        del self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)


CHANNEL_KINDS = ChannelKinds({
    "preview": "syndication.channels.preview",
    "x": "syndication.channels.x",
    "mastodon": "syndication.channels.mastodon",
    "bluesky": "syndication.channels.bluesky",
    "webhook": "syndication.channels.webhook",
})


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
    settings that its kind declares secret. An account not named after a kind (its kind is only
    known from the site TOML, or it is misspelt) has every field that any kind keeps secret redacted."""
    values = list(settings.secrets())
    for account, given in settings.accounts.items():
        # An account not named after a kind: what any kind keeps secret.
        kinds = [CHANNEL_KINDS[account]] if account in CHANNEL_KINDS else CHANNEL_KINDS.values()
        secret_fields = {f for kind in kinds for f in kind.secret_fields}
        for name, value in given.items():
            if name in secret_fields and value:
                values.append(value.get_secret_value() if isinstance(value, SecretStr) else str(value))
    return values
