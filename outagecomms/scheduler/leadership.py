"""Scheduling leadership when several daemons share one PostgreSQL store.

Every daemon dispatches (deliveries are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease);
exactly one, the leader, runs the scheduler's decisions (holding rounds, reminders,
follow-ups). The leader holds a session-level PostgreSQL advisory lock on a connection of its
own: if its process dies, even by SIGKILL, the server drops the connection and the lock, and
the next follower to try (every ``daemon.leader_lease / 3`` at most) becomes the leader.
The scheduler's writes are compare-and-set anyway, so a brief overlap can never send a round
twice. On SQLite one daemon per database file is enforced instead, and it always leads.

A leader whose machine vanishes (power, network) sends no FIN: the server would hold its
connection, and the lock, until TCP keepalive notices, two hours with Linux defaults. So the
leadership session sets the server's keepalive and user timeout for itself, scaled to
``leader_lease``: the server drops a silent leader's session, and its lock, within the lease.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from sqlalchemy import Connection

from outagecomms.store import Store
from outagecomms.store import leadership as locks

log = logging.getLogger("outagecomms.leadership")

#: advisory lock key: "outagecomms" scheduler (any 64-bit constant shared by all daemons)
LOCK_KEY = 0x6F7574616765


def keepalive_settings(lease: timedelta) -> dict[str, int]:
    """Server-side TCP settings for the leadership session: idle lease/3, then 3 probes over
    the next third; unacknowledged data gives up after the lease."""
    secs = max(3, int(lease.total_seconds()))
    return {
        "tcp_keepalives_idle": max(1, secs // 3),
        "tcp_keepalives_interval": max(1, secs // 9),
        "tcp_keepalives_count": 3,
        "tcp_user_timeout": secs * 1000,  # milliseconds
    }


class Leadership:
    def __init__(self, store: Store, lease: timedelta = timedelta(seconds=15)):
        self.store = store
        self.lease = lease
        self.conn: Connection | None = None
        self.leader = store.dialect != "postgresql"

    def check(self) -> bool:
        """Try to become (or stay) the leader; returns whether this daemon leads now."""
        if self.store.dialect != "postgresql":
            return True
        try:
            if self.conn is None:
                self.conn = locks.open_session(self.store, keepalive_settings(self.lease))
            if self.leader:
                locks.ping(self.conn)  # still connected, so still holding it
            else:
                self.leader = locks.try_lock(self.conn, LOCK_KEY)
        except Exception as exc:  # connection lost: whatever we held is gone with it
            log.warning("leadership check failed: %s", exc)
            self._drop()
        return self.leader

    def _drop(self) -> None:
        self.leader = False
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    def release(self) -> None:
        if self.store.dialect == "postgresql" and self.conn is not None and self.leader:
            with contextlib.suppress(Exception):
                locks.unlock(self.conn, LOCK_KEY)
        self._drop()
