"""Webhook fan-out benchmark: N signed webhook deliveries to a local nginx, compared with wrk.

usage: python benchmarks/webhook_fanout.py [--customers N] [--connections K] [--rate R]
                                           [--processes P] [--repeat R] [--profile]
                                           [--lease 5s] [--no-wrk] [--no-httpx] [--keep]

1. Starts nginx on a loopback port with a generated config in a temp dir: every request is
   answered ``200 ok`` and logged (time, status, Content-Length, path, ``Idempotency-Key``,
   signature, connection number) to a buffered access log read afterwards.
2. Generates an N-customer directory (``benchmarks/gen_customers.py N --seed 7``) and
   adds ``webhook_url = http://127.0.0.1:<port>/hooks/<id>``; the config has one channel,
   ``[channels.hooks] kind = "webhook"`` with ``secret_env``, ``max_connections = K`` and
   ``rate_per_second = R``, and the policy sends every tier to ``["hooks"]``.
3. Runs ``outagecomms declare "Bench" --severity sev2 --tier ... --yes --json`` as a real
   subprocess. Measured from its start: the incident committed (its ``declared`` event), first and last
   request logged by nginx (fan-out wall time), process exit. Verified: the store has N
   deliveries ``sent``, nginx logged exactly N POSTs, all 200, one per customer URL, with N
   distinct ``Idempotency-Key`` values and well-formed signatures.
4. In the same run, against a fresh nginx with the same config: ``wrk`` POSTing a real request
   of the same size with the same headers (the machine's practical ceiling, C on both ends),
   and ``raw_http_ceiling.py`` (httpx alone, prebuilt requests, same processes and connections,
   by default one one-connection client per connection like the channel; ``--httpx-pool
   shared`` for one client with a pool of K).

``--profile`` runs ``declare`` under ``py-spy record --format raw --subprocesses`` and prints
where the sender processes spend their time. ``--repeat R`` repeats steps 3-4 on a fresh copy of
the store and prints medians. Exit status is 0 unless a step broke (a command failed, a
timeout, a count that does not match).
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    PYTHON,
    DeclareProc,
    FanoutTimes,
    bench_run,
    cli_env,
    config_text,
    declare_cmd,
    ensure_tool,
    first_round_sent,
    fmt_rate,
    fmt_secs,
    free_port,
    machine_line,
    median,
    print_pyspy,
    py_spy,
    run_cli,
    tally_pyspy,
    tiers_of,
    wait_port,
    write_customers,
)

OUT = BENCH_DIR / "out"
SECRET_ENV = "OUTAGECOMMS_BENCH_WEBHOOK_SECRET"
SECRET = "bench-secret-shared-with-the-receiver"
# One line per request; a header nginx did not see is logged as "-".
LOG_FORMAT = (
    "$msec $status $content_length $request_method $uri $connection "
    "$http_idempotency_key $http_x_outagecomms_timestamp $http_x_outagecomms_signature"
)
NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format bench '{log_format}';
    access_log {dir}/access.log bench buffer=256k flush=200ms;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok"; }}
    }}
}}
"""
_SIGNATURE = re.compile(r"^v1=[0-9a-f]{64}$")


# --- the sink --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One request as nginx logged it."""

    at: float  # unix time, millisecond resolution
    status: int
    length: int
    method: str
    path: str
    connection: int
    key: str
    timestamp: str
    signature: str


class NginxSink:
    """nginx on 127.0.0.1:port answering every request with 200; the access log is the record.

    The master runs in the foreground (``daemon off``) as our child; ``stop`` shuts it down
    gracefully (SIGQUIT), which also flushes the buffered access log.
    """

    def __init__(self, exe: str, workdir: Path, port: int, workers: int = 1):
        self.exe = exe
        self.dir = workdir
        self.port = port
        self.workers = workers
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NginxSink:
        shutil.rmtree(self.dir, ignore_errors=True)
        (self.dir / "tmp").mkdir(parents=True)
        conf = self.dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                workers=self.workers, dir=self.dir, port=self.port, log_format=LOG_FORMAT
            )
        )
        err = self.dir / "error.log"
        cmd = [self.exe, "-p", str(self.dir), "-e", str(err), "-c", str(conf)]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        try:
            wait_port(self.port)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"nginx did not start: {err.read_text()[-600:]}") from None
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT)  # graceful: workers flush their log buffers
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def hits(self) -> list[Hit]:
        path = self.dir / "access.log"
        if not path.exists():
            return []
        out = []
        with path.open() as f:
            for line in f:
                p = line.split(" ")
                if len(p) != 9:
                    continue
                out.append(
                    Hit(
                        at=float(p[0]),
                        status=int(p[1]),
                        length=int(p[2]) if p[2].isdigit() else -1,
                        method=p[3],
                        path=p[4],
                        connection=int(p[5]),
                        key=p[6],
                        timestamp=p[7],
                        signature=p[8].rstrip("\n"),
                    )
                )
        return out

    def __enter__(self) -> NginxSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- setup -----------------------------------------------------------------------------------


