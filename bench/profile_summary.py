"""Summarise py-spy collapsed stacks (``node_bench.py --profile DIR``) as top functions.

For each file: samples per thread, then the functions with the most *inclusive* samples
(on the stack) and the most *self* samples (the running frame), as percentages of all
samples of the phase. Functions are named ``name (file)`` with line numbers dropped, so a
function counts once however many of its lines were sampled.

Usage: ``python bench/profile_summary.py DIR/*.txt [--top 25] [--thread NAME]``.
"""

import argparse
import re
from collections import Counter
from pathlib import Path

LINE = re.compile(r":\d+\)$")


def frame_name(frame: str) -> str:
    return LINE.sub(")", frame)


def summarise(path: Path, top: int, thread_filter: str | None) -> str:
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1] if frames[0].startswith("thread") else "?"
        if thread_filter and thread_filter not in thread:
            continue
        frames = frames[1:] if frames[0].startswith("thread") else frames
        names = [frame_name(f) for f in frames]
        total += count
        threads[thread] += count
        for name in set(names):
            inclusive[name] += count
        if names:
            own[names[-1]] += count
    if not total:
        return f"== {path.name}: no samples\n"
    out = [f"== {path.name}: {total} samples"]
    out += [f"  thread {t}: {c / total:6.1%}" for t, c in threads.most_common()]
    out.append("  -- inclusive")
    out += [f"  {c / total:6.1%}  {n}" for n, c in inclusive.most_common(top)]
    out.append("  -- self")
    out += [f"  {c / total:6.1%}  {n}" for n, c in own.most_common(top)]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", help="only threads whose name contains this")
    args = parser.parse_args()
    for path in args.files:
        print(summarise(path, args.top, args.thread))


if __name__ == "__main__":
    main()
