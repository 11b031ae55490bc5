"""What customers send back: ``inbound ingest`` (one message from a pipe), ``replies`` (what they
said) and ``respond`` (a person's answer)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from outagecomms.cli.exits import EXIT_USAGE, Group
from outagecomms.cli.options import JsonOpt, YesOpt, open_app
from outagecomms.cli.output import Table, add_row, err, escape, out, print_json

inbound = Group(
    help="Replies, bounces and texts coming back: `inbound ingest` takes one from a pipe.",
    no_args_is_help=True,
)

#: sysexits.h EX_TEMPFAIL: Postfix's pipe, procmail and sendmail keep the message and retry
EX_TEMPFAIL = 75


@inbound.command("ingest")
def ingest(
    source: Annotated[
        str,
        typer.Argument(
            metavar="[FILE|-]", help="An RFC 5322 message (.eml); '-' or nothing: stdin."
        ),
    ] = "-",
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient",
            help="The envelope recipient (Postfix pipe: ${recipient}); its reply token matches "
            "the message to our delivery. Repeatable.",
        ),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Accepted like every writing command's; it never asks."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Store one message (Postfix `pipe`, procmail, .forward), then classify and act on it.
    Exit 0 once it is stored; 75 (EX_TEMPFAIL, retried by the mail system) when it cannot be
    stored now; 2 when it can never be (larger than [inbound] max_size)."""
    from outagecomms.errors import InputError, OutageCommsError, StoreUnavailable
    from outagecomms.inbound import pipeline
    from outagecomms.inbound.sender import send_due_now

    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        err.print(
            f"[bold red]error:[/] cannot read {escape(source)}: {escape(exc.strerror or str(exc))}"
        )
        raise typer.Exit(EXIT_USAGE) from None
    try:
        app = open_app()
        stored = pipeline.store_message(app, raw, source="pipe", recipients=recipient or ())
    except InputError:
        raise
    except (StoreUnavailable, OutageCommsError, Exception) as exc:
        text = str(exc) if isinstance(exc, OutageCommsError) else f"{type(exc).__name__}: {exc}"
        err.print(
            f"[bold red]error:[/] not stored, try again later: {escape(text)}", highlight=False
        )
        raise typer.Exit(EX_TEMPFAIL) from None
    # stored: from here on the mail system must not retry (exit 0), whatever else happens
    try:
        done = (
            pipeline._already(app, stored.id)
            if stored.duplicate
            else pipeline.process(app, stored.id)
        )
        sent = send_due_now(app) if done.sends else 0
    except Exception as exc:
        # the daemon processes it at its next start (``process_pending``)
        err.print(
            f"[yellow]warning:[/] stored as {stored.id}, processing failed: {escape(str(exc))}"
        )
        if as_json:
            print_json({"id": stored.id, "duplicate": stored.duplicate, "processed": False})
        return
    if as_json:
        print_json({**done.to_json(), "processed": True, "sent": sent})
        return
    who = f"{done.customer_id} in {done.incident_ref}" if done.customer_id else "unmatched"
    extra = " (escalated)" if done.escalated else ""
    dup = ", a duplicate of one stored before" if done.duplicate else ""
    err.print(f"stored {stored.id}{dup}: {done.kind}, {who}{extra}", highlight=False)


def _reply_json(r: dict[str, Any]) -> dict[str, Any]:
    def iso(v: Any) -> Any:
        return v.isoformat() if v is not None else None

    return {
        "id": r["id"],
        "incident": f"INC-{r['incident_id']}" if r["incident_id"] else None,
        "customer_id": r["customer_id"],
        "channel": r["channel"],
        "source": r["source"],
        "kind": r["kind"],
        "received_at": iso(r["received_at"]),
        "sender": r["sender"],
        "subject": r["subject"],
        "text": r["text"],
        "language": r["language"],
        "sentiment": r["sentiment"],
        "label": r["label"],
        "needs_person": r["needs_person"],
        "escalated": r["escalated_at"] is not None,
        "escalated_at": iso(r["escalated_at"]),
        "escalation": r["escalation"],
        "acknowledged_at": iso(r["acknowledged_at"]),
        "responded_at": iso(r["responded_at"]),
        "bounce": r["bounce"],
        "reason": r["reason"],
        "matched_by": r["matched_by"] or None,
        "unmatched_reason": r["unmatched_reason"] or None,
        "parse_note": r["parse_note"] or None,
    }