def write_hook_customers(
    workdir: Path, n: int, seed: int, base: str
) -> tuple[Path, list[str], str]:
    """The generated directory with ``webhook_url`` pointing at the sink; tiers present."""
    path, rows, source = write_customers(workdir, n, seed)
    fields = [*rows[0].keys(), "webhook_url"] if rows else ["id", "webhook_url"]
    buf = io.StringIO()
    out = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    out.writeheader()
    for r in rows:
        r["webhook_url"] = f"{base}/hooks/{r['id']}"
        out.writerow(r)
    path.write_text(buf.getvalue())
    return path, tiers_of(rows), source


def write_config(
    workdir: Path, *, connections: int, rate: float, processes: int, lease: str = ""
) -> Path:
    dispatch = "".join(
        [
            f"processes = {processes}\n" if processes else "",
            f'lease = "{lease}"\n' if lease else "",
        ]
    )
    dispatch = f"\n[dispatch]\n{dispatch}" if dispatch else ""
    hooks = f"""\
[channels.hooks]
kind = "webhook"
secret_env = "{SECRET_ENV}"
timeout = 30
max_connections = {connections}
rate_per_second = {rate:g}
"""
    text = config_text(f"sqlite:///{workdir / 'bench.db'}", "hooks", hooks, dispatch)
    path = workdir / "outagecomms.toml"
    path.write_text(text)
    return path


def snapshot_store(workdir: Path, to: Path) -> None:
    to.mkdir(exist_ok=True)
    for f in workdir.glob("bench.db*"):
        shutil.copy2(f, to / f.name)


def restore_store(workdir: Path, frm: Path) -> None:
    for f in workdir.glob("bench.db*"):
        f.unlink()
    for f in frm.glob("bench.db*"):
        shutil.copy2(f, workdir / f.name)


# --- the fan-out -----------------------------------------------------------------------------


@dataclass(kw_only=True)
class FanoutRun(FanoutTimes):
    """``first`` and ``last``: the first and last requests nginx logged."""

    dispatch_done: float | None = None  # the --json document on stdout (after the dispatch)
    exited: float | None = None
    returncode: int | None = None
    cli_sent: int | None = None
    store_sent: int | None = None
    store_span: float | None = None  # last_sent_at - first_sent_at in the store
    requests: int = 0
    ok: int = 0
    keys: int = 0
    connections: int = 0
    body_bytes: float = 0.0
    problems: list[str] = field(default_factory=list)


def run_declare(
    config: Path, n: int, tiers: list[str], sink: NginxSink, timeout: float, profile: Path | None
) -> FanoutRun:
    res = FanoutRun(n=n)
    cmd = declare_cmd(config, tiers)
    if profile is not None:
        spy = py_spy()
        if spy is None:
            raise RuntimeError("--profile needs py-spy (pip install py-spy)")
        rec = [spy, "record", "-r", "250", "--subprocesses", "--format", "raw", "-o", str(profile)]
        cmd = [*rec, "--", *cmd]
    wall0 = time.time()
    decl = DeclareProc.start(cmd, cli_env())
    proc = decl.proc
    if not decl.wait_or_kill(timeout):
        res.problems.append(f"declare did not finish within {timeout:.0f} s (killed)")
    res.exited = time.monotonic() - decl.t0
    decl.join(5)
    time.sleep(0.3)  # nothing may arrive after the sender exited; give a stray request the chance
    sink.stop()  # flushes the access log
    res.returncode = proc.returncode
    res.committed = decl.marks.get("committed")
    res.dispatch_done = decl.marks.get("dispatch_done")
    if proc.returncode != 0:
        res.problems.append(
            f"declare exited {proc.returncode}: {' / '.join(decl.err_lines)[-600:]}"
        )
    try:
        out = decl.stdout
        if profile is not None:  # py-spy prints its own lines around the JSON
            out = out[out.find(b"{") : out.rfind(b"}") + 1]
        res.cli_sent = json.loads(out or b"{}").get("sent")
    except json.JSONDecodeError:
        res.problems.append("declare --json did not print one JSON object")
    check_hits(res, sink.hits(), wall0)
    return res


