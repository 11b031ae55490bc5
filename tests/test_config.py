"""The config file: the documented example loads, bad files say which file and which key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from outagecomms.config.loader import load_config
from outagecomms.errors import ConfigError
from tests.support.data import REPO
from tests.support.processes import CliResult

EXAMPLE = REPO / "config.example.toml"

BASE = """\
{top}
[store]
url = "sqlite:///store.db"

[company]
name = "S1 Technology"
support_email = "support@example.com"

[policy.default]
update_every = {update_every}
ack_within = "10m"
channels = {policy_channels}

[channels.email]
kind = {kind}
host = "127.0.0.1"
port = {port}
tls = {tls}
from = "S1 Support <support@example.com>"
{email_extra}
{extra}
"""

DEFAULTS = {
    "top": "",
    "update_every": '"30m"',
    "policy_channels": '{ default = ["email"] }',
    "kind": '"smtp"',
    "port": "2525",
    "tls": '"none"',
    "email_extra": "",
    "extra": "",
}


def write_config(folder: Path, name: str = "outagecomms.toml", **changes: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(BASE.format(**{**DEFAULTS, **changes}))
    return path


# --- the documented example -------------------------------------------------------------------


def test_example_config_loads() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.path == EXAMPLE.resolve()
    assert cfg.company.name == "S1 Technology"
    assert cfg.company.support_email == "support@example.com"
    # a relative SQLite path is relative to the example's folder
    assert cfg.store_url == "sqlite:///" + str(EXAMPLE.resolve().parent / "outagecomms.db")
    assert cfg.policy("sev1").update_every == timedelta(minutes=15)
    assert cfg.policy("sev1").ack_within == timedelta(minutes=5)
    # sev1 inherits what it does not override from policy.default
    assert cfg.policy("sev1").remind_before == timedelta(minutes=5)
    assert cfg.policy("sev2").update_every == timedelta(minutes=30)
    assert cfg.policy("sev3").follow_up_after == timedelta(hours=24)
    email = cfg.channels["email"]
    assert email.kind == "smtp"
    assert email.max_connections == 8
    assert email.rate_per_second == 0
    assert email.settings["port"] == 25
    assert email.settings["tls"] == "none"
    assert email.settings["validate_certs"] is True
    assert email.settings["from"] == "S1 Support <support@example.com>"
    assert cfg.dispatch.batch_size == 500
    assert cfg.dispatch.lease == timedelta(seconds=15)
    assert cfg.dispatch.retry_base == timedelta(seconds=5)
    assert cfg.daemon.public_url == "https://comms.example.com"
    assert cfg.daemon.min_margin == timedelta(seconds=90)
    assert cfg.templates_dir == EXAMPLE.resolve().parent / "templates"


def _example_data() -> dict:
    with EXAMPLE.open("rb") as fh:
        return tomllib.load(fh)


def test_example_documents_every_key_the_parser_accepts() -> None:
    """The example claims to document every key: the accepted keys must all appear in it."""
    data = _example_data()
    # the channel tables (live and commented out): for every kind in
    # test_channel_contract.py::test_every_config_key_is_documented_in_the_example
    assert {"update_every", "ack_within", "remind_before", "follow_up_after", "channels"} <= set(
        data["policy"]["default"]
    )
    from outagecomms.config.model import DispatchConfig

    assert set(data["dispatch"]) == set(DispatchConfig.__dataclass_fields__)
    from outagecomms.config.model import DaemonConfig

    assert set(data["daemon"]) == set(DaemonConfig.__dataclass_fields__)
    assert set(data["company"]) == {
        "name",
        "status_page_url",
        "support_email",
        "support_phone",
        "language",
    }
    assert set(data["store"]) == {"url"}
    from outagecomms.config.loader import _TEMPLATE_LIMIT_KEYS

    assert set(data["templates"]) == {"dir", *_TEMPLATE_LIMIT_KEYS}


def test_example_commented_maildir_alternative_loads(tmp_path: Path) -> None:
    """The commented-out maildir [channels.email] is a valid replacement for the smtp one."""
    text = EXAMPLE.read_text()
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip() == "[channels.email]")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].strip())
    m = re.search(r"^# \[channels\.email\]\n(?:^# .*\n)+", text, re.M)
    assert m is not None, "the example should document the maildir alternative"
    alt = "\n".join(ln[2:] for ln in m.group(0).splitlines())
    assert 'kind = "maildir"' in alt
    new = "\n".join(lines[:start] + alt.splitlines() + lines[end:])
    (tmp_path / "templates").mkdir()
    path = tmp_path / "outagecomms.toml"
    path.write_text(new)
    cfg = load_config(path)
    assert cfg.channels["email"].kind == "maildir"
    assert cfg.channels["email"].settings["path"] == str(path.resolve().parent / "maildir")


def test_good_base_config_loads(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path))
    assert cfg.channels["email"].settings["port"] == 2525
    assert cfg.policy("sev4").channels_for_tier("anything") == ("email",)


# --- bad configs ------------------------------------------------------------------------------

BAD_CONFIGS: dict[str, tuple[dict[str, str], str, str]] = {
    # name: (changes to BASE, dotted key named, another fragment the message must contain)
    "unknown top-level key": ({"top": "colour = 'blue'"}, "colour", "unknown key"),
    "unknown key in channels.email": (
        {"email_extra": 'hots = "mail.example.com"'},
        "channels.email.hots",
        "unknown key",
    ),
    "inline secret": (
        {"email_extra": 'password = "hunter2"'},
        "channels.email.password",
        "unknown key",
    ),
    "unknown channel kind": ({"kind": '"pigeon"'}, "channels.email.kind", "pigeon"),
    "bad duration in policy.default": (
        {"update_every": '"soon"'},
        "policy.default.update_every",
        "soon",
    ),
    "negative duration in policy.default": (
        {"update_every": '"-5m"'},
        "policy.default.update_every",
        "-5m",
    ),
    "policy names an unconfigured channel": (
        {"policy_channels": '{ enterprise = ["email", "sms"], default = ["email"] }'},
        "policy.default.channels.enterprise",
        "'sms'",
    ),
    "bad tls": ({"tls": '"ssl"'}, "channels.email.tls", "starttls"),
    "port as a string": ({"port": '"25"'}, "channels.email.port", "integer"),
    "port as a float": ({"port": "25.5"}, "channels.email.port", "integer"),
    "unknown policy.sevX": (
        {"extra": '[policy.sev9]\nupdate_every = "5m"'},
        "policy.sev9",
        "sev1",
    ),
    "unknown key in policy.sev1": (
        {"extra": '[policy.sev1]\nupdate_evry = "5m"'},
        "policy.sev1.update_evry",
        "unknown key",
    ),
    "max_connections zero": (
        {"email_extra": "max_connections = 0"},
        "channels.email.max_connections",
        ">= 1",
    ),
    "validate_certs not a bool": (
        {"email_extra": 'validate_certs = "yes"'},
        "channels.email.validate_certs",
        "true or false",
    ),
    "templates dir missing": (
        {"extra": '[templates]\ndir = "no-such-folder"'},
        "templates.dir",
        "no-such-folder",
    ),
    "unknown key in dispatch": (
        {"extra": "[dispatch]\nbatch = 5"},
        "dispatch.batch",
        "batch_size",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS), ids=list(BAD_CONFIGS))
def test_bad_config_names_file_and_key(tmp_path: Path, case: str) -> None:
    changes, key, fragment = BAD_CONFIGS[case]
    path = write_config(tmp_path, **changes)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert str(path.resolve()) in msg
    assert re.search(rf"(^|[\s:]){re.escape(key)}:", msg), msg
    assert info.value.key == key
    assert fragment in msg
    assert info.value.exit_code == 2


def test_unknown_channel_kind_lists_known_kinds(tmp_path: Path) -> None:
    path = write_config(tmp_path, kind='"pigeon"')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    for kind in ("smtp", "maildir", "console"):
        assert kind in msg


def test_unconfigured_channel_lists_configured_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path, policy_channels='{ default = ["sms"] }')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "configured channels: email" in str(info.value)


def test_not_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[store\nurl = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path.resolve()) in str(info.value)
    assert "TOML" in str(info.value)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(info.value)


def test_control_characters_in_a_string_value(tmp_path: Path) -> None:
    """Config strings end up in headers (Reply-To) and messages: CR/LF is refused at load."""
    path = write_config(tmp_path)
    path.write_text(
        path.read_text().replace(
            'support_email = "support@example.com"',
            'support_email = "support@example.com\\r\\nBcc: evil@example.net"',
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "company.support_email"
    assert str(path.resolve()) in str(info.value)


def test_username_requires_password_env(tmp_path: Path) -> None:
    path = write_config(tmp_path, email_extra='username = "mailer"')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "channels.email" in str(info.value)


# --- store URL --------------------------------------------------------------------------------


def test_store_url_env_overrides_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path)
    assert load_config(path).store_url == "sqlite:///" + str(tmp_path.resolve() / "store.db")
    url = "postgresql+psycopg://user@127.0.0.1/outagecomms"
    monkeypatch.setenv("OUTAGECOMMS_STORE_URL", url)
    assert load_config(path).store_url == url


def test_store_url_env_absolute_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path)
    other = tmp_path / "elsewhere" / "x.db"
    monkeypatch.setenv("OUTAGECOMMS_STORE_URL", f"sqlite:///{other}")
    assert load_config(path).store_url == f"sqlite:///{other}"


def test_relative_sqlite_path_is_relative_to_config_folder(
    tmp_path: Path, isolated_env: Path
) -> None:
    folder = tmp_path / "etc" / "oc"
    path = folder / "outagecomms.toml"
    folder.mkdir(parents=True)
    path.write_text(
        BASE.format(**DEFAULTS).replace('"sqlite:///store.db"', '"sqlite:///data/comms.db"')
    )
    # the working directory is elsewhere: it must not matter
    assert Path.cwd() == isolated_env
    cfg = load_config(path)
    assert cfg.store_url == "sqlite:///" + str(folder.resolve() / "data" / "comms.db")


def test_config_found_via_env_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "viaenv")
    monkeypatch.setenv("OUTAGECOMMS_CONFIG", str(path))
    assert load_config().path == path.resolve()
    monkeypatch.delenv("OUTAGECOMMS_CONFIG")
    local = write_config(Path.cwd())
    assert load_config().path == local.resolve()


# --- secrets ----------------------------------------------------------------------------------


def test_env_secret_is_read_from_environment_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-Pa55word-xyzzy"
    path = write_config(
        tmp_path, email_extra='username = "mailer"\npassword_env = "TEST_OC_SMTP_PASSWORD"'
    )
    cfg = load_config(path)
    ch = cfg.channels["email"]
    assert ch.secret("password") is None  # not set yet
    monkeypatch.setenv("TEST_OC_SMTP_PASSWORD", secret)
    assert ch.secret("password") == secret
    for text in (repr(ch), str(ch), repr(cfg), str(cfg)):
        assert secret not in text
    # a key without *_env configured has no secret
    assert ch.secret("api_key") is None
    monkeypatch.setenv("TEST_OC_SMTP_PASSWORD", "")
    assert ch.secret("password") is None


# --- through the CLI --------------------------------------------------------------------------


def test_cli_unknown_key_exit_2_one_line(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    path = write_config(tmp_path, email_extra='hots = "mail.example.com"')
    res = cli("--config", str(path), "list")
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "channels.email.hots" in lines[0]
    assert str(path.resolve()) in lines[0]
    assert "Traceback" not in res.stderr
    assert res.stdout == ""


def test_cli_missing_config_file(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    res = cli("--config", str(tmp_path / "missing.toml"), "list")
    assert res.exit_code == 2
    assert "missing.toml" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
