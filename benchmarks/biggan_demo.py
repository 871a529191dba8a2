"""Score BigGAN digit runs with the shipped MNIST judge: requested class, confidence, coverage, truncation.

    python benchmarks/biggan_demo.py RUN [-n 1000] [--record SECTION]          # one run (its last checkpoint)
    python benchmarks/biggan_demo.py --screen RUN [RUN ...] [--record SECTION] # every checkpoint of each run
    python benchmarks/biggan_demo.py --speed 16:1,16:2,32:2 [--record SECTION] # s/step of ch:d_steps, interleaved

For a run: the share of samples the judge assigns to the requested class (labels cycling 0..9, EMA weights),
the confident share (p >= 0.9 after the judge's calibrated temperature), class coverage (classes whose own
samples are mostly judged as that class, and the worst class's requested-class share), the truncation trade-off
(the same figures and a diversity measure at several thresholds), training throughput from the run's log, and
the 128 px ImageNet configuration's parameter counts next to the reference implementation's.

Diversity: for each class, the mean pairwise distance between the judge's features of its samples, divided by
the same figure for the real held-out digits of that class (the judge's report half); averaged over classes.
1 means as varied as real digits; collapse to one image per class gives 0.

Standing statistics are recomputed on the loaded G exactly as training does before it saves (recipe.standing_stats
batches of train.batch_size, seed 0), so checkpoints written before the loop saved them score the same way.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

import ganforge
from ganforge.metrics.judge_extractor import JudgeExtractor
from ganforge.metrics.judge_score import heldout_halves, judge_images
from ganforge.recipes.biggan import compute_standing_stats

sys.path.insert(0, str(Path(__file__).parent))
from _results import record  # noqa: E402

THRESHOLDS = (None, 2.0, 1.0, 0.5, 0.25)
REFERENCE_PARAMS = {"G": 70_433_988, "D": 87_982_370}  # ajbrock/BigGAN-PyTorch BigGAN.py, the bs256x8 script's args


def load(run: str | Path):
    g = ganforge.load(run)
    k = int(run_cfg(g)["recipe"].get("standing_stats", 16))
    if k > 0 and hasattr(g.net, "shared"):
        compute_standing_stats(g.net, k, int(run_cfg(g)["train"]["batch_size"]))
    return g


def run_cfg(g) -> dict:
    return g.config["run"]


def _pairwise(f: torch.Tensor) -> float:
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / (n * (n - 1)))


_REAL: dict[int, float] = {}


def real_spread() -> dict[int, float]:
    if not _REAL:
        _, _, x, y = heldout_halves()
        f, _ = JudgeExtractor().features_and_logits(x, logits=False)
        _REAL.update({c: _pairwise(f[y == c]) for c in range(10)})
    return _REAL


def score(g, n: int = 1000, seed: int = 12345, threshold: float | None = None) -> dict:
    """Judge figures of n samples (labels cycling through the classes) at one truncation threshold."""
    labels = torch.arange(n) % g.num_classes
    imgs = g.sample(n, seed=seed, labels=labels, threshold=threshold)
    s = judge_images(imgs, requested=labels)
    f, logits = JudgeExtractor().features_and_logits(imgs)
    pred = logits.argmax(1)
    per_class = [float((pred[labels == c] == c).float().mean()) for c in range(g.num_classes)]
    real = real_spread()
    div = statistics.mean(_pairwise(f[labels == c]) / real[c] for c in range(g.num_classes))
    return {"requested": s.class_accuracy, "confident": s.confident, "mean_confidence": s.mean_confidence,
            "covered": sum(a > 0.5 for a in per_class), "worst_class": min(per_class), "diversity": div,
            "not_digit": s.not_digit}


def throughput(run: Path) -> tuple[float, float]:
    """Median real images/s and G steps/s over the run's logged intervals."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "images_per_s" in r and "loss_D" in r]
    ips = statistics.median(r["images_per_s"] for r in rows)
    prev, rates = None, []
    for r in rows:
        if prev is not None and r["time_s"] > prev["time_s"]:
            rates.append((r["step"] - prev["step"]) / (r["time_s"] - prev["time_s"]))
        prev = r
    return ips, statistics.median(rates) if rates else float("nan")


