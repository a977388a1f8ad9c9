"""Choosing the matcher's settings without looking at the bench set.

    python bench/qa/tune.py [--variants [--only NAME]] [--show] [--folds 5] [--repeats 3] [--max-oos-false 0.10]
                            [--max-wrong 0.05] [--veto] [--halves N] [--seed S] [--dev PATH] [--no-dev | --dev-only]

* **In scope, cross-validated:** the knowledge base's example questions are split into ``--folds``
  parts; each part is matched by a matcher trained without it (titles, answers and the other
  examples), as if people had typed those questions.
* **Out of scope:** the questions in ``OUT_OF_SCOPE`` below, written for tuning only (the labelled
  bench set, bench/qa/questions.jsonl, is a held-out measurement and is never read here).
* **Development set** (``bench/qa/dev.jsonl``, ``--dev``): questions written for tuning by someone
  who saw neither the bench set nor the example questions — whole questions as people type them,
  in scope (labelled) and out of scope (null) — matched by the matcher trained on everything and
  pooled with the two sets above. Development questions that nearly repeat an example are left out.
  ``--dev-only`` leaves the cross-validated examples out of the in-scope rows (the development set is written
  the way people ask; many examples are long and situational). ``bench/qa/dev2.jsonl`` is a second such set
  (2026-12-07: 9 questions per entry and 69 out of scope, by a helper who saw only the entries' titles and
  answers), kept out of the tuning to validate content changes: ``--dev bench/qa/dev2.jsonl --dev-only``.

The matcher's confidence is the lead of the classifier's best entry over the second (``matcher.lead``);
``--probability`` measures the rule it replaced, the best entry's probability alone (bench/README.md, qa,
2026-12-07 sixth session). For every (minimum lead, minimum coverage, off-topic ratio) on a grid it counts, in scope,
right answers / wrong answers / "not sure", and out of scope, false answers. It recommends the
setting that answers the most in-scope questions right while answering at most ``--max-oos-false``
of the out-of-scope questions (10 %, the bench target) and at most ``--max-wrong`` of the in-scope
ones wrongly (5 %). ``--variants`` compares design alternatives at their own best setting;
``--show`` lists the misses.

``--veto`` adds a fourth dimension, how the off-topic veto may give way to a confident classifier
(``VETO_RULES``), and shows each rule at its own best setting. Two checks of whether a gain is more than
noise: ``--seed S`` deals the cross-validation folds another way (the run-to-run spread of a measure is how
much it moves between seeds); ``--halves N`` chooses on a random half of the distinct questions and measures
on the other half, N times, for the shipped veto rule and the searched ones — a richer search that only fits
the few out-of-scope questions near the 10 % limit shows there as more out-of-scope answers on the other half.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import integrity.matcher as mm  # noqa: E402
from integrity.kb import load_entries  # noqa: E402

# Written for tuning only: questions people may send to an office's LINE account that the
# integrity Q&A does not answer. Several share words with the knowledge base (gift, survey, fee,
# office, report) on purpose; none is about gifts to officials, bribes, complaints about
# officials or city problems, the ITA surveys or conflicts of interest.
OUT_OF_SCOPE = [
    # chit-chat
    "สวัสดีครับ", "ขอบคุณมากค่ะ", "555555", "ทำอะไรอยู่จ๊ะ", "บอทชื่ออะไร", "ฝันดีนะ", "กินข้าวยัง",
    "hello", "thank you so much", "good morning", "are you a robot?", "ok",
    # other services of a district office
    "ทำบัตรประชาชนใหม่ใช้เอกสารอะไรบ้าง", "แจ้งเกิดลูกต้องไปที่ไหน", "จดทะเบียนสมรสวันเสาร์ได้ไหม",
    "ย้ายทะเบียนบ้านออนไลน์ได้ไหม", "จ่ายภาษีป้ายได้ถึงวันไหน", "สำนักงานเขตเปิดกี่โมง",
    "ที่จอดรถของสำนักงานเขตมีไหม", "เบี้ยยังชีพผู้สูงอายุได้เดือนละกี่บาท", "ฉีดวัคซีนไข้หวัดใหญ่ที่ไหน",
    "สมัครงานลูกจ้างกรุงเทพมหานครยังไง", "ขอใบรับรองสถานะโสดต้องทำยังไง", "โรงเรียนในเขตรับสมัครนักเรียนเมื่อไร",
    "How do I renew my ID card?", "What documents do I need to register a marriage?",
    "When is the district office open on Saturday?", "Where do I pay the land and building tax?",
    "How do I get a birth certificate for my baby?",
    # shares a word with the knowledge base, about something else
    "ของขวัญวันเกิดแฟนควรซื้ออะไรดี", "ห่อของขวัญสวยๆ ร้านไหนดี", "ร้านกระเช้าผลไม้แถวนี้มีไหม",
    "ส่งของขวัญทางไปรษณีย์ไปต่างประเทศได้ไหม", "แบบสอบถามความพึงพอใจร้านอาหารทำยังไง",
    "ช่วยทำแบบสอบถามวิทยานิพนธ์ให้หน่อย", "ค่าธรรมเนียมโอนเงินธนาคารเท่าไร", "ทำใบขับขี่ค่าธรรมเนียมกี่บาท",
    "รายงานการประชุมส่งเมื่อไร", "ลูกได้คะแนนสอบน้อยทำยังไงดี", "ญาติป่วยเข้าโรงพยาบาลเยี่ยมได้กี่โมง",
    "อยากบริจาคเลือดที่ไหน", "What is a good birthday present for my mother?",
    "Can you recommend a gift shop?", "How much is the fee to transfer money abroad?",
    "Fill in my customer satisfaction survey",
    # anything else
    "พรุ่งนี้ฝนตกไหม", "หวยออกอะไร", "ผลบอลเมื่อคืน", "สูตรต้มยำกุ้ง", "รถเมล์ไปจตุจักรสายไหน",
    "ราคาทองวันนี้", "ไฟดับบ้านฉันแจ้งการไฟฟ้าเบอร์อะไร", "จองคิวทำพาสปอร์ต", "แปลภาษาอังกฤษให้หน่อย",
    "What's the weather tomorrow?", "Who won the football last night?", "How do I cook green curry?",
    "Translate this into Thai please", "What is the capital of Japan?",
]


@contextmanager
def patched(**values):
    old = {k: getattr(mm, k) for k in values}
    for k, v in values.items():
        setattr(mm, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(mm, k, v)


DEV = HERE / "dev.jsonl"
_dev: list[dict] = []


def load_dev(path: Path | None, entries=()) -> list[dict]:
    """The development set, without the questions that nearly repeat an example question (a
    ``difflib`` ratio of 0.8 or more after folding): matched against an index that holds their twin,
    they would only make the tuning bolder than people's own wording warrants."""
    import json
    from difflib import SequenceMatcher

    if path is None or not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    examples = [mm.exact_key(q) for e in entries for lang in ("th", "en") for q in e.examples.get(lang, ())]

    def near_copy(q: str) -> bool:
        key = mm.exact_key(q)
        for ex in examples:
            m = SequenceMatcher(None, key, ex, autojunk=False)
            if m.real_quick_ratio() >= 0.8 and m.quick_ratio() >= 0.8 and m.ratio() >= 0.8:
                return True
        return False

    return [r for r in rows if r["id"] is None or not near_copy(r["q"])]


