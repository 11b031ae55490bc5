"""Replies that land in a hosted mailbox: ``[inbound] imap_url_env`` names an environment
variable holding ``imaps://user:password@host[:port]/FOLDER``.

The daemon runs :class:`ImapPoller` in a thread (imaplib blocks). Each message in ``FOLDER`` is
fetched with ``BODY.PEEK[]`` (its \\Seen flag untouched), stored with
``pipeline.store_message(source="imap")`` and **only then** moved to ``[inbound]
imap_processed`` (created when missing; ``MOVE`` where the server has it, else ``COPY`` +
``\\Deleted`` + ``EXPUNGE``). A store that cannot take the write leaves the message where it is,
retried after ``imap_poll``; a move that fails after the store is harmless: the message is fetched
again and recognised as a duplicate. Where the server offers IDLE (RFC 2177) the poller waits in
IDLE and wakes on ``EXISTS``; else it looks every ``imap_poll``. Errors reconnect with a
growing delay (1 s doubling to 60 s).

IDLE: the standard library has it only from Python 3.14, so it is written here on imaplib's
low-level calls (``_new_tag``, ``send``, ``_get_line``). imaplib reads through a buffered file,
which hides from ``select`` what it has already read; the connections here read through their own
buffer instead (:class:`_OwnBuffer`), so "is there an answer waiting?" has a true answer.

TLS is verified against the system's CAs; ``?cafile=PATH`` names another CA bundle (a private
CA, a test's self-signed certificate) and ``?insecure=1`` turns verification off (a last resort,
logged as a warning). ``imap://`` (no TLS, ``?starttls=1`` to upgrade) is accepted only for a
loopback host: a password is never sent in clear over a network.
"""

from __future__ import annotations

import imaplib
import ipaddress
import logging
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from outagecomms.app import App
from outagecomms.errors import ConfigError, StoreUnavailable
from outagecomms.logs import log_event

log = logging.getLogger("outagecomms.inbound.imap")

#: RFC 2177: re-issue IDLE before 30 minutes, or a server may drop the connection
IDLE_MAX = 25 * 60.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
TIMEOUT = 60.0  # one socket operation
MAX_LINE = 1_000_000  # imaplib's own limit on one response line (its private _MAXLINE)


@dataclass(frozen=True)
class ImapTarget:
    """Where the mailbox is, parsed from the URL; ``str()`` never shows the password."""

    host: str
    port: int
    user: str
    password: str
    folder: str
    tls: bool  # imaps: TLS from the first byte
    starttls: bool = False
    cafile: str | None = None
    insecure: bool = False

    def __str__(self) -> str:
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.folder}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_imap_url(url: str, *, env: str) -> ImapTarget:
    """``imaps://user:password@host[:port]/FOLDER[?cafile=PATH|insecure=1]`` (user and password
    percent-encoded). Errors name the variable ``env`` and key ``inbound.imap_url_env``, never
    the password."""

    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"${env} {why}; expected imaps://user:password@host[:port]/FOLDER",
            key="inbound.imap_url_env",
        )

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise bad("is not a URL") from None
    if parts.scheme not in ("imaps", "imap"):
        raise bad(f"has the scheme {parts.scheme!r}")
    host = parts.hostname or ""
    if not host:
        raise bad("has no host")
    if parts.username is None or parts.password is None:
        raise bad("has no user:password")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"cafile", "insecure", "starttls"}
    if unknown:
        raise bad(f"has unknown parameters {sorted(unknown)}")
    tls = parts.scheme == "imaps"
    if not tls and not _loopback(host):
        raise bad("uses imap:// (no TLS) for a host that is not loopback; use imaps://")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return ImapTarget(
        host=host,
        port=port or (993 if tls else 143),
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=folder,
        tls=tls,
        starttls=query.get("starttls") == "1",
        cafile=query.get("cafile") or None,
        insecure=query.get("insecure") == "1",
    )


