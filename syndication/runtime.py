"""What every entry point needs from the settings, built lazily and once per process."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from config import Settings, SiteConfig
from syndication.site import load_site
from syndication.store import Store


@dataclass
class Runtime:
    """The site configuration and the store for these settings.

    ``migrate``: bring the schema up to date when the store is first used (the CLI and the web
    service do; workers only use what those created).
    """

    settings: Settings
    migrate: bool = True

    @cached_property
    def site(self) -> SiteConfig:
        return load_site(self.settings.config)

    @cached_property
    def store(self) -> Store:
        return Store.from_url(self.settings.resolved_database_url, migrate_schema=self.migrate)

    @property
    def feeds_dir(self) -> Path:
        return self.settings.resolved_feeds_dir

    @property
    def data_dir(self) -> Path:
        return self.settings.resolved_data_dir
