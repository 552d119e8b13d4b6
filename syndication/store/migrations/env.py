"""Alembic environment: the connection is handed in by ``syndication.store.db.migrate``."""
from alembic import context

from syndication.store.schema import Base

connection = context.config.attributes.get("connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
