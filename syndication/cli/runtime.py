"""What every command needs, built once from the settings."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from config import Settings, SiteConfig
from syndication.site import load_site
from syndication.store import Store


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def site(self) -> SiteConfig:
        return load_site(self.settings.config)

    @cached_property
    def store(self) -> Store:
        return Store.from_url(self.settings.resolved_database_url)

    @property
    def feeds_dir(self) -> Path:
        return self.settings.resolved_feeds_dir

    @property
    def data_dir(self) -> Path:
        return self.settings.resolved_data_dir
