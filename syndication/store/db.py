"""Engine, sessions and migrations."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from syndication.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger(__name__)
T = TypeVar("T")

# Spec: PostgreSQL, Appendix A (error codes) and §13.2 — 40P01 deadlock_detected and 40001
# serialization_failure: the database rolled the transaction back, and running it again is the
# documented remedy.
RETRYABLE = frozenset({"40P01", "40001"})


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and a created folder.

    >>> engine = make_engine("sqlite:///var/syndication.db")
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API, the workers and the sweeper read while one writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, **kwargs)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise StoreError(f"cannot migrate the database: {exc.orig}") from exc


def check_schema(engine: Engine) -> None:
    """Raise ``StoreError`` unless the database has been migrated."""
    try:
        if not inspect(engine).has_table("articles"):
            raise StoreError("the database has no schema yet: run `syndication migrate`")
    except OperationalError as exc:
        raise StoreError(f"cannot reach the database: {exc.orig}") from exc


def retried(work: Callable[[], T], *, attempts: int = 3) -> T:
    """Run ``work`` (whole transactions, nothing else) and, when the database rolled it back as
    a deadlock victim or a serialization failure, run it again, up to ``attempts`` times; any
    other error, or the last attempt's, is raised.

    >>> outcome = retried(lambda: publish(store, site, articles))
    """
    for attempt in range(1, attempts):
        try:
            return work()
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if code not in RETRYABLE:
                raise
            log.warning("transaction rolled back by the database; running it again",
                        extra={"sqlstate": code, "attempt": attempt})
    return work()  # the last attempt: whatever it raises is raised


class Store:
    """The database: an engine and a session factory, built once per process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, *, migrate_schema: bool = True) -> "Store":
        store = cls(make_engine(url))
        if migrate_schema:
            migrate(store.engine)
        return store

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    def ping(self) -> None:
        """Raise (SQLAlchemy's error) unless the database answers a trivial query."""
        with self._sessions() as session:
            session.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
