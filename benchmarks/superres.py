"""Super-resolution demo: held-out PSNR-Y/SSIM-Y of bicubic, SRResNet and SRGAN, a side-by-side sheet, a
large image upscaled through tiles, parameter counts and upscaling throughput on this machine.

    python benchmarks/superres.py --srresnet RUN [--srgan RUN] [--out DIR] [--record SECTION]

- Quality: each run's own held-out evaluation (the recipe's `evaluate_heldout`, as `ganforge eval RUN`):
  whole held-out photos (demo:photos: chelsea and the left motorcycle view, never trained on), their
  antialiased bicubic 1/4 downsampling upscaled by G (tiles of 128 LR px, as `ganforge upscale`) and
  by bicubic interpolation, 8-bit rounded; PSNR and SSIM on the BT.601 Y channel with 4 px borders cropped.
- Sheet: for each held-out photo, a 96x96 HR region shown as bicubic | SRResNet | SRGAN | original,
  each enlarged 2x (nearest neighbour) so the pixels can be seen.
- Large image: the whole motorcycle photo's LR version (185x125 px -> 740x500) upscaled with small
  tiles (32 px, overlap 8, many seams), without overlap, with the default tiles and in one pass; the
  seam ratio (benchmarks/translation.py: mean pixel step near tile borders / mean step everywhere;
  1.0 = borders look like any other row) and the difference to the single pass, in 8-bit levels.
- Throughput: `ganforge.upscale.upscale_image` on a 256x256 RGB input (1024x1024 output) with the
  default tiles, median of 3 after a warm-up, in output megapixels per second.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import ganforge
from ganforge.config import resolve
from ganforge.models.base import count_parameters
from ganforge.registry import create_model, recipe_class
from ganforge.tools.tiling import translate_tiled
from ganforge.training.checkpoint import read_config, resolve_checkpoint
from ganforge.utils.images import to_uint8

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, record  # noqa: E402
from translation import seam_ratio  # noqa: E402


def recipe_for(run: Path):
    """The run's recipe with its data built (the held-out photos)."""
    conf = read_config(resolve_checkpoint(run))
    cfg = resolve({k: v for k, v in conf["run"].items() if k in ("model", "recipe", "data", "train", "preset")})
    model = create_model(cfg.model["name"], **{k: v for k, v in cfg.model.items() if k != "name"})
    rcls = recipe_class(cfg.recipe["name"])
    rc = dict(cfg.recipe)
    rc.pop("name")
    rc["content"] = "mse"  # evaluation needs no VGG weights
    r = rcls(model, rcls.Config(**rc), torch.device("cpu"))
    r.attach(cfg.train)
    r.build_dataset(cfg.data)
    return r, cfg


def enlarge(img: torch.Tensor, k: int = 2) -> torch.Tensor:
    """Nearest-neighbour enlargement, so single pixels show in the sheet."""
    return img.repeat_interleave(k, -1).repeat_interleave(k, -2)


