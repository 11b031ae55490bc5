"""The directory as read by people: customers matching a selector, as JSON-ready dicts."""

from __future__ import annotations

from typing import Any

from outagecomms.app import App
from outagecomms.directory import audience as aud
from outagecomms.models import Customer, Selector
from outagecomms.store import customers as customers_db


def customer_dict(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "tier": c.tier,
        "monthly_fee": str(c.monthly_fee),
        "currency": c.currency,
        "components": list(c.components),
        "regions": list(c.regions),
        "tags": list(c.tags),
        "timezone": c.timezone,
        "locale": c.locale,
        "channels": list(c.channels),
    }


def list_customers(app: App, selector: Selector) -> list[Customer]:
    with app.store.read() as conn:
        directory = customers_db.all_customers(conn)
    aud.validate_selector(selector, directory)
    if not selector.has_filters and not selector.customers:
        return [c for c in directory if c.id not in set(selector.exclude)]
    return aud.select(selector, directory)
