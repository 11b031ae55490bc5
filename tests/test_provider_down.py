"""A provider that is down for the first 30 seconds of an incident (issue 3): the messages
arrive after it recovers, still before the next promise where that is possible, and the
commander sees the retries.

The 30 seconds are real seconds of the application's clock, not of the wall: the tests run
the cron form (``scheduling.tick``: what is due, then dispatch) in process with an injected
clock, and between two ticks the clock jumps to ``next_wakeup``, the moment the daemon would
wake up for (a retry's backoff, a holding round). The providers, a real SMTP server (451 for
every recipient) and a real webhook receiver (503), are down while that clock is in the first
30 seconds. So the dispatch settings are the shipped ones (``retry_base`` 5 s,
``max_attempts`` 5) and the run takes a second of wall time. The last test runs the real
daemon against a webhook receiver that is down for its first seconds of wall time, to show
that the daemon wakes up for retries by itself.

What the commander sees of retries: the outbox (``deliveries --json``: status, attempts, last
error; ``show --json``: pending and retrying per round), ``declare``'s own summary, a ``retry``
event per incident in ``show``/``watch``, a ``dead_reported`` event and message when retries
are used up, and no retry scheduled past the start of the next round.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.incidents.lifecycle import declare
from outagecomms.models import Selector
from outagecomms.scheduler.due import next_wakeup
from outagecomms.scheduler.tick import tick
from outagecomms.store import incidents as incidents_db
from outagecomms.values import parse_duration
from tests.fakes.asgi import free_port, serve_asgi
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import SmtpServer
from tests.fakes.webhook import HOOKS_CHANNEL, WebhookRecorder
from tests.support.processes import CliResult, run_cli, start_daemon, stop, wait_until

CUSTOMERS = 10
OUTAGE = timedelta(seconds=30)
SECRET = "provider-down-secret"
SEED = int(os.environ.get("PROVIDER_TEST_SEED") or random.SystemRandom().randrange(2**32))
SMTP_DOWN = "451 4.3.2 System not accepting network messages"


@dataclass(frozen=True)
class Attempt:
    at: datetime  # the application's clock when it reached the receiver
    channel: str
    customer: str
    ident: str  # Message-ID / Idempotency-Key
    ok: bool
    round: int


@dataclass
class World:
    """Config, store, the two receivers and the clock their outage is measured on."""

    app: App
    clock: FakeClock
    smtp: SmtpServer
    hooks: WebhookRecorder
    cfg: Path
    emails: list[str]
    down_until: datetime = field(init=False)
    attempts: list[Attempt] = field(default_factory=list)
    _m: int = 0
    _h: int = 0

    def __post_init__(self) -> None:
        self.down_until = self.clock.now + OUTAGE

    def down(self) -> bool:
        return self.clock.now < self.down_until

    def declare(self, every: str) -> Any:
        self.down_until = self.clock.now + OUTAGE  # down from the declaration on
        return declare(
            self.app, title="API down", severity="sev2", every=parse_duration(every),
            selector=Selector(components=("api",)),
        )  # fmt: skip

    def tick(self) -> None:
        """One cron run at the clock's time; the attempts that reached a receiver are noted."""
        self.smtp.handler.reject = {e: SMTP_DOWN for e in self.emails} if self.down() else {}
        asyncio.run(tick(self.app))
        with self.hooks.cond:  # the SMTP handler shares this condition
            ms, hs = self.smtp.handler.messages, self.hooks.hooks
            now = self.clock.now
            new = [Attempt(now, "email", m.customer, m.message_id, True, m.round) for m in ms[self._m :]]  # fmt: skip
            new += [Attempt(now, "hooks", h.customer, h.key, h.status < 300, h.doc["round"]) for h in hs[self._h :]]  # fmt: skip
            self._m, self._h = len(ms), len(hs)
        self.attempts += new

    def run_until(self, done: Callable[[], bool], horizon: timedelta) -> None:
        """Tick, then move the clock to the next moment anything falls due, until ``done``."""
        end = self.clock.now + horizon
        for _ in range(400):
            self.tick()
            if done():
                return
            wake = next_wakeup(self.app)
            assert wake is not None, "deliveries are owed but nothing is scheduled"
            self.clock.now = max(self.clock.now, wake)
            assert self.clock.now <= end, f"not done by {end} (seed {SEED})"
        raise AssertionError("too many ticks")

    def statuses(self, round_seq: int | None = None) -> dict[str, int]:
        rows = self.deliveries()
        out: dict[str, int] = defaultdict(int)
        for d in rows:
            if round_seq is None or d["round"] == round_seq:
                out[d["status"]] += 1
        return dict(out)

    def deliveries(self, *status: str) -> list[dict[str, Any]]:
        """``deliveries INC-1 --json``, what a commander runs to see the outbox."""
        args = ["--config", str(self.cfg), "deliveries", "INC-1", "--json"]
        res = run_cli(*args, *(["--status", *status] if status else []))
        assert res.exit_code == 0, res.stderr
        return list(json.loads(res.stdout)["deliveries"])

    def events(self) -> list[dict[str, str]]:
        with self.app.store.read() as conn:
            return [
                {"kind": e["kind"], "detail": e["detail"]}
                for e in incidents_db.list_events(conn, 1)
            ]


