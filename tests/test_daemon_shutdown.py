"""SIGTERM stops the daemon quietly: exit 0, and nothing in its log reads like a failure (a
wake-up job falling due as the signal arrives used to log ``Error running job wakeup ...
CancelledError``)."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from apscheduler.triggers.date import DateTrigger

from outagecomms.scheduler.daemon import _set, new_scheduler
from outagecomms.values import utcnow
from tests.fakes.smtp import SmtpServer
from tests.support.data import sample_csv
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]
FAILURE_WORDS = ("Error", "Traceback", "CancelledError", "Exception")


class Lines:
    """A process's output, line by line, as it comes (read by a thread: waiting for a line
    is waiting for the process to write it, never a sleep)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        out = proc.stdout

        def read() -> None:
            for line in out:
                self._q.put(line)
            self._q.put(None)

        self._thread = threading.Thread(target=read, daemon=True)
        self._thread.start()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        while not any(text in line for line in self.seen):
            line = self._q.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"the process ended before {text!r}:\n{self.text}")
            self.seen.append(line)

    def rest(self) -> str:
        """Everything, once the process has closed its output."""
        while (line := self._q.get(timeout=60)) is not None:
            self.seen.append(line)
        return self.text

    @property
    def text(self) -> str:
        return "".join(self.seen)


@contextmanager
def daemon(cfg: Path) -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "outagecomms", "--config", str(cfg), "daemon"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield proc, Lines(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_sigterm_stops_the_daemon_quietly(
    make_config: Callable[..., Path], cli: Cli, smtp_server: SmtpServer
) -> None:
    """A busy daemon (holding updates every 2 s, so wake-ups are always falling due) gets
    SIGTERM once it has sent one: exit 0, no error, no traceback."""
    cfg = make_config(smtp_server)

    def run(*args: str) -> CliResult:
        return cli("--config", str(cfg), *args)

    assert run("customers", "import", str(sample_csv())).exit_code == 0
    declare = ("declare", "Database down", "-s", "sev2", "-c", "database", "--every", "2s")
    res = run(*declare, "--queue-only", "--yes")
    assert res.exit_code == 0, res.stderr
    with daemon(cfg) as (proc, lines):
        lines.wait_for("daemon ready")
        lines.wait_for("holding update queued")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        out = lines.rest()
    assert code == 0, out
    for word in FAILURE_WORDS:
        assert word not in out, out


def test_a_job_submitted_as_the_daemon_stops_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The mechanism, deterministically: the scheduler shuts down in the very loop turn a
    wake-up job is submitted, before it ran (both are loop callbacks, in this order): the job
    is cancelled without an ``Error running job ... CancelledError`` line."""

    async def main() -> None:
        scheduler = new_scheduler()
        scheduler.start()
        woken = asyncio.Event()
        # due now: submitted at the loop's next turn
        scheduler.add_job(_set, DateTrigger(run_date=utcnow()), args=[woken], id="wakeup")
        scheduler.shutdown(wait=False)  # SIGTERM: in that same turn, after the submission
        for _ in range(5):  # the cancelled job's done-callbacks run
            await asyncio.sleep(0)
        assert not woken.is_set()  # it was cancelled before it ran

    with caplog.at_level(logging.DEBUG, logger="apscheduler"):
        asyncio.run(main())
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [], [r.getMessage() for r in errors]
