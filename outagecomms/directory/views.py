"""The directory as read by people: customers matching a selector, as typed rows."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

from outagecomms.app import App
from outagecomms.directory import audience as aud
from outagecomms.models import Customer, Selector
from outagecomms.store import customers as customers_db
from outagecomms.values import JsonModel


@dataclass(frozen=True, kw_only=True)
class CustomerRow(JsonModel):
    """A customer as ``customers list`` shows it (contacts other than email and phone, and the
    account manager, stay in the directory)."""

    id: str
    name: str
    email: str
    phone: str
    tier: str
    monthly_fee: Decimal
    currency: str
    components: tuple[str, ...]
    regions: tuple[str, ...]
    tags: tuple[str, ...]
    timezone: str
    locale: str
    channels: tuple[str, ...]
    #: contacts refused for good (a permanent bounce, Twilio 21211/21610, STOP), skipped by
    #: every later round: "email (ops@x.example): bounced 5.1.1: ..."
    flagged: tuple[str, ...] = ()
    #: the catalog their messages are written in: their locale's (``fr_CA``, ``fr``), else
    #: the company default (``[company] language``), else ``en`` (rendering.i18n)
    language: str = ""

    @classmethod
    def of(cls, c: Customer, flagged: tuple[str, ...] = (), language: str = "") -> CustomerRow:
        own = {"flagged", "language"}
        values = {f.name: getattr(c, f.name) for f in fields(cls) if f.name not in own}
        return cls(**values, flagged=flagged, language=language)


def list_customers(app: App, selector: Selector) -> list[CustomerRow]:
    with app.store.read() as conn:
        directory = customers_db.all_customers(conn)
    aud.validate_selector(selector, directory)
    if not selector.has_filters and not selector.customers:
        chosen = [c for c in directory if c.id not in set(selector.exclude)]
    else:
        chosen = aud.select(selector, directory)
    with app.store.read() as conn:
        flags = customers_db.contact_flags(conn, [c.id for c in chosen])
    by_customer: dict[str, list[str]] = {}
    for f in flags:
        by_customer.setdefault(f["customer_id"], []).append(
            f"{f['channel']} ({f['contact']}): {f['reason']}"
        )
    resolve = app.renderer.catalogs.resolve
    return [CustomerRow.of(c, tuple(by_customer.get(c.id, ())), resolve(c.locale)) for c in chosen]
