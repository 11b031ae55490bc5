"""outagecomms: proactive outage communication.

Declare an incident, acknowledge every affected customer at once, keep the promised update
cadence, resolve, and (later) credit and follow up. The library does the work; ``outagecomms.cli``
is a thin layer over it. Scripts start from ``outagecomms.App`` (see ``outagecomms/api.py``).

``import outagecomms`` stays cheap (the CLI pays it on every run): only the exception tree is
imported here; every other name is imported when first used (``__getattr__``), since the
domain types alone cost more than the rest of this module and the App pulls in SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from outagecomms.errors import (
    ConfigError,
    DuplicateIncident,
    InputError,
    NotFound,
    OutageCommsError,
    StateError,
    StoreUnavailable,
    TemplateError,
)
from outagecomms.version import __version__

if TYPE_CHECKING:
    from outagecomms.api import App, Declared, RoundOutcome, SendMode
    from outagecomms.directory.importer import ImportResult
    from outagecomms.directory.views import CustomerRow
    from outagecomms.inbound.pipeline import Processed
    from outagecomms.inbound.respond import Response
    from outagecomms.incidents.lifecycle import (
        DeclarePlan,
        RoundCreated,
        commit_declare,
        declare,
        edit_incident,
        plan_declare,
        post_update,
        resolve,
    )
    from outagecomms.incidents.views import (
        CustomerDeliveries,
        CustomerDelivery,
        FlaggedContact,
        IncidentDetail,
        IncidentSummary,
        PromisesKept,
        RoundSummary,
        TimelineEvent,
        WatchRow,
    )
    from outagecomms.models import (
        Customer,
        DeliveryStatus,
        Incident,
        IncidentRef,
        IncidentStatus,
        RefLike,
        Round,
        RoundKind,
        Selector,
        SelectorArgs,
        Severity,
    )
    from outagecomms.outbox.deliveries import DeliveryRow
    from outagecomms.outbox.dispatch import DispatchSummary
    from outagecomms.workspace.channel_checks import ChannelsReport
    from outagecomms.workspace.scaffold import sample_customers_file


#: name -> the module that defines it, imported on first use
_LAZY = {
    **dict.fromkeys(
        [
            "Customer",
            "DeliveryStatus",
            "Incident",
            "IncidentRef",
            "IncidentStatus",
            "RefLike",
            "Round",
            "RoundKind",
            "Selector",
            "SelectorArgs",
            "Severity",
        ],
        "outagecomms.models",
    ),
    **dict.fromkeys(["App", "Declared", "RoundOutcome", "SendMode"], "outagecomms.api"),
    "ImportResult": "outagecomms.directory.importer",
    "CustomerRow": "outagecomms.directory.views",
    "Processed": "outagecomms.inbound.pipeline",
    "Response": "outagecomms.inbound.respond",
    **dict.fromkeys(
        [
            "DeclarePlan",
            "RoundCreated",
            "commit_declare",
            "declare",
            "edit_incident",
            "plan_declare",
            "post_update",
            "resolve",
        ],
        "outagecomms.incidents.lifecycle",
    ),
    **dict.fromkeys(
        [
            "CustomerDeliveries",
            "CustomerDelivery",
            "FlaggedContact",
            "IncidentDetail",
            "IncidentSummary",
            "PromisesKept",
            "RoundSummary",
            "TimelineEvent",
            "WatchRow",
        ],
        "outagecomms.incidents.views",
    ),
    "DeliveryRow": "outagecomms.outbox.deliveries",
    "DispatchSummary": "outagecomms.outbox.dispatch",
    "ChannelsReport": "outagecomms.workspace.channel_checks",
    "sample_customers_file": "outagecomms.workspace.scaffold",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'outagecomms' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "App",
    "ChannelsReport",
    "ConfigError",
    "Customer",
    "CustomerDeliveries",
    "CustomerDelivery",
    "CustomerRow",
    "DeclarePlan",
    "Declared",
    "DeliveryRow",
    "DeliveryStatus",
    "DispatchSummary",
    "DuplicateIncident",
    "FlaggedContact",
    "ImportResult",
    "Incident",
    "IncidentDetail",
    "IncidentRef",
    "IncidentStatus",
    "IncidentSummary",
    "InputError",
    "NotFound",
    "OutageCommsError",
    "Processed",
    "PromisesKept",
    "RefLike",
    "Response",
    "Round",
    "RoundCreated",
    "RoundKind",
    "RoundOutcome",
    "RoundSummary",
    "Selector",
    "SelectorArgs",
    "SendMode",
    "Severity",
    "StateError",
    "StoreUnavailable",
    "TemplateError",
    "TimelineEvent",
    "WatchRow",
    "__version__",
    "commit_declare",
    "declare",
    "edit_incident",
    "plan_declare",
    "post_update",
    "resolve",
    "sample_customers_file",
]