def check_hits(res: FanoutRun, hits: list[Hit], wall0: float) -> None:
    """What nginx saw must be exactly one signed POST per customer, each with its own key."""
    n = res.n
    res.requests = len(hits)
    res.ok = sum(1 for h in hits if h.status == 200 and h.method == "POST")
    res.keys = len({h.key for h in hits if h.key != "-"})
    res.connections = len({h.connection for h in hits})
    if hits:
        res.first = min(h.at for h in hits) - wall0
        res.last = max(h.at for h in hits) - wall0
        res.body_bytes = median([h.length for h in hits])
    if res.requests != n:
        res.problems.append(f"nginx logged {res.requests} requests, expected {n}")
    if res.ok != res.requests:
        res.problems.append(f"{res.requests - res.ok} requests were not a POST answered 200")
    if res.keys != n:
        res.problems.append(f"{res.keys} distinct Idempotency-Key values, expected {n}")
    paths = collections.Counter(h.path for h in hits)
    twice = sum(1 for c in paths.values() if c > 1)
    if len(paths) != n or twice:
        res.problems.append(f"{len(paths)} distinct customer URLs ({twice} hit more than once)")
    unsigned = sum(1 for h in hits if not (_SIGNATURE.match(h.signature) and h.timestamp.isdigit()))
    if unsigned:
        res.problems.append(f"{unsigned} requests without a well-formed timestamp and signature")


def verify_store(config: Path, res: FanoutRun) -> None:
    res.store_sent, res.store_span = first_round_sent(config)
    if res.store_sent != res.n:
        res.problems.append(f"store: rounds[0].sent = {res.store_sent}, expected {res.n}")
    if res.cli_sent is not None and res.cli_sent != res.n:
        res.problems.append(f"declare --json: sent = {res.cli_sent}, expected {res.n}")


def sample_request(config: Path, customer: str, base: str, body_bytes: float) -> dict[str, Any]:
    """A request like the ones outagecomms sent: the same document (from the store), signed
    the same way, with the same headers. Its size is checked against what nginx logged."""
    from outagecomms.channels.http_base import USER_AGENT
    from outagecomms.channels.webhook import idempotency_key, sign

    show = json.loads(run_cli(config, "show", "INC-1", "--json").stdout)
    one = json.loads(run_cli(config, "show", "INC-1", "--customer", customer, "--json").stdout)
    msg = one["customer"]["deliveries"][0]["message"]
    message_id = str(msg["message_id"])  # <oc.{delivery id}.inc-1.r1@domain>
    r0 = show["rounds"][0]
    doc = {
        "incident": show["incident"],
        "title": show["title"],
        "severity": show["severity"],
        "status": r0["status"],
        "kind": r0["kind"],
        "round": r0["round"],
        "message": r0["message"],
        "customer": customer,
        "components": show["components"],
        "regions": show["regions"],
        "started_at": show["started_at"].replace("Z", "+00:00"),
        "promised_next_by": (r0["promised_next_by"] or "").replace("Z", "+00:00") or None,
        "subject": msg["subject"],
        "text": msg["text"],
        "delivery_id": int(message_id.split(".")[1]),
    }
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    if body_bytes > len(body):  # names differ in length: pad to the median nginx logged
        doc["text"] += " " * int(body_bytes - len(body))
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    ts = int(time.time())
    headers = {  # what httpx sends for the channel, in the same order
        "Accept": "*/*",
        "Accept-Encoding": "gzip, deflate",
        "Connection": "keep-alive",
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": idempotency_key(message_id),
        "X-Outagecomms-Timestamp": str(ts),
        "X-Outagecomms-Signature": sign(SECRET.encode(), ts, body),
    }
    return {"url": f"{base}/hooks/{customer}", "body": body.decode(), "headers": headers}


# --- ceilings --------------------------------------------------------------------------------


