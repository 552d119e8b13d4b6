"""First inserts that two processes may make at once: ``INSERT ... ON CONFLICT`` for the session's database.

Checking for a row and then adding it is a race: two processes both find nothing and both
insert, and one gets a unique violation (on PostgreSQL ``with_for_update`` locks no row
that does not exist yet; on SQLite the check runs before the write lock is taken). Both
databases have ``INSERT ... ON CONFLICT`` (SQLite since 3.24); SQLAlchemy spells it once per
dialect, with the same methods. This module is the only one that picks the dialect.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session

from syndication.errors import StoreError

Insert = postgresql.Insert | sqlite.Insert


def insert_for(session: Session, model: type[DeclarativeBase]) -> Insert:
    """An INSERT into ``model``'s table that has ``on_conflict_do_nothing``/``_do_update`` and ``excluded``.

    >>> stmt = insert_for(session, FeedStateRow)
    >>> session.execute(stmt.on_conflict_do_nothing(index_elements=["feed_key"]), rows)
    """
    table: Table = model.__table__  # type: ignore[assignment]
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise StoreError(f"the store supports SQLite and PostgreSQL, not {name}")


def insert_missing(session: Session, model: type[DeclarativeBase], rows: Sequence[Mapping[str, Any]], *,
                   key: Sequence[str], returning: Sequence[ColumnElement[Any]] = (),
                   probe: bool = False) -> list[tuple[Any, ...]]:
    """Insert the ``rows`` whose ``key`` is not taken yet; skip the others without an error.

    Rows go in sorted by key, so two transactions that insert overlapping rows wait for each
    other in the same order and cannot deadlock. On PostgreSQL an insert that meets a row
    another transaction has inserted but not committed waits for it, then skips. Returns the
    ``returning`` columns of the rows this call inserted (nothing if none are asked for).
    On SQLite the statement also takes the write lock even when it inserts nothing, so what
    the transaction reads after it, no other process can change until the commit.

    ``probe`` (a one-column key): on PostgreSQL, first leave out the rows whose key is already
    stored (one select of that column), so that big rows that would be skipped are not sent.
    Never on SQLite, where the insert is what takes the write lock.
    """
    table: Table = model.__table__  # type: ignore[assignment]
    if probe and rows and session.get_bind().dialect.name == "postgresql":
        (column,) = key
        stored = set(session.scalars(select(table.c[column]).where(table.c[column].in_([r[column] for r in rows]))))
        rows = [r for r in rows if r[column] not in stored]
    if not rows:
        return []
    ordered = sorted(rows, key=lambda row: tuple(str(row[k]) for k in key))
    stmt = insert_for(session, model).on_conflict_do_nothing(index_elements=list(key))
    if not returning:
        session.execute(stmt, ordered)
        return []
    return [tuple(r) for r in session.execute(stmt.returning(*returning), ordered)]
