"""Fan-out benchmark: how fast does ``outagecomms declare`` acknowledge a large audience by email?

usage: python benchmarks/fanout.py [--customers N] [--connections K] [--sink smtp-sink|aiosmtpd]

1. Generates an N-customer directory (``benchmarks/gen_customers.py N --seed 7``),
   writes a throwaway config (SQLite in a temp dir, ``[channels.email] kind = "smtp"`` to a
   local sink with ``max_connections = K``) and runs ``outagecomms customers import``.
2. Starts the sink and runs ``outagecomms declare "Bench" --severity sev2 --tier ... --yes
   --json`` (every customer selected) as a real subprocess. Measured: wall time from starting
   ``declare`` to the sink accepting the last message (-> messages/s), the time until the
   incident is committed (the ``declared`` event, a JSON log line on stderr), first message, process
   exit. Verifies that the store has N deliveries ``sent`` and the sink saw N messages.
3. In the same run, three references against a fresh sink of the same kind:
   - Postfix's ``smtp-source`` (C) blasting N messages of the same size over K sessions: the
     machine's practical limit; we report the fraction of it we reach;
   - the raw aiosmtplib ceiling: ``raw_ceiling.py`` sends N prebuilt messages over K reused
     connections;
   - Apprise sending the same personalised messages, one ``notify()`` per customer
     (``apprise_baseline.py``), on a sample of ``--apprise-n`` customers (it manages tens of
     messages per second, so 20,000 would take minutes).

Prints PASS/FAIL against the targets (default >= 3,000 messages/s and >= 50x Apprise). Exit status is 0 unless a
step broke (a command failed, a timeout, a count that does not match).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    PYTHON,
    DeclareProc,
    FanoutTimes,
    Sink,
    bench_run,
    cli_env,
    declare_cmd,
    first_round_sent,
    fmt_rate,
    fmt_secs,
    free_port,
    machine_line,
    pick_sink,
    run_cli,
    tiers_of,
    verdict,
    write_config,
    write_customers,
)


@dataclass(kw_only=True)
class FanoutResult(FanoutTimes):
    dispatch_done: float | None = None  # the --json document on stdout (after the dispatch)
    exited: float | None = None
    returncode: int | None = None
    sink_count: int = 0
    store_sent: int | None = None
    cli_sent: int | None = None
    store_span: float | None = None  # rounds[0].last_sent_at - first_sent_at (store clock)
    stderr: str = ""
    problems: list[str] = field(default_factory=list)


def run_declare(config: Path, n: int, tiers: list[str], sink: Sink, timeout: float) -> FanoutResult:
    res = FanoutResult(n=n)
    decl = DeclareProc.start(declare_cmd(config, tiers), cli_env())
    t0, proc = decl.t0, decl.proc
    deadline = t0 + timeout
    while sink.count < n and proc.poll() is None and time.monotonic() < deadline:
        sink.wait_for(n, 0.2)
    if not decl.wait_or_kill(max(1.0, deadline - time.monotonic())):
        res.problems.append(f"declare did not finish within {timeout:.0f} s (killed)")
    res.exited = time.monotonic() - t0
    sink.wait_for(n, 1.0)
    sink.settle(0.3)  # anything sent twice would show up here
    decl.join(5)
    res.returncode = proc.returncode
    res.stderr = "\n".join(decl.err_lines)
    res.committed = decl.marks.get("committed")
    res.dispatch_done = decl.marks.get("dispatch_done")
    res.sink_count = sink.count
    if sink.first_at is not None:
        res.first = sink.first_at - t0
    if sink.count >= n and sink.last_at is not None:
        res.last = sink.last_at - t0
    if proc.returncode != 0:
        res.problems.append(f"declare exited {proc.returncode}: {res.stderr[-600:]}")
    try:
        data = json.loads(decl.stdout or b"{}")
        res.cli_sent = data.get("sent")
    except json.JSONDecodeError:
        res.problems.append("declare --json did not print one JSON object")
    return res


def verify(config: Path, res: FanoutResult, workdir: Path, first_customer: str) -> Path | None:
    """Check the store and the sink agree on N; save one real message as the ceiling's sample."""
    res.store_sent, res.store_span = first_round_sent(config)
    if res.store_sent != res.n:
        res.problems.append(f"store: rounds[0].sent = {res.store_sent}, expected {res.n}")
    if res.sink_count != res.n:
        res.problems.append(f"sink saw {res.sink_count} messages, expected {res.n}")
    sample = None
    try:
        one = json.loads(
            run_cli(config, "show", "INC-1", "--customer", first_customer, "--json").stdout
        )
        msg = one["customer"]["deliveries"][0]["message"]
        sample = workdir / "sample.json"
        sample.write_text(json.dumps({k: msg.get(k) for k in ("subject", "text", "html")}))
    except (KeyError, IndexError, TypeError, RuntimeError):
        sample = None
    return sample