def replies(
    incident: Annotated[
        str | None, typer.Argument(metavar="[INC]", help="The incident (INC-12).")
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="Only replies labelled negative, neutral or positive."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only reply, auto_reply or bounce.")
    ] = None,
    unmatched: Annotated[
        bool,
        typer.Option(
            "--unmatched",
            help="Messages attributed to no customer (a changed or unknown reply token, "
            "no reference to a message of ours).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """What customers sent back about an incident: replies (cleaned, scored, labelled),
    auto-replies and bounces, oldest first."""
    from outagecomms.inbound.views import list_replies

    if unmatched == (incident is not None):
        from outagecomms.errors import InputError

        raise InputError("give an incident (`replies INC-12`) or --unmatched, not both or neither")
    rows, ref = list_replies(open_app(), incident, label=label, kind=kind, unmatched=unmatched)
    shown = [_reply_json(r) for r in rows]
    if as_json:
        key = "unmatched" if unmatched else "incident"
        print_json({key: ref if not unmatched else True, "replies": shown})
        return
    if not shown:
        err.print("no messages" + ("" if unmatched else f" about {ref}"))
        return
    table = Table(
        "id", "received", "customer", "via", "kind", "label", "escalated", "answered", "text"
    )
    for r in shown:
        text = " ".join((r["text"] or r["unmatched_reason"] or "").split())
        add_row(
            table, str(r["id"]), (r["received_at"] or "")[:19].replace("T", " "),
            r["customer_id"] or (r["sender"] or "-"), r["channel"], r["kind"] or "-",
            r["label"] or ("read it" if r["needs_person"] else "-"),
            "yes" if r["escalated"] else "", "yes" if r["responded_at"] else "",
            text[:80] + ("..." if len(text) > 80 else ""),
        )  # fmt: skip
    out.print(table)


def respond(
    incident: Annotated[str, typer.Argument(metavar="INC", help="The incident (INC-12).")],
    message: Annotated[
        str, typer.Argument(metavar="MESSAGE", help="Your answer, as they read it.")
    ],
    customer: Annotated[str, typer.Option("--customer", help="The customer who wrote (their id).")],
    by: Annotated[str, typer.Option("--by", help="Your name, signed under the answer.")] = "",
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer a customer personally, on the channel they wrote from, threaded to their
    message; recorded in the incident and shown in `show --customer`."""
    from outagecomms.cli.sending import confirm_send
    from outagecomms.inbound.respond import plan_response
    from outagecomms.inbound.respond import respond as do_respond
    from outagecomms.inbound.sender import send_due_now

    app = open_app()
    row, reply = plan_response(app, incident, customer, message, by=by)
    confirm_send(
        yes,
        f"answer [bold]{escape(customer)}[/] on {escape(row['channel'])} ({escape(row['to'])}), "
        f"threaded to their message {reply['id']}:",
        [f"Subject: {row['subject']}" if row["subject"] else "", row["text"]],
        "Send it?",
    )
    resp = do_respond(app, incident, customer, message, by=by)
    send_due_now(app)
    with app.store.read() as conn:
        from outagecomms.store import inbound as inbound_db

        status = next(
            (
                s
                for s in inbound_db.sends_for(conn, int(resp.incident_ref[4:]), customer)
                if s["id"] == resp.send_id
            ),
            None,
        )
    state = status["status"] if status else "pending"
    if as_json:
        print_json(
            {**resp.to_json(), "status": state, "error": status["last_error"] if status else None}
        )
        return
    if state == "sent":
        err.print(f"sent to {escape(resp.to)} on {escape(resp.channel)}")
    else:
        why = status["last_error"] if status else ""
        err.print(
            f"queued ({state}{': ' + escape(why) if why else ''}); the daemon or `tick` retries it"
        )
