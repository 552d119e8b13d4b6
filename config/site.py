"""The site's TOML configuration: the site, which feeds exist, the staff list and channels."""
from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

DEFAULT_TEMPLATE = "{{ title }} {{ url }} {{ mentions }} {{ hashtags }}"
DEFAULT_CORRECTION_TEMPLATE = "Correction: {{ title }} {{ url }}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteInfo(_Strict):
    """The publication itself: what every feed's channel/feed element says."""

    title: str
    base_url: AnyHttpUrl
    feeds_url: AnyHttpUrl | None = None
    description: str = ""
    language: str = "en"
    timezone: str = "UTC"
    logo: AnyHttpUrl | None = None
    copyright: str | None = None
    hubs: list[AnyHttpUrl] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def home(self) -> str:
        return str(self.base_url).rstrip("/")

    @property
    def feeds_base(self) -> str:
        return str(self.feeds_url).rstrip("/") if self.feeds_url else self.home + "/feeds"


Selection = Literal["*"] | list[str]


class FeedsConfig(_Strict):
    """Which per-section, per-author and per-tag feeds exist, and how long they are.

    ``"*"`` means every value seen in the articles; a list names the ones wanted.
    """

    items: int = Field(50, ge=1, le=1000)
    sections: Selection = "*"
    authors: Selection = "*"
    tags: Selection = Field(default_factory=list)
    # Archive documents (RFC 5005): articles filed in pages of this many, oldest page first.
    # A full page only changes when one of its articles is updated or withdrawn.
    archive_items: int = Field(50, ge=1, le=1000)
    # Withdrawn articles stay in the Atom feeds as at:deleted-entry (RFC 6721) this long.
    tombstone_days: float = Field(30, ge=0)
    # A current document larger than this loses its oldest items (they stay in the archives);
    # the newest item always stays. 0: no cap.
    max_file_bytes: int = Field(10 * 2**20, ge=0)
    # New feeds (a section, author or tag seen for the first time) one API request, and all of
    # them in an hour, may create. Beyond them the article is stored, in the feeds that exist.
    max_new_per_request: int = Field(100, ge=0)
    max_new_per_hour: int = Field(1000, ge=0)


class StaffMember(_Strict):
    """A byline on the staff list and its social handles."""

    x: str | None = None
    mastodon: str | None = None
    bluesky: str | None = None

    @field_validator("x")
    @classmethod
    def _strip_at(cls, value: str | None) -> str | None:
        return value.lstrip("@") if value else value


class ChannelConfig(_Strict):
    """Per-channel (per-account) posting settings; ``sections`` overrides the template per section;
    ``correction_template`` is the text of a correction (posted as a reply to the original).

    ``kind`` names the channel kind when the account is not named after it (``[channels.x_sport]
    kind = "x"``). ``only_sections`` / ``except_sections`` route articles by section (names or
    slugs, any case): an account posts only the first's, or all but the second's.
    """

    enabled: bool = True
    kind: str | None = None
    only_sections: list[str] = Field(default_factory=list)
    except_sections: list[str] = Field(default_factory=list)
    template: str = DEFAULT_TEMPLATE
    correction_template: str = DEFAULT_CORRECTION_TEMPLATE
    sections: dict[str, str] = Field(default_factory=dict)
    posts_per_window: int = Field(100, ge=1)
    window_s: int = Field(900, ge=1)
    max_attempts: int = Field(8, ge=1)
    # Unexplained refusals (a 4xx the service does not explain) in a row that pause the channel.
    breaker_refusals: int = Field(3, ge=1)


class SocialConfig(_Strict):
    """Rules shared by every channel."""

    max_age_hours: float = Field(24, gt=0)
    mention_authors: bool = True
    correction_posts: bool = False
    # Hosts an article's image may be fetched from to post it as media; empty: the site's own host.
    image_hosts: list[str] = Field(default_factory=list)


class SiteConfig(_Strict):
    """The whole TOML file."""

    site: SiteInfo
    feeds: FeedsConfig = Field(default_factory=FeedsConfig)
    social: SocialConfig = Field(default_factory=SocialConfig)
    staff: dict[str, StaffMember] = Field(default_factory=dict)
    channels: dict[str, ChannelConfig] = Field(default_factory=lambda: {"preview": ChannelConfig()})

    @field_validator("channels")
    @classmethod
    def _account_names(cls, value: dict[str, ChannelConfig]) -> dict[str, ChannelConfig]:
        # The name is the ledger's channel (32 characters) and SYNDICATION_<NAME>__* carries its credentials.
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
                raise ValueError(f"channel name {name!r}: lower-case letters, digits and _ (at most 32), "
                                 "since SYNDICATION_<NAME>__... carries its credentials")
        return value

    def channel(self, name: str) -> ChannelConfig:
        return self.channels.get(name) or ChannelConfig()

    @property
    def image_hosts(self) -> list[str]:
        """Where images may be fetched from: ``social.image_hosts``, else the site's host."""
        return self.social.image_hosts or [self.site.base_url.host or ""]
