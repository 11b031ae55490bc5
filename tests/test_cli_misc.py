"""Small commands: the live dashboard's frame, the store upgrade."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.fakes.smtp import SmtpServer
from tests.support.data import migrations_head, sample_csv
from tests.support.processes import run_json


def test_watch_once_shows_open_incidents_and_countdown(
    smtp_server: SmtpServer, make_config, cli
) -> None:
    cfg = make_config(smtp_server)
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    res = cli("--config", str(cfg), "declare", "Search slow", "-s", "sev3", "-c", "search", "--yes")
    assert res.exit_code == 0, res.stderr
    due = datetime.fromisoformat(run_json(cfg, "show", "INC-1")["next_update_due"])
    before = datetime.now(UTC)
    frame = cli("--config", str(cfg), "watch", "--once")
    after = datetime.now(UTC)
    assert frame.exit_code == 0, frame.stderr
    assert "INC-1" in frame.stdout and "Search slow" in frame.stdout
    assert "#1 acknowledgement" in frame.stdout
    # the 30-minute promise (floored to the minute) counting down, as the frame's clock read it
    shown = re.search(r"\b(\d+)m(\d\d)s\b", frame.stdout)
    assert shown is not None, frame.stdout
    left = int(shown[1]) * 60 + int(shown[2])
    assert (due - after).total_seconds() - 1 <= left <= (due - before).total_seconds()
    assert left <= 30 * 60
    missing = cli("--config", str(cfg), "watch", "INC-9", "--once")
    assert missing.exit_code == 2 and "INC-9" in missing.stderr


def test_db_upgrade_reports_the_revision(make_config, cli) -> None:
    cfg = make_config()
    res = cli("--config", str(cfg), "db", "upgrade")
    assert res.exit_code == 0, res.stderr
    head = migrations_head()
    assert f"at revision {head} (head {head})" in res.stderr


def test_logs_are_json_lines_off_a_terminal(capsys) -> None:  # type: ignore[no-untyped-def]
    import json
    import logging

    from outagecomms.logs import setup_logging

    setup_logging(verbose=True, json_lines=True)
    try:
        logging.getLogger("outagecomms.daemon").info("holding update queued: %s", "INC-7 round 3")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        doc = json.loads(line)
        assert doc["msg"] == "holding update queued: INC-7 round 3"
        assert (
            doc["level"] == "info"
            and doc["logger"] == "outagecomms.daemon"
            and doc["ts"].endswith("+00:00")
        )
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)


def test_an_event_carries_its_numbers_as_json_keys(capsys) -> None:  # type: ignore[no-untyped-def]
    """What programs read (benchmarks, log shippers) are keys, not the wording of ``msg``."""
    import json
    import logging

    from outagecomms.logs import log_event, setup_logging

    setup_logging(verbose=True, json_lines=True)
    try:
        log_event(logging.getLogger("outagecomms.daemon"), "dispatched", "words", sent=3, retry=1)
        doc = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert (doc["event"], doc["sent"], doc["retry"], doc["msg"]) == (
            "dispatched",
            3,
            1,
            "words",
        )
        setup_logging(verbose=True, json_lines=False)
        log_event(logging.getLogger("outagecomms.daemon"), "dispatched", "words", sent=3)
        assert capsys.readouterr().err.rstrip().endswith("outagecomms.daemon: words")
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
