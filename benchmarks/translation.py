"""Pix2Pix and CycleGAN demos: held-out quality, training throughput and seamless tiled translation.

    python benchmarks/translation.py [--pix2pix-run RUN] [--cyclegan-run RUN] [--p2p-steps N] [--cyc-steps N]
                                     [--out DIR] [--record SECTION]

Without --*-run it trains the `pix2pix` and `cyclegan` presets (built-in demo data, 64 px) first. Then:

- Pix2Pix (demo:colorize, grey -> colour): L1, PSNR and SSIM of G(input) against the target on the
  held-out split, beside the identity baseline (the grey input itself against the target). G in eval mode
  (what `ganforge translate` uses), and also in train mode with batch 1 and dropout, the reference
  test.py's default.
- CycleGAN (demo:grass2gravel): cycle-reconstruction L1 both ways on the held-out images, how far the
  translated images' colour statistics moved toward the target domain, and FID/KID between translated and
  target-domain images when Inception weights are available ($GANFORGE_INCEPTION; skipped otherwise).
- Throughput: median images/s over the logged steps of each run's metrics.jsonl.
- Large images: a full photo (Pix2Pix: the `coffee` photo, grey, 400x600; CycleGAN: the full 512x512
  `grass` texture) translated with the default tiling (tile = training size, overlap = tile/4, raised-
  cosine blending), with naive tiling (overlap 0) and in a single full-image pass. Seam visibility is the
  mean absolute pixel step near the tile borders divided by the mean step everywhere (1.0: borders look
  like any other column/row), next to the same ratio for the input image on the same grid.

Images (sample sheets, large translations) go to --out (default out/translation, git-ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import ganforge
from ganforge.config import load_preset, resolve
from ganforge.metrics import l1, psnr, ssim
from ganforge.registry import create_model, recipe_class
from ganforge.tools.tiling import tile_starts, translate_tiled
from ganforge.training.checkpoint import load_state, resolve_checkpoint
from ganforge.training.loop import read_metrics
from ganforge.utils.images import from_uint8, save_grid, save_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


# ---- runs and their data ------------------------------------------------------------------------------
def train_preset(preset: str, steps: int | None, runs_dir: Path) -> Path:
    """Train a preset (its own step count unless `steps`) and return the run folder."""
    raw = load_preset(preset)
    steps = steps or raw["train"]["steps"]
    run = runs_dir / f"{preset}-bench-{steps}"
    if (run / "checkpoints" / "latest").is_file():
        done = load_state(resolve_checkpoint(run))["step"]
        if done >= steps:
            print(f"reusing {run}")
            return run
        print(f"resuming {run} at step {done} of {steps}", flush=True)
        return ganforge.train(resume=run, overrides=["train.progress=false"], runs_dir=str(runs_dir))
    print(f"training {preset} for {steps} steps -> {run}", flush=True)
    return ganforge.train(preset, overrides=[f"train.steps={steps}", "train.progress=false"], name=run.name,
                          runs_dir=str(runs_dir))


def recipe_for(run: Path):
    """The run's recipe with its data built (held-out split in recipe.heldout)."""
    cfg = resolve(load_preset(str(run / "config.yaml")))
    rcls = recipe_class(cfg.recipe["name"])
    models = create_model(cfg.model["name"], **{k: v for k, v in cfg.model.items() if k != "name"})
    recipe = rcls(models, rcls.Config(**{k: v for k, v in cfg.recipe.items() if k != "name"}), torch.device("cpu"))
    recipe.build_dataset(cfg.data)
    return cfg, recipe


def throughput(run: Path) -> tuple[float, float]:
    """(median images/s over logged windows after the first, training seconds) from metrics.jsonl."""
    recs = [r for r in read_metrics(run) if "images_per_s" in r]
    rates = [r["images_per_s"] for r in recs[1:]] or [r["images_per_s"] for r in recs]
    return statistics.median(rates), recs[-1]["time_s"]


def stack(ds, key: str) -> torch.Tensor:
    """Every item's `key` image of a dataset as one batch."""
    return torch.stack([ds[i][key] for i in range(len(ds))])


def stack_unpaired(ds) -> tuple[torch.Tensor, torch.Tensor]:
    """All held-out A images and all held-out B images (serial dataset: item i = (A[i], B[i mod nB]))."""
    a = torch.stack([ds[i]["A"] for i in range(len(ds.files_a))])
    b = torch.stack([ds[i]["B"] for i in range(len(ds.files_b))])
    return a, b


