"""Cut a raw message down before the stdlib parser sees it.

Some shapes make ``email``'s parser slow or crash: it recurses once per MIME level and checks
every line against every open boundary (10,000 nested multiparts cost it seconds, then a
RecursionError), it compiles a regex per boundary past ``re``'s cache (5,000 containers took
4-10 s), and 100,000 headers take it half a second. One pass over the lines here drops the
headers past the limit and ends the message where nesting or the container count passes it;
the parser then reads what is left (its missing close boundaries are a noted defect).
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(rb"""boundary\s*=\s*(?:"([^"\r\n]+)"|([^\s;"]+))""", re.IGNORECASE)
_CTYPE = re.compile(rb"content-type\s*:\s*([a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+)", re.IGNORECASE)
# the stdlib compiles a regex per multipart boundary, past re's cache: 5,000 containers took
# it 4-10 s; real mail has a handful
MAX_CONTAINERS = 200


def precut(raw: bytes, *, max_depth: int, max_headers: int, notes: list[str]) -> bytes:
    """``raw`` without the top-level headers past ``max_headers``, ended where MIME nesting
    passes ``max_depth`` or the containers pass ``MAX_CONTAINERS`` (each with a note)."""
    lines = raw.split(b"\n")
    out: list[bytes] = []
    # top-level header block: count header starts
    count = dropped = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if line in (b"", b"\r"):
            break
        if line[:1] not in (b" ", b"\t"):
            count += 1
        if count > max_headers:
            dropped += line[:1] not in (b" ", b"\t")
        else:
            out.append(line)
        i += 1
    if dropped:
        notes.append(f"header count over {max_headers}: {dropped} dropped")
    if i == len(lines):
        return b"\n".join(out)
    header_lines = out
    lowered = raw.lower()
    if lowered.count(b"multipart/") + lowered.count(b"message/rfc822") <= max_depth:
        # cannot nest too deep: no scan (and, the common case, nothing to rewrite)
        return raw if not dropped else b"\n".join([*header_lines, *lines[i:]])
    body = lines[i + 1 :]
    # the nesting: a stack of open containers (a multipart's boundary, or None for a
    # message/rfc822, whose body starts with headers of its own)
    stack: list[bytes | None] = []
    delimiters: dict[bytes, int] = {}  # b"--boundary" -> its level in the stack

    containers = 0

    def open_container(headers: list[bytes]) -> bool | None:
        """Push what ``headers`` open; False: too deep or too many, None: a message/rfc822
        was opened."""
        nonlocal containers
        joined = b" ".join(h.strip() for h in headers)
        ctype = _CTYPE.search(joined)
        if not ctype:
            return True
        kind = ctype.group(1).lower()
        rfc822 = False
        if kind.startswith(b"multipart/"):
            found = _BOUNDARY.search(joined)
            if not found:
                return True
            boundary = found.group(1) or found.group(2) or b""
            stack.append(boundary)
            delimiters[b"--" + boundary] = len(stack)
        elif kind == b"message/rfc822":
            stack.append(None)
            rfc822 = True
        else:
            return True
        containers += 1
        if containers > MAX_CONTAINERS:
            notes.append(f"over {MAX_CONTAINERS} multipart containers: the rest not read")
            return False
        if len(stack) > max_depth:
            notes.append(f"MIME nested deeper than {max_depth}: not descended")
            return False
        return None if rfc822 else True

    def cut(kept: list[bytes]) -> bytes:
        return b"\n".join([*header_lines, b"", *kept])

    opened = open_container(header_lines)
    if opened is False:
        return cut([])
    in_headers = opened is None
    part_headers: list[bytes] = []
    kept: list[bytes] = []
    for line in body:
        if in_headers:
            if line in (b"", b"\r"):
                opened = open_container(part_headers)
                if opened is False:
                    return cut(kept)
                in_headers = opened is None
                part_headers = []
            else:
                part_headers.append(line)
        elif delimiters and line.startswith(b"--"):
            token = line.rstrip()
            level = delimiters.get(token)
            closing = False
            if level is None and token.endswith(b"--"):
                level = delimiters.get(token[:-2])
                closing = level is not None
            if level is not None:
                keep = level - 1 if closing else level
                for gone in stack[keep:]:
                    if gone is not None:
                        delimiters.pop(b"--" + gone, None)
                del stack[keep:]
                in_headers = not closing
                part_headers = []
        kept.append(line)
    return b"\n".join([*header_lines, b"", *kept])
