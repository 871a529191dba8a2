"""Train the MNIST presets at the demo budget and score each with the MNIST judge.

    python benchmarks/family_runs.py [--presets dcgan,cgan,wgan,wgan-gp] [--steps N] [--runs-dir runs/bench]

Each preset trains with its own settings (steps from the preset unless --steps), then 1,000 samples are
judged; conditional models are asked for each class in turn. Each confident share is shown with the ceiling
(the share of real held-out digits the judge is confident about, same threshold and temperature) and the
ratio of the two. The table goes to RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import ganforge
from ganforge.training.loop import read_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402
from judge_run import score  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="dcgan,cgan,wgan,wgan-gp")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--runs-dir", default="runs/bench")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--section", default="MNIST presets at the demo budget")
    args = ap.parse_args()
    rows, temperature = [], float("nan")
    for preset in args.presets.split(","):
        name = f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        ov = ["train.progress=false"] + ([f"train.steps={args.steps}"] if args.steps else [])
        t0 = time.perf_counter()
        run = ganforge.train(preset, overrides=ov, name=name, runs_dir=args.runs_dir, echo=lambda *a, **k: None)
        wall = time.perf_counter() - t0
        recs = [r for r in read_metrics(run) if "images_per_s" in r]
        steps = recs[-1]["step"]
        s = score(str(run), args.n)
        acc = "" if s.class_accuracy is None else f"{s.class_accuracy:.1%}"
        rows.append(f"| {preset} | {steps} | {wall / 60:.1f} | {s.confident:.1%} | {s.ceiling:.1%} | {s.of_ceiling:.1%} | "
                    f"{s.not_digit:.1%} | {s.classes_present}/10 | {s.max_class_share:.1%} | {acc} | {s.histogram} |")
        temperature = s.temperature
        print(rows[-1], flush=True)
    body = ("`python benchmarks/family_runs.py " + " ".join(sys.argv[1:]) + "`\n\n"
            f"Judge temperature {temperature:.4f}; ceiling = confident share of real held-out digits (report half) at "
            "the same threshold and temperature.\n\n"
            "| preset | steps | wall min | confident (p>=0.9) | ceiling (real digits) | of ceiling | not a digit | "
            "classes | largest class | requested class | histogram |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(rows))
    record(args.section, body)
    print(body)


if __name__ == "__main__":
    main()
