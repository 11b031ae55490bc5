"""Where does the fan-out's CPU time go, per message?

usage: python benchmarks/profile_fanout.py [--customers N] [--connections K]
                                           [--mode pyspy|cprofile|micro|all]

- ``pyspy`` (needs ``pip install py-spy``): runs the real ``outagecomms declare ... --yes``
  under ``py-spy record --format raw`` against smtp-sink and attributes every sample of the
  sending phase to the innermost recognisable layer (Jinja, stdlib ``email``, aiosmtplib,
  SQLAlchemy, asyncio, ...). Sampling barely distorts the picture.
- ``cprofile``: ``declare --queue-only``, then ``asyncio.run(dispatch_due(app, incident_id=1))``
  in this process under cProfile; self time by layer and the inclusive time of the
  per-message steps. (Deterministic profiling inflates Python-heavy code; use for call counts.)
- ``cpu``: the same single sender without a profiler: CPU seconds per message (steady under
  load from other processes, unlike a wall-clock rate).
- ``micro``: each per-message step timed alone for the round's customers, no network:
  template context, render, MIME build, content blob; plus the SMTP send measured separately.

Raw outputs go to ``benchmarks/out/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    Sink,
    cli_env,
    declare_cmd,
    ensure_smtp_sink,
    free_port,
    layer_of,
    machine_line,
    print_pyspy,
    py_spy,
    run_cli,
    share_table,
    tally_pyspy,
    tier_args,
    tiers_of,
    write_config,
    write_customers,
)

OUT = BENCH_DIR / "out"

# Innermost matching frame wins: a stdlib ``re`` call made by the email package is MIME time.
LAYERS: list[tuple[str, str]] = [
    ("encode_content", "store: content blob (json+zlib)"),
    (".j2", "render: Jinja templates"),
    ("jinja2/", "render: Jinja templates"),
    ("babel/", "render: babel (local times)"),
    ("rendering.py", "render: context + glue"),
    ("email/", "MIME: stdlib email (EmailMessage)"),
    ("mime.py", "MIME: build_email glue"),
    ("aiosmtplib/", "SMTP: aiosmtplib"),
    ("sqlalchemy/", "store: SQLAlchemy/SQLite"),
    ("sqlite3", "store: SQLAlchemy/SQLite"),
    ("outagecomms/store/", "store: SQLAlchemy/SQLite"),
    ("asyncio/", "event loop (asyncio)"),
    ("selectors.py", "event loop (asyncio)"),
    ("channels/", "dispatch: channel glue"),
    ("dispatch.py", "dispatch: own code"),
]
STEPS = ("build_email", "render", "context", "sendmail", "encode_content", "record_results")


# --- setup ----------------------------------------------------------------------------------


def setup(n: int, k: int, port: int, workdir: Path, seed: int) -> tuple[Path, list[str]]:
    """The N-customer directory imported into a config sending to ``port``; the tiers present."""
    csv_path, rows, _ = write_customers(workdir, n, seed)
    config = write_config(workdir, smtp_port=port, max_connections=k)
    run_cli(config, "customers", "import", str(csv_path))
    return config, tiers_of(rows)


def queued_incident(n: int, k: int, seed: int, workdir: Path) -> tuple[Path, int]:
    """``setup`` and ``declare --queue-only`` for every customer: INC-1's round waits in the
    outbox. Returns the config and the SMTP port it sends to (no sink there yet)."""
    port = free_port()
    config, tiers = setup(n, k, port, workdir, seed)
    run_cli(
        config, "declare", "Bench", "--severity", "sev2", *tier_args(tiers), "--yes", "--queue-only"
    )
    return config, port


# --- py-spy ---------------------------------------------------------------------------------


def mode_pyspy(n: int, k: int, seed: int, rate: int) -> None:
    exe = py_spy()
    if exe is None:
        print("py-spy is not installed: pip install py-spy (skipping)")
        return
    workdir = Path(tempfile.mkdtemp(prefix="oc-prof-"))
    try:
        port = free_port()
        config, tiers = setup(n, k, port, workdir, seed)
        raw = OUT / f"fanout-{n}.pyspy.txt"
        decl = declare_cmd(config, tiers)
        with Sink("smtp-sink", port, k) as sink:
            t = time.monotonic()
            cmd = [exe, "record", "-r", str(rate), "--format", "raw", "-o", str(raw), "--", *decl]
            subprocess.run(cmd, check=True, capture_output=True, env=cli_env(), timeout=900)
            wall = time.monotonic() - t
            print(
                f"py-spy run: {sink.count}/{n} messages accepted, {wall:.1f} s under the profiler"
            )
        print(f"raw stacks: {raw}")
        summarize_pyspy(raw, n, rate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def summarize_pyspy(raw: Path, n: int, rate: int) -> None:
    def phase_of(names: list[str]) -> str:
        if "_send" in names:
            return "dispatch (send every delivery)"
        if "plan_declare" in names:
            return "plan_declare (select, pre-flight)"
        if "commit_declare" in names:
            return "commit_declare (outbox write)"
        return "start-up, imports, CLI, exit"

    hot = (
        "dispatch.py",
        "channels/",
        "mime.py",
        "rendering.py",
        "outagecomms/store/",
        "aiosmtplib/smtp.py",
    )
    print_pyspy(
        tally_pyspy(raw, phase_of, LAYERS, hot),
        rate,
        n,
        leaves=12,
        lines=22,
        what="outagecomms/aiosmtplib",
    )


# --- cProfile --------------------------------------------------------------------------------


def layers_from_cprofile(stats: dict[Any, Any]) -> collections.Counter[str]:
    """Self time per layer. A function of no layer (a builtin such as ``str.join``, stdlib ``re``)
    is charged to its callers' layers in proportion to the time each caller spent in it."""
    memo: dict[Any, dict[str, float]] = {}

    def dist(key: Any, depth: int = 0) -> dict[str, float]:
        if key in memo:
            return memo[key]
        file, _line, func = key
        direct = layer_of([f"{func} ({file})"], LAYERS)
        memo[key] = {direct: 1.0}  # also the guard against recursion cycles
        if direct != "other" or depth > 40 or key not in stats:
            return memo[key]
        callers: dict[Any, Any] = stats[key][4]
        weights = {ck: float(v[2]) or 1e-9 for ck, v in callers.items()}
        total = sum(weights.values())
        if not total:
            return memo[key]
        out: dict[str, float] = collections.defaultdict(float)
        for ck, w in weights.items():
            for layer, frac in dist(ck, depth + 1).items():
                out[layer] += frac * w / total
        memo[key] = dict(out)
        return memo[key]

    by_layer: collections.Counter[str] = collections.Counter()
    for key, (_cc, _nc, tt, _ct, _callers) in stats.items():
        for layer, frac in dist(key).items():
            by_layer[layer] += int(tt * frac * 1e6)
    return by_layer


