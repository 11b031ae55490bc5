"""init, doctor, demo, and that the packaged templates reach installed users."""

from __future__ import annotations

import mailbox
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.data import REPO


def test_init_writes_a_working_project(cli, tmp_path: Path) -> None:
    target = tmp_path / "proj"
    res = cli("init", str(target))
    assert res.exit_code == 0, res.stderr
    cfg = target / "outagecomms.toml"
    assert cfg.read_text() == (REPO / "config.example.toml").read_text()
    assert (target / "templates" / "README.txt").exists()
    assert (target / "customers.csv").read_text().startswith("id,name,email")
    # the written project works as is: import its sample customers, check templates
    res = cli("--config", str(cfg), "customers", "import", str(target / "customers.csv"))
    assert res.exit_code == 0, res.stderr
    res = cli("--config", str(cfg), "doctor", "--no-probe")  # no SMTP server on port 25 here
    assert res.exit_code == 0, res.stderr
    assert "templates resolution: ok" in res.stderr
    assert "warning" not in res.stderr  # the example's lease, margins and cadences agree
    # a second init does not clobber the config
    again = cli("init", str(target))
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_doctor_warns_when_a_crash_could_make_a_promise_late(cli, make_config) -> None:
    cfg = make_config()  # the tests' config: 1 s margin, 20 s lease
    res = cli("--config", str(cfg), "doctor", "--no-probe")
    assert res.exit_code == 0, res.stderr
    assert "warning: dispatch.lease (20s) is not below daemon.min_margin (1s)" in res.stderr
    cfg.write_text(
        cfg.read_text()
        .replace('lease = "20s"', 'lease = "10s"')
        .replace('min_margin = "1s"', 'min_margin = "15s"')
        .replace('update_every = "30m"', 'update_every = "16s"')
    )
    res = cli("--config", str(cfg), "doctor", "--no-probe")
    assert "daemon.min_margin" not in res.stderr
    assert "warning: policy.default.update_every (16s) leaves a holding margin of at most 8s" in (
        res.stderr
    )
    assert res.stderr.count("warning: policy.") == 1  # sev1..sev4 inherit it: said once


def test_demo_runs_the_main_job_to_a_maildir(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "outagecomms", "demo", "--dir", str(demo_dir), "--every", "2s"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    box = mailbox.Maildir(str(demo_dir / "maildir"), create=False)
    subjects = [" ".join(str(m["Subject"]).split()) for m in box]  # unfold
    kinds = [str(m["X-Outagecomms-Round"]).split()[1] for m in box]
    # 3 affected customers x (acknowledgement, two holding updates, resolution)
    assert len(subjects) == 12
    assert kinds.count("holding") == 6 and kinds.count("resolution") == 3
    # one thread per incident and customer: the acknowledgement's subject, then replies to it
    assert sum(s.startswith("[INC-") for s in subjects) == 3
    assert sum(s.startswith("Re: [INC-") for s in subjects) == 9
    assert "promises kept 12/12" in proc.stderr
    assert str(demo_dir / "maildir") in proc.stderr


@pytest.mark.slow
def test_wheel_ships_templates_and_example_config(tmp_path: Path) -> None:
    out = tmp_path / "wheel"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("outagecomms-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("acknowledgement", "update", "holding", "resolution"):
        for part in ("subject", "txt", "html"):
            assert f"outagecomms/templates/{kind}/email.{part}.j2" in names
    assert "outagecomms/config.example.toml" in names
    assert "outagecomms/samples/customers.csv" in names
    assert "outagecomms/store/migrations/versions/0001_initial.py" in names
    assert "outagecomms/py.typed" in names  # PEP 561: type checkers read our annotations
    # a regular (non-editable) install finds the packaged templates, not the repository's
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "from outagecomms.rendering.templates import default_templates_dir; "
        "from outagecomms.workspace.scaffold import packaged_file; "
        "print(default_templates_dir()); print(packaged_file('config.example.toml'))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    tpl, cfg = proc.stdout.split()
    assert Path(tpl) == site / "outagecomms" / "templates"
    assert Path(cfg) == site / "outagecomms" / "config.example.toml"
