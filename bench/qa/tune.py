"""Choosing the matcher's threshold, margin and minimum coverage without looking at the bench set.

    python bench/qa/tune.py [--variants [--only NAME]] [--show] [--max-oos-false 0.10] [--max-wrong 0.05]

* **In scope, leave-one-out:** every example question of the knowledge base is matched against an
  index built from everything else (titles, answers and the other examples), as if a person had
  typed it.
* **Out of scope:** the questions in ``OUT_OF_SCOPE`` below, written for tuning only (the labelled
  bench set, bench/qa/questions.jsonl, is a held-out measurement and is never read here).
* **Development set** (``bench/qa/dev.jsonl``, ``--dev``): questions written for tuning by someone
  who saw neither the bench set nor the example questions — whole questions as people type them,
  in scope (labelled) and out of scope (null). They are matched against the full index and pooled
  with the two sets above: in scope with the left-out examples, out of scope with ``OUT_OF_SCOPE``.

For every (threshold, margin, minimum coverage) on a grid it counts, in scope, right answers / wrong
answers / "not sure", and out of scope, false answers. It recommends the setting that answers the
most in-scope questions right while answering at most ``--max-oos-false`` of the out-of-scope
questions (10 %, the bench target) and at most ``--max-wrong`` of the examples wrongly (5 %).
``--variants`` compares design alternatives (no answer texts, no synonym table, nearest example,
other weights and n-gram sizes) at their own best setting; ``--show`` lists the misses.
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


def load_dev(path: Path | None) -> list[dict]:
    import json

    if path is None or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def collect(entries) -> tuple[list[tuple[str, str | None, float, float]], list[tuple]]:
    """(expected, top id, s1, s2, coverage) for every left-out example and in-scope dev question, and
    (None, top, s1, s2, coverage) for OUT_OF_SCOPE and the out-of-scope dev questions."""
    ids = [e.id for e in entries]
    docs = [(i, t, w, k) for i, e in enumerate(entries) for t, w, k in mm.documents(e)]
    cache: dict[str, dict[str, float]] = {}

    def top2(m, q):
        ranked, coverage = m.scores(q)
        return (ranked[0][0] if ranked else None, ranked[0][1] if ranked else 0.0,
                ranked[1][1] if len(ranked) > 1 else 0.0, coverage)

    loo = []
    for k, (i, text, _, kind) in enumerate(docs):
        if kind != "example":
            continue
        m = mm.Matcher.from_documents(ids, docs[:k] + docs[k + 1:], cache=cache)
        loo.append((ids[i], *top2(m, text)))
    full = mm.Matcher.from_documents(ids, docs, cache=cache)
    oos = [(None, *top2(full, q)) for q in OUT_OF_SCOPE]
    loo += [(d["id"], *top2(full, d["q"])) for d in _dev if d["id"] is not None]
    oos += [(None, *top2(full, d["q"])) for d in _dev if d["id"] is None]
    return loo, oos


def answered(row, t: float, m: float, c: float) -> bool:
    _, _, s1, s2, cov = row
    return s1 >= t and s1 - s2 >= m and cov >= c


def count(loo, oos, t, m, c) -> tuple[int, int, int]:
    right = wrong = 0
    for row in loo:
        if answered(row, t, m, c):
            if row[1] == row[0]:
                right += 1
            else:
                wrong += 1
    return right, wrong, sum(1 for row in oos if answered(row, t, m, c))


def grid(loo, oos, max_oos_false: float, max_wrong: float):
    best = None
    for c20 in range(0, 19):
        for m100 in range(0, 30, 2):
            for t100 in range(5, 80):
                t, m, c = t100 / 100, m100 / 100, c20 / 20
                right, wrong, false = count(loo, oos, t, m, c)
                if false > max_oos_false * len(oos) or wrong > max_wrong * len(loo):
                    continue
                key = (right, -wrong, -false, t, -m, c)
                if best is None or key > best[0]:
                    best = (key, t, m, c, right, wrong, false)
    return best


def report(name: str, loo, oos, args) -> tuple[float, float, float] | None:
    top1 = sum(1 for exp, top, *_ in loo if top == exp) / len(loo)
    best = grid(loo, oos, args.max_oos_false, args.max_wrong)
    if best is None:
        print(f"{name:<28} LOO top-1 {100 * top1:5.1f} %   no setting meets the limits")
        return None
    _, t, m, c, right, wrong, false = best
    print(f"{name:<28} LOO top-1 {100 * top1:5.1f} %   threshold {t:.2f} margin {m:.2f} coverage {c:.2f}: "
          + summary(loo, oos, t, m, c))
    return t, m, c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-oos-false", type=float, default=0.10)
    ap.add_argument("--max-wrong", type=float, default=0.05)
    ap.add_argument("--variants", action="store_true", help="compare design alternatives too")
    ap.add_argument("--only", help="with --variants: only those whose name contains this")
    ap.add_argument("--show", action="store_true", help="list leave-one-out misses at the current setting")
    ap.add_argument("--dev", type=Path, default=DEV, help="development set (default: bench/qa/dev.jsonl)")
    ap.add_argument("--no-dev", action="store_true", help="leave-one-out and OUT_OF_SCOPE only")
    args = ap.parse_args()
    _dev[:] = [] if args.no_dev else load_dev(args.dev)
    entries = load_entries()
    n_examples = sum(len(e.examples.get("th", ())) + len(e.examples.get("en", ())) for e in entries)
    print(f"{len(entries)} entries, {n_examples} example questions (left out one at a time), "
          f"{len(OUT_OF_SCOPE)} out-of-scope tuning questions, development set: "
          f"{sum(d['id'] is not None for d in _dev)} in scope + {sum(d['id'] is None for d in _dev)} out of scope\n")
    loo, oos = collect(entries)
    chosen = report("this matcher", loo, oos, args)
    print(f"{'':<28} in use: threshold {mm.THRESHOLD:.2f} margin {mm.MARGIN:.2f} coverage {mm.MIN_COVERAGE:.2f}: "
          + summary(loo, oos, mm.THRESHOLD, mm.MARGIN, mm.MIN_COVERAGE))
    if args.variants:
        variants: list[tuple[str, dict]] = [
            ("- answer texts", dict(ANSWER_WEIGHT=0.0)),
            ("- synonym table", dict(_synonyms=mm.Synonyms({}))),
            ("- concept features", dict(CONCEPT_WEIGHT=0.0)),
            ("- spelling fold", dict(spelling_fold=lambda t: mm.normalize(t, particles=False), _synonyms=None)),
            ("nearest example only", dict(NEAREST_WEIGHT=1.0)),
            ("nearest example 0.3", dict(NEAREST_WEIGHT=0.3)),
            ("title weight 2", dict(TITLE_WEIGHT=2.0)),
            ("answer weight 1", dict(ANSWER_WEIGHT=1.0)),
            ("IDF power 1", dict(IDF_POWER=1.0)),
            ("coverage power 0", dict(COVERAGE_POWER=0.0)),
            ("coverage power 1", dict(COVERAGE_POWER=1.0)),
            ("Thai n-grams 2-3", dict(THAI_NGRAMS=(2, 3))),
            ("Thai n-grams 2-5", dict(THAI_NGRAMS=(2, 3, 4, 5))),
            ("Thai n-grams 1-3", dict(THAI_NGRAMS=(1, 2, 3))),
        ]
        if args.only:
            variants = [v for v in variants if args.only in v[0]]
        for name, values in variants:
            with patched(**values):
                report(name, *collect(entries), args)
    if args.show:
        print("\nleave-one-out misses at the setting in use:")
        setting = (mm.THRESHOLD, mm.MARGIN, mm.MIN_COVERAGE)
        for row in loo:
            exp, top, s1, s2, cov = row
            if not (answered(row, *setting) and top == exp):
                print(f"  {exp} → {top if answered(row, *setting) else 'not sure'} "
                      f"({top} {s1:.2f}, next {s2:.2f}, coverage {cov:.2f})")
        print("out of scope answered at the setting in use:")
        for row, q in zip(oos, OUT_OF_SCOPE + [d["q"] for d in _dev if d["id"] is None], strict=True):
            if answered(row, *setting):
                print(f"  {q} → {row[1]} {row[2]:.2f} (next {row[3]:.2f}, coverage {row[4]:.2f})")
    if chosen:
        print(f"\nrecommended: THRESHOLD = {chosen[0]:.2f}, MARGIN = {chosen[1]:.2f}, MIN_COVERAGE = {chosen[2]:.2f}")


def summary(loo, oos, t, m, c) -> str:
    right, wrong, false = count(loo, oos, t, m, c)
    return (f"answered right {100 * right / len(loo):5.1f} %, wrong {100 * wrong / len(loo):4.1f} %, "
            f"out of scope answered {false}/{len(oos)}")


if __name__ == "__main__":
    main()
