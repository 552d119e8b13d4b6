"""The site's TOML configuration: the site, which feeds exist, the staff list and channels."""
from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

DEFAULT_TEMPLATE = "{{ title }} {{ url }} {{ mentions }} {{ hashtags }}"


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
    """Per-channel posting settings; ``sections`` overrides the template per section."""

    enabled: bool = True
    template: str = DEFAULT_TEMPLATE
    sections: dict[str, str] = Field(default_factory=dict)
    posts_per_window: int = Field(100, ge=1)
    window_s: int = Field(900, ge=1)
    max_attempts: int = Field(8, ge=1)


class SocialConfig(_Strict):
    """Rules shared by every channel."""

    max_age_hours: float = Field(24, gt=0)
    mention_authors: bool = True
    correction_posts: bool = False


class SiteConfig(_Strict):
    """The whole TOML file."""

    site: SiteInfo
    feeds: FeedsConfig = Field(default_factory=FeedsConfig)
    social: SocialConfig = Field(default_factory=SocialConfig)
    staff: dict[str, StaffMember] = Field(default_factory=dict)
    channels: dict[str, ChannelConfig] = Field(default_factory=lambda: {"preview": ChannelConfig()})

    def channel(self, name: str) -> ChannelConfig:
        return self.channels.get(name) or ChannelConfig()
