"""Which language a reply is in: scripts first (Japanese by kana), then stop words.

Replies are short ("merci", "wann geht es wieder?"), so a statistical model trained on long text
guesses wildly and a download-at-run-time model is not allowed; counting the commonest function
words of the languages our customers write in is deterministic, needs no data files and takes
microseconds. The customer's locale (``hint``) breaks ties and names the language of text too
short to tell.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_WORDS: Mapping[str, frozenset[str]] = {
    "en": _set(
        "the and is are you your we our this that for with have has not was will it of to in "
        "on please thanks thank what when why how again me my i be can do does there from any "
        "would could should month time down still update us they again been just all get "
        "great appreciate keep working fixed back",
    ),
    "de": _set(
        "der die das und ist nicht wir ich sie es ein eine mit für auf den dem zu bitte danke "
        "vielen noch schon wieder wann warum was wie haben hat sind kein keine auch aber oder "
        "uns unser unsere diese dieser dieses monat störung ausfall gibt mehr schnell heute "
        "geht dass ihr ihre euch im vom beim bei",
    ),
    "fr": _set(
        "le les et est nous vous je ne pas une des du pour avec sur que qui ce cette merci mois "
        "encore depuis quand pourquoi panne très bien votre notre nos vos sont avons avez été "
        "il elle ça au aux mais ou plus beaucoup c'est rétabli de la en suis",
    ),
    "es": _set(
        "el los las y es está están que un una por para con no nuestro nuestra su sus gracias "
        "muchas cuando cuándo qué otra vez mes servicio caída hemos tenemos estamos ya pero "
        "muy este esta del al lo nos se hay sigue todavía de la en hasta estoy estamos usted",
    ),
    "pt": _set(
        "o os as e é não que um uma por para com nosso nossa obrigado obrigada quando mais mês "
        "serviço estamos temos já muito está vocês você do da dos das no na ao em ainda de "
        "estou até dia obrigado",
    ),
    "it": _set(
        "il lo gli le e è non che un una per con nostro nostra grazie quando ancora mese "
        "servizio siamo abbiamo già molto questo questa del della dei delle al alla sono ma "
        "anche perché di da fino sono",
    ),
    "nl": _set(
        "de het een en is niet wij we ik u jullie ons onze van voor met op dat dit deze "
        "bedankt dank wanneer waarom weer maand storing nog al zijn hebben heeft graag maar "
        "ook wat hoe er",
    ),
}
# letters that (nearly) only one of these languages writes
_LETTERS: Mapping[str, str] = {"de": "ßäöü", "fr": "çèêëàùœî", "es": "ñ¿¡", "pt": "ãõ"}
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_KANA = re.compile(r"[\u3040-\u30ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
)
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def detect_language(text: str, hint: str | None = None) -> str | None:
    """ISO 639-1 code of ``text``'s language; ``hint`` (the customer's locale language, "fr"
    or "fr_FR") wins ties and short text; None when unsure and there is no hint."""
    hint_lang = hint.replace("-", "_").split("_")[0].lower() if hint else None
    sample = text[:4000]
    latin = len(_LATIN.findall(sample))
    kana = len(_KANA.findall(sample))
    if kana:
        han = len(_HAN.findall(sample))
        if (kana + han) * 3 >= latin:
            return "ja"
    for lang, script in _SCRIPTS:
        count = len(script.findall(sample))
        if count and count * 2 >= latin:
            return lang
    if not kana and latin == 0 and _HAN.search(sample):
        return "zh"
    tokens = _TOKEN.findall(sample.lower())
    scores = {lang: sum(t in words for t in tokens) for lang, words in _WORDS.items()}
    for lang, letters in _LETTERS.items():
        if any(ch in letters for ch in sample.lower()):
            scores[lang] += 1
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0] != hint_lang))
    (best, top), (_, second) = ranked[0], ranked[1]
    if hint_lang is not None and scores.get(hint_lang, -1) == top:
        return hint_lang  # a tie with the customer's own language
    if top >= 2 and top > second:
        if hint_lang in scores and top - second < 2 and top < 4:
            return hint_lang if scores[hint_lang] >= second else best
        return best
    if hint_lang is not None:
        # one clear word of another language ("merci" from a de_DE customer) beats the prior
        unambiguous = top >= 1 and second == 0 and scores.get(hint_lang, 0) == 0
        return best if unambiguous else hint_lang
    if top >= 1 and second == 0 and len(tokens) >= 3:
        return best
    return None
