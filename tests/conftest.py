"""Shared fixtures: a site, a real database (SQLite, and PostgreSQL when configured)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from config import SiteConfig
from syndication.store import Store
from syndication.store.db import make_engine, migrate
from tests.support.databases import schema_of, with_search_path

POSTGRES_ENV = "SYNDICATION_TEST_POSTGRES_URL"

# The longest modules, longest first. Run first, pytest-xdist (``--dist loadfile``) starts them at
# once on its workers, instead of finding one of them last and running it alone at the end.
SLOW_FIRST = ("test_chaos", "test_api_workers", "test_run_command", "test_api_fuzz", "test_faults",
              "test_social", "test_flower", "test_scheduled", "test_mastodon_bluesky")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(SLOW_FIRST)))  # stable: modules stay whole


def make_site(**feeds: object) -> SiteConfig:
    """A small site configuration for tests."""
    return SiteConfig.model_validate({
        "site": {"title": "Test Gazette", "base_url": "https://news.test.example/",
                 "description": "Tests", "timezone": "Europe/Berlin",
                 "hubs": ["https://hub.test.example/"]},
        "feeds": {"items": 50, "sections": "*", "authors": "*", "tags": "*", **feeds},
        "staff": {"Ada Reporter": {"x": "adareporter"}},
    })


@pytest.fixture
def site() -> SiteConfig:
    return make_site()


def postgres_url() -> str | None:
    """The PostgreSQL DSN for tests, or None. With CI set, a missing or unreachable one fails."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {POSTGRES_ENV} is not: the PostgreSQL tests must run in CI")
        return None
    # Under pytest-xdist each worker process wipes and rebuilds a schema of its own, so two
    # workers never drop each other's tables.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return with_search_path(url, f"tests_{worker}") if worker else url


def empty_postgres(url: str) -> Engine:
    """An engine on the test database with an empty schema (``public``, or the one the URL's
    search_path names: it is wiped). Skips when the server cannot be reached, and fails instead
    when CI is set."""
    engine = make_engine(url)
    schema = schema_of(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001
        engine.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but PostgreSQL at {url} cannot be reached: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    return engine


def fresh_postgres(url: str) -> Store:
    """An empty, migrated PostgreSQL schema (the test database is wiped)."""
    engine = empty_postgres(url)
    migrate(engine)
    return Store(engine)


def store_for(backend: str, folder: Path) -> Store:
    """A migrated, empty store: SQLite in ``folder``, or the PostgreSQL test database (wiped;
    skipped without a DSN, failed instead when CI is set)."""
    if backend == "sqlite":
        return Store.from_url(f"sqlite:///{folder / 'test.db'}")
    url = postgres_url()
    if url is None:
        pytest.skip(f"set {POSTGRES_ENV} to run against PostgreSQL")
    return fresh_postgres(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same test on SQLite and on PostgreSQL."""
    store = store_for(request.param, tmp_path)
    yield store
    store.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store in a temporary folder."""
    s = Store.from_url(f"sqlite:///{tmp_path / 'test.db'}")
    yield s
    s.dispose()


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def article_json(n: int | str, **overrides: object) -> dict[str, object]:
    """A valid CMS article payload."""
    data: dict[str, object] = {
        "id": f"art-{n}",
        "url": f"https://news.test.example/a/{n}",
        "title": f"Article {n}",
        "summary": f"Summary of article {n}",
        "content_html": f"<p>Body of article {n}</p>",
        "published_at": f"2026-11-{1 + (int(n) % 28) if str(n).isdigit() else 1:02d}T08:00:00Z",
        "section": "Politics",
        "authors": [{"name": "Ada Reporter", "email": "ada@news.test.example"}],
        "tags": ["Budget"],
    }
    data.update(overrides)
    return data


