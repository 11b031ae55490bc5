"""Who besides the customers hears of a round: an account manager's copy of every notice for
the policy's tiers, and channels with no per-customer contact (a status page), which get one
delivery per round rather than one per customer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from outagecomms.app import App
from outagecomms.channels.base import OutboundMessage
from outagecomms.config.loader import load_config
from outagecomms.models import (
    COPY_SUFFIX,
    ROUND_WIDE,
    DeliveryStatus,
    IncidentStatus,
    RoundKind,
)
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from outagecomms.store import tables as t
from tests.fakes.channels import RecordingWide, register
from tests.fakes.smtp import SmtpServer
from tests.support.processes import CliResult

HEADER = "id,name,email,tier,components,regions,timezone,locale,account_manager\n"
ROWS = [
    "e1,Enterprise One,ops@e1.example,enterprise,api,eu,Europe/Berlin,de_DE,am.one@s1.example",
    "e2,Enterprise Two,ops@e2.example,enterprise,api,eu,UTC,en_US,",
    "s1,Standard One,ops@s1c.example,standard,api,eu,UTC,en_US,am.two@s1.example",
]


@pytest.fixture
def wide_kind(monkeypatch: pytest.MonkeyPatch) -> list[OutboundMessage]:
    return register(monkeypatch, RecordingWide)


@pytest.fixture
def setup(
    tmp_path: Path, make_config: Callable[..., Path], smtp_server: SmtpServer, cli: Any
) -> Callable[[str], Path]:
    """``setup(extra)``: a config with ``extra`` TOML and the three customers imported."""

    def go(extra: str) -> Path:
        cfg = make_config(smtp_server, extra=extra)
        csv = tmp_path / "customers.csv"
        csv.write_text(HEADER + "\n".join(ROWS) + "\n")
        res: CliResult = cli("--config", str(cfg), "customers", "import", str(csv))
        assert res.exit_code == 0, res.stderr
        return cfg

    return go


AM_POLICY = """
[policy.sev2]
account_manager_tiers = ["enterprise"]
"""


def test_account_manager_gets_an_internal_copy_of_each_notice_for_listed_tiers(
    setup: Callable[[str], Path], smtp_server: SmtpServer, cli: Any
) -> None:
    cfg = setup(AM_POLICY)
    res = cli("--config", str(cfg), "declare", "API errors", "--severity", "sev2",
              "--component", "api", "--yes", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    # e2 is enterprise but has no account manager: counted, not an error; s1's tier is not listed
    assert out["skipped"] == {"email+am: no account_manager": 1}
    got = smtp_server.handler.wait_for(lambda m: len(m) >= 4)
    by_rcpt = {r.rcpt_tos[0]: r for r in got}
    assert set(by_rcpt) == {"ops@e1.example", "ops@e2.example", "ops@s1c.example",
                            "am.one@s1.example"}  # fmt: skip
    copy = by_rcpt["am.one@s1.example"]
    assert str(copy.message["Subject"]).endswith(
        "] Account copy for Enterprise One (enterprise): API errors"
    )
    assert "internal copy" in copy.text()
    assert "Enterprise One (e1, enterprise)" in copy.text()
    assert "Hello" not in copy.text()  # not the customer's own notice
    # the customer's own notice is unchanged by the copy
    assert by_rcpt["ops@e1.example"].message["Subject"] != copy.message["Subject"]

    res = cli(
        "--config", str(cfg), "resolve", "--yes", out["incident"], "Fixed the pool.", "--json"
    )
    assert res.exit_code == 0, res.stderr
    got = smtp_server.handler.wait_for(lambda m: len(m) >= 8)
    copies = [r for r in got if r.rcpt_tos == ["am.one@s1.example"]]
    assert len(copies) == 2 and "is resolved" in copies[1].text()


@pytest.mark.usefixtures("wide_kind")
def test_follow_up_goes_to_customers_only(setup: Callable[[str], Path], cli: Any) -> None:
    extra = AM_POLICY + '\n[channels.status]\nkind = "recording-wide"\n'
    extra = extra.replace(
        'account_manager_tiers = ["enterprise"]',
        'account_manager_tiers = ["enterprise"]\nchannels = { default = ["email", "status"] }',
    )
    cfg = setup(extra)
    res = cli("--config", str(cfg), "declare", "API errors", "--severity", "sev2",
              "--component", "api", "--yes", "--no-send", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    app = App.from_config(load_config(cfg))
    try:
        with app.store.write() as conn:
            inc = incidents_db.get_incident(conn, 1).incident
            assert incidents_db.audience_customer_ids(conn, inc.id) == ["e1", "e2", "s1"]
            rnd = outbox_db.insert_round_with_deliveries(
                conn, incident_id=inc.id, kind=RoundKind.FOLLOW_UP, message="",
                status=IncidentStatus.RESOLVED, created_at=app.clock(), due_by=None,
                promised_next_by=None,
            )  # fmt: skip
            rows = conn.execute(
                t.deliveries.select().where(t.deliveries.c.round_id == rnd.id)
            ).all()
        keys = sorted((r.customer_id, r.channel) for r in rows)
        assert keys == [("e1", "email"), ("e2", "email"), ("s1", "email")]
        assert all(r.status == DeliveryStatus.PENDING.value for r in rows)
    finally:
        app.close()
    assert not any(ch.endswith(COPY_SUFFIX) or cid == ROUND_WIDE for cid, ch in keys)


def test_a_channel_without_per_customer_contact_gets_one_delivery_per_round(
    setup: Callable[[str], Path],
    smtp_server: SmtpServer,
    cli: Any,
    wide_kind: list[OutboundMessage],
) -> None:
    extra = """
