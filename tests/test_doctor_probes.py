"""``doctor`` probes every configured channel without sending anything to anyone (SMTP: connect,
EHLO, AUTH; Twilio: the Account resource; Statuspage: the page; Slack, Teams, webhooks and
Apprise: a connect to their hosts), checks the secrets the daemon needs, and exits 2 with one
line per failure."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import statuspage as sp
from tests.fakes import twilio as tw
from tests.fakes.asgi import free_port
from tests.fakes.providers import FakeProviders
from tests.fakes.smtp import PasswordAuth, running_smtp
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]


def _smtp_port(cfg: Path) -> int:
    m = re.search(r"^port = (\d+)$", cfg.read_text(), re.M)
    assert m
    return int(m.group(1))


def _with_channels(cfg: Path, extra: str, default: str) -> None:
    """Add channels to the test's config and send on ``default`` (a TOML list's inside)."""
    text = cfg.read_text().replace(
        'channels = { default = ["email"] }', f"channels = {{ default = [{default}] }}"
    )
    cfg.write_text(text + extra)


# --- SMTP -----------------------------------------------------------------------------------------


def test_an_smtp_server_that_refuses_the_connection_is_named_and_exits_2(
    make_config: Callable[..., Path], cli: Cli
) -> None:
    cfg = make_config()  # email to a closed port
    port = _smtp_port(cfg)
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 2, res.stderr
    assert f"error: channel email (smtp 127.0.0.1:{port}): connection refused" in res.stderr
    assert res.stderr.count("error:") == 1
    # the other checks still ran and said so
    assert "templates resolution: ok" in res.stderr


@pytest.mark.parametrize("flag", ["--no-probe", "--offline"])
def test_no_probe_skips_the_network(make_config: Callable[..., Path], cli: Cli, flag: str) -> None:
    cfg = make_config()
    res = cli("--config", str(cfg), "doctor", flag)
    assert res.exit_code == 0, res.stderr
    assert "channel email: not probed (--no-probe)" in res.stderr
    assert "error" not in res.stderr


def test_a_reachable_smtp_server_is_greeted_and_no_mail_is_started(
    smtp_server: Any, make_config: Callable[..., Path], cli: Cli
) -> None:
    cfg = make_config(smtp_server)
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 0, res.stderr
    assert f"channel email (smtp 127.0.0.1:{smtp_server.port}): EHLO ok" in res.stderr
    assert smtp_server.handler.snapshot() == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtp_auth_is_tried_with_the_password_from_the_environment(
    make_config: Callable[..., Path], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    options: dict[str, Any] = {"auth_required": True, "auth_require_tls": False}
    with running_smtp(authenticator=PasswordAuth(b"bot", b"s3cret"), **options) as server:
        cfg = make_config(server)
        cfg.write_text(
            cfg.read_text().replace(
                "max_connections = 4\n",
                'max_connections = 4\nusername = "bot"\npassword_env = "DOCTOR_SMTP_PW"\n',
            )
        )
        where = f"channel email (smtp 127.0.0.1:{server.port})"
        monkeypatch.setenv("DOCTOR_SMTP_PW", "s3cret")
        res = cli("--config", str(cfg), "doctor")
        assert res.exit_code == 0, res.stderr
        assert f"{where}: EHLO, AUTH ok" in res.stderr
        monkeypatch.setenv("DOCTOR_SMTP_PW", "wrong")
        res = cli("--config", str(cfg), "doctor")
        assert res.exit_code == 2
        assert f"error: {where}: AUTH refused: 535" in res.stderr
        monkeypatch.delenv("DOCTOR_SMTP_PW")
        for flags in ((), ("--no-probe",)):  # a missing secret is found without the network
            res = cli("--config", str(cfg), "doctor", *flags)
            assert res.exit_code == 2
            assert (
                "error: channel email: environment variable DOCTOR_SMTP_PW is not set "
                "(channels.email.password_env)"
            ) in res.stderr
        assert server.handler.snapshot() == []


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1 (openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def test_starttls_is_done_and_a_certificate_it_cannot_trust_is_named(
    make_config: Callable[..., Path], cli: Cli, tmp_path: Path
) -> None:
    with running_smtp(tls_context=_self_signed(tmp_path), require_starttls=True) as server:
        cfg = make_config(server)
        base = cfg.read_text()
        where = f"channel email (smtp 127.0.0.1:{server.port})"
        cfg.write_text(
            base.replace("max_connections = 4\n", 'max_connections = 4\ntls = "starttls"\n')
        )
        res = cli("--config", str(cfg), "doctor")
        assert res.exit_code == 2
        assert re.search(
            rf"error: {re.escape(where)}: TLS: .*(certificate|self.signed)", res.stderr
        )
        cfg.write_text(
            base.replace(
                "max_connections = 4\n",
                'max_connections = 4\ntls = "starttls"\nvalidate_certs = false\n',
            )
        )
        res = cli("--config", str(cfg), "doctor")
        assert res.exit_code == 0, res.stderr
        assert f"{where}: EHLO, STARTTLS ok" in res.stderr
        assert server.handler.snapshot() == []


# --- Twilio ---------------------------------------------------------------------------------------

TWILIO = """
[channels.sms]
kind = "twilio"
account_sid_env = "TEST_TWILIO_SID"
auth_token_env = "TEST_TWILIO_TOKEN"
from = "{from_}"
base_url = "{base}"
"""


def _twilio_config(make_config: Callable[..., Path], smtp_server: Any, twilio: Any) -> Path:
    cfg = make_config(smtp_server)
    _with_channels(cfg, TWILIO.format(from_=tw.FROM, base=twilio.base), '"email", "sms"')
    return cfg


def test_twilio_is_probed_by_fetching_the_account_and_sends_no_message(
    smtp_server: Any, make_config: Callable[..., Path], cli: Cli, twilio: tw.FakeTwilio
) -> None:
    cfg = _twilio_config(make_config, smtp_server, twilio)
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 0, res.stderr
    assert re.search(
        r"channel sms \(GET http://127\.0\.0\.1:\d+/2010-04-01/Accounts/AC0123….json\): "
        r"HTTP 200, account active",
        res.stderr,
    ), res.stderr
    (fetch,) = twilio.recorded()
    assert (fetch.method, fetch.path, fetch.body) == ("GET", tw.ACCOUNT_PATH, b"")
    assert twilio.messages() == [] and twilio.problems == []
    assert tw.TOKEN not in res.stderr  # the Basic credentials never reach the screen


def test_a_suspended_twilio_account_or_a_wrong_token_fails(
    smtp_server: Any,
    make_config: Callable[..., Path],
    cli: Cli,
    twilio: tw.FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = _twilio_config(make_config, smtp_server, twilio)
    twilio.account_status = "suspended"
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 2
    assert "HTTP 200, the account is suspended, not active" in res.stderr
    twilio.account_status = "active"
    monkeypatch.setenv("TEST_TWILIO_TOKEN", "not-the-token")
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 2
    assert re.search(r"error: channel sms \(GET .*\): HTTP 401: .*20003", res.stderr), res.stderr
    monkeypatch.delenv("TEST_TWILIO_TOKEN")
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 2
    assert (
        "error: channel sms: environment variable TEST_TWILIO_TOKEN is not set "
        "(channels.sms.auth_token_env)"
    ) in res.stderr
    assert "channel sms: not probed (a secret it needs is not set)" in res.stderr
    assert twilio.messages() == []


# --- Statuspage -----------------------------------------------------------------------------------

STATUSPAGE = """
[channels.status]
kind = "statuspage"
page_id = "{page}"
api_key_env = "TEST_STATUSPAGE_KEY"
base_url = "{base}"
"""


def test_statuspage_is_probed_by_getting_the_page_and_creates_no_incident(
    smtp_server: Any, make_config: Callable[..., Path], cli: Cli, page: sp.FakeStatuspage
) -> None:
    cfg = make_config(smtp_server)
    _with_channels(cfg, STATUSPAGE.format(page=sp.PAGE, base=page.base), '"email", "status"')
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 0, res.stderr
    assert f"channel status (GET {page.base}/pages/{sp.PAGE}): HTTP 200, page 'S1 Technology'" in (
        res.stderr
    )
    assert [(r.method, r.path) for r in page.recorded()] == [("GET", f"/v1/pages/{sp.PAGE}")]
    assert page.incidents == {} and page.problems == []


def test_statuspage_of_another_page_or_with_a_wrong_key_fails(
    smtp_server: Any,
    make_config: Callable[..., Path],
    cli: Cli,
    page: sp.FakeStatuspage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = make_config(smtp_server)
    _with_channels(cfg, STATUSPAGE.format(page="zzzzzzzzzzzz", base=page.base), '"status"')
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 2
    assert f"error: channel status (GET {page.base}/pages/zzzzzzzzzzzz): HTTP 404" in res.stderr
    monkeypatch.setenv("TEST_STATUSPAGE_KEY", "wrong")
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 2 and "HTTP 401" in res.stderr
    assert page.incidents == {}


# --- Slack, Teams, webhooks: a connect to each host the customers' URLs name -----------------------

CHAT = """
[channels.chat]
kind = "slack"

