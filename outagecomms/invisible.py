"""Characters that hide or reorder text: bidi controls, zero-width characters, line separators.

A title or a customer name with U+202E (RIGHT-TO-LEFT OVERRIDE) shows reversed in a subject
line; a zero-width space makes two names that look the same differ; U+0085, U+2028 and U+2029
break lines where only CR/LF were expected. Titles and names refuse them (``find_invisible``);
free text from customers (feedback comments) keeps its words without them (``neutralise``).
"""

from __future__ import annotations

import re
import unicodedata

#: bidi embeddings, overrides, isolates and marks
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: zero-width characters (and the word joiner, the BOM used as a zero-width no-break space)
ZERO_WIDTH = "\u180e\u200b\u200c\u200d\u2060\ufeff"
#: line breaks beyond CR/LF: NEXT LINE, LINE SEPARATOR, PARAGRAPH SEPARATOR
LINE_BREAKS = "\u0085\u2028\u2029"

_INVISIBLE = re.compile(f"[{BIDI}{ZERO_WIDTH}{LINE_BREAKS}]")
_HIDDEN = re.compile(f"[{BIDI}{ZERO_WIDTH}]")
_BREAKS = re.compile(f"[{LINE_BREAKS}]")


def describe(ch: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``"""
    name = unicodedata.name(ch, "") or {"\u0085": "NEXT LINE"}.get(ch, "")
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def find_invisible(text: str) -> str | None:
    """The first bidi control, zero-width character or Unicode line break in ``text``, described
    (``U+202E (RIGHT-TO-LEFT OVERRIDE)``), or None."""
    m = _INVISIBLE.search(text)
    return describe(m.group()) if m else None


def invisible_message(found: str) -> str:
    return f"must not contain {found}: bidi controls, zero-width characters and line separators hide or reorder text"


def neutralise(text: str) -> str:
    """``text`` without bidi controls and zero-width characters; U+0085, U+2028 and U+2029 become
    plain line breaks."""
    return _BREAKS.sub("\n", _HIDDEN.sub("", text))
