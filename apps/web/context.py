"""What the web app needs, wired by the entry point (settings are read there, not here)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from config import SiteConfig
from syndication.publishing import Clock, Dispatcher, utcnow
from syndication.store import Store


@dataclass
class WebContext:
    site: SiteConfig
    store: Store
    dispatcher: Dispatcher
    feeds_dir: Path
    api_tokens: list[str] = field(default_factory=list)
    ops_tokens: list[str] = field(default_factory=list)
    webhook_secret: str | None = None
    webhook_tolerance_s: int = 300
    # /ops sessions live in the database; the cookie's MAC key comes from this secret, or, when
    # None, from a key generated once in the database: the same in every process either way.
    ops_session_secret: str | None = None
    ops_session_ttl_s: int = 12 * 3600
    ops_login_max_failures: int = 10  # failed ops logins per client and window, then 429
    ops_login_window_s: int = 600
    ops_login_max_failures_total: int = 100  # failed ops logins from all clients per window, then 429
    ops_session_idle_s: int = 1800
    public_url: str | None = None  # the origin readers and operators use (https: Secure, __Host- cookie)
    api_docs: bool = False  # serve /docs and /redoc
    max_body_bytes: int = 4 * 1024 * 1024
    body_timeout_s: float = 30.0  # the longest a client may take to send a request body
    max_batch: int = 1000
    cache_max_age_s: int = 60
    archive_max_age_s: int = 86400  # a full archive page (RFC 5005) changes only on a correction
    # The broker's view for /ops and /metrics (workers.inspect builds them; None: not wired).
    broker_snapshot: Callable[[], tuple[Mapping[str, int] | None, list[str] | None]] | None = None
    queue_depths: Callable[[], Mapping[str, int] | None] | None = None
    channel_names: list[str] | None = None  # the channels that post; None: those the site enables
    metrics_dir: Path | None = None  # PROMETHEUS_MULTIPROC_DIR of the worker processes
    metrics_cache_s: float = 5.0  # /metrics answers from a copy this fresh (by ``clock``): scrapes cost one query set
    page_size: int = 100  # rows per page of the home page's and /ops's feed tables
    clock: Clock = utcnow  # every reader of "now" in the web process (tests pass a fixed one)