def run_report(run: str, n: int) -> str:
    from ganforge.models.biggan import biggan

    g = load(run)
    c = run_cfg(g)
    lines = [f"Run `{run}` ({c['model']}; recipe {c['recipe']}; steps {c['train']['steps']}, "
             f"batch {c['train']['batch_size']}), {n} samples, labels cycling 0..9, EMA weights, eval-mode "
             "standing statistics.", "",
             "| threshold | requested class | confident | mean confidence | classes covered | worst class | "
             "diversity (real = 1) | not a digit |", "|---|---|---|---|---|---|---|---|"]
    for t in THRESHOLDS:
        s = score(g, n, threshold=t)
        lines.append(f"| {'none' if t is None else t} | {s['requested']:.1%} | {s['confident']:.1%} | "
                     f"{s['mean_confidence']:.3f} | {s['covered']}/10 | {s['worst_class']:.1%} | {s['diversity']:.3f} | "
                     f"{s['not_digit']:.1%} |")
        print(lines[-1], flush=True)
    ips, sps = throughput(Path(run))
    m = biggan(config="imagenet128")
    ours = {k: sum(p.numel() for p in net.parameters()) for k, net in m.nets.items()}
    lines += ["", f"Training throughput (median over the run's log intervals): {ips:.0f} real images/s, "
              f"{sps:.2f} G steps/s.", "",
              f"Parameters of `biggan config=imagenet128`: G {ours['G']:,}, D {ours['D']:,}; reference "
              f"implementation with the same arguments: G {REFERENCE_PARAMS['G']:,}, D {REFERENCE_PARAMS['D']:,}."]
    return "\n".join(lines)


def screen(runs: list[str], n: int) -> str:
    lines = ["| run | settings | step | real images seen | requested class | confident | diversity |",
             "|---|---|---|---|---|---|---|"]
    for run in runs:
        cfg = run_cfg(ganforge.load(run))
        settings = (f"ch {cfg['model']['ch']}, batch {cfg['train']['batch_size']}, "
                    + ", ".join(f"{k} {v}" for k, v in cfg["recipe"].items()
                                if k in ("g_lr", "d_lr", "d_steps", "diffaug", "ortho") and v != ""))
        for ck in sorted((Path(run) / "checkpoints").glob("step-*")):
            step = int(ck.name.split("-")[1])
            s = score(load(ck), n)
            seen = step * cfg["train"]["batch_size"] * int(cfg["recipe"].get("d_steps", 2)) * \
                int(cfg["recipe"].get("accumulate", 1))
            lines.append(f"| {Path(run).name} | {settings} | {step} | {seen:,} | {s['requested']:.1%} | "
                         f"{s['confident']:.1%} | {s['diversity']:.3f} |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def speed(configs: list[str], repeats: int = 5, batch: int = 64) -> str:
    """Seconds per training step of each config ("ch:d_steps"), measured interleaved in this process on
    synthetic digits-shaped batches (warm-up excluded), and the steps that fit in 15 minutes."""
    import time

    from ganforge.recipes.biggan import BigGANConfig, BigGANRecipe
    from ganforge.recipes.context import StepContext
    from ganforge.registry import create_model

    class T:
        batch_size = batch
        steps = 1000

    recipes, times = {}, {}
    for c in configs:
        ch, d = (int(v) for v in c.split(":"))
        m = create_model("biggan", image_size=32, channels=1, num_classes=10, ch=ch)
        r = BigGANRecipe(m, BigGANConfig(d_steps=d, diffaug="translation"), torch.device("cpu"))
        r.attach(T)
        bs = [{"image": torch.rand(batch, 1, 32, 32) * 2 - 1, "label": torch.randint(0, 10, (batch,))}
              for _ in range(d)]
        r.step(bs, StepContext(batch_size=batch, log=False))  # warm-up
        recipes[c], times[c] = (r, bs), []
    for i in range(repeats):
        for c, (r, bs) in recipes.items():
            t = time.perf_counter()
            r.step(bs, StepContext(step=i, batch_size=batch, log=False))
            times[c].append(time.perf_counter() - t)
    lines = ["| ch | D steps | s/step (median of %d, interleaved) | real images/s | steps in 15 min |" % repeats,
             "|---|---|---|---|---|"]
    for c, ts in times.items():
        ch, d = c.split(":")
        m = statistics.median(ts)
        lines.append(f"| {ch} | {d} | {m:.3f} | {batch * int(d) / m:.0f} | {900 / m:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="*")
    ap.add_argument("--screen", action="store_true", help="score every checkpoint of each run")
    ap.add_argument("--speed", default=None, help="time training steps of configs ch:d_steps,... (e.g. 16:1,16:2)")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--record", default=None, help="RESULTS.md section to write")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.speed:
        body = speed(a.speed.split(","))
        cmd = f"python benchmarks/biggan_demo.py --speed {a.speed}"
    elif a.screen:
        body = screen(a.runs, a.n)
        cmd = f"python benchmarks/biggan_demo.py --screen {' '.join(a.runs)} -n {a.n}"
    else:
        body = "\n\n".join(run_report(r, a.n) for r in a.runs)
        cmd = f"python benchmarks/biggan_demo.py {' '.join(a.runs)} -n {a.n}"
    print(body)
    if a.record:
        record(a.record, f"`{cmd}`\n\n{body}")


if __name__ == "__main__":
    main()