def run_ceiling(
    n: int, connections: int, sink_kind: str, sample: Path | None, timeout: float
) -> dict[str, Any]:
    port = free_port()
    with Sink(sink_kind, port, connections) as sink:
        cmd = [PYTHON, str(BENCH_DIR / "raw_ceiling.py"), "--port", str(port)]
        cmd += ["--count", str(n), "--connections", str(connections)]
        if sample is not None:
            cmd += ["--sample", str(sample)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        sink.wait_for(n, 2.0)
        sink.settle(0.3)
        if proc.returncode != 0:
            raise RuntimeError(f"raw_ceiling.py exited {proc.returncode}: {proc.stderr[-600:]}")
        out: dict[str, Any] = json.loads(proc.stdout)
        out["sink_count"] = sink.count
        if sink.first_at is not None and sink.last_at is not None:
            out["sink_span"] = sink.last_at - sink.first_at
    return out


def run_smtp_source(n: int, connections: int, size: int, timeout: float) -> dict[str, Any]:
    """Postfix's smtp-source against a fresh smtp-sink: N messages of ``size`` bytes over
    ``connections`` parallel sessions, each reusing its connection (-d)."""
    source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    port = free_port()
    with Sink("smtp-sink", port, connections) as sink:
        cmd = [source, "-d", "-s", str(connections), "-m", str(n), "-l", str(size)]
        cmd += ["-f", "support@example.com", "-t", "ops@example.com", f"127.0.0.1:{port}"]
        t = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        seconds = time.monotonic() - t
        sink.wait_for(n, 2.0)
        if proc.returncode != 0:
            raise RuntimeError(f"smtp-source exited {proc.returncode}: {proc.stderr[-600:]}")
        return {"seconds": seconds, "sink_count": sink.count, "rate": n / seconds}


def run_apprise(n: int) -> float | None:
    """Apprise's rate on ``n`` personalised messages to a fresh aiosmtpd sink (None: Apprise is
    not installed: ``pip install 'outagecomms[apprise]'``)."""
    try:
        import apprise  # noqa: F401
    except ImportError:
        return None
    from apprise_baseline import apprise_rate

    port = free_port()
    with Sink("aiosmtpd", port, 1) as sink:
        rate = apprise_rate("127.0.0.1", port, n, from_addr="support@example.com")
        sink.wait_for(n, 5.0)
        if sink.count != n:
            raise RuntimeError(f"Apprise: the sink got {sink.count} messages, expected {n}")
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description="outagecomms email fan-out benchmark")
    ap.add_argument("--customers", type=int, default=20_000, help="audience size (default 20000)")
    ap.add_argument("--connections", type=int, default=8, help="SMTP max_connections (default 8)")
    ap.add_argument("--sink", choices=("smtp-sink", "aiosmtpd"), default="smtp-sink")
    ap.add_argument("--target", type=float, default=3000.0, help="messages/s to pass (3000)")
    ap.add_argument("--apprise-x", type=float, default=50.0, help="times Apprise to pass (50)")
    ap.add_argument("--apprise-n", type=int, default=300, help="Apprise sample size (300)")
    ap.add_argument("--no-apprise", action="store_true", help="skip the Apprise comparison")
    ap.add_argument("--no-source", action="store_true", help="skip smtp-source")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timeout", type=float, default=0.0, help="per run, s (default: scaled)")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the raw aiosmtplib ceiling")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (config, db)")
    args = ap.parse_args()
    n, k = args.customers, args.connections
    timeout = args.timeout or max(120.0, n / 50)

    sink_kind = pick_sink(args.sink)

    with bench_run("oc-bench-fanout-", keep=args.keep) as run:
        workdir = run.workdir
        csv_path, rows, source = write_customers(workdir, n, args.seed)
        tiers = tiers_of(rows)
        port = free_port()
        config = write_config(workdir, smtp_port=port, max_connections=k)

        print(f"outagecomms fan-out: {n} customers, {k} SMTP connections, sink {sink_kind}")
        print(f"machine: {machine_line()}")
        print(f"customers: {source} {n} --seed {args.seed}; work dir {workdir}")
        t = time.monotonic()
        run_cli(config, "customers", "import", str(csv_path), timeout=timeout)
        print(f"customers import: {time.monotonic() - t:.2f} s")

        with Sink(sink_kind, port, k) as sink:
            res = run_declare(config, n, tiers, sink, timeout)
        sample = verify(config, res, workdir, rows[0]["id"]) if res.returncode == 0 else None

        print("\n[outagecomms declare --yes --json, real subprocess]")
        print(f"  incident committed after      {fmt_secs(res.committed)}   (event 'declared')")
        print(f"  first message accepted after  {fmt_secs(res.first)}")
        print(f"  last message accepted after   {fmt_secs(res.last)}   <- fan-out wall time")
        print(f"  dispatch finished (--json)    {fmt_secs(res.dispatch_done)}")
        print(f"  process exited after          {fmt_secs(res.exited)}")
        print(f"  fan-out rate                  {fmt_rate(res.rate)}   ({n} / wall time)")
        print(
            f"  dispatch-only rate            {fmt_rate(res.dispatch_rate)}   (commit -> last accepted)"
        )
        if res.store_span is not None:
            print(f"  store: first->last sent_at    {res.store_span:.3f} s")
        print(
            f"  verified: store rounds[0].sent={res.store_sent}, declare --json sent={res.cli_sent},"
            f" sink saw {res.sink_count} (expected {n})"
        )

        ceiling: dict[str, Any] | None = None
        if not args.no_ceiling:
            ceiling = run_ceiling(n, k, sink_kind, sample, timeout)
            print("\n[raw ceiling: prebuilt messages, aiosmtplib only, same sink and connections]")
            print(
                f"  {ceiling['sent']} messages of {ceiling['message_bytes']} bytes in"
                f" {ceiling['seconds']:.3f} s -> {fmt_rate(ceiling['messages_per_second'])}"
                f" (sink saw {ceiling['sink_count']})"
            )
            if ceiling["sink_count"] != n or ceiling["sent"] != n:
                res.problems.append(
                    f"raw ceiling: sent {ceiling['sent']}, sink {ceiling['sink_count']}"
                )

        source: dict[str, Any] | None = None
        if not args.no_source and sink_kind == "smtp-sink":
            size = ceiling["message_bytes"] if ceiling else 2000
            source = run_smtp_source(n, k, size, timeout)
            print("\n[Postfix smtp-source (C), same sink kind, sessions and message size]")
            print(
                f"  {n} messages in {source['seconds']:.3f} s -> {fmt_rate(source['rate'])}"
                f" (sink saw {source['sink_count']})"
            )
        apprise_r: float | None = None
        if not args.no_apprise:
            apprise_r = run_apprise(args.apprise_n)
            print(f"\n[Apprise, one notify() per personalised message, {args.apprise_n} sampled]")
            print(f"  {fmt_rate(apprise_r)}" if apprise_r else "  apprise not installed: skipped")

        print("\n[summary]")
        if res.rate is not None:
            print(f"  outagecomms fan-out: {res.last:.2f} s for {n} -> {res.rate:,.0f} msgs/s")
            if ceiling:
                pct = 100 * res.rate / ceiling["messages_per_second"]
                print(
                    f"  raw aiosmtplib ceiling: {ceiling['messages_per_second']:,.0f} msgs/s;"
                    f" outagecomms reaches {pct:.0f}% of it"
                )
            if source:
                print(
                    f"  smtp-source: {source['rate']:,.0f} msgs/s; outagecomms reaches"
                    f" {100 * res.rate / source['rate']:.0f}% of the machine's practical limit"
                )
            print(
                f"  target >= {args.target:,.0f} msgs/s: {verdict(res.rate >= args.target)}"
                f" ({res.rate:,.0f} msgs/s)"
            )
            if apprise_r:
                times = res.rate / apprise_r
                print(
                    f"  target >= {args.apprise_x:.0f}x Apprise: {verdict(times >= args.apprise_x)}"
                    f" ({times:,.0f}x: {res.rate:,.0f} vs {apprise_r:,.1f} msgs/s)"
                )
        else:
            print(f"  target >= {args.target:,.0f} msgs/s: FAIL (fan-out did not complete)")
        for p in res.problems:
            print(f"  PROBLEM: {p}")
        run.failed = bool(res.problems)
    return run.status


if __name__ == "__main__":
    sys.exit(main())
