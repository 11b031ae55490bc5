"""Credits end to end: proposed at resolution, approved under ``auto_approve_up_to`` and stated
in each customer's resolution notice, recomputed on a confirmed edit, exported spreadsheet-safe
(and then never recomputed)."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fakes.smtp import SmtpServer
from tests.support.data import step_rule
from tests.support.localised import money
from tests.support.processes import run_json

pytestmark = pytest.mark.slow

CREDITS = f"""
[credits]
cap_percent = 100
auto_approve_up_to = "100%"

[[credits.rules]]
kind = "response_sla"
percent = 10

{step_rule()}
[[goodwill]]
offer = "a free month of premium support"
tiers = ["enterprise"]
"""

DIRECTORY = """id,name,email,tier,monthly_fee,currency,components,regions,timezone,locale
a1,=HYPERLINK("http://evil.example"),a1@example.com,enterprise,1000.00,EUR,api,eu-west,Europe/Berlin,de_DE
b2,Beta Ltd,b2@example.com,standard,200.00,USD,api,eu-west,America/New_York,en_US
c3,Gamma KK,c3@example.com,standard,30000,JPY,api,eu-west,Asia/Tokyo,ja_JP
"""


def test_credits_flow(smtp_server: SmtpServer, make_config, cli, tmp_path: Path) -> None:
    cfg = make_config(smtp_server, extra=CREDITS)
    (tmp_path / "dir.csv").write_text(DIRECTORY)
    assert (
        cli("--config", str(cfg), "customers", "import", str(tmp_path / "dir.csv")).exit_code == 0
    )
    # customers were hurt 95 minutes ago: the 10-minute acknowledgement deadline is long gone
    run_json(cfg, "declare", "API down", "-s", "sev2", "-c", "api", "--started-at", "-95m", "--yes")
    res = run_json(cfg, "resolve", "--yes", "INC-1", "Fixed.")
    assert res["sent"] == 3
    data = run_json(cfg, "credits", "INC-1")
    by = {c["customer"]: c for c in data["credits"]}
    # 95 min -> 4 started 30-minute blocks x 5% = 20%, plus 10% for the late acknowledgement
    assert by["a1"]["amount"] == "300.00" and by["a1"]["currency"] == "EUR"
    assert by["b2"]["amount"] == "60.00"
    assert by["c3"]["amount"] == "9000"  # JPY has no minor unit
    assert {x["rule"] for x in by["b2"]["lines"]} == {"response_sla", "downtime_step"}
    assert (
        by["a1"]["goodwill"] == "a free month of premium support" and by["b2"]["goodwill"] is None
    )
    assert data["total"] == {"EUR": "300.00", "JPY": "9000", "USD": "60.00"}
    assert all(c["status"] == "approved" for c in data["credits"])
    assert all(c["approved_by"] == "auto" for c in data["credits"])

    # each resolution notice states that customer's credit, in their currency and locale
    msgs = smtp_server.handler.wait_for(lambda ms: sum(m.kind == "resolution" for m in ms) == 3)
    notice = {m.customer: m.text() for m in msgs if m.kind == "resolution"}
    assert money("300.00", "EUR", "de_DE") in notice["a1"] and "premium support" in notice["a1"]
    assert money("60.00", "USD", "en_US") in notice["b2"] and "premium support" not in notice["b2"]
    assert money("9000", "JPY", "ja_JP") in notice["c3"]

    # an edit recomputes the approved, announced credits only when confirmed
    run_json(cfg, "edit", "INC-1", "--started-at", "-35m", "--yes")
    again = {c["customer"]: c for c in run_json(cfg, "credits", "INC-1")["credits"]}
    # 35 min -> 2 started blocks x 5% = 10%, plus 10%: the acknowledgement went out at
    # declare, 35 min after the corrected start, still later than the 10-minute deadline
    assert Decimal(again["b2"]["amount"]) == Decimal("40.00")
    assert again["b2"]["status"] == "approved" and again["b2"]["announced_amount"] == "60.00"

    # the billing export is spreadsheet-safe and marks the credits exported
    out = tmp_path / "credits.csv"
    exported = run_json(cfg, "credits", "INC-1", "--csv", str(out))
    assert all(c["status"] == "exported" for c in exported["credits"])
    rows = list(csv.DictReader(out.open(newline="")))
    name = next(r["name"] for r in rows if r["customer"] == "a1")
    assert name.startswith("'=HYPERLINK")
    assert {r["customer"]: r["amount"] for r in rows} == {
        "a1": "200.00",
        "b2": "40.00",
        "c3": "6000",
    }
    # billing has them: no edit changes an exported credit
    run_json(cfg, "edit", "INC-1", "--started-at", "-200m", "--yes")
    frozen = {c["customer"]: c for c in run_json(cfg, "credits", "INC-1")["credits"]}
    assert frozen["b2"]["amount"] == "40.00" and frozen["b2"]["status"] == "exported"


def test_no_credit_policy_credits_nobody(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path
) -> None:
    cfg = make_config(smtp_server)
    (tmp_path / "dir.csv").write_text(DIRECTORY)
    assert (
        cli("--config", str(cfg), "customers", "import", str(tmp_path / "dir.csv")).exit_code == 0
    )
    run_json(cfg, "declare", "API down", "-s", "sev2", "-c", "api", "--started-at", "-95m", "--yes")
    run_json(cfg, "resolve", "--yes", "INC-1", "Fixed.")
    data = run_json(cfg, "credits", "INC-1")
    # nothing, written with each currency's minor unit (JPY has none)
    assert {c["customer"]: c["amount"] for c in data["credits"]} == {
        "a1": "0.00",
        "b2": "0.00",
        "c3": "0",
    }
    msgs = smtp_server.handler.wait_for(lambda ms: sum(m.kind == "resolution" for m in ms) == 3)
    assert all("crediting" not in m.text() for m in msgs if m.kind == "resolution")
