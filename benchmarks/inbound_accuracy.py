"""Inbound classification accuracy and speed on the labelled corpus (tests/data/inbound).

usage: python benchmarks/inbound_accuracy.py [--repeat R]

Prints, for outagecomms.inbound against the labels:

- precision / recall per kind (reply, auto_reply, bounce), next to a subject-keyword-only
  baseline in the same run (what a mail rule "subject contains Undeliverable / Out of Office"
  does);
- bounce details: permanence, failed recipients and the bounced Message-ID found;
- language detection accuracy (on the stripped reply, no locale hint);
- sentiment: VADER's label against the human label on the replies it scores (English), next to
  a majority-label baseline; how many replies it declines (not English);
- speed: parse, classify, strip+language+sentiment per message, messages/s over the corpus
  (R passes), and the parse time of a typical 3 KB reply (target < 1 ms).

With ``--set-of-emails DIR`` (a clone of github.com/sisimai/set-of-emails: 600+ real bounces
collected from MTAs and providers, not written by us) it also reports, out of sample, how many
of DIR/maildir/bsd are classified as bounces (the ARF abuse reports left out; its rfc3834-*
files are auto-replies and must come out as such) and that the three in maildir/not are not.
With ``--sisimai-tests DIR`` too (rb-sisimai's test/public, which gives the DSN status sisimai
expects for each lhost-* file) it reports permanence and status agreement.

With ``--talon DIR`` (a clone of github.com/mailgun/talon) it checks ``strip_reply`` on talon's
reply fixtures: tests/fixtures/standard_replies/*.eml (each reply is "Hello") and
tests/fixtures/html_replies/*.html (each is "Hi. I am fine. Thanks, Alex").

Runs in process, no network, nothing written. Exit status 0 unless a step broke.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's outagecomms, not an installed one

from outagecomms.inbound.classify import classify  # noqa: E402
from outagecomms.inbound.language import detect_language  # noqa: E402
from outagecomms.inbound.parse import ParsedMessage, parse_message  # noqa: E402
from outagecomms.inbound.sentiment import VaderScorer, label  # noqa: E402
from outagecomms.inbound.textclean import html_to_text, strip_reply  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "inbound"
KINDS = ("reply", "auto_reply", "bounce")

_BASE_BOUNCE = re.compile(
    r"^(undeliverable|undelivered mail|mail delivery failed|delivery status notification"
    r"|returned mail|failure notice)",
    re.I,
)
_BASE_AUTO = re.compile(r"^(out of (the )?office|automatic reply|auto.?reply)", re.I)


def baseline(msg: ParsedMessage) -> str:
    """A "subject begins with" mail rule, English keywords only (the common hand-made filter;
    a "contains" rule is worse: our own subject "Sign-in failures" would match "failure")."""
    if _BASE_BOUNCE.search(msg.subject):
        return "bounce"
    if _BASE_AUTO.search(msg.subject):
        return "auto_reply"
    return "reply"


def precision_recall(pairs: list[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    out = {}
    for kind in KINDS:
        tp = sum(1 for want, got in pairs if want == kind and got == kind)
        predicted = sum(1 for _, got in pairs if got == kind)
        actual = sum(1 for want, _ in pairs if want == kind)
        out[kind] = (tp / predicted if predicted else float("nan"), tp / actual)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="passes over the corpus (speed)")
    parser.add_argument("--set-of-emails", type=Path, help="a sisimai/set-of-emails clone")
    parser.add_argument("--sisimai-tests", type=Path, help="rb-sisimai's test/public directory")
    parser.add_argument("--talon", type=Path, help="a mailgun/talon clone")
    args = parser.parse_args()

    labels = json.loads((CORPUS / "labels.json").read_text("utf-8"))
    raws = {name: (CORPUS / name).read_bytes() for name in sorted(labels)}
    counts = Counter(lab["kind"] for lab in labels.values())
    print(f"corpus: {len(raws)} messages ({', '.join(f'{counts[k]} {k}' for k in KINDS)})")

    ours: list[tuple[str, str]] = []
    base: list[tuple[str, str]] = []
    bounce_ok = Counter()
    lang_ok = lang_n = 0
    scorer = VaderScorer()
    senti: list[tuple[str, str | None]] = []
    for name, raw in raws.items():
        want = labels[name]
        msg = parse_message(raw)
        result = classify(msg)
        ours.append((want["kind"], str(result.kind)))
        base.append((want["kind"], baseline(msg)))
        if want["kind"] == "bounce" and result.bounce is not None:
            bounce_ok["n"] += 1
            bounce_ok["permanent"] += result.bounce.permanent is want["permanent"]
            bounce_ok["recipients"] += list(result.bounce.recipients) == want["recipients"]
            bounce_ok["message-id"] += (
                result.bounce.original_message_id == want["original_message_id"]
            )
        own = strip_reply(msg.text)
        language = detect_language(own)
        if want["language"]:
            lang_n += 1
            lang_ok += language == want["language"]
        if want["kind"] == "reply":
            senti.append((want["label"], label(scorer.score(own, language))))

    print("\nkind             ours P / R        subject-keyword baseline P / R")
    mine, theirs = precision_recall(ours), precision_recall(base)
    for kind in KINDS:
        (p, r), (bp, br) = mine[kind], theirs[kind]
        print(f"  {kind:<12} {p:6.1%} / {r:6.1%}     {bp:6.1%} / {br:6.1%}")
    accuracy = sum(w == g for w, g in ours) / len(ours)
    base_accuracy = sum(w == g for w, g in base) / len(base)
    print(f"  accuracy     {accuracy:6.1%}              {base_accuracy:6.1%}")
    n = bounce_ok["n"]
    print(
        f"\nbounces: permanence {bounce_ok['permanent']}/{n}, failed recipients "
        f"{bounce_ok['recipients']}/{n}, bounced Message-ID {bounce_ok['message-id']}/{n}"
    )
    print(f"language: {lang_ok}/{lang_n} ({lang_ok / lang_n:.1%}) without a locale hint")
    scored = [(w, g) for w, g in senti if g is not None]
    agree = sum(w == g for w, g in scored)
    majority, _ = Counter(w for w, _ in senti).most_common(1)[0]
    base_agree = sum(w == majority for w, _ in scored)
    print(
        f"sentiment (VADER, English only): scored {len(scored)}/{len(senti)} replies, agrees "
        f"with {agree}/{len(scored)} ({agree / len(scored):.1%}); majority baseline "
        f"({majority!r}) {base_agree}/{len(scored)} ({base_agree / len(scored):.1%})"
    )

    # speed
    parsed = [parse_message(raw) for raw in raws.values()]
    start = time.perf_counter()
    for _ in range(args.repeat):
        for raw in raws.values():
            classify(parse_message(raw))
    both = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.repeat):
        for msg in parsed:
            classify(msg)
    only = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.repeat):
        for msg in parsed:
            own = strip_reply(msg.text)
            scorer.score(own, detect_language(own))
    rest = time.perf_counter() - start
    total = args.repeat * len(raws)
    typical = raws["en_angry_cancel_gmail_quote.eml"]
    typical += b"> more of our quoted notice, as a typical reply carries\r\n" * 35
    timings = []
    for _ in range(500):
        t = time.perf_counter()
        parse_message(typical)
        timings.append(time.perf_counter() - t)
    p50 = statistics.median(timings) * 1000
    print(
        f"\nspeed over {total} messages: parse+classify {total / both:,.0f} msgs/s, "
        f"classify alone {total / only:,.0f} msgs/s, strip+language+sentiment "
        f"{total / rest:,.0f} msgs/s"
    )
    print(
        f"parse of a typical {len(typical):,}-byte reply: median {p50:.3f} ms (target < 1 ms: "
        f"{'PASS' if p50 < 1 else 'FAIL'})"
    )
    print(f"kind accuracy {accuracy:.1%} (target 100%: {'PASS' if accuracy == 1 else 'FAIL'})")
    if args.set_of_emails:
        external(args.set_of_emails / "maildir", args.sisimai_tests)
    if args.talon:
        talon(args.talon / "tests" / "fixtures")
    return 0


def talon(fixtures: Path) -> None:
    """strip_reply on talon's reply fixtures (a signature or "Sent from" line is not kept)."""
    plain = sorted((fixtures / "standard_replies").glob("*.eml"))
    ok = sum(strip_reply(parse_message(p.read_bytes()).text) == "Hello" for p in plain)
    want = "Hi.Iamfine.Thanks,Alex"
    html = sorted((fixtures / "html_replies").glob("*.html"))
    ok_html = sum(
        re.sub(r"\s+", "", strip_reply(html_to_text(p.read_text("utf-8")))) == want for p in html
    )
    print(
        f"\ntalon fixtures: strip_reply right on {ok}/{len(plain)} standard replies, "
        f"{ok_html}/{len(html)} HTML replies (html_to_text, then strip_reply)"
    )


