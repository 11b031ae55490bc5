#!/usr/bin/env python3
"""Replies coming back through the daemon's SMTP listener (issue 12's figures).

usage: python benchmarks/inbound_ingest.py [--customers 2000] [--replies 3000] [--clients 16]
                                           [--rate 100] [--seconds 10] [--pipe 40] [--keep]

Set-up, all on loopback in a temp dir: a directory of ``--customers`` (gen_customers.py, seed 7),
SQLite, an open incident whose first round was sent (to a local aiosmtpd sink that records every
message with the time it accepted it), then a real daemon subprocess with ``[inbound] smtp``.
Every reply is a real one to a real delivery: ``From`` the customer's address, ``In-Reply-To``
the Message-ID the sink received (``<oc.{delivery_id}.inc-1.r1@...>``).

(a) **ingest**: ``--replies`` replies sent by ``--clients`` concurrent SMTP sessions as fast as
    the daemon answers; replies/s = replies / (first MAIL to the last one *processed*: stored,
    classified, matched, scored; read from the store). Target >= 300/s on 2 cores. Baseline in
    the same run: ``outagecomms inbound ingest -`` (the Postfix ``pipe`` path: a process per
    message), ``--pipe`` messages, 2 at a time.
(b) **escalation latency** at ``--rate`` replies/s for ``--seconds``: negative replies from
    customers who have an account manager; latency = the sink's acceptance of the escalation
    mail to the account manager - the client's end of DATA (the reply's final ``.``), matched by
    the ``(ref N)`` each reply carries and its escalation quotes.
    Target p99 <= 5 s.
Exit status 1 when a target is missed or the run broke.
"""

from __future__ import annotations

import argparse
import random
import re
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from _common import (
    bench_run,
    cli_env,
    config_text,
    free_port,
    machine_line,
    outagecomms_cmd,
    run_cli,
    smtp_channel_toml,
    verdict,
    wait_port,
    write_customers,
)
from aiosmtpd.controller import Controller

TARGET_RATE = 300.0
TARGET_P99 = 5.0
NEUTRAL = [
    "Thanks for the update, we will wait for the next one.",
    "Got it, our team is aware. Please keep us posted.",
    "Understood. Is there an ETA for the fix?",
    "Thank you for letting us know so quickly.",
]
NEGATIVE = [
    "This is the third outage this month and it is unacceptable. We are considering cancelling.",
    "Terrible. Our customers are furious and we are losing money every minute.",
    "Again? This is awful, we want a refund and a call from our account manager.",
]
_ESCALATION = re.compile(r"<oc\.in\d+\.escalation@")
_REF = re.compile(rb"\(ref (\d+)\)")


# --- the sink: every accepted message, timestamped ---------------------------------------------


@dataclass
class Accepted:
    at: float
    rcpts: list[str]
    message_id: str
    ref: int | None  # the "(ref N)" of the reply an escalation quotes


@dataclass
class TimestampingSink:
    """aiosmtpd handler: records (time accepted, recipients, Message-ID) of every message."""

    got: list[Accepted] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        head = envelope.original_content.split(b"\r\n\r\n", 1)[0]
        m = re.search(rb"^Message-ID:\s*(<[^>]+>)", head, re.I | re.M)
        mid = m[1].decode() if m else ""
        ref = _REF.search(envelope.original_content) if _ESCALATION.match(mid) else None
        with self.lock:
            self.got.append(
                Accepted(at, [str(r) for r in envelope.rcpt_tos], mid, int(ref[1]) if ref else None)
            )
        return "250 2.0.0 Ok: accepted"

    def snapshot(self) -> list[Accepted]:
        with self.lock:
            return list(self.got)


# --- replies -----------------------------------------------------------------------------------


