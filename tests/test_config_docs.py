"""docs/config.md documents every key the loader accepts (so a new key cannot go unnoticed)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from outagecomms.channels import registry
from outagecomms.config import inbound, loader, maintenance, status_page
from outagecomms.config.model import CompanyConfig, DaemonConfig, DispatchConfig, WebConfig
from outagecomms.recovery import credits, goodwill

DOCS = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def section(title: str) -> str:
    """The text of one ``## `[title]` ...`` section of docs/config.md."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"^## `\[{re.escape(title)}\]`.*?(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/config.md has no section for [{title}]"
    return match.group(0)


def fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


KEYS = {
    "store": {"url"},
    "company": fields(CompanyConfig),
    "policy.default": loader._POLICY_KEYS,
    "dispatch": fields(DispatchConfig),
    "daemon": fields(DaemonConfig),
    "hooks": loader._HOOKS_KEYS | loader._RULE_KEYS,
    "credits": credits._TOP_KEYS
    | set().union(*credits._RULE_KEYS.values())
    | set(credits._RULE_KEYS),
    "[goodwill]": goodwill._KEYS,
    "templates": {"dir", "locale_dir"} | loader._TEMPLATE_LIMIT_KEYS,
    # display names: any key of the directory's, so the section documents the tables' form
    "components": {"<component key>", "<component key>.name", "<component key>.names"},
    "regions": {"<region key>", "<region key>.name", "<region key>.names"},
    "web": fields(WebConfig),
    "status_page": status_page.KEYS,
    "maintenance": maintenance.KEYS,
    "incident_page": loader._INCIDENT_PAGE_KEYS,
    "inbound": inbound.INBOUND_KEYS,
    "[escalation]": inbound.ESCALATION_KEYS,
    "channels.<name>": {"kind", "max_connections", "rate_per_second"}
    | {k for name in registry.names() for k in registry.get(name).config_keys}
    | set(registry.names()),
}


def test_every_top_level_table_has_a_section() -> None:
    for top in loader._TOP_KEYS:
        assert any(k.strip("[]").split(".")[0] == top for k in KEYS), top


@pytest.mark.parametrize("title", list(KEYS))
def test_every_key_is_documented(title: str) -> None:
    text = section(title)
    missing = sorted(k for k in KEYS[title] if f"`{k}`" not in text)
    assert not missing, f"docs/config.md [{title}] does not document {missing}"