#: What the confidence column holds: "lead" (the matcher's rule) or "probability" (``--probability``).
CONFIDENCE = "lead"


def signals(m: mm.Matcher, q: str) -> tuple:
    """(top id, confidence, coverage, off-topic score, profile score); small talk never gets an answer."""
    if mm.smalltalk.kind(q) is not None:
        return None, 0.0, 0.0, 1.0, 0.0
    probs, coverage, profile, off = m.signals(q)
    return probs[0][0], mm.lead(probs) if CONFIDENCE == "lead" else probs[0][1], coverage, off, profile


def collect(entries, folds: int = 5, repeats: int = 1, seed: int = 0,
            keys: tuple[list, list] | None = None) -> tuple[list[tuple], list[tuple]]:
    """(expected, top, probability, coverage, off-topic, profile) for the cross-validated examples and the
    in-scope development questions, and the same with expected None for the out-of-scope questions.

    With ``repeats`` > 1 the cross-validation runs that many times, each with the examples dealt into folds
    in another (seeded) order, and the development and out-of-scope rows count that many times too: one
    added or removed example no longer reshuffles every fold and moves the recommended setting by chance.
    ``seed`` > 0 deals other folds (rounds seed × repeats onwards, all shuffled): the run-to-run spread of a
    measure is how much it moves between seeds. ``keys``, two lists, receive which question each row is
    (every round's row of one example has the same key), for ``halves``."""
    import random

    ids = [e.id for e in entries]
    docs = [(i, t, w, k) for i, e in enumerate(entries) for t, w, k in mm.documents(e)]
    offtopic = mm.offtopic_examples()
    cache: dict[str, dict[str, float]] = {}
    examples = [k for k, d in enumerate(docs) if d[3] == "example"]
    inside = []
    for r in range(seed * repeats, (seed + 1) * repeats):
        order = list(examples)
        if r:  # the first round keeps the files' order (the single-round result of earlier sessions)
            random.Random(r).shuffle(order)
        for f in range(folds):
            held = set(order[f::folds])
            m = mm.Matcher.from_documents(ids, [d for k, d in enumerate(docs) if k not in held], cache=cache,
                                          offtopic=offtopic)
            inside += [(ids[docs[k][0]], *signals(m, docs[k][1])) for k in sorted(held)]
            if keys is not None:
                keys[0].extend(("example", k) for k in sorted(held))
    full = mm.Matcher.from_documents(ids, docs, cache=cache, offtopic=offtopic)
    outside = [(None, *signals(full, q)) for q in OUT_OF_SCOPE] * repeats
    inside += [(d["id"], *signals(full, d["q"])) for d in _dev if d["id"] is not None] * repeats
    outside += [(None, *signals(full, d["q"])) for d in _dev if d["id"] is None] * repeats
    if keys is not None:
        keys[0].extend([("dev", j) for j, d in enumerate(_dev) if d["id"] is not None] * repeats)
        keys[1].extend([("oos", j) for j in range(len(OUT_OF_SCOPE))] * repeats
                       + [("dev", j) for j, d in enumerate(_dev) if d["id"] is None] * repeats)
    return inside, outside