def mode_cprofile(n: int, k: int, seed: int) -> None:
    prof = cProfile.Profile()
    timing: dict[str, float] = {}

    def profiled(send: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        prof.enable()
        try:
            return send()
        finally:
            prof.disable()
            timing["wall"] = time.perf_counter() - t

    summary, count = _queued_dispatch(n, k, seed, profiled)
    wall = timing["wall"]
    print(f"cProfile run: {summary.sent} sent, sink {count}, {wall:.1f} s under cProfile")
    out = OUT / f"dispatch-{n}.prof"
    prof.dump_stats(str(out))
    print(f"pstats file: {out}  (python -m pstats {out})")
    st: Any = pstats.Stats(prof)
    by_layer = layers_from_cprofile(st.stats)
    steps: dict[str, tuple[int, float]] = {}
    for (file, _line, func), (_cc, nc, _tt, ct, _callers) in st.stats.items():
        if func in STEPS and ("outagecomms" in file or "aiosmtplib" in file):
            steps[func] = (nc, ct)
    total = sum(by_layer.values())
    print(f"\nself time by layer (cProfile; builtins/stdlib charged to callers), per msg over {n}")
    share_table(by_layer, total, "us/msg", 1 / n)
    print("\ninclusive time of the per-message steps (coroutines: time while running)")
    for func in STEPS:
        if func in steps:
            nc, ct = steps[func]
            print(f"  {func:16s} calls {nc:7d}   {1e6 * ct / n:8.1f} us/msg")
    print("\ntop 15 by self time")
    st.sort_stats("tottime").print_stats(15)


def mode_cpu(n: int, k: int, seed: int) -> None:
    """CPU seconds per message of one sender process draining the outbox (no profiler).
    Unlike a wall-clock rate this hardly moves when other work shares the machine."""
    timing: dict[str, float] = {}

    def timed(send: Callable[[], Any]) -> Any:
        t, c = time.perf_counter(), time.process_time()
        try:
            return send()
        finally:
            timing["cpu"], timing["wall"] = time.process_time() - c, time.perf_counter() - t

    summary, count = _queued_dispatch(n, k, seed, timed)
    print(f"one sender process: {summary.sent} sent, sink saw {count}")
    print(
        f"  CPU  {1e6 * timing['cpu'] / n:8.1f} us/msg  -> {n / timing['cpu']:8,.0f} msgs/s per core"
    )
    print(f"  wall {1e6 * timing['wall'] / n:8.1f} us/msg  -> {n / timing['wall']:8,.0f} msgs/s")


def _queued_dispatch(
    n: int, k: int, seed: int, around: Callable[[Callable[[], Any]], Any]
) -> tuple[Any, int]:
    """``declare --queue-only`` for n customers, then drain the outbox in this process to a
    fresh smtp-sink, the send wrapped by ``around``; returns (summary, sink count)."""
    from outagecomms.app import App
    from outagecomms.outbox.senders import dispatch_due

    workdir = Path(tempfile.mkdtemp(prefix="oc-prof-"))
    try:
        config, port = queued_incident(n, k, seed, workdir)
        app = App.open(config)
        with Sink("smtp-sink", port, k) as sink:
            summary = around(lambda: asyncio.run(dispatch_due(app, incident_id=1)))
            sink.wait_for(n, 2)
        app.close()
        return summary, sink.count
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- micro -------------------------------------------------------------------------------------


def mode_micro(n: int, k: int, seed: int) -> None:
    from outagecomms.app import App
    from outagecomms.channels.base import OutboundMessage
    from outagecomms.rendering.mime import build_email
    from outagecomms.store import customers as customers_db
    from outagecomms.store import incidents as incidents_db
    from outagecomms.store import outbox as outbox_db

    workdir = Path(tempfile.mkdtemp(prefix="oc-prof-"))
    try:
        config, port = queued_incident(n, k, seed, workdir)
        app = App.open(config)
        with app.store.read() as conn:
            inc = incidents_db.get_incident(conn, 1).incident
            rnd = next(iter(incidents_db.get_rounds(conn, [1]).values()))
            customers = customers_db.all_customers(conn)
        r = app.renderer
        sender = "Bench Support <support@example.com>"
        timings: dict[str, float] = {}

        def timed(name: str, fn: Any, items: list[Any]) -> list[Any]:
            t = time.perf_counter()
            out = [fn(x) for x in items]
            timings[name] = (time.perf_counter() - t) / len(items)
            return out

        ctxs = timed(
            "Renderer.context",
            lambda c: r.context(incident=inc, round=rnd, customer=c),
            customers,
        )
        rendered = timed(
            "Renderer.render (3 templates)", lambda x: r.render(rnd.kind, "email", x), ctxs
        )
        msgs = [
            OutboundMessage(
                delivery_id=i,
                to=c.email,
                to_name=c.name,
                subject=x.subject,
                text=x.text,
                html=x.html,
                message_id=f"<oc.{i}.inc-1.r1@example.com>",
                headers={"X-Outagecomms-Incident": "INC-1", "X-Outagecomms-Customer": c.id},
            )
            for i, (c, x) in enumerate(zip(customers, rendered, strict=True))
        ]
        datas = timed(
            "mime.build_email",
            lambda m: build_email(m, from_addr=sender, reply_to="support@example.com"),
            msgs,
        )
        timed(
            "outbox.encode_content",
            lambda m: outbox_db.encode_content(
                {"to": m.to, "subject": m.subject, "text": m.text, "html": m.html}
            ),
            msgs,
        )
        app.close()

        import aiosmtplib

        async def send_all() -> float:
            q = list(zip(customers, datas, strict=True))
            t = time.perf_counter()

            async def worker() -> None:
                c = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
                await c.connect()
                while q:
                    cust, data = q.pop()
                    await c.sendmail("support@example.com", [cust.email], data)
                await c.quit()

            await asyncio.gather(*(worker() for _ in range(k)))
            return (time.perf_counter() - t) / len(customers)

        with Sink("smtp-sink", port, k):
            timings[f"aiosmtplib sendmail ({k} conns, wall)"] = asyncio.run(send_all())
        print(f"\nper-message cost of each step, alone (mean over {n} customers)")
        total = 0.0
        for name, sec in timings.items():
            total += sec
            print(f"  {name:40s} {1e6 * sec:8.1f} us/msg")
        print(f"  {'sum':40s} {1e6 * total:8.1f} us/msg  -> ~{1 / total:,.0f} msgs/s single core")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description="profile the outagecomms email fan-out")
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--mode", choices=("pyspy", "cprofile", "micro", "cpu", "all"), default="all")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second (250)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if ensure_smtp_sink() is None:
        print("profile_fanout.py needs postfix's smtp-sink", file=sys.stderr)
        return 1
    OUT.mkdir(exist_ok=True)
    print(f"profiling the fan-out: {args.customers} customers, {args.connections} connections")
    print(f"machine: {machine_line()}")
    modes = ("micro", "pyspy", "cprofile") if args.mode == "all" else (args.mode,)
    for m in modes:
        print(f"\n===== {m} =====")
        if m == "pyspy":
            mode_pyspy(args.customers, args.connections, args.seed, args.rate)
        elif m == "cprofile":
            mode_cprofile(args.customers, args.connections, args.seed)
        elif m == "cpu":
            mode_cpu(args.customers, args.connections, args.seed)
        else:
            mode_micro(args.customers, args.connections, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
