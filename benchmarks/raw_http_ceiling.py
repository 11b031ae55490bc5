"""The raw httpx ceiling: how fast can httpx alone POST prebuilt webhook requests to the sink?

usage: python benchmarks/raw_http_ceiling.py --base URL --sample FILE [--count N]
                                             [--connections K] [--processes P]
                                             [--pool lanes|shared]

No rendering, no signing, no database: the body and headers come from ``--sample`` (a JSON file
with ``body`` and ``headers``: a real outagecomms webhook request, so the bytes on the wire are
the same), built before the clock starts. In each of P processes, K coroutines POST to
``{base}/hooks/c0000001`` ... from a shared queue, either each with its own one-connection
``httpx.AsyncClient`` (``lanes``, what the HTTP channels do) or all through one client with a
pool of K connections (``shared``, httpx's usual way). Processes start together behind a
barrier. Prints one JSON object: sent, failed, seconds, messages_per_second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

_barrier: Any = None


def _init(barrier: Any) -> None:
    global _barrier
    _barrier = barrier


async def _post_all(
    urls: list[str], body: bytes, headers: dict[str, str], k: int, pool: str
) -> tuple[int, int, float, float]:
    if pool == "lanes":
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        clients = [httpx.AsyncClient(limits=one, timeout=30.0) for _ in range(k)]
    else:
        limits = httpx.Limits(max_connections=k, max_keepalive_connections=k)
        clients = [httpx.AsyncClient(limits=limits, timeout=30.0)] * k
    todo = iter(urls)
    sent = failed = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent, failed
        for url in todo:  # one shared iterator: a simple work queue
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.TransportError:
                failed += 1
                continue
            if response.is_success:
                sent += 1
            else:
                failed += 1

    try:
        if _barrier is not None:
            _barrier.wait()
        start = time.time()
        await asyncio.gather(*(worker(c) for c in clients))
        return sent, failed, start, time.time()
    finally:
        for c in set(clients):
            await c.aclose()


def _one_process(
    urls: list[str], body: bytes, headers: dict[str, str], k: int, pool: str
) -> tuple[int, int, float, float]:
    return asyncio.run(_post_all(urls, body, headers, k, pool))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--base", required=True, help="e.g. http://127.0.0.1:8080")
    ap.add_argument("--sample", type=Path, required=True)
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--pool", choices=("lanes", "shared"), default="lanes")
    args = ap.parse_args()
    sample = json.loads(args.sample.read_text())
    body = sample["body"].encode()
    headers = {str(k): str(v) for k, v in sample["headers"].items()}
    urls = [f"{args.base}/hooks/c{i:07d}" for i in range(1, args.count + 1)]
    p = max(1, args.processes)
    if p == 1:
        results = [_one_process(urls, body, headers, args.connections, args.pool)]
    else:
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(p)
        with ProcessPoolExecutor(p, mp_context=ctx, initializer=_init, initargs=(barrier,)) as ex:
            futures = [
                ex.submit(_one_process, urls[i::p], body, headers, args.connections, args.pool)
                for i in range(p)
            ]
            results = [f.result() for f in futures]
    sent = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    seconds = max(r[3] for r in results) - min(r[2] for r in results)
    json.dump(
        {
            "sent": sent,
            "failed": failed,
            "seconds": seconds,
            "messages_per_second": sent / seconds if seconds else 0.0,
            "processes": p,
            "connections": args.connections,
            "pool": args.pool,
            "body_bytes": len(body),
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
