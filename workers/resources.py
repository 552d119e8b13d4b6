"""Per-process resources (arq's ``startup(ctx)``): built once per worker process, reused by tasks."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from config import Settings, SiteConfig
from syndication.channels.registry import Channels, build_channels
from syndication.site import load_site
from syndication.store import Store
from workers.broker import BrokerState, client_for


@dataclass
class Resources:
    settings: Settings

    @cached_property
    def site(self) -> SiteConfig:
        return load_site(self.settings.config)

    @cached_property
    def store(self) -> Store:
        return Store.from_url(self.settings.resolved_database_url, migrate_schema=False)

    @cached_property
    def broker(self) -> BrokerState:
        return BrokerState(client_for(self.settings.broker_url or ""))

    @cached_property
    def channels(self) -> Channels:
        return build_channels(self.site, self.settings.x, self.settings.resolved_data_dir)

    @property
    def feeds_dir(self) -> Path:
        return self.settings.resolved_feeds_dir


_resources: Resources | None = None
_pid: int | None = None


def get() -> Resources:
    """This process's resources; rebuilt after a fork so no connection crosses processes."""
    global _resources, _pid
    if _resources is None or _pid != os.getpid():
        _resources, _pid = Resources(Settings()), os.getpid()
    return _resources


def reset() -> None:
    global _resources
    _resources = None
