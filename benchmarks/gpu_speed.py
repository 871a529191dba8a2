"""GPU checks and figures of issue 14, for one short run on a lent GPU (prints Markdown, writes JSON):

1. host synchronisations per training step of every preset (tiny sizes), counted with
   torch.cuda.set_sync_debug_mode("warn") over non-logged steps: the loop promises none between checks;
2. the fast path against the plain path on CUDA: losses of 4 fp32 steps compiled against eager NCHW
   (same tolerance as the CPU tests);
3. `ganforge bench` of DCGAN 64 px: fp32 eager, bf16 + channels_last, bf16 + compile (batch 1024 and 128);
4. `ganforge bench` of StyleGAN2 at 256 px (paper256 widths): sec/kimg, eager and compiled;
each section is skipped once --budget seconds have passed.

    python benchmarks/gpu_speed.py [--out DIR] [--budget 420] [--quick]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch

from ganforge.bench import make_trainer, run_bench
from ganforge.config import list_presets

SMALL = {  # tiny sizes: the sync check is about the code path, not the figures
    "stylegan": ["model.image_size=16"],
    "pix2pix": ["model.image_size=32", "data.source=demo:colorize,n_train=8,n_test=2"],
    "pix2pix-colorize": ["model.image_size=32", "data.source=demo:colorize,n_train=8,n_test=2"],
}
DCGAN64 = ["model.image_size=64", "model.channels=3", "model.clusters=0", "recipe.diffaug=", "train.ema=0"]
SG2_256 = ["model.config=paper256", "model.image_size=256", "model.channels=1", "model.clusters=0",
           "recipe.pl_weight=2", "recipe.augment=none"]


def count_syncs(tr, steps: int = 8) -> tuple[float, list[str]]:
    """Host synchronisations per non-logged training step of trainer `tr` (torch.cuda.set_sync_debug_mode), and
    where: the innermost ganforge frames, or the warning's own place when none is on the stack."""
    tr.synchronize()
    syncs: list[str] = []

    def hook(message, category, filename, lineno, file=None, line=None):
        if "synchroniz" in str(message):
            stack = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_stack()[:-1]
                     if "ganforge" in f.filename]
            syncs.append(" <- ".join(reversed(stack[-3:])) or f"{Path(filename).name}:{lineno}")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = hook
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(steps):
                tr.train_step(logged=False)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return len(syncs) / steps, sorted(set(syncs))[:3]


def sync_check(device: str, presets: list[str]) -> list[dict]:
    """Host synchronisations per non-logged step of each preset (after warm-up steps)."""
    rows = []
    for p in list_presets():
        if presets and p not in presets:
            continue
        row = {"preset": p}
        try:
            tr = make_trainer(p, SMALL.get(p, []) + ["train.amp=auto"], batch_size=8, device=device)
            for _ in range(3):
                tr.train_step(logged=False)
            per_step, where = count_syncs(tr)
            row.update(syncs_per_step=per_step, where=where)
        except Exception as e:  # noqa: BLE001 - reported, the other presets go on
            row.update(error=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
        print(row, flush=True)
        rows.append(row)
    return rows


def fast_vs_plain(device: str) -> dict:
    """Losses of 4 fp32 steps: channels_last + compile against eager NCHW, on the GPU."""
    tiny = ["model.ngf=16", "model.ndf=16", "model.clusters=0", "recipe.diffaug=", "train.ema=0", "train.amp=off"]
    out = {}
    for name, extra in (("plain", ["train.channels_last=off", "train.compile=off"]),
                        ("fast", ["train.channels_last=auto", "train.compile=default"])):
        tr = make_trainer("dcgan", tiny + extra, batch_size=32, device=device)
        out[name] = [{k: float(v) for k, v in tr.train_step(logged=True).items() if k.startswith("loss")}
                     for _ in range(4)]
    rel = max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-8) for a, b in zip(out["fast"], out["plain"]) for k in b)
    out["max_rel_loss_diff"] = rel
    print(f"fast vs plain (fp32, 4 steps): max relative loss difference {rel:.2e}", flush=True)
    return out


def bench_rows(target: str, overrides: list[str], variants: list[tuple[str, dict]], batch: int, device: str,
               steps: int, warmup: int, repeats: int, deadline: float) -> list[dict]:
    """run_bench for each (label, options) variant while time is left."""
    rows = []
    for label, opts in variants:
        if time.time() > deadline:
            print(f"skipped {target} {label}: out of time", flush=True)
            continue
        t0 = time.time()
        try:
            res = run_bench(target, overrides=overrides, batch=batch, device=device, steps=steps, warmup=warmup,
                            repeats=repeats, **opts)
            print(res.table(), flush=True)
            rows.append({"label": label, "wall_s": round(time.time() - t0, 1), **res.as_dict()})
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            rows.append({"label": label, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"})
        print(f"[{label}: {time.time() - t0:.0f} s]", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--budget", type=float, default=420.0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--sync", default="", help="presets for the sync check (default: all)")
    ap.add_argument("--skip", default="", help="sections to skip: sync,fast,dcgan,dcgan128,sg2,sg2compile")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few steps (to try the script on a CPU)")
    args = ap.parse_args()
    start = time.time()
    deadline = start + args.budget
    q = args.quick
    report: dict = {"torch": torch.__version__}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    print(report, flush=True)
    presets = [p for p in args.sync.split(",") if p]
    skip = set(args.skip.split(","))
    if args.device.startswith("cuda") and "sync" not in skip:
        report["sync"] = sync_check(args.device, presets)
    if "fast" not in skip:
        try:
            report["fast_vs_plain"] = fast_vs_plain(args.device)
        except Exception as e:  # noqa: BLE001 - reported, the figures go on
            traceback.print_exc(limit=3)
            report["fast_vs_plain"] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
    print(f"[{time.time() - start:.0f} s]", flush=True)
    dc = DCGAN64 + (["model.ngf=8", "model.ndf=8", "model.image_size=32"] if q else [])
    steps, warm, reps = (2, 1, 2) if q else (30, 10, 3)
    eager = ("bf16 + channels_last", dict(amp="bf16", channels_last="on", compile_mode="off"))
    compiled = ("bf16 + compile", dict(amp="bf16", channels_last="auto", compile_mode="default"))
    if "dcgan" not in skip:
        report["dcgan64"] = bench_rows("dcgan", dc, [
            ("fp32 eager NCHW", dict(amp="off", channels_last="off", compile_mode="off")), eager, compiled],
            8 if q else 1024, args.device, steps, warm, reps, deadline)
    if "dcgan128" not in skip:
        report["dcgan64_b128"] = bench_rows("dcgan", dc, [eager, compiled], 8 if q else 128, args.device, steps,
                                            warm, reps, deadline)
    sg = SG2_256 + (["model.config=cpu-tiny", "model.image_size=32"] if q else [])
    sg_steps = (2, 1, 2) if q else (16, 4, 3)  # 16 steps: one lazy R1 and four path-length steps per repeat
    if "sg2" not in skip:
        report["stylegan2_256"] = bench_rows("stylegan2", sg, [eager], 4 if q else 32, args.device, *sg_steps,
                                             deadline)
    if "sg2compile" not in skip:
        report["stylegan2_256_compiled"] = bench_rows("stylegan2", sg, [compiled], 4 if q else 32, args.device,
                                                      *sg_steps, deadline)
    report["wall_s"] = round(time.time() - start, 1)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu_speed.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"done in {report['wall_s']} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
