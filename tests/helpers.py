"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from conftest import sample_csv


def parse_ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def sample_rows() -> list[dict[str, str]]:
    with sample_csv().open(newline="") as fh:
        return list(csv.DictReader(fh))


def expected_ids(component: str, region: str) -> set[str]:
    return {
        r["id"]
        for r in sample_rows()
        if component in r["components"].split(";") and region in r["regions"].split(";")
    }


def cli_json(config: Path, *args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "outagecomms", "--config", str(config), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


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
