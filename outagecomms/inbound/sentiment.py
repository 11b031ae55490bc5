"""How a reply sounds (-1 angry .. 1 pleased), with a scorer that can be swapped.

The default is VADER (``vaderSentiment``): rule-based, its lexicon ships in the wheel, no model
download, and it scores short informal text well. It is English only, so other languages get
None rather than a confident wrong number; a deployment with a multilingual model plugs it in
with ``load_scorer("package.module:attr")``.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Protocol, runtime_checkable

from outagecomms.errors import ConfigError
from outagecomms.inbound.language import detect_language


@runtime_checkable
class Scorer(Protocol):
    """Scores a text; None when it cannot score that language."""

    name: str

    def score(self, text: str, language: str | None) -> float | None: ...


_analyzer: Any = None
_analyzer_lock = threading.Lock()


def _vader() -> Any:
    """The one analyzer of the process: building it reads the 7,500-word lexicon (~50 ms).
    ``polarity_scores`` only reads the lexicon, so worker threads can share it; the lock only
    guards the first construction."""
    global _analyzer
    if _analyzer is None:
        with _analyzer_lock:
            if _analyzer is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


class VaderScorer:
    """VADER's compound score, English only."""

    name = "vader"

    def score(self, text: str, language: str | None) -> float | None:
        if language is None:
            language = detect_language(text)
        if language != "en" or not text.strip():
            return None
        return float(_vader().polarity_scores(text)["compound"])


def label(score: float | None) -> str | None:
    """VADER's own thresholds: <= -0.05 negative, >= 0.05 positive, else neutral."""
    if score is None:
        return None
    if score <= -0.05:
        return "negative"
    if score >= 0.05:
        return "positive"
    return "neutral"


def load_scorer(spec: str = "vader") -> Scorer:
    """``"vader"`` or ``"package.module:attr"`` (a Scorer, or a zero-argument factory of one)."""
    spec = (spec or "vader").strip()
    if spec == "vader":
        return VaderScorer()
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"sentiment scorer {spec!r} is neither 'vader' nor 'package.module:attr'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"sentiment scorer {spec!r}: cannot import {module_name!r} ({exc})"
        ) from exc
    try:
        target: object = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"sentiment scorer {spec!r}: {module_name} has no {attr!r}") from None
    if not isinstance(target, Scorer) and callable(target):
        try:
            target = target()
        except Exception as exc:
            raise ConfigError(f"sentiment scorer {spec!r}: {attr}() failed ({exc})") from exc
    if not isinstance(target, Scorer):
        raise ConfigError(
            f"sentiment scorer {spec!r} is not a scorer (it needs a name and a score method)"
        )
    return target
