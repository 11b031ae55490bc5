"""The daemon's SMTP and LMTP listeners, over real sessions (smtplib, a raw socket) against a
real daemon subprocess: 250 only once stored (SIGKILL right after it loses nothing), 451 while
the store is locked, 552 over ``max_size`` (at MAIL FROM SIZE= and at the end of DATA), the same
message twice stored once, LMTP's one answer per recipient, a bare-LF message kept, a taken
port a one-line error naming ``inbound.smtp``."""

from __future__ import annotations

import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.fakes.asgi import free_port
from tests.fakes.smtp import SmtpServer
from tests.support.data import expected_ids, sample_csv, sample_rows
from tests.support.inbound import inbound_rows, reply, wait_listening
from tests.support.processes import run_json, start_daemon, stop, wait_until

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"


class Listening:
    """A daemon with ``[inbound] smtp`` (and ``lmtp``) on free loopback ports."""

    def __init__(self, make_config: Callable[..., Path], tmp_path: Path, server: SmtpServer,
                 *, store_url: str | None = None, extra: str = "") -> None:  # fmt: skip
        self.smtp_port = free_port()
        self.lmtp_port = free_port()
        self.store_url = store_url or f"sqlite:///{tmp_path / 'store.db'}"
        self.config = make_config(
            server,
            store_url=self.store_url,
            extra=f'[inbound]\nsmtp = "{HOST}:{self.smtp_port}"\n'
            f'lmtp = "{HOST}:{self.lmtp_port}"\n{extra}',
        )
        self.log = tmp_path / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start_daemon(self.config, self.log)
        try:
            wait_listening(HOST, self.smtp_port)
            wait_listening(HOST, self.lmtp_port)
        except AssertionError:
            raise AssertionError(self.log.read_text()) from None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        return stop(self.proc, sig)

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP(HOST, self.smtp_port, timeout=30)

    def rows(self) -> list[dict]:
        return inbound_rows(self.store_url)

    def wait_processed(self, n: int) -> list[dict]:
        wait_until(lambda: sum(r["status"] == "processed" for r in self.rows()) >= n)
        return self.rows()


@pytest.fixture
def listening(make_config, tmp_path: Path, smtp_server: SmtpServer):
    daemons: list[Listening] = []

    def make(**kw: object) -> Listening:
        d = Listening(make_config, tmp_path, smtp_server, **kw)  # type: ignore[arg-type]
        daemons.append(d)
        return d

    yield make
    for d in daemons:
        if d.proc is not None and d.proc.poll() is None:
            d.stop(signal.SIGKILL)


def _send(client: smtplib.SMTP, raw: bytes, to: str = "replies@status.example.com") -> tuple:
    client.ehlo()
    code, _ = client.mail("ops@customer.example.com")
    assert code == 250
    code, _ = client.rcpt(to)
    assert code == 250
    return client.data(raw)


def test_250_means_stored_even_if_killed_at_once(listening) -> None:
    d = listening()
    d.start()
    raw = reply("Is this the third outage this month?")
    with d.smtp() as client:
        code, answer = _send(client, raw)
        assert code == 250, answer
        d.proc.send_signal(signal.SIGKILL)  # at once, before anything else can happen
    assert d.proc.wait(30) == -signal.SIGKILL
    rows = d.rows()
    assert len(rows) == 1 and rows[0]["source"] == "smtp"
    assert rows[0]["recipients"] == ["replies@status.example.com"]
    assert str(rows[0]["id"]).encode() in answer
    d.start()  # process_pending at start finishes it
    rows = d.wait_processed(1)
    assert len(rows) == 1 and rows[0]["kind"] == "reply"
    assert d.stop() == 0
    log = d.log.read_text()
    assert "third outage" not in log  # personal data never reaches the log


def test_same_message_twice_is_stored_once(listening) -> None:
    d = listening()
    d.start()
    raw = reply("Please call me.")
    with d.smtp() as client:
        first = _send(client, raw)
    with d.smtp() as client:
        again = _send(client, raw)  # a sender that did not see our 250 retries
    assert first[0] == again[0] == 250
    assert b"already stored" in again[1] and b"already stored" not in first[1]
    rows = d.wait_processed(1)
    assert len(rows) == 1
    assert d.stop() == 0


