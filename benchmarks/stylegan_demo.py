"""Everything a StyleGAN demo run shows, made with the CLI as a user would, and its figures.

    python benchmarks/stylegan_demo.py RUN [--heldout 10] [--proj-steps 300] [-n 2000] [--section TITLE]

Writes into RUN/demo/: a sample grid and a truncated one (psi 0.7), a style-mixing grid, an interpolation
GIF, projections of held-out real digits (the test split, never trained on), the 'thickness' direction
learnt from the ink score (ganforge.tools.scores:ink) and an edit strip along it. Prints and records: the
judge's figures on n samples, the projections' PSNR against the mean-w start, the direction's held-out fit.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import ganforge
from ganforge.data import build_dataset
from ganforge.tools.directions import load_direction
from ganforge.tools.scores import ink
from ganforge.tools.style import seed_ws
from ganforge.utils.images import save_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402
from judge_run import score  # noqa: E402


def cli(*args: str) -> str:
    """Run `ganforge ARGS` and return its stdout (raise on failure)."""
    out = subprocess.run([sys.executable, "-m", "ganforge", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"ganforge {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout + out.stderr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--heldout", type=int, default=10, help="held-out digits to project (one per class first)")
    ap.add_argument("--proj-steps", type=int, default=300)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--section", default=None)
    ap.add_argument("--note", default="", help="how the run was trained (command, wall time), for the record")
    args = ap.parse_args()
    run = Path(args.run)
    demo = run / "demo"
    demo.mkdir(exist_ok=True)

    s = score(str(run), args.n)
    print(s.format(), flush=True)
    cli("sample", str(run), "--seeds", "0-63", "--out", str(demo / "samples.png"))
    cli("sample", str(run), "--seeds", "0-63", "--trunc", "0.7", "--out", str(demo / "samples-psi0.7.png"))
    levels = cli("mix", str(run), "--rows", "0-5", "--cols", "10-15", "--levels", "coarse", "--out",
                 str(demo / "mix-coarse.png"))
    cli("mix", str(run), "--rows", "0-5", "--cols", "10-15", "--levels", "fine", "--out", str(demo / "mix-fine.png"))
    cli("interpolate", str(run), "--seeds", "1,2,3,4", "--space", "w", "--frames", "12", "--loop", "--size", "128",
        "--out", str(demo / "walk.gif"))

    x, y = build_dataset("mnist", split="test").as_tensor()
    order = sorted(range(len(y)), key=lambda i: (list(y[:i + 1]).count(y[i]), int(y[i])))[:args.heldout]
    psnr, base = [], []
    for k, i in enumerate(order):
        target = demo / f"heldout-{k}-digit{int(y[i])}.png"
        save_image(x[i], target)
        out = demo / f"projection-{k}"
        cli("project", str(run), str(target), "--space", "w+", "--steps", str(args.proj_steps), "--out", str(out))
        m = json.loads((out / "metrics.json").read_text())
        psnr.append(m["psnr"])
        base.append(m["baseline_psnr"])
        print(f"projection {k} (digit {int(y[i])}): PSNR {m['psnr']:.2f} dB, mean-w start {m['baseline_psnr']:.2f} dB",
              flush=True)

    fit = cli("direction", str(run), "--name", "thickness", "--score", "ganforge.tools.scores:ink", "--samples", "2000")
    cli("edit", str(run), "--seed", "7", "--direction", "thickness", "--strengths", "-3:3:7", "--out",
        str(demo / "edit-thickness-seed7.png"))
    g = ganforge.load(run)
    d = load_direction(g, "thickness")
    w = seed_ws(g, [7])
    strip = ganforge.edit(g, w, d, [-3, -1.5, 0, 1.5, 3])
    inks = ink(strip).tolist()
    fit_line = next((line for line in fit.splitlines() if line.startswith("direction")), fit.strip())

    h = s.histogram
    shown = [a for i, a in enumerate(sys.argv[1:]) if a != "--note" and sys.argv[i] != "--note"]  # note below
    body = (f"`python benchmarks/stylegan_demo.py {' '.join(shown)}`\n\n"
            f"Run `{run}` ({g.config['model']['name']}, {g.config['model'].get('config', '')}). {args.note}\n\n"
            f"- Judge, {s.n} samples: {s.confident:.1%} confident against a ceiling of {s.ceiling:.1%} "
            f"({s.of_ceiling:.1%} of it), {s.classes_present}/10 classes, largest class {max(h) / s.n:.1%}, "
            f"smallest {min(h) / s.n:.1%}, not a digit {s.not_digit:.1%}.\n"
            f"- Projection (w+, {args.proj_steps} steps) of {len(psnr)} held-out test digits: PSNR "
            f"{statistics.mean(psnr):.2f} dB (min {min(psnr):.2f}, max {max(psnr):.2f}) against "
            f"{statistics.mean(base):.2f} dB for the mean-w image they start from.\n"
            f"- Direction `thickness` from `ganforge.tools.scores:ink`, 2,000 samples: "
            f"{fit_line}\n"
            f"- Ink along the direction for seed 7 at -3, -1.5, 0, 1.5, 3 std: "
            f"{', '.join(f'{v:.3f}' for v in inks)}.\n"
            f"- Mixing levels: {levels.strip().splitlines()[0] if levels.strip() else ''}\n"
            f"- Files in `{demo}`: samples.png, samples-psi0.7.png, mix-coarse.png, mix-fine.png, walk.gif, "
            f"projection-*/, edit-thickness-seed7.png.\n")
    print(body)
    if args.section:
        record(args.section, body)


if __name__ == "__main__":
    main()