def write_directory(path: Path, hooks_base: str) -> list[str]:
    emails = [f"ops+d{i:03d}@example.com" for i in range(CUSTOMERS)]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name", "email", "webhook_url", "components", "regions", "timezone"])
        for i, email in enumerate(emails):
            w.writerow([f"d{i:03d}", f"Customer {i}", email, f"{hooks_base}/hooks/d{i:03d}", "api", "eu-west", "Europe/Berlin"])  # fmt: skip
    return emails


def config_text(cfg: Path, *, shipped_retries: bool = True) -> str:
    text = cfg.read_text()
    text = text.replace(
        'channels = { default = ["email"] }', 'channels = { default = ["email", "hooks"] }'
    )
    if shipped_retries:  # the test template shortens them; an outage is about the real ones
        text = text.replace('retry_base = "1s"\n', "")
    return text


@pytest.fixture
def make_world(
    smtp_server: SmtpServer,
    make_config: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., World]]:
    """``make_world(retry_base=None)``: None keeps the shipped backoff."""
    print(f"provider-down seed: {SEED} (replay with PROVIDER_TEST_SEED={SEED})")
    random.seed(SEED)  # the backoff's jitter
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    made: list[World] = []

    def answer() -> int:
        return 503 if made and made[0].down() else 200

    hooks = WebhookRecorder({"secret": SECRET}, cond=smtp_server.handler.cond, answer=answer)
    with serve_asgi(hooks.app, free_port(), name="webhook-receiver") as base:

        def make(retry_base: str | None = None) -> World:
            cfg = make_config(smtp_server, extra=HOOKS_CHANNEL)
            text = config_text(cfg, shipped_retries=retry_base is None)
            if retry_base is not None:
                text = text.replace('retry_base = "1s"', f'retry_base = "{retry_base}"')
            cfg.write_text(text)
            clock = FakeClock()
            app = App.open(cfg, clock=clock)
            import_file(app, tmp_path / "customers.csv")
            w = World(app=app, clock=clock, smtp=smtp_server, hooks=hooks, cfg=cfg, emails=emails)
            made.append(w)
            return w

        emails = write_directory(tmp_path / "customers.csv", base)
        try:
            yield make
        finally:
            for w in made:
                w.app.close()


def _told_about(events: list[dict[str, str]], *words: str) -> list[dict[str, str]]:
    """Events a commander reads in ``show`` that speak of the deliveries' trouble."""
    return [
        e
        for e in events
        if e["kind"] not in ("declared", "reminder", "holding", "update")
        and any(w in e["detail"].lower() for w in words)
    ]


