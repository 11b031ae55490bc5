"""Shared helpers for the benchmarks: customer data, a throwaway config, SMTP sinks, timing.

Everything runs on loopback in a temporary directory; nothing here touches the user's config
or store. The benchmarks call ``outagecomms`` as real subprocesses (the commander's view) and
measure from the outside.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "tools" / "gen_customers.py"
PYTHON = sys.executable
SMTP_SINK = "/usr/sbin/smtp-sink"
ALL_TIERS = ("enterprise", "business", "standard")


def outagecomms_cmd() -> list[str]:
    """The CLI of the interpreter running the benchmark (the venv's console script)."""
    script = Path(PYTHON).with_name("outagecomms")
    if script.exists():
        return [str(script)]
    return [PYTHON, "-m", "outagecomms"]


# --- customers -------------------------------------------------------------------------------


def customers_csv(n: int, seed: int = 7) -> tuple[str, str]:
    """The directory CSV and where it came from (the shared generator, else the built-in copy)."""
    if GENERATOR.is_file():
        res = subprocess.run(
            [PYTHON, str(GENERATOR), str(n), "--seed", str(seed)],
            check=True,
            capture_output=True,
            text=True,
        )
        return res.stdout, str(GENERATOR)
    return _gen_customers(n, seed), "built-in copy of gen_customers.py"


# A faithful copy of /work/shared/tools/gen_customers.py (same seed -> same rows), used only when
# the shared tools folder is not next to the repository.
_COMPONENTS = [
    "api",
    "dashboard",
    "database",
    "storage",
    "dns",
    "cdn",
    "email-relay",
    "billing",
    "auth",
    "search",
    "queue",
    "backups",
]
_REGIONS = ["us-east", "us-west", "eu-west", "eu-central", "ap-south", "ap-northeast"]
_TIERS = [
    ("enterprise", 0.05, (5000, 50000)),
    ("business", 0.25, (500, 5000)),
    ("standard", 0.70, (20, 500)),
]
_ZONES = [
    ("America/New_York", "en_US", "USD"),
    ("America/Los_Angeles", "en_US", "USD"),
    ("Europe/London", "en_GB", "GBP"),
    ("Europe/Berlin", "de_DE", "EUR"),
    ("Europe/Paris", "fr_FR", "EUR"),
    ("Asia/Kolkata", "en_IN", "INR"),
    ("Asia/Tokyo", "ja_JP", "JPY"),
    ("Australia/Sydney", "en_AU", "AUD"),
]
_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Wonka",
    "Cyberdyne",
    "Aperture",
    "Massive",
    "Dynamic",
    "Blue",
    "North",
    "Summit",
    "Pioneer",
    "Harbor",
    "Quantum",
    "Silver",
    "Cedar",
    "Falcon",
]
_SUFFIXES = ["Corp", "Labs", "GmbH", "Ltd", "Inc", "Systems", "Analytics", "Cloud", "Logistics"]


def _pick_tier(r: float) -> tuple[str, int, int]:
    acc = 0.0
    for tier, share, (lo, hi) in _TIERS:
        acc += share
        if r <= acc:
            return tier, lo, hi
    tier, _share, (lo, hi) = _TIERS[-1]
    return tier, lo, hi


def _gen_customers(n: int, seed: int) -> str:
    rng = random.Random(seed)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(
        [
            "id",
            "name",
            "email",
            "phone",
            "slack_webhook",
            "tier",
            "monthly_fee",
            "currency",
            "components",
            "regions",
            "tags",
            "timezone",
            "locale",
            "account_manager",
        ]
    )
    for i in range(1, n + 1):
        tier, lo, hi = _pick_tier(rng.random())
        zone, locale, currency = rng.choice(_ZONES)
        name = f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} {rng.choice(_SUFFIXES)} {i}"
        slug = f"c{i:07d}"
        comps = sorted(rng.sample(_COMPONENTS, rng.randint(1, 5)))
        regions = sorted(rng.sample(_REGIONS, rng.randint(1, 2)))
        tags = []
        if rng.random() < 0.1:
            tags.append("beta")
        if rng.random() < 0.05:
            tags.append("regulated")
        phone = (
            f"+1555{rng.randint(100, 199):03d}{rng.randint(0, 9999):04d}"
            if rng.random() < 0.6
            else ""
        )
        slack = (
            f"http://127.0.0.1:9/hooks/{slug}" if tier != "standard" and rng.random() < 0.5 else ""
        )
        fee = (
            f"{rng.uniform(lo, hi):.2f}"
            if currency != "JPY"
            else str(int(rng.uniform(lo, hi) * 150))
        )
        manager = f"am{rng.randint(1, 40)}@support.example.net" if tier == "enterprise" else ""
        out.writerow(
            [
                slug,
                name,
                f"ops+{slug}@example.com",
                phone,
                slack,
                tier,
                fee,
                currency,
                ";".join(comps),
                ";".join(regions),
                ";".join(tags),
                zone,
                locale,
                manager,
            ]
        )
    return buf.getvalue()


