"""The one error tree. Callers catch the base that fits.

SyndicationError
├── ConfigError
├── ValidationError          (carries FieldError list)
├── NotFound
├── StoreError
├── MediaRefused
└── ChannelError
    ├── TransientChannelError
    │   └── RateLimited      (carries retry_at)
    ├── PermanentChannelError
    ├── RejectedPost         (carries explained)
    └── AlreadyPosted
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class SyndicationError(Exception):
    """Root of every error syndication raises on purpose."""


class ConfigError(SyndicationError):
    """Raised when the settings or the site TOML are missing or invalid."""


@dataclass(frozen=True)
class FieldError:
    """One refused field: a dotted path such as ``authors.0.email`` and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class ValidationError(SyndicationError):
    """Raised when client input (an article, a request) is refused; nothing was changed."""

    def __init__(self, errors: list[FieldError], *, index: int | None = None) -> None:
        self.errors = errors
        self.index = index
        super().__init__("; ".join(str(e) for e in errors))

    def as_json(self) -> list[dict[str, str]]:
        return [{"field": e.field, "reason": e.reason} for e in self.errors]


class NotFound(SyndicationError):
    """Raised when an article, feed, delivery or channel named by the caller does not exist."""


class StoreError(SyndicationError):
    """Raised when the database cannot be reached or is not at the expected schema."""


class MediaRefused(SyndicationError):
    """Raised when an article's image is not fetched for a post (host not allowed, too large,
    not an image, too slow); the post goes without it."""


class ChannelError(SyndicationError):
    """Base of errors a social channel reports."""


class TransientChannelError(ChannelError):
    """Raised for 5xx and network failures: retry later with back-off."""


class RateLimited(TransientChannelError):
    """Raised on HTTP 429: the channel is paused until ``retry_at``."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class PermanentChannelError(ChannelError):
    """Raised when the channel itself is refused (credentials: 401, 403; an endpoint gone: 410): pauses the channel."""


class RejectedPost(ChannelError):
    """Raised when the service refuses this one request (a 400 or 422 about it, or another 4xx):
    that delivery fails and the channel goes on.

    ``explained`` is False when the service did not say what was wrong (an empty or malformed
    400, a 404 or 409 on a post...): several of those in a row trip the channel's breaker.
    """

    def __init__(self, message: str, *, explained: bool = True) -> None:
        super().__init__(message)
        self.explained = explained


class AlreadyPosted(ChannelError):
    """Raised when the service reports the post as a duplicate of one already made."""


class NotPosted(ChannelError):
    """Raised when a correction or share was refused as a duplicate and no post of its text
    exists: it is not posted, and trying again would be refused the same way."""
