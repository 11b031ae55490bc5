"""outagecomms: proactive outage communication.

Declare an incident, acknowledge every affected customer at once, keep the promised update
cadence, resolve, and (later) credit and follow up. The library does the work; ``outagecomms.cli``
is a thin layer over it.
"""

from outagecomms.errors import (
    ConfigError,
    InputError,
    NotFound,
    OutageCommsError,
    StateError,
    TemplateError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "InputError",
    "NotFound",
    "OutageCommsError",
    "StateError",
    "TemplateError",
    "__version__",
]