[channels.room]
kind = "teams"

[channels.hooks]
kind = "webhook"
secret_env = "TEST_WEBHOOK_SECRET"
"""


def test_webhook_channels_connect_to_each_host_and_post_nothing(
    smtp_server: Any,
    make_config: Callable[..., Path],
    cli: Cli,
    providers: FakeProviders,
    secret: str,
    tmp_path: Path,
) -> None:
    cfg = make_config(smtp_server)
    _with_channels(cfg, CHAT, '"email", "chat", "room", "hooks"')
    closed = free_port()
    base = providers.base
    rows = ["id,name,email,slack_webhook,teams_webhook,webhook_url,components,regions"]
    for i in range(4):  # four customers, one host: connected to once
        rows.append(
            f"c{i},C {i},c{i}@example.com,{base}/services/T{i}/B{i}/x,"
            f"{base}/workflows/w{i}/triggers/manual/paths/invoke?sig=s,{base}/hooks/c{i},api,eu"
        )
    rows.append(f"c9,C 9,c9@example.com,http://127.0.0.1:{closed}/services/T9/B9/x,,,api,eu")
    directory = tmp_path / "dir.csv"
    directory.write_text("\n".join(rows) + "\n")
    assert cli("--config", str(cfg), "customers", "import", str(directory)).exit_code == 0
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 2, res.stderr
    host = f"127.0.0.1:{providers.port}"
    for name in ("chat", "room", "hooks"):
        assert f"channel {name} ({host}): TCP connect ok" in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: channel chat (127.0.0.1:{closed}): connection refused"]
    assert providers.recorded() == []  # connected, never posted


def test_a_webhook_channel_without_its_secret_is_not_probed(
    smtp_server: Any, make_config: Callable[..., Path], cli: Cli
) -> None:
    cfg = make_config(smtp_server)
    _with_channels(cfg, CHAT, '"email", "hooks"')
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 2
    assert (
        "error: channel hooks: environment variable TEST_WEBHOOK_SECRET is not set "
        "(channels.hooks.secret_env)"
    ) in res.stderr
    # chat channels nobody has a contact on yet: nothing to connect to, not an error
    assert "channel chat: not probed (no customer has a contact on it yet)" in res.stderr


def test_the_commander_room_url_must_be_set_and_is_probed(
    smtp_server: Any,
    make_config: Callable[..., Path],
    cli: Cli,
    providers: FakeProviders,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = make_config(smtp_server)
    text = cfg.read_text().replace(
        "[daemon]\n", '[daemon]\ncommander_channel = "chat"\ncommander_webhook_env = "TEST_ROOM"\n'
    )
    cfg.write_text(text + '\n[channels.chat]\nkind = "slack"\n')
    res = cli("--config", str(cfg), "doctor", "--no-probe")
    assert res.exit_code == 2
    assert (
        "error: daemon: environment variable TEST_ROOM is not set (daemon.commander_webhook_env; "
        "the commander's notices go to that room)"
    ) in res.stderr
    monkeypatch.setenv("TEST_ROOM", f"{providers.base}/services/TC/BC/room")
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 0, res.stderr
    assert f"channel chat (127.0.0.1:{providers.port}): TCP connect ok" in res.stderr
    assert providers.recorded() == []


# --- Apprise --------------------------------------------------------------------------------------


def test_apprise_connects_to_each_url_and_notifies_nobody(
    smtp_server: Any, make_config: Callable[..., Path], cli: Cli, endpoint: Any
) -> None:
    pytest.importorskip("apprise")
    closed = free_port()
    urls = f'["json://127.0.0.1:{endpoint.port}/notify", "json://127.0.0.1:{closed}/x"]'
    cfg = make_config(smtp_server)
    _with_channels(cfg, f'\n[channels.ping]\nkind = "apprise"\nurls = {urls}\n', '"email", "ping"')
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 2, res.stderr
    assert f"channel ping (json://127.0.0.1:{endpoint.port}/notify): TCP connect ok" in res.stderr
    assert f"error: channel ping (json://127.0.0.1:{closed}/x): connection refused" in res.stderr
    assert endpoint.recorded() == []


# --- --json ---------------------------------------------------------------------------------------


def test_json_has_the_results_per_channel(
    smtp_server: Any, make_config: Callable[..., Path], cli: Cli, twilio: tw.FakeTwilio
) -> None:
    cfg = _twilio_config(make_config, smtp_server, twilio)
    twilio.account_status = "closed"
    res = cli("--config", str(cfg), "doctor", "--json")
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["ok"] is False
    by_name = {c["name"]: c for c in doc["channels"]}
    assert set(by_name) == {"email", "sms"}
    email, sms = by_name["email"], by_name["sms"]
    assert email["ok"] is True and email["kind"] == "smtp" and email["probed"] is True
    assert email["probes"] == [
        {"target": f"smtp 127.0.0.1:{smtp_server.port}", "ok": True, "detail": "EHLO ok"}
    ]
    assert sms["ok"] is False and sms["probes"][0]["ok"] is False
    assert sms["secrets"] == [
        {"key": "channels.sms.account_sid_env", "variable": "TEST_TWILIO_SID", "set": True},
        {"key": "channels.sms.auth_token_env", "variable": "TEST_TWILIO_TOKEN", "set": True},
    ]
    assert doc["errors"] == [
        f"channel sms ({sms['probes'][0]['target']}): HTTP 200, the account is closed, not active"
    ]
    assert doc["daemon_secrets"] == []
    assert "templates holding: ok for 1 locale/timezone combinations" in doc["checks"]


# --- Python -----------------------------------------------------------------------------------


def test_the_checks_from_python(make_config: Callable[..., Path]) -> None:
    import outagecomms

    with outagecomms.App.open(make_config()) as app:  # email to a closed port
        report = app.check_channels()
        assert isinstance(report, outagecomms.ChannelsReport) and not report.ok
        (email,) = report.channels
        assert [p.detail for p in email.probes] == ["connection refused"]
        assert app.check_channels(probe=False).ok
