"""The IMAP mailbox way in, against a real Dovecot on loopback over TLS (a self-signed
certificate the test makes): messages fetched, stored, and moved to the processed folder only
after they are stored (with the store locked they stay in INBOX); IDLE wakes the daemon at once
(the poll interval is an hour); a server without IDLE and MOVE is polled and COPY + EXPUNGE'd.

Dovecot: ``apt-get install -y --no-install-recommends dovecot-imapd`` (``.ci/run`` does). Without
it these tests are skipped, except under CI (``CI`` or ``OUTAGECOMMS_CI`` set), where they fail.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from outagecomms.errors import ConfigError
from outagecomms.inbound.imap import connect, idle, parse_imap_url
from outagecomms.store import open_store
from tests.fakes.smtp import SmtpServer
from tests.support.dovecot import BINARY, PASSWORD, USER, Dovecot, running_dovecot
from tests.support.inbound import inbound_rows, reply
from tests.support.processes import start_daemon, stop, wait_until

_CI = bool(os.environ.get("CI") or os.environ.get("OUTAGECOMMS_CI"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        BINARY is None and not _CI,
        reason="Dovecot is not installed "
        "(Debian: apt-get install -y --no-install-recommends dovecot-imapd)",
    ),
]

ENV = "OC_TEST_IMAP_URL"


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    with running_dovecot(tmp_path / "dovecot") as server:
        yield server


class Watching:
    """A daemon with ``[inbound] imap_url_env`` pointing at the Dovecot."""

    def __init__(self, make_config: Callable[..., Path], tmp_path: Path, server: SmtpServer,
                 *, poll: str, store_url: str | None = None) -> None:  # fmt: skip
        self.store_url = store_url or f"sqlite:///{tmp_path / 'store.db'}"
        self.config = make_config(
            server,
            store_url=self.store_url,
            extra=f'[inbound]\nimap_url_env = "{ENV}"\nimap_poll = "{poll}"\n'
            'imap_processed = "Processed Replies"\n',
        )
        self.log = tmp_path / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start_daemon(self.config, self.log)

    def log_has(self, text: str) -> bool:
        return self.log.exists() and text in self.log.read_text()

    def processed(self) -> list[dict]:
        return [r for r in inbound_rows(self.store_url) if r["status"] == "processed"]


@pytest.fixture
def watching(make_config, tmp_path: Path, smtp_server: SmtpServer):
    daemons: list[Watching] = []

    def make(**kw: object) -> Watching:
        d = Watching(make_config, tmp_path, smtp_server, **kw)  # type: ignore[arg-type]
        daemons.append(d)
        return d

    yield make
    for d in daemons:
        if d.proc is not None and d.proc.poll() is None:
            stop(d.proc, signal.SIGKILL)


def test_fetched_stored_then_moved_and_idle_wakes_at_once(
    dovecot: Dovecot, watching, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, dovecot.url())
    dovecot.append(reply("First: thanks for the heads-up."))
    dovecot.append(reply("Second: this is the third time this month."))
    d = watching(poll="1h")  # an hour: only IDLE can explain the third message arriving
    d.start()
    wait_until(lambda: len(d.processed()) == 2)
    rows = d.processed()
    assert {r["source"] for r in rows} == {"imap"} and {r["kind"] for r in rows} == {"reply"}
    wait_until(lambda: dovecot.count("INBOX") == 0)
    assert dovecot.count("Processed Replies") == 2  # the folder was created, both moved
    assert d.log_has("IDLE")  # the server offers it: the daemon waits in IDLE
    wait_until(lambda: d.log_has("imap_ready") or d.log_has("watching"))
    dovecot.append(reply("Third, while you idle."))
    wait_until(lambda: len(d.processed()) == 3, timeout=20)
    wait_until(lambda: dovecot.count("Processed Replies") == 3)
    assert dovecot.count("INBOX") == 0
    assert stop(d.proc) == 0
    log = d.log.read_text()
    assert "third time" not in log and PASSWORD not in log  # no text, no password


def test_store_locked_leaves_the_message_in_inbox(
    dovecot: Dovecot, watching, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, dovecot.url())
    url = pg_url.replace("?options=", "?options=-clock_timeout%3D500%20")
    d = watching(poll="1s", store_url=url)
    open_store(pg_url).dispose()  # the schema, so that its table can be locked first
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            tx = conn.begin()
            conn.execute(text("LOCK TABLE inbound IN EXCLUSIVE MODE"))
            dovecot.append(reply("Stored only when you can."))
            d.start()
            wait_until(lambda: d.log_has("store unavailable"))
            assert dovecot.count("INBOX") == 1  # not moved: it was not stored
            assert dovecot.count("Processed Replies") in (0, None)
            tx.rollback()
        wait_until(lambda: len(d.processed()) == 1)  # the next poll takes it
        wait_until(lambda: dovecot.count("INBOX") == 0)
        assert dovecot.count("Processed Replies") == 1
    finally:
        engine.dispose()
    assert stop(d.proc) == 0


def test_a_restarted_server_is_reconnected_to(
    dovecot: Dovecot, watching, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, dovecot.url())
    d = watching(poll="1h")
    dovecot.append(reply("Before the restart."))
    d.start()
    wait_until(lambda: len(d.processed()) == 1)
    dovecot.restart()  # the daemon's IDLE connection drops; it reconnects with a backoff
    wait_until(lambda: d.log_has("reconnecting in"))
    dovecot.append(reply("After the restart."))
    wait_until(lambda: len(d.processed()) == 2)
    wait_until(lambda: dovecot.count("INBOX") == 0)
    assert dovecot.count("Processed Replies") == 2
    assert stop(d.proc) == 0


def test_a_server_without_idle_or_move_is_polled_and_copied(
    tmp_path: Path, watching, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_dovecot(tmp_path / "poor", capability="IMAP4rev1 LITERAL+") as poor:
        monkeypatch.setenv(ENV, poor.url())
        poor.append(reply("Polled, not idled."))
        d = watching(poll="1s")
        d.start()
        wait_until(lambda: len(d.processed()) == 1)
        wait_until(lambda: poor.count("INBOX") == 0)  # copied, flagged, expunged
        assert poor.count("Processed Replies") == 1
        assert d.log_has("polling")
        poor.append(reply("And the next one, a poll later."))
        wait_until(lambda: len(d.processed()) == 2)
        assert stop(d.proc) == 0


# --- the connection itself -------------------------------------------------------------------


def test_tls_is_verified_unless_told_otherwise(dovecot: Dovecot) -> None:
    plain = parse_imap_url(dovecot.url(query=""), env=ENV)
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(plain)  # self-signed, not in the system's CAs
    for query in (None, "insecure=1"):
        conn = connect(parse_imap_url(dovecot.url(query=query), env=ENV))
        assert "IDLE" in conn.capabilities and "MOVE" in conn.capabilities  # after login
        conn.logout()
    loopback = f"imap://{USER}:x@127.0.0.1:{dovecot.imap_port}/INBOX?starttls=1&cafile={dovecot.cafile}"  # fmt: skip
    target = parse_imap_url(loopback, env=ENV)
    assert target.starttls and not target.tls


def test_idle_returns_on_a_new_message_and_on_wake(dovecot: Dovecot) -> None:
    conn = connect(parse_imap_url(dovecot.url(), env=ENV))
    wake_r, wake_w = socket.socketpair()
    try:
        assert conn.select("INBOX")[0] == "OK"
        appended = threading.Event()

        def append_soon() -> None:
            dovecot.append(reply("wake up"))
            appended.set()

        t = threading.Timer(0.3, append_soon)
        t.start()
        assert idle(conn, wake_r, timeout=30) is True
        t.join()
        assert appended.is_set()
        wake_w.send(b"x")
        assert idle(conn, wake_r, timeout=30) is False  # woken: the daemon stopping
        assert conn.noop()[0] == "OK"  # the session is still in step
    finally:
        conn.logout()
        wake_r.close()
        wake_w.close()


def test_urls_are_checked_without_showing_the_password() -> None:
    t = parse_imap_url("imaps://me%40corp:p%2Fw@mail.example.com/Replies%20In", env=ENV)
    assert (t.user, t.password, t.port, t.folder) == ("me@corp", "p/w", 993, "Replies In")
    assert "p/w" not in str(t)
    for bad, why in (
        ("imap://u:p@mail.example.com/INBOX", "not loopback"),
        ("https://u:p@mail.example.com/", "scheme"),
        ("imaps://mail.example.com/", "user:password"),
        ("imaps://u:p@mail.example.com/?verify=0", "unknown parameters"),
    ):
        with pytest.raises(ConfigError, match=why) as err:
            parse_imap_url(bad, env=ENV)
        assert "inbound.imap_url_env" in str(err.value) and ":p@" not in str(err.value)
