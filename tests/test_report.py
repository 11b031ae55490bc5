"""The post-incident report, for an incident run end to end in-process against a real SMTP
server (aiosmtpd) with an injected clock: every figure must match the ledger (the tables),
recomputed here independently with plain SQL."""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.numbers import get_currency_precision
from sqlalchemy import insert, select

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.errors import InputError, NotFound
from outagecomms.incidents.lifecycle import commit_declare, plan_declare, post_update, resolve
from outagecomms.incidents.promises import holding_start, reminder_at
from outagecomms.models import Customer, IncidentStatus, RoundKind, Selector
from outagecomms.outbox.senders import dispatch_due
from outagecomms.recovery.report import build_report, render_html, render_markdown, write_report
from outagecomms.scheduler.due import run_due
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from outagecomms.store import tables as t
from outagecomms.values import as_utc
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import SmtpServer
from tests.support.data import sample_csv

RETRY_BASE = timedelta(minutes=10)  # a retry waits 5-10 minutes (jitter)
TITLE = 'Database failover <script>alert("x")</script> & co'


@dataclass
class Run:
    app: App
    incident_id: int
    late: list[str]
    dead: str
    failed: str


def _dispatch(app: App, clock: FakeClock, incident_id: int, step_seconds: float) -> None:
    clock.step = timedelta(seconds=step_seconds)
    try:
        asyncio.run(dispatch_due(app, incident_id=incident_id))
    finally:
        clock.step = timedelta(0)


def _delivery_status(app: App, incident_id: int, customer: str, kind: str) -> str:
    with app.store.read() as conn:
        rows = outbox_db.customer_deliveries(conn, incident_id, customer)
    return next(r["status"] for r in rows if r["kind"] == kind)


