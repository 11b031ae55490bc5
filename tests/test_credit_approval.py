"""Nobody is told an amount that nobody approved (issue 10, "Money").

- ``[credits] auto_approve_up_to``: credits at or under it are approved at resolution and the
  resolution notice states them; larger ones are held: the notice says a credit is being
  applied and by when they will hear the amount (in their zone), and states no amount;
- ``credits INC --approve [--customer ID] --yes`` approves and sends each customer a credit
  notice (round kind ``credit``): in the ledger, ``show`` and the report;
- ``credits INC --adjust ID AMOUNT --reason TEXT``: a person's decision, with who and why;
- ``edit`` that would change an approved or announced credit shows the before/after and needs
  ``--yes``; a correction goes out only with ``--send-corrections``; the library's recompute
  never changes an announced credit silently.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from outagecomms import App
from outagecomms.errors import ConfigError
from outagecomms.recovery import ledger
from outagecomms.recovery.credits import auto_approves, parse_credit_policy
from outagecomms.rendering.templates import customer_time
from tests.fakes.smtp import SmtpServer
from tests.support.data import step_rule
from tests.support.localised import money
from tests.support.processes import parse_ts, run_cli_process, run_json

pytestmark = pytest.mark.slow

# a1: 300.00 EUR (30% of 1000) is above the EUR limit: held. b2: 60.00 USD is 30% of its
# 200 fee, under "*" = 50%: approved at resolution and stated.
CREDITS = f"""
[credits]
auto_approve_up_to = {{ EUR = "50", "*" = "50%" }}
approval_within = "48h"

[[credits.rules]]
kind = "response_sla"
percent = 10

