"""What may reach an operator's terminal: text that came from outside (customers' comments and
names, providers' replies, alert titles) is shown with its control characters escaped, so that
``\\x1b]0;TITLE\\x07`` or ``\\x1b[2J`` in a comment is read, not obeyed.

Escaped: C0 controls other than newline and tab (ESC, BEL, CR, backspace ...), DEL, the C1
controls (``\\x9b`` is CSI on 8-bit terminals), and the characters that reorder or break lines
on display (bidi embeddings, overrides and isolates, U+2028, U+2029). Each is shown as its
Python escape (``\\x1b``, ``\\u202e``), visible and harmless.

:data:`COMMANDER_CONTROLS` is what the commander's own text (titles, messages, the commander's
name) may not contain at all.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)

#: controls a commander's multi-line text (a message) may not contain: all but newline, tab
#: and CR (CRLF from a file is taken as a newline)
COMMANDER_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

#: controls a one-line value (a title, the commander's name) may not contain
LINE_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with every character that could drive a terminal shown as its escape."""
    return _UNSAFE.sub(_escaped, text)
