"""A discarding SMTP server on aiosmtpd, for comparison with postfix's smtp-sink.

usage: python benchmarks/aiosmtpd_sink.py HOST PORT

Prints ``mesg=<total>`` (like ``smtp-sink -c``) on stdout after every accepted message, so the
benchmark reads both sinks the same way. Runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class CountingHandler:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        os.write(1, b"mesg=%d\n" % self.count)
        return "250 2.0.0 Ok: discarded"


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = CountingHandler()

    def factory() -> Any:
        return SMTP(handler, hostname="aiosmtpd-sink", loop=loop)

    server = await loop.create_server(factory, host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))


if __name__ == "__main__":
    main()
