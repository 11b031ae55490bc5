"""Running the CLI and the daemon as real subprocesses (or the CLI in-process where the process
boundary is not what is tested), and waiting on what they do."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def parse_ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def run_cli_process(
    *args: str, config: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "outagecomms", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def cli_json(config: Path, *args: str) -> Any:
    """``outagecomms --config config args --json`` in a subprocess: it must succeed."""
    proc = run_cli_process(*args, "--json", config=config)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@functools.cache
def _cli_command() -> Any:
    """The CLI as one click command, built once per test process: Typer builds it again from
    the commands' annotations on every invoke (~50 ms), and it is the same every time."""
    import typer.main

    from outagecomms.cli import app

    return typer.main.get_command(app)


def run_cli(*args: str, input: str | None = None) -> CliResult:
    """Run the CLI in this process (click's CliRunner): exit code, stdout, stderr."""
    from click.testing import CliRunner

    res = CliRunner().invoke(_cli_command(), list(args), input=input, catch_exceptions=False)
    return CliResult(res.exit_code, res.stdout, res.stderr)


def run_json(config: Path, *args: str) -> Any:
    """``cli_json`` in this process: for a test's setup and checks where the process boundary
    is not what is tested (a subprocess costs ~0.5 s to start)."""
    res = run_cli("--config", str(config), *args, "--json")
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "outagecomms", "--config", str(config), "daemon"],
        stdout=fh,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=timeout)


def wait_until(predicate: Callable[[], bool], timeout: float = 30, interval: float = 0.1) -> None:
    """Poll a condition that has no event to wait on (the state of another process's store)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)
