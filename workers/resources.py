"""Per-process resources (arq's ``startup(ctx)``): built once per worker process, reused by tasks."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

from config import Settings
from syndication.channels.registry import Channels, build_channels
from syndication.runtime import Runtime
from workers.broker import BrokerState, client_for


@dataclass
class Resources(Runtime):
    """The runtime of a worker process, plus its Redis state and social channels."""

    migrate: bool = False

    @cached_property
    def broker(self) -> BrokerState:
        return BrokerState(client_for(self.settings.broker_url or ""), render_lock_s=self.settings.render_lock_s)

    @cached_property
    def channels(self) -> Channels:
        return build_channels(self.site, self.settings, self.settings.resolved_data_dir)


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
