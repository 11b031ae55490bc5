"""Safe from a runbook or at 3 a.m. (issue 10): a sending command with no terminal to ask on
refuses unless ``--yes``; the terminal prompt shows one rendered message; Ctrl-C during a
fan-out says what was sent and what finishes the rest; the store is never a silent default;
the cadence has a floor."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.smtp import SmtpServer
from tests.support.data import sample_csv, step_rule
from tests.support.processes import CliResult, run_json

NOT_A_TERMINAL = "error: not a terminal: pass --yes to send"
DECLARE = ("declare", "Database down", "-s", "sev2", "-c", "database", "-m", "Queries fail.")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _piped(cfg: Path, *args: str, answer: str = "n\n") -> subprocess.CompletedProcess[str]:
    """``echo n | outagecomms ...``: a real process whose stdin is a pipe."""
    return subprocess.run(
        [sys.executable, "-m", "outagecomms", "--config", str(cfg), *args],
        input=answer,
        capture_output=True,
        text=True,
        timeout=60,
    )


# the setup and the checks run the CLI in-process (``run_json``, ``_incidents``, ``_rounds``):
# the process boundary tested here is the refusing command's own (``_piped``, a terminal)


def _incidents(cfg: Path) -> list[dict[str, object]]:
    return list(run_json(cfg, "list", "--all")["incidents"])


def _rounds(cfg: Path, ref: str) -> list[str]:
    return [r["kind"] for r in run_json(cfg, "show", ref)["rounds"]]


@pytest.fixture
def cfg(make_config: Callable[..., Path], smtp_server: SmtpServer) -> Path:
    path = make_config(smtp_server)
    run_json(path, "customers", "import", str(sample_csv()), "--yes")
    return path


# --- 1. no terminal, no --yes: nothing is sent ---------------------------------------------------


@pytest.mark.parametrize("extra", [(), ("--queue-only",), ("--json",)])
def test_declare_from_a_pipe_refuses_without_yes(cfg: Path, extra: tuple[str, ...]) -> None:
    proc = _piped(cfg, *DECLARE, *extra)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == NOT_A_TERMINAL
    assert proc.stdout == ""
    assert _incidents(cfg) == []


def test_update_and_resolve_from_a_pipe_refuse_without_yes(
    cfg: Path, smtp_server: SmtpServer
) -> None:
    run_json(cfg, *DECLARE, "--yes")
    for args in (("update", "INC-1", "Rolled back."), ("resolve", "INC-1", "Fixed.")):
        proc = _piped(cfg, *args, answer="y\n")  # even a "y" on a pipe is nobody's answer
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == NOT_A_TERMINAL
    assert _rounds(cfg, "INC-1") == ["acknowledgement"]
    # recording history sends nothing, so it needs no terminal
    proc = _piped(cfg, "update", "INC-1", "Noted.", "--no-send")
    assert proc.returncode == 0, proc.stderr
    assert _rounds(cfg, "INC-1") == ["acknowledgement", "update"]


def test_void_and_reopen_from_a_pipe_refuse_without_yes(cfg: Path) -> None:
    run_json(cfg, *DECLARE, "--yes")
    proc = _piped(cfg, "void", "INC-1", "--reason", "A false alarm.", answer="y\n")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == NOT_A_TERMINAL
    assert _incidents(cfg)[0]["status"] == "investigating"
    run_json(cfg, "resolve", "INC-1", "Fixed.", "--yes")
    proc = _piped(cfg, "reopen", "INC-1", "It is back.", answer="y\n")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == NOT_A_TERMINAL
    assert _rounds(cfg, "INC-1") == ["acknowledgement", "resolution"]


# --- 1. the terminal prompt shows one rendered message -------------------------------------------


def _on_a_terminal(cfg: Path, args: tuple[str, ...], answer: bytes) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin and stderr; answer its prompt once it is
    asked. Returns the exit code and what the terminal showed."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "outagecomms", "--config", str(cfg), *args],
        stdin=slave,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    os.close(slave)
    shown = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, f"no output for 60 s; so far: {shown!r}"
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the process closed the terminal (it exited)
                break
            if not chunk:
                break
            shown += chunk
            if not answered and b"[y/N]" in shown:
                os.write(master, answer)
                answered = True
        code = proc.wait(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert answered, shown
    return code, ANSI.sub("", shown.decode(errors="replace")).replace("\r", "")


def test_the_prompt_shows_the_counts_and_one_rendered_message(
    cfg: Path, smtp_server: SmtpServer
) -> None:
    code, shown = _on_a_terminal(cfg, DECLARE, b"n\n")
    assert code == 2, shown
    assert "notify" in shown and "customers (email:" in shown
    m = re.search(r"--- acknowledgement for (c\d+) on email ---\nSubject: (.+)\n(.+)\n", shown)
    assert m is not None, shown
    assert "Database down" in m.group(2)
    assert "nothing sent" in shown
    assert _incidents(cfg) == []

    code, shown = _on_a_terminal(cfg, DECLARE, b"y\n")
    assert code == 0, shown
    msgs = smtp_server.handler.wait_for(lambda ms: len(ms) >= 1)
    first = re.search(r"--- acknowledgement for (c\d+) on email ---\nSubject: (.+)\n", shown)
    assert first is not None, shown
    (sent,) = [x for x in smtp_server.handler.wait_for(
        lambda ms: any(x.customer == first.group(1) for x in ms)
    ) if x.customer == first.group(1)]  # fmt: skip
    # the prompt's sample is the message that customer got (the incident had no number yet)
    assert str(sent.message["Subject"]) == first.group(2).replace("INC-NEW", "INC-1")
    assert msgs

    code, shown = _on_a_terminal(cfg, ("update", "INC-1", "Rolled back the deploy."), b"n\n")
    assert code == 2, shown
    assert "Send the update of INC-1" in shown
    assert re.search(r"--- update for c\d+ on email ---\nSubject: .+\n", shown), shown
    assert "Rolled back the deploy." in shown
    assert _rounds(cfg, "INC-1") == ["acknowledgement"]


# --- 4. the cadence has a floor ------------------------------------------------------------------


def _default_floor(cfg: Path) -> None:
    """The tests' config lowers the floor to 1s; this one keeps the policy's default (5m)."""
    cfg.write_text(cfg.read_text().replace('min_update_every = "1s"\n', ""))


def test_every_below_the_policys_floor_needs_allow_short_cadence(
    cfg: Path, cli: Callable[..., CliResult]
) -> None:
    _default_floor(cfg)
    res = cli("--config", str(cfg), *DECLARE, "--every", "2m", "--yes")
    assert res.exit_code == 2, res.stderr
    assert res.stderr.strip() == (
        "error: field '--every' = '2m': is below the floor for sev2 incidents, 5m (policy "
        "min_update_every); pass --allow-short-cadence to update customers that often"
    )
    assert _incidents(cfg) == []
    res = cli("--config", str(cfg), *DECLARE, "--every", "5m", "--yes", "--no-send")
    assert res.exit_code == 0, res.stderr
    res = cli("--config", str(cfg), "update", "INC-1", "Rolled back.", "--every", "90s", "--yes")
    assert res.exit_code == 2, res.stderr
    assert "'--every' = '1m30s': is below the floor for sev2 incidents, 5m" in res.stderr
    assert _rounds(cfg, "INC-1") == ["acknowledgement"]
    res = cli(
        "--config", str(cfg), "update", "INC-1", "Rolled back.", "--every", "2m",
        "--allow-short-cadence", "--no-send", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert _rounds(cfg, "INC-1") == ["acknowledgement", "update"]
    res = cli(
        "--config", str(cfg), *DECLARE, "-c", "auth", "--every", "2m", "--allow-short-cadence",
        "--yes", "--no-send", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["incident"] == "INC-2"


@pytest.mark.parametrize(
    ("policy", "key"),
    [
        ('[policy.default]\nupdate_every = "2m"', "policy.default.update_every"),
        ('[policy.sev1]\nupdate_every = "3m"', "policy.sev1.update_every"),
        ('[policy.sev1]\nmin_update_every = "45m"', "policy.sev1.min_update_every"),
    ],
)
def test_a_policy_cadence_below_its_floor_is_a_config_error(
    tmp_path: Path, policy: str, key: str
) -> None:
    from outagecomms.config.loader import load_config
    from outagecomms.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text(policy + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path.resolve()}: {key}: update_every (")
    assert "is below min_update_every" in str(exc.value)


# --- 3. no config file: no silent default store ---------------------------------------------------

STORE_COMMANDS = [
    ("list",),
    ("show", "INC-1"),
    ("customers", "list"),
    ("customers", "import", "customers.csv", "--yes"),
    ("declare", "Database down", "-s", "sev2", "-c", "database", "--yes"),
    ("tick",),
    ("doctor", "--no-probe"),
    ("db", "init"),
    ("db", "upgrade"),
    ("credits", "INC-1"),
    ("deliveries", "INC-1"),
]


@pytest.mark.parametrize("args", STORE_COMMANDS, ids=" ".join)
def test_without_a_config_file_store_commands_refuse(
    args: tuple[str, ...], cli: Callable[..., CliResult], isolated_env: Path
) -> None:
    from outagecomms.config.model import user_config_file, user_data_dir

    res = cli(*args)
    assert res.exit_code == 2, res.stderr
    line = res.stderr.strip()
    assert "\n" not in line
    assert line.startswith("error: no config file: looked at $OUTAGECOMMS_CONFIG (not set), ")
    assert str(isolated_env / "outagecomms.toml") in line
    assert str(user_config_file()) in line
    assert "--config FILE" in line and "`outagecomms init`" in line
    assert not user_data_dir().exists()  # no default store was created or opened


def test_without_a_config_file_init_demo_and_help_work(
    cli: Callable[..., CliResult], isolated_env: Path, tmp_path: Path
) -> None:
    assert cli("--help").exit_code == 0
    assert cli("declare", "--help").exit_code == 0
    res = cli("init", str(isolated_env), "--yes")
    assert res.exit_code == 0, res.stderr
    # the folder now has ./outagecomms.toml: the same command works
    assert cli("list").exit_code == 0
    proc = subprocess.run(
        [sys.executable, "-m", "outagecomms", "demo", "--dir", str(tmp_path / "demo"), "--every",
         "1s"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


# --- 2. Ctrl-C during a fan-out ----------------------------------------------------------------

INTERRUPTED = re.compile(
    r"interrupted: (\d+) sent, (\d+) queued; `outagecomms tick` or the daemon sends the rest"
)


def test_ctrl_c_during_the_fan_out_says_what_was_sent_and_what_finishes_it(
    make_config: Callable[..., Path],
) -> None:
    import signal

    from tests.fakes.smtp import RecordingHandler, running_smtp

    handler = RecordingHandler(delay=0.5)  # a slow mail server: each message takes 0.5 s
    with running_smtp(handler) as server:
        cfg = make_config(server)  # max_connections = 4: at most 4 sends in flight
        width = 4
        run_json(cfg, "customers", "import", str(sample_csv()), "--yes")
        declare = subprocess.Popen(
            [sys.executable, "-m", "outagecomms", "--config", str(cfg), *DECLARE, "--yes"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            at_signal = len(handler.wait_for(lambda ms: len(ms) >= 1))
            declare.send_signal(signal.SIGINT)
            _, err = declare.communicate(timeout=60)
        finally:
            if declare.poll() is None:
                declare.kill()
        assert declare.returncode == 130, err
        assert "Traceback" not in err and "never retrieved" not in err, err
        lines = err.strip().splitlines()
        assert lines[0].startswith("INC-1 declared: ")
        assert len(lines) == 2, err  # the declaration, then one line for the interruption
        m = INTERRUPTED.fullmatch(lines[1])
        assert m is not None, err
        sent, queued = int(m.group(1)), int(m.group(2))
        received = handler.snapshot()
        # what was in flight at Ctrl-C ended and was recorded; nothing new started after it
        assert len(received) == sent
        assert len(received) <= at_signal + width
        show = run_json(cfg, "show", "INC-1")
        (ack,) = show["rounds"]
        assert queued == ack["pending"] > 0
        assert ack["sent"] == sent and sent + queued == ack["owed"]
        # the command it names finishes the job, each customer once
        handler.delay = 0
        run_json(cfg, "tick", "--yes")
        got = handler.wait_for(lambda ms: len(ms) >= ack["owed"])
        assert sorted(x.customer for x in got) == sorted({x.customer for x in got})


# --- 5. recorded history proposes no credits -----------------------------------------------------

MONEY = f"""
[credits]
{step_rule()}
[[credits.rules]]
kind = "repeat"
window = "30d"
min_incidents = 2
percent = 10

