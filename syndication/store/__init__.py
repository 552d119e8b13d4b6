"""The database layer (SQLAlchemy 2 + Alembic). The source of truth."""
from syndication.store.db import Store, check_schema, make_engine, migrate, retried

__all__ = ["Store", "check_schema", "make_engine", "migrate", "retried"]
