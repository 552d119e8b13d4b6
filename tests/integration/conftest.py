"""Integration fixtures: a whole running stack per module (or per test for tests that kill it),
on SQLite and on PostgreSQL (``backend``; PostgreSQL skips without a DSN, fails with CI set)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_ENV, postgres_url
from tests.support.databases import BACKENDS, postgres_schema
from tests.support.stack import Stack

pytestmark = pytest.mark.integration
StackFactory = Callable[..., Stack]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database the module's stacks run on. A module pins one with its own ``backend``."""
    return str(request.param)


@contextmanager
def database_for(backend: str) -> Iterator[str | None]:
    """None for SQLite (the stack keeps it under its data folder), else a fresh PostgreSQL schema."""
    if backend == "sqlite":
        yield None
        return
    url = postgres_url()
    if url is None:
        pytest.skip(f"set {POSTGRES_ENV} to run against PostgreSQL")
    with postgres_schema(url) as schema_url:
        yield schema_url


@contextmanager
def running(root: Path, backend: str, **options: Any) -> Iterator[Stack]:
    """A started stack on ``backend``, stopped (and its schema dropped) afterwards."""
    with database_for(backend) as url, ExitStack() as cleanup:
        stack = Stack(root, database_url=url, **options)
        cleanup.callback(stack.stop)
        yield stack.start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Stack]:
    """One stack for the whole module: for tests that don't kill any part of it."""
    with running(tmp_path_factory.mktemp("stack"), backend) as shared:
        yield shared


@pytest.fixture
def fresh_stack(tmp_path: Path, backend: str) -> Iterator[Stack]:
    """A stack of the test's own: for tests that kill workers or redis-server."""
    with running(tmp_path / "stack", backend) as own:
        yield own