# --- config ----------------------------------------------------------------------------------


def write_config(
    workdir: Path, *, smtp_port: int, max_connections: int, batch_size: int | None = None
) -> Path:
    """A self-contained config: SQLite in ``workdir``, email over SMTP to the local sink."""
    dispatch = f"\n[dispatch]\nbatch_size = {batch_size}\n" if batch_size else ""
    text = f"""\
[store]
url = "sqlite:///{workdir / "bench.db"}"

[company]
name = "Bench Co"
status_page_url = "https://status.example.com"
support_email = "support@example.com"

[policy.default]
channels = {{ default = ["email"] }}

[channels.email]
kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Bench Support <support@example.com>"
timeout = 30
max_connections = {max_connections}
rate_per_second = 0
{dispatch}"""
    path = workdir / "outagecomms.toml"
    path.write_text(text)
    return path


def run_cli(
    config: Path, *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [*outagecomms_cmd(), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
    )
    if check and res.returncode != 0:
        raise RuntimeError(
            f"outagecomms {' '.join(args[:2])} exited {res.returncode}: {res.stderr.strip()[-800:]}"
        )
    return res


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    for k in ("OUTAGECOMMS_CONFIG", "OUTAGECOMMS_STORE_URL", "OUTAGECOMMS_DEBUG"):
        env.pop(k, None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"SMTP sink did not listen on 127.0.0.1:{port}") from None
            time.sleep(0.05)


# --- SMTP sinks ------------------------------------------------------------------------------


def ensure_smtp_sink() -> str | None:
    """Path of postfix's smtp-sink, installing postfix with apt-get if it is missing.
    None when it cannot be had (the caller falls back to the aiosmtpd sink)."""
    found = shutil.which("smtp-sink") or (SMTP_SINK if os.path.exists(SMTP_SINK) else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "postfix"]
    print("installing postfix for smtp-sink (apt-get) ...", file=sys.stderr, flush=True)
    for cmd in (install, ["apt-get", "update", "-qq"], install):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if cmd is install and res.returncode == 0:
            break
    found = shutil.which("smtp-sink") or (SMTP_SINK if os.path.exists(SMTP_SINK) else None)
    return found


_MESG = re.compile(rb"mesg=(\d+)")


@dataclass
class Sink:
    """A local SMTP server that accepts and discards mail, counting messages.

    Both kinds print ``mesg=<total>`` whenever a message is accepted (smtp-sink's ``-c``
    counter; our aiosmtpd sink imitates it); a reader thread timestamps every change with
    ``time.monotonic()``, the same clock the benchmark uses for the client.
    """

    kind: str  # "smtp-sink" | "aiosmtpd"
    port: int
    connections: int = 8
    count: int = 0
    first_at: float | None = None
    last_at: float | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _thread: threading.Thread | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> Sink:
        if self.kind == "smtp-sink":
            exe = ensure_smtp_sink()
            if exe is None:
                raise RuntimeError("smtp-sink is not installed and could not be installed")
            cmd = [exe, "-c", "-m", str(max(256, self.connections + 16))]
            if os.geteuid() == 0:
                cmd += ["-u", "nobody"]  # required when started by root
            cmd += [f"127.0.0.1:{self.port}", "1024"]
        else:
            cmd = [PYTHON, str(BENCH_DIR / "aiosmtpd_sink.py"), "127.0.0.1", str(self.port)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait_port(self.port)
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stream: IO[bytes] = self._proc.stdout
        buf = b""
        while True:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                return
            now = time.monotonic()
            buf += chunk
            *done, buf = re.split(rb"[\r\n]", buf)
            last = None
            for token in done:
                m = _MESG.search(token)
                if m:
                    last = int(m.group(1))
            if last is not None and last > self.count:
                with self._cond:
                    if self.first_at is None:
                        self.first_at = now
                    self.count = last
                    self.last_at = now
                    self._cond.notify_all()

    def wait_for(self, n: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, timeout)

    def settle(self, quiet: float = 0.3) -> None:
        """Wait until no new message has arrived for ``quiet`` seconds (catch extra sends)."""
        while True:
            seen = self.count
            time.sleep(quiet)
            if self.count == seen:
                return

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        if self._thread is not None:
            self._thread.join(2)

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- small things ----------------------------------------------------------------------------


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def machine_line() -> str:
    import platform

    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.node()} · {os.cpu_count()} cores · {cpu or platform.machine()} · "
        f"Python {platform.python_version()}"
    )


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f} s"


def as_json_line(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str)
