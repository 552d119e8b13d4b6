"""The migrations build exactly the schema that ``schema.py`` declares, and migrating twice changes nothing."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from syndication.store.db import make_engine
from syndication.store.schema import Base
from tests.conftest import POSTGRES_ENV, empty_postgres, postgres_url

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no schema at all, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'syndication.db'}"
        return
    url = postgres_url()
    if url is None:
        pytest.skip(f"set {POSTGRES_ENV} to run against PostgreSQL")
    empty_postgres(url).dispose()
    yield url


def syndication_migrate(url: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``syndication migrate`` as an operator runs it: its own process, settings from the environment."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SYNDICATION_")}
    env.update(SYNDICATION_DATABASE_URL=url, SYNDICATION_DATA_DIR=str(home / "var"), SYNDICATION_LOG_LEVEL="WARNING")
    return subprocess.run([sys.executable, "-m", "apps.cli", "migrate"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a migration could change: each table's columns, keys, indexes, and the revision."""
    found = inspect(engine)
    tables: dict[str, Any] = {}
    for name in sorted(found.get_table_names()):
        tables[name] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in found.get_columns(name)],
            "primary_key": found.get_pk_constraint(name),
            "unique": sorted(map(repr, found.get_unique_constraints(name))),
            "indexes": sorted(map(repr, found.get_indexes(name))),
            "foreign_keys": sorted(map(repr, found.get_foreign_keys(name))),
        }
    with engine.connect() as conn:
        revisions = sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        if engine.dialect.name == "sqlite":  # the statements SQLite keeps, byte for byte
            tables["sqlite_master"] = sorted(map(tuple, conn.execute(text("SELECT type, name, sql FROM sqlite_master"))))
    return {"tables": tables, "revisions": revisions}


def test_migrate_twice_builds_exactly_the_declared_schema(empty_database: str, tmp_path: Path) -> None:
    # Given an empty database
    # When the operator runs `syndication migrate`
    first = syndication_migrate(empty_database, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    engine = make_engine(empty_database)
    try:
        # Then the tables, columns, types, keys and indexes are the ones schema.py declares: an
        # Alembic autogenerate comparison finds nothing to add, drop or alter
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "compare_server_default": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == [], f"migrations and schema.py disagree: {differences}"
        before = snapshot(engine)
        assert before["revisions"] and "articles" in before["tables"]

        # When it is run a second time
        second = syndication_migrate(empty_database, tmp_path)

        # Then it succeeds and changes nothing
        assert second.returncode == 0, second.stdout + second.stderr
        assert snapshot(engine) == before
    finally:
        engine.dispose()