{step_rule()}
[[goodwill]]
offer = "a free month of premium support"
tiers = ["enterprise"]
"""

DIRECTORY = """id,name,email,tier,monthly_fee,currency,components,regions,timezone,locale
a1,Alpha GmbH,a1@example.com,enterprise,1000.00,EUR,api,eu-west,Europe/Berlin,de_DE
b2,Beta Ltd,b2@example.com,standard,200.00,USD,api,eu-west,America/New_York,en_US
"""

HELD = "We are applying a credit to your account for the disruption"


def _resolved(smtp_server: SmtpServer, make_config, tmp_path: Path, extra: str = CREDITS) -> Path:
    cfg = make_config(smtp_server, extra=extra)
    (tmp_path / "dir.csv").write_text(DIRECTORY)
    run_json(cfg, "customers", "import", str(tmp_path / "dir.csv"), "--yes")
    # hurt 95 minutes ago: 4 started 30-minute blocks x 5% + 10% for the late acknowledgement
    run_json(cfg, "declare", "API down", "-s", "sev2", "-c", "api", "--started-at", "-95m", "--yes")
    run_json(cfg, "resolve", "INC-1", "Fixed.", "--yes")
    smtp_server.handler.wait_for(lambda ms: sum(m.kind == "resolution" for m in ms) == 2)
    return cfg


def _flat(text: str) -> str:
    """The text with its line breaks as spaces (a no-break space in an amount stays)."""
    return re.sub(r"[ \t\r\n]+", " ", text)


def _credits(cfg: Path) -> dict[str, dict]:
    return {c["customer"]: c for c in run_json(cfg, "credits", "INC-1")["credits"]}


# --- 1. the policy ------------------------------------------------------------------------


def test_auto_approve_up_to_shapes() -> None:
    policy = parse_credit_policy(
        {"auto_approve_up_to": {"EUR": "50", "GBP": 40, "*": "10%"}}, source="c.toml"
    )
    assert auto_approves(policy, Decimal("50.00"), "EUR", Decimal(1000))
    assert not auto_approves(policy, Decimal("50.01"), "EUR", Decimal(1000))
    assert auto_approves(policy, Decimal("40"), "GBP", Decimal(1))
    assert auto_approves(policy, Decimal("20"), "USD", Decimal(200))  # 10% of 200
    assert not auto_approves(policy, Decimal("20.01"), "USD", Decimal(200))
    percent = parse_credit_policy({"auto_approve_up_to": "10%"}, source="c.toml")
    assert auto_approves(percent, Decimal("100"), "JPY", Decimal(1000))
    assert not auto_approves(percent, Decimal("101"), "JPY", Decimal(1000))
    none = parse_credit_policy({}, source="c.toml")  # no limit: every credit above 0 is held
    assert not auto_approves(none, Decimal("0.01"), "EUR", Decimal(1000))
    assert auto_approves(none, Decimal(0), "EUR", Decimal(1000))
    assert none.approval_within == timedelta(hours=48)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ('"ten"', "credits.auto_approve_up_to"),
        ("5", "credits.auto_approve_up_to"),
        ('{ eur = "5" }', "credits.auto_approve_up_to.eur"),
        ('{ EUR = "-5" }', "credits.auto_approve_up_to.EUR"),
        ('{ EUR = "lots" }', "credits.auto_approve_up_to.EUR"),
    ],
)
def test_auto_approve_up_to_errors_name_the_key(value: str, key: str, tmp_path: Path) -> None:
    import tomllib

    data = tomllib.loads(f"[credits]\nauto_approve_up_to = {value}\n")
    with pytest.raises(ConfigError) as exc:
        parse_credit_policy(data["credits"], source="cfg.toml")
    assert f"cfg.toml: {key}: " in str(exc.value)


def test_held_credits_are_not_stated(smtp_server: SmtpServer, make_config, tmp_path: Path) -> None:
    cfg = _resolved(smtp_server, make_config, tmp_path)
    by = _credits(cfg)
    assert by["a1"]["amount"] == "300.00" and by["a1"]["status"] == "proposed"
    assert by["a1"]["held"] is True and by["a1"]["announced_amount"] is None
    assert by["b2"]["status"] == "approved" and by["b2"]["approved_by"] == "auto"
    assert by["b2"]["announced_amount"] == "60.00"

    notice = {m.customer: m for m in smtp_server.handler.messages if m.kind == "resolution"}
    # the approved one reads as today
    assert money("60.00", "USD", "en_US") in notice["b2"].text()
    assert HELD not in notice["b2"].text()
    # the held one: no amount, and when they will hear it, in their zone and locale
    text = notice["a1"].text()
    assert money("300.00", "EUR", "de_DE") not in text and "300" not in text
    show = run_json(cfg, "show", "INC-1")
    sent = next(r for r in show["rounds"] if r["kind"] == "resolution")
    by_when = customer_time(
        parse_ts(sent["created_at"]) + timedelta(hours=48),
        timedelta(minutes=30),
        "Europe/Berlin",
        "de_DE",
        with_date=True,
    )
    assert f"{HELD}; you will hear its amount from us by {by_when}." in _flat(text)
    assert "premium support" in text  # the offer is told (and so is guarded, see below)
    assert "300" not in (notice["a1"].html() or "")


# --- 2. --approve sends the credit notice ---------------------------------------------------


def test_approve_sends_credit_notices(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path
) -> None:
    cfg = _resolved(smtp_server, make_config, tmp_path)
    # it sends: without --yes and without a terminal it refuses, and approves nothing
    proc = run_cli_process("credits", "INC-1", "--approve", config=cfg)
    assert proc.returncode == 2
    assert "not a terminal: pass --yes to send" in proc.stderr
    assert _credits(cfg)["a1"]["status"] == "proposed"

    res = run_json(cfg, "credits", "INC-1", "--approve", "--yes")
    assert res["approved"] == 1 and res["queued"] == 1 and res["sent"] == 1
    by = {c["customer"]: c for c in res["credits"]}
    assert by["a1"]["status"] == "approved" and by["a1"]["announced_amount"] == "300.00"
    msgs = smtp_server.handler.wait_for(lambda ms: any(m.kind == "credit" for m in ms))
    notices = [m for m in msgs if m.kind == "credit"]
    assert [m.customer for m in notices] == ["a1"]  # b2 was told at resolution already
    text = _flat(notices[0].text())
    assert money("300.00", "EUR", "de_DE") in text
    assert "10% of your monthly fee because our first notice did not reach you" in text
    assert "premium support" in text
    assert notices[0].message["Subject"].startswith("Re: [INC-1]")  # the incident's thread

    show = run_json(cfg, "show", "INC-1")
    credit_round = next(r for r in show["rounds"] if r["kind"] == "credit")
    assert credit_round["sent"] == 1 and credit_round["due_by"] is None
    report = cli("--config", str(cfg), "report", "INC-1")
    assert report.exit_code == 0 and "credit" in report.stdout

    # nothing proposed is left: a second --approve sends nothing
    again = run_json(cfg, "credits", "INC-1", "--approve", "--yes")
    assert again["approved"] == 0 and again["queued"] == 0


# --- 3. --adjust: a person's decision -------------------------------------------------------


def test_adjust_records_who_and_why(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path
) -> None:
    cfg = _resolved(smtp_server, make_config, tmp_path)
    env = {"USER": "alice"}
    bad = run_cli_process(
        "credits", "INC-1", "--adjust", "b2", "75.001", "--reason", "agreed", config=cfg, env=env
    )
    assert bad.returncode == 2 and "USD has 2 decimal places" in bad.stderr
    proc = run_cli_process(
        "credits", "INC-1", "--adjust", "b2", "75", "--reason", "account manager agreed",
        "--json", config=cfg, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    b2 = {c["customer"]: c for c in json.loads(proc.stdout)["credits"]}["b2"]
    assert b2["amount"] == "75.00" and b2["status"] == "proposed"
    assert b2["adjusted"]["by"] == "alice" and b2["adjusted"]["reason"] == "account manager agreed"
    assert b2["adjusted"]["computed_amount"] == "60.00"
    table = run_cli_process("credits", "INC-1", config=cfg)
    assert "set by alice" in table.stdout and "account manager agreed" in table.stdout
    report = cli("--config", str(cfg), "report", "INC-1")
    assert "b2: 75.00 USD (computed 60.00) by alice: account manager agreed" in report.stdout

    # approving it tells b2 the new amount, as a correction of the 60.00 they were told
    res = run_json(cfg, "credits", "INC-1", "--approve", "--customer", "b2", "--yes")
    assert res["approved"] == 1 and res["queued"] == 1
    assert {c["customer"]: c["status"] for c in res["credits"]} == {
        "a1": "proposed",
        "b2": "approved",
    }
    msgs = smtp_server.handler.wait_for(lambda ms: any(m.kind == "credit" for m in ms))
    (notice,) = [m for m in msgs if m.kind == "credit"]
    text = _flat(notice.text())
    assert notice.customer == "b2"
    assert (
        f"the amount is {money('75.00', 'USD', 'en_US')}, not {money('60.00', 'USD', 'en_US')}"
        in text
    )
    assert "account manager agreed" not in text  # the reason is recorded, not sent
    # a recompute never overrides a person's decision
    run_json(cfg, "edit", "INC-1", "--started-at", "-35m", "--yes")
    assert _credits(cfg)["b2"]["amount"] == "75.00"


# --- 4. edit and announced credits ----------------------------------------------------------


def test_edit_shows_announced_changes_and_needs_yes(
    smtp_server: SmtpServer, make_config, tmp_path: Path
) -> None:
    cfg = _resolved(smtp_server, make_config, tmp_path)
    before = _credits(cfg)
    # 35 minutes instead of 95: b2's announced 60.00 would become 40.00
    proc = run_cli_process("edit", "INC-1", "--started-at", "-35m", config=cfg)
    assert proc.returncode == 2
    assert "b2" in proc.stderr and "60.00 USD" in proc.stderr and "40.00 USD" in proc.stderr
    assert "--yes" in proc.stderr
    assert _credits(cfg) == before  # nothing changed
    as_json = run_cli_process("edit", "INC-1", "--started-at", "-35m", "--json", config=cfg)
    assert as_json.returncode == 2
    doc = json.loads(as_json.stdout)
    assert doc["applied"] is False
    changes = {c["customer"]: c for c in doc["credit_changes"]}
    assert changes["b2"]["told"] is True
    assert (changes["b2"]["amount_before"], changes["b2"]["amount_after"]) == ("60.00", "40.00")
    assert changes["b2"]["announced_amount"] == "60.00"
    # a1's amount was held (not told), but its offer was told: that is not a change here
    assert "a1" not in changes

    done = run_json(cfg, "edit", "INC-1", "--started-at", "-35m", "--yes")
    assert done["applied"] is True and done["corrections_queued"] == 0
    after = _credits(cfg)
    assert after["b2"]["amount"] == "40.00" and after["b2"]["announced_amount"] == "60.00"
    assert after["a1"]["amount"] == "200.00"  # held: recomputed freely
    assert not any(m.kind == "credit" for m in smtp_server.handler.messages)

    # the commander asks: the customers whose announced amount changed get a correction
    res = run_json(cfg, "edit", "INC-1", "--started-at", "-36m", "--yes", "--send-corrections")
    assert res["corrections_queued"] == 1 and res["sent"] == 1
    msgs = smtp_server.handler.wait_for(lambda ms: any(m.kind == "credit" for m in ms))
    (notice,) = [m for m in msgs if m.kind == "credit"]
    assert notice.customer == "b2" and notice.message["Subject"].startswith("Re: [INC-1]")
    text = _flat(notice.text())
    assert "A correction to the credit" in text and f"not {money('60.00', 'USD', 'en_US')}" in text
    assert _credits(cfg)["b2"]["announced_amount"] == _credits(cfg)["b2"]["amount"]


def test_a_recompute_keeps_announced_credits(
    smtp_server: SmtpServer, make_config, tmp_path: Path
) -> None:
    """The guard is the library's: any recompute (edit, a second resolution after a reopen)
    leaves an announced credit and records what it would have been."""
    cfg = _resolved(smtp_server, make_config, tmp_path)
    with App.open(cfg) as app:
        from outagecomms.store import incidents as incidents_db

        with app.store.write() as conn:
            row = incidents_db.get_incident(conn, 1)
            later = row.incident.started_at + timedelta(minutes=60)
            assert incidents_db.update_incident(
                conn, 1, row.version, started_at=later, ack_due=later + timedelta(minutes=10)
            )
        ledger.propose(app, 1)
        with pytest.raises(ledger.CreditChangesNeedConfirmation) as exc:
            app.edit("INC-1", title="API down (corrected)")  # any recompute, even a title
        assert [c.customer_id for c in exc.value.changes] == ["b2"]
    by = _credits(cfg)
    assert by["b2"]["amount"] == "60.00" and by["a1"]["amount"] != "300.00"
    events = run_json(cfg, "show", "INC-1")["events"]
    kept = [e for e in events if e["kind"] == "credit_kept"]
    assert kept and "b2" in kept[0]["detail"]


def test_migration_0007_keeps_credits(store_url: str) -> None:
    """A store at 0006 (a credit in it) upgrades to the approval columns, on both stores;
    the existing credit reads as before: not adjusted, nothing announced."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import inspect, text

    from outagecomms.store.engine import HEAD_REVISION, Store

    store = Store(store_url)
    cfg = AlembicConfig()
    cfg.set_main_option(
        "script_location", str(Path(ledger.__file__).parents[1] / "store" / "migrations")
    )
    cfg.attributes["engine"] = store.engine
    command.upgrade(cfg, "0006")
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO incidents (id, title, severity, status, components, regions,"
                " selector, started_at, declared_at, commander, update_every_s, ack_due,"
                " audience_size, version, skipped) VALUES (1, 't', 'sev2', 'resolved', '[]', '[]', '{}',"
                " :t, :t, '', 1800, :t, 1, 1, '{}')"
            ),
            {"t": "2026-12-01 10:00:00+00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO credits (incident_id, customer_id, amount, currency, lines, goodwill,"
                " status, computed_at) VALUES (1, 'c1', '12.50', 'EUR', '[]', '', 'approved', :t)"
            ),
            {"t": "2026-12-01 10:00:00+00:00"},
        )
    store.migrate()
    assert store.current_revision() == HEAD_REVISION
    columns = {c["name"] for c in inspect(store.engine).get_columns("credits")}
    assert {
        "approved_by",
        "adjusted_by",
        "adjust_reason",
        "announced_amount",
        "corrects",
    } <= columns
    with store.read() as conn:
        row = conn.execute(text("SELECT amount, announced_amount FROM credits")).one()
    assert tuple(row) == ("12.50", None)
    store.dispose()
