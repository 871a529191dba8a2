"""GPU checks and figures of train.cuda_graphs (issue 14), for one short run on a lent GPU (prints, writes JSON):

1. equivalence: the same run (seed, data, fp32) with whole steps replayed as CUDA graphs against eager steps:
   every step's losses and the final weights, for dcgan, dcgan with lazy R1 (two step keys), wgan-gp (n_critic 5,
   a double backward inside the graph), cgan (labels drawn through ctx), dcgan with recipe.reuse_fakes and
   stylegan2 (lazy R1 and path length); with the number of captures and replays, and beside it the difference
   between two eager runs (cuDNN's backward kernels are not deterministic by default). --deterministic sets
   cuDNN's deterministic algorithms and turns TF32 off, so that the two paths can be compared exactly;
2. a capture that fails (a synchronisation inside the step): one notice, the run goes on eagerly, and a later
   trainer in the same process still captures; host synchronisations per non-logged step with graphs on
   (torch.cuda.set_sync_debug_mode);
3. `ganforge bench`, bf16 + channels_last, cuda_graphs off against on: DCGAN 64 px at batches 64, 256, 1024
   and StyleGAN2 at 256 px (paper256 widths, batch 32).

    python benchmarks/gpu_graphs.py [--out DIR] [--budget 300] [--deterministic]
        [--skip equivalence,fallback,syncs,dcgan,sg2]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from pathlib import Path

import torch

from ganforge.bench import make_trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_speed import bench_rows, count_syncs  # noqa: E402

TINY = ["model.ngf=16", "model.ndf=16", "train.ema=0", "train.amp=off", "recipe.diffaug="]
CASES = {
    "dcgan": ("dcgan", TINY + ["model.clusters=0"]),
    "dcgan lazy R1": ("dcgan", TINY + ["model.clusters=0", "recipe.r1_gamma=1", "recipe.r1_every=4"]),
    "wgan-gp": ("wgan-gp", TINY),
    "cgan": ("cgan", TINY),
    "dcgan reuse_fakes": ("dcgan", TINY + ["model.clusters=0", "recipe.reuse_fakes=true"]),
    "stylegan2": ("stylegan2", ["model.clusters=0", "recipe.augment=none", "train.ema=0", "train.amp=off",
                                "recipe.r1_every=4", "recipe.pl_every=3"]),
}
SG2_256 = ["model.config=paper256", "model.image_size=256", "model.channels=1", "model.clusters=0",
           "recipe.pl_weight=2", "recipe.augment=none"]
DCGAN64 = ["model.image_size=64", "model.channels=3", "model.clusters=0", "recipe.diffaug=", "train.ema=0"]


def run(target: str, overrides: list[str], graphs: str, steps: int, device: str):
    tr = make_trainer(target, overrides + [f"train.cuda_graphs={graphs}"], batch_size=32, device=device)
    rows = [{k: float(v) for k, v in tr.train_step(logged=(i + 1) % 5 == 0).items() if k.startswith("loss")}
            for i in range(steps)]
    weights = {f"{n}.{k}": v.detach().float().cpu() for n, net in tr.models.nets.items()
               for k, v in net.state_dict().items()}
    info = {"captures": tr.graphs.captures, "replays": tr.graphs.replays,
            "keys": len(tr.graphs.entries)} if tr.graphs is not None else None
    return rows, weights, info


def diffs(a_rows, a_w, b_rows, b_w) -> tuple[float, float]:
    """Largest relative loss difference over the steps, largest absolute weight difference at the end."""
    rel = max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-6) for a, b in zip(a_rows, b_rows) for k in b)
    wdiff = max((a_w[k] - b_w[k]).abs().max().item() for k in b_w if b_w[k].is_floating_point())
    return rel, wdiff


def equivalence(device: str, steps: int) -> dict:
    out = {}
    for name, (target, ov) in CASES.items():
        try:
            e_rows, e_w, _ = run(target, ov, "off", steps, device)
            e2_rows, e2_w, _ = run(target, ov, "off", steps, device)
            g_rows, g_w, info = run(target, ov, "on", steps, device)
            rel, wdiff = diffs(g_rows, g_w, e_rows, e_w)
            rel_e, wdiff_e = diffs(e2_rows, e2_w, e_rows, e_w)
            out[name] = {"graphs_vs_eager": {"max_rel_loss_diff": rel, "max_abs_weight_diff": wdiff},
                         "eager_vs_eager": {"max_rel_loss_diff": rel_e, "max_abs_weight_diff": wdiff_e},
                         "graphs": info, "last_losses": g_rows[-1], "eager_last": e_rows[-1]}
        except Exception as e:  # noqa: BLE001 - reported, the other cases go on
            traceback.print_exc(limit=4)
            out[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
        print(name, out[name], flush=True)
    return out


def fallback(device: str) -> dict:
    """A step that synchronises inside its capture: one notice, the run goes on eagerly, and a later trainer in the
    same process still captures (the device's generator is put back in eager mode)."""
    tr = make_trainer("dcgan", CASES["dcgan"][1] + ["train.cuda_graphs=on"], batch_size=32, device=device)
    notes: list[str] = []
    tr.graphs.note = notes.append
    real = tr.recipe.step

    def step(batches, ctx):
        out = real(batches, ctx)
        torch.cuda.synchronize()  # not permitted while a stream captures
        return out

    tr.recipe.step = step
    losses = [float(tr.train_step(logged=False)["loss_D"]) for _ in range(8)]
    tr2 = make_trainer("dcgan", CASES["dcgan"][1] + ["train.cuda_graphs=on"], batch_size=32, device=device)
    after = [float(tr2.train_step(logged=False)["loss_D"]) for _ in range(6)]
    out = {"notes": notes, "captures": tr.graphs.captures, "losses_finite": all(map(math.isfinite, losses)),
           "second_trainer": {"captures": tr2.graphs.captures, "replays": tr2.graphs.replays,
                              "finite": all(map(math.isfinite, after))}}
    print("fallback", out, flush=True)
    return out


def syncs(device: str) -> dict:
    out = {}
    for name in ("dcgan", "wgan-gp", "stylegan2"):
        target, ov = CASES[name]
        tr = make_trainer(target, ov + ["train.cuda_graphs=on"], batch_size=32, device=device)
        for _ in range(40):  # every kind of step captured (StyleGAN2's R1 and path-length keys recur every 12)
            tr.train_step(logged=False)
        per_step, where = count_syncs(tr)
        out[name] = {"syncs_per_step": per_step, "where": where, "replays": tr.graphs.replays}
        print(name, out[name], flush=True)
    return out


def bench(device: str, deadline: float, skip: set[str]) -> list[dict]:
    """`ganforge bench` with cuda_graphs off and on (gpu_speed.bench_rows), training only."""
    variants = [(f"graphs {g}", dict(amp="bf16", channels_last="on", cuda_graphs=g, sample=False))
                for g in ("off", "on")]
    rows = []
    if "dcgan" not in skip:
        for b in (64, 256, 1024):
            rows += bench_rows("dcgan", DCGAN64, variants, b, device, 30, 8, 3, deadline)
    if "sg2" not in skip:
        # 24 warm-up steps: the path-length key (every 4) is captured in them, R1 (every 16) at its third occurrence
        rows += bench_rows("stylegan2", SG2_256, variants, 32, device, 16, 24, 3, deadline)
    return rows


def guarded(fn, *args) -> dict:
    """fn(*args), or its error as a record: one failing section leaves the others to run."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc(limit=6)
        return {"error": f"{type(e).__name__}: {str(e)[:300]}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--budget", type=float, default=300.0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--deterministic", action="store_true", help="cuDNN deterministic algorithms, TF32 off")
    ap.add_argument("--skip", default="", help="sections to skip: equivalence,fallback,syncs,dcgan,sg2")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    if args.deterministic:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    start = time.time()
    report: dict = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0),
                    "deterministic": args.deterministic}
    print(report, flush=True)
    if "equivalence" not in skip:
        report["equivalence"] = equivalence(args.device, args.steps)
        print(f"[{time.time() - start:.0f} s]", flush=True)
    for name, fn in (("fallback", fallback), ("syncs", syncs)):
        if name not in skip:
            report[name] = guarded(fn, args.device)
            print(f"[{time.time() - start:.0f} s]", flush=True)
    report["bench"] = bench(args.device, start + args.budget, skip)
    report["wall_s"] = round(time.time() - start, 1)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    name = f"gpu_graphs{'_det' if args.deterministic else ''}.json"
    (Path(args.out) / name).write_text(json.dumps(report, indent=1, default=str))
    print(f"done in {report['wall_s']} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
