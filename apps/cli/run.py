"""``syndication run`` (the whole product) and ``syndication serve`` (the HTTP service alone)."""
from __future__ import annotations

import http.client
import logging
import os
import secrets
import signal
import shutil
import socket
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import SecretStr

from config import Settings
from config.settings import PACKAGE_DIR
from apps.cli.output import console
from apps.cli.runtime import Runtime
from syndication.errors import ConfigError
from syndication.importing import Record, read_sources
from syndication.logs import configure_logging
from syndication.articles import parse_article
from syndication.publishing import publish, utcnow
from syndication.rendering import render_all
from syndication.channels.registry import channel_names, secrets_of
from syndication.store.articles import count_articles
from apps.web.app import create_app
from apps.web.context import WebContext
from apps.web.server import check_tokens, server_config
from workers.app import create_app as create_celery
from workers.broker import BrokerState, client_for
from workers.dispatch import CeleryDispatcher
from workers.embedded_redis import EmbeddedRedis
from workers.inspect import broker_snapshot, queue_depths
from workers.supervisor import Child, Supervisor, worker_commands

log = logging.getLogger(__name__)
EXAMPLE_ARTICLES = PACKAGE_DIR / "examples" / "articles.ndjson"


def web_context(settings: Settings, rt: Runtime) -> WebContext:
    check_tokens(settings)
    celery = create_celery(settings)
    broker = BrokerState(client_for(settings.broker_url or ""))
    dispatcher = CeleryDispatcher(celery, broker, window_ms=settings.render_window_ms,
                                  redispatch_after=timedelta(seconds=settings.redispatch_after_s))
    return WebContext(
        site=rt.site, store=rt.store, dispatcher=dispatcher, feeds_dir=rt.feeds_dir,
        api_tokens=[t.get_secret_value() for t in settings.api_tokens],
        ops_tokens=[t.get_secret_value() for t in settings.ops_tokens],
        webhook_secret=settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
        webhook_tolerance_s=settings.webhook_tolerance_s, max_body_bytes=settings.max_body_bytes,
        ops_session_secret=settings.ops_session_secret.get_secret_value() if settings.ops_session_secret else None,
        ops_session_ttl_s=settings.ops_session_ttl_s, ops_login_max_failures=settings.ops_login_max_failures,
        ops_login_window_s=settings.ops_login_window_s,
        ops_login_max_failures_total=settings.ops_login_max_failures_total,
        ops_session_idle_s=settings.ops_session_idle_s, public_url=settings.public_url, api_docs=settings.api_docs,
        body_timeout_s=settings.http_body_timeout_s,
        broker_snapshot=lambda: broker_snapshot(celery, broker), queue_depths=lambda: queue_depths(broker),
        channel_names=channel_names(rt.site, settings),
        metrics_dir=metrics_dir(settings),
    )


def metrics_dir(settings: Settings) -> Path:
    """Where worker processes keep their Prometheus samples (``PROMETHEUS_MULTIPROC_DIR``)."""
    return settings.resolved_data_dir / "metrics"


def _example_token(settings: Settings) -> Settings:
    """With --example and no tokens configured, make one and keep it in the data folder."""
    if settings.api_tokens:
        return settings
    path = settings.resolved_data_dir / "api-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    console.print(f"API token (example mode): stored in [bold]{path}[/bold]")
    settings = settings.model_copy(update={"api_tokens": [SecretStr(path.read_text().strip())]})
    configure_logging(settings.log_level, json_lines=settings.log_json, secrets=secrets_of(settings))
    return settings


def _load_examples(rt: Runtime) -> None:
    with rt.store.read() as session:
        if count_articles(session):
            return
    articles = [parse_article(r.data, tz=rt.site.site.tz) for r in read_sources([str(EXAMPLE_ARTICLES)])
                if isinstance(r, Record)]
    publish(rt.store, rt.site, articles, origin="import")
    render_all(rt.store, rt.site, rt.feeds_dir, clock=utcnow)
    console.print(f"example articles imported: {len(articles)} (never posted: imports are backfill)")


