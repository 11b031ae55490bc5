"""PostgreSQL session-level advisory locks on a connection of their own (scheduler
leadership: the lock lives as long as the session, so a dead leader's goes with it)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, text

from outagecomms.store.engine import Store


def open_session(store: Store, settings: Mapping[str, int]) -> Connection:
    """An autocommit connection with these server settings for its session."""
    conn = store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        for name, value in settings.items():
            # set_config: parameters cannot be bound in SET; these are plain integers
            conn.execute(text("SELECT set_config(:n, :v, false)"), {"n": name, "v": str(value)})
    except BaseException:
        conn.close()
        raise
    return conn


def ping(conn: Connection) -> None:
    """A round trip: raises when the session, and whatever lock it held, is gone."""
    conn.execute(text("SELECT 1"))


def try_lock(conn: Connection, key: int) -> bool:
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())


def unlock(conn: Connection, key: int) -> None:
    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