#: How the off-topic veto may give way to a confident classifier — a dimension of the search. A tester found
#: "Can I accept a gift from my mother?" refused (gift.relatives at p 0.90) because the off-topic example
#: about a birthday present for a mother scored 1.63 × the entry's profile score. ("always", 0): the veto as
#: shipped, off-topic < k × profile or "not sure"; ("ceiling", v): no veto at probability v or above;
#: ("scaled", s): the ratio grows with the probability, off-topic < k × (1 + s·p) × profile; ("blend", w): the
#: off-topic score is compared with a blend of profile score and probability, off-topic < k × ((1 − w) × profile
#: + w × p). On ties the shipped rule wins (it is first). Measured (bench/README.md, qa): no rule is adopted —
#: the ceilings gain at most 10 of 5,178 rows, and the blend's in-sample gain is mostly more
#: out-of-scope answers when chosen on one half of the questions and measured on the other.
VETO_RULES: tuple[tuple[str, float], ...] = (
    ("always", 0.0),
    *(("ceiling", v) for v in (0.98, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5)),
    *(("scaled", s) for s in (0.25, 0.5, 1.0, 2.0, 4.0)),
    *(("blend", w) for w in (0.02, 0.05, 0.1, 0.2, 0.4)),
)
SHIPPED_RULE = VETO_RULES[0]


def vetoed(off: float, profile: float, prob: float, k: float, rule: tuple[str, float] = SHIPPED_RULE) -> bool:
    """Whether the off-topic score vetoes an answer under ``rule`` (see ``VETO_RULES``)."""
    mode, x = rule
    if mode == "ceiling" and prob >= x:
        return False
    if mode == "scaled":
        return off >= k * (1.0 + x * prob) * profile
    if mode == "blend":
        return off >= k * ((1.0 - x) * profile + x * prob)
    return off >= k * profile


def answered(row, p: float, c: float, k: float, rule: tuple[str, float] = SHIPPED_RULE) -> bool:
    _, top, prob, cov, off, profile = row
    return top is not None and prob >= p and cov >= c and cov > 0 and not vetoed(off, profile, prob, k, rule)


