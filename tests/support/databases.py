"""A database for a test stack: SQLite under its data folder, or a fresh PostgreSQL schema.

Each PostgreSQL stack gets a schema of its own (``search_path`` in the URL), so stacks of
different modules, or a module's stack and a test's fresh one, never share tables; the test
database itself is the one ``SYNDICATION_TEST_POSTGRES_URL`` names.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from syndication.store.db import make_engine

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
_numbers = itertools.count(1)


def with_search_path(url: str, schema: str) -> str:
    """``url`` with every connection's ``search_path`` set to ``schema`` (a libpq option; it
    replaces any ``search_path`` the URL already sets)."""
    changed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return changed.render_as_string(hide_password=False)


def schema_of(url: str) -> str:
    """The schema a URL made by ``with_search_path`` works in; ``public`` for a plain URL."""
    options = make_url(url).query.get("options", "")
    options = options if isinstance(options, str) else " ".join(options)
    found = [part.removeprefix("-csearch_path=") for part in options.split() if part.startswith("-csearch_path=")]
    return found[-1] if found else "public"


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A new, empty schema in the PostgreSQL database at ``url``; yields a URL that uses it.

    The schema is dropped afterwards. Unreachable: a skip, or a failure with ``CI`` set."""
    schema = f"stack_{os.getpid()}_{next(_numbers)}"
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server decides skip or fail
        engine.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but PostgreSQL at {url} cannot be reached: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    try:
        yield with_search_path(url, schema)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
