"""Which channels are on: built once per process from the site and the X settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from config import SiteConfig, XSettings
from syndication.channels.base import Channel
from syndication.channels.preview import PreviewChannel
from syndication.channels.x import XChannel


@dataclass
class Channels:
    """The active channels by name, and each one's staff list id (if it keeps one)."""

    active: dict[str, Channel] = field(default_factory=dict)
    staff_lists: dict[str, str] = field(default_factory=dict)


def build_channels(site: SiteConfig, x: XSettings, data_dir: Path) -> Channels:
    """``preview`` when the site configures it (the default: posting is visible without
    credentials); ``x`` when its four credentials are set and the site does not disable it."""
    channels = Channels()
    if "preview" in site.channels and site.channels["preview"].enabled:
        channels.active["preview"] = PreviewChannel(data_dir / "preview-posts.jsonl")
    if x.enabled and site.channel("x").enabled:
        channels.active["x"] = XChannel(x)
        if x.staff_list_id:
            channels.staff_lists["x"] = x.staff_list_id
    return channels
