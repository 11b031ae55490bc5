"""Alembic environment: runs on the engine the Store hands over (or the URL in the ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from outagecomms.store.tables import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
