"""Crash safety of the outbox (issue 3), against real processes and real servers.

A 2,000-customer fan-out over email (aiosmtpd) and webhooks (Starlette), 4,000 deliveries, is
sent by a real sender process (``outagecomms tick``) that is killed with SIGKILL at random
points, 20 times in a row; each restart continues the same outbox; a last run completes it.
Then: every owed message arrived; a message accepted by the provider was sent again only if it
was in flight at a kill, at most the sender's concurrency per kill; every copy carries the
Message-ID / Idempotency-Key of its first copy; the store says every delivery is ``sent``.

Which sender process sent a message is known exactly, not guessed from timing: each run gets
its own envelope sender (``support+runNN@``, the Message-ID domain stays the same) and its own
webhook signing secret, and the receivers check which one signed.

The kill points are drawn from a seeded RNG (``CRASH_TEST_SEED`` replays a run; the seed is
printed): some kills land during start-up (before anything is claimed), the others at a
position of the fan-out drawn from each of equal slices of it, so they land near the start, in
the middle and near the end, wherever the sender is then (sending, claiming, writing).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from outagecomms.app import App
from outagecomms.config.loader import load_config
from outagecomms.store import outbox as outbox_db
from outagecomms.store import tables as t
from outagecomms.values import as_utc
from tests.fakes.asgi import free_port, serve_asgi
from tests.fakes.smtp import RecordingHandler, SmtpServer
from tests.fakes.webhook import HOOKS_CHANNEL, WebhookRecorder
from tests.support.data import write_rows
from tests.support.processes import CliResult, wait_until

pytestmark = pytest.mark.slow

CUSTOMERS = 2000
KILLS = 20
STARTUP_KILLS = 4  # of the KILLS, how many land during start-up
SEED = int(os.environ.get("CRASH_TEST_SEED") or random.SystemRandom().randrange(2**32))
Key = tuple[str, str]  # (channel, customer)


@dataclass(frozen=True)
class Kill:
    run: int
    stage: str  # "start-up" or "fan-out"
    progress: int  # distinct deliveries the receivers had when the kill landed
    recorded: frozenset[Key]  # what the store said was sent once the process was dead


def write_directory(path: Path, hooks_base: str) -> list[dict[str, str]]:
    return write_rows(path, [
        {"id": f"c{i:05d}", "name": f"Customer {i}", "email": f"ops+c{i:05d}@example.com",
         "webhook_url": f"{hooks_base}/hooks/c{i:05d}", "tier": ("enterprise", "standard")[i % 2],
         "components": "api", "regions": "eu-west",
         "timezone": ("Europe/Berlin", "America/New_York")[i % 2],
         "locale": ("de_DE", "en_US")[i % 2], "currency": "EUR", "monthly_fee": "100"}
        for i in range(CUSTOMERS)
    ])  # fmt: skip


def kill_plan(rng: random.Random, owed: int) -> list[tuple[str, float]]:
    """(stage, value) per kill: a delay in seconds for a start-up kill, else the number of
    distinct deliveries the receivers must have seen. One fan-out position is drawn from each
    of equal slices of 98% of the fan-out, so the kills cover it from start to end."""
    n = KILLS - STARTUP_KILLS
    span = 0.98 * owed
    targets = [rng.uniform(span * i / n, span * (i + 1) / n) for i in range(n)]
    stages = ["start-up"] * STARTUP_KILLS + ["fan-out"] * n
    rng.shuffle(stages)
    plan: list[tuple[str, float]] = []
    for stage in stages:
        # the interpreter and the CLI take ~0.4 s to start: a start-up kill lands before a claim
        plan.append((stage, rng.uniform(0.0, 0.35) if stage == "start-up" else targets.pop(0)))
    return plan


class Receivers:
    """Both recorders under one condition, with the count of distinct deliveries seen."""

    def __init__(self, smtp: RecordingHandler, hooks: WebhookRecorder):
        assert smtp.cond is hooks.cond
        self.smtp, self.hooks, self.cond = smtp, hooks, smtp.cond
        self.seen: set[Key] = set()
        self._m = self._h = 0

    def distinct(self) -> int:
        """Call with ``cond`` held."""
        for m in self.smtp.messages[self._m :]:
            self.seen.add(("email", m.customer))
        for h in self.hooks.hooks[self._h :]:
            self.seen.add(("hooks", h.customer))
        self._m, self._h = len(self.smtp.messages), len(self.hooks.hooks)
        return len(self.seen)

    def wait_distinct(self, target: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
        """Until the receivers have ``target`` distinct deliveries (True) or ``proc`` exited
        (False). The exit has no event to wait on, so it is checked between notifications."""
        deadline = datetime.now(UTC).timestamp() + timeout
        with self.cond:
            while self.distinct() < target:
                if proc.poll() is not None:
                    return False
                left = deadline - datetime.now(UTC).timestamp()
                assert left > 0, f"run stuck at {len(self.seen)} of {target} (seed {SEED})"
                self.cond.wait(min(left, 0.05))
        return True


def outbox(app: App) -> dict[int, dict[str, Any]]:
    d = t.deliveries
    q = select(d.c.id, d.c.customer_id, d.c.channel, d.c.status, d.c.lease_until, d.c.content)
    with app.store.read() as conn:
        return {
            r.id: {"key": (r.channel, r.customer_id), "status": r.status,
                   "lease_until": as_utc(r.lease_until), "content": r.content}
            for r in conn.execute(q.where(d.c.incident_id == 1))
        }  # fmt: skip


def recorded_sent(app: App) -> frozenset[Key]:
    return frozenset(r["key"] for r in outbox(app).values() if r["status"] == "sent")


def no_live_lease(app: App) -> bool:
    now = datetime.now(UTC)
    return not any(
        r["status"] == "sending" and r["lease_until"] and r["lease_until"] > now
        for r in outbox(app).values()
    )


@pytest.fixture
def hooks_server(smtp_server: SmtpServer) -> Iterator[tuple[WebhookRecorder, str]]:
    recorder = WebhookRecorder({}, cond=smtp_server.handler.cond)
    with serve_asgi(recorder.app, free_port(), name="webhook-receiver") as base:
        yield recorder, base


def test_sigkilled_sender_loses_nothing_and_resends_only_what_was_in_flight(
    smtp_server: SmtpServer,
    hooks_server: tuple[WebhookRecorder, str],
    make_config: Callable[..., Path],
    cli: Callable[..., CliResult],
    tmp_path: Path,
) -> None:
    print(f"crash test seed: {SEED} (replay with CRASH_TEST_SEED={SEED})")
    rng = random.Random(SEED)
    hooks, hooks_base = hooks_server
    cfg = make_config(smtp_server, extra=HOOKS_CHANNEL)
    text = cfg.read_text()
    for old, new in [
        ('channels = { default = ["email"] }', 'channels = { default = ["email", "hooks"] }'),
        ('lease = "20s"', 'lease = "2s"\nbatch_size = 100'),  # a dead sender's claim lapses fast
    ]:
        assert old in text
        text = text.replace(old, new)
    cfg.write_text(text)
    config = load_config(cfg)
    # the sender's concurrency: one worker per connection of every channel (dispatch.run)
    in_flight = min(64, sum(c.max_connections for c in config.channels.values()))

    directory = tmp_path / "customers.csv"
    write_directory(directory, hooks_base)
    assert cli("--config", str(cfg), "customers", "import", str(directory)).exit_code == 0
    res = cli("--config", str(cfg), "declare", "API down", "--severity", "sev2",
              "--component", "api", "--every", "1h", "--queue-only", "--yes", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    declared = json.loads(res.stdout)
    assert declared["audience"] == CUSTOMERS
    assert declared["channels"] == {"email": CUSTOMERS, "hooks": CUSTOMERS}
    owed = {(ch, f"c{i:05d}") for i in range(CUSTOMERS) for ch in ("email", "hooks")}
    assert not smtp_server.handler.snapshot() and not hooks.snapshot(), "--queue-only sent"

    receivers = Receivers(smtp_server.handler, hooks)
    app = App.open(cfg)
    kills: list[Kill] = []
    exited: list[int] = []  # runs that finished on their own (nothing left they could claim)

    def spawn(run: int) -> subprocess.Popen[bytes]:
        """Sender number ``run``: its own envelope sender and signing secret, same outbox."""
        run_cfg = tmp_path / f"run{run:02d}.toml"
        run_cfg.write_text(text.replace("<support@", f"<support+run{run:02d}@"))
        secret = f"secret-of-run-{run:02d}-{SEED}"
        hooks.add_secret(f"run{run:02d}", secret)
        log = (tmp_path / f"run{run:02d}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "outagecomms", "--config", str(run_cfg), "tick"],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "TEST_HOOK_SECRET": secret},
        )  # fmt: skip

    def finished_alone(run: int, proc: subprocess.Popen[bytes]) -> None:
        rc = proc.wait(timeout=60)
        assert rc == 0, (tmp_path / f"run{run:02d}.log").read_text()
        exited.append(run)

    run = 0
    proc: subprocess.Popen[bytes] | None = None
    try:
        for stage, value in kill_plan(rng, len(owed)):
            while True:
                assert run < 3 * KILLS, "the senders stopped making progress"
                proc = spawn(run)
                if stage == "start-up":
                    try:
                        proc.wait(timeout=value)
                        alive = False
                    except subprocess.TimeoutExpired:
                        alive = True
                else:
                    with receivers.cond:
                        target = max(int(value), receivers.distinct() + 1)
                    alive = receivers.wait_distinct(target, proc, timeout=60)
                if alive:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=10)
                    with receivers.cond:
                        progress = receivers.distinct()
                    # the process is dead: what the store says now is what it managed to record
                    kills.append(Kill(run, stage, progress, recorded_sent(app)))
                    run += 1
                    break
                # it drained all it could claim; the rest is leased by a killed sender
                finished_alone(run, proc)
                run += 1
                wait_until(lambda: no_live_lease(app), timeout=10, interval=0.05)
        # restart until the outbox is drained (the last kill's claim lapses first)
        while recorded_sent(app) != owed:
            assert run < 4 * KILLS, "the outbox was never drained"
            wait_until(lambda: no_live_lease(app), timeout=10, interval=0.05)
            finished_alone(run, spawn(run))
            run += 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    # --- what the receivers got ------------------------------------------------------------
    final = outbox(app)
    app.close()
    msg_id = {
        r["key"]: outbox_db.decode_content(r["content"])["message_id"]  # type: ignore[index]
        for r in final.values()
    }
    copies: dict[Key, list[int]] = defaultdict(list)  # runs that delivered it, in order
    wrong_id: list[str] = []
    for m in smtp_server.handler.snapshot():
        key = ("email", m.customer)
        copies[key].append(int(m.mail_from.split("+run")[1].split("@")[0]))
        if m.message_id != msg_id[key]:
            wrong_id.append(f"{key}: Message-ID {m.message_id} != {msg_id[key]}")
    for h in hooks.snapshot():
        assert h.signer is not None, f"a webhook request with no valid signature: {h}"
        key = ("hooks", h.customer)
        copies[key].append(int(h.signer.removeprefix("run")))
        if f"<{h.key}>" != msg_id[key]:
            wrong_id.append(f"{key}: Idempotency-Key {h.key} != {msg_id[key]}")

    dups = {k: len(v) - 1 for k, v in copies.items() if len(v) > 1}
    report = [f"seed {SEED}: {run} runs, {len(kills)} kills, in-flight bound {in_flight}"]
    per_kill: dict[int, set[Key]] = {}
    for k in kills:
        mine = {key for key, runs in copies.items() if k.run in runs}
        again = {key for key in mine if any(r > k.run for r in copies[key])}
        per_kill[k.run] = again
        report.append(
            f"  run {k.run:2d} killed at {k.stage:8s} progress {k.progress:4d}: it delivered "
            f"{len(mine):4d}, recorded {len(mine & k.recorded):4d}, sent again {len(again):3d}"
        )
    print("\n".join(report))
    print(f"duplicates: {sum(dups.values())} (max per kill {max(map(len, per_kill.values()))})")

    assert set(copies) == owed, f"missing: {sorted(owed - set(copies))[:5]} ({report[0]})"
    assert not wrong_id, wrong_id[:5]
    twice_in_a_run = [(key, r) for key, runs in copies.items() for r, n in Counter(runs).items() if n > 1]  # fmt: skip
    assert not twice_in_a_run, f"one sender sent a delivery twice: {twice_in_a_run[:5]}"
    for r in exited:  # a sender that exited normally recorded all it sent
        resent = {key for key, runs in copies.items() if r in runs and max(runs) > r}
        assert not resent, f"run {r} exited normally, yet {len(resent)} were sent again"
    for k in kills:
        mine = {key for key, runs in copies.items() if k.run in runs}
        again = per_kill[k.run]
        assert not (again & k.recorded), (
            f"run {k.run}: {len(again & k.recorded)} deliveries recorded as sent before the "
            f"kill were sent again (seed {SEED})"
        )
        assert again == mine - k.recorded  # what it could not record, a later run resent
        assert len(again) <= in_flight, (
            f"run {k.run} ({k.stage} kill at {k.progress}): {len(again)} accepted messages were "
            f"sent again, more than the {in_flight} a sender has in flight (seed {SEED})\n"
            + "\n".join(report)
        )
    assert sum(dups.values()) == sum(map(len, per_kill.values()))
    assert sum(dups.values()) <= KILLS * in_flight

    # --- what the store says -----------------------------------------------------------------
    listed = cli("--config", str(cfg), "deliveries", "INC-1", "--json")
    assert listed.exit_code == 0, listed.stderr
    statuses = Counter(d["status"] for d in json.loads(listed.stdout)["deliveries"])
    assert statuses == {"sent": len(owed)}, statuses
