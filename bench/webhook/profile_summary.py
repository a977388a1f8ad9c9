"""Summarise py-spy raw (collapsed) profiles written by ``run.py --profile SECONDS``.

    python bench/webhook/profile_summary.py bench/webhook/results/profile-itabot-*.txt [--top 25]

Prints, over all the files: samples per thread role (webhook request threads vs the
embedded worker threads vs others), the top functions by inclusive samples restricted to
our own code (bot/, handlers/, models/, surveys/), and the top leaf (self) frames.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

OURS = re.compile(r"\((bot|handlers|models|surveys)/")


def role(frames: list[str]) -> str:
    s = ";".join(frames)
    if "EmbeddedRunner._run" in s:
        return "embedded worker threads (process + send)"
    if "Sweeper._run" in s:
        return "sweeper"
    if "callback (" in s or "handle_request" in s or "ThreadWorker" in s:
        return "gunicorn request threads (webhook)"
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    roles: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for f in args.files:
        for line in f.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack:
                continue
            count = int(n)
            frames = stack.split(";")
            total += count
            roles[role(frames)] += count
            for fr in set(frames):
                if OURS.search(fr):
                    inclusive[re.sub(r":\d+\)", ")", fr)] += count
            leaf[frames[-1]] += count
    print(f"samples: {total}")
    for r, c in roles.most_common():
        print(f"  {c / total:6.1%}  {r}")
    print("\nour code, inclusive (collapsed over line numbers):")
    for fr, c in sorted(inclusive.items(), key=lambda x: -x[1])[: args.top]:
        print(f"  {c / total:6.1%}  {fr}")
    print("\nleaf frames (self):")
    for fr, c in leaf.most_common(args.top):
        print(f"  {c / total:6.1%}  {fr}")


if __name__ == "__main__":
    main()
