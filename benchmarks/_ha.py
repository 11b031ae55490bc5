"""Shared helpers for the HA benchmarks: several ``outagecomms daemon`` processes on one
PostgreSQL store (``failover.py``, ``ha_dispatch.py``, ``lateness.py``).

- a throwaway PostgreSQL database per run (created, then dropped), read directly with psycopg
  for the figures (the store is the source of truth: rounds, deliveries, their timestamps);
- daemons as real subprocesses, each with its own ``--http`` listener so ``/healthz`` tells
  leader from follower, its own log file, SIGKILL/SIGTERM, CPU time from ``/proc``;
- the promise check shared by the failover and lateness figures.

Subprocesses run the package of this checkout (``PYTHONPATH`` = the repository root), whatever
version of it is installed in the venv.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from _common import (
    REPO,
    BenchRun,
    bench_run,
    cli_env,
    config_text,
    log_events,
    outagecomms_cmd,
    run_cli,
    smtp_channel_toml,
)

if str(REPO) not in sys.path[:1]:
    sys.path.insert(0, str(REPO))  # the benchmark's own in-process reads use this checkout too

#: server, user and auth of the PostgreSQL the benchmarks create their databases in
PG_BASE = os.environ.get("OUTAGECOMMS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
BENCH_SECRET = "bench-only-feedback-secret"  # the --http listener refuses to start without one
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def utcnow() -> datetime:
    return datetime.now(UTC)


def ha_env() -> dict[str, str]:
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["OUTAGECOMMS_SECRET"] = BENCH_SECRET
    return env


def cli(
    config: Path, *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``outagecomms --config CONFIG ARGS...`` as a real subprocess, running this checkout
    (``ha_env``), stdin closed."""
    return run_cli(
        config,
        *args,
        timeout=timeout,
        check=check,
        env=ha_env(),
        stdin=subprocess.DEVNULL,
    )


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.1, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def add_store_args(ap: argparse.ArgumentParser, db: str) -> None:
    """``--db`` (the database to create and drop, default ``db``), ``--seed`` and ``--keep``:
    the flags every HA benchmark has."""
    ap.add_argument("--db", default=db, help="database to create and drop")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and the database")


def ha_bench_run(prefix: str, args: argparse.Namespace) -> AbstractContextManager[BenchRun]:
    """``bench_run`` for an HA benchmark: ``--keep`` keeps the database ``--db`` too, and says so."""
    return bench_run(prefix, keep=args.keep, kept_note=f" (and database {args.db})")


# --- PostgreSQL --------------------------------------------------------------------------------


def pg_dsn(db: str) -> str:
    return f"{PG_BASE}/{db}"


def store_url(db: str) -> str:
    return pg_dsn(db).replace("postgresql://", "postgresql+psycopg://", 1)


