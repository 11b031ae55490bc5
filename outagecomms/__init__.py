"""outagecomms: proactive outage communication.

Declare an incident, acknowledge every affected customer at once, keep the promised update
cadence, resolve, and (later) credit and follow up. The library does the work; ``outagecomms.cli``
is a thin layer over it.
"""

from outagecomms.errors import (
    ChannelError,
    ConfigError,
    InputError,
    NotFound,
    OutageCommsError,
    PermanentChannelError,
    StateError,
    TemplateError,
    TransientChannelError,
)

__version__ = "0.1.0"

__all__ = [
    "ChannelError",
    "ConfigError",
    "InputError",
    "NotFound",
    "OutageCommsError",
    "PermanentChannelError",
    "StateError",
    "TemplateError",
    "TransientChannelError",
    "__version__",
]
