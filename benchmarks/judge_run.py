"""Score a trained digit generator with the MNIST judge.

    python benchmarks/judge_run.py RUN [-n 1000] [--record SECTION]

Prints the share of samples the judge classifies with probability >= 0.9 (after its calibrated temperature)
next to the ceiling, the share of real held-out digits it classifies so, and the ratio of the two; the class
histogram and, for conditional models, the share classified as the requested class (labels cycle through 0..9).
"""
from __future__ import annotations

import argparse
import json
import sys

import ganforge
from ganforge.metrics.judge_score import judge_images

sys.path.insert(0, __import__("os").path.dirname(__file__))
from _results import record  # noqa: E402


def score(run: str, n: int = 1000, seed: int = 12345):
    """JudgeScore of n samples from a run (EMA weights when the run kept them)."""
    g = ganforge.load(run)
    labels = None
    if g.num_classes:
        import torch

        labels = torch.arange(n) % g.num_classes
    images = g.sample(n, seed=seed, labels=labels)
    return judge_images(images, requested=labels)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--record", default=None, help="RESULTS.md section to write")
    args = ap.parse_args()
    s = score(args.run, args.n, args.seed)
    print(f"MNIST judge on {args.run}:")
    print(s.format())
    if args.record:
        record(args.record, f"`python benchmarks/judge_run.py {args.run} -n {args.n}`\n\n"
               f"Confident {s.confident:.1%} against a ceiling of {s.ceiling:.1%} (real held-out digits, same threshold "
               f"and temperature {s.temperature:.4f}): {s.of_ceiling:.1%} of the ceiling.\n\n```\n{s.format()}\n```\n"
               f"\n```json\n{json.dumps(s.as_dict())}\n```")


if __name__ == "__main__":
    main()
