"""A number Twilio refuses for good (21211 invalid, 21610 opted out) is flagged: the next rounds
skip it and ``show`` says so, until a re-import changes the customer's number."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.asgi import Reply
from tests.fakes.smtp import SmtpServer
from tests.fakes.twilio import FakeTwilio, twilio_error
from tests.support.toml import email_and_channel

HEADER = "id,name,email,phone,tier,components,regions,timezone,locale\n"
ROWS = {
    "a": "a,Alpha,ops@a.example,+15550100001,standard,api,eu,UTC,en_US",
    "b": "b,Beta,ops@b.example,+15550100002,standard,api,eu,UTC,en_US",
    "c": "c,Gamma,ops@c.example,+15550100003,standard,api,eu,UTC,en_US",
}


@pytest.fixture
def fake(twilio: FakeTwilio) -> FakeTwilio:
    return twilio


def _config(make_config: Callable[..., Path], smtp: SmtpServer, fake: FakeTwilio) -> Path:
    sms = {
        "kind": "twilio",
        "account_sid_env": "TEST_TWILIO_SID",
        "auth_token_env": "TEST_TWILIO_TOKEN",
        "from": "+15550100999",
        "base_url": fake.base,
    }
    cfg = make_config(smtp, extra=email_and_channel("sev2", "sms", sms))
    return cfg


def _import(cli: Any, cfg: Path, tmp_path: Path, rows: dict[str, str]) -> None:
    csv = tmp_path / "customers.csv"
    csv.write_text(HEADER + "\n".join(rows.values()) + "\n")
    res = cli("--config", str(cfg), "customers", "import", str(csv))
    assert res.exit_code == 0, res.stderr


def _sms_to(fake: FakeTwilio) -> list[str]:
    return sorted(r.form.get("To", "") for r in fake.requests)


def test_refused_numbers_are_skipped_by_later_rounds_until_they_change(
    tmp_path: Path,
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    fake: FakeTwilio,
    cli: Any,
) -> None:
    cfg = _config(make_config, smtp_server, fake)
    _import(cli, cfg, tmp_path, ROWS)
    fake.by_to["+15550100002"] = Reply(400, twilio_error(21610, 400, "Attempt to send to unsubscribed recipient"))  # fmt: skip
    fake.by_to["+15550100003"] = Reply(400, twilio_error(21211, 400, "The 'To' number is not a valid phone number."))  # fmt: skip
    res = cli("--config", str(cfg), "declare", "API down", "--severity", "sev2",
              "--component", "api", "--yes", "--json")  # fmt: skip
    assert res.exit_code == 3, res.stderr  # two SMS failed for good
    ref = json.loads(res.stdout)["incident"]
    assert _sms_to(fake) == ["+15550100001", "+15550100002", "+15550100003"]
    shown = json.loads(cli("--config", str(cfg), "show", ref, "--json").stdout)
    flagged = {f["customer"]: f for f in shown["flagged_contacts"]}
    assert set(flagged) == {"b", "c"}
    assert flagged["b"]["channel"] == "sms" and flagged["b"]["contact"] == "+15550100002"
    assert flagged["b"]["reason"].startswith("twilio 21610")
    assert flagged["c"]["reason"].startswith("twilio 21211")
    human = cli("--config", str(cfg), "show", ref)
    assert "skipped from now on: b on sms (+15550100002): twilio 21610" in human.stdout

    fake.requests.clear()
    res = cli("--config", str(cfg), "update", "--yes", ref, "Rolled back.", "--json")
    assert res.exit_code == 0, res.stderr  # nothing failed: the flagged numbers were skipped
    out = json.loads(res.stdout)
    assert out["queued"] == 4  # 3 emails + 1 SMS
    assert _sms_to(fake) == ["+15550100001"]
    emails = smtp_server.handler.wait_for(lambda m: len(m) >= 6)
    assert sorted(m.customer for m in emails if m.kind == "update") == ["a", "b", "c"]

    # b changes number: the flag goes, the new number gets the next round
    _import(cli, cfg, tmp_path, {**ROWS, "b": ROWS["b"].replace("+15550100002", "+15550100022")})
    shown = json.loads(cli("--config", str(cfg), "show", ref, "--json").stdout)
    assert [f["customer"] for f in shown["flagged_contacts"]] == ["c"]
    fake.requests.clear()
    fake.by_to.clear()
    res = cli("--config", str(cfg), "resolve", "--yes", ref, "Fixed.", "--json")
    assert res.exit_code == 0, res.stderr
    assert _sms_to(fake) == ["+15550100001", "+15550100022"]
