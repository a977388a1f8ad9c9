"""Q&A bench: how often the matcher answers the labelled evaluation questions right, and how fast.

    python bench/qa/run.py [--questions bench/qa/questions.jsonl] [--rounds 20] [--show-misses]

Loads the knowledge base (``integrity.kb.load_entries``), builds the ``Matcher`` and matches every
question of the labelled set (``{"q": ..., "id": "gift.limit" | null}``, null = out of scope):

* top-1: in-scope questions answered with the right entry (a confident answer, not a "did you mean");
* top-3: in-scope questions whose entry is among the three candidates offered;
* out-of-scope questions answered "not sure" (id None), and the false answers to them;
* latency per question, p50/p99/max, pinned to one core when the OS allows, after a warm-up round,
  over ``--rounds`` rounds of the whole set.

Prints a table and writes bench/qa/results/latest.json. The set is never used to tune the matcher:
its threshold comes from leave-one-out over the knowledge base's own examples (bench/qa/tune.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from integrity.kb import load_entries  # noqa: E402
from integrity.matcher import Matcher  # noqa: E402


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def load_questions(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if "q" not in row or "id" not in row:
                raise SystemExit(f"{path}:{n}: each line needs 'q' and 'id'")
            rows.append(row)
    return rows


def evaluate(matcher: Matcher, questions: list[dict], known: set[str]) -> dict:
    in_scope = [q for q in questions if q["id"] is not None]
    oos = [q for q in questions if q["id"] is None]
    unknown = sorted({q["id"] for q in in_scope} - known)
    if unknown:
        raise SystemExit(f"questions label entries the knowledge base lacks: {', '.join(unknown)}")
    misses, top1, top3, wrong, unsure, rank1 = [], 0, 0, 0, 0, 0
    per_entry: dict[str, list[int]] = {}
    for q in in_scope:
        r = matcher.match(q["q"])
        hit = per_entry.setdefault(q["id"], [0, 0])
        hit[1] += 1
        hit[0] += r.id == q["id"]
        top1 += r.id == q["id"]
        top3 += q["id"] in [c for c, _ in r.candidates]
        rank1 += r.candidates[0][0] == q["id"]
        wrong += r.id is not None and r.id != q["id"]
        unsure += r.id is None
        if r.id != q["id"]:
            misses.append({"q": q["q"], "expected": q["id"], "got": r.id, "score": r.score,
                           "candidates": r.candidates})
    false_answers = []
    for q in oos:
        r = matcher.match(q["q"])
        if r.id is not None:
            false_answers.append({"q": q["q"], "expected": None, "got": r.id, "score": r.score,
                                  "candidates": r.candidates})
    n_in, n_oos = len(in_scope), len(oos)
    return {
        "questions": len(questions), "in_scope": n_in, "out_of_scope": n_oos,
        "top1": top1, "top1_rate": top1 / n_in if n_in else None,
        "rank1": rank1, "rank1_rate": rank1 / n_in if n_in else None,
        "top3": top3, "top3_rate": top3 / n_in if n_in else None,
        "in_scope_wrong_answers": wrong, "in_scope_not_sure": unsure,
        "oos_not_sure": n_oos - len(false_answers),
        "oos_not_sure_rate": (n_oos - len(false_answers)) / n_oos if n_oos else None,
        "oos_false_answers": len(false_answers),
        "per_entry_top1": {k: f"{v[0]}/{v[1]}" for k, v in sorted(per_entry.items())},
        "misses": misses, "false_answers": false_answers,
    }


def time_questions(matcher: Matcher, questions: list[str], rounds: int) -> dict:
    for q in questions:  # warm-up
        matcher.match(q)
    samples = []
    clock = time.perf_counter
    for _ in range(rounds):
        for q in questions:
            t0 = clock()
            matcher.match(q)
            samples.append((clock() - t0) * 1000)
    samples.sort()
    return {"calls": len(samples), "p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99),
            "max_ms": samples[-1], "mean_ms": statistics.fmean(samples)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=Path, default=HERE / "questions.jsonl")
    ap.add_argument("--rounds", type=int, default=20, help="timed rounds over the whole set")
    ap.add_argument("--show-misses", action="store_true", help="list the in-scope misses and false answers")
    ap.add_argument("--output", type=Path, default=HERE / "results" / "latest.json")
    args = ap.parse_args()

    pinned = None
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {0})
            pinned = 0
        except OSError:
            pass

    entries = load_entries()
    t0 = time.perf_counter()
    matcher = Matcher(entries)
    build_ms = (time.perf_counter() - t0) * 1000
    questions = load_questions(args.questions)
    ev = evaluate(matcher, questions, {e.id for e in entries})
    lat = time_questions(matcher, [q["q"] for q in questions], args.rounds)

    def pct(x):
        return "–" if x is None else f"{100 * x:.1f} %"

    rows = [
        ("entries / example documents", f"{len(entries)} / {matcher.documents}", ""),
        ("questions (in scope / out of scope)", f"{ev['in_scope']} / {ev['out_of_scope']}", ""),
        ("top-1 (right answer given)", f"{ev['top1']}/{ev['in_scope']} = {pct(ev['top1_rate'])}", "≥ 90 %"),
        ("best candidate right (before the threshold)",
         f"{ev['rank1']}/{ev['in_scope']} = {pct(ev['rank1_rate'])}", ""),
        ("top-3 (right entry among candidates)", f"{ev['top3']}/{ev['in_scope']} = {pct(ev['top3_rate'])}", ""),
        ("in scope: wrong answer / not sure", f"{ev['in_scope_wrong_answers']} / {ev['in_scope_not_sure']}", ""),
        ("out of scope answered not sure",
         f"{ev['oos_not_sure']}/{ev['out_of_scope']} = {pct(ev['oos_not_sure_rate'])}", "≥ 90 %"),
        ("out of scope: false answers", str(ev["oos_false_answers"]), ""),
        ("latency p50 / p99 / max per question",
         f"{lat['p50_ms']:.3f} / {lat['p99_ms']:.3f} / {lat['max_ms']:.3f} ms", "p99 ≤ 5 ms"),
        ("index build", f"{build_ms:.1f} ms", ""),
    ]
    w0, w1 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"qa bench — lead ≥ {matcher.min_lead}, coverage ≥ {matcher.min_coverage}, "
          f"off-topic ratio {matcher.offtopic_ratio}, "
          f"{'pinned to CPU 0' if pinned is not None else 'not pinned'}, {lat['calls']} timed calls")
    print(f"{'measure':<{w0}} | {'result':<{w1}} | target")
    print(f"{'-' * w0}-+-{'-' * w1}-+-{'-' * 10}")
    for a, b, c in rows:
        print(f"{a:<{w0}} | {b:<{w1}} | {c}")

    if args.show_misses:
        print(f"\nin-scope misses ({len(ev['misses'])}):")
        for m in ev["misses"]:
            cands = ", ".join(f"{i} {s:.2f}" for i, s in m["candidates"])
            print(f"  [{m['expected']} → {m['got'] or 'not sure'} {m['score']:.2f}] {m['q']}   ({cands})")
        print(f"\nout-of-scope answered ({len(ev['false_answers'])}):")
        for m in ev["false_answers"]:
            print(f"  [→ {m['got']} {m['score']:.2f}] {m['q']}")
        print("\ntop-1 per entry: " + ", ".join(f"{k} {v}" for k, v in ev["per_entry_top1"].items()))

    args.output.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "pinned_cpu": pinned,
                    "platform": platform.platform()},
        "matcher": {"min_lead": matcher.min_lead, "min_coverage": matcher.min_coverage,
                    "offtopic_ratio": matcher.offtopic_ratio, "offtopic_examples": matcher.offtopic_examples, "entries": len(entries),
                    "documents": matcher.documents, "build_ms": round(build_ms, 2)},
        "accuracy": ev,
        "latency": {k: round(v, 4) if isinstance(v, float) else v for k, v in lat.items()},
    }
    args.output.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"\nwritten {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")


if __name__ == "__main__":
    main()
