"""What the email channels share: the email templates, the customer's email address as the
contact, and a ``from`` address checked once when the config is loaded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from outagecomms.channels.base import Channel, KeySpec
from outagecomms.rendering.mime import check_from


class EmailChannel(Channel):
    """Base of the channels that deliver email (``smtp``, ``maildir``); not a kind itself."""

    template_channel = "email"
    contact_field = "email"
    #: the ``from`` key every email channel takes, merged into its ``config_keys``
    from_key: ClassVar[dict[str, KeySpec]] = {"from": (str, "Support <support@example.com>")}

    @classmethod
    def check_config(cls, settings: Mapping[str, Any]) -> str | None:
        return check_from(settings["from"])
