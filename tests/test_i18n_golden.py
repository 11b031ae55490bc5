"""The default templates in English say byte for byte what they said before they moved to
``{% trans %}`` (issue 14): every template set and inbound message, for customers in four
zones and locales and rounds with and without each optional part, against golden files
written from the templates as they were (tests/support/i18n_golden.py)."""

from __future__ import annotations

import pytest

from outagecomms.config.model import CompanyConfig
from outagecomms.rendering.i18n import Catalogs
from outagecomms.rendering.templates import Renderer
from tests.support.i18n_golden import GOLDEN, PEOPLE, renders


def english_only(company: CompanyConfig) -> Renderer:
    """Every customer in English (no catalogs), whatever their locale says."""
    return Renderer(company=company, catalogs=Catalogs([]))


def english_default(company: CompanyConfig) -> Renderer:
    """The shipped catalogs, read by customers whose language has none of its own."""
    return Renderer(company=company)


CASES = dict(renders(english_only))


@pytest.mark.parametrize("name", sorted(CASES))
def test_english_output_is_unchanged(name: str) -> None:
    golden = (GOLDEN / name).read_text(encoding="utf-8")
    assert CASES[name] == golden


def test_every_golden_file_is_still_rendered() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.txt")) == sorted(CASES)


@pytest.mark.catalogs
def test_english_readers_with_the_shipped_catalogs_read_the_same() -> None:
    """en_US customers (and those whose language has no shipped catalog: the company default,
    English) read the golden messages with the shipped catalogs loaded too."""
    catalogs = english_default(CompanyConfig()).catalogs
    english = tuple(f"customer {c.id}" for c in PEOPLE if catalogs.resolve(c.locale) == "en")
    assert "customer c3" in english  # en_US
    for name, text in renders(english_default):
        golden = (GOLDEN / name).read_text(encoding="utf-8")
        for chunk, want in zip(text.split("=== ")[1:], golden.split("=== ")[1:], strict=True):
            if chunk.split("\n", 1)[0].endswith(english):
                assert chunk == want, (name, chunk.split("\n", 1)[0])
