"""Shared helpers for the benchmarks: customer data, a throwaway config, SMTP sinks, timing.

Everything runs on loopback in a temporary directory; nothing here touches the user's config
or store. The benchmarks call ``outagecomms`` as real subprocesses (the commander's view) and
measure from the outside.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import gen_customers

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
ALL_TIERS = ("enterprise", "business", "standard")


def outagecomms_cmd() -> list[str]:
    """The CLI of the interpreter running the benchmark (the venv's console script)."""
    script = Path(PYTHON).with_name("outagecomms")
    if script.exists():
        return [str(script)]
    return [PYTHON, "-m", "outagecomms"]


# --- customers -------------------------------------------------------------------------------


def customers_csv(n: int, seed: int = 7) -> tuple[str, str]:
    """The directory CSV and where it came from (the project's own ``gen_customers.py``)."""
    buf = io.StringIO()
    gen_customers.generate(n, seed, buf)
    return buf.getvalue(), "benchmarks/gen_customers.py"


def write_customers(workdir: Path, n: int, seed: int) -> tuple[Path, list[dict[str, str]], str]:
    """``customers_csv(n, seed)`` written to ``workdir/customers.csv``: its path, its rows and
    where it came from."""
    csv_text, source = customers_csv(n, seed)
    path = workdir / "customers.csv"
    path.write_text(csv_text)
    return path, list(csv.DictReader(io.StringIO(csv_text))), source


def tiers_of(rows: Iterable[dict[str, str]]) -> list[str]:
    """The tiers present in a customer directory, sorted."""
    return sorted({r["tier"] for r in rows})


def tier_args(tiers: Iterable[str]) -> list[str]:
    """``--tier T`` for every tier (selects every customer of those tiers)."""
    return [a for t in tiers for a in ("--tier", t)]


# --- config ----------------------------------------------------------------------------------


def config_text(store_url: str, channel: str, channel_toml: str, tail: str = "") -> str:
    """The text every benchmark config shares: ``[store]`` at ``store_url``, the bench company,
    a default policy sending every tier to ``channel``; then ``channel_toml`` (that channel's
    table, ending in a newline) and ``tail`` (further tables, already TOML)."""
    return f"""\
[store]
url = "{store_url}"

[company]
name = "Bench Co"
status_page_url = "https://status.example.com"
support_email = "support@example.com"

[policy.default]
channels = {{ default = ["{channel}"] }}

{channel_toml}{tail}"""


def smtp_channel_toml(smtp_port: int, max_connections: int) -> str:
    """``[channels.email]``: SMTP without TLS to the local sink on ``smtp_port``, no rate limit."""
    return f"""\
[channels.email]
kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Bench Support <support@example.com>"
timeout = 30
max_connections = {max_connections}
rate_per_second = 0
"""


def write_config(
    workdir: Path, *, smtp_port: int, max_connections: int, batch_size: int | None = None
) -> Path:
    """A self-contained config: SQLite in ``workdir``, email over SMTP to the local sink."""
    dispatch = f"\n[dispatch]\nbatch_size = {batch_size}\n" if batch_size else ""
    text = config_text(
        f"sqlite:///{workdir / 'bench.db'}",
        "email",
        smtp_channel_toml(smtp_port, max_connections),
        dispatch,
    )
    path = workdir / "outagecomms.toml"
    path.write_text(text)
    return path


def run_cli(
    config: Path,
    *args: str,
    timeout: float = 600,
    check: bool = True,
    env: dict[str, str] | None = None,
    stdin: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """``outagecomms --config CONFIG ARGS...`` as a real subprocess, output captured; raises
    when it fails (``check``). ``env`` defaults to ``cli_env()``."""
    res = subprocess.run(
        [*outagecomms_cmd(), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env() if env is None else env,
        stdin=stdin,
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


# --- the declare subprocess ------------------------------------------------------------------


def declare_cmd(config: Path, tiers: Iterable[str], *, queue_only: bool = False) -> list[str]:
    """``outagecomms --config CONFIG -v declare "Bench" --severity sev2 --tier ...
    [--queue-only] --yes --json``: every customer of ``tiers`` selected; ``-v`` logs the
    ``declared`` event (a JSON line: stderr is a pipe) that ``DeclareProc`` times."""
    cmd = [*outagecomms_cmd(), "--config", str(config), "-v", "declare", "Bench"]
    cmd += ["--severity", "sev2", *tier_args(tiers)]
    if queue_only:
        cmd.append("--queue-only")
    return [*cmd, "--yes", "--json"]


def log_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The events (``outagecomms.logs.log_event``) among JSON log lines: what a benchmark reads
    of a process's log, never the wording of a message."""
    for line in lines:
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict) and doc.get("event"):
                    yield doc


def read_declare_stderr(
    stream: IO[bytes], t0: float, marks: dict[str, float], lines: list[str]
) -> None:
    """Collect ``declare``'s stderr into ``lines``, marking (seconds since ``t0``) when the
    incident was committed (the ``declared`` event: ``marks["committed"]``)."""
    for raw in iter(stream.readline, b""):
        now = time.monotonic() - t0
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        if "committed" not in marks and any(e["event"] == "declared" for e in log_events([line])):
            marks["committed"] = now


def read_declare_stdout(
    stream: IO[bytes], t0: float, marks: dict[str, float], out: list[bytes]
) -> None:
    """Collect ``declare --json``'s stdout, marking when the document began
    (``marks["dispatch_done"]``): it is printed once the acknowledgement's dispatch returned."""
    first = stream.read(1)
    if first:
        marks["dispatch_done"] = time.monotonic() - t0
    out.append(first + stream.read())


@dataclass
class DeclareProc:
    """A ``declare`` subprocess whose stdout and stderr are read by threads: stdout kept whole,
    stderr as lines, with the moments of their marks (``read_declare_stderr``/``_stdout``)."""

    proc: subprocess.Popen[bytes]
    t0: float
    marks: dict[str, float] = field(default_factory=dict)
    err_lines: list[str] = field(default_factory=list)
    _out: list[bytes] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, cmd: list[str], env: dict[str, str], t0: float | None = None) -> DeclareProc:
        """Start ``cmd``; marks count from ``t0`` (default: just before the start)."""
        t0 = time.monotonic() if t0 is None else t0
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
        )
        self = cls(proc, t0)
        assert proc.stdout is not None and proc.stderr is not None
        stdout = proc.stdout
        self._threads = [
            threading.Thread(
                target=read_declare_stderr,
                args=(proc.stderr, t0, self.marks, self.err_lines),
                daemon=True,
            ),
            threading.Thread(
                target=read_declare_stdout, args=(stdout, t0, self.marks, self._out), daemon=True
            ),
        ]
        for t in self._threads:
            t.start()
        return self

    def wait_or_kill(self, timeout: float) -> bool:
        """Wait for the exit; past ``timeout`` kill it and return False."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return False
        return True

    def join(self, timeout: float = 5) -> None:
        """Let the readers finish (after the exit)."""
        for t in self._threads:
            t.join(timeout)

    @property
    def stdout(self) -> bytes:
        return b"".join(self._out)


def first_round_sent(config: Path) -> tuple[int, float | None]:
    """INC-1's first round in the store (``show INC-1 --json``): how many deliveries were sent,
    and the seconds from its first to its last ``sent_at`` (None when not known)."""
    from datetime import datetime

    show = json.loads(run_cli(config, "show", "INC-1", "--json").stdout)
    r0 = show["rounds"][0]
    span = None
    try:
        a = datetime.fromisoformat(r0["first_sent_at"].replace("Z", "+00:00"))
        b = datetime.fromisoformat(r0["last_sent_at"].replace("Z", "+00:00"))
        span = (b - a).total_seconds()
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return int(r0["sent"]), span


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


def _which(exe: str) -> str | None:
    return shutil.which(exe) or next(
        (p for p in (f"/usr/sbin/{exe}", f"/usr/bin/{exe}") if os.path.exists(p)), None
    )


def ensure_tool(exe: str, package: str) -> str | None:
    """Path of ``exe``, installing the Debian ``package`` with apt-get if it is missing and we
    are root. None when it cannot be had."""
    found = _which(exe)
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    print(f"installing {package} for {exe} (apt-get) ...", file=sys.stderr, flush=True)
    for cmd in (install, ["apt-get", "update", "-qq"], install):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if cmd is install and res.returncode == 0:
            break
    return _which(exe)


def ensure_smtp_sink() -> str | None:
    """Path of postfix's smtp-sink, installing postfix with apt-get if it is missing.
    None when it cannot be had (the caller falls back to the aiosmtpd sink)."""
    return ensure_tool("smtp-sink", "postfix")


def pick_sink(kind: str) -> str:
    """``kind``, or ``aiosmtpd`` (said on stdout) when smtp-sink was asked for and cannot be had."""
    if kind == "smtp-sink" and ensure_smtp_sink() is None:
        print("smtp-sink unavailable (install postfix); falling back to --sink aiosmtpd")
        return "aiosmtpd"
    return kind


def py_spy() -> str | None:
    """The py-spy next to the interpreter (the venv's), else on PATH; None without one."""
    cand = Path(PYTHON).with_name("py-spy")
    return str(cand) if cand.exists() else shutil.which("py-spy")


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
    return json.dumps(obj, default=str)


def fmt_secs(x: float | None) -> str:
    """Seconds in a 10-wide column (``"   1.234 s"``), a dash when not measured."""
    return "        -" if x is None else f"{x:8.3f} s"


def fmt_rate(x: float | None) -> str:
    """Messages per second (``"3,312 msgs/s"``), a dash when not measured."""
    return "-" if x is None else f"{x:,.0f} msgs/s"


@dataclass
class BenchRun:
    """What ``bench_run`` yields: the work directory; set ``failed`` for exit status 1."""

    workdir: Path
    failed: bool = False

    @property
    def status(self) -> int:
        return 1 if self.failed else 0


@contextlib.contextmanager
def bench_run(prefix: str, *, keep: bool, kept_note: str = "") -> Iterator[BenchRun]:
    """A benchmark's body in a fresh temp dir (``prefix``...). An exception in it is reported as
    ``benchmark broke: ...`` on stderr and marks the run failed (it does not propagate); the
    dir is removed afterwards, or kept with ``keep`` (``kept DIR`` + ``kept_note``)."""
    run = BenchRun(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        yield run
    except Exception as exc:  # report, clean up, exit 1
        print(f"benchmark broke: {type(exc).__name__}: {exc}", file=sys.stderr)
        run.failed = True
    finally:
        if keep:
            print(f"kept {run.workdir}{kept_note}")
        else:
            shutil.rmtree(run.workdir, ignore_errors=True)


# --- py-spy raw stacks -------------------------------------------------------------------------


def layer_of(frames: Iterable[str], layers: Sequence[tuple[str, str]]) -> str:
    """The name of the first ``(pattern, name)`` of ``layers`` whose pattern is in one of
    ``frames`` (give them innermost first: the innermost match wins); ``"other"`` for none."""
    for f in frames:
        for pat, name in layers:
            if pat in f:
                return name
    return "other"


def pyspy_samples(raw: Path) -> Iterator[tuple[list[str], list[str], int]]:
    """The stacks of a ``py-spy record --format raw`` file as (frames outermost first, their
    function names, sample count); idle executor threads left out."""
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if frames[-1].startswith("_worker (concurrent/futures/thread.py"):
            continue  # an idle executor thread (aiosmtplib resolves the local hostname there)
        yield frames, [f.split(" (")[0] for f in frames], int(count)


@dataclass
class PyspyTally:
    """Samples of a py-spy run: by phase; and within the dispatch phase by layer, by leaf frame
    and (inclusive) by each frame of interest."""

    phases: collections.Counter[str] = field(default_factory=collections.Counter)
    layers: collections.Counter[str] = field(default_factory=collections.Counter)
    leaves: collections.Counter[str] = field(default_factory=collections.Counter)
    lines: collections.Counter[str] = field(default_factory=collections.Counter)


def share_table(counter: collections.Counter[str], total: float, unit: str, per: float) -> None:
    """One line per entry, largest first: its share of ``total`` and ``count x per`` in ``unit``."""
    for name, v in counter.most_common():
        print(f"  {100 * v / total:5.1f}%  {v * per:9.1f} {unit}  {name}")


def print_pyspy(
    tally: PyspyTally, rate: int, n: int, *, leaves: int, lines: int, what: str
) -> None:
    """The py-spy summary both fan-out profiles print: CPU by phase, the dispatch phase by
    layer per message, its hottest leaf frames and the hottest ``what`` lines."""
    ms = 1000 / rate
    total = sum(tally.phases.values())
    print(f"\n[CPU samples by phase ({total} samples at {rate} Hz; ms = samples x {ms:g} ms)]")
    share_table(tally.phases, total, "ms", ms)
    d = sum(tally.layers.values()) or 1
    print(f"\n[dispatch phase by layer (innermost frame wins), CPU per message over {n}]")
    share_table(tally.layers, d, "us/msg", 1000 * ms / n)
    print("\n[hottest leaf frames in the dispatch phase]")
    for f, v in tally.leaves.most_common(leaves):
        print(f"  {100 * v / d:5.1f}%  {f}")
    print(f"\n[inclusive: {what} lines (share of the dispatch phase)]")
    for f, v in tally.lines.most_common(lines):
        print(f"  {100 * v / d:5.1f}%  {f}")


def per_second(n: int, start: float | None, end: float | None) -> float | None:
    """``n`` events over ``start`` .. ``end`` (seconds), or None when that span is unknown or empty."""
    if start is None or end is None or end <= start:
        return None
    return n / (end - start)


@dataclass(kw_only=True)
class FanoutTimes:
    """When a fan-out of ``n`` messages reached its milestones, in seconds since the declare
    started (None: not seen), and the rates they give. A benchmark's result extends it."""

    n: int
    committed: float | None = None  # the "declared" event on declare's stderr
    first: float | None = None  # the first message at the sink
    last: float | None = None  # the last message at the sink: the fan-out's wall time

    @property
    def rate(self) -> float | None:
        """End to end: ``n`` over the wall time."""
        return self.n / self.last if self.last else None

    @property
    def dispatch_rate(self) -> float | None:
        """Dispatch only: from the commit to the last message."""
        return per_second(self.n, self.committed, self.last)

    @property
    def sink_rate(self) -> float | None:
        """At the sink: from the first message to the last."""
        return per_second(self.n, self.first, self.last)


def tally_pyspy(
    raw: Path,
    phase_of: Callable[[list[str]], str],
    layers: Sequence[tuple[str, str]],
    hot: Sequence[str],
) -> PyspyTally:
    """Count the samples of ``raw`` by ``phase_of(function names)``; for the phase whose name
    starts with ``dispatch`` also by ``layer_of`` (innermost frame first), by leaf frame, and
    inclusively by every frame that contains one of ``hot``."""
    t = PyspyTally()
    for frames, names, c in pyspy_samples(raw):
        phase = phase_of(names)
        t.phases[phase] += c
        if not phase.startswith("dispatch"):
            continue
        t.layers[layer_of(reversed(frames), layers)] += c
        t.leaves[frames[-1]] += c
        for f in set(frames):
            if any(p in f for p in hot):
                t.lines[f] += c
    return t
