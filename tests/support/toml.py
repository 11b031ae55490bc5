"""Config snippets written as TOML from Python values, for the tests that write a config file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def toml_value(value: Any) -> str:
    """``value`` (a bool, number, string, list or mapping of those) as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for these values
    return str(value)


def toml_table(name: str, table: Mapping[str, Any]) -> str:
    """``[name]`` holding ``table``'s keys, one a line."""
    return f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())


def email_and_channel(severity: str, name: str, table: Mapping[str, Any]) -> str:
    """A ``severity`` policy that sends by email and over the channel ``name``, and that
    channel's ``[channels.<name>]`` ``table``."""
    policy = toml_table(f"policy.{severity}", {"channels": {"default": ["email", name]}})
    return f"\n{policy}\n{toml_table(f'channels.{name}', table)}"
