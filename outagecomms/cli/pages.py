"""Customers' incident pages: ``page link`` (a fresh link for support staff to pass on) and
``page revoke`` (a forwarded or leaked link stops working)."""

from __future__ import annotations

from typing import Annotated

import typer

from outagecomms.cli.exits import Group
from outagecomms.cli.options import IncidentArg, JsonOpt, YesOpt, open_app
from outagecomms.cli.output import err, escape, out, print_json

page = Group(
    help="Customers' own incident pages (GET /i/<token>): a link for one, or revoke theirs.",
    no_args_is_help=True,
)


@page.command("link")
def page_link(
    incident: IncidentArg,
    customer: Annotated[str, typer.Option("--customer", help="The customer (their id).")],
    as_json: JsonOpt = False,
) -> None:
    """Print a fresh link to the customer's page of the incident, valid for
    [incident_page] link_lifetime (e.g. to read it out on a call or paste it in a ticket)."""
    from outagecomms.models import incident_id_from_ref
    from outagecomms.pages.incident import customer_link

    app = open_app()
    iid = incident_id_from_ref(incident)
    url = customer_link(app, iid, customer)
    expires = app.clock() + app.config.incident_page.link_lifetime
    if as_json:
        print_json(
            {
                "incident": f"INC-{iid}",
                "customer": customer,
                "url": url,
                "expires_at": expires.isoformat(),
            }
        )
        return
    out.print(url, highlight=False, soft_wrap=True)


@page.command("revoke")
def page_revoke(
    customer: Annotated[str, typer.Argument(metavar="CUSTOMER", help="The customer (their id).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the revocation).")] = "",
    by: Annotated[str, typer.Option("--by", help="Who revokes them.")] = "",
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Make every page link the customer was sent until now stop working (410), for every
    incident; the next message they are sent carries a fresh link."""
    from outagecomms.pages.incident import revoke_links

    at = revoke_links(open_app(), customer, by=by, reason=reason)
    if as_json:
        print_json({"customer": customer, "revoked_before": at.isoformat(), "reason": reason})
        return
    err.print(
        f"revoked the page links {escape(customer)} was sent before {at:%Y-%m-%d %H:%M:%S} UTC"
    )
