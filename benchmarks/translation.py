"""Pix2Pix and CycleGAN demos: held-out quality, training throughput and seamless tiled translation.

    python benchmarks/translation.py [--pix2pix-presets P,P] [--pix2pix-run RUN] [--cyclegan-run RUN]
                                     [--p2p-steps N] [--cyc-steps N]
                                     [--out DIR] [--record SECTION]

Without --*-run it trains the presets (built-in demo data, 64 px) first. Then:

- Pix2Pix, each preset of --pix2pix-presets (default: `pix2pix` on demo:labels, label map -> photo, and
  `pix2pix-colorize` on demo:colorize): L1, PSNR and SSIM of G(input) against the target on the held-out
  split (the recipe's own evaluation, as `ganforge eval`), beside the two trivial baselines, the input
  copied and the per-pixel mean of the training targets, and the margin over the better of them. G in
  eval mode (what `ganforge translate` uses), and also in train mode with batch 1 and dropout, the
  reference test.py's default.
- CycleGAN (demo:grass2gravel): cycle-reconstruction L1 both ways on the held-out images, how far the
  translated images' colour statistics moved toward the target domain, and FID/KID of each direction and of
  the identity mapping against the target domain's held-out images (`ganforge eval`'s code): Inception
  when $GANFORGE_INCEPTION names its weights, the offline ganforge-photo-v1 extractor otherwise.
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
def task_input(run_root: Path, photo_rgb: torch.Tensor) -> torch.Tensor:
    """A full bundled photo turned into the demo task's input (labels, grey or edges), as the crops were."""
    from PIL import Image

    from ganforge.data import translation_demo as td

    manifest = json.loads((run_root / "manifest.json").read_text())
    task = manifest["params"]["task"]
    img = Image.fromarray(((photo_rgb[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy())
    if task == "labels":
        src = td.label_map(img, np.array(manifest["colour_classes"]))
    elif task == "edges":
        src = td.edges(img.convert("L"))
    else:
        src = img.convert("L")
    return from_uint8(np.array(src.convert("RGB")))[None]


def label_lookup(run_root: Path, a: torch.Tensor) -> torch.Tensor | None:
    """For the labels task, each input pixel's palette colour replaced by its class's cluster centre (8-bit);
    None for other tasks."""
    from ganforge.data import translation_demo as td

    manifest = json.loads((run_root / "manifest.json").read_text())
    if manifest["params"]["task"] != "labels":
        return None
    pal = torch.tensor(td.LABEL_PALETTE, dtype=torch.float64) / 127.5 - 1
    centres = torch.tensor(manifest["colour_classes"], dtype=torch.float64).round() / 127.5 - 1
    px = a.double().permute(0, 2, 3, 1)
    cls = ((px[..., None, :] - pal) ** 2).sum(-1).argmin(-1)
    return centres[cls].permute(0, 3, 1, 2).float()


PIX_ROWS = (("G, eval mode (`ganforge translate`, `ganforge eval`)", ""),
            ("input copied (baseline)", "baseline_"), ("mean of the training targets (baseline)", "mean_target_"))


def bench_pix2pix(run: Path, out: Path, preset: str) -> tuple[str, dict]:
    cfg, recipe = recipe_for(run)
    a, b = stack(recipe.heldout, "A"), stack(recipe.heldout, "B")
    g = ganforge.load(run)  # eval mode, EMA weights when kept
    m = recipe.evaluate_heldout({"G": g.net}, len(a))  # the same numbers as `ganforge eval RUN`
    with torch.no_grad():
        fake = g.net(a)
    torch.manual_seed(0)
    g.net.train()  # the reference test.py default: dropout on, each image normalised by its own statistics
    with torch.no_grad():
        fake_train = torch.cat([g.net(a[i:i + 1]) for i in range(len(a))])
    g.net.eval()
    tr = {"l1": float(l1(fake_train, b).mean()), "psnr": float(psnr(fake_train, b).mean()),
          "ssim": float(ssim(fake_train, b).mean())}
    n = min(8, len(a))
    save_grid(torch.stack([a[:n], fake[:n], b[:n]], 1).flatten(0, 1), out / f"{preset}-heldout.png", nrow=6)
    rate, secs = throughput(run)
    size = cfg.model["image_size"]
    # The right quarter of each photo was held out of training (demo holdout="regions").
    coffee = photo("coffee")
    coffee_in = task_input(recipe.data_root(str(cfg.data.source), "paired", size), coffee)
    big = large_translation(g.net, coffee_in, size, 2 ** g.net.num_downs, out, f"{preset}-coffee")
    cut = int(coffee.shape[-1] * 0.75)
    region = fmt_metrics(big.pop("blended")[..., cut:], coffee[..., cut:])
    steps = read_metrics(run)[-1]["step"]
    rows = [f"| {name} | {m[p + 'l1']:.4f} | {m[p + 'psnr']:.2f} | {m[p + 'ssim']:.4f} |"
            for name, p in PIX_ROWS if p + "psnr" in m]
    rows.append(f"| G, train mode, batch 1 (reference test.py default) | {tr['l1']:.4f} | {tr['psnr']:.2f} | "
                f"{tr['ssim']:.4f} |")
    lookup = label_lookup(recipe.data_root(str(cfg.data.source), "paired", size), a)
    if lookup is not None:  # labels task: each label's cluster colour, a reference rather than a trivial baseline
        lk = {"l1": float(l1(lookup, b).mean()), "psnr": float(psnr(lookup, b).mean()),
              "ssim": float(ssim(lookup, b).mean())}
        rows.append(f"| reference, not a baseline: each label decoded to its class's k-means colour | "
                    f"{lk['l1']:.4f} | {lk['psnr']:.2f} | {lk['ssim']:.4f} |")
    bases = [p for _, p in PIX_ROWS[1:] if p + "psnr" in m]
    margin = {k: min((m[k] - m[p + k]) * (-1 if k == "l1" else 1) for p in bases) for k in ("psnr", "ssim", "l1")}
    beats = all(v > 0 for v in margin.values())
    lines = [
        f"**Pix2Pix**, preset `{preset}` ({size} px, ngf={cfg.model['ngf']}, ndf={cfg.model['ndf']}, "
        f"batch {cfg.train.batch_size}), {steps} steps on `{cfg.data.source}`; {len(a)} held-out pairs "
        f"(8-bit outputs):",
        "",
        "| | L1 ↓ | PSNR dB ↑ | SSIM ↑ |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Margin of G (eval mode) over the better baseline on each metric: PSNR {margin['psnr']:+.2f} dB, SSIM "
        f"{margin['ssim']:+.4f}, L1 {margin['l1']:+.4f} (lower is better, shown so that positive is better): "
        f"{'beats both baselines on all three' if beats else 'does NOT beat both baselines on every metric'}.",
        "",
        f"Training: {rate:.1f} images/s (median), {secs:.0f} s in all. Full `coffee` photo ({big['size']}) as the "
        f"task's input: {big['seconds']:.2f} s tiled; on its held-out right quarter PSNR {region['psnr']:.2f} dB / "
        f"SSIM {region['ssim']:.4f}.",
    ]
    return "\n".join(lines), {"heldout": m, "heldout_train_mode": tr, "margins": margin, "beats_baselines": beats,
                              "images_per_s": rate, "train_seconds": secs, "large": big,
                              "coffee_right_quarter": region}

def fid_kid(run: Path) -> tuple[str, dict]:
    """FID/KID of each direction and of the identity mapping on the held-out images, through `ganforge eval`'s
    own code: Inception when its weights are present, the offline ganforge-photo-v1 extractor otherwise."""
    from ganforge.evaluate import evaluate_translation_run

    ext = "inception" if os.environ.get("GANFORGE_INCEPTION") else "ganforge-photo-v1"
    rec = evaluate_translation_run(str(run), None, ["fid", "kid"], 10_000, extractor=ext,
                                   inception_weights=os.environ.get("GANFORGE_INCEPTION"))
    m = rec["metrics"]
    rows = ["| direction | FID: G | FID: identity | KID x1000: G | KID x1000: identity |", "|---|---|---|---|---|"]
    for d, name in (("AtoB", "G_AB(A) vs held-out B"), ("BtoA", "G_BA(B) vs held-out A")):
        rows.append(f"| {name} | {m[f'fid_{d}']:.2f} | {m[f'identity_fid_{d}']:.2f} | {1000 * m[f'kid_mean_{d}']:.2f} "
                    f"± {1000 * m[f'kid_std_{d}']:.2f} | {1000 * m[f'identity_kid_mean_{d}']:.2f} ± "
                    f"{1000 * m[f'identity_kid_std_{d}']:.2f} |")
    head = (f"FID/KID with extractor `{rec.get('extractor')}` "
            f"({'NOT Inception: not comparable with published FIDs' if ext != 'inception' else 'Inception'}), "
            f"{rec['heldout']['n']} held-out images per domain; identity = the untranslated input against the "
            f"target domain, the trivial baseline:")
    return head + "\n\n" + "\n".join(rows), m


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
    fid_text, fid = fid_kid(run)
    lines = [
        f"**CycleGAN**, preset `cyclegan` ({size} px, ngf={cfg.model['ngf']}, ndf={cfg.model['ndf']}, "
        f"{cfg.model['n_blocks']} blocks, batch {cfg.train.batch_size}), {steps} steps on `{cfg.data.source}`; "
        f"{len(a)} + {len(b)} held-out images:",
        "",
        f"- cycle reconstruction L1: A -> B -> A {cyc_a:.4f}, B -> A -> B {cyc_b:.4f} ([-1, 1] units)",
        f"- colour statistics distance to the target domain (mean |Δ channel mean| + |Δ channel std|): "
        f"G_AB(A) vs B {dist(fb, b):.4f} (untranslated A vs B {dist(a, b):.4f}); "
        f"G_BA(B) vs A {dist(fa, a):.4f} (untranslated B vs A {dist(b, a):.4f})",
        f"- training: {rate:.1f} images/s (median), {secs:.0f} s in all",
        "",
        fid_text,
    ]
    return "\n".join(lines), {"cycle_l1_a": cyc_a, "cycle_l1_b": cyc_b, "colour_dist_ab": dist(fb, b),
                              "colour_dist_a_b": dist(a, b), "colour_dist_ba": dist(fa, a),
                              "images_per_s": rate, "train_seconds": secs, "large": big, "fid_kid": fid}


def seam_table(p2p: dict, cyc: dict) -> str:
    rows = ["| large image | tile / overlap | seam ratio: input | blended (default) | input, overlap-0 grid | "
            "naive (overlap 0) | mean abs. difference to one full pass: blended | naive |", "|---|---|---|---|---|---|---|---|"]
    for name, r in (("Pix2Pix (first preset), `coffee` as its input", p2p["large"]), ("CycleGAN G_AB, `grass`", cyc["large"])):
        rows.append(f"| {name} {r['size']} | {r['tile']} / {r['overlap']} | {r['seam_input']:.3f} | "
                    f"{r['seam_blended']:.3f} | {r['seam_input_naive_grid']:.3f} | {r['seam_naive']:.3f} | "
                    f"{r['blended_vs_full_l1']:.4f} | {r['naive_vs_full_l1']:.4f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pix2pix-run", help="an existing run of the first --pix2pix-presets preset")
    ap.add_argument("--pix2pix-presets", default="pix2pix,pix2pix-colorize")
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
    p2p_texts, p2ps = [], {}
    for i, preset in enumerate(args.pix2pix_presets.split(",")):
        run = Path(args.pix2pix_run) if args.pix2pix_run and i == 0 else train_preset(preset, args.p2p_steps,
                                                                                      out / "runs")
        text, p2ps[preset] = bench_pix2pix(run, out, preset)
        p2p_texts.append(text)
    p2p = next(iter(p2ps.values()))
    cyc_run = Path(args.cyclegan_run) if args.cyclegan_run else train_preset("cyclegan", args.cyc_steps, out / "runs")
    cyc_text, cyc = bench_cyclegan(cyc_run, out)
    cmd = " ".join(["python benchmarks/translation.py", *sys.argv[1:]])
    body = "\n\n".join([
        f"`{cmd}` ({torch.get_num_threads()} torch thread(s); 1-minute load average {load0:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end: throughput figures are only comparable on an otherwise idle machine)",
        *p2p_texts, cyc_text,
        "**Tiled translation of images larger than the training size** (`ganforge translate` defaults: tile = "
        "training size, overlap = tile/4, raised-cosine blending). Seam ratio = mean |pixel step| within 2 px "
        "of tile borders / mean |pixel step| everywhere; 1.0 means the borders are invisible in this statistic. "
        "The last two columns compare with one pass over the whole image: they differ everywhere, not only at "
        "borders, because CycleGAN's InstanceNorm normalises each tile by its own statistics and the U-Net's "
        "innermost levels summarise the whole input (1x1 for a 64 px tile); per tile is what the 64 px training "
        "crops were like, and these columns do not measure seams.",
        seam_table(p2p, cyc),
        f"Sheets and large translations: `{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/` "
        "(PRESET-heldout.png: input | output | target; cyclegan-heldout.png: A | G_AB(A) | G_BA(G_AB(A)) | "
        "B | G_BA(B) | G_AB(G_BA(B)); *-blended/naive/full-pass.png).",
    ])
    print(body)
    (out / "results.json").write_text(json.dumps({"pix2pix": p2ps, "cyclegan": cyc}, indent=1, default=float))
    if args.record:
        record(args.record, body)


if __name__ == "__main__":
    main()