def ycbcr(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-range BT.601 luma [N,H,W] and chroma [N,2,H,W] of RGB images in [-1,1], on the [0,1] scale."""
    r, g, b = ((x.double() + 1) / 2).unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return y, torch.stack([-0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b], 1)


def fmt_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean L1 ([-1,1] units), PSNR (dB), SSIM, and luma / chroma L1 ([0,1] units) of pred vs target."""
    (yp, cp), (yt, ct) = ycbcr(pred), ycbcr(target)
    return {"l1": float(l1(pred, target).mean()), "psnr": float(psnr(pred, target).mean()),
            "ssim": float(ssim(pred, target).mean()), "luma_l1": float((yp - yt).abs().mean()),
            "chroma_l1": float((cp - ct).abs().mean()), "chroma": float(cp.abs().mean())}


# ---- seams ----------------------------------------------------------------------------------------------
def seam_ratio(img: torch.Tensor, tile: int, overlap: int, band: int = 2) -> float:
    """Mean |pixel step| within `band` px of tile borders / mean |pixel step| overall (columns and rows).

    A band rather than the single border step, because evenly spread tiles may overlap by a pixel even
    with overlap 0, which splits a seam's jump over two steps.
    """
    img = img.double()
    ratios = []
    for dim in (-1, -2):
        length = img.shape[dim]
        starts = tile_starts(length, tile, overlap)
        edges = {s for s in starts[1:]} | {s + tile for s in starts[:-1]}
        # step i lies between pixels i and i+1; the border at pixel e is step e-1
        near = sorted({i for e in edges for i in range(e - 1 - band, e + band) if 0 <= i < length - 1})
        if not near:
            continue
        step = (img.narrow(dim, 1, length - 1) - img.narrow(dim, 0, length - 1)).abs()
        per = step.mean(dim=(0, 1, 2 if dim == -1 else 3))  # one value per step position
        ratios.append(float(per[near].mean() / per.mean()))
    return float(np.mean(ratios))


def large_translation(net, image: torch.Tensor, tile: int, multiple: int, out: Path, tag: str) -> dict:
    """Blended vs naive tiling vs one full pass on a large image; seam ratios, timings, images saved."""
    overlap = tile // 4
    t0 = time.perf_counter()
    blended = translate_tiled(net, image, tile, overlap)
    t_blend = time.perf_counter() - t0
    naive = translate_tiled(net, image, tile, 0)
    h, w = (s - s % multiple for s in image.shape[-2:])
    with torch.no_grad():
        full = net(image[..., :h, :w])
    for name, x in (("input", image), ("blended", blended), ("naive", naive), ("full-pass", full)):
        save_image(x[0], out / f"{tag}-{name}.png")
    return {
        "size": f"{image.shape[-2]}x{image.shape[-1]}", "tile": tile, "overlap": overlap, "seconds": t_blend,
        "seam_input": seam_ratio(image, tile, overlap), "seam_blended": seam_ratio(blended, tile, overlap),
        "seam_input_naive_grid": seam_ratio(image, tile, 0), "seam_naive": seam_ratio(naive, tile, 0),
        "blended_vs_full_l1": float((blended[..., :h, :w] - full).abs().mean()),
        "naive_vs_full_l1": float((naive[..., :h, :w] - full).abs().mean()),
        "blended": blended,
    }


def photo(name: str, grey: bool = False) -> torch.Tensor:
    """A bundled photo as [1,3,H,W] in [-1,1] (grey repeated to three channels when asked)."""
    from ganforge.data.translation_demo import load_photo

    arr = load_photo(name)
    if arr.ndim == 2 or grey:
        from PIL import Image

        arr = np.array(Image.fromarray(arr).convert("L").convert("RGB"))
    return from_uint8(np.array(arr))[None]


# ---- the two models -------------------------------------------------------------------------------------
def bench_pix2pix(run: Path, out: Path) -> tuple[str, dict]:
    cfg, recipe = recipe_for(run)
    a, b = stack(recipe.heldout, "A"), stack(recipe.heldout, "B")
    g = ganforge.load(run)  # eval mode
    with torch.no_grad():
        fake = g.net(a)
    ev, ident = fmt_metrics(fake, b), fmt_metrics(a, b)
    torch.manual_seed(0)
    g.net.train()  # the reference test.py default: dropout on, each image normalised by its own statistics
    with torch.no_grad():
        fake_train = torch.cat([g.net(a[i:i + 1]) for i in range(len(a))])
    g.net.eval()
    tr = fmt_metrics(fake_train, b)
    n = min(8, len(a))
    save_grid(torch.stack([a[:n], fake[:n], b[:n]], 1).flatten(0, 1), out / "pix2pix-heldout.png", nrow=6)
    rate, secs = throughput(run)
    size = cfg.model["image_size"]
    # The right quarter of the photo was held out of training (demo holdout="regions").
    coffee, coffee_grey = photo("coffee"), photo("coffee", grey=True)
    big = large_translation(g.net, coffee_grey, size, 2 ** g.net.num_downs, out, "pix2pix-coffee")
    cut = int(coffee.shape[-1] * 0.75)
    region = fmt_metrics(big.pop("blended")[..., cut:], coffee[..., cut:])
    region_id = fmt_metrics(coffee_grey[..., cut:], coffee[..., cut:])
    steps = read_metrics(run)[-1]["step"]
    lines = [
        f"**Pix2Pix**, preset `pix2pix` ({cfg.model['image_size']} px, ngf={cfg.model['ngf']}, ndf={cfg.model['ndf']}, "
        f"batch {cfg.train.batch_size}), {steps} steps on `{cfg.data.source}`; {len(a)} held-out pairs:",
        "",
        "| | L1 ↓ | PSNR dB ↑ | SSIM ↑ | luma L1 ↓ | chroma L1 ↓ | mean chroma |",
        "|---|---|---|---|---|---|---|",
        *[f"| {name} | {m['l1']:.4f} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['luma_l1']:.4f} | {m['chroma_l1']:.4f} "
          f"| {m['chroma']:.4f} |" for name, m in (
              ("identity baseline (grey input vs target)", ident), ("G, eval mode (`ganforge translate`)", ev),
              ("G, train mode, batch 1 (reference test.py default)", tr))],
        "",
        f"Luma / chroma: full-range BT.601 Y and (Cb, Cr) on the [0, 1] scale; the grey input has the target's "
        f"luma exactly and zero chroma, so it is a strong baseline for pixel metrics (targets' mean chroma "
        f"{fmt_metrics(b, b)['chroma']:.4f}).",
        "",
        f"Training: {rate:.1f} images/s (median), {secs:.0f} s in all. Full `coffee` photo (grey, {big['size']}): "
        f"{big['seconds']:.2f} s tiled; on its held-out right quarter PSNR {region['psnr']:.2f} dB / SSIM "
        f"{region['ssim']:.4f} vs {region_id['psnr']:.2f} / {region_id['ssim']:.4f} for the grey input.",
    ]
    return "\n".join(lines), {"heldout_eval": ev, "heldout_train_mode": tr, "identity": ident, "images_per_s": rate,
                              "train_seconds": secs, "large": big, "coffee_right_quarter": region,
                              "coffee_right_quarter_identity": region_id}


def fid_kid(fake: torch.Tensor, real: torch.Tensor, source: torch.Tensor) -> str:
    """FID/KID of translated and of untranslated images against the target domain, or why skipped."""
    from ganforge.errors import GanforgeError
    from ganforge.metrics import compute_features, compute_metrics, get_extractor

    if not os.environ.get("GANFORGE_INCEPTION"):
        return "FID/KID skipped: no Inception weights (set GANFORGE_INCEPTION to the pinned pt_inception file)."
    try:
        ext = get_extractor("inception", device="cpu")
    except GanforgeError as e:
        return f"FID/KID skipped: {e}"
    n = len(real)
    stats = {k: compute_features(ext, [x], keep=len(x)) for k, x in (("real", real), ("fake", fake), ("src", source))}
    m_fake = compute_metrics(["fid", "kid"], stats["real"], stats["fake"], kid_subset_size=min(n, len(fake)))
    m_src = compute_metrics(["fid", "kid"], stats["real"], stats["src"], kid_subset_size=min(n, len(source)))
    return (f"Inception FID / KID x1000 vs held-out B ({n} images, a very small sample: read as a trend): "
            f"G_AB(A) {m_fake['fid']:.1f} / {1000 * m_fake['kid_mean']:.2f}, untranslated A "
            f"{m_src['fid']:.1f} / {1000 * m_src['kid_mean']:.2f}.")


def bench_cyclegan(run: Path, out: Path) -> tuple[str, dict]:
    cfg, recipe = recipe_for(run)
    a, b = stack_unpaired(recipe.heldout)
    g_ab, g_ba = ganforge.load(run, net="G_AB").net, ganforge.load(run, net="G_BA").net
    with torch.no_grad():
        fb, fa = g_ab(a), g_ba(b)
        ra, rb = g_ba(fb), g_ab(fa)
    cyc_a, cyc_b = float(l1(ra, a).mean()), float(l1(rb, b).mean())

    def colour(x):  # per-channel mean and std over all pixels, in [-1, 1] units
        return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))

    def dist(x, y):
        (mx, sx), (my, sy) = colour(x), colour(y)
        return float((mx - my).abs().mean() + (sx - sy).abs().mean())

    n = min(8, len(a), len(b))
    save_grid(torch.stack([a[:n], fb[:n], ra[:n], b[:n], fa[:n], rb[:n]], 1).flatten(0, 1),
              out / "cyclegan-heldout.png", nrow=6)
    rate, secs = throughput(run)
    size = cfg.model["image_size"]
    big = large_translation(g_ab, photo("grass"), size, 4, out, "cyclegan-grass")
    big.pop("blended")
    steps = read_metrics(run)[-1]["step"]
    lines = [
        f"**CycleGAN**, preset `cyclegan` ({size} px, ngf={cfg.model['ngf']}, ndf={cfg.model['ndf']}, "
        f"{cfg.model['n_blocks']} blocks, batch {cfg.train.batch_size}), {steps} steps on `{cfg.data.source}`; "
        f"{len(a)} + {len(b)} held-out images:",
        "",
        f"- cycle reconstruction L1: A -> B -> A {cyc_a:.4f}, B -> A -> B {cyc_b:.4f} ([-1, 1] units)",
        f"- colour statistics distance to the target domain (mean |Δ channel mean| + |Δ channel std|): "
        f"G_AB(A) vs B {dist(fb, b):.4f} (untranslated A vs B {dist(a, b):.4f}); "
        f"G_BA(B) vs A {dist(fa, a):.4f} (untranslated B vs A {dist(b, a):.4f})",
        f"- {fid_kid(fb, b, a)}",
        f"- training: {rate:.1f} images/s (median), {secs:.0f} s in all",
    ]
    return "\n".join(lines), {"cycle_l1_a": cyc_a, "cycle_l1_b": cyc_b, "colour_dist_ab": dist(fb, b),
                              "colour_dist_a_b": dist(a, b), "colour_dist_ba": dist(fa, a),
                              "images_per_s": rate, "train_seconds": secs, "large": big}


