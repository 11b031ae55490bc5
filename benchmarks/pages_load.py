"""The pages under load (issue 13): a customer's incident page and the public status page, each
under ``--clients`` concurrent clients for ``--seconds`` on loopback.

- Builds a store (SQLite in a temp dir) with the sample directory and one incident with some
  history, written through the library: the acknowledgement, three updates 20 minutes apart
  (by a clock that ends at the real now, so the page still promises its next update), and a
  reply from the page's box; every message sent to a Maildir.
- Serves it with the daemon's HTTP server (``outagecomms.web.server.serve_http``, uvicorn) in a
  process of its own, ``[web] max_connections`` raised above ``--clients``.
- Loads it from another process: ``wrk`` (Debian's; installed with apt-get when missing and
  root) or, without it, an asyncio httpx client holding ``--clients`` connections. In the same
  run, first the same load on ``GET /healthz``: the server's own ceiling on this machine (no
  store, no template), the baseline the pages are compared with.
- The customer page twice: one customer's page (what the issue asks: one page, many clients),
  then ``--pages`` customers' pages in turn (what a fan-out brings: everyone opens their own,
  so nothing one page computed serves the next).
- Then checks the page is not stale: an update posted through the library must be on the next
  ``GET`` (whatever the server keeps in memory).

Prints requests/s, p50/p99 latency and errors (non-2xx, socket errors) per target, and each
page's rate as a share of the baseline; ``--target`` (requests/s, default 300) says PASS/FAIL
for the customer page. Exits 1 only when a step broke or the freshness check failed.

    python benchmarks/pages_load.py [--seconds 30] [--clients 200] [--client wrk|httpx]
        [--pages 8] [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _common import PYTHON, bench_run, ensure_tool, free_port, machine_line, verdict

SECRET = "pages-load-benchmark-secret-0123456789"
HERE = Path(__file__).resolve()


# --- the world ---------------------------------------------------------------------------------


class MovingClock:
    """The library's clock while the history is written: it starts in the past and the
    script moves it on, so the last update is a few minutes old when the load starts."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def config_toml(workdir: Path, port: int, clients: int) -> str:
    return f"""\
[store]
url = "sqlite:///{workdir / "pages.db"}"

[company]
name = "Bench Co"
status_page_url = "http://127.0.0.1:{port}/status"
support_email = "support@example.com"

[policy.default]
update_every = "30m"
min_update_every = "1m"
channels = {{ default = ["email"] }}

[channels.email]
kind = "maildir"
path = "{workdir / "maildir"}"
from = "Bench Support <support@example.com>"

[components]
database = "Managed Database"
api = "Public API"

[daemon]
http = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"

[web]
max_connections = {clients + 100}
{status_page_toml()}"""


def status_page_toml() -> str:
    """``[status_page]`` when this checkout has the status page (its branch merged)."""
    from outagecomms.config import model

    return "\n[status_page]\nenabled = true\n" if hasattr(model, "StatusPageConfig") else ""


def build(workdir: Path, port: int, clients: int) -> tuple[Path, str, list[str]]:
    """The config, the incident's ref and every affected customer's page path (the first one's
    customer also wrote in the page's box)."""
    from outagecomms import App, sample_customers_file
    from outagecomms.pages.incident import customer_link, open_token, page_secret, submit_reply

    cfg = workdir / "outagecomms.toml"
    cfg.write_text(config_toml(workdir, port, clients))
    clock = MovingClock(datetime.now(UTC) - timedelta(minutes=65))
    with App.open(cfg, clock=clock) as app:
        app.import_customers(sample_customers_file())
        declared = app.declare(
            "Database errors",
            severity="sev2",
            components=["database", "api"],
            message="Writes fail for some customers; we are failing over.",
            started_at=clock.now - timedelta(minutes=10),
        )
        ref = str(declared.incident.ref)
        words = [
            "Failover started; reads work, writes queue.",
            "Failover done; replaying the queued writes.",
            "Replay at 80%; new writes succeed.",
        ]
        for i, text in enumerate(words):
            clock.now += timedelta(minutes=20)
            app.update(ref, text, status="identified" if i < 2 else "monitoring")
        incident_id = int(ref.split("-")[1])
        audience = _affected(app, incident_id)
        paths = [urlsplit(customer_link(app, incident_id, c)).path for c in audience]
        secret = page_secret(app)
        assert secret is not None
        token = paths[0].rsplit("/", 1)[1]
        submit_reply(
            app, open_token(app, secret, token), "Our checkout fails; when is it fixed?", "bench-1"
        )
    return cfg, ref, paths


def _affected(app: Any, incident_id: int) -> list[str]:
    from outagecomms.store import incidents as incidents_db

    with app.store.read() as conn:
        return sorted(incidents_db.audience_customer_ids(conn, incident_id))


# --- the server, in its own process ------------------------------------------------------------


def serve(config: str) -> int:
    """``--serve CONFIG``: the daemon's HTTP server alone, until SIGTERM."""
    from outagecomms import App
    from outagecomms.web.server import serve_http

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        with App.open(config) as app:
            await serve_http(app, app.config.daemon.http, stop)

    asyncio.run(main())
    return 0


def wait_up(base: str, timeout: float = 20) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server at {base} did not answer /healthz")
        time.sleep(0.1)


# --- the clients -------------------------------------------------------------------------------

_WRK_LAT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk_script(paths: list[str], where: Path) -> Path:
    """A wrk Lua script sending its requests to ``paths`` in turn."""
    listed = ", ".join(json.dumps(p) for p in paths)
    where.write_text(
        f"local paths = {{{listed}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\nend\n'
    )
    return where


