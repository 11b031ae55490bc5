"""Atom 1.0 as RFC 4287 defines it: its RELAX NG grammar (Appendix B, in
``tests/data/atom/atom.rnc``, converted with rnc2rng) plus the grammar's two Schematron rules,
which RELAX NG itself does not check."""

from __future__ import annotations

from functools import cache

import rnc2rng
from lxml import etree

from tests.support.data import DATA

A = "{http://www.w3.org/2005/Atom}"


@cache
def atom_schema() -> etree.RelaxNG:
    """RFC 4287's grammar. rnc2rng writes ``namespace local = ""`` as ``xmlns:local=""``,
    which XML namespaces forbid (a prefix cannot be unbound); the prefix names nothing else
    (``local:*`` becomes ``<nsName ns=""/>``), so the declaration is dropped."""
    rng = rnc2rng.dumps(rnc2rng.load(str(DATA / "atom" / "atom.rnc")))
    assert rng.count('xmlns:local=""') == 1
    return etree.RelaxNG(etree.fromstring(rng.replace('xmlns:local=""', "").encode()))


def assert_valid_atom(body: bytes) -> etree._Element:
    """The parsed feed; fails with the schema's errors when it is not Atom."""
    doc = etree.fromstring(body)
    schema = atom_schema()
    assert schema.validate(doc), schema.error_log
    assert doc.find(f"{A}author") is not None
    for entry in doc.iter(f"{A}entry"):
        assert entry.find(f"{A}content") is not None or any(
            link.get("rel", "alternate") == "alternate" for link in entry.iter(f"{A}link")
        )
    return doc
