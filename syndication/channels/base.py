"""What every social channel offers: post, delete, find an earlier post, grow a staff list.

Adapters (``x``, ``webhook``, ``preview``...) implement ``Channel``. They raise only the errors
of ``syndication.errors``: ``RateLimited`` and ``TransientChannelError`` mean "try again
later", ``RejectedPost`` means "this delivery fails, the channel goes on",
``PermanentChannelError`` means "pause the channel", ``AlreadyPosted`` means the service
already holds this text.
"""
from __future__ import annotations

import html

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from config.site import StaffMember
from syndication.articles import Article, Author
from syndication.errors import ChannelError

HandleRule = Callable[[Author, StaffMember | None], str | None]


@dataclass(frozen=True)
class Media:
    """An image to attach to a post, fetched already (``syndication.media``), with its alt text."""

    data: bytes
    mime: str
    alt: str | None = None
    url: str = ""


@dataclass(frozen=True)
class PostContext:
    """What a channel may want besides the text: ``key`` is the same on every attempt at one
    delivery (an idempotency key, a webhook id, a record key), ``event`` the article's event
    (``article.published``, ``article.updated``, ``article.withdrawn``), ``occurred_at`` when
    the delivery was planned, the article itself, and its image (``media``) when the channel
    takes media and the image could be fetched."""

    key: str
    event: str
    occurred_at: datetime
    article: Article | None = None
    media: Media | None = None


@dataclass(frozen=True)
class PostResult:
    """A post the service holds: its id there and a link a person can open."""

    remote_id: str
    remote_url: str
    notes: tuple[str, ...] = ()  # what the timeline should say, e.g. "image not attached: ..."


def attach_media(context: PostContext | None, upload: Callable[[Media], str]) -> tuple[list[str] | None, tuple[str, ...]]:
    """The ids of the delivery's image as ``upload`` put it on the service (None without an
    image), and what the timeline should hear: a failed upload never blocks the post."""
    if context is None or context.media is None:
        return None, ()
    try:
        return [upload(context.media)], ()
    except ChannelError as exc:
        return None, (f"image not attached: {exc}",)


def no_handle(author: Author, member: StaffMember | None) -> str | None:
    """The rule of a channel without people on it (a webhook): nobody is mentioned."""
    return None


def social_handle(key: str, pattern: str) -> HandleRule:
    """The rule "the author's own ``social[key]``, else their ``[staff]`` entry's ``key``",
    without a leading "@"; a handle that does not match ``pattern`` (fully) is not used.

    >>> rule = social_handle("x", r"[A-Za-z0-9_]{1,15}")
    """
    compiled = re.compile(pattern)

    def handle(author: Author, member: StaffMember | None) -> str | None:
        found = author.handle(key) or (getattr(member, key, None) if member is not None else None)
        found = (found or "").strip().removeprefix("@")
        return found if found and compiled.fullmatch(found) else None

    return handle


@dataclass(frozen=True)
class PostRules:
    """How a channel kind measures a post and finds a person's handle on it."""

    length: Callable[[str], int]
    handle: HandleRule = no_handle


@runtime_checkable
class Channel(Protocol):
    """A place posts go to. Usage::

        result = channel.post("Hello https://ex.org/a1", url="https://ex.org/a1")
        channel.delete(result.remote_id)
    """

    name: str
    max_weighted_length: int

    def post(self, text: str, *, url: str, context: PostContext | None = None,
             reply_to: str | None = None) -> PostResult:
        """Publish ``text``, which links to the article at ``url``.

        ``reply_to``: the remote id of an earlier post of this account to answer (a correction
        answers the original post). A channel without replies posts on its own and ignores it;
        one with them threads it (X ``reply.in_reply_to_tweet_id``, Mastodon
        ``in_reply_to_id``).

        Raises ``RateLimited``, ``TransientChannelError``, ``RejectedPost`` (this request
        refused), ``PermanentChannelError`` (the channel refused) or ``AlreadyPosted``.
        """
        ...

    def delete(self, remote_id: str, *, context: PostContext | None = None) -> None:
        """Remove a post. Deleting a post that is already gone is not an error."""
        ...

    def find_post(self, url: str, *, text: str | None = None) -> PostResult | None:
        """The newest recent post of this account that links to ``url``, if any; with ``text``,
        only a post of that text (its links aside, which a service may shorten).

        Used to settle an unknown outcome (a crash or a dropped connection after posting). A
        correction passes its ``text``: the original post links to the same URL and must not
        count as the correction.
        """
        ...

    def add_list_member(self, handle: str) -> None:
        """Add ``handle`` to the channel's staff list; a no-op where there is none."""
        ...


def same_words(posted: str, text: str) -> bool:
    """Whether a post a service holds says ``text``, its links aside: services rewrite links
    (X to t.co URLs, Mastodon and Bluesky shorten what they show) and escape HTML entities.

    Spec: X API v2 Tweet object — ``text`` has every link replaced by a t.co URL and ``&``,
    ``<``, ``>`` escaped as HTML entities.
    """
    def words(t: str) -> list[str]:
        return [word for word in html.unescape(t).split() if "://" not in word]
    return words(posted) == words(text)


def same_url(a: str, b: str) -> bool:
    """Whether two links name the same page: scheme and host in any case, a trailing slash
    aside (services echo links back normalised)."""
    def norm(url: str) -> tuple[str, str, str, str]:
        p = urlsplit(url.strip())
        return p.scheme.lower(), p.netloc.lower(), p.path.rstrip("/") or "/", p.query
    return norm(a) == norm(b)


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
    """One service, declared once, as ``KIND`` in its adapter module (``syndication.channels.registry``
    names the module).

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