def count(inside, outside, p, c, k, rule=SHIPPED_RULE) -> tuple[int, int, int]:
    right = wrong = 0
    for row in inside:
        if answered(row, p, c, k, rule):
            if row[1] == row[0]:
                right += 1
            else:
                wrong += 1
    return right, wrong, sum(1 for row in outside if answered(row, p, c, k, rule))


OFFTOPIC_RATIOS = (0.8, 1.0, 1.2, 1.5, 2.0, 3.0, float("inf"))


def grid(inside, outside, max_oos_false: float, max_wrong: float, rules=(SHIPPED_RULE,)):
    """The best (probability, coverage, off-topic ratio, veto rule): for each of the last three, the rows that
    pass them are sorted by probability once and every probability threshold is read off running counts."""
    best = None
    thresholds = [p100 / 100 for p100 in range(5, 95)]
    for r, rule in enumerate(rules):
        for k in OFFTOPIC_RATIOS:
            for c20 in range(0, 19):
                c = c20 / 20
                passing = [(row[2], 0 if row[0] is None else 1 if row[1] == row[0] else 2)
                           for rows in (inside, outside) for row in rows if answered(row, 0.0, c, k, rule)]
                passing.sort(reverse=True)
                counts, j = [0, 0, 0], 0
                for p in reversed(thresholds):  # highest first: rows join as the threshold falls
                    while j < len(passing) and passing[j][0] >= p:
                        counts[passing[j][1]] += 1
                        j += 1
                    false, right, wrong = counts
                    if false > max_oos_false * len(outside) or wrong > max_wrong * len(inside):
                        continue
                    key = (right, -wrong, -false, -r, p, c, -k)
                    if best is None or key > best[0]:
                        best = (key, p, c, k, rule)
    return best


def rule_name(rule: tuple[str, float]) -> str:
    mode, x = rule
    return {"always": "veto always", "ceiling": f"veto below p {x:.2f}", "scaled": f"ratio × (1 + {x:g}·p)",
            "blend": f"blend w {x:g}"}[mode]


