"""Seeing replies at scale (issue 12, part C): how long the views take once an incident has had
many replies, and how fast the Twilio webhook takes texts.

- Builds a store (SQLite in a temp dir, or ``--store-url``) with the sample customers, one
  incident with three rounds, and ``--replies`` processed messages written through
  ``store.inbound.insert_message`` (mixed kinds and labels, a third escalated with an accepted
  escalation send).
- Times, as real subprocesses (what a commander waits for): ``show INC-1 --json``,
  ``watch --once`` and ``report INC-1 --format html``; in-process: one ``/metrics`` rendering
  and ``db prune``'s deletion of every message (``store.inbound.prune``).
- Posts ``--texts`` signed texts, one after another, to ``POST /inbound/twilio`` on a real
  uvicorn server on loopback (the daemon's ``serve_http``), each from an audience member's
  number: the whole path (signature, ``ingest_sms``: store, match, score, escalations queued),
  p50/p99 and texts per second.

    python benchmarks/seeing.py [--replies 20000] [--texts 300] [--store-url URL] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from outagecomms.app import App  # noqa: E402
from outagecomms.directory.importer import import_file  # noqa: E402
from outagecomms.incidents.lifecycle import commit_declare, plan_declare, post_update  # noqa: E402
from outagecomms.incidents.views import show_incident, watch_replies, watch_snapshot  # noqa: E402
from outagecomms.models import Selector  # noqa: E402
from outagecomms.recovery.report import build_report, render_html  # noqa: E402
from outagecomms.store import inbound as inbound_db  # noqa: E402
from outagecomms.store import incidents as incidents_db  # noqa: E402
from outagecomms.web.metrics import render_metrics  # noqa: E402
from outagecomms.web.server import serve_http  # noqa: E402
from outagecomms.web.twilio_inbound import signature  # noqa: E402

SAMPLE = REPO / "outagecomms" / "samples" / "customers.csv"
PUBLIC = "https://status.example.com"
TOKEN = "bench-auth-token"
TEXTS = ["Third outage this month!", "Thanks for the update", "Is there an ETA?", "ok"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(work: Path, store_url: str) -> Path:
    path = work / "outagecomms.toml"
    path.write_text(f"""\
[store]
url = "{store_url}"

[company]
name = "Bench Co"
status_page_url = "https://status.example.com"
support_email = "support@example.com"

[policy.default]
channels = {{ default = ["email"] }}

[channels.email]
kind = "maildir"
path = "{work / "maildir"}"
from = "Bench <support@example.com>"

[channels.sms]
kind = "twilio"
from = "+15550100999"
account_sid_env = "BENCH_TWILIO_SID"
auth_token_env = "BENCH_TWILIO_TOKEN"

