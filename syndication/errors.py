"""The one error tree. Callers catch the base that fits.

SyndicationError
├── ConfigError
├── ValidationError          (carries FieldError list)
├── NotFound
├── StoreError
└── ChannelError
    ├── TransientChannelError
    │   └── RateLimited      (carries retry_at)
    ├── PermanentChannelError
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
    """Raised on 401/403 and other refusals that retrying cannot fix; pauses the channel."""


class AlreadyPosted(ChannelError):
    """Raised when the service reports the post as a duplicate of one already made."""


class NotPosted(ChannelError):
    """Raised when a correction or share was refused as a duplicate and no post of its text
    exists: it is not posted, and trying again would be refused the same way."""
