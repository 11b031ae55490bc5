"""What the hardening table (tests/test_hardening.py) cannot say in one row: one customer's bad
data isolated at resolution, ``--replace --yes`` keeping what an open incident's rounds need,
values normalised where there is one right answer, and the documented limits."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy

from outagecomms.directory import fields
from outagecomms.directory.parse import parse_directory
from outagecomms.errors import InputError, quote
from outagecomms.models import Customer
from outagecomms.recovery.credits import (
    Credit,
    CreditForReview,
    Span,
    compute_credit_or_review,
    parse_credit_policy,
)
from outagecomms.recovery.feedback import clean_comment
from tests.fakes.smtp import SmtpServer
from tests.support.data import REPO, sample_csv, sample_rows, step_rule
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]


def _csv(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _run(cli: Cli, cfg: Path, *args: str) -> CliResult:
    res = cli("--config", str(cfg), *args)
    assert res.exit_code == 0, (args, res.stdout, res.stderr)
    return res


# --- credits: one customer's arithmetic does not fail the incident ---------------------------


@pytest.mark.parametrize("fee", ["1e26", "1e999999", "1e-30"])
def test_a_customer_whose_credit_cannot_be_computed_is_for_review_and_the_rest_go_out(
    cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer, store_url: str, fee: str
) -> None:
    """A store written before fees were bounded may hold 1e26 or 1e999999: resolving used to
    fail the whole incident (``internal error: InvalidOperation``; 38 s for 1e999999)."""
    cfg = make_config(smtp_server, extra=step_rule(), store_url=store_url)
    _run(cli, cfg, "customers", "import", str(sample_csv()))
    bad = next(r["id"] for r in sample_rows() if "auth" in r["components"].split(";"))
    engine = sqlalchemy.create_engine(store_url)
    with engine.begin() as conn:  # as an older version could have stored it
        conn.execute(
            sqlalchemy.text("UPDATE customers SET monthly_fee = :fee WHERE id = :id"),
            {"fee": fee, "id": bad},
        )
    engine.dispose()
    _run(cli, cfg, "declare", "Login broken", "-s", "sev2", "-c", "auth", "--started-at", "-95m",
         "--yes")  # fmt: skip
    res = _run(cli, cfg, "resolve", "--yes", "INC-1", "Fixed.", "--json")
    audience = [r["id"] for r in sample_rows() if "auth" in r["components"].split(";")]
    resolutions = smtp_server.handler.wait_for(
        lambda ms: sum(m.kind == "resolution" for m in ms) >= len(audience)
    )
    assert {m.customer for m in resolutions if m.kind == "resolution"} == set(audience)
    assert '"sent"' in res.stdout
    credits = {c["customer"]: c for c in json.loads(_run(cli, cfg, "credits", "INC-1", "--json").stdout)["credits"]}  # fmt: skip
    assert credits[bad]["status"] == "review" and credits[bad]["amount"] == "0"
    assert "needs review" in credits[bad]["lines"][0]["detail"]
    others = [c for cid, c in credits.items() if cid != bad]
    assert others and all(c["status"] == "proposed" for c in others)
    assert all(Decimal(c["amount"]) > 0 for c in others)
    assert f"{bad}: needs review: " in _run(cli, cfg, "credits", "INC-1").stderr
    # approval leaves the one for review to a person
    _run(cli, cfg, "credits", "INC-1", "--approve", "--yes")
    after = {c["customer"]: c["status"] for c in json.loads(_run(cli, cfg, "credits", "INC-1", "--json").stdout)["credits"]}  # fmt: skip
    assert after[bad] == "review"
    assert {s for cid, s in after.items() if cid != bad} == {"approved"}


def test_compute_credit_or_review_turns_a_failure_into_a_review() -> None:
    policy = parse_credit_policy({"rules": [{"kind": "response_sla", "percent": 10}]}, source="t")
    t0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
    span = Span(1, t0, t0 + timedelta(hours=1), "sev2")
    facts = dict(incident=span, ack_delivered_at=None, ack_within=timedelta(minutes=10),
                 history=[span])  # fmt: skip
    ok = compute_credit_or_review(
        policy, customer=Customer(id="a", name="A", monthly_fee=Decimal("100")), **facts
    )
    assert isinstance(ok, Credit) and ok.amount == Decimal("10.00")
    huge = compute_credit_or_review(
        policy, customer=Customer(id="b", name="B", monthly_fee=Decimal("1e100000000")), **facts
    )
    assert isinstance(huge, CreditForReview) and "outside the range" in huge.reason
    broken = compute_credit_or_review(
        policy, customer=Customer(id="c", name="C", monthly_fee=Decimal("100")),
        credited_this_month=Decimal(-1), **facts,
    )  # fmt: skip
    assert isinstance(broken, CreditForReview) and "ValueError" in broken.reason


# --- --replace during an open incident -------------------------------------------------------


def test_replace_with_yes_keeps_what_the_open_incidents_rounds_need(
    cli: Cli,
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    tmp_path: Path,
    store_url: str,
) -> None:
    cfg = make_config(smtp_server, extra=step_rule(), store_url=store_url)
    _run(cli, cfg, "customers", "import", str(sample_csv()))
    _run(cli, cfg, "declare", "Login broken", "-s", "sev2", "-c", "auth", "--yes")
    audience = {r["id"] for r in sample_rows() if "auth" in r["components"].split(";")}
    one = tmp_path / "one.csv"
    one.write_text(_csv(sample_rows()[:1]))
    refused = cli("--config", str(cfg), "customers", "import", "--replace", str(one))
    assert refused.exit_code == 2 and "INC-1" in refused.stderr
    res = _run(cli, cfg, "customers", "import", "--replace", "--yes", str(one))
    left = audience - {sample_rows()[0]["id"]}
    assert f"{len(left)} kept for the open incidents" in res.stderr
    listed = _run(cli, cfg, "customers", "list", "--json").stdout
    assert all(cid not in listed for cid in left)  # gone from the directory
    events = json.loads(_run(cli, cfg, "show", "INC-1", "--json").stdout)["events"]
    said = [e["detail"] for e in events if e["kind"] == "customers_left_directory"]
    assert said == [f"{len(left)} customers left the directory (customers import --replace); this incident keeps their details for its remaining rounds"]  # fmt: skip
    assert all("@" not in e["detail"] for e in events)  # the kept rows are data, not news

    _run(cli, cfg, "update", "--yes", "INC-1", "Still on it.")
    updates = smtp_server.handler.wait_for(
        lambda ms: sum(m.kind == "update" for m in ms) >= len(audience)
    )
    assert {m.customer for m in updates if m.kind == "update"} == audience
    _run(cli, cfg, "resolve", "--yes", "INC-1", "Fixed.")
    done = smtp_server.handler.wait_for(
        lambda ms: sum(m.kind == "resolution" for m in ms) >= len(audience)
    )
    assert {m.customer for m in done if m.kind == "resolution"} == audience
    # a new incident's audience comes from the directory as it is now
    _run(cli, cfg, "declare", "Login broken again", "-s", "sev2", "-c", "auth", "--yes",
         "--queue-only")  # fmt: skip
    shown = _run(cli, cfg, "deliveries", "INC-2", "--json").stdout
    assert all(cid not in shown for cid in left)


# --- normalised where there is one right answer ----------------------------------------------


@pytest.mark.parametrize(
    ("written", "stored"),
    [("en_US.UTF-8", "en_US"), ("de_DE.utf8", "de_DE"), ("EN-us", "en_US"), ("pt", "pt")],
)
def test_locale_is_normalised(tmp_path: Path, written: str, stored: str) -> None:
    rows = sample_rows()[:1]
    rows[0]["locale"] = written
    path = tmp_path / "d.csv"
    path.write_text(_csv(rows))
    assert parse_directory(path).customers[0].locale == stored


def test_allow_mixed_script_accepts_the_domain(
    cli: Cli, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    cfg = make_config()
    rows = sample_rows()[:1]
    rows[0]["email"] = "ops@ex\u0430mple.com"
    path = tmp_path / "d.csv"
    path.write_text(_csv(rows))
    assert cli("--config", str(cfg), "customers", "import", str(path)).exit_code == 2
    _run(cli, cfg, "customers", "import", "--allow-mixed-script", str(path))
    listed = json.loads(_run(cli, cfg, "customers", "list", "--json").stdout)
    assert listed["customers"][0]["email"] == "ops@ex\u0430mple.com"


def test_idn_domain_of_one_script_is_accepted(tmp_path: Path) -> None:
    rows = sample_rows()[:1]
    rows[0]["email"] = "ops@bücher.de"
    path = tmp_path / "d.csv"
    path.write_text(_csv(rows))
    assert parse_directory(path).customers[0].email == "ops@bücher.de"


def test_a_fee_within_the_rules_is_exact(tmp_path: Path) -> None:
    rows = sample_rows()[:2]
    rows[0].update(monthly_fee="199.9999", currency="USD")
    rows[1].update(monthly_fee="1000000000000", currency="JPY")
    path = tmp_path / "d.csv"
    path.write_text(_csv(rows))
    fees = [c.monthly_fee for c in parse_directory(path).customers]
    assert fees == [Decimal("199.9999"), fields.MAX_MONTHLY_FEE]


def test_comments_lose_bidi_controls_and_zero_width_characters() -> None:
    assert clean_comment("ok\u202e\u200b fine\u2028next\u0085last\u2029") == "ok fine\nnext\nlast"


def test_error_quotes_at_most_about_80_characters() -> None:
    assert len(quote("x" * 10_000_000)) < 120
    err = InputError("bad", file="f.csv", line=2, field="name", value="y" * 10_000_000)
    assert len(str(err)) < 200 and "(10000000 characters)" in str(err)


def test_import_limits_are_documented() -> None:
    doc = (REPO / "docs" / "import.md").read_text()
    for name, limit in fields.MAX_CHARS.items():
        assert re.search(rf"`{name}`.*\b{limit}\b", doc), name
    assert f"{fields.MAX_MONTHLY_FEE:,}" in doc
    assert "docs/import.md" in (REPO / "README.md").read_text()
