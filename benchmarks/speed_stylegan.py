"""StyleGAN / StyleGAN2 training throughput through ganforge's loop: images/s and sec/kimg per config.

    python benchmarks/speed_stylegan.py [--configs stylegan2:cpu-tiny@32,stylegan2:cpu-small@32,stylegan:cpu-small@32]
        [--steps 40] [--batch 32] [--device cpu|cuda] [--amp] [--section TITLE]

Each entry is model:config@size; every run trains `--steps` steps on random images of that size (the speed
of the networks and the recipe, not of data loading), all regularisers on their reference intervals, and
the figure is the loop's images/s over the steps after the first logging window. On a GPU, `--amp` adds
the same runs under mixed precision (bf16/fp16 autocast) in the same process, interleaved.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import ganforge
from ganforge.training.loop import read_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, record  # noqa: E402


def image_folder(root: Path, size: int, channels: int, n: int = 256) -> Path:
    """n random images of size x size: a folder any model can read."""
    folder = root / f"rand{size}c{channels}"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        rng = np.random.default_rng(0)
        for i in range(n):
            arr = rng.integers(0, 256, size=(size, size, channels) if channels == 3 else (size, size), dtype=np.uint8)
            Image.fromarray(arr).save(folder / f"{i:04d}.png")
    return folder


def run_once(model: str, config: str, size: int, steps: int, batch: int, device: str, amp: bool,
             root: Path, channels: int) -> float:
    """Images/s of one short training run (after the first logging window)."""
    data = image_folder(root, size, channels)
    name = f"{model}-{config}-{size}-{'amp' if amp else 'fp32'}"
    ov = [f"model.config={config}", f"model.image_size={size}", f"model.channels={channels}",
          f"data.source={data}", f"train.steps={steps}", f"train.batch_size={batch}", "train.progress=false",
          "train.log_every=10", f"train.sample_every={steps}", f"train.ckpt_every={steps}", "train.n_samples=4",
          f"train.device={device}", f"train.amp={str(amp).lower()}", "train.ema=0.999"]
    if model == "stylegan":  # no growing: the speed at the full resolution
        ov.append(f"recipe.start_res={size}")
    run = ganforge.train(model, overrides=ov, name=name, runs_dir=str(root / "runs"), echo=lambda *a, **k: None)
    recs = [r for r in read_metrics(run) if "images_per_s" in r][1:]
    return statistics.median(r["images_per_s"] for r in recs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="stylegan2:cpu-tiny@32,stylegan2:cpu-small@32,stylegan:cpu-small@32")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true", help="also measure under mixed precision")
    ap.add_argument("--section", default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for entry in args.configs.split(","):
            spec, _, size = entry.partition("@")
            model, _, config = spec.partition(":")
            for amp in ([False, True] if args.amp else [False]):
                ips = run_once(model, config, int(size), args.steps, args.batch, args.device, amp, Path(tmp),
                               args.channels)
                rows.append(f"| {model} | {config} | {size} | {'amp' if amp else 'fp32'} | {ips:.1f} | "
                            f"{1000 / ips:.1f} |")
                print(rows[-1], flush=True)
    body = (f"`python benchmarks/speed_stylegan.py {' '.join(sys.argv[1:])}`\n\nMachine: {machine()}; "
            f"device {args.device}, batch {args.batch}, {args.channels} channel(s), {args.steps} steps per run, "
            "random images (network and recipe speed, not data loading), the reference regularisation intervals "
            "(R1 every 16, path length every 4 for StyleGAN2; R1 every step for StyleGAN).\n\n"
            "| model | config | px | precision | images/s | sec/kimg |\n|---|---|---|---|---|---|\n" + "\n".join(rows))
    print(body)
    if args.section:
        record(args.section, body)


if __name__ == "__main__":
    main()