def seam_table(p2p: dict, cyc: dict) -> str:
    rows = ["| large image | tile / overlap | seam ratio: input | blended (default) | input, overlap-0 grid | "
            "naive (overlap 0) | mean abs. difference to one full pass: blended | naive |", "|---|---|---|---|---|---|---|---|"]
    for name, r in (("Pix2Pix, `coffee` grey", p2p["large"]), ("CycleGAN G_AB, `grass`", cyc["large"])):
        rows.append(f"| {name} {r['size']} | {r['tile']} / {r['overlap']} | {r['seam_input']:.3f} | "
                    f"{r['seam_blended']:.3f} | {r['seam_input_naive_grid']:.3f} | {r['seam_naive']:.3f} | "
                    f"{r['blended_vs_full_l1']:.4f} | {r['naive_vs_full_l1']:.4f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pix2pix-run")
    ap.add_argument("--cyclegan-run")
    ap.add_argument("--p2p-steps", type=int, default=None, help="steps when training pix2pix (default: the preset's)")
    ap.add_argument("--cyc-steps", type=int, default=None, help="steps when training cyclegan (default: the preset's)")
    ap.add_argument("--out", default=str(ROOT / "out" / "translation"))
    ap.add_argument("--record", default="Translation: Pix2Pix and CycleGAN demos", help="RESULTS.md section ('' = none)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's); 1 avoids thrashing on a CPU shared with other jobs")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    p2p_run = Path(args.pix2pix_run) if args.pix2pix_run else train_preset("pix2pix", args.p2p_steps, out / "runs")
    cyc_run = Path(args.cyclegan_run) if args.cyclegan_run else train_preset("cyclegan", args.cyc_steps, out / "runs")
    p2p_text, p2p = bench_pix2pix(p2p_run, out)
    cyc_text, cyc = bench_cyclegan(cyc_run, out)
    cmd = " ".join(["python benchmarks/translation.py", *sys.argv[1:]])
    body = "\n\n".join([
        f"`{cmd}` ({torch.get_num_threads()} torch thread(s); 1-minute load average {load0:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end: throughput figures are only comparable on an otherwise idle machine)",
        p2p_text, cyc_text,
        "**Tiled translation of images larger than the training size** (`ganforge translate` defaults: tile = "
        "training size, overlap = tile/4, raised-cosine blending). Seam ratio = mean |pixel step| within 2 px "
        "of tile borders / mean |pixel step| everywhere; 1.0 means the borders are invisible in this statistic. "
        "The last two columns compare with one pass over the whole image: they differ everywhere, not only at "
        "borders, because CycleGAN's InstanceNorm normalises each tile by its own statistics and the U-Net's "
        "innermost levels summarise the whole input (1x1 for a 64 px tile); per tile is what the 64 px training "
        "crops were like, and these columns do not measure seams.",
        seam_table(p2p, cyc),
        f"Sheets and large translations: `{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/` "
        "(pix2pix-heldout.png: input | output | target; cyclegan-heldout.png: A | G_AB(A) | G_BA(G_AB(A)) | "
        "B | G_BA(B) | G_AB(G_BA(B)); *-blended/naive/full-pass.png).",
    ])
    print(body)
    (out / "results.json").write_text(json.dumps({"pix2pix": p2p, "cyclegan": cyc}, indent=1, default=float))
    if args.record:
        record(args.record, body)


if __name__ == "__main__":
    main()
