"""The real product as a child process: ``syndication run`` on the embedded default.

A fresh temporary data folder, a site TOML with every section, author and tag feed, a
random API token, and a loopback port. The child starts in its own session, so stopping
it (or cleaning up after a failure) reaches redis-server, the workers and beat as well.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

SITE_TOML = """\
[site]
title = "Bench Gazette"
base_url = "https://bench.example/"
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


class ProductError(RuntimeError):
    """Raised when the product does not start, or stops on its own while measured."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command() -> list[str]:
    # The console script beside this interpreter: the same entry point a user runs.
    script = Path(sys.executable).with_name("syndication")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from apps.cli import main; main()"]


@dataclass
class Product:
    """``syndication run --port <free> --workers N`` in a temporary folder.

    >>> with Product(workers=2) as product:
    ...     httpx.get(product.base_url + "/feeds/all.rss")
    """

    workers: int = 2
    keep: bool = False
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="syndication-bench-")))
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # The production set-up: PostgreSQL and a redis-server of its own (None: the embedded default).
    database_url: str | None = None
    broker_url: str | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "var"

    @property
    def site_toml(self) -> Path:
        return self.root / "site.toml"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "syndication.db"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.db_path}"

    @property
    def log_path(self) -> Path:
        return self.root / "product.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "Product":
        """Start the product and wait until ``/readyz`` answers 200 (database and broker up)."""
        self.site_toml.write_text(SITE_TOML)
        # The embedded default: no broker, database or feeds folder from the caller's shell.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATION_")}
        env.update(SYNDICATION_DATA_DIR=str(self.data_dir), SYNDICATION_CONFIG=str(self.site_toml),
                   SYNDICATION_API_TOKENS=self.token)
        if self.database_url:
            env["SYNDICATION_DATABASE_URL"] = self.database_url
        if self.broker_url:
            env["SYNDICATION_BROKER_URL"] = self.broker_url
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*_command(), "run", "--port", str(self.port), "--workers", str(self.workers)],
                cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2) as http:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    if http.get("/readyz").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise ProductError(f"no answer on {self.base_url}/readyz within {timeout}s\n{self.log_tail()}")

    def check_alive(self) -> None:
        """Raise ``ProductError`` if ``syndication run`` has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise ProductError(f"syndication run exited with {self.process.returncode}\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as an init system would; SIGKILL the whole group if anything outlives it.

        Returns the exit status of ``syndication run`` (None if it never started).
        """
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        # Workers, beat and redis-server share the group; give them the same grace to finish.
        if not _group_gone(self.process.pid, timeout):
            _kill_group(self.process.pid)
            _group_gone(self.process.pid, 10)
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Product":
        try:
            return self.start()
        except BaseException:
            self.stop(timeout=5)
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None and self.process is not None:
            _kill_group(self.process.pid)  # a failed run is not worth a graceful stop
        self.stop()

    # -- looking inside ---------------------------------------------------------------------
    def db(self) -> Any:
        """A read-only DB-API connection to the product's database (``conn.execute(sql)`` works on
        both): the SQLite file (WAL: it never blocks the writer), or PostgreSQL in autocommit."""
        if self.database_url:
            import psycopg  # noqa: PLC0415 - only the production set-up needs the driver

            return psycopg.connect(self.database_url.replace("postgresql+psycopg://", "postgresql://"),
                                   autocommit=True)
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10,
                               isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _group_members(pgid: int) -> list[int]:
    """The live (non-zombie) processes of a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Fields after the parenthesised name: state, ppid, pgrp, ...
            state, _ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is still in the group."""
    if not Path("/proc").is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    return bool(_group_members(pgid))


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