def run_incident(app: App, clock: FakeClock, smtp: SmtpServer) -> Run:
    """Declare → late and failed acknowledgements → update → reminder → a late holding round →
    resolve, every round dispatched to the SMTP server; then credits and feedback."""
    import_file(app, sample_csv())
    plan = plan_declare(
        app, title=TITLE, severity="sev2", selector=Selector(tiers=("enterprise", "business", "standard")),
        started_at=clock.now - timedelta(minutes=4), commander="Dana <ops>",
        message="We are investigating errors on the primary database.",
    )  # fmt: skip
    created = commit_declare(app, plan)
    inc = created.incident
    iid = inc.id
    with app.store.read() as conn:
        ids = incidents_db.audience_customer_ids(conn, iid)
        customers = customers_db.get_customers(conn, ids)
    assert len(ids) >= 8
    late, dead, failed = [ids[1], ids[4]], ids[6], ids[-1]
    temp = "451 4.3.0 mailbox busy, try again later"
    perm = "550 5.1.1 no such user here"

    # The acknowledgement: most go out at once (3 s apart); two bounce with a 4xx and reach
    # their customer on the retry, after the deadline; one bounces twice and is dead (two
    # attempts at most); one is refused with a 5xx.
    smtp.handler.reject = {customers[c].email: temp for c in [*late, dead]}
    smtp.handler.reject[customers[failed].email] = perm
    _dispatch(app, clock, iid, 3)
    assert _delivery_status(app, iid, late[0], "acknowledgement") == "pending"
    clock.now = inc.started_at + RETRY_BASE + timedelta(minutes=6)  # every retry is due
    for c in late:
        del smtp.handler.reject[customers[c].email]
    _dispatch(app, clock, iid, 3)
    assert _delivery_status(app, iid, late[0], "acknowledgement") == "sent"
    assert _delivery_status(app, iid, dead, "acknowledgement") == "dead"
    smtp.handler.reject = {customers[failed].email: perm}

    # The commander's update, in time for the acknowledgement's promise.
    clock.now = datetime(2026, 11, 25, 13, 20, 7, tzinfo=UTC)
    upd = post_update(
        app, iid, "Cause identified: a failed disk on the primary database.", status="identified"
    )
    _dispatch(app, clock, iid, 2)

    # No further update: the commander is reminded, then a holding round goes out, too late.
    clock.now = reminder_at(upd.incident, app.config)  # type: ignore[assignment]
    assert run_due(app).reminders == [upd.incident.ref]
    clock.now = holding_start(upd.incident, app.config)  # type: ignore[assignment]
    assert len(run_due(app).holding) == 1
    assert upd.incident.next_update_due is not None
    clock.now = upd.incident.next_update_due + timedelta(minutes=1)
    _dispatch(app, clock, iid, 2)

    clock.now = datetime(2026, 11, 25, 14, 10, 7, tzinfo=UTC)
    resolve(app, iid, "Fixed: we failed over to a healthy replica and replaced the disk.")
    _dispatch(app, clock, iid, 2)
    smtp.handler.wait_for(lambda ms: {m.kind for m in ms} >= {"acknowledgement", "resolution"})

    # Credits and feedback, written straight into the ledger.
    now = clock.now
    by_cur: dict[str, list[Customer]] = defaultdict(list)
    for x in ids:
        by_cur[customers[x].currency].append(customers[x])
    eur, gbp, jpy = by_cur["EUR"], by_cur["GBP"], by_cur["JPY"]
    credit_rows = [
        (eur[0], "50.00", [("response_sla", "50.00", "ack late")], "approved", ""),
        (eur[1], "133.34", [("downtime_step", "83.333333333333333333", "2 blocks x 5%"),
                            ("repeat", "50.00", "3rd incident in 30 days")], "proposed",
         "A month of premium support"),
        (gbp[0], "0.00", [], "proposed", ""),
        (gbp[1], "33.33", [("downtime_step", "33.333333333333333333", "1 block x 5%")],
         "approved", ""),
        (jpy[0], "1235", [("response_sla", "1234.5", "ack late")], "proposed",
         "A session with an engineer"),
    ]  # fmt: skip
    scores = [(ids[0], 10, "Thanks for the quick updates"), (ids[1], 9, ""), (ids[2], 9, ""),
              (ids[3], 8, "ok"), (ids[4], 7, ""), (ids[5], 6, "<b>Slow</b> fix"),
              (ids[6], 0, "Never heard from you")]  # fmt: skip
    with app.store.write() as conn:
        conn.execute(t.credits.delete().where(t.credits.c.incident_id == iid))
        conn.execute(
            insert(t.credits),
            [
                {
                    "incident_id": iid, "customer_id": cust.id, "amount": amount,
                    "currency": cust.currency, "status": status, "goodwill": goodwill,
                    "lines": [{"rule": r, "amount": a, "detail": d} for r, a, d in lines],
                    "computed_at": now, "approved_at": now if status == "approved" else None,
                }
                for cust, amount, lines, status, goodwill in credit_rows
            ],
        )  # fmt: skip
        conn.execute(t.feedback.delete().where(t.feedback.c.incident_id == iid))
        conn.execute(
            insert(t.feedback),
            [
                {"incident_id": iid, "customer_id": cid, "score": score, "comment": comment,
                 "source": "manual", "received_at": now + timedelta(minutes=i)}
                for i, (cid, score, comment) in enumerate(scores)
            ],
        )  # fmt: skip
    return Run(app, iid, late, dead, failed)


def _config(make_config, smtp_server: SmtpServer, **kw: str) -> Path:
    """The shared test config with a long lease (the stepping clock must not expire a claim
    mid-dispatch), retries that wait minutes, and two attempts at most."""
    path: Path = make_config(smtp_server, **kw)
    text = path.read_text()
    for old, new in (
        ('retry_base = "1s"', f'retry_base = "{int(RETRY_BASE.total_seconds())}s"'),
        ('lease = "20s"', 'lease = "1h"\nmax_attempts = 2'),
    ):
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return path