def test_over_max_size_is_refused_with_552(listening) -> None:
    d = listening(extra="max_size = 4096\n")
    d.start()
    big = reply("x" * 6000)
    with d.smtp() as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "4096"  # advertised
        # smtplib sends SIZE= as the server advertises it: refused before any data is sent
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("ops@customer.example.com", ["replies@status.example.com"], big)
        assert refused.value.smtp_code == 552
        client.rset()
        # a client that does not say SIZE= is refused at the end of DATA
        code, _ = _send(client, big)
        assert code == 552
        code, _ = _send(client, reply("short and fine"))
        assert code == 250
    rows = d.wait_processed(1)
    assert len(rows) == 1
    assert d.stop() == 0


def test_lmtp_answers_once_per_recipient(listening) -> None:
    d = listening()
    d.start()
    raw = reply("Two of us read your mail.")
    rcpts = ["replies@status.example.com", "replies+abc@status.example.com"]
    client = smtplib.LMTP(HOST, d.lmtp_port, timeout=30)
    try:
        assert client.ehlo()[0] == 250  # smtplib's LMTP sends LHLO
        client.mail("ops@customer.example.com")
        for r in rcpts:
            assert client.rcpt(r)[0] == 250
        first = client.data(raw)
        second = client.getreply()  # RFC 2033: one more answer for the second recipient
        assert first[0] == second[0] == 250, (first, second)
        client.rset()
        client.mail("ops@customer.example.com")
        client.rcpt(rcpts[0])
        assert client.data(raw)[0] == 250  # the same again: one answer, already stored
        assert client.noop()[0] == 250  # and no stray answer left in the stream
    finally:
        client.close()
    rows = d.wait_processed(1)
    assert len(rows) == 1
    assert rows[0]["source"] == "lmtp" and rows[0]["recipients"] == rcpts
    assert d.stop() == 0


def test_bare_lf_message_is_accepted_and_stored(listening) -> None:
    d = listening()
    d.start()
    body = (
        b"From: ops@customer.example.com\nTo: replies@status.example.com\n"
        b"Subject: Re: outage\nMessage-ID: <bare-lf-1@customer.example.com>\n\n"
        b"Our old mailer writes bare LF.\nStill a reply.\n"
    )
    with socket.create_connection((HOST, d.smtp_port), timeout=30) as s:
        f = s.makefile("rb")

        def say(line: bytes) -> bytes:
            s.sendall(line)
            answer = f.readline()
            while answer[3:4] == b"-":
                answer = f.readline()
            return answer

        assert f.readline().startswith(b"220")
        assert say(b"EHLO old.example.com\r\n").startswith(b"250")
        assert say(b"MAIL FROM:<ops@customer.example.com>\r\n").startswith(b"250")
        assert say(b"RCPT TO:<replies@status.example.com>\r\n").startswith(b"250")
        assert say(b"DATA\r\n").startswith(b"354")
        assert say(body + b"\r\n.\r\n").startswith(b"250")
    rows = d.wait_processed(1)
    assert len(rows) == 1 and rows[0]["message_id"] == "<bare-lf-1@customer.example.com>"
    assert rows[0]["kind"] == "reply"
    assert d.stop() == 0


def test_store_locked_answers_451_then_takes_it(listening, pg_url: str) -> None:
    """The store is PostgreSQL; the test holds the inbound table locked past the daemon's
    lock_timeout (500 ms, in its URL): 451, the sender's retry after the lock is gone: 250."""
    url = pg_url.replace("?options=", "?options=-clock_timeout%3D500%20")
    d = listening(store_url=url)
    d.start()
    raw = reply("Are you still there?")
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            tx = conn.begin()
            conn.execute(text("LOCK TABLE inbound IN EXCLUSIVE MODE"))
            with d.smtp() as client:
                code, answer = _send(client, raw)
            assert code == 451 and answer.startswith(b"4.3.0"), answer
            tx.rollback()
        assert d.rows() == []
        with d.smtp() as client:
            code, _ = _send(client, raw)
        assert code == 250
        rows = d.wait_processed(1)
        assert len(rows) == 1
    finally:
        engine.dispose()
    assert d.stop() == 0
    assert "Are you still there" not in d.log.read_text()