def _lua(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRKJSON {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,'
    .. '"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(
    exe: str,
    sink: NginxSink,
    sample: dict[str, Any],
    workdir: Path,
    threads: int,
    conns: int,
    secs: float,
) -> dict[str, Any]:
    (workdir / "body.json").write_text(sample["body"])
    lua = [
        f'local f = assert(io.open({_lua(str(workdir / "body.json"))}, "rb"))',
        "wrk.body = f:read('*a')",
        "f:close()",
        'wrk.method = "POST"',
        *(f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in sample["headers"].items()),
        WRK_DONE,
    ]
    script = workdir / "post.lua"
    script.write_text("\n".join(lua))
    url = sample["url"].replace(sample["url"].split("/hooks/")[0], sink.base)
    cmd = [exe, f"-t{threads}", f"-c{max(conns, threads)}", f"-d{secs:g}s", "-s", str(script), url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk exited {proc.returncode}: {(proc.stderr or proc.stdout)[-600:]}")
    out: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    out["rate"] = out["requests"] / (out["duration_us"] / 1e6)
    out["threads"], out["connections"] = threads, max(conns, threads)
    out["body_bytes"] = len(sample["body"].encode())
    return out


def run_httpx_ceiling(
    sink: NginxSink,
    sample: dict[str, Any],
    workdir: Path,
    n: int,
    conns: int,
    procs: int,
    pool: str = "lanes",
) -> dict[str, Any]:
    path = workdir / "sample.json"
    path.write_text(json.dumps(sample))
    cmd = [PYTHON, str(BENCH_DIR / "raw_http_ceiling.py"), "--base", sink.base]
    cmd += ["--sample", str(path), "--count", str(n), "--connections", str(conns)]
    cmd += ["--processes", str(procs), "--pool", pool]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=cli_env())
    if proc.returncode != 0:
        raise RuntimeError(f"raw_http_ceiling.py exited {proc.returncode}: {proc.stderr[-600:]}")
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


# --- profile ---------------------------------------------------------------------------------

# Innermost matching frame wins: json.dumps called from webhook.py is "payload".
LAYERS: list[tuple[str, str]] = [
    ("encode_content", "store: content blob (json+zlib)"),
    ("json/", "webhook: JSON body (json.dumps)"),
    ("hmac.py", "webhook: HMAC signature"),
    ("webhook.py", "webhook: channel glue"),
    ("http_base.py", "http_base: channel glue"),
    ("h11/", "h11: HTTP/1.1 framing"),
    ("httpcore/", "httpcore: pool and connections"),
    ("httpx/", "httpx: client, Request/Response, URL, headers"),
    ("anyio/", "anyio (httpcore's I/O layer)"),
    ("sniffio/", "anyio (httpcore's I/O layer)"),
    (".j2", "render: Jinja templates"),
    ("jinja2/", "render: Jinja templates"),
    ("babel/", "render: babel (local times)"),
    ("rendering.py", "render: context + glue"),
    ("sqlalchemy/", "store: SQLAlchemy/SQLite"),
    ("sqlite3", "store: SQLAlchemy/SQLite"),
    ("outagecomms/store/", "store: SQLAlchemy/SQLite"),
    ("asyncio/", "event loop (asyncio)"),
    ("selectors.py", "event loop (asyncio)"),
    ("dispatch.py", "dispatch: own code"),
]
_DISPATCH = ("_send", "_worker_process", "dispatch_due", "dispatch_parallel")


def summarize_profile(raw: Path, n: int, rate: int = 250) -> None:
    def phase_of(names: list[str]) -> str:
        if any(d in names for d in _DISPATCH):
            return "dispatch (send every delivery)"
        if "plan_declare" in names:
            return "plan_declare (select, pre-flight)"
        if "commit_declare" in names:
            return "commit_declare (outbox write)"
        if "spawn_main" in " ".join(names):
            return "sender process start-up (spawn, imports)"
        return "start-up, imports, CLI, exit"

    hot = ("dispatch.py", "channels/", "rendering.py", "outagecomms/store/")
    print_pyspy(
        tally_pyspy(raw, phase_of, LAYERS, hot), rate, n, leaves=15, lines=20, what="outagecomms"
    )


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description="outagecomms webhook fan-out benchmark")
    ap.add_argument("--customers", type=int, default=20_000, help="audience size (20000)")
    ap.add_argument("--connections", type=int, default=32, help="max_connections (32)")
    ap.add_argument("--rate", type=float, default=0, help="rate_per_second per URL (0 = none)")
    ap.add_argument("--processes", type=int, default=0, help="[dispatch] processes (0 = auto)")
    ap.add_argument("--lease", default="", help='[dispatch] lease, e.g. "5s" (default 60s)')
    ap.add_argument("--repeat", type=int, default=1, help="runs; medians printed (1)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sink-workers", type=int, default=1, help="nginx worker_processes (1)")
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--wrk-connections", type=int, default=0, help="default: --connections")
    ap.add_argument("--wrk-seconds", type=float, default=5.0)
    ap.add_argument("--no-wrk", action="store_true")
    ap.add_argument("--no-httpx", action="store_true", help="skip the httpx-alone ceiling")
    ap.add_argument(
        "--httpx-pool",
        choices=("lanes", "shared"),
        default="lanes",
        help="httpx alone: a client per connection (as the channel) or one shared pool",
    )
    ap.add_argument("--profile", action="store_true", help="declare under py-spy (one run)")
    ap.add_argument("--timeout", type=float, default=0.0, help="per declare, s (default scaled)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    n, k = args.customers, args.connections
    timeout = args.timeout or max(120.0, n / 20)
    repeat = 1 if args.profile else max(1, args.repeat)

    nginx = ensure_tool("nginx", "nginx-light")
    wrk = None if args.no_wrk else ensure_tool("wrk", "wrk")
    if nginx is None:
        print("benchmark broke: nginx is not installed (apt-get install nginx-light)")
        return 1
    if wrk is None and not args.no_wrk:
        print("wrk is not installed (apt-get install wrk): skipping the wrk ceiling")

    os.environ[SECRET_ENV] = SECRET  # every outagecomms subprocess inherits it
    runs: list[FanoutRun] = []
    wrks: list[dict[str, Any]] = []
    raws: list[dict[str, Any]] = []
    with bench_run("oc-bench-webhook-", keep=args.keep) as run:
        workdir = run.workdir
        port = free_port()
        sink = NginxSink(nginx, workdir / "nginx", port, args.sink_workers)
        try:
            csv_path, tiers, source = write_hook_customers(workdir, n, args.seed, sink.base)
            config = write_config(
                workdir, connections=k, rate=args.rate, processes=args.processes, lease=args.lease
            )
            # as dispatch_parallel decides (batch_size 500, parallel_min 2000: the defaults)
            procs = min(args.processes or min(4, os.cpu_count() or 1), max(1, n // 500))
            procs = procs if n >= 2000 else 1
            print(
                f"outagecomms webhook fan-out: {n} customers; per sender process: max_connections"
                f" {k}, rate_per_second {args.rate:g}"
            )
            print(
                f"  [dispatch] processes {args.processes} (0 = one per core, at most 4): {procs}"
                f" sender process(es); lease {args.lease or '60s (default)'}"
            )
            print(f"machine: {machine_line()}; load average {os.getloadavg()[0]:.2f}")
            print(f"customers: {source} {n} --seed {args.seed} + webhook_url; work dir {workdir}")
            t = time.monotonic()
            run_cli(config, "customers", "import", str(csv_path), timeout=timeout)
            print(f"customers import: {time.monotonic() - t:.2f} s")
            pristine = workdir / "pristine"
            snapshot_store(workdir, pristine)
            first_customer = next(csv.DictReader(csv_path.open()))["id"]

            for i in range(repeat):
                if i:
                    restore_store(workdir, pristine)
                profile = None
                if args.profile:
                    OUT.mkdir(exist_ok=True)
                    profile = OUT / f"webhook-{n}.pyspy.txt"
                with sink:
                    res = run_declare(config, n, tiers, sink, timeout, profile)
                if res.returncode == 0:
                    verify_store(config, res)
                runs.append(res)
                print_run(i + 1, res, profile is not None)
                if res.returncode != 0:
                    break
                sample = sample_request(config, first_customer, sink.base, res.body_bytes)
                if wrk is not None:
                    with sink:
                        w = run_wrk(
                            wrk,
                            sink,
                            sample,
                            workdir,
                            args.wrk_threads,
                            args.wrk_connections or k,
                            args.wrk_seconds,
                        )
                    wrks.append(w)
                    print(
                        f"  wrk -t{w['threads']} -c{w['connections']} -d{args.wrk_seconds:g}s POST"
                        f" {w['body_bytes']} B: {w['requests']:,} requests -> {w['rate']:,.0f} req/s"
                        f" (p50 {w['p50_us'] / 1000:.2f} ms, p99 {w['p99_us'] / 1000:.2f} ms,"
                        f" errors {w['errors']}, non-2xx {w['non2xx']})"
                    )
                    if w["errors"] or w["non2xx"]:
                        res.problems.append(f"wrk: {w['errors']} errors, {w['non2xx']} non-2xx")
                if not args.no_httpx:
                    with sink:
                        raw = run_httpx_ceiling(sink, sample, workdir, n, k, procs, args.httpx_pool)
                    hits = len(sink.hits())
                    raws.append(raw)
                    print(
                        f"  httpx alone ({raw['processes']} process(es) x {k} connections,"
                        f" pool {raw['pool']}, prebuilt requests): {raw['sent']:,} in"
                        f" {raw['seconds']:.3f} s -> {raw['messages_per_second']:,.0f} req/s"
                        f" (nginx logged {hits:,})"
                    )
                    if raw["sent"] != n or hits != n:
                        res.problems.append(f"httpx ceiling: sent {raw['sent']}, nginx {hits}")
                if profile is not None:
                    print(f"\nraw stacks: {profile}")
                    summarize_profile(profile, n)

            print_summary(runs, wrks, raws, repeat)
            run.failed = any(r.problems for r in runs)
        finally:
            sink.stop()  # before the work dir (nginx's) goes
    return run.status


def print_run(i: int, r: FanoutRun, profiled: bool) -> None:
    note = "  (under py-spy: slower than without)" if profiled else ""
    print(f"\n[run {i}: outagecomms declare --yes --json, real subprocess]{note}")
    print(f"  incident committed after      {fmt_secs(r.committed)}   (event 'declared')")
    print(f"  first request at the sink     {fmt_secs(r.first)}")
    print(f"  last request at the sink      {fmt_secs(r.last)}   <- fan-out wall time")
    print(f"  dispatch finished (--json)    {fmt_secs(r.dispatch_done)}")
    print(f"  process exited after          {fmt_secs(r.exited)}")
    print(f"  end-to-end rate               {fmt_rate(r.rate)}   (N / wall time)")
    print(f"  dispatch-only rate            {fmt_rate(r.dispatch_rate)}   (commit -> last request)")
    print(f"  at the sink                   {fmt_rate(r.sink_rate)}   (first -> last request)")
    if r.store_span is not None:
        print(f"  store: first->last sent_at    {r.store_span:8.3f} s")
    print(
        f"  verified: store sent={r.store_sent}, declare --json sent={r.cli_sent}, nginx"
        f" {r.requests} requests ({r.ok} POST 200), {r.keys} distinct Idempotency-Keys,"
        f" {r.connections} TCP connections, body {r.body_bytes:.0f} B (median)"
    )
    for p in r.problems:
        print(f"  PROBLEM: {p}")


def print_summary(
    runs: list[FanoutRun], wrks: list[dict[str, Any]], raws: list[dict[str, Any]], repeat: int
) -> None:
    ok = [r for r in runs if r.rate is not None]
    if not ok:
        print("\n[summary] the fan-out did not complete")
        return
    which = f"median of {len(ok)}" if len(ok) > 1 else "one run"
    rate = median([r.rate for r in ok if r.rate])
    disp = median([r.dispatch_rate for r in ok if r.dispatch_rate])
    print(f"\n[summary, {which}]")
    print(f"  fan-out wall time {median([r.last or 0 for r in ok]):.2f} s for {ok[0].n:,}")
    print(f"  outagecomms end to end     {rate:9,.0f} msgs/s  (runs: {_list(r.rate for r in ok)})")
    print(
        f"  outagecomms dispatch only  {disp:9,.0f} msgs/s"
        f"  (runs: {_list(r.dispatch_rate for r in ok)})"
    )
    if raws:
        h = median([x["messages_per_second"] for x in raws])
        print(
            f"  httpx alone                {h:9,.0f} req/s   -> outagecomms dispatch is"
            f" {100 * disp / h:.0f}% of it"
        )
    if wrks:
        w = median([x["rate"] for x in wrks])
        print(
            f"  wrk (C) ceiling            {w:9,.0f} req/s   -> outagecomms end to end is"
            f" {100 * rate / w:.1f}%, dispatch only {100 * disp / w:.1f}%"
        )
    if len(runs) > 1:  # one run's problems were printed with it
        for i, r in enumerate(runs, 1):
            for p in r.problems:
                print(f"  PROBLEM (run {i}): {p}")


def _list(xs: Iterable[float | None]) -> str:
    return ", ".join(f"{x:,.0f}" for x in xs if x)


if __name__ == "__main__":
    sys.exit(main())
