"""The store's folder and the files outagecomms creates: a mistyped folder is never a new empty
store (``db init`` creates one), and everything holding personal data is private whatever the
umask (the store and its -wal/-shm, credit exports, reports, Maildir messages)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from outagecomms.channels.base import OutboundMessage, Outcome
from outagecomms.channels.maildir import MaildirChannel
from outagecomms.config.model import ChannelConfig, CompanyConfig, user_data_dir
from outagecomms.store.engine import open_store
from tests.fakes.smtp import SmtpServer
from tests.support.data import REPO, sample_csv
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which files are created 0644 unless their creator says less."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_mistyped_folder_is_refused_and_not_created(
    cli: Cli, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    typo = tmp_path / "stroe"
    cfg = make_config(store_url=f"sqlite:///{typo / 'store.db'}")
    res = cli("--config", str(cfg), "customers", "import", str(sample_csv()))
    assert res.exit_code == 2, res.stderr
    assert f"folder {typo} does not exist" in res.stderr and "db init" in res.stderr
    assert not typo.exists()


def test_db_init_creates_the_folder_and_a_private_store(
    cli: Cli, make_config: Callable[..., Path], tmp_path: Path, umask_022: None
) -> None:
    folder = tmp_path / "state" / "outagecomms"
    cfg = make_config(store_url=f"sqlite:///{folder / 'store.db'}")
    res = cli("--config", str(cfg), "db", "init")
    assert res.exit_code == 0, res.stderr
    assert "is ready at revision" in res.stderr
    assert mode(folder) == 0o700 and mode(folder / "store.db") == 0o600
    res = cli("--config", str(cfg), "customers", "import", str(sample_csv()))
    assert res.exit_code == 0, res.stderr
    assert "imported 40 customers" in res.stderr


def test_the_default_store_folder_is_created(cli: Cli, isolated_env: Path) -> None:
    """With a config that names no store, the store is in the user data dir, which is ours
    to create (with no config at all, nothing is opened: tests/test_runbooks.py)."""
    assert not user_data_dir().exists()
    (isolated_env / "outagecomms.toml").write_text('[company]\nname = "S1"\n')
    res = cli("customers", "list")
    assert res.exit_code == 0, res.stderr
    assert (user_data_dir() / "outagecomms.db").is_file()


def test_the_store_and_its_wal_files_are_private(tmp_path: Path, umask_022: None) -> None:
    db = tmp_path / "store.db"
    store = open_store(f"sqlite:///{db}")
    try:
        with store.engine.connect() as conn:  # an open connection keeps -wal and -shm there
            conn.exec_driver_sql("SELECT count(*) FROM alembic_version").all()
            made = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("store.db"))
            assert {"store.db", "store.db-wal", "store.db-shm"} <= set(made)
            assert {p: oct(mode(tmp_path / p)) for p in made} == {p: "0o600" for p in made}
    finally:
        store.dispose()


def test_credit_exports_and_reports_are_not_world_readable(
    cli: Cli,
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    tmp_path: Path,
    umask_022: None,
) -> None:
    cfg = make_config(smtp_server)

    def ok(*args: str) -> None:
        res = cli("--config", str(cfg), *args)
        assert res.exit_code == 0, (args, res.stderr)

    ok("customers", "import", str(sample_csv()))
    ok("declare", "Login broken", "-s", "sev2", "--component", "auth", "--yes")
    ok("resolve", "--yes", "INC-1", "Fixed.")
    csv_out, report = tmp_path / "credits.csv", tmp_path / "report.md"
    report.write_text("an older, world-readable report\n")
    report.chmod(0o644)
    ok("credits", "INC-1", "--csv", str(csv_out))
    ok("report", "INC-1", "--output", str(report))
    assert oct(mode(csv_out)) == "0o640"
    assert oct(mode(report)) == "0o640"  # narrowed before it was rewritten
    assert "INC-1" in report.read_text()


def test_maildir_messages_are_private(tmp_path: Path, umask_022: None) -> None:
    base = {k: default for k, (_t, default) in MaildirChannel.config_keys.items()}
    base.update(path=str(tmp_path / "maildir"), **{"from": "S1 <support@example.com>"})
    cfg = ChannelConfig(
        name="email", kind="maildir", max_connections=1, rate_per_second=0, settings=base
    )
    ch = MaildirChannel(cfg, CompanyConfig(support_email="support@example.com"))
    msg = OutboundMessage(
        delivery_id=1, to="ops@example.com", to_name="Ops", subject="Login broken",
        text="hello", html="<p>hello</p>", message_id="<m1@example.com>",
    )  # fmt: skip
    result = asyncio.run(ch.send(msg))
    assert result.outcome == Outcome.SENT
    (written,) = (tmp_path / "maildir" / "new").iterdir()
    assert oct(mode(written)) == "0o600"
    assert mode(tmp_path / "maildir") == mode(tmp_path / "maildir" / "new") == 0o700


@pytest.mark.parametrize("unit", ["outagecomms.service", "outagecomms-tick.service"])
def test_the_systemd_units_set_a_private_umask(unit: str) -> None:
    lines = (REPO / "deploy" / unit).read_text().splitlines()
    assert "UMask=0077" in lines