def quote_mailbox(name: str) -> str:
    """A mailbox name as an IMAP quoted string (imaplib sends arguments as given)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _OwnBuffer:
    """imaplib's ``read``/``readline`` over a buffer of our own, so that ``waiting()`` knows
    whether a response has already been read off the socket (see the module docstring)."""

    sock: socket.socket
    _inbox: bytearray

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            return False
        self._inbox += chunk
        return True

    def read(self, size: int) -> bytes:
        buf = self.__dict__.setdefault("_inbox", bytearray())
        while len(buf) < size and self._fill():
            pass
        out = bytes(buf[:size])
        del buf[:size]
        return out

    def readline(self) -> bytes:
        buf = self.__dict__.setdefault("_inbox", bytearray())
        while (end := buf.find(b"\n")) < 0:
            if len(buf) > MAX_LINE:
                raise imaplib.IMAP4.error(f"got more than {MAX_LINE} bytes")
            if not self._fill():
                end = len(buf) - 1
                break
        out = bytes(buf[: end + 1])
        del buf[: end + 1]
        return out

    def waiting(self) -> bool:
        """Bytes already received and not yet consumed (here or inside TLS)."""
        if self.__dict__.get("_inbox"):
            return True
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0


class _Imap(_OwnBuffer, imaplib.IMAP4):
    pass


class _ImapTls(_OwnBuffer, imaplib.IMAP4_SSL):
    pass


Connection = _Imap | _ImapTls


def tls_context(target: ImapTarget) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=target.cafile)
    if target.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(target: ImapTarget, timeout: float = TIMEOUT) -> Connection:
    """Open and log in (TLS verified unless ``insecure``)."""
    conn: Connection
    if target.tls:
        conn = _ImapTls(target.host, target.port, ssl_context=tls_context(target), timeout=timeout)
    else:
        conn = _Imap(target.host, target.port, timeout=timeout)
        if target.starttls:
            conn.starttls(tls_context(target))
    try:
        conn.login(target.user, target.password)
        conn._get_capabilities()  # a server tells more (MOVE, IDLE) once logged in
    except BaseException:
        with _quiet():
            conn.shutdown()
        raise
    return conn


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _ok(typ: str, data: Any, what: str) -> Any:
    if typ != "OK":
        detail = data[0].decode(errors="replace") if data and isinstance(data[0], bytes) else ""
        raise imaplib.IMAP4.error(f"{what} failed: {typ} {detail}".strip())
    return data


_EXISTS = re.compile(rb"^\* \d+ (EXISTS|RECENT)\b", re.I)


def idle(conn: Connection, wake: socket.socket, timeout: float) -> bool:
    """One IDLE (RFC 2177): wait until the server reports a new message (True), ``timeout``
    passes or ``wake`` becomes readable (False), then DONE and read the tagged answer."""
    tag = conn._new_tag()
    conn.send(tag + b" IDLE\r\n")
    first = conn._get_line()
    if not first.startswith(b"+"):
        conn.tagged_commands.pop(tag, None)
        raise imaplib.IMAP4.error(f"IDLE refused: {first[:100]!r}")
    changed = False
    end = time.monotonic() + timeout
    while not changed:
        if not conn.waiting():
            left = end - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([conn.sock, wake], [], [], left)
            if not ready or wake in ready:
                break
        changed = bool(_EXISTS.match(conn._get_line()))
    conn.send(b"DONE\r\n")
    while True:
        line = conn._get_line()
        if line.startswith(tag + b" "):
            conn.tagged_commands.pop(tag, None)
            if not line[len(tag) + 1 :].upper().startswith(b"OK"):
                raise imaplib.IMAP4.error(f"IDLE ended with {line[:100]!r}")
            return changed
        changed = changed or bool(_EXISTS.match(line))


def _literal(data: Any) -> bytes | None:
    for item in data or ():
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


class ImapPoller:
    """The mailbox loop, run in a thread: ``run()`` until ``stop()``. ``on_stored(id)`` is
    called (from this thread) for each newly stored message."""

    def __init__(
        self,
        app: App,
        target: ImapTarget,
        *,
        on_stored: Callable[[int], None],
        event: Callable[..., None] | None = None,
    ):
        self.app = app
        self.report = event
        self.target = target
        self.on_stored = on_stored
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self.stored = 0
        self.moved = 0
        self.deferred = 0
        self.connects = 0
        self.idling = threading.Event()  # set while waiting in IDLE (tests wait on it)

    @classmethod
    def from_config(
        cls,
        app: App,
        *,
        on_stored: Callable[[int], None],
        event: Callable[..., None] | None = None,
    ) -> ImapPoller:
        import os

        env = app.config.inbound.imap_url_env
        url = os.environ.get(env, "")
        if not url:
            raise ConfigError(f"${env} is not set", key="inbound.imap_url_env")
        return cls(app, parse_imap_url(url, env=env), on_stored=on_stored, event=event)

    def stop(self) -> None:
        self._stopping.set()
        with _quiet():
            self._wake_w.send(b"x")

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` or until ``stop()``."""
        if not self._stopping.is_set():
            select.select([self._wake_r], [], [], max(0.0, seconds))

    def _event(self, event: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
        """The daemon's ``_event`` when given (called from this thread: it only logs), else a
        log line; the mailbox is named without its password."""
        if self.report is not None:
            self.report(event, message, mailbox=str(self.target), **fields)
        else:
            log_event(log, event, message, level=level, mailbox=str(self.target), **fields)

    def run(self) -> None:
        if self.target.insecure:
            self._event(
                "imap_insecure", "imap: TLS certificate verification is off (?insecure=1)",
                level=logging.WARNING,
            )  # fmt: skip
        delay = BACKOFF_FIRST
        try:
            while not self._stopping.is_set():
                try:
                    conn = connect(self.target)
                except (OSError, imaplib.IMAP4.error) as exc:
                    self._retry_later(exc, delay)
                    delay = min(delay * 2, BACKOFF_MAX)
                    continue
                self.connects += 1
                try:
                    delay = BACKOFF_FIRST
                    self._serve(conn)
                except Exception as exc:  # a bug must not end the watching: retried, logged
                    self._retry_later(exc, delay)
                    delay = min(delay * 2, BACKOFF_MAX)
                finally:
                    with _quiet():
                        conn.logout()
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _retry_later(self, exc: BaseException, delay: float) -> None:
        if self._stopping.is_set():
            return
        from outagecomms.inbound.listeners import where

        if isinstance(exc, (OSError, imaplib.IMAP4.error)):
            # the server's or the socket's words (never a message's: those are not logged)
            why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        else:
            why = where(exc)
        self._event(
            "imap_error", f"imap: {type(exc).__name__}: {why}; reconnecting in {delay:g}s",
            level=logging.WARNING, delay=delay,
        )  # fmt: skip
        self._pause(delay)

    def _serve(self, conn: Connection) -> None:
        processed = self.app.config.inbound.imap_processed
        typ, data = conn.list('""', quote_mailbox(processed))
        if not any(isinstance(d, bytes) for d in (data or ()) if d):
            typ, data = conn.create(quote_mailbox(processed))
            if typ != "OK" and b"exist" not in b" ".join(d for d in data if isinstance(d, bytes)):
                _ok(typ, data, f"CREATE {processed}")
        _ok(*conn.select(quote_mailbox(self.target.folder)), f"SELECT {self.target.folder}")
        can_idle = "IDLE" in conn.capabilities
        poll = self.app.config.inbound.imap_poll.total_seconds()
        self._event(
            "imap_ready", f"imap: watching {self.target} ({'IDLE' if can_idle else 'polling'})",
            idle=can_idle,
        )  # fmt: skip
        while not self._stopping.is_set():
            if self.drain(conn) is False:
                self._pause(poll)  # the store is down: the messages stay, retried after a while
            elif can_idle:
                self.idling.set()
                try:
                    idle(conn, self._wake_r, IDLE_MAX)
                finally:
                    self.idling.clear()
            else:
                self._pause(poll)
                _ok(*conn.noop(), "NOOP")

    def drain(self, conn: Connection) -> bool:
        """Store and move every message in the folder; False when the store refused one (the
        rest wait for the next pass)."""
        from outagecomms.inbound import pipeline

        data = _ok(*conn.uid("SEARCH", "UNDELETED"), "UID SEARCH")
        uids = b" ".join(d for d in data if isinstance(d, bytes)).split()
        processed = quote_mailbox(self.app.config.inbound.imap_processed)
        can_move = "MOVE" in conn.capabilities
        for uid in uids:
            if self._stopping.is_set():
                return True
            data = _ok(*conn.uid("FETCH", uid.decode(), "(BODY.PEEK[])"), "UID FETCH")
            raw = _literal(data)
            if raw is None:
                continue  # expunged by someone else meanwhile
            try:
                stored = pipeline.store_message(self.app, raw, source="imap")
            except StoreUnavailable:
                self.deferred += 1
                self._event(
                    "inbound_deferred", "imap: store unavailable; the message stays in the "
                    "mailbox", level=logging.WARNING, source="imap",
                )  # fmt: skip
                return False
            try:
                self._move(conn, uid.decode(), processed, can_move)
            finally:
                if not stored.duplicate:
                    self.stored += 1
                    self.on_stored(stored.id)
        return True

    def _move(self, conn: Connection, uid: str, folder: str, can_move: bool) -> None:
        if can_move:
            _ok(*conn.uid("MOVE", uid, folder), "UID MOVE")
        else:
            _ok(*conn.uid("COPY", uid, folder), "UID COPY")
            _ok(*conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
            if "UIDPLUS" in conn.capabilities:
                _ok(*conn.uid("EXPUNGE", uid), "UID EXPUNGE")
            else:
                _ok(*conn.expunge(), "EXPUNGE")
        self.moved += 1
