"""What a customer wrote, without the markup, the quoted notice and the signature.

Replies quote our notice below (or, bottom-posted, above) the customer's words; classifying
sentiment or language on the quote would measure *our* text. ``strip_reply`` keeps the text
above the first quote marker a mail client writes, in the languages our customers use.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = frozenset(
    str.split(
        "address article aside blockquote br dd div dl dt fieldset figcaption figure footer form "
        "h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table tbody thead tfoot tr ul"
    )
)
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base"})


class _TextParser(HTMLParser):
    """Collects text runs; block boundaries become line breaks, ``<blockquote>`` lines get
    "> " (as mail clients' plain-text versions do) so ``strip_reply`` sees the quote."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip = 0
        self.quote = 0
        self.pre = 0

    def _break(self, force: bool = False) -> None:
        """End the current line; an empty one is kept only for a ``<br>`` (a spacer)."""
        line = "".join(self.current)
        if not self.pre:
            line = re.sub(r"[ \t\r\n\f\u00a0]+", " ", line).strip()
        self.current = []
        if not line and not force:
            return
        self.lines.append("> " * self.quote + line if line else ("" if not self.quote else ">"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
            return
        if tag in _BLOCK:
            self._break(force=tag == "br")
        if tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.current.append("- ")
        elif tag == "td" or tag == "th":
            self.current.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self._break(force=tag == "br")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag in _BLOCK and tag not in _VOID:
            self._break()
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.current.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML mail body: scripts, styles and the head dropped, block
    elements on lines of their own, entities decoded, blank-line runs collapsed."""
    parser = _TextParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient; this is the last resort
        return re.sub(r"<[^>]*>", " ", html).strip()
    parser._break()
    out: list[str] = []
    for line in parser.lines:
        if not line.strip(" >") and out and not out[-1].strip(" >"):
            continue
        out.append(line.rstrip())
    return "\n".join(out).strip()


# "On <date>, X wrote:" and its equivalents; matched on one line or two joined (clients wrap)
_ATTRIBUTION = re.compile(
    r"""^\s*(?:
        On\s.{3,300}\swrote\s?:
      | Am\s.{3,300}\sschrieb.{0,200}:
      | Le\s.{3,300}\sa\sécrit\s?:
      | El\s.{3,300}\sescribió\s?:
      | Em\s.{3,300}\sescreveu\s?:
      | Il\s.{3,300}\sha\sscritto\s?:
      | Op\s.{3,300}\sschreef.{0,200}:
      | .{1,300}さんは書きました\s?[:：]
      | .{1,300}のメッセージ\s?[:：]
      | .{1,300}(?:wrote|написал|написала|napisał|skrev|kirjoitti|írta)\s?:
      | .{0,300}<[^<>\s]+@[^<>\s]+>\)?\s?\S{0,20}\s?[:：]   # "..., Name <addr>:" (yandex, mail.ru)
    )\s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_ATTRIBUTION_LEAD = re.compile(r"^\s*(?:(?:On|Am|Le|El|Em|Il|Op)\s\S|\d)", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"""^\s*-{2,}\s*(?:Original\sMessage|Ursprüngliche\sNachricht|Message\sd'origine
        |Mensaje\soriginal|Mensagem\soriginal|Messaggio\soriginale|Oorspronkelijk\sbericht
        |元のメッセージ|Forwarded\smessage|Weitergeleitete\sNachricht)\s*-{2,}\s*$""",
    re.VERBOSE | re.IGNORECASE,
)
# Outlook's header block: a From line followed within a few lines by a Sent/Date line
# (Hotmail starts its block with Date:)
_HDR_FROM = re.compile(
    r"^\s*\**(?:From|Von|De|差出人|Da|Van|От|Date|Datum|Fecha|Data)\s?\**\s?[:：]", re.IGNORECASE
)
_HDR_SENT = re.compile(
    r"^\s*\**(?:Sent|Date|Gesendet|Datum|Envoyé|Date|Enviado|Fecha|送信日時|日付|Inviato|Verzonden"
    r"|Отправлено|Дата|To|An|À|Para|宛先|A|Aan|Кому|Subject|Betreff|Objet|Asunto|Assunto|件名"
    r"|Oggetto|Onderwerp|Тема|From|Von|De|差出人|Da|Van|От)"
    r"\s?\**\s?[:：]",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^--\s?$")
_SENT_FROM = re.compile(
    r"""^\s*(?:Sent\sfrom\smy\s|Sent\sfrom\s(?:Outlook|Mail|Yahoo)|Get\sOutlook\sfor\s
      |Von\smeinem\s.{1,40}\sgesendet|Gesendet\svon\smeinem\s|Envoyé\sde\smon\s
      |Enviado\sdesde\smi\s|Enviado\sdo\smeu\s|Enviado\sdo\smeu\s|Inviato\sda\s
      |Verzonden\svanaf\s|Verstuurd\svanaf\s|iPhoneから送信|Androidから送信|iPadから送信)""",
    re.VERBOSE | re.IGNORECASE,
)


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _marker_at(lines: list[str], i: int) -> bool:
    """Whether ``lines[i]`` starts the quoted or signature part."""
    line = lines[i]
    if _is_quoted(line) or _SIGNATURE.match(line) or _ORIGINAL.match(line):
        return True
    if _SENT_FROM.match(line):
        return True
    if len(line) <= 400 and _ATTRIBUTION.match(line):
        return True
    # an attribution its client wrapped: "On ..., S1 Technology <" / "status@...> wrote:"
    wrapped = i + 1 < len(lines) and len(line) <= 300 and _ATTRIBUTION_LEAD.match(line)
    if wrapped and _ATTRIBUTION.match(line.rstrip() + " " + lines[i + 1].strip()):
        return True
    if re.match(r"^\s*_{10,}\s*$", line) and i + 1 < len(lines) and _HDR_FROM.match(lines[i + 1]):
        return True
    if _HDR_FROM.match(line):
        following = [s for s in lines[i + 1 : i + 5] if s.strip()]
        if sum(1 for s in following if _HDR_SENT.match(s)) >= 2:
            return True
    return False


def strip_reply(text: str) -> str:
    """The customer's own words: the text above the first quote, attribution, Outlook
    original-message block, signature separator or "Sent from my ..." line. When that leaves
    nothing (a bottom-posted reply), the first paragraph that is neither quote nor marker."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for i in range(len(lines)):
        if _marker_at(lines, i):
            kept = "\n".join(lines[:i]).strip()
            if kept:
                return kept
            break
    else:
        return text.strip()
    return _first_own_paragraph(lines)


def _first_own_paragraph(lines: list[str]) -> str:
    paragraph: list[str] = []
    skip_block = False  # inside an Outlook header block after its marker
    for i, line in enumerate(lines):
        if not line.strip():
            if paragraph:
                break
            skip_block = False
            continue
        if _SIGNATURE.match(line) and paragraph:
            break
        if _marker_at(lines, i):
            if paragraph:
                break
            skip_block = _HDR_FROM.match(line) is not None or _ORIGINAL.match(line) is not None
            continue
        if skip_block:
            continue
        paragraph.append(line)
    return "\n".join(paragraph).strip()
