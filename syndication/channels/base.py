"""What every social channel offers: post, delete, find an earlier post, grow a staff list.

Adapters (``x``, ``preview``) implement ``Channel``. They raise only the errors of
``syndication.errors``: ``RateLimited`` and ``TransientChannelError`` mean "try again
later", ``PermanentChannelError`` means "pause the channel", ``AlreadyPosted`` means the
service already holds this text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class PostResult:
    """A post the service holds: its id there and a link a person can open."""

    remote_id: str
    remote_url: str


@runtime_checkable
class Channel(Protocol):
    """A place posts go to. Usage::

        result = channel.post("Hello https://ex.org/a1", url="https://ex.org/a1")
        channel.delete(result.remote_id)
    """

    name: str
    max_weighted_length: int

    def post(self, text: str, *, url: str, reply_to: str | None = None) -> PostResult:
        """Publish ``text``, which links to the article at ``url``.

        ``reply_to``: the remote id of an earlier post of this account to answer (a correction
        answers the original post). A channel without replies posts on its own and ignores it;
        one with them threads it (X ``reply.in_reply_to_tweet_id``, Mastodon
        ``in_reply_to_id``, Bluesky ``reply`` refs).

        Raises ``RateLimited``, ``TransientChannelError``, ``PermanentChannelError``
        or ``AlreadyPosted``.
        """
        ...

    def delete(self, remote_id: str) -> None:
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