def build_reply(sender: str, in_reply_to: str, text: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@example.com"
    msg["Subject"] = "Re: Bench"
    msg["Message-ID"] = make_msgid(domain="customer.example.com")
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = in_reply_to
    msg.set_content(text)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


class Client:
    """One SMTP session kept open (as an MTA keeps its connections); ``send`` returns
    (the time the final '.' was written, the inbound id the 250 names)."""

    def __init__(self, port: int) -> None:
        self.smtp = smtplib.SMTP("127.0.0.1", port, timeout=60)
        self.smtp.ehlo("bench.example.com")

    def send(self, sender: str, raw: bytes) -> tuple[float, int]:
        s = self.smtp
        code, resp = s.mail(sender)
        assert code == 250, resp
        code, resp = s.rcpt("support@example.com")
        assert code == 250, resp
        code, resp = s.docmd("DATA")
        assert code == 354, resp
        s.send(smtplib.quotedata(raw.decode("ascii")).encode("ascii") + b"\r\n.\r\n")
        end = time.time()
        code, resp = s.getreply()
        if code != 250:
            raise RuntimeError(f"the listener answered {code} {resp.decode(errors='replace')}")
        return end, int(resp.split()[-1])

    def close(self) -> None:
        try:
            self.smtp.quit()
        except smtplib.SMTPException:
            self.smtp.close()


def processed_count(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM inbound WHERE status='processed'").fetchone()[0])  # fmt: skip


def wait_processed(db: Path, n: int, timeout: float) -> float:
    """Poll the daemon's store (another process: no event to wait on) until ``n`` processed;
    the time it was seen."""
    deadline = time.monotonic() + timeout
    while processed_count(db) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {processed_count(db)} of {n} replies processed in {timeout}s")
        time.sleep(0.02)
    return time.time()


# --- the runs ----------------------------------------------------------------------------------


def ingest(
    port: int, db: Path, jobs: Sequence[tuple[str, bytes]], clients: int
) -> dict[str, float]:
    before = processed_count(db)
    queue = list(jobs)
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        c = Client(port)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    sender, raw = queue.pop()
                c.send(sender, raw)
        except Exception as exc:  # reported, the run fails
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            c.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = time.time()
    if errors:
        raise RuntimeError(errors[0])
    done = wait_processed(db, before + len(jobs), timeout=600)
    return {"accepted_s": accepted - t0, "done_s": done - t0}


def pipe_baseline(config: Path, jobs: Sequence[tuple[str, bytes]], parallel: int = 2) -> float:
    """``outagecomms inbound ingest -`` per message, ``parallel`` at a time: messages/s."""
    cmd = [*outagecomms_cmd(), "--config", str(config), "inbound", "ingest", "-"]
    env = cli_env()
    pending = list(jobs)
    t0 = time.time()
    running: list[subprocess.Popen[bytes]] = []
    while pending or running:
        while pending and len(running) < parallel:
            _, raw = pending.pop()
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, env=env)  # fmt: skip
            assert p.stdin is not None
            p.stdin.write(raw)
            p.stdin.close()
            running.append(p)
        p = running.pop(0)
        if p.wait() != 0:
            err = p.stderr.read().decode(errors="replace") if p.stderr else ""
            raise RuntimeError(f"inbound ingest exited {p.returncode}: {err[-400:]}")
    return len(jobs) / (time.time() - t0)


def paced(
    port: int, jobs: Sequence[tuple[int, str, bytes]], rate: float, clients: int
) -> dict[int, float]:
    """Send ``jobs`` (ref, sender, message) at ``rate``/s (job i at t0 + i/rate) over
    ``clients`` sessions; the DATA-end time of each by its ref."""
    out: dict[int, float] = {}
    lock = threading.Lock()
    errors: list[str] = []
    t0 = time.time() + 0.5

    def worker(k: int) -> None:
        c = Client(port)
        try:
            for i in range(k, len(jobs), clients):
                wait = t0 + i / rate - time.time()
                if wait > 0:
                    time.sleep(wait)  # pacing the load generator, not waiting for an event
                ref, sender, raw = jobs[i]
                end, _ = c.send(sender, raw)
                with lock:
                    out[ref] = end
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return out


def pct(xs: Sequence[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--replies", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pipe", type=int, default=40)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    print(machine_line())
    with bench_run("oc-inbound-", keep=args.keep) as run:
        work = run.workdir
        sink = TimestampingSink()
        sink_port, smtp_port = free_port(), free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
        controller.start()
        daemon: subprocess.Popen[bytes] | None = None
        try:
            csv_path, rows, source = write_customers(work, args.customers, 7)
            db = work / "bench.db"
            tail = (
                f'\n[daemon]\ncommander_channel = "email"\n'
                f'\n[inbound]\nsmtp = "127.0.0.1:{smtp_port}"\n'
            )
            config = work / "outagecomms.toml"
            config.write_text(
                config_text(f"sqlite:///{db}", "email", smtp_channel_toml(sink_port, 8), tail)
            )
            run_cli(config, "customers", "import", str(csv_path))
            tiers = sorted({r["tier"] for r in rows})
            tier_args = [a for t in tiers for a in ("--tier", t)]
            run_cli(config, "declare", "Bench", "--severity", "sev2", *tier_args, "--yes", "--json")
            first = [a for a in sink.snapshot() if ".r1@" in a.message_id]
            by_email = {a.rcpts[0]: a.message_id for a in first}
            if len(by_email) < args.customers * 0.9:
                raise RuntimeError(f"only {len(by_email)} first-round mails reached the sink")
            print(f"{args.customers} customers ({source}), incident INC-1: {len(first)} sent")

            daemon = subprocess.Popen(
                [*outagecomms_cmd(), "--config", str(config), "daemon"],
                stdout=(work / "daemon.log").open("wb"), stderr=subprocess.STDOUT, env=cli_env(),
            )  # fmt: skip
            wait_port(smtp_port, timeout=30)
            rnd = random.Random(7)
            emails = sorted(by_email)

            refs = iter(range(1, 10**9))

            def job(sender: str, texts: Sequence[str]) -> tuple[str, bytes]:
                _, who, raw = ref_job(sender, texts)
                return who, raw

            def ref_job(sender: str, texts: Sequence[str]) -> tuple[int, str, bytes]:
                ref = next(refs)
                text = f"{rnd.choice(texts)} (ref {ref})"
                return ref, sender, build_reply(sender, by_email[sender], text)

            # (a) ingest, mostly calm replies with a few angry ones
            jobs = [job(rnd.choice(emails), NEGATIVE if i % 10 == 0 else NEUTRAL)
                    for i in range(args.replies)]  # fmt: skip
            a = ingest(smtp_port, db, jobs, args.clients)
            rate = args.replies / a["done_s"]
            accept_rate = args.replies / a["accepted_s"]
            base_jobs = [job(rnd.choice(emails), NEUTRAL) for _ in range(args.pipe)]
            base = pipe_baseline(config, base_jobs)
            ok_a = rate >= TARGET_RATE
            print(
                f"(a) ingest via the SMTP listener, {args.clients} clients, {args.replies} replies: "
                f"{rate:.0f} replies/s stored+classified ({accept_rate:.0f}/s answered 250) "
                f"[target >= {TARGET_RATE:.0f}/s: {verdict(ok_a)}]; baseline `inbound ingest -` "
                f"(a process per message, 2 at a time): {base:.1f}/s -> {rate / base:.0f}x"
            )

            # (b) escalation latency at a steady rate, negative replies to account managers
            with_am = {r["email"]: r["account_manager"] for r in rows if r["account_manager"]}
            am_senders = sorted(e for e in with_am if e in by_email)
            if not am_senders:
                raise RuntimeError("no customer with an account manager got the first round")
            n = int(args.rate * args.seconds)
            bjobs = [ref_job(rnd.choice(am_senders), NEGATIVE) for _ in range(n)]
            ends = paced(smtp_port, bjobs, args.rate, clients=8)
            ams = set(with_am.values())
            deadline = time.monotonic() + 60
            lat: list[float] = []
            while time.monotonic() < deadline:
                got: dict[int, float] = {}
                for acc in sink.snapshot():
                    if acc.ref in ends and set(acc.rcpts) & ams:
                        got.setdefault(acc.ref, acc.at)
                if len(got) >= len(ends):
                    break
                time.sleep(0.1)
            lat = [got[i] - ends[i] for i in got]
            missing = len(ends) - len(lat)
            if not lat:
                raise RuntimeError("no escalation reached an account manager")
            p50, p99 = pct(lat, 50), pct(lat, 99)
            ok_b = p99 <= TARGET_P99 and missing == 0
            print(
                f"(b) escalation latency at {args.rate:.0f} replies/s for {args.seconds:.0f}s "
                f"({n} negative replies from {len(am_senders)} customers with an account "
                f"manager): p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max "
                f"{max(lat) * 1000:.0f} ms, {missing} never arrived "
                f"[target p99 <= {TARGET_P99:.0f} s: {verdict(ok_b)}]"
            )
            run.failed = not (ok_a and ok_b)
        finally:
            if daemon is not None:
                daemon.terminate()
                try:
                    daemon.wait(30)
                except subprocess.TimeoutExpired:
                    daemon.kill()
            controller.stop()
    return run.status


if __name__ == "__main__":
    sys.exit(main())
