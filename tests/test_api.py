"""The Python API: ``outagecomms.__all__``, ``IncidentRef``, ``outagecomms.App``'s verbs and
the read models, whose ``to_json()`` is exactly what the CLI prints with ``--json``."""

from __future__ import annotations

import asyncio
import inspect
import json
import mailbox
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import outagecomms
from outagecomms import App, IncidentRef, InputError, TemplateError
from tests.support.processes import CliResult

CUSTOMERS = """\
id,name,email,tier,monthly_fee,currency,components,regions
acme,Acme Corp,ops@acme.example,enterprise,1000,EUR,auth;api,eu-west
initech,Initech,it@initech.example,standard,100,USD,auth,us-east
globex,Globex,it@globex.example,standard,100,USD,billing,us-east
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "customers.csv").write_text(CUSTOMERS)
    path = tmp_path / "outagecomms.toml"
    path.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "store.db"}"

[company]
name = "S1 Technology"
status_page_url = "https://status.example.com"
support_email = "support@example.com"

[templates]
dir = "{tmp_path / "tpl"}"

[channels.email]
kind = "maildir"
path = "{tmp_path / "maildir"}"
from = "S1 Support <support@example.com>"
"""
    )
    return path


@pytest.fixture
def app(cfg: Path) -> Iterator[App]:
    with App.open(cfg) as a:
        a.import_customers(cfg.parent / "customers.csv")
        yield a


def mail(cfg: Path) -> list[tuple[str, str]]:
    box = cfg.parent / "maildir"
    if not box.exists():
        return []
    return sorted(
        (str(m["X-Outagecomms-Customer"]), str(m["X-Outagecomms-Round"]).split()[1])
        for m in mailbox.Maildir(str(box), create=False)
    )


# --- the surface ----------------------------------------------------------------------------


def test_all_is_sorted_public_and_importable() -> None:
    names = outagecomms.__all__
    assert names == sorted(set(names))
    assert [n for n in names if n.startswith("_") and n != "__version__"] == []
    for name in names:
        obj = getattr(outagecomms, name)
        if isinstance(obj, type) or inspect.isfunction(obj):  # ours, not a dependency's
            assert obj.__module__.startswith("outagecomms."), (name, obj.__module__)
    ns: dict[str, Any] = {}
    exec("from outagecomms import *", ns)
    assert set(names) <= set(ns)
    assert set(dir(outagecomms)) >= set(names)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = outagecomms.no_such_name  # type: ignore[attr-defined]


def test_the_public_names_users_need_are_exported() -> None:
    for name in (
        "App", "IncidentRef", "Selector", "Severity", "IncidentStatus", "RoundKind", "Customer",
        "OutageCommsError", "InputError", "TemplateError", "declare", "post_update", "resolve",
        "IncidentSummary", "IncidentDetail", "RoundSummary", "PromisesKept", "DeliveryRow",
        "CustomerRow", "__version__",
    ):  # fmt: skip
        assert name in outagecomms.__all__, name