def halves(inside, outside, keys, args, searches: dict[str, tuple]) -> None:
    """Whether a search generalises: ``args.halves`` times, the distinct questions (examples with all their
    rounds, development and out-of-scope questions) are dealt into two halves; each search (name → veto rules)
    chooses its setting on one half, and is measured on the other. A richer search that only fits the few
    out-of-scope questions near the limit shows here as more out-of-scope answers on the other half."""
    import random
    import statistics

    rng = random.Random(1000 + args.seed)
    distinct = sorted(set(keys[0]) | set(keys[1]))
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in searches}
    for _ in range(args.halves):
        half = set(rng.sample(distinct, len(distinct) // 2))

        def part(rows, ks, chosen_on, half=half):
            return [r for r, q in zip(rows, ks, strict=True) if (q in half) == chosen_on]

        a_in, a_out = part(inside, keys[0], True), part(outside, keys[1], True)
        b_in, b_out = part(inside, keys[0], False), part(outside, keys[1], False)
        for name, rules in searches.items():
            best = grid(a_in, a_out, args.max_oos_false, args.max_wrong, rules)
            if best is None:
                continue
            right, wrong, false = count(b_in, b_out, *best[1:])
            results[name].append((100 * right / len(b_in), 100 * wrong / len(b_in), 100 * false / len(b_out)))
    first = next(iter(searches))
    print(f"\nchosen on one half, measured on the other ({args.halves} times; means, and the sd across halves of each difference):")
    for name, rows in results.items():
        cols = list(zip(*rows, strict=True))
        line = (f"  {name:<22} right {statistics.mean(cols[0]):5.2f} %, wrong {statistics.mean(cols[1]):4.2f} %, "
                f"out of scope answered {statistics.mean(cols[2]):5.2f} % (over {100 * args.max_oos_false:.0f} % "
                f"in {sum(x > 100 * args.max_oos_false for x in cols[2])}/{len(rows)})")
        if name != first and len(rows) == len(results[first]) > 1:
            d = [x[0] - y[0] for x, y in zip(rows, results[first], strict=True)]
            f = [x[2] - y[2] for x, y in zip(rows, results[first], strict=True)]
            line += (f"; vs {first}: right {statistics.mean(d):+.2f} (sd {statistics.stdev(d):.2f}), "
                     f"out of scope {statistics.mean(f):+.2f} (sd {statistics.stdev(f):.2f})")
        print(line)


def summary(inside, outside, p, c, k, rule=SHIPPED_RULE) -> str:
    right, wrong, false = count(inside, outside, p, c, k, rule)
    return (f"answered right {100 * right / len(inside):5.1f} % ({right}), wrong {100 * wrong / len(inside):4.1f} %, "
            f"out of scope answered {false}/{len(outside)}")


def report(name: str, inside, outside, args, rules=(SHIPPED_RULE,)) -> tuple[float, float, float, tuple] | None:
    top1 = sum(1 for exp, top, *_ in inside if top == exp) / len(inside)
    best = grid(inside, outside, args.max_oos_false, args.max_wrong, rules)
    if best is None:
        print(f"{name:<24} best right {100 * top1:5.1f} %   no setting meets the limits")
        return None
    _, p, c, k, rule = best
    searched = f" ({rule_name(rule)})" if len(rules) > 1 else ""
    print(f"{name:<24} best right {100 * top1:5.1f} %   {CONFIDENCE} {p:.2f} coverage {c:.2f} off-topic {k:.1f}"
          f"{searched}: " + summary(inside, outside, p, c, k, rule))
    return p, c, k, rule


def dev_only(args, inside, outside, keys: tuple[list, list] | None = None) -> tuple[list, list]:
    """With ``--dev-only``, the in-scope rows (and their keys) of the development set alone: they are the last
    ones ``collect`` returns."""
    if args.dev_only:
        n_dev = sum(d["id"] is not None for d in _dev) * args.repeats
        inside = inside[len(inside) - n_dev:]
        if keys is not None:
            keys[0][:] = keys[0][len(keys[0]) - n_dev:]
    return inside, outside


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-oos-false", type=float, default=0.10)
    ap.add_argument("--max-wrong", type=float, default=0.05)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3, help="cross-validation rounds, each with other folds")
    ap.add_argument("--seed", type=int, default=0, help="deal other folds (0: the usual ones), for the run-to-run spread")
    ap.add_argument("--veto", action="store_true",
                    help="search the off-topic veto rules (VETO_RULES) too, and show each at its own best setting")
    ap.add_argument("--halves", type=int, default=0, metavar="N",
                    help="choose on half the questions and measure on the other half, N times")
    ap.add_argument("--variants", action="store_true", help="compare design alternatives too")
    ap.add_argument("--only", help="with --variants: only those whose name contains this")
    ap.add_argument("--show", action="store_true", help="list the misses at the setting in use")
    ap.add_argument("--dev", type=Path, default=DEV, help="development set (default: bench/qa/dev.jsonl)")
    ap.add_argument("--no-dev", action="store_true", help="cross-validated examples and OUT_OF_SCOPE only")
    ap.add_argument("--dev-only", action="store_true",
                    help="in scope: the development set only, without the cross-validated examples")
    ap.add_argument("--probability", action="store_true",
                    help="confidence = the best entry's probability (the rule before the lead), for comparison")
    args = ap.parse_args()
    global CONFIDENCE
    if args.probability:
        CONFIDENCE = "probability"
    entries = load_entries()
    _dev[:] = [] if args.no_dev else load_dev(args.dev, entries)
    n_examples = sum(len(e.examples.get("th", ())) + len(e.examples.get("en", ())) for e in entries)
    print(f"{len(entries)} entries, {n_examples} example questions ({args.folds}-fold × {args.repeats}), "
          f"{len(OUT_OF_SCOPE)} out-of-scope tuning questions, development set: "
          f"{sum(d['id'] is not None for d in _dev)} in scope + {sum(d['id'] is None for d in _dev)} out of scope, "
          f"{len(mm.offtopic_examples())} off-topic examples\n")
    keys: tuple[list, list] = ([], [])
    inside, outside = dev_only(args, *collect(entries, args.folds, args.repeats, args.seed, keys), keys)
    rules = VETO_RULES if args.veto else (SHIPPED_RULE,)
    chosen = report("this matcher", inside, outside, args, rules)
    in_use = (mm.MIN_LEAD, mm.MIN_COVERAGE, mm.OFFTOPIC_RATIO)
    if CONFIDENCE == "lead":
        print(f"{'':<24} in use: lead {in_use[0]:.2f} coverage {in_use[1]:.2f} off-topic {in_use[2]:.1f}: "
              + summary(inside, outside, *in_use))
    if args.veto:
        print("\neach off-topic veto rule at its own best setting:")
        for rule in VETO_RULES:
            report(rule_name(rule), inside, outside, args, rules=(rule,))
    if args.halves:
        halves(inside, outside, keys, args, {"shipped veto": (SHIPPED_RULE,), "veto rules searched": VETO_RULES,
                                             "blend w 0.2 only": (("blend", 0.2),)})
    if args.variants:
        variants: list[tuple[str, dict]] = [
            ("- off-topic examples", dict(offtopic_examples=lambda: [])),
            ("- answer texts", dict(ANSWER_WEIGHT=0.0)),
            ("- synonym table", dict(_synonyms=mm.Synonyms({}))),
            ("- concept features", dict(CONCEPT_WEIGHT=0.0)),
            ("- spelling fold", dict(spelling_fold=lambda t: mm.normalize(t, particles=False), _synonyms=None)),
            ("regularisation C=10", dict(REGULARISATION=10.0)),
            ("regularisation C=200", dict(REGULARISATION=200.0)),
            ("IDF power 1", dict(IDF_POWER=1.0)),
            ("Thai n-grams 2-3", dict(THAI_NGRAMS=(2, 3))),
            # Best here (+2.8 points) at probability 0.38, coverage 0.5, off-topic 1.0, but on the held-out
            # bench top-1 fell 87.5 -> 83.3 % (out of scope 90.2 -> 96.1 %): not adopted (bench/README.md).
            ("IDF power 1, Thai 2-3", dict(IDF_POWER=1.0, THAI_NGRAMS=(2, 3))),
            ("Thai n-grams 2-5", dict(THAI_NGRAMS=(2, 3, 4, 5))),
        ]
        if args.only:
            variants = [v for v in variants if args.only in v[0]]
        for name, values in variants:
            with patched(**values):
                report(name, *dev_only(args, *collect(entries, args.folds, args.repeats, args.seed)), args, rules)
    if args.show:
        questions = [None] * len(inside)  # examples are shown by entry only; development questions in full
        dev_in = [d["q"] for d in _dev if d["id"] is not None]
        questions[len(inside) - len(dev_in) * args.repeats:] = dev_in * args.repeats
        shown: set[str] = set()  # development and out-of-scope rows repeat identically in every round
        print("\nin scope, not answered right at the setting in use:")
        for row, q in zip(inside, questions, strict=True):
            exp, top, prob, cov, off, profile = row
            if q in shown:
                continue
            if q:
                shown.add(q)
            if not (answered(row, *in_use) and top == exp):
                print(f"  {exp} → {top if answered(row, *in_use) else 'not sure'} ({CONFIDENCE} {prob:.2f}, coverage {cov:.2f}, "
                      f"off-topic {off:.2f} vs {profile:.2f})" + (f"  {q}" if q else ""))
        print("out of scope answered at the setting in use:")
        for row, q in zip(outside, OUT_OF_SCOPE * args.repeats + [d["q"] for d in _dev if d["id"] is None] * args.repeats,
                          strict=True):
            if answered(row, *in_use) and q not in shown:
                shown.add(q)
                print(f"  {q} → {row[1]} ({CONFIDENCE} {row[2]:.2f}, coverage {row[3]:.2f}, off-topic {row[4]:.2f} vs {row[5]:.2f})")
    if chosen:
        print(f"\nrecommended: {'MIN_LEAD' if CONFIDENCE == 'lead' else 'minimum probability (the old rule)'} = "
              f"{chosen[0]:.2f}, MIN_COVERAGE = {chosen[1]:.2f}, "
              f"OFFTOPIC_RATIO = {chosen[2]:.1f}" + (f", off-topic veto: {rule_name(chosen[3])}" if args.veto else ""))


if __name__ == "__main__":
    main()