def test_taken_port_stops_the_daemon_naming_the_key(make_config, smtp_server) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = make_config(smtp_server, extra=f'[inbound]\nsmtp = "{HOST}:{port}"\n')
        proc = subprocess.run(
            [sys.executable, "-m", "outagecomms", "--config", str(cfg), "daemon"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if not ln.startswith("{")]  # not log lines
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("error: config key inbound.smtp: ")
    assert f"{HOST}:{port}" in errors[0] and "address already in use" in errors[0]
    assert "Traceback" not in proc.stderr


def test_a_negative_reply_reaches_the_account_manager_through_the_daemon(
    listening, smtp_server: SmtpServer, cli
) -> None:
    """Stored → processed → the inbound sender kicked: the account manager's mail and the
    customer's acknowledgement leave the same daemon, without waiting for any poll."""
    d = listening()
    assert cli("--config", str(d.config), "customers", "import", str(sample_csv())).exit_code == 0
    declared = run_json(d.config, "declare", "Database connections failing", "--severity", "sev2",
                        "--component", "database", "--region", "eu-west", "--yes")  # fmt: skip
    assert declared["sent"] >= 1
    customer = next(r for r in sample_rows() if r["id"] == "c0000010")
    assert customer["id"] in expected_ids("database", "eu-west") and customer["account_manager"]
    ours = smtp_server.handler.wait_for(
        lambda ms: any(m.rcpt_tos == [customer["email"]] for m in ms)
    )
    delivery = next(m for m in ours if m.rcpt_tos == [customer["email"]])
    d.start()
    words = "This is the third outage this month; we are considering cancelling."
    with d.smtp() as client:
        code, _ = _send(client, reply(words, sender=customer["email"],
                                      in_reply_to=delivery.message_id))  # fmt: skip
    assert code == 250
    am = customer["account_manager"]
    got = smtp_server.handler.wait_for(lambda ms: any(am in m.rcpt_tos for m in ms))
    escalation = next(m for m in got if am in m.rcpt_tos)
    assert "considering cancelling" in escalation.message.get_body(("plain",)).get_content()
    assert customer["id"] in escalation.message.get_body(("plain",)).get_content()
    # the person who wrote hears that it reached us, threaded to their message
    acks = smtp_server.handler.wait_for(
        lambda ms: sum(m.rcpt_tos == [customer["email"]] for m in ms) >= 2
    )
    ack = [m for m in acks if m.rcpt_tos == [customer["email"]]][-1]
    assert ack.message_id != delivery.message_id
    assert d.stop() == 0
    assert "considering cancelling" not in d.log.read_text()


def test_an_unexpected_failure_answers_451_and_logs_no_text(
    make_config, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """In process: a storing bug (here: an exception quoting the message) is a 451, so the
    sender keeps the message, and the log names the exception's type and place only."""
    import asyncio

    from outagecomms.app import App
    from outagecomms.inbound import listeners, pipeline

    def broken(app: object, messages: list[tuple[bytes, object]], **kw: object) -> object:
        raise RuntimeError(f"cannot store {messages[0][0]!r}")

    monkeypatch.setattr(pipeline, "store_many", broken)
    app = App.open(make_config(smtp_server))
    stored: list[int] = []

    async def session() -> tuple[int, bytes]:
        port = free_port()
        server, _ = await listeners.start_listener(
            app, f"{HOST}:{port}", key="inbound.smtp", on_stored=stored.append
        )

        def client() -> tuple[int, bytes]:
            with smtplib.SMTP(HOST, port, timeout=30) as c:
                return _send(c, reply("my secret complaint"))

        try:
            return await asyncio.to_thread(client)
        finally:
            server.close()
            await server.wait_closed()

    with caplog.at_level("INFO"):
        code, answer = asyncio.run(session())
    app.close()
    assert code == 451 and answer.startswith(b"4.3.0")
    assert stored == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "storing failed (RuntimeError at " in logged  # where, for the code's author
    assert "secret complaint" not in logged and "cannot store" not in logged


def test_a_daemon_without_listeners_still_finishes_what_was_stored(
    make_config, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """No ``[inbound]`` way in configured: the daemon still runs process_pending at start (a
    pipe that stored and crashed) and the inbound send loop, and sets the Twilio webhook's
    kick while it runs."""
    import asyncio

    from outagecomms.app import App
    from outagecomms.inbound import pipeline
    from outagecomms.inbound.service import InboundService

    cfg = make_config(smtp_server)
    app = App.open(cfg)
    stored = pipeline.store_message(app, reply("stored by a pipe that died"), source="pipe")
    app.close()
    log = tmp_path / "daemon.log"
    daemon = start_daemon(cfg, log)
    try:
        wait_until(
            lambda: [r["status"] for r in inbound_rows(f"sqlite:///{tmp_path / 'store.db'}")
                     if r["id"] == stored.id] == ["processed"]
        )  # fmt: skip
        wait_until(lambda: "daemon ready" in log.read_text())
    finally:
        assert stop(daemon) == 0
    assert "processed 1 inbound" in log.read_text()

    app = App.open(cfg)

    async def kick_while_running() -> tuple[bool, bool]:
        service = InboundService(app, stop=asyncio.Event())
        await service.start()
        running = app.inbound_kick == service.kick.set
        service.stop.set()
        await service.close()
        return running, app.inbound_kick is None

    assert asyncio.run(kick_while_running()) == (True, True)  # set while running, then cleared
    app.close()


def test_the_worker_process_leaves_with_a_killed_daemon(listening) -> None:
    """Processing runs in a worker process of the daemon's: SIGKILL the daemon and the worker
    goes too (it watches its parent), leaving nothing running on the store."""
    import os
    import re

    from tests.support.processes import wait_until

    d = listening()
    d.start()
    wait_until(lambda: re.search(r"worker process (\d+)", d.log.read_text()) is not None)
    match = re.search(r"worker process (\d+)", d.log.read_text())
    assert match is not None
    worker = int(match[1])
    assert os.path.exists(f"/proc/{worker}")
    with d.smtp() as client:
        assert _send(client, reply("Processed by the worker?"))[0] == 250
    assert d.wait_processed(1)[0]["kind"] == "reply"
    d.proc.send_signal(signal.SIGKILL)
    assert d.proc.wait(30) == -signal.SIGKILL
    wait_until(lambda: not os.path.exists(f"/proc/{worker}"), timeout=15)


def test_a_reloaded_config_reaches_the_worker(listening, smtp_server: SmtpServer, cli) -> None:
    """SIGHUP: the next batch is processed by a worker that read the new [[escalation]]."""
    d = listening()
    assert cli("--config", str(d.config), "customers", "import", str(sample_csv())).exit_code == 0
    run_json(d.config, "declare", "Database connections failing", "--severity", "sev2",
             "--component", "database", "--region", "eu-west", "--yes")  # fmt: skip
    customer = next(r for r in sample_rows() if r["id"] == "c0000010")
    ours = smtp_server.handler.wait_for(
        lambda ms: any(m.rcpt_tos == [customer["email"]] for m in ms)
    )
    delivery = next(m for m in ours if m.rcpt_tos == [customer["email"]])
    d.start()
    wait_until(lambda: "worker process" in d.log.read_text())
    rule = '\n[[escalation]]\nname = "everything"\nnotify = ["cs-leads@s1.example"]\n'
    d.config.write_text(d.config.read_text() + rule)
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded config" in d.log.read_text())
    with d.smtp() as client:
        code, _ = _send(client, reply("Thanks, all good here.", sender=customer["email"],
                                      in_reply_to=delivery.message_id))  # fmt: skip
    assert code == 250
    got = smtp_server.handler.wait_for(
        lambda ms: any("cs-leads@s1.example" in m.rcpt_tos for m in ms)
    )
    told = next(m for m in got if "cs-leads@s1.example" in m.rcpt_tos)
    assert "everything" in str(told.message["Subject"])
    assert "inbound worker restarted for the reloaded config" in d.log.read_text()
    assert d.stop() == 0