def test_import_outagecomms_stays_cheap() -> None:
    """The CLI pays ``import outagecomms`` on every run: no SQLAlchemy, Jinja or Rich in it."""
    code = (
        "import sys, outagecomms; "
        "print(sorted(m for m in ('sqlalchemy', 'jinja2', 'rich', 'outagecomms.api') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- IncidentRef ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["INC-7", "inc-7", " INC-7 ", "7", 7, IncidentRef(7)])
def test_incident_ref_parses_what_people_type(value: object) -> None:
    ref = IncidentRef.parse(value)  # type: ignore[arg-type]
    assert ref == IncidentRef(7)
    assert str(ref) == "INC-7"


@pytest.mark.parametrize("value", ["INC-x", "", "INC-", "7a", "INC-0", 0, -3, True, 1.5, "٧"])
def test_a_bad_incident_ref_is_an_input_error_naming_the_field(value: object) -> None:
    with pytest.raises(InputError) as info:
        IncidentRef.parse(value)  # type: ignore[arg-type]
    assert info.value.field == "incident"
    assert "INC-12" in str(info.value)  # says what one looks like


def test_every_verb_takes_any_form_of_ref(app: App, cfg: Path) -> None:
    inc = app.declare("Logins failing", severity="sev2", components=["auth"]).incident
    assert str(IncidentRef.parse(inc)) == inc.ref == "INC-1"
    (summary,) = app.incidents()
    views = [app.show(r).to_json() for r in ("INC-1", "1", 1, IncidentRef(1), inc, summary)]
    assert all(v == views[0] for v in views)
    assert app.deliveries("inc-1") == app.deliveries(inc)
    assert outagecomms.post_update(app, "INC-1", "Cause found.", send=False).round.seq == 2
    assert app.update(1, "Fix rolling out.", send=False).round.seq == 3
    assert app.edit(IncidentRef(1), title="Logins failing for some").title == (
        "Logins failing for some"
    )
    assert app.resolve("1", "Fixed.", send=False).incident.status == "resolved"
    with pytest.raises(InputError, match="field 'incident'"):
        app.show("INC-one")


# --- the verbs ------------------------------------------------------------------------------


def test_declare_update_resolve_send_at_once(app: App, cfg: Path) -> None:
    declared = app.declare(
        "Logins failing", severity=outagecomms.Severity.SEV2, components=["auth"],
        started_at="-5m", every="15m", message="We are investigating.",
    )  # fmt: skip
    assert declared.queued == 2 and declared.sent is not None and declared.sent.sent == 2
    assert [c.id for c in declared.plan.audience.customers] == ["acme", "initech"]
    assert declared.incident.update_every.total_seconds() == 15 * 60
    updated = app.update(declared.incident, "Cause found.", status="identified")
    assert updated.incident.status == outagecomms.IncidentStatus.IDENTIFIED
    done = app.resolve(declared.incident, "Fixed.")
    assert done.sent is not None and done.sent.sent == 2
    assert mail(cfg) == sorted(
        (c, k) for c in ("acme", "initech") for k in ("acknowledgement", "update", "resolution")
    )
    shown = app.show(declared.incident, customer="acme")
    assert [r.kind for r in shown.rounds] == ["acknowledgement", "update", "resolution"]
    assert shown.promises_kept.on_time == shown.promises_kept.owed == 6
    assert shown.customer is not None
    assert [d.kind for d in shown.customer.deliveries] == [
        "acknowledgement",
        "update",
        "resolution",
    ]
    assert all(d.on_time for d in shown.customer.deliveries)
    assert [c["customer"] for c in app.credits(declared.incident)["credits"]] == [
        "acme",
        "initech",
    ]


def test_queue_then_send_and_record_only(app: App, cfg: Path) -> None:
    queued = app.declare("Logins failing", severity="sev2", components=["auth"], send="queue")
    assert queued.queued == 2 and queued.sent is None and mail(cfg) == []
    assert {d.status for d in app.deliveries(queued.incident)} == {"pending"}
    summary = app.send(queued.incident)
    assert summary.sent == 2 and len(mail(cfg)) == 2
    recorded = app.update(queued.incident, "Noted.", send=False)
    assert recorded.queued == 0 and recorded.sent is None and len(mail(cfg)) == 2
    with pytest.raises(InputError, match="field 'send'"):
        app.update(queued.incident, "Hm.", send="later")  # type: ignore[arg-type]


def test_send_async_inside_a_running_loop(app: App, cfg: Path) -> None:
    inc = app.declare("Logins failing", severity="sev2", tiers=["enterprise"], send="queue")

    async def main() -> int:
        return (await app.send_async(inc.incident)).sent

    assert asyncio.run(main()) == 1
    assert mail(cfg) == [("acme", "acknowledgement")]


def test_dry_run_writes_nothing(app: App, cfg: Path) -> None:
    plan = app.declare("Logins failing", severity="sev2", components="auth", dry_run=True)
    assert plan.dry_run and plan.queued == 0 and plan.sent is None
    assert plan.plan.audience.size == 2 and plan.incident.ref == "INC-NEW"
    assert app.incidents() == [] and mail(cfg) == []


def test_bad_input_names_the_field(app: App) -> None:
    with pytest.raises(InputError, match="every"):
        app.declare("Logins failing", severity="sev2", components=["auth"], every="soon")
    with pytest.raises(InputError, match="started_at"):
        app.declare("Logins failing", severity="sev2", components=["auth"], started_at="later")
    assert app.incidents() == []


def test_a_broken_resolution_template_credits_nothing_and_leaves_it_open(
    app: App, cfg: Path
) -> None:
    """Credits are written with the resolution round, after the pre-flight: not before it."""
    inc = app.declare("Logins failing", severity="sev1", components=["auth"]).incident
    broken = cfg.parent / "tpl" / "resolution" / "email.txt.j2"
    broken.parent.mkdir()
    broken.write_text("Fixed.\n{{ credit.amount.nope }}\n{% if %}\n")
    with App.open(cfg) as fresh:  # templates are read when an App opens
        with pytest.raises(TemplateError, match=r"resolution/email\.txt\.j2"):
            fresh.resolve(inc, "Fixed the certificate.")
        assert fresh.credits(inc)["credits"] == []
        (summary,) = fresh.incidents()
        assert summary.status == "investigating" and summary.resolved_at is None
        assert [r.kind for r in fresh.show(inc).rounds] == ["acknowledgement"]
    broken.unlink()
    with App.open(cfg) as fixed:
        fixed.resolve(inc, "Fixed the certificate.")
        assert len(fixed.credits(inc)["credits"]) == 2
    assert ("acme", "resolution") in mail(cfg)


# --- read models are the --json documents ---------------------------------------------------


def as_json(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))  # what the CLI's _print_json produces


def test_read_models_to_json_are_the_cli_documents(
    app: App, cfg: Path, cli: Callable[..., CliResult]
) -> None:
    inc = app.declare("Logins failing", severity="sev2", components=["auth"]).incident
    app.update(inc, "Cause found.", status="identified", send="queue")

    def run(*args: str) -> Any:
        res = cli("--config", str(cfg), *args, "--json")
        assert res.exit_code == 0, res.stderr
        return json.loads(res.stdout)

    assert run("list")["incidents"] == as_json([i.to_json() for i in app.incidents()])
    assert run("show", "INC-1") == as_json(app.show(inc).to_json())
    assert run("show", "INC-1", "--customer", "acme") == as_json(
        app.show(inc, customer="acme").to_json()
    )
    assert run("deliveries", "INC-1")["deliveries"] == as_json(
        [d.to_json() for d in app.deliveries(inc)]
    )
    assert run("customers", "list", "--tier", "standard")["customers"] == as_json(
        [c.to_json() for c in app.customers(tiers=["standard"])]
    )
    (row,) = app.watch()
    assert row.latest_round is not None and row.latest_round.round == 2
    assert row.to_json()["latest_round"]["kind"] == "update"
    # the queued update is owed, not yet sent
    assert app.show(inc).to_json()["promises_kept"] == {"on_time": 2, "owed": 4, "ratio": 0.5}