@pytest.fixture
def run(smtp_server: SmtpServer, make_config, clock: FakeClock, store_url: str):
    app = App.open(_config(make_config, smtp_server, store_url=store_url), clock=clock)
    try:
        yield run_incident(app, clock, smtp_server)
    finally:
        app.close()


@pytest.fixture
def sqlite_run(smtp_server: SmtpServer, make_config, clock: FakeClock):
    app = App.open(_config(make_config, smtp_server), clock=clock)
    try:
        yield run_incident(app, clock, smtp_server)
    finally:
        app.close()


def _iso(dt: datetime | None) -> str | None:
    return as_utc(dt).isoformat().replace("+00:00", "Z") if dt else None  # type: ignore[union-attr]


def _ledger(app: App, iid: int) -> dict[str, Any]:
    """Raw rows from the tables, nothing derived by the code under test."""
    with app.store.read() as conn:
        inc = conn.execute(select(t.incidents).where(t.incidents.c.id == iid)).one()
        rounds = conn.execute(
            select(t.rounds).where(t.rounds.c.incident_id == iid).order_by(t.rounds.c.seq)
        ).all()
        deliveries = conn.execute(
            select(t.deliveries).where(t.deliveries.c.incident_id == iid)
        ).all()
        audience = conn.execute(select(t.audience).where(t.audience.c.incident_id == iid)).all()
        tiers = dict(conn.execute(select(t.customers.c.id, t.customers.c.tier)).all())
        credits = conn.execute(select(t.credits).where(t.credits.c.incident_id == iid)).all()
        feedback = conn.execute(select(t.feedback).where(t.feedback.c.incident_id == iid)).all()
        events = conn.execute(select(t.events).where(t.events.c.incident_id == iid)).all()
    return {
        "inc": inc, "rounds": rounds, "deliveries": deliveries, "audience": audience,
        "tiers": tiers, "credits": credits, "feedback": feedback, "events": events,
    }  # fmt: skip


