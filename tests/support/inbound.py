"""Helpers for the inbound tests: a reply to build, the inbound rows of another process's store
to read, a listener's port to wait for."""

from __future__ import annotations

import socket
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from sqlalchemy import select

from outagecomms.store import open_store
from outagecomms.store import tables as t
from tests.support.processes import wait_until


def reply(
    text: str = "Thanks for the update, we are waiting.",
    *,
    sender: str = "ops@customer.example.com",
    to: str = "replies@status.example.com",
    subject: str = "Re: Database connections failing",
    in_reply_to: str | None = None,
    message_id: str | None = None,
) -> bytes:
    """One person's reply as the bytes an MTA would hand over (CRLF line ends)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="customer.example.com")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(text)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def inbound_rows(store_url: str) -> list[dict[str, Any]]:
    """Every stored inbound message of that store (read from this process), oldest first."""
    store = open_store(store_url)
    try:
        i = t.inbound
        cols = [i.c.id, i.c.status, i.c.source, i.c.recipients, i.c.kind, i.c.message_id]
        with store.read() as conn:
            return [dict(r._mapping) for r in conn.execute(select(*cols).order_by(i.c.id))]
    finally:
        store.dispose()


def wait_listening(host: str, port: int, timeout: float = 30) -> None:
    """A daemon in another process has bound ``host:port`` (no event crosses processes)."""

    def up() -> bool:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            return False
        return True

    wait_until(up, timeout=timeout)
