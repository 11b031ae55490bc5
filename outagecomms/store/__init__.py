"""Persistence: the store is the source of truth (schema in ``tables``, access in ``repository``)."""

from outagecomms.store.repository import Store, open_store

__all__ = ["Store", "open_store"]