def _admin(sql: str) -> None:
    with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def drop_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(name: str, *, keep: bool = False) -> Iterator[str]:
    """A new, empty database for one run; yields its store URL and drops it afterwards."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a plain database name: {name!r}")
    drop_database(name)
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield store_url(name)
    finally:
        if not keep:
            drop_database(name)


class StoreReader:
    """Read-only SQL on the benchmark's store, one autocommit connection (every query sees
    what the daemons have committed by then)."""

    def __init__(self, db: str):
        self.conn = psycopg.connect(pg_dsn(db), autocommit=True)

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def value(self, sql: str, params: Any = None) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def delivery_counts(self) -> dict[str, int]:
        return {
            s: int(n) for s, n in self.rows("SELECT status, count(*) FROM deliveries GROUP BY 1")
        }


def write_pg_config(
    path: Path,
    *,
    store: str,
    smtp_port: int,
    max_connections: int,
    daemon: dict[str, str] | None = None,
    dispatch: dict[str, str] | None = None,
) -> Path:
    """A config for the HA runs: PostgreSQL store, email over SMTP to the local sink, every
    customer on email. ``daemon``/``dispatch``: extra keys, values already TOML."""

    def table(name: str, keys: dict[str, str] | None) -> str:
        if not keys:
            return ""
        return f"\n[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        config_text(
            store,
            "email",
            smtp_channel_toml(smtp_port, max_connections),
            table("dispatch", dispatch) + table("daemon", daemon),
        )
    )
    return path


# --- daemons -----------------------------------------------------------------------------------


@dataclass
class DaemonProc:
    """One ``outagecomms daemon --http 127.0.0.1:PORT`` subprocess with its log file."""

    name: str
    config: Path
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> DaemonProc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [*outagecomms_cmd(), "--config", str(self.config), "daemon"]
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [*cmd, "--http", f"127.0.0.1:{self.port}"],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=ha_env(),
            )
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def health(self, timeout: float = 1.0) -> dict[str, Any] | None:
        """``/healthz`` as a dict (role, leader, pid, store), or None when it does not answer."""
        url = f"http://127.0.0.1:{self.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                data: dict[str, Any] = json.loads(resp.read())
                return data
        except urllib.error.HTTPError as exc:  # 503: store unreachable, body still says why
            with contextlib.suppress(ValueError):
                return dict(json.loads(exc.read()))
            return None
        except (OSError, ValueError):
            return None

    def is_leader(self) -> bool:
        h = self.health()
        return bool(h and h.get("leader"))

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if not self.alive:
                raise RuntimeError(f"daemon {self.name} exited: {self.log_tail()}")
            return self.health() is not None

        wait_until(ready, timeout, 0.1, f"daemon {self.name} /healthz")

    def cpu_seconds(self) -> float:
        """User + system CPU of the daemon process so far (its spawned children excluded)."""
        return proc_cpu(self.pid)

    def kill(self) -> datetime:
        """SIGKILL; returns the wall-clock moment (UTC) just before the signal."""
        assert self.proc is not None
        at = utcnow()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        return at

    def stop(self, timeout: float = 40) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 800) -> str:
        return self.log_text()[-n:]

    def events(self, event: str) -> list[dict[str, Any]]:
        """This daemon's logged ``event`` events (JSON lines), oldest first."""
        return [e for e in log_events(self.log_text().splitlines()) if e["event"] == event]

    def sent_from_log(self) -> int:
        """Messages this daemon reports as sent (its ``dispatched`` events)."""
        return sum(int(e["sent"]) for e in self.events("dispatched"))

    def retries_from_log(self) -> int:
        """Sends this daemon reported as transient failures (its ``dispatched`` events)."""
        return sum(int(e["retry"]) for e in self.events("dispatched"))

    def holding_rounds_from_log(self) -> list[str]:
        """ "INC-3 round 4" for every holding round this daemon's scheduler created."""
        return [str(e["round"]) for e in self.events("holding_queued")]

    def became_leader(self) -> bool:
        return any(e["leader"] for e in self.events("leadership"))


def start_daemons(
    config: Path, workdir: Path, n: int, ports: list[int], *, first_leads: bool = True
) -> list[DaemonProc]:
    """Start n daemons; the first is made the leader (started alone until /healthz says so)."""
    out: list[DaemonProc] = []
    for i in range(n):
        d = DaemonProc(
            chr(ord("A") + i), config, workdir / f"daemon-{chr(ord('a') + i)}.log", ports[i]
        )
        d.start()
        d.wait_ready()
        if i == 0 and first_leads:
            wait_until(d.is_leader, 30, 0.1, f"daemon {d.name} to lead")
        out.append(d)
    return out


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (NaN when it is gone)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return math.nan


class CpuMeter:
    """CPU seconds used by a set of processes between ``start()`` and ``stop()``, next to the
    whole machine's, to tell on a shared machine what this run used from what others did."""

    def __init__(self) -> None:
        self.start_cpu: dict[int, float] = {}
        self.used: dict[int, float] = {}
        self.machine: tuple[int, int] = (0, 0)
        self.machine_s = math.nan  # busy CPU seconds of the whole machine
        self.wall = math.nan
        self._t0 = 0.0

    def start(self, pids: list[int]) -> None:
        self._t0 = time.monotonic()
        self.machine = machine_busy()
        self.start_cpu = {p: proc_cpu(p) for p in pids}

    def stop(self, pids: list[int]) -> None:
        """``pids``: the processes to charge (those not seen at start count from zero)."""
        end = machine_busy()
        self.wall = time.monotonic() - self._t0
        self.machine_s = (end[0] - self.machine[0]) / CLOCK_TICKS
        for p in set(pids) | set(self.start_cpu):
            now = proc_cpu(p)
            if not math.isnan(now):
                self.used[p] = now - self.start_cpu.get(p, 0.0)

    def of(self, pids: list[int]) -> float:
        return sum(self.used.get(p, 0.0) for p in pids)

    @property
    def capacity_s(self) -> float:
        return self.wall * (os.cpu_count() or 1)


