"""`ganforge bench` of every shipped preset at its own batch size and options (train.amp, channels_last and
compile as the preset sets them, or as given), one table, recorded in RESULTS.md.

    python benchmarks/bench_presets.py [--device cpu] [--amp auto] [--steps 5] [--warmup 2] [--repeats 3]
        [--peak-tflops X] [--presets a,b] [--no-record]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from ganforge.bench import run_bench
from ganforge.config import list_presets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402


def fmt(v: list[float]) -> str:
    """Median and range of a list of rates."""
    return f"{statistics.median(v):,.1f} ({min(v):,.1f}-{max(v):,.1f})" if v else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", default=None)
    ap.add_argument("--compile", default=None)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--presets", default="")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    presets = [p for p in args.presets.split(",") if p] or list_presets()
    rows = ["| preset | batch | amp | channels_last | train images/s (min-max) | train GFLOP/image | sample images/s "
            "(min-max) | sample GFLOP/image | train MFU |", "|---|---|---|---|---|---|---|---|---|"]
    for p in presets:
        t0 = time.time()
        try:
            r = run_bench(p, device=args.device, amp=args.amp, compile_mode=args.compile, steps=args.steps,
                          warmup=args.warmup, repeats=args.repeats, peak_tflops=args.peak_tflops)
        except Exception as e:  # noqa: BLE001 - one preset's failure is a row, not the end
            rows.append(f"| {p} | error: {type(e).__name__}: {str(e).splitlines()[0][:120]} |||||||")
            print(rows[-1], flush=True)
            continue
        mfu = "n/a" if r.train_mfu is None else f"{100 * r.train_mfu:.2f}%"
        rows.append(f"| {p} | {r.batch} | {r.amp} | {'on' if r.channels_last else 'off'} | {fmt(r.train_images_per_s)} "
                    f"| {r.train_flops_per_image / 1e9:.3f} | {fmt(r.sample_images_per_s)} | "
                    f"{r.sample_flops_per_image / 1e9:.4f} | {mfu} |")
        print(rows[-1], f"[{time.time() - t0:.0f} s]", flush=True)
    cmd = "python benchmarks/bench_presets.py " + " ".join(sys.argv[1:])
    body = (f"`{cmd.strip()}` ({args.steps} timed steps x {args.repeats} repeats after {args.warmup} warm-up steps, each "
            f"preset at its own batch size; amp {args.amp or 'as the preset'}; compile {args.compile or 'as the preset'})"
            "\n\n" + "\n".join(rows) + "\n\nMFU needs the device's peak: unknown for CPUs unless --peak-tflops is given.")
    print(body)
    if not args.no_record:
        record(f"ganforge bench of every preset on {args.device} (issue 14)", body)


if __name__ == "__main__":
    main()