def test_down_for_30s_messages_arrive_after_recovery_and_before_the_promise(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    assert world.app.config.dispatch.retry_base == timedelta(seconds=5)  # the shipped backoff
    created = world.declare(every="10m")
    promise = created.incident.next_update_due
    owed = 2 * CUSTOMERS

    world.tick()  # the first attempt, into the outage
    # the commander sees the retries in the outbox: pending, tried once, and why
    pending = world.deliveries("pending")
    assert len(pending) == owed
    assert all(d["attempts"] == 1 for d in pending)
    errors = {d["channel"]: d["last_error"] for d in pending}
    assert "503" in errors["hooks"] and "451" in errors["email"], errors
    assert world.statuses() == {"pending": owed}

    world.run_until(lambda: world.statuses() == {"sent": owed}, horizon=timedelta(minutes=5))

    got = [a for a in world.attempts if a.ok]
    refused = [a for a in world.attempts if not a.ok]
    assert {(a.channel, a.customer) for a in got} == {
        (ch, f"d{i:03d}") for i in range(CUSTOMERS) for ch in ("email", "hooks")
    }
    assert len(got) == owed, "a message arrived twice"
    assert all(a.at < world.down_until for a in refused)
    assert all(world.down_until <= a.at <= promise for a in got), (
        sorted(a.at for a in got)[-1],
        promise,
    )
    # every attempt of a webhook delivery carried the same Idempotency-Key
    keys: dict[str, set[str]] = defaultdict(set)
    for a in world.attempts:
        if a.channel == "hooks":
            keys[a.customer].add(a.ident)
    assert all(len(k) == 1 for k in keys.values())
    last = max(a.at for a in got)
    print(f"outage until +30s; last message at +{(last - created.round.created_at).seconds}s")

    # afterwards the outbox still shows that each one needed more than one attempt
    done = world.deliveries()
    assert all(d["status"] == "sent" and d["attempts"] >= 2 for d in done)


def test_the_commander_sees_the_retries(
    make_world: Callable[..., World], cli: Callable[..., CliResult]
) -> None:
    """The terminal that declared shows them at once; after that, ``show`` should."""
    world = make_world()
    world.down_until = datetime.max.replace(tzinfo=UTC)  # down for this whole test
    world.smtp.handler.reject = {e: SMTP_DOWN for e in world.emails}
    res = cli("--config", str(world.cfg), "declare", "API down", "-s", "sev2", "-c", "api",
              "--yes", "--json")  # fmt: skip
    assert res.exit_code == 3, res.stderr  # partial: not everyone has it yet
    out = json.loads(res.stdout)
    assert (out["sent"], out["retry"], out["dead"]) == (0, 2 * CUSTOMERS, 0)
    assert sum(out["errors"].values()) == 2 * CUSTOMERS
    assert f"{2 * CUSTOMERS} will be retried" in res.stderr
    show = cli("--config", str(world.cfg), "show", "INC-1", "--json")
    rnd = json.loads(show.stdout)["rounds"][0]
    assert (rnd["pending"], rnd["sent"]) == (2 * CUSTOMERS, 0)
    if not _told_about(world.events(), "retr", "503", "451"):
        pytest.fail(
            "the commander is not told about retries once the CLI has exited (no "
            "event in show --json; only `deliveries` and the daemon log show them)"
        )


def test_down_for_30s_with_the_promise_60s_away_everyone_hears_before_it(
    make_world: Callable[..., World],
) -> None:
    """Recovery 30 s before the promise: everyone can and must hear from us before it, and
    nobody gets the acknowledgement after the holding update that followed it."""
    world = make_world()
    created = world.declare(every="60s")
    promise = created.incident.next_update_due
    owed = {(ch, f"d{i:03d}") for i in range(CUSTOMERS) for ch in ("email", "hooks")}

    def settled() -> bool:  # the acknowledgement and the holding round: nothing left owed
        counts = world.statuses()
        return not counts.get("pending") and not counts.get("sending") and world.statuses(2) != {}

    world.run_until(settled, horizon=timedelta(minutes=5))
    got = [a for a in world.attempts if a.ok]
    assert all(a.at >= world.down_until for a in got)
    # the holding round, started before the promise, reached everyone on time
    assert world.statuses(2) == {"sent": len(owed)}
    assert {(a.channel, a.customer) for a in got if a.round == 2 and a.at <= promise} == owed
    holding_at = {(a.channel, a.customer): a.at for a in got if a.round == 2}
    stale = [a for a in got if a.round == 1 and a.at > holding_at[(a.channel, a.customer)]]
    late = [a for a in got if a.round == 1 and a.at > promise]
    problems = []
    if late:
        worst = (max(a.at for a in late) - promise).total_seconds()
        problems.append(
            f"{len(late)} acknowledgements arrived after the promise (up to {worst:.0f}s "
            "late): a retry is scheduled past the promise"
        )
    if stale:
        problems.append(
            f"{len(stale)} acknowledgements arrived after the holding update that followed "
            "them (a stale 'next update by'): a retry is scheduled past the holding round's "
            "start (promise - margin)"
        )
    if problems:
        pytest.fail(
            "issue 3, the provider was back 30 s before the promise: " + "; ".join(problems)
        )


def test_retries_used_up_during_the_outage_are_dead_and_the_commander_is_told(
    make_world: Callable[..., World],
) -> None:
    """With a short backoff (the test template's 1 s) five attempts fit in the outage."""
    world = make_world(retry_base="1s")
    world.declare(every="10m")
    world.run_until(
        lambda: world.statuses() == {"dead": 2 * CUSTOMERS}, horizon=timedelta(minutes=5)
    )
    assert not [a for a in world.attempts if a.ok]
    assert all(d["attempts"] == 5 for d in world.deliveries("dead"))
    if not _told_about(world.events(), "dead", "gave up", "could not"):
        pytest.fail("dead deliveries are not reported to the commander (show --json)")


def test_the_daemon_wakes_up_for_retries_once_the_provider_is_back(
    smtp_server: SmtpServer,
    make_config: Callable[..., Path],
    cli: Callable[..., CliResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real time, real daemon: the webhook receiver answers 503 for its first 3 s. The
    daemon's reconcile job is slowed to 1 h so only the retry's own wake-up can send it."""
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    up_at = {"t": float("inf")}
    hooks = WebhookRecorder(
        {"secret": SECRET}, answer=lambda: 503 if time.monotonic() < up_at["t"] else 200
    )
    with serve_asgi(hooks.app, free_port(), name="webhook-receiver") as base:
        cfg = make_config(smtp_server, extra=HOOKS_CHANNEL)
        text = config_text(cfg, shipped_retries=False)
        text = text.replace('retry_base = "1s"', 'retry_base = "500ms"')
        text = text.replace(
            'reconcile_every = "300ms"', 'reconcile_every = "1h"\nleader_lease = "3h"'
        )
        cfg.write_text(text)
        write_directory(tmp_path / "customers.csv", base)
        assert cli("--config", str(cfg), "customers", "import", str(tmp_path / "customers.csv")).exit_code == 0  # fmt: skip
        res = cli("--config", str(cfg), "declare", "API down", "-s", "sev2", "-c", "api",
                  "--every", "10m", "--queue-only", "--yes", "--json")  # fmt: skip
        assert res.exit_code == 0, res.stderr
        up_at["t"] = time.monotonic() + 3.0  # five attempts span at least 3.75 s
        log = tmp_path / "daemon.log"
        daemon = start_daemon(cfg, log)
        try:
            smtp_server.handler.wait_for(lambda ms: len(ms) >= CUSTOMERS)
            with hooks.cond:
                while len([h for h in hooks.hooks if h.status == 200]) < CUSTOMERS:
                    assert hooks.cond.wait(20), "the webhooks were never retried"
            assert time.monotonic() >= up_at["t"]

            def outbox() -> list[dict[str, Any]]:
                res = cli("--config", str(cfg), "deliveries", "INC-1", "--json")
                return list(json.loads(res.stdout)["deliveries"])

            wait_until(lambda: all(d["status"] == "sent" for d in outbox()))
            rows = outbox()
        finally:
            assert stop(daemon) == 0
    hooks_rows = [d for d in rows if d["channel"] == "hooks"]
    assert all(d["attempts"] >= 2 for d in hooks_rows)
    refused = [h for h in hooks.hooks if h.status == 503]
    assert len(refused) >= CUSTOMERS and all(h.signer == "secret" for h in hooks.hooks)
    assert "to retry" in log.read_text()  # the daemon's log shows the retries