def pg_backends(reader: StoreReader, db: str) -> list[int]:
    """PostgreSQL server processes serving connections to ``db`` (ours excluded)."""
    return [
        int(r[0])
        for r in reader.rows(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db,),
        )
    ]


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)


# --- promises ----------------------------------------------------------------------------------


@dataclass
class RoundRow:
    incident_id: int
    seq: int
    kind: str
    created_at: datetime
    due_by: datetime | None
    promised_next_by: datetime | None
    owed: int
    sent: int
    first_sent: datetime | None
    last_sent: datetime | None


@dataclass
class PromiseCheck:
    """One promise P (a round's ``promised_next_by``) and the round that kept it, or not."""

    incident_id: int
    promised_in: int  # seq of the round that made the promise
    promise: datetime
    kept_by: RoundRow | None
    kept: bool
    why: str = ""

    @property
    def margin_last(self) -> float | None:
        """Seconds between the last delivery of the next round and P (negative: late)."""
        return self._before_promise(self.kept_by.last_sent if self.kept_by else None)

    @property
    def margin_first(self) -> float | None:
        return self._before_promise(self.kept_by.first_sent if self.kept_by else None)

    def _before_promise(self, moment: datetime | None) -> float | None:
        return None if moment is None else (self.promise - moment).total_seconds()

    @property
    def lead(self) -> float | None:
        """Seconds before P that the next round was created."""
        r = self.kept_by
        return None if r is None else (self.promise - r.created_at).total_seconds()


def read_rounds(reader: StoreReader) -> list[RoundRow]:
    rows = reader.rows(
        """
        SELECT r.incident_id, r.seq, r.kind, r.created_at, r.due_by, r.promised_next_by,
               count(d.id), count(d.id) FILTER (WHERE d.status = 'sent'),
               min(d.sent_at), max(d.sent_at)
        FROM rounds r LEFT JOIN deliveries d ON d.round_id = r.id
        GROUP BY r.id ORDER BY r.incident_id, r.seq
        """
    )
    return [RoundRow(*r) for r in rows]


def check_promises(rounds: list[RoundRow], end: datetime) -> tuple[list[PromiseCheck], int]:
    """Every promise that fell due by ``end``: kept when a later round of the incident was
    written for it (``due_by == P``) and every one of its deliveries was sent by P.
    Returns the checks and how many promises were still in force at ``end`` (not counted)."""
    by_incident: dict[int, list[RoundRow]] = {}
    for r in rounds:
        by_incident.setdefault(r.incident_id, []).append(r)
    checks: list[PromiseCheck] = []
    in_force = 0
    for iid, rs in by_incident.items():
        for r in rs:
            p = r.promised_next_by
            if p is None:
                continue
            if p > end:
                in_force += 1
                continue
            nxt = next((x for x in rs if x.seq > r.seq and x.due_by == p), None)
            if nxt is None:
                checks.append(PromiseCheck(iid, r.seq, p, None, False, "no round was written"))
            elif nxt.owed == 0 or nxt.sent < nxt.owed:
                checks.append(
                    PromiseCheck(iid, r.seq, p, nxt, False, f"{nxt.sent}/{nxt.owed} sent")
                )
            elif nxt.last_sent is not None and nxt.last_sent > p:
                late = (nxt.last_sent - p).total_seconds()
                checks.append(
                    PromiseCheck(iid, r.seq, p, nxt, False, f"last sent {late:.1f} s late")
                )
            else:
                checks.append(PromiseCheck(iid, r.seq, p, nxt, True))
    return checks, in_force


def ack_checks(rounds: list[RoundRow]) -> tuple[int, int]:
    """(acknowledgements complete by started_at + ack_within, acknowledgement rounds)."""
    acks = [r for r in rounds if r.kind == "acknowledgement"]
    ok = sum(
        1
        for r in acks
        if r.owed and r.sent == r.owed and r.due_by and r.last_sent and r.last_sent <= r.due_by
    )
    return ok, len(acks)


def percentile(xs: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    if not xs:
        return math.nan
    s = sorted(xs)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
