"""Ablation of a digit preset: variants x seeds at one budget, each judged by the calibrated MNIST judge.

    python benchmarks/ablation.py --preset dcgan --steps 4000 --seeds 0,1 --jobs 2 \\
        --variant "preset:" --variant "r1: recipe.r1_gamma=1" [--section TITLE]

Every (variant, seed) trains as its own `ganforge train` process with one torch thread (`--jobs` of them at
once, so that both cores of this machine work), then 2,000 samples of its final checkpoint (EMA weights when
kept) are judged. A variant is `name: override override ...` on top of the preset; the table shows each seed's
confident share, the mean as a share of the ceiling (real held-out digits at the same threshold and
temperature), and the largest and smallest class shares averaged over seeds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402
from judge_run import score  # noqa: E402


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'name: a=1 b=2' -> ('name', ['a=1', 'b=2'])."""
    name, _, rest = text.partition(":")
    if not name.strip():
        raise SystemExit(f"variant {text!r}: expected 'name: override ...'")
    return name.strip(), rest.split()


def train_one(preset: str, name: str, overrides: list[str], seed: int, steps: int, runs_dir: Path,
              threads: int) -> tuple[Path, float]:
    """Train one (variant, seed) in its own process; (run folder, wall seconds)."""
    run_name = f"{name}-s{seed}"
    cmd = [sys.executable, "-m", "ganforge", "train", preset, "--name", run_name,
           f"train.runs_dir={runs_dir}", f"train.seed={seed}", f"train.steps={steps}", "train.progress=false",
           f"train.ckpt_every={steps}", f"train.sample_every={steps}", *overrides]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    log = runs_dir / f"{run_name}.log"
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        raise SystemExit(f"{run_name} failed (exit {rc}); see {log}")
    return runs_dir / run_name, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="dcgan")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--variant", action="append", required=True, help="'name: override ...' (repeatable)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--runs-dir", default="runs/ablation")
    ap.add_argument("--section", default=None, help="RESULTS.md section to write")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    seeds = [int(s) for s in args.seeds.split(",")]
    runs_dir = Path(args.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(name, ov, seed) for name, ov in variants for seed in seeds]
    results: dict[tuple[str, int], tuple] = {}

    def work(job):
        name, ov, seed = job
        run, wall = train_one(args.preset, name, ov, seed, args.steps, runs_dir, args.threads)
        s = score(str(run), args.n)
        results[(name, seed)] = (s, wall)
        h = s.histogram
        print(f"{name} seed {seed}: confident {s.confident:.1%} ({s.of_ceiling:.1%} of ceiling), largest "
              f"{max(h) / s.n:.1%}, smallest {min(h) / s.n:.1%}, {wall:.0f} s", flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(work, jobs))

    rows = []
    for name, ov in variants:
        got = [results[(name, s)] for s in seeds]
        conf = [r[0].confident for r in got]
        ceil = got[0][0].ceiling
        largest = statistics.mean(max(r[0].histogram) / r[0].n for r in got)
        smallest = statistics.mean(min(r[0].histogram) / r[0].n for r in got)
        spread = f" ± {statistics.stdev(conf):.1%}" if len(conf) > 1 else ""
        rows.append(f"| {name} | `{' '.join(ov) or '(preset)'}` | {', '.join(f'{c:.1%}' for c in conf)} | "
                    f"{statistics.mean(conf):.1%}{spread} | {statistics.mean(conf) / ceil:.1%} | {largest:.1%} | "
                    f"{smallest:.1%} | {min(r[0].classes_present for r in got)}/10 | "
                    f"{statistics.mean(r[1] for r in got) / 60:.1f} |")
    s0 = next(iter(results.values()))[0]
    body = (f"`python benchmarks/ablation.py {' '.join(repr(a) if ' ' in a else a for a in sys.argv[1:])}`\n\n"
            f"Preset `{args.preset}`, {args.steps} steps, seeds {args.seeds}, {args.jobs} runs at a time with "
            f"{args.threads} torch thread(s) each; {args.n} samples per run judged at temperature "
            f"{s0.temperature:.4f} (ceiling {s0.ceiling:.1%}).\n\n"
            "| variant | overrides | confident per seed | mean | of ceiling | largest class | smallest class | "
            "classes | wall min |\n|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    print(body)
    if args.section:
        record(args.section, body)


if __name__ == "__main__":
    main()