def test_report_figures_match_the_ledger(run: Run) -> None:
    report = build_report(run.app, run.incident_id).to_json()
    assert json.loads(json.dumps(report)) == report  # JSON-able as it stands
    led = _ledger(run.app, run.incident_id)
    inc = led["inc"]
    started, ack_due = as_utc(inc.started_at), as_utc(inc.ack_due)
    assert started is not None and ack_due is not None

    # incident facts
    facts = report["incident"]
    assert facts["ref"] == f"INC-{run.incident_id}" and facts["title"] == TITLE
    assert facts["started_at"] == _iso(inc.started_at)
    assert facts["resolved_at"] == _iso(inc.resolved_at)
    assert facts["duration_seconds"] == (as_utc(inc.resolved_at) - started).total_seconds()  # type: ignore[operator]
    assert facts["cadence_seconds"] == inc.update_every_s == 1800
    assert facts["ack_within_seconds"] == 600
    assert facts["status"] == "resolved" and facts["commander"] == "Dana <ops>"

    # timeline: every round, with counts recomputed from the deliveries
    by_round: dict[int, list[Any]] = defaultdict(list)
    for d in led["deliveries"]:
        by_round[d.round_id].append(d)
    got_rounds = report["timeline"]["rounds"]
    assert [r["kind"] for r in got_rounds] == [r.kind for r in led["rounds"]]
    assert [r["kind"] for r in got_rounds] == ["acknowledgement", "update", "holding", "resolution"]
    total_owed = total_on_time = 0
    for got, rnd in zip(got_rounds, led["rounds"], strict=True):
        ds = by_round[rnd.id]
        status = Counter(d.status for d in ds)
        sent_at = [as_utc(d.sent_at) for d in ds if d.status == "sent"]
        due = as_utc(rnd.due_by)
        on_time = sum(1 for s in sent_at if due is not None and s <= due)  # type: ignore[operator]
        owed = sum(n for k, n in status.items() if k != "superseded")
        assert got["round"] == rnd.seq and got["message"] == rnd.message
        assert got["due_by"] == _iso(rnd.due_by)
        assert got["promised_next_by"] == _iso(rnd.promised_next_by)
        assert got["created_at"] == _iso(rnd.created_at)
        assert (got["owed"], got["sent"], got["on_time"]) == (owed, status["sent"], on_time)
        assert got["failed"] == status["failed"] + status["dead"]
        assert got["pending"] == status["pending"] + status["sending"]
        assert got["first_sent_at"] == _iso(min(sent_at))  # type: ignore[type-var]
        assert got["last_sent_at"] == _iso(max(sent_at))  # type: ignore[type-var]
        total_owed += owed
        total_on_time += on_time
    ack, _upd, holding, _res = got_rounds
    assert 0 < ack["on_time"] < ack["sent"]  # the scenario has both: on time and late
    assert holding["sent"] > 0 and holding["on_time"] == 0  # the holding round came late
    kinds = [e["kind"] for e in report["timeline"]["events"]]
    assert kinds.count("reminder") == 1 and len(kinds) == len(led["events"])

    # promises kept per round and overall
    prom = report["promises"]
    assert [(p["on_time"], p["owed"]) for p in prom["per_round"]] == [
        (r["on_time"], r["owed"]) for r in got_rounds
    ]
    assert prom["overall"]["on_time"] == total_on_time
    assert prom["overall"]["owed"] == total_owed
    assert prom["overall"]["ratio"] == pytest.approx(total_on_time / total_owed)

    # audience by tier and channel
    aud_ids = {a.customer_id for a in led["audience"]}
    assert report["audience"]["customers"] == len(aud_ids) == inc.audience_size
    assert report["audience"]["by_tier"] == dict(Counter(led["tiers"][c] for c in aud_ids))
    assert report["audience"]["by_channel"] == dict(Counter(a.channel for a in led["audience"]))
    assert len(report["audience"]["by_tier"]) >= 2

    # time to first notice: earliest sent acknowledgement per customer - started_at
    ack_round = led["rounds"][0]
    firsts: dict[str, datetime | None] = {}
    for d in by_round[ack_round.id]:
        firsts.setdefault(d.customer_id, None)
        if d.status == "sent":
            s = as_utc(d.sent_at)
            prev = firsts[d.customer_id]
            firsts[d.customer_id] = s if prev is None or s < prev else prev  # type: ignore[operator]
    waits = sorted((s - started).total_seconds() for s in firsts.values() if s is not None)
    n = len(waits)
    median = waits[n // 2] if n % 2 else (waits[n // 2 - 1] + waits[n // 2]) / 2
    p95 = waits[math.ceil(0.95 * n) - 1]
    fn = report["first_notice"]
    assert fn["owed"] == len(firsts) and fn["count"] == n
    assert fn["median_seconds"] == median
    assert fn["p95_seconds"] == p95
    assert fn["max_seconds"] == waits[-1]
    within = sum(1 for s in firsts.values() if s is not None and s <= ack_due)
    late = sum(1 for s in firsts.values() if s is not None and s > ack_due)
    never = sum(1 for s in firsts.values() if s is None)
    assert (fn["within"], fn["late"], fn["never"]) == (within, late, never)
    assert sorted(fn["late_customers"]) == sorted(run.late)
    assert sorted(fn["never_customers"]) == sorted([run.dead, run.failed])
    assert waits[-1] > 600 > waits[0]  # some late, some in time
    assert n % 2 == 0 and fn["p95_seconds"] < fn["max_seconds"]  # the scenario exercises both

    # deliveries by channel and status; failures and their errors
    dl = report["deliveries"]
    statuses = Counter(d.status for d in led["deliveries"])
    assert dl["by_status"] == dict(statuses)
    assert dl["by_channel"] == {
        ch: dict(Counter(d.status for d in led["deliveries"] if d.channel == ch))
        for ch in {d.channel for d in led["deliveries"]}
    }
    assert dl["total"] == len(led["deliveries"])
    assert dl["failed"] == statuses["failed"] == 4  # the 5xx customer, in every round
    assert dl["dead"] == statuses["dead"] == 1
    assert dl["retried"] == sum(1 for d in led["deliveries"] if d.attempts > 1)
    errors = Counter(d.last_error for d in led["deliveries"] if d.status in ("failed", "dead"))
    assert {e["error"]: e["count"] for e in dl["top_errors"]} == dict(errors)
    assert dl["top_errors"][0]["count"] == 4 and "550" in dl["top_errors"][0]["error"]

    # credits: Decimal sums, per currency, by status, rule and tier
    cr = report["credits"]
    total: dict[str, Decimal] = defaultdict(Decimal)
    by_rule: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    by_tier: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in led["credits"]:
        total[row.currency] += Decimal(row.amount)
        by_tier[led["tiers"][row.customer_id]][row.currency] += Decimal(row.amount)
        for line in row.lines:
            by_rule[line["rule"]][row.currency] += Decimal(line["amount"])

    def minor(v: Decimal, cur: str) -> str:
        q = Decimal(1).scaleb(-get_currency_precision(cur))
        return str(v.quantize(q, rounding=ROUND_HALF_UP))

    assert cr["count"] == len(led["credits"]) == 5
    assert cr["total"] == {cur: str(v) for cur, v in total.items()}
    assert cr["by_tier"] == {k: {c: str(v) for c, v in d.items()} for k, d in by_tier.items()}
    assert cr["by_rule"] == {k: {c: minor(v, c) for c, v in d.items()} for k, d in by_rule.items()}
    assert set(cr["by_rule"]) == {"response_sla", "downtime_step", "repeat"}
    assert cr["by_status"] == dict(Counter(r.status for r in led["credits"]))
    assert cr["by_status"] == {"approved": 2, "proposed": 3}
    assert cr["customers_credited"] == sum(1 for r in led["credits"] if Decimal(r.amount) > 0)
    assert cr["goodwill"]["count"] == sum(1 for r in led["credits"] if r.goodwill)
    for values in [*cr["total"].values(), *(v for d in cr["by_rule"].values() for v in d.values())]:
        Decimal(values)  # decimal strings, never floats

    # NPS
    scores = [f.score for f in led["feedback"]]
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    nps = report["nps"]
    assert (nps["responses"], nps["promoters"], nps["detractors"]) == (
        len(scores), promoters, detractors
    )  # fmt: skip
    assert nps["passives"] == sum(1 for s in scores if 7 <= s <= 8)
    expected = (Decimal(100 * (promoters - detractors)) / len(scores)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    assert nps["nps"] == float(expected) == 14.3
    assert [c["comment"] for c in nps["comments"]] == [
        f.comment for f in sorted(led["feedback"], key=lambda f: f.received_at) if f.comment
    ]

    # the knowledge-base stub takes cause and fix from the resolution round
    kb = report["kb_article"]
    assert kb["cause_and_fix"] == led["rounds"][-1].message
    assert kb["cause_notes"] == [led["rounds"][1].message]
    assert "TO DO" in kb["prevention"]
    assert f"{total_on_time}/{total_owed}" in kb["customer_communication"]


class _Page(HTMLParser):
    """Collects tags, text, the document title, and per SVG round group its bars and marks."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, opens a round group)
        self.round_groups: list[str | None] = []
        self.bars: list[list[str]] = []  # per round group: the classes of its bars
        self.promises: list[int] = []  # per round group: how many promise marks
        self.title = ""

    def _in_round(self) -> bool:
        return any(is_round for _, is_round in self.stack)

    def _element(self, tag: str, a: dict[str, str | None]) -> None:
        self.tags.append((tag, a))
        if self._in_round() and tag == "rect":
            self.bars[-1].append(a.get("class") or "")
        if self._in_round() and tag == "path" and a.get("class") == "promise":
            self.promises[-1] += 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self._element(tag, a)
        in_svg = any(t == "svg" for t, _ in self.stack)
        is_round = tag == "g" and a.get("class") == "round" and in_svg
        if is_round:
            self.round_groups.append(a.get("data-round"))
            self.bars.append([])
            self.promises.append(0)
        self.stack.append((tag, is_round))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if any(t == tag for t, _ in self.stack):
            while self.stack.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        tags = [t for t, _ in self.stack]
        if tags and tags[-1] == "title" and "svg" not in tags:
            self.title += data


def test_html_is_self_contained_escaped_and_charts_every_round(sqlite_run: Run) -> None:
    model = build_report(sqlite_run.app, sqlite_run.incident_id)
    report = model.to_json()
    page = _Page()
    page.feed(render_html(model))
    page.close()
    names = [tag for tag, _ in page.tags]
    assert "script" not in names  # the title's <script> is text, not a tag
    assert not {"link", "img", "iframe", "object", "embed"} & set(names)
    assert all("src" not in a and "href" not in a for _, a in page.tags)
    text = "".join(page.text)
    assert TITLE in page.title and TITLE in text
    assert "<b>Slow</b> fix" in text and "b" not in names  # the comment is escaped too
    assert "Dana <ops>" in text
    assert names.count("svg") == 1
    assert page.round_groups == [str(r["round"]) for r in report["timeline"]["rounds"]]
    assert len(page.round_groups) == 4
    # bars: green up to the promise, red after it; one promise mark per round
    assert page.bars == [
        ["sent ontime", "sent late"],  # the acknowledgement: most in time, two late
        ["sent ontime"],
        ["sent late"],  # the holding round went out after its promise
        ["sent ontime"],
    ]
    assert page.promises == [1, 1, 1, 1]
    fn = report["first_notice"]
    assert fn["median"] in text and fn["p95"] in text
    assert f"{report['nps']['nps']}" in text


def test_markdown_has_every_section_and_the_figures(sqlite_run: Run) -> None:
    model = build_report(sqlite_run.app, sqlite_run.incident_id)
    report = model.to_json()
    md = render_markdown(model)
    for heading in (
        "# Post-incident report: INC-",
        "## Timeline",
        "### Events",
        "## Audience",
        "## Time to first notice",
        "## Promises kept",
        "## Deliveries",
        "## Credits",
        "## Customer feedback (NPS)",
        "## Knowledge-base article (draft)",
        "**Cause and fix.**",
        "**Prevention.**",
    ):
        assert heading in md, heading
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "&lt;b&gt;Slow&lt;/b&gt; fix" in md
    ov = report["promises"]["overall"]
    assert f"**Overall: {ov['on_time']}/{ov['owed']}" in md
    fn = report["first_notice"]
    assert f"- **Median:** {fn['median']}" in md and f"- **p95:** {fn['p95']}" in md
    assert f"- **Late:** {fn['late']}" in md and f"- **Never:** {fn['never']}" in md
    assert f"- **NPS:** {report['nps']['nps']}" in md
    for cur, amount in report["credits"]["total"].items():
        assert f"{amount} {cur}" in md
    dl = report["deliveries"]
    assert f"{dl['failed']} failed, {dl['dead']} dead" in md
    assert "> Fixed: we failed over to a healthy replica and replaced the disk." in md


def test_write_report_writes_the_file_and_names_a_bad_format(
    sqlite_run: Run, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    text = write_report(sqlite_run.app, sqlite_run.incident_id, "html", out)
    assert out.read_text(encoding="utf-8") == text and text.startswith("<!DOCTYPE html>")
    md = write_report(sqlite_run.app, sqlite_run.incident_id)
    assert md.startswith("# Post-incident report: INC-")
    with pytest.raises(InputError, match="field 'format'"):
        write_report(sqlite_run.app, sqlite_run.incident_id, "pdf", tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()
    with pytest.raises(NotFound, match="INC-999"):
        write_report(sqlite_run.app, 999)


def test_recorded_incident_with_a_follow_up_owes_no_promise(make_config, clock: FakeClock) -> None:
    """An incident recorded without messaging, plus a queued follow-up round: nothing was
    promised, so nothing counts towards promises kept, and nobody had a first notice."""
    app = App.open(make_config(None), clock=clock)
    try:
        import_file(app, sample_csv())
        plan = plan_declare(
            app, title="Past outage", severity="sev3", selector=Selector(regions=("us-west",)),
            started_at=clock.now - timedelta(hours=2),
        )  # fmt: skip
        iid = commit_declare(app, plan, send=False).incident.id
        resolve(app, iid, "Recovered.", resolved_at=clock.now - timedelta(hours=1), send=False)
        with app.store.write() as conn:
            follow = outbox_db.insert_round_with_deliveries(
                conn, incident_id=iid, kind=RoundKind.FOLLOW_UP, message="",
                status=IncidentStatus.RESOLVED, created_at=clock.now, due_by=None,
                promised_next_by=None,
            )  # fmt: skip
        model = build_report(app, iid)
        report = model.to_json()
        size = plan.audience.size
        with app.store.read() as conn:
            credit_rows = conn.execute(
                select(t.credits).where(t.credits.c.incident_id == iid)
            ).all()
    finally:
        app.close()
    assert size > 0
    rounds = report["timeline"]["rounds"]
    assert [r["kind"] for r in rounds] == ["acknowledgement", "resolution", "follow_up"]
    assert [r["owed"] for r in rounds] == [0, 0, size]
    assert rounds[2]["round"] == follow.seq and rounds[2]["pending"] == size
    assert report["promises"]["overall"] == {"on_time": 0, "owed": 0, "ratio": None}
    # the acknowledgement keeps ack_due; the rest kept no promise (none was made)
    assert [p["counted"] for p in report["promises"]["per_round"]] == [True, False, False]
    fn = report["first_notice"]
    assert (fn["owed"], fn["count"], fn["median_seconds"], fn["p95_seconds"]) == (0, 0, None, None)
    assert report["incident"]["duration_seconds"] == 3600
    assert report["deliveries"]["pending"] == size and report["deliveries"]["failed"] == 0
    assert report["credits"]["count"] == len(credit_rows)  # whatever resolution proposed
    assert report["nps"]["responses"] == 0 and report["nps"]["nps"] is None
    md = render_markdown(model)
    assert "No feedback yet." in md
    assert "- **Median:** n/a" in md
    page = _Page()
    html_text = render_html(model)
    page.feed(html_text)
    page.close()
    assert page.round_groups == ["1", "2", "3"]
    assert page.bars == [[], [], []] and page.promises == [1, 0, 0]
    svg = html_text[html_text.index("<svg") : html_text.index("</svg>")]
    assert svg.count(">nothing sent</text>") == 3


def test_a_notice_sent_exactly_at_the_deadline_is_in_time(sqlite_run: Run) -> None:
    app, iid = sqlite_run.app, sqlite_run.incident_id
    before = build_report(app, iid).to_json()
    with app.store.write() as conn:
        inc = incidents_db.get_incident(conn, iid).incident
        ack_round = incidents_db.list_rounds(conn, iid)[0]
        for customer, at in zip(
            sqlite_run.late, [inc.ack_due, inc.ack_due + timedelta(seconds=1)], strict=True
        ):
            conn.execute(
                t.deliveries.update()
                .where(
                    t.deliveries.c.round_id == ack_round.id,
                    t.deliveries.c.customer_id == customer,
                )
                .values(sent_at=at)
            )
    after = build_report(app, iid).to_json()
    b, a = before["first_notice"], after["first_notice"]
    assert (a["within"], a["late"], a["never"]) == (b["within"] + 1, b["late"] - 1, b["never"])
    assert a["late_customers"] == [sqlite_run.late[1]]
    assert a["max_seconds"] == (inc.ack_due - inc.started_at).total_seconds() + 1
    ack_before, ack_after = before["promises"]["per_round"][0], after["promises"]["per_round"][0]
    assert ack_after["on_time"] == ack_before["on_time"] + 1
