"""Secret hygiene: a URL's password is never printed or logged (doctor, errors, the daemon's
start line, every log line), and a ``*_env`` key holding what looks like the secret itself is
warned about on load and in ``doctor`` without the value ever being shown."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from outagecomms.config.loader import load_config
from outagecomms.logs import JsonFormatter, TerminalFormatter
from outagecomms.values import env_name_problem, mask_url
from tests.fakes import webhook
from tests.fakes.asgi import Reply, free_port
from tests.fakes.providers import FakeProviders
from tests.fakes.smtp import SmtpServer
from tests.fakes.webhook import HOOKS_CHANNEL
from tests.fakes.webhook import PATH as HOOK_PATH
from tests.support.data import write_rows
from tests.support.processes import CliResult, start_daemon, stop, wait_until

Cli = Callable[..., CliResult]
PASSWORD = "hunter2-Zq9"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            f"postgresql+psycopg://app:{PASSWORD}@db.internal:5432/oc",
            "postgresql+psycopg://app:***@db.internal:5432/oc",
        ),
        (  # an unencoded @ in the password: everything up to the host is hidden
            "cannot open store 'postgresql://app:p@ss@db/oc': refused",
            "cannot open store 'postgresql://app:***@db/oc': refused",
        ),
        (
            f"https://hooks.example.com/x?token={PASSWORD}&channel=ops",
            "https://hooks.example.com/x?token=***&channel=ops",
        ),
        (
            "postgresql://app@db/oc and ops@example.com",
            "postgresql://app@db/oc and ops@example.com",
        ),
        ("sqlite:////var/lib/outagecomms/store.db", "sqlite:////var/lib/outagecomms/store.db"),
    ],
)
def test_mask_url(text: str, masked: str) -> None:
    assert mask_url(text) == masked


@pytest.mark.parametrize("formatter", [JsonFormatter(), TerminalFormatter("%(message)s")])
def test_log_lines_never_carry_a_url_password(formatter: logging.Formatter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log = logging.getLogger("outagecomms.test-secrets")
    log.addHandler(handler)
    try:
        log.warning("store %s is down", f"postgresql://app:{PASSWORD}@db/oc")
    finally:
        log.removeHandler(handler)
    assert "postgresql://app:***@db/oc" in stream.getvalue()
    assert PASSWORD not in stream.getvalue()


def test_a_store_error_does_not_print_the_password(
    cli: Cli, make_config: Callable[..., Path]
) -> None:
    url = f"postgresql+psycopg://app:{PASSWORD}@127.0.0.1:{free_port()}/oc"
    res = cli("--config", str(make_config(store_url=url)), "customers", "list")
    assert res.exit_code == 2, res.stderr
    assert "app:***@127.0.0.1" in res.stderr
    assert PASSWORD not in res.stderr


def with_password(url: str) -> str:
    assert "://postgres@" in url
    return url.replace("://postgres@", f"://postgres:{PASSWORD}@")


def test_doctor_shows_the_store_without_its_password(
    cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer, pg_url: str
) -> None:
    cfg = make_config(smtp_server, store_url=with_password(pg_url))
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 0, res.stderr
    assert "store: postgresql+psycopg://postgres:***@127.0.0.1" in res.stderr
    assert PASSWORD not in res.stderr


def test_the_daemon_start_line_does_not_log_the_password(
    make_config: Callable[..., Path], smtp_server: SmtpServer, pg_url: str, tmp_path: Path
) -> None:
    cfg = make_config(smtp_server, store_url=with_password(pg_url))
    log = tmp_path / "daemon.log"
    daemon = start_daemon(cfg, log)
    try:
        wait_until(lambda: log.exists() and "outagecomms daemon: store" in log.read_text())
    finally:
        stop(daemon)
    text = log.read_text()
    assert "store postgresql+psycopg://postgres:***@127.0.0.1" in text
    assert PASSWORD not in text


# --- *_env names that are not names ---------------------------------------------------------

PASTED = "SG.x8Kq2mZ0RlR2TtQe9wVb1A.Fz3d9hYk"  # a pasted API key, not a variable's name
TOKEN = "x8Kq2mZ0RlR2TtQe9wVb1AFz3d9hYk"  # a pasted token: a valid name, but not one


@pytest.mark.parametrize(
    "name",
    [PASTED, TOKEN, "AC0123456789abcdef0123456789abcdef", "xoxb-1234-abcd", "1PASSWORD", "a b"],
)
def test_values_are_not_variable_names(name: str) -> None:
    problem = env_name_problem(name)
    assert problem is not None and name not in problem


@pytest.mark.parametrize(
    "name", ["OUTAGECOMMS_SMTP_PASSWORD", "TWILIO_ACCOUNT_SID", "TEST_TWILIO_SID", "SLACK_URL_2"]
)
def test_variable_names_are_names(name: str) -> None:
    assert env_name_problem(name) is None


def pasted_config(make_config: Callable[..., Path], server: SmtpServer, *, login: bool) -> Path:
    cfg = make_config(server)
    text = cfg.read_text().replace(
        "max_connections = 4\n",
        "max_connections = 4\n"
        + ('username = "bot"\n' if login else "")
        + f'password_env = "{PASTED}"\n',
    )
    cfg.write_text(text.replace("[daemon]\n", f'[daemon]\nsecret_env = "{TOKEN}"\n'))
    return cfg


def test_a_pasted_secret_in_an_env_key_is_warned_about_never_shown(
    cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    cfg = pasted_config(make_config, smtp_server, login=False)
    warnings = load_config(cfg).warnings
    assert [w.split(": ")[1] for w in warnings] == [
        "channels.email.password_env",
        "daemon.secret_env",
    ]
    assert all(str(cfg) in w and PASTED not in w and TOKEN not in w for w in warnings)
    for argv in (["customers", "list"], ["doctor"]):
        res = cli("--config", str(cfg), *argv)
        assert res.exit_code == 0, res.stderr
        assert res.stderr.count("warning: ") >= 2, res.stderr
        assert "channels.email.password_env: is not a valid environment variable" in res.stderr
        assert "daemon.secret_env: looks like a secret" in res.stderr
        assert PASTED not in res.stderr + res.stdout and TOKEN not in res.stderr + res.stdout


def test_a_pasted_secret_the_channel_needs_stops_doctor_without_showing_it(
    cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    cfg = pasted_config(make_config, smtp_server, login=True)
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 2, res.stderr
    assert "error: " in res.stderr and "channels.email.password_env" in res.stderr
    assert PASTED not in res.stderr + res.stdout


# --- the secrets a round needs --------------------------------------------------------------


def login_config(make_config: Callable[..., Path], server: SmtpServer) -> Path:
    cfg = make_config(server)
    cfg.write_text(
        cfg.read_text().replace(
            "max_connections = 4\n",
            'max_connections = 4\nusername = "bot"\npassword_env = "OUTAGECOMMS_SMTP_PASSWORD"\n',
        )
    )
    return cfg


def test_queue_only_leaves_the_secrets_to_the_sender(
    cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    """With --queue-only a daemon or tick sends, with its own environment: the commander's
    shell need not hold the password. Sending here needs it."""
    from tests.support.data import sample_csv

    cfg = login_config(make_config, smtp_server)
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    declare = ("declare", "Login broken", "-s", "sev2", "--component", "auth", "--yes")
    res = cli("--config", str(cfg), *declare, "--queue-only")
    assert res.exit_code == 0, res.stderr
    res = cli("--config", str(cfg), "update", "--yes", "INC-1", "Still on it.", "--queue-only")
    assert res.exit_code == 0, res.stderr
    res = cli("--config", str(cfg), "update", "--yes", "INC-1", "Still on it.")
    assert res.exit_code == 2 and "$OUTAGECOMMS_SMTP_PASSWORD is not set" in res.stderr
    assert smtp_server.handler.snapshot() == []


def test_the_api_checks_the_secrets_when_it_sends(
    make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    from outagecomms import App
    from outagecomms.errors import ConfigError
    from tests.support.data import sample_csv

    with App.open(login_config(make_config, smtp_server)) as app:
        app.import_customers(sample_csv())
        with pytest.raises(ConfigError) as info:
            app.declare("Login broken", severity="sev2", components=["auth"])
        assert info.value.key == "channels.email.password_env"
        assert app.incidents() == []
        queued = app.declare("Login broken", severity="sev2", components=["auth"], send="queue")
        assert queued.queued > 0


def test_a_delivery_error_quoting_a_url_keeps_its_password_unsaid(
    cli: Cli,
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    providers: FakeProviders,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A webhook that redirects is a failure quoting the new location (so the contact can be
    updated): a location with credentials is stored, shown and logged masked."""
    monkeypatch.setenv("TEST_HOOK_SECRET", webhook.SECRET)  # what the fake receiver verifies
    cfg = make_config(smtp_server, extra=HOOKS_CHANNEL)
    cfg.write_text(cfg.read_text().replace('default = ["email"]', 'default = ["hooks"]'))
    directory = tmp_path / "customers.csv"
    write_rows(directory, [
        {"id": "c1", "name": "Customer 1", "email": "ops@example.com",
         "webhook_url": providers.base + HOOK_PATH, "components": "api"},
    ])  # fmt: skip
    providers.script(HOOK_PATH, Reply(301, "", {"Location": f"https://bot:{PASSWORD}@x.example/h"}))
    assert cli("--config", str(cfg), "customers", "import", str(directory)).exit_code == 0
    res = cli("--config", str(cfg), "declare", "API down", "-s", "sev2", "-c", "api", "--yes")
    assert res.exit_code == 3, res.stderr
    listed = cli("--config", str(cfg), "deliveries", "INC-1", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert "https://bot:***@x.example/h" in listed.stdout
    assert PASSWORD not in listed.stdout + res.stderr + res.stdout
