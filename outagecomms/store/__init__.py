"""Persistence: the store is the source of truth.

The schema is ``tables`` (changed only by ``migrations``); ``engine`` opens a database and gives
transactions (``Store.read()`` / ``Store.write()``). All SQL lives here, one module per
aggregate, each a set of functions that take a ``Connection`` and return domain objects or
typed rows: ``incidents`` (incidents, audience, rounds, events), ``outbox`` (deliveries),
``customers`` (the directory, contact flags), ``credits``, ``feedback``, ``drafts``, and
``leadership`` (the scheduler's advisory lock).
"""

from outagecomms.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