def run_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address for the HTTP service.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the HTTP service.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Feed worker processes.")] = 2,
    social_workers: Annotated[int, typer.Option(min=1, help="Social worker threads.")] = 8,
    api_workers: Annotated[int | None, typer.Option(
        "--api-workers", min=1, help="HTTP processes sharing the port [default: SYNDICATION_API_WORKERS, 1].")] = None,
    example: Annotated[bool, typer.Option(help="Load the bundled example articles into an empty store.")] = False,
) -> None:
    """Start everything: the embedded Redis (unless SYNDICATION_BROKER_URL is set), the feed and
    social workers, the scheduler and the HTTP service. Ctrl-C or SIGTERM stops it all.

    >>> syndication run --port 8000 --api-workers 4
    """
    rt: Runtime = ctx.obj
    settings = rt.settings
    api_workers = api_workers or settings.api_workers
    if example:
        settings = _example_token(settings)
    check_tokens(settings)  # before any process starts
    rt.store  # migrate before any worker starts  # noqa: B018
    if example:
        _load_examples(rt)
    redis = None
    if not settings.broker_url:
        redis = EmbeddedRedis(settings.resolved_data_dir)
        settings = settings.model_copy(update={"broker_url": redis.configure()})
    # Samples from the last run would be summed with this one's: start empty.
    shutil.rmtree(metrics_dir(settings), ignore_errors=True)
    metrics_dir(settings).mkdir(parents=True, exist_ok=True)
    env = {**os.environ,
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(settings)),
           "SYNDICATION_BROKER_URL": settings.broker_url or "",
           "SYNDICATION_CONFIG": str(Path(settings.config).resolve()),
           "SYNDICATION_DATA_DIR": str(settings.resolved_data_dir),
           "SYNDICATION_DATABASE_URL": settings.resolved_database_url,
           "SYNDICATION_FEEDS_DIR": str(settings.resolved_feeds_dir)}
    if settings.api_tokens:  # --example may have made one: API processes need it too
        env["SYNDICATION_API_TOKENS"] = ",".join(t.get_secret_value() for t in settings.api_tokens)
    supervisor = Supervisor(env=env, log_dir=settings.resolved_data_dir / "logs", restart_delay_s=1.0)
    listener: socket.socket | None = None
    try:
        if redis is not None:
            # Supervised like the workers: if it dies, it is started again on the same socket and
            # data folder and replays its AOF; the sweeper then re-sends what the outbox holds.
            broker = supervisor.start(Child("redis-server", redis.argv, stop_last=True))
            redis.wait_ready(broker.process)  # type: ignore[arg-type]
            console.print(f"broker   embedded redis-server (AOF on) at {settings.broker_url}")
        else:
            console.print("broker   external (SYNDICATION_BROKER_URL)")
        for child in worker_commands(settings.resolved_data_dir, feed_workers=workers, social_workers=social_workers):
            _start(supervisor, child)
        _wait_for_workers(settings, supervisor)
        stopping = threading.Event()

        def _stop(signum: int, _frame: object) -> None:
            stopping.set()
            supervisor.stop_watching(wait=False)  # children stopped by this Ctrl-C stay stopped

        if api_workers == 1:
            server = uvicorn.Server(server_config(create_app(web_context(settings, rt)), settings, host=host,
                                                  port=port, log_level="warning", access_log=False))
            # uvicorn runs in a thread so that this thread owns SIGINT/SIGTERM: uvicorn would
            # re-raise the signal after its own shutdown and skip ours (uvicorn/server.py).
            thread = threading.Thread(target=server.run, name="http", daemon=True)
            thread.start()
            serving = thread.is_alive
        else:
            # One socket, opened here and inherited by every API process: the kernel hands each
            # connection to one of them, and connections wait in its queue while one restarts.
            # Not SO_REUSEPORT: each process would have its own queue, and the connections queued
            # at one that dies would be reset. Not uvicorn's workers=N: its own supervisor would
            # sit beside ours, without PDEATHSIG, and want this thread's signals.
            listener = _listen(host, port)
            for n in range(1, api_workers + 1):
                _start(supervisor, Child(f"api-{n}", api_argv(listener.fileno()), pass_fds=(listener.fileno(),)))
            _wait_for_http(host, port, supervisor)
            server, thread, serving = None, None, lambda: True
        console.print(f"http     http://{host}:{port}/  (feeds under /feeds/, API docs at /docs)")
        console.print(f"feeds    {settings.resolved_feeds_dir}")
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

        def _give_up(reason: str) -> None:
            log.error("stopping: a process keeps dying", extra={"reason": reason})
            stopping.set()

        supervisor.watch(_give_up)
        while serving() and not stopping.wait(0.5):
            pass
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join()
    finally:
        supervisor.stop()
        if listener is not None:
            listener.close()
        console.print("stopped")


def _start(supervisor: Supervisor, child: Child) -> None:
    supervisor.start(child)
    console.print(f"{child.name:<14} pid {child.process.pid}, log {supervisor.log_dir / (child.name + '.log')}")  # type: ignore[union-attr]


def api_argv(fd: int) -> list[str]:
    """One API process serving on the inherited listening socket ``fd``."""
    return [sys.executable, "-m", "apps.cli", "serve", "--fd", str(fd), "--log-level", "warning", "--no-access-log"]


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _wait_for_http(host: str, port: int, supervisor: Supervisor, timeout: float = 60) -> None:
    """Say the service is up once it answers /healthz; an API process that exits at start is an error."""
    target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor.dead():
            raise ConfigError(f"{', '.join(supervisor.dead())} exited at start; see {supervisor.log_dir}")
        connection = http.client.HTTPConnection(target, port, timeout=1)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise ConfigError(f"the API processes did not answer within {timeout:.0f}s; see {supervisor.log_dir}")


def _wait_for_workers(settings: Settings, supervisor: Supervisor, timeout: float = 120) -> None:
    """Open the HTTP service only once both workers answer, so a publish is rendered at once."""
    celery = create_celery(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor.dead():
            raise ConfigError(f"{', '.join(supervisor.dead())} exited at start; see {supervisor.log_dir}")
        try:
            if len(celery.control.ping(timeout=0.5) or []) >= 2:
                console.print("workers  ready")
                return
        except OSError:
            time.sleep(0.2)
    raise ConfigError(f"workers did not answer within {timeout:.0f}s; see {supervisor.log_dir}")


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    fd: Annotated[int | None, typer.Option(
        help="Serve on this inherited, bound socket instead of host and port (systemd socket "
             "activation; `syndication run --api-workers`).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Run the HTTP service alone, against SYNDICATION_BROKER_URL (the compose `api` service)."""
    rt: Runtime = ctx.obj
    rt.store  # noqa: B018 - migrate at start
    config = server_config(create_app(web_context(rt.settings, rt)), rt.settings, host=host, port=port,
                           log_level=log_level, access_log=access_log)
    if fd is None:
        uvicorn.Server(config).run()
        return
    # socket(fileno=) reads the family from the descriptor; uvicorn's own --fd assumes AF_UNIX.
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])