def run_wrk(
    wrk: str, base: str, paths: list[str], clients: int, seconds: int, workdir: Path
) -> dict[str, Any]:
    threads = max(1, min(2, os.cpu_count() or 1))
    cmd = [wrk, f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    if len(paths) > 1:
        cmd += ["-s", str(wrk_script(paths, workdir / "paths.lua"))]
    url = base + paths[0]
    res = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60)
    out = res.stdout
    if res.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed: {res.stderr.strip() or out.strip()}")
    lat = {p: float(v) * _UNIT[u] for p, v, u in _WRK_LAT.findall(out)}
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    return {
        "requests": total,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": lat.get("50"),
        "p99_ms": lat.get("99"),
        "errors": errors,
    }


def client_main(urls: list[str], clients: int, seconds: int) -> int:
    """``--client-process URL...``: ``clients`` coroutines, each with its own connection, GET
    the ``urls`` in turn for ``seconds``; prints one JSON object (the fields of ``run_wrk``)."""
    import httpx

    async def main() -> dict[str, Any]:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        latencies: list[float] = []
        errors = 0
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            end = time.monotonic() + seconds

            async def one(k: int) -> None:
                nonlocal errors
                while time.monotonic() < end:
                    k += 1
                    t = time.perf_counter()
                    try:
                        r = await client.get(urls[k % len(urls)])
                        await r.aread()
                        if r.status_code >= 400:
                            errors += 1
                    except httpx.HTTPError:
                        errors += 1
                    latencies.append((time.perf_counter() - t) * 1000)

            t0 = time.monotonic()
            await asyncio.gather(*(one(k) for k in range(clients)))
            spent = time.monotonic() - t0
        latencies.sort()
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
        return {
            "requests": len(latencies),
            "rps": len(latencies) / spent,
            "p50_ms": q[49],
            "p99_ms": q[98],
            "errors": errors,
        }

    print(json.dumps(asyncio.run(main())))
    return 0


def load(
    wrk: str | None, base: str, paths: list[str], clients: int, seconds: int, workdir: Path
) -> dict[str, Any]:
    if wrk:
        return run_wrk(wrk, base, paths, clients, seconds, workdir)
    urls = [base + p for p in paths]
    cmd = [PYTHON, str(HERE), "--client-process", *urls, "--clients", str(clients)]
    res = subprocess.run(
        [*cmd, "--seconds", str(seconds)], capture_output=True, text=True, timeout=seconds + 120
    )
    if res.returncode != 0:
        raise RuntimeError(f"the httpx client failed: {res.stderr.strip()[-600:]}")
    return dict(json.loads(res.stdout))


def line(name: str, r: dict[str, Any], base: dict[str, Any] | None) -> str:
    share = f"  {100 * r['rps'] / base['rps']:5.1f}% of /healthz" if base and base is not r else ""
    return (
        f"  {name:<20} {r['rps']:9,.0f} req/s   p50 {r['p50_ms']:8.1f} ms   "
        f"p99 {r['p99_ms']:8.1f} ms   errors {r['errors']:>5} of {r['requests']:,}{share}"
    )


# --- the run -----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--client", choices=["wrk", "httpx"], default="wrk")
    ap.add_argument("--quick", action="store_true", help="5 s and 50 clients per target")
    ap.add_argument("--target", type=float, default=300.0, help="customer page, requests/s")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--serve", metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument(
        "--pages",
        type=int,
        default=8,
        help="also load this many customers' pages in turn (as after a fan-out); 0: not",
    )
    ap.add_argument("--client-process", metavar="URL", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve)
    if args.client_process:
        return client_main(args.client_process, args.clients, args.seconds)
    if args.quick:
        args.seconds, args.clients = 5, 50
    os.environ["OUTAGECOMMS_SECRET"] = SECRET
    wrk = ensure_tool("wrk", "wrk") if args.client == "wrk" else None
    kind = "wrk" if wrk else "httpx"
    print(machine_line())
    print(f"{args.clients} clients for {args.seconds} s per target, client: {kind}")
    with bench_run("oc-pages-load-", keep=args.keep) as run:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cfg, ref, paths = build(run.workdir, port, args.clients)
        path = paths[0]
        server = subprocess.Popen(
            [PYTHON, str(HERE), "--serve", str(cfg)], stdin=subprocess.DEVNULL
        )
        try:
            wait_up(base)
            import httpx

            many = paths[: max(1, args.pages)]
            targets = [("/healthz", ["/healthz"]), ("customer page", [path])]
            if args.pages > 1:
                targets.append((f"{len(many)} customers' pages", many))
            if httpx.get(f"{base}/status", timeout=10).status_code == 200:
                targets.append(("status page", ["/status"]))
            else:
                print("  (no /status in this checkout: the status page is not merged)")
            for _, ps in targets[1:]:  # warm: templates compiled, first queries planned
                for p in ps:
                    assert httpx.get(base + p, timeout=10).status_code == 200, p
            results: dict[str, dict[str, Any]] = {}
            for name, ps in targets:
                results[name] = load(wrk, base, ps, args.clients, args.seconds, run.workdir)
                print(line(name, results[name], results.get("/healthz")), flush=True)
            page = results["customer page"]
            print(
                f"customer page >= {args.target:,.0f} req/s: {verdict(page['rps'] >= args.target)}"
            )
            # fresh, not cached stale: an update is on the very next GET
            from outagecomms import App

            with App.open(cfg) as app:
                app.update(ref, "Fresh words after the load.", status="monitoring")
            fresh = httpx.get(base + path, timeout=10).text
            ok = "Fresh words after the load." in fresh
            print(f"an update is on the next GET of the page: {verdict(ok)}")
            run.failed = not ok
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return run.status


if __name__ == "__main__":
    sys.exit(main())
