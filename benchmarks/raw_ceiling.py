"""The raw ceiling: how fast can aiosmtplib alone push prebuilt messages to the sink?

usage: python benchmarks/raw_ceiling.py --port P [--count N] [--connections K] [--sample FILE]

No rendering, no MIME building, no database: N messages are built before the clock starts,
then K coroutines, each holding one reused connection (like outagecomms' pool), send them
from a shared queue. ``--sample`` is a JSON file with ``subject``, ``text`` and ``html`` (a real
outagecomms message, so the bytes on the wire are the same size); without it a similar
built-in text is used. Prints one JSON object: sent, failed, seconds, messages_per_second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiosmtplib

FROM = "support@example.com"
_DEFAULT_TEXT = (
    "Dear customer,\n\nWe are investigating a problem that affects api, dashboard and storage "
    "in us-east since 14:02 CET. We are sorry: we know you rely on us.\n\nWhat we are doing: "
    "our engineers are on it now.\nNext update: by 14:32 CET, even if nothing has changed.\n\n"
    "Status page: https://status.example.com\nA person: support@example.com\n\nBench Co\n"
)


def sample_content(path: Path | None) -> dict[str, Any]:
    if path is not None and path.is_file():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    html = "<html><body>" + "".join(f"<p>{p}</p>" for p in _DEFAULT_TEXT.split("\n\n")) + "</body>"
    return {"subject": "[Bench Co] Investigating: Bench", "text": _DEFAULT_TEXT, "html": html}


def build_template(content: dict[str, Any]) -> bytes:
    """Mirror of outagecomms.rendering.mime.build_email with placeholders for To and Message-ID."""
    em = EmailMessage(policy=SMTP)
    em["From"] = "Bench Support <support@example.com>"
    em["To"] = "Customer <__RCPT__>"
    em["Subject"] = content["subject"]
    em["Date"] = formatdate(usegmt=True)
    em["Message-ID"] = "<__MSGID__@example.com>"
    em["Reply-To"] = FROM
    em["Auto-Submitted"] = "auto-generated"
    em["X-Auto-Response-Suppress"] = "All"
    em["X-Outagecomms-Incident"] = "INC-1"
    em["X-Outagecomms-Round"] = "1 acknowledgement"
    em["X-Outagecomms-Customer"] = "c0000000"
    em.set_content(content["text"], cte="quoted-printable")
    if content.get("html"):
        em.add_alternative(content["html"], subtype="html", cte="quoted-printable")
    return em.as_bytes()


def prebuild(n: int, content: dict[str, Any]) -> list[tuple[str, bytes]]:
    tpl = build_template(content)
    out = []
    for i in range(1, n + 1):
        rcpt = f"ops+c{i:07d}@example.com"
        data = tpl.replace(b"__RCPT__", rcpt.encode()).replace(b"__MSGID__", b"raw.%d" % i)
        out.append((rcpt, data))
    return out


async def send_all(port: int, messages: list[tuple[str, bytes]], k: int) -> tuple[int, int, float]:
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)
    sent = failed = 0

    async def worker() -> None:
        nonlocal sent, failed
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await client.connect()
        try:
            while True:
                try:
                    rcpt, data = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    await client.sendmail(FROM, [rcpt], data)
                    sent += 1
                except aiosmtplib.SMTPException:
                    failed += 1
        finally:
            await client.quit()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(k)))
    return sent, failed, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--sample", type=Path, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    messages = prebuild(args.count, sample_content(args.sample))
    built = time.perf_counter() - t0
    sent, failed, seconds = asyncio.run(send_all(args.port, messages, args.connections))
    json.dump(
        {
            "sent": sent,
            "failed": failed,
            "seconds": seconds,
            "messages_per_second": sent / seconds if seconds else 0.0,
            "prebuild_seconds": built,
            "message_bytes": len(messages[0][1]) if messages else 0,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