def trajectories(runs: list[str]) -> str:
    """A table of each run's held-out PSNR-Y gain over bicubic at every evaluation, from metrics.jsonl."""
    import json

    cols: dict[str, dict[int, float]] = {}
    notes = []
    for run in runs:
        conf = read_config(resolve_checkpoint(run))["run"]
        m, r = conf["model"], conf["recipe"]
        label = f"`{Path(run).name}`: skip={m.get('skip', 'none')}, lr={r['lr']:g}, content={r['content']}"
        rows = [json.loads(x) for x in (Path(run) / "metrics.jsonl").read_text().splitlines()]
        cols[label] = {x["step"]: x["eval_psnr_gain"] for x in rows if "eval_psnr_gain" in x}
        speed = [x["images_per_s"] for x in rows if "images_per_s" in x]
        notes.append(f"- {label}: median {statistics.median(speed):.1f} img/s over logged steps")
    steps = sorted({s for c in cols.values() for s in c})
    table = ["| step | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    table += [f"| {s} | " + " | ".join(f"{c[s]:+.2f}" if s in c else "-" for c in cols.values()) + " |" for s in steps]
    return "\n".join(table + [""] + notes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--screen", nargs="+", default=None, metavar="RUN",
                    help="only tabulate these runs' logged PSNR-Y gain over bicubic (screening), then stop")
    ap.add_argument("--srresnet", help="an SRResNet run")
    ap.add_argument("--srgan", default=None, help="an SRGAN run (optional)")
    ap.add_argument("--out", default="out/superres")
    ap.add_argument("--record", default=None, help="RESULTS.md section to write")
    a = ap.parse_args()
    if a.screen:
        text = trajectories(a.screen)
        print(text)
        if a.record:
            record(a.record, "Held-out PSNR-Y gain over bicubic (dB; demo:photos test split, Y, 4 px border) logged "
                   "by `train.eval_every=250`; 16 blocks, 64 features, batch 16, 96 px crops.\n\n" + text)
        return
    if not a.srresnet:
        ap.error("--srresnet RUN is required (or --screen RUN...)")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)

    runs = {"SRResNet": Path(a.srresnet)} | ({"SRGAN": Path(a.srgan)} if a.srgan else {})
    gens = {k: ganforge.load(v) for k, v in runs.items()}
    recipe, cfg = recipe_for(runs["SRResNet"])
    rows = ["| method | step | PSNR-Y (dB) | SSIM-Y | gain over bicubic (dB) |", "|---|---|---|---|---|"]
    per_image: list[str] = []
    first = True
    for name, g in gens.items():
        vals = recipe.evaluate_heldout({"G": g.net}, n=100)
        if first:
            rows.append(f"| bicubic | - | {vals['bicubic_psnr_y']:.2f} | {vals['bicubic_ssim_y']:.4f} | 0 |")
            first = False
        rows.append(f"| {name} | {g.config.get('step')} | {vals['psnr_y']:.2f} | {vals['ssim_y']:.4f} | "
                    f"{vals['psnr_gain']:+.2f} |")
        for (lr, hr), photo in zip(recipe.eval_set(), ("chelsea", "motorcycle")):
            p, s = recipe.measure(recipe.upscale(g.net, lr), hr)
            pb, sb = recipe.measure(recipe.bicubic(lr), hr)
            per_image.append(f"| {name} | {photo} {hr.shape[-1]}x{hr.shape[-2]} | {pb:.2f} / {sb:.4f} | "
                             f"{p:.2f} / {s:.4f} |")
    print("\n".join(rows))

    # Side-by-side sheet.
    tiles = []
    for lr, hr in recipe.eval_set():
        h, w = hr.shape[-2:]
        top, left = (h // 2 - 48) // 4 * 4, (w // 2 - 48) // 4 * 4
        region = (slice(None), slice(None), slice(top, top + 96), slice(left, left + 96))
        cols = [recipe.bicubic(lr)[region]]
        cols += [recipe.upscale(g.net, lr).clamp(-1, 1)[region] for g in gens.values()]
        cols.append(hr[region])
        tiles += [enlarge(c[0]) for c in cols]
    from ganforge.utils.images import save_grid

    sheet = save_grid(torch.stack(tiles), out / "side_by_side.png", nrow=len(gens) + 2)
    print(f"sheet: {sheet} (columns: bicubic | {' | '.join(gens)} | original)")

    # Large image through small tiles.
    g = gens["SRResNet"].net
    lr, hr = recipe.eval_set()[-1]
    with torch.no_grad():
        whole = g(lr).clamp(-1, 1)
        tiled = translate_tiled(g, lr, 32, 8, scale=4).clamp(-1, 1)
        naive = translate_tiled(g, lr, 32, 0, scale=4).clamp(-1, 1)
        default = recipe.upscale(g, lr).clamp(-1, 1)  # 128 px tiles overlapping by 16, as `ganforge upscale`
    q = lambda t: ((t + 1) * 127.5).round()
    Image.fromarray(to_uint8(tiled[0])).save(out / "motorcycle_x4_tiled.png")
    seam = {k: seam_ratio(v * 127.5, 32 * 4, o * 4) for k, v, o in (("blended", tiled, 8), ("naive", naive, 0),
                                                                     ("single pass", whole, 8))}
    def levels(t):
        d = (q(t) - q(whole)).abs()
        return f"{float(d.max()):.0f} levels (mean {float(d.mean()):.3f})"

    large = (f"motorcycle LR {lr.shape[-1]}x{lr.shape[-2]} -> {tiled.shape[-1]}x{tiled.shape[-2]}, tiles of 32 LR px: "
             f"seam ratio blended {seam['blended']:.3f}, naive (overlap 0) {seam['naive']:.3f}, one pass on the same "
             f"grid {seam['single pass']:.3f}; largest difference to the single pass: blended {levels(tiled)}, "
             f"naive {levels(naive)}; with the default tiles (128 px, overlap 16): {levels(default)}")
    print(large)

    # Throughput of `ganforge upscale`'s code path.
    from ganforge.upscale import upscale_image

    rng = np.random.default_rng(0)
    big = Image.fromarray(np.asarray(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
                                     .resize((256, 256), Image.BICUBIC)))
    upscale_image(gens["SRResNet"], big)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = upscale_image(gens["SRResNet"], big)
        times.append(time.perf_counter() - t0)
    mp = res.size[0] * res.size[1] / 1e6
    speed = f"upscale 256x256 -> {res.size[0]}x{res.size[1]}: median {statistics.median(times):.2f} s, " \
            f"{mp / statistics.median(times):.2f} output MP/s (2 threads)"
    print(speed)

    m = create_model("srgan")
    params = (f"default networks (4x, 16 blocks, 64 features, 96 px HR): SRResNet G {count_parameters(m.nets['G']):,}, "
              f"D {count_parameters(m.nets['D']):,}")
    print(params)
    if a.record:
        body = "\n".join([
            f"Runs: {', '.join(f'{k} `{v}`' for k, v in runs.items())}. Held-out photos of `demo:photos` (never "
            "trained on), whole, LR = antialiased bicubic 1/4; PSNR/SSIM on Y, 4 px border cropped, 8-bit outputs.",
            "", *rows, "", "Per photo (bicubic PSNR-Y / SSIM-Y, model PSNR-Y / SSIM-Y):", "",
            "| method | photo | bicubic | model |", "|---|---|---|---|", *per_image, "",
            f"- Sheet: `{sheet}` (bicubic | {' | '.join(gens)} | original, 96 px regions enlarged 2x).",
            f"- Large image: {large}.", f"- Throughput: {speed}.", f"- Parameters: {params}."])
        record(a.record, body)


if __name__ == "__main__":
    main()
