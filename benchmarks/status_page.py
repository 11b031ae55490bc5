"""The public status page under load: 200 concurrent clients for 30 s on loopback.

Writes a directory of ``--customers`` (``gen_customers.py``, seed 7), records ``--incidents``
incidents over the last weeks (each with an update, all but one resolved), then serves the
daemon's web app (``serve_http``, uvicorn) in a child process, so the clients (asyncio, in
this process) do not share its interpreter. Every client GETs ``--path`` in a loop
over its own kept-alive connection (plain asyncio streams); every answer must be a 200.

Reported: requests/s and the latency percentiles (p50, p99), with the page's data read from
the store at most once per ``[status_page] cache`` (default ``5s``) and the HTML rendered
once per read. Target: p99 under ``--target-ms`` (default 500 ms) at 200 clients. On a
shared 2-core machine the client itself costs as much CPU as the server: the numbers are a
floor.

    python benchmarks/status_page.py [--clients 200] [--seconds 30] [--customers 10000]
        [--incidents 20] [--path /status] [--cache 5s] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from pathlib import Path

import httpx
from _common import bench_run, free_port, machine_line, verdict, wait_port, write_customers

SECRET = "status-page-benchmark-secret-0123456789"


def config(workdir: Path, port: int, cache: str) -> Path:
    path = workdir / "outagecomms.toml"
    path.write_text(
        f"""
[store]
url = "sqlite:///{workdir / "store.db"}"

[company]
name = "Bench Co"

[channels.email]
kind = "maildir"
path = "{workdir / "maildir"}"
from = "Bench <bench@example.com>"

[daemon]
http = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"

[web]
max_connections = 1000  # the default, 100, would turn half of 200 clients away

[status_page]
enabled = true
cache = "{cache}"
"""
    )
    return path


def populate(cfg: Path, customers: Path, incidents: int) -> None:
    from outagecomms import App

    with App.open(cfg) as app:
        app.import_customers(customers)
        comps = ("database", "api", "auth", "queue", "backups")
        for n in range(incidents):
            started = (n + 1) * 30
            inc = app.declare(
                f"Incident {n}", severity=("sev1", "sev2", "sev3")[n % 3],
                components=[comps[n % len(comps)]], started_at=f"-{started}h",
                new=True, send=False,
            )  # fmt: skip
            app.update(inc.incident, "Cause identified.", status="identified", send=False)
            if n:
                app.resolve(inc.incident, "Fixed.", resolved_at=f"-{started - 2}h", send=False)


def serve(cfg: str, port: int) -> None:
    os.environ["OUTAGECOMMS_SECRET"] = SECRET
    from outagecomms import App
    from outagecomms.web.server import serve_http

    async def main() -> None:
        with App.open(cfg) as app:
            await serve_http(app, f"127.0.0.1:{port}", asyncio.Event())

    asyncio.run(main())


async def load(port: int, path: str, clients: int, seconds: float) -> tuple[list[float], int]:
    """Each client: one kept-alive HTTP/1.1 connection (plain asyncio streams: httpx's pool
    becomes the bottleneck past a few dozen connections), requests back to back."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()

    async def one() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(clients)))
    return latencies, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--incidents", type=int, default=20)
    ap.add_argument("--path", default="/status")
    ap.add_argument("--cache", default="5s")
    ap.add_argument("--target-ms", type=float, default=500)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    print(machine_line())
    lat: list[float] = []
    errors, size = 0, 0
    with bench_run("outagecomms-status-", keep=args.keep) as run:
        workdir = run.workdir
        port = free_port()
        cfg = config(workdir, port, args.cache)
        customers, _, _ = write_customers(workdir, args.customers, 7)
        populate(cfg, customers, args.incidents)
        server = multiprocessing.get_context("spawn").Process(
            target=serve, args=(str(cfg), port), daemon=True
        )
        server.start()
        try:
            wait_port(port, 30)
            base = f"http://127.0.0.1:{port}"
            size = len(httpx.get(base + args.path, timeout=30).content)
            lat, errors = asyncio.run(load(port, args.path, args.clients, args.seconds))
        finally:
            server.terminate()
            server.join(10)
    if run.failed or not lat:
        return 1
    lat.sort()
    n = len(lat)
    p50, p99 = lat[n // 2] * 1000, lat[min(n - 1, int(n * 0.99))] * 1000
    print(
        f"GET {args.path} ({size:,} bytes): {args.clients} clients, {args.seconds:g} s, "
        f"{args.customers:,} customers, {args.incidents} incidents, cache {args.cache}"
    )
    print(f"  {n:,} requests, {n / args.seconds:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"{errors} not 200")  # fmt: skip
    print(f"  target p99 < {args.target_ms:g} ms: {verdict(p99 < args.target_ms and not errors)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
