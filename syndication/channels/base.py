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

    def post(self, text: str, *, url: str) -> PostResult:
        """Publish ``text``, which links to the article at ``url``.

        Raises ``RateLimited``, ``TransientChannelError``, ``PermanentChannelError``
        or ``AlreadyPosted``.
        """
        ...

    def delete(self, remote_id: str) -> None:
        """Remove a post. Deleting a post that is already gone is not an error."""
        ...

    def find_post(self, url: str) -> PostResult | None:
        """The newest recent post of this account that links to ``url``, if any.

        Used to settle an unknown outcome (a crash or a dropped connection after posting).
        """
        ...

    def add_list_member(self, handle: str) -> None:
        """Add ``handle`` to the channel's staff list; a no-op where there is none."""
        ...
