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

    @classmethod
    def of(cls, c: Customer) -> CustomerRow:
        return cls(**{f.name: getattr(c, f.name) for f in fields(cls)})


def list_customers(app: App, selector: Selector) -> list[CustomerRow]:
    with app.store.read() as conn:
        directory = customers_db.all_customers(conn)
    aud.validate_selector(selector, directory)
    if not selector.has_filters and not selector.customers:
        chosen = [c for c in directory if c.id not in set(selector.exclude)]
    else:
        chosen = aud.select(selector, directory)
    return [CustomerRow.of(c) for c in chosen]