[policy.sev1]
channels = { default = ["email", "status"] }

[channels.status]
kind = "recording-wide"
"""
    cfg = setup(extra)
    res = cli("--config", str(cfg), "declare", "API down", "--severity", "sev1",
              "--component", "api", "--every", "10m", "--yes", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["audience"] == 3
    assert len(wide_kind) == 1  # once for the round, not three times
    ack = wide_kind[0]
    assert ack.to == "" and ack.data["customer"] == ROUND_WIDE
    assert ack.data["kind"] == "acknowledgement" and ack.data["incident"] == out["incident"]
    assert "Enterprise" not in ack.text  # rendered for nobody in particular
    smtp_server.handler.wait_for(lambda m: len(m) >= 3)

    res = cli("--config", str(cfg), "update", "--yes", out["incident"], "Rolled back.", "--json")
    assert res.exit_code == 0, res.stderr
    res = cli("--config", str(cfg), "resolve", "--yes", out["incident"], "All good.", "--json")
    assert res.exit_code == 0, res.stderr
    assert [m.data["kind"] for m in wide_kind] == ["acknowledgement", "update", "resolution"]
    assert wide_kind[-1].data["status"] == "resolved"

    res = cli("--config", str(cfg), "show", out["incident"], "--json")
    shown = json.loads(res.stdout)
    assert shown["audience"] == 3


def test_a_broken_account_manager_template_stops_the_declare_before_anything_is_queued(
    setup: Callable[[str], Path], tmp_path: Path, smtp_server: SmtpServer, cli: Any
) -> None:
    """The internal copy's templates are pre-flighted like the customers' own."""
    tpl = tmp_path / "tpl" / "acknowledgement"
    tpl.mkdir(parents=True)
    (tpl / "account_manager.txt.j2").write_text("{{ customer.no_such_field }}\n")
    cfg = setup(AM_POLICY + f'\n[templates]\ndir = "{tpl.parent}"\n')
    res = cli("--config", str(cfg), "declare", "API errors", "--severity", "sev2",
              "--component", "api", "--yes", "--json")  # fmt: skip
    assert res.exit_code == 2, res.stderr
    assert "acknowledgement/account_manager.txt.j2" in res.stderr
    listed = cli("--config", str(cfg), "list", "--all", "--json")
    assert json.loads(listed.stdout)["incidents"] == []
    assert smtp_server.handler.snapshot() == []
