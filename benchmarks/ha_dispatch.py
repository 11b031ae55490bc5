"""HA dispatch benchmark: messages/s of one email fan-out sent by 1 daemon vs 2 daemons sharing
one PostgreSQL store (every daemon dispatches; deliveries are claimed ``FOR UPDATE SKIP
LOCKED`` with a lease).

usage: python benchmarks/ha_dispatch.py [--customers 50000] [--daemons 1,2] [--connections 8]

For each daemon count, in the same run, on a fresh PostgreSQL database and a fresh sink:
1. imports the N-customer directory (``benchmarks/gen_customers.py N --seed 7``) with
   ``outagecomms customers import``; starts the daemons (``outagecomms daemon --http ...``) and
   waits until each answers ``/healthz``;
2. runs ``outagecomms declare "Bench" --severity sev2 --tier ... --queue-only --yes --json``
   (every customer selected; the CLI only queues) and takes the moment it reports the commit
   (its ``declared`` event, a JSON log line on stderr);
3. waits for the sink (postfix ``smtp-sink -c``, counting) to accept N messages and polls the
   store until N deliveries are ``sent``. Rate = N / (last message accepted - commit); the rate
   from the first to the last message is shown too (it leaves out the up to
   ``daemon.reconcile_every`` the daemons take to notice a round queued by another process);
4. checks nothing was sent twice: the store has exactly N deliveries ``sent`` and the sink saw
   exactly N messages (0.5 s after the last one), so each delivery was sent once.

What each daemon does: it sends from its own one process (``Daemon._dispatch_loop`` ->
``Dispatcher.run``: asyncio, ``max_connections`` SMTP connections). The extra sender processes
of ``dispatch.processes`` (``dispatch_parallel``) are only used by the CLI when it sends a
fan-out itself (``declare``/``update`` without ``--queue-only``), never by the daemon; the
script checks that no daemon has a child process while it sends. So 2 daemons = 2 sender
processes. On a 2-core machine they share the cores with PostgreSQL and the sink: the output
shows how busy the machine was and each daemon's CPU time.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    DeclareProc,
    FanoutTimes,
    Sink,
    declare_cmd,
    fmt_rate,
    free_port,
    machine_line,
    pick_sink,
    tiers_of,
    write_customers,
)
from _ha import (
    CpuMeter,
    DaemonProc,
    StoreReader,
    add_store_args,
    cli,
    fresh_database,
    ha_bench_run,
    ha_env,
    pg_backends,
    start_daemons,
    wait_until,
    write_pg_config,
)


@dataclass(kw_only=True)
class DispatchRun(FanoutTimes):
    daemons: int
    import_s: float = 0.0
    declare_exit: float | None = None
    sink_count: int = 0
    store_sent: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU s, declare start -> last message
    cpu_capacity: float = float("nan")  # wall time of that window x cores
    sent_by: dict[str, int] = field(default_factory=dict)  # daemon -> messages (its log)
    children: int = 0  # child processes seen under the daemons while sending
    problems: list[str] = field(default_factory=list)

    @property
    def busy(self) -> float:
        return 100 * self.cpu.get("whole machine", float("nan")) / self.cpu_capacity


def children_of(pid: int) -> int:
    try:
        return len(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        return 0


def one_run(
    k: int,
    args: argparse.Namespace,
    workdir: Path,
    customers: Path,
    tiers: list[str],
    sink_kind: str,
) -> DispatchRun:
    n = args.customers
    res = DispatchRun(daemons=k, n=n)
    run_dir = workdir / f"daemons{k}"
    timeout = args.timeout or max(300.0, n / 50)
    port = free_port()
    daemons: list[DaemonProc] = []
    with fresh_database(args.db, keep=args.keep) as url:
        cfg = write_pg_config(
            run_dir / "outagecomms.toml",
            store=url,
            smtp_port=port,
            max_connections=args.connections,
        )
        t = time.monotonic()
        cli(cfg, "customers", "import", str(customers), timeout=timeout)
        res.import_s = time.monotonic() - t
        reader = StoreReader(args.db)
        try:
            with Sink(sink_kind, port, args.connections * k) as sink:
                daemons = start_daemons(cfg, run_dir, k, [free_port() for _ in range(k)])
                meter = CpuMeter()
                sink_pid = sink._proc.pid if sink._proc else 0
                cmd = declare_cmd(cfg, tiers, queue_only=True)
                t0 = time.monotonic()
                meter.start([*(d.pid for d in daemons), sink_pid, *pg_backends(reader, args.db)])
                children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                decl = DeclareProc.start(cmd, ha_env(), t0)
                proc = decl.proc
                proc.wait(timeout)
                children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                res.declare_exit = time.monotonic() - t0
                decl.join(5)
                if proc.returncode != 0:
                    raise RuntimeError(f"declare exited {proc.returncode}: {decl.err_lines[-5:]}")
                out = decl.stdout
                if json.loads(out).get("queued") != n:
                    res.problems.append(f"declare queued {json.loads(out).get('queued')}, not {n}")
                res.committed = decl.marks.get("committed")
                deadline = t0 + timeout
                while sink.count < n and time.monotonic() < deadline:
                    sink.wait_for(n, 0.5)
                    res.children = max(res.children, *(children_of(d.pid) for d in daemons))
                backends = pg_backends(reader, args.db)
                meter.stop([*(d.pid for d in daemons), sink_pid, *backends])
                wait_until(
                    lambda: (
                        reader.delivery_counts().get("sent", 0) >= n or time.monotonic() > deadline
                    ),
                    timeout,
                    0.2,
                    "the store to show every delivery sent",
                )
                sink.settle(0.5)
                if sink.first_at is not None:
                    res.first = sink.first_at - t0
                if sink.last_at is not None and sink.count >= n:
                    res.last = sink.last_at - t0
                res.sink_count = sink.count
                for d in daemons:
                    res.cpu[f"daemon {d.name}"] = meter.of([d.pid])
                res.cpu["PostgreSQL backends of the daemons"] = meter.of(backends)
                res.cpu["smtp-sink"] = meter.of([sink_pid])
                res.cpu["declare CLI"] = (children1.ru_utime + children1.ru_stime) - (
                    children0.ru_utime + children0.ru_stime
                )
                res.cpu["whole machine"] = meter.machine_s
                res.cpu_capacity = meter.capacity_s
                for d in daemons:
                    code = d.stop()
                    if code != 0:
                        res.problems.append(f"daemon {d.name} exited {code}: {d.log_tail(300)}")
                    res.sent_by[d.name] = d.sent_from_log()
                res.store_sent = reader.delivery_counts().get("sent", 0)
        finally:
            for d in daemons:
                d.stop()
            reader.close()
    if res.store_sent != n:
        res.problems.append(f"store: {res.store_sent} deliveries sent, expected {n}")
    if res.sink_count != n:
        res.problems.append(f"sink saw {res.sink_count} messages, expected {n} (a resend?)")
    if res.children:
        res.problems.append(f"a daemon had {res.children} child processes while sending")
    return res


def _s(x: float | None) -> str:
    # one column narrower than fmt_secs' dash: the output has always been aligned like this
    return "       -" if x is None else f"{x:8.3f} s"


def main() -> int:
    ap = argparse.ArgumentParser(
        description="outagecomms: 1 vs 2 daemons dispatching on PostgreSQL"
    )
    ap.add_argument("--customers", type=int, default=50_000, help="audience size (50000)")
    ap.add_argument(
        "--daemons",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2],
        help="daemon counts to compare, in order (1,2)",
    )
    ap.add_argument("--connections", type=int, default=8, help="SMTP max_connections per daemon")
    ap.add_argument("--sink", choices=("smtp-sink", "aiosmtpd"), default="smtp-sink")
    ap.add_argument("--timeout", type=float, default=0.0, help="per run, s (default: scaled)")
    add_store_args(ap, db="bench_ha_dispatch")
    args = ap.parse_args()
    n = args.customers

    sink_kind = pick_sink(args.sink)
    runs: list[DispatchRun] = []
    with ha_bench_run("oc-bench-ha-dispatch-", args) as bench:
        workdir = bench.workdir
        customers, rows, source = write_customers(workdir, n, args.seed)
        tiers = tiers_of(rows)
        print(
            f"outagecomms HA dispatch: {n} customers by email, PostgreSQL store, sink {sink_kind}, "
            f"{args.connections} SMTP connections per daemon; daemons: "
            + " vs ".join(str(k) for k in args.daemons)
        )
        print(f"machine: {machine_line()}")
        print(f"customers: {source} {n} --seed {args.seed}; work dir {workdir}")
        print(
            "each daemon sends from its one process (Dispatcher.run, asyncio); "
            "dispatch.processes / dispatch_parallel are the CLI's, not the daemon's"
        )
        for k in args.daemons:
            res = one_run(k, args, workdir, customers, tiers, sink_kind)
            runs.append(res)
            _print_run(res, args)
        _summary(runs)
        bench.failed = any(r.problems for r in runs)
    return bench.status


def _print_run(r: DispatchRun, args: argparse.Namespace) -> None:
    print(f"\n[{r.daemons} daemon{'s' if r.daemons > 1 else ''}, {r.daemons} sender processes]")
    print(f"  customers import              {r.import_s:8.3f} s")
    print(f"  declare --queue-only committed{_s(r.committed)}   (from its start)")
    print(f"  first message accepted        {_s(r.first)}")
    print(f"  last message accepted         {_s(r.last)}")
    print(f"  rate, commit -> last          {fmt_rate(r.dispatch_rate)}")
    print(f"  rate, first -> last           {fmt_rate(r.sink_rate)}")
    for name, sent in r.sent_by.items():
        print(f"  daemon {name} sent               {sent:>8,}")
    print(f"  CPU s, declare start -> last message ({r.cpu_capacity:.1f} CPU s available):")
    ours = 0.0
    for name, cpu in r.cpu.items():
        if name == "whole machine":
            print(
                f"    everything else on the machine       {cpu - ours:6.1f}   (other users, this script, the kernel)"
            )
            print(f"    whole machine busy                   {cpu:6.1f}   ({r.busy:.0f} %)")
        else:
            ours += cpu
            print(f"    {name:<36} {cpu:6.1f}")
    print(
        f"  verified: store sent={r.store_sent}, sink saw {r.sink_count} (expected {r.n}); "
        f"child processes under the daemons: {r.children}"
    )
    for p in r.problems:
        print(f"  PROBLEM: {p}")


def _summary(runs: list[DispatchRun]) -> None:
    print("\n[summary]")
    for r in runs:
        print(
            f"  {r.daemons} daemon{'s' if r.daemons > 1 else ' '}: {fmt_rate(r.dispatch_rate):>14} "
            f"(commit -> last), {fmt_rate(r.sink_rate):>14} (first -> last), "
            f"machine {r.busy:.0f} % busy"
        )
    for r in runs:
        daemon_cpu = sum(v for k, v in r.cpu.items() if k.startswith("daemon "))
        print(
            f"  {r.daemons} daemon{'s' if r.daemons > 1 else ' '}: "
            f"{1000 * daemon_cpu / r.n:.2f} ms of daemon CPU per message; "
            f"others on the machine used "
            f"{r.cpu.get('whole machine', 0) - sum(v for k, v in r.cpu.items() if k != 'whole machine'):.1f} CPU s"
        )
    base = next((r for r in runs if r.daemons == 1), None)
    for r in runs:
        if base is not None and r is not base and r.dispatch_rate and base.dispatch_rate:
            print(
                f"  {r.daemons} vs 1: x{r.dispatch_rate / base.dispatch_rate:.2f}"
                " (commit -> last), "
                f"x{(r.sink_rate or 0) / (base.sink_rate or 1):.2f} (first -> last)"
            )
    ok = all(not r.problems for r in runs)
    print(f"  each delivery sent exactly once in every run: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