[[goodwill]]
offer = "a session with one of our engineers"
min_incidents = 2
window = "90d"
"""


def _credits(cli: Callable[..., CliResult], cfg: Path, ref: str) -> list[dict[str, Any]]:
    res = cli("--config", str(cfg), "credits", ref, "--json")
    assert res.exit_code == 0, res.stderr
    return [c for c in json.loads(res.stdout)["credits"] if c["amount"] not in ("0", "0.00")]


def _history(
    cli: Callable[..., CliResult],
    cfg: Path,
    *declare_extra: str,
    resolve_extra: tuple[str, ...] = (),
) -> str:
    res = cli(
        "--config", str(cfg), "declare", "Old outage", "-s", "sev2", "-c", "database",
        "--started-at", "-50h", "--no-send", "--json", *declare_extra,
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    ref = str(json.loads(res.stdout)["incident"])
    res = cli(
        "--config", str(cfg), "resolve", ref, "Fixed then.", "--at", "-48h", "--no-send",
        "--json", *resolve_extra,
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    return ref


def test_recorded_history_proposes_no_credits_but_counts_for_repeat_rules(
    cli: Callable[..., CliResult], make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    cfg = make_config(smtp_server, extra=MONEY)
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    old = _history(cli, cfg)
    assert _credits(cli, cfg, old) == []  # 2 h of downtime: 4 blocks, yet nothing proposed
    events = json.loads(cli("--config", str(cfg), "show", old, "--json").stdout)["events"]
    assert any(e["kind"] == "credits_waived" for e in events)
    # a correction of its facts does not propose any either
    res = cli("--config", str(cfg), "edit", old, "--started-at", "-52h", "--yes")
    assert res.exit_code == 0, res.stderr
    assert _credits(cli, cfg, old) == []

    # the live incident that follows: its customers were hit before, which the rules see
    res = cli("--config", str(cfg), *DECLARE, "--started-at", "-5m", "--yes", "--json")
    assert res.exit_code == 0, res.stderr
    ref = json.loads(res.stdout)["incident"]
    res = cli("--config", str(cfg), "resolve", ref, "Fixed.", "--yes", "--json")
    assert res.exit_code == 0, res.stderr
    live = _credits(cli, cfg, ref)
    assert live
    for c in live:
        rules = {str(ln["rule"]) for ln in c["lines"]}
        assert "repeat" in rules, c
        assert c["goodwill"] == "a session with one of our engineers"


@pytest.mark.parametrize(
    ("declare_extra", "resolve_extra"), [(("--credits",), ()), ((), ("--credits",))]
)
def test_credits_flag_proposes_them_for_history(
    cli: Callable[..., CliResult],
    make_config: Callable[..., Path],
    declare_extra: tuple[str, ...],
    resolve_extra: tuple[str, ...],
) -> None:
    cfg = make_config(extra=MONEY)
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    ref = _history(cli, cfg, *declare_extra, resolve_extra=resolve_extra)
    got = _credits(cli, cfg, ref)
    assert got and all({str(ln["rule"]) for ln in c["lines"]} == {"downtime_step"} for c in got)


# --- 6. declare warns when the response SLA is already lost --------------------------------------

SLA = """
[credits]
[[credits.rules]]
kind = "response_sla"
percent = 5
"""


def _expected_total(ids: list[str]) -> tuple[int, str]:
    """How many customers earn the 5% response-SLA credit and its sum, per currency, as Babel
    writes each (rounded half-up to the currency's minor unit, then added)."""
    from decimal import ROUND_HALF_UP, Decimal

    from babel.numbers import format_currency, get_currency_precision

    from tests.support.data import sample_rows

    rows = {r["id"]: r for r in sample_rows()}
    totals: dict[str, Decimal] = {}
    n = 0
    for cid in ids:
        fee, cur = Decimal(rows[cid]["monthly_fee"]), rows[cid]["currency"]
        grid = Decimal(1).scaleb(-get_currency_precision(cur))
        amount = (fee * 5 / 100).quantize(grid, rounding=ROUND_HALF_UP)
        if amount > 0:
            n += 1
            totals[cur] = totals.get(cur, Decimal(0)) + amount
    text = " + ".join(format_currency(v, c, locale="en_US") for c, v in sorted(totals.items()))
    return n, text


def test_declare_warns_when_the_acknowledgement_cannot_be_on_time(
    cli: Callable[..., CliResult], make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    cfg = make_config(smtp_server, extra=SLA)  # ack_within = 10m
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    # the README's old example: started 10 minutes ago, acknowledged within 10 minutes
    res = cli("--config", str(cfg), *DECLARE, "--started-at", "-10m", "--dry-run", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    n, total = _expected_total([r["customer"] for r in data["recipients"]])
    (warning,) = data["warnings"]
    assert warning.startswith("the acknowledgement is due by ")
    assert warning.endswith(
        f"every selected customer will earn the response-SLA credit ({n} customers, about "
        f"{total} in total)"
    )
    assert "has passed" in warning
    assert f"warning: {warning}" in res.stderr

    res = cli("--config", str(cfg), *DECLARE, "--started-at", "-10m", "--dry-run")
    assert res.exit_code == 0, res.stderr
    # "-10m" is read again by this run, so its due time may be a second later
    due_at = re.compile(r"due by \d\d:\d\d:\d\d UTC")
    said = due_at.sub("due by T", " ".join(res.stderr.split()))
    assert f"warning: {due_at.sub('due by T', warning)}" in said

    # the README's example now: started 5 minutes ago, the fan-out ends well in time
    res = cli("--config", str(cfg), *DECLARE, "--started-at", "-5m", "--dry-run", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["warnings"] == []
    assert "warning" not in res.stderr

    res = cli(
        "--config", str(cfg), *DECLARE, "--started-at", "-10m", "--queue-only", "--yes", "--json"
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    (sent_warning,) = json.loads(res.stdout)["warnings"]
    assert sent_warning.endswith(f"({n} customers, about {total} in total)")


def test_a_hook_rules_cadence_below_every_floor_is_a_config_error(tmp_path: Path) -> None:
    from outagecomms.config.loader import load_config
    from outagecomms.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text('[[hooks.rules]]\nname = "db"\nevery = "1m"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path.resolve()}: hooks.rules[0].every: (1m) is below")
    path.write_text('[policy.sev4]\nmin_update_every = "1m"\n[[hooks.rules]]\nevery = "1m"\n')
    assert load_config(path).hooks.rules[0].every is not None
