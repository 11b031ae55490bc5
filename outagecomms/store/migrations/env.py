"""Alembic environment: runs on the engine the Store hands over (or the URL in the ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from outagecomms.store.tables import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")

#: pg_advisory_xact_lock key serialising migrations ("outagecomms" in ASCII, truncated)
MIGRATION_LOCK = 0x6F75746167656D

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        # Several daemons may start at once: the first migrates, the others wait here and then
        # find the schema at head (the revision is read after the lock). SQLite's are
        # serialised by Store.migrate's file lock instead.
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.run_migrations()
    connection.commit()