def external(maildir: Path, tests: Path | None) -> None:
    """Out-of-sample figures on sisimai's collection of real bounces."""
    kinds: Counter[str] = Counter()
    autos: Counter[str] = Counter()
    base_bounces = 0
    results = {}
    worst = 0.0
    for path in sorted((maildir / "bsd").glob("*.eml")):
        if "arf-" in path.name:
            continue  # RFC 5965 abuse reports: neither bounce nor reply
        start = time.perf_counter()
        msg = parse_message(path.read_bytes())
        result = classify(msg)
        worst = max(worst, time.perf_counter() - start)
        results[path.name] = result
        if not path.name.startswith("rfc3834-"):
            base_bounces += baseline(msg) == "bounce"
        (autos if path.name.startswith("rfc3834-") else kinds)[str(result.kind)] += 1
    n = sum(kinds.values())
    print(
        f"\nset-of-emails: {kinds['bounce']}/{n} real bounces classified as bounces "
        f"({kinds['bounce'] / n:.1%}; others: {dict(kinds - Counter(bounce=kinds['bounce']))}); "
        f"RFC 3834 samples as auto_reply {autos['auto_reply']}/{sum(autos.values())}; "
        f"slowest parse+classify {worst * 1000:.1f} ms"
    )
    print(f"  subject-keyword baseline: {base_bounces}/{n} ({base_bounces / n:.1%}) as bounces")
    nots = [
        classify(parse_message(p.read_bytes())).kind for p in sorted((maildir / "not").iterdir())
    ]
    print(
        f"  maildir/not (not bounces): {sum(k != 'bounce' for k in nots)}/{len(nots)} not bounces"
    )
    if tests is None:
        return
    agree = compared = status_known = status_same = 0
    for spec in sorted(tests.glob("lhost-*.rb")):
        engine = spec.stem.removeprefix("lhost-")
        text = spec.read_text("utf-8", "replace")
        for index, body in re.findall(r"'(\d\d)'\s*=>\s*\[\[(.*?)\]", text):
            want = body.split(",")[0].strip(" '")
            result = results.get(f"lhost-{engine}-{index}.eml")
            if want[:1] not in ("4", "5") or result is None or result.bounce is None:
                continue
            compared += 1
            agree += result.bounce.permanent is (want[0] == "5")
            if result.bounce.status:
                status_known += 1
                status_same += result.bounce.status == want
    print(
        f"  against sisimai's expected DSN status ({compared} lhost-* bounces): permanence "
        f"agrees {agree}/{compared} ({agree / compared:.1%}); a status found in "
        f"{status_known}, equal to sisimai's in {status_same}"
    )


if __name__ == "__main__":
    sys.exit(main())