[daemon]
public_url = "{PUBLIC}"
""")
    return path


def fill(app: App, replies: int) -> tuple[int, list[str]]:
    plan = plan_declare(
        app,
        title="Bench",
        severity="sev2",
        selector=Selector(tiers=("enterprise", "business", "standard")),
        message="Investigating.",
    )
    iid = commit_declare(app, plan, send=False).incident.id
    for n in range(2):
        post_update(app, iid, f"Update {n}", send=False)
    with app.store.read() as conn:
        customers = incidents_db.audience_customer_ids(conn, iid)
        rounds = [r.id for r in incidents_db.list_rounds(conn, iid)]
    rng = random.Random(7)
    now = datetime.now(UTC)
    kinds = ["reply"] * 8 + ["auto_reply", "bounce"]
    with app.store.write() as conn:
        for n in range(replies):
            kind = rng.choice(kinds)
            label = (
                rng.choice(["negative", "neutral", "positive", None]) if kind == "reply" else None
            )
            text = rng.choice(TEXTS) + f" #{n}"
            raw = text.encode()
            received = now - timedelta(seconds=replies - n)
            escalated = kind == "reply" and label == "negative"
            new_id, _ = inbound_db.insert_message(
                conn,
                {
                    "received_at": received, "source": "smtp", "channel": "email",
                    "digest": hashlib.sha256(raw).hexdigest(), "raw": raw, "size": len(raw),
                    "recipients": [], "status": "processed", "kind": kind,
                    "incident_id": iid, "round_id": rng.choice(rounds),
                    "customer_id": rng.choice(customers), "text": text, "label": label,
                    "sentiment": {"negative": -0.6, "neutral": 0.0, "positive": 0.6}.get(
                        label or ""
                    ),
                    "escalated_at": received + timedelta(seconds=1) if escalated else None,
                    "bounce": {"permanent": True, "status": "5.1.1", "recipients": ["x@y"]}
                    if kind == "bounce" else None,
                    "processed_at": received,
                },
            )  # fmt: skip
            if escalated:
                inbound_db.queue_send(
                    conn,
                    {
                        "inbound_id": new_id, "incident_id": iid, "customer_id": "",
                        "kind": "escalation", "channel": "email", "to": "am@example.com",
                        "created_at": received, "status": "sent",
                        "sent_at": received + timedelta(seconds=rng.uniform(0.2, 3)),
                        "dedup": f"e{new_id}",
                    },
                )  # fmt: skip
    return iid, customers


def timed_cli(config: Path, *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "outagecomms", "--config", str(config), *args],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
    )
    return time.perf_counter() - t0


def webhook(app: App, phones: list[str], texts: int) -> list[float]:
    port = free_port()
    state: dict[str, Any] = {}
    ready = threading.Event()

    async def main() -> None:
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = asyncio.Event()
        ready.set()
        await serve_http(app, f"127.0.0.1:{port}", state["stop"])

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(10)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    took = []
    with httpx.Client(base_url=base) as client:
        for n in range(texts):
            form = {
                "MessageSid": f"SM{n:032x}", "AccountSid": "AC" + "0" * 32,
                "From": phones[n % len(phones)], "To": "+15550100999",
                "Body": TEXTS[n % len(TEXTS)], "NumMedia": "0",
            }  # fmt: skip
            sig = signature(TOKEN, f"{PUBLIC}/inbound/twilio", {k: [v] for k, v in form.items()})
            t0 = time.perf_counter()
            res = client.post(
                "/inbound/twilio",
                content=urlencode(form),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": sig,
                },
            )
            took.append(time.perf_counter() - t0)
            if res.status_code != 200:
                raise SystemExit(f"text {n}: {res.status_code} {res.text}")
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(15)
    return took


def pct(values: list[float], p: int) -> float:
    s = sorted(values)
    return s[max(0, -(-p * len(s) // 100) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replies", type=int, default=20_000)
    ap.add_argument("--texts", type=int, default=300)
    ap.add_argument("--store-url")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oc-seeing-"))
    os.environ.update(
        OUTAGECOMMS_SECRET="bench-secret",
        BENCH_TWILIO_SID="AC" + "0" * 32,
        BENCH_TWILIO_TOKEN=TOKEN,
    )
    config = write_config(work, args.store_url or f"sqlite:///{work / 'bench.db'}")
    try:
        with App.open(config) as app:
            import_file(app, SAMPLE)
            t0 = time.perf_counter()
            iid, audience = fill(app, args.replies)
            print(f"stored {args.replies} messages in {time.perf_counter() - t0:.1f}s")
            for label, cmd in [
                ("list --json (baseline)", ("list", "--json")),
                ("show --json", ("show", f"INC-{iid}", "--json")),
                ("watch --once", ("watch", "--once")),
                ("report --format html", ("report", f"INC-{iid}", "--format", "html")),
            ]:
                print(f"{label:24} {timed_cli(config, *cmd):.2f}s (subprocess, with start-up)")
            for label, call in [
                ("show (library)", lambda: show_incident(app, iid)),
                ("watch frame (library)", lambda: watch_replies(app, watch_snapshot(app))),
                ("report html (library)", lambda: render_html(build_report(app, iid))),
            ]:
                t0 = time.perf_counter()
                call()
                print(f"{label:24} {time.perf_counter() - t0:.3f}s (in-process)")
            t0 = time.perf_counter()
            render_metrics(app)
            print(f"{'/metrics render':24} {time.perf_counter() - t0:.3f}s (in-process)")
            with open(SAMPLE, newline="") as fh:
                phones = [
                    r["phone"] for r in csv.DictReader(fh) if r["id"] in audience and r["phone"]
                ]
            took = webhook(app, phones, args.texts)
            print(
                f"POST /inbound/twilio x{args.texts}: p50 {statistics.median(took) * 1000:.1f} ms, "
                f"p99 {pct(took, 99) * 1000:.1f} ms, {len(took) / sum(took):.0f} texts/s "
                "(one client, sequential; signature + ingest_sms)"
            )
            t0 = time.perf_counter()
            with app.store.write() as conn:
                messages, sends = inbound_db.prune(conn, datetime.now(UTC) + timedelta(days=1))
            print(
                f"{'db prune (all)':24} {time.perf_counter() - t0:.2f}s: "
                f"{messages} messages, {sends} sends"
            )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
