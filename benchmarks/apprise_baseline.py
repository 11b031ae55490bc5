"""Baseline: the acknowledgement fan-out by e-mail done the Apprise way.

Apprise sends one notification to the targets of a URL; a message personalised per customer
(their name, their address) therefore takes one ``notify()`` per customer, through a
``mailto://`` URL naming that customer. That is what :func:`apprise_rate` times: for each
customer build the URL and the personalised text, ``Apprise().add(url)``, ``notify()``. Each
``notify()`` opens its own SMTP connection (Apprise's e-mail plugin has no pool) and runs
synchronously; a fresh plugin per customer also avoids the plugin's own throttle (5.5 s between
two sends of one plugin instance).

usage: python benchmarks/apprise_baseline.py [--n 200]

Starts an aiosmtpd sink on loopback (plain SMTP, no TLS), sends ``n`` messages, checks the sink
got exactly ``n``, and prints the rate. ``benchmarks/fanout.py`` imports :func:`apprise_rate`.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import urlencode

SUBJECT = "[Investigating] API errors: we are on it (INC-1)"


def _body(name: str, i: int) -> str:
    """About the size and shape of our acknowledgement's text part, for one customer."""
    return (
        f"Hello {name},\n\n"
        "since 12:48 CET, api in eu-west is not working as it should for you: API errors.\n\n"
        "We are sorry. This is our problem to fix, and our engineers are working on it now.\n\n"
        "What we know so far: a database failover is in progress.\n\n"
        "Next update: by 13:30 CET, sooner if it is fixed.\n\n"
        "To reach a person: support@example.com or +1 555 0100\n"
        "Live status: https://status.example.com\n"
        f"Reference: INC-1 (customer c{i:05d})\n\n"
        "S1 Technology\n"
    )


def apprise_rate(host: str, port: int, n: int, *, from_addr: str) -> float:
    """Send ``n`` personalised e-mails with Apprise, one ``notify()`` per customer, over plain
    SMTP to ``host:port``; return messages per second. Raises RuntimeError when Apprise
    reports a failure (the rate would mean nothing)."""
    import apprise

    asset = apprise.AppriseAsset(app_id="outagecomms-baseline")
    failed = 0
    start = time.perf_counter()
    for i in range(n):
        name = f"Customer {i}"
        query = urlencode({"from": from_addr, "to": f"c{i:05d}@example.com", "name": "S1 Support"})
        one = apprise.Apprise(asset=asset)
        if not one.add(f"mailto://{host}:{port}?{query}&mode=insecure"):
            raise RuntimeError("Apprise refused the mailto URL")
        if not one.notify(body=_body(name, i), title=SUBJECT, body_format="text"):
            failed += 1
    elapsed = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"Apprise reported {failed} of {n} notifications as failed")
    return n / elapsed


class _Counter:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
        return "250 2.0.0 Ok: discarded"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="messages (customers) to send")
    args = parser.parse_args()

    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    handler = _Counter()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        rate = apprise_rate("127.0.0.1", port, args.n, from_addr="support@example.com")
        deadline = time.monotonic() + 5
        while handler.count < args.n and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        controller.stop()
    print(f"apprise baseline: {args.n} messages, one notify() per customer: {rate:.1f} msg/s")
    if handler.count != args.n:
        print(f"FAIL: the sink got {handler.count} messages, expected {args.n}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
