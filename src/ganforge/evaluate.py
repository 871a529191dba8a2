"""`ganforge eval`: measure a trained generator or a folder of images against reference data, with the
protocol written beside every number.

Distribution metrics (fid, kid, is, pr, dc) embed both sides with one feature extractor; generated images
are quantised to 8 bits first, as they would be if saved as PNG (what pytorch-fid measures). Paired
metrics (psnr, ssim, l1) compare two folders image by image, matched by file name. Translation runs are
measured on their held-out split by their recipe; a CycleGAN run also by FID/KID of each direction against
the other domain, next to the identity mapping's.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

from torch import Tensor

from .errors import GanforgeError
from .metrics import (
    METRIC_NAMES,
    FeatureExtractor,
    build_record,
    compute_features,
    compute_metrics,
    l1,
    psnr,
    ssim,
)
from .metrics.reference import choose_extractor, dataset_batches, generator_batches, reference_stats

PAIRED_METRICS = ("psnr", "ssim", "l1")
TRANSLATION_DIST_METRICS = ("fid", "kid")  # of translations against the other domain (CycleGAN)


def _target_kind(target: str) -> str:
    p = Path(target)
    if not p.exists():
        raise GanforgeError(f"no such run, checkpoint or folder: {target}")
    if (p / "config.yaml").is_file() or (p / "config.json").is_file() or (p / "checkpoints").is_dir():
        return "generator"
    return "folder"


def evaluate(target: str, ref: str | None, metrics: Sequence[str] | None = None, n: int = 10000,
             extractor: str = "auto", batch_size: int = 100, seed: int = 0, device: str = "cpu",
             ref_split: str = "train", ref_root: str | None = None, inception_weights: str | None = None,
             use_cache: bool = True, y_channel: bool = False, crop_border: int = 0,
             kid_subset_size: int = 1000) -> dict[str, Any]:
    """Evaluate a run/checkpoint/folder against reference data; returns the JSON-ready record.

    A translation run is measured on held-out images of its own data (or of `ref`, a folder of the same
    layout) by its recipe: PSNR/SSIM/L1 against the targets for Pix2Pix, cycle consistency for CycleGAN,
    plus, for CycleGAN, FID/KID of each direction and of the identity (see evaluate_translation_run).
    """
    if n < 2:
        raise GanforgeError("--n must be at least 2")
    if _target_kind(target) == "generator":
        from .training.checkpoint import read_config, resolve_checkpoint

        conf = read_config(resolve_checkpoint(target))
        if conf.get("task") in ("translate", "upscale"):
            return evaluate_translation_run(target, ref, metrics, n, device, extractor, batch_size, seed,
                                            inception_weights, kid_subset_size)
    if metrics is None:
        metrics = ("fid", "kid", "pr")
    if ref is None:
        raise GanforgeError("--ref is required: the reference data (a built-in name such as mnist, or a path)")
    metrics = [m.strip().lower() for m in metrics if m.strip()]
    unknown = sorted(set(metrics) - set(METRIC_NAMES) - set(PAIRED_METRICS))
    if unknown:
        raise GanforgeError(f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRIC_NAMES + PAIRED_METRICS)})")
    paired = [m for m in metrics if m in PAIRED_METRICS]
    dist = [m for m in metrics if m in METRIC_NAMES]
    record: dict[str, Any] = {"target": str(target), "reference": str(ref)}
    if paired:
        record.update(evaluate_paired(target, ref, paired, y_channel=y_channel, crop_border=crop_border))
    if dist:
        record.update(_evaluate_distribution(target, ref, dist, n, extractor, batch_size, seed, device, ref_split,
                                             ref_root, inception_weights, use_cache, kid_subset_size))
        record["metrics"] = {**record.get("paired_metrics", {}), **record["metrics"]}
    else:
        record["metrics"] = record["paired_metrics"]
    return record


def _evaluate_distribution(target, ref, names, n, extractor_name, batch_size, seed, device, ref_split, ref_root,
                           inception_weights, use_cache, kid_subset_size) -> dict[str, Any]:
    from .data import build_dataset
    from .pretrained import load

    kind = _target_kind(target)
    gen = load(target, device=device) if kind == "generator" else None
    if gen is not None:
        size, ch = gen.io.image_size, gen.io.out_channels
        tgt_ds = None
    else:
        tgt_ds = build_dataset(target)
        size, ch = tgt_ds.image_size[0], tgt_ds.channels
        n = min(n, len(tgt_ds))
    ext = choose_extractor(extractor_name, ch, inception_weights, device)
    keep = n if any(m in names for m in ("kid", "pr", "dc")) else 0
    keep_logits = "is" in names
    real, ref_info = (None, {})
    if any(m != "is" for m in names):
        real, ref_info = reference_stats(ref, ext, n, split=ref_split, root=ref_root, image_size=size, channels=ch,
                                         batch_size=batch_size, keep=keep, use_cache=use_cache)
    t1 = time.perf_counter()
    batches = generator_batches(gen, n, batch_size, seed) if gen is not None else dataset_batches(tgt_ds, n, batch_size)
    fake = compute_features(ext, batches, max_samples=n, keep=keep, keep_logits=keep_logits, seed=seed)
    t2 = time.perf_counter()
    values = compute_metrics(names, real, fake, seed=seed, kid_subset_size=min(kid_subset_size, n,
                                                                                 real.count if real else n))
    rec = build_record(values, ext, real.count if real else None, fake.count, seed,
                       options={"metrics": list(names), "quantized": "uint8" if gen is not None else "as stored",
                                "target_kind": kind, "reference": ref_info, "kid_subset_size": kid_subset_size,
                                "ema": getattr(gen, "ema", None),
                                "step": (gen.config.get("step") if gen is not None else None),
                                "generated_images_per_s": round(fake.count / max(t2 - t1, 1e-9), 1)})
    return rec


def evaluate_translation_run(target: str, ref: str | None, metrics: Sequence[str] | None, n: int,
                             device: str = "cpu", extractor: str = "auto", batch_size: int = 100, seed: int = 0,
                             inception_weights: str | None = None, kid_subset_size: int = 1000) -> dict[str, Any]:
    """Held-out metrics of a translation run, computed by its recipe on its generators (EMA when kept).

    Pixel metrics come from the recipe's `evaluate_heldout`. A recipe with `heldout_translations`
    (CycleGAN) also gets FID/KID of each direction against the other domain's held-out images, and of
    the identity mapping as the trivial baseline: by default when the extractor is available (a note
    says why not otherwise), always when --metrics names fid or kid (an error if it is unavailable).
    """
    from .config import resolve
    from .recipes._translation import TranslationRecipe
    from .registry import create_model, recipe_class
    from .training.checkpoint import load_into, load_weights, read_config, resolve_checkpoint
    from .training.device import pick_device

    path = resolve_checkpoint(target)
    conf = read_config(path)
    run = conf.get("run")
    if not isinstance(run, dict):
        raise GanforgeError(f"{path / 'config.json'} has no run configuration")
    cfg = resolve({k: v for k, v in run.items() if k in ("model", "recipe", "data", "train", "preset")})
    family = cfg.model["name"]
    rcls = recipe_class(cfg.recipe["name"])
    if getattr(rcls, "evaluate_heldout", TranslationRecipe.evaluate_heldout) is TranslationRecipe.evaluate_heldout:
        raise GanforgeError(f"{family} runs have no held-out evaluation yet (recipe {cfg.recipe['name']!r} "
                            f"defines none), so `ganforge eval` cannot measure {target}")
    has_dist = hasattr(rcls, "heldout_translations")
    allowed = PAIRED_METRICS + (TRANSLATION_DIST_METRICS if has_dist else ())
    if metrics is None:
        pixel, dist = list(PAIRED_METRICS), list(TRANSLATION_DIST_METRICS if has_dist else ())
    else:
        wanted = [m.strip().lower() for m in metrics if m.strip()]
        bad = sorted(set(wanted) - set(allowed))
        if bad:
            raise GanforgeError(f"a {family} run is measured on held-out images with "
                                f"{', '.join(allowed)}; not {', '.join(bad)}")
        pixel = [m for m in wanted if m in PAIRED_METRICS]
        dist = [m for m in wanted if m in TRANSLATION_DIST_METRICS]
    ext, skipped = None, None
    if dist:
        # Translation data are photos, not digits: "auto" means Inception whatever the channel count.
        try:
            ext = choose_extractor(extractor, 3, inception_weights, device)
        except GanforgeError as e:
            if metrics is not None or extractor != "auto":
                raise
            skipped, dist = f"fid, kid not computed: {e}", []  # the default asks only for what is available
    if ref is not None:
        cfg.data.source = str(ref)
    dev = pick_device(device)
    models = create_model(family, **{k: v for k, v in cfg.model.items() if k != "name"}).to(dev)
    nets, used_ema = {}, []
    for key in models.io.nets.values():
        ema = (path / f"{key}_ema.safetensors").is_file()
        load_into(models.nets[key], load_weights(path, f"{key}_ema" if ema else key), f"{path} ({key})")
        nets[key] = models.nets[key].eval()
        if ema:
            used_ema.append(key)
    rargs = {k: v for k, v in cfg.recipe.items() if k != "name"}
    if rargs.get("content") == "vgg":  # no training loss is computed here: do not ask for the VGG19 file
        rargs["content"] = "mse"
    recipe = rcls(models, rcls.Config(**rargs), dev)
    recipe.attach(cfg.train)
    recipe.build_dataset(cfg.data)
    values: dict[str, Any] = {}
    if pixel:
        values = recipe.evaluate_heldout(nets, n)
        if metrics is not None:
            values = {k: v for k, v in values.items() if any(m in k.split("_") for m in pixel)}
    record: dict[str, Any] = {"target": str(target), "reference": str(cfg.data.source)}
    if ext is not None:
        images = recipe.heldout_translations(nets, n)
        dist_values, info = translation_distribution_metrics(images, dist, ext, batch_size, seed, kid_subset_size)
        values.update(dist_values)
        record.update(build_record(values, ext, None, None, seed, options=info))  # the protocol beside the numbers
    else:
        record["metrics"] = values
    record["heldout"] = {"n": min(n, recipe.heldout_size()), "source": str(cfg.data.source),
                         "split": getattr(recipe.heldout, "split", None), "ema": used_ema, "step": conf.get("step"),
                         "outputs": "8-bit rounded",
                         "baseline": getattr(recipe, "baseline_note", "baseline_* = the input itself as the output")}
    if ext is not None:
        record["heldout"]["n_A"], record["heldout"]["n_B"] = record["options"]["n_A"], record["options"]["n_B"]
    if skipped:
        record["heldout"]["skipped"] = skipped
    return record


def translation_distribution_metrics(images: dict[str, Tensor], names: Sequence[str], ext: FeatureExtractor,
                                     batch_size: int, seed: int,
                                     kid_subset_size: int) -> tuple[dict[str, float], dict[str, Any]]:
    """FID/KID of G_AB(A) vs B and G_BA(B) vs A, and of the identity (A vs B, B vs A), from held-out images."""
    from .metrics import FeatureStats

    def stats(x: Tensor) -> FeatureStats:
        return compute_features(ext, (x[i:i + batch_size] for i in range(0, len(x), batch_size)), keep=len(x),
                                seed=seed)

    feats = {k: stats(v) for k, v in images.items()}
    # One KID subset size for all four comparisons, so that they stay comparable with each other.
    subset = min(kid_subset_size, feats["A"].count, feats["B"].count)
    out: dict[str, float] = {}
    kid_info: dict[str, Any] = {}
    # (direction, real = the target domain, translated, identity = the input itself as the output)
    for direction, real, fake, same in (("AtoB", "B", "AtoB", "A"), ("BtoA", "A", "BtoA", "B")):
        for prefix, gen in (("", feats[fake]), ("identity_", feats[same])):
            vals = compute_metrics(names, feats[real], gen, seed=seed, kid_subset_size=subset)
            for k in ("fid", "kid_mean", "kid_std"):
                if k in vals:
                    out[f"{prefix}{k}_{direction}"] = vals[k]
            kid_info = {k: vals[k] for k in ("kid_subsets", "kid_subset_size") if k in vals}
    info = {"metrics": list(names), "n_A": feats["A"].count, "n_B": feats["B"].count, "quantized": "uint8",
            **kid_info, "compared": {"*_AtoB": "G_AB(testA) vs testB", "*_BtoA": "G_BA(testB) vs testA",
                                     "identity_*_AtoB": "testA vs testB", "identity_*_BtoA": "testB vs testA"}}
    return out, info


def evaluate_paired(pred_dir: str, target_dir: str, names: Sequence[str], y_channel: bool = False,
                    crop_border: int = 0) -> dict[str, Any]:
    """PSNR/SSIM/L1 between two folders of images matched by file name (mean over images)."""
    import numpy as np
    from PIL import Image

    from .data.paired import list_images
    from .utils.images import from_uint8

    def read(f: Path) -> Tensor | None:
        try:
            with Image.open(f) as im:
                return from_uint8(np.asarray(im.convert("RGB")))[None]
        except (OSError, ValueError):
            return None

    a, b = Path(pred_dir), Path(target_dir)
    for p in (a, b):
        if not p.is_dir():
            raise GanforgeError(f"paired metrics need two folders; {p} is not a folder")
    fa = {f.stem: f for f in list_images(a)}
    fb = {f.stem: f for f in list_images(b)}
    common = sorted(set(fa) & set(fb))
    if not common:
        raise GanforgeError(f"no file names in common between {a} and {b}")
    sums = {m: 0.0 for m in names}
    skipped: list[str] = []
    for stem in common:
        x, y = read(fa[stem]), read(fb[stem])
        if x is None or y is None:
            skipped.append(stem)
            continue
        if x.shape != y.shape:
            raise GanforgeError(f"{fa[stem].name}: size {tuple(x.shape[2:])} differs from {tuple(y.shape[2:])}")
        for m in names:
            if m == "psnr":
                sums[m] += float(psnr(x, y, y_channel=y_channel, crop_border=crop_border).clamp(max=100))
            elif m == "ssim":
                sums[m] += float(ssim(x, y, y_channel=y_channel, crop_border=crop_border))
            else:
                sums[m] += float(l1(x, y))
    used = len(common) - len(skipped)
    if used == 0:
        raise GanforgeError(f"none of the {len(common)} matched pairs could be read")
    return {"paired_metrics": {m: v / used for m, v in sums.items()},
            "paired": {"n": used, "skipped": len(skipped), "unmatched": len(set(fa) ^ set(fb)), "y_channel": y_channel,
                       "crop_border": crop_border}}


def format_result(record: dict[str, Any]) -> str:
    """A small table of the metric values and the protocol behind them."""
    width = max([16] + [len(k) + 2 for k in record["metrics"]])
    lines = [f"{'metric':<{width}}{'value':>14}"]
    for k, v in record["metrics"].items():
        lines.append(f"{k:<{width}}{v:>14.6g}" if isinstance(v, (int, float)) and v is not None
                     else f"{k:<{width}}{str(v):>14}")
    h = record.get("heldout")
    if record.get("extractor"):
        lines.append(f"extractor {record['extractor']} (weights sha256 {str(record.get('weights_sha256'))[:16]}...), "
                     f"resize {record.get('resize_method')}")
        if h:
            lines.append(f"held-out A {h.get('n_A')}, B {h.get('n_B')}  seed {record.get('seed')}  ganforge "
                         f"{record.get('ganforge_version')}; *_AtoB = G_AB(testA) vs testB, *_BtoA = G_BA(testB) "
                         f"vs testA, identity_* = the input itself as the output")
        else:
            lines.append(f"real {record.get('n_real')}  generated {record.get('n_generated')}  seed "
                         f"{record.get('seed')}  ganforge {record.get('ganforge_version')}")
    if h:
        lines.append(f"held-out {h['source']} [{h['split']}]: {h['n']} items, step {h['step']}, "
                     f"EMA {', '.join(h['ema']) or 'no'}; {h.get('baseline', 'baseline_* = the input itself as the output')}")
        if h.get("skipped"):
            lines.append(h["skipped"])
    if record.get("paired"):
        p = record["paired"]
        lines.append(f"paired images {p['n']} (unmatched {p['unmatched']}), y_channel={p['y_channel']}, "
                     f"crop_border={p['crop_border']}")
    return "\n".join(lines)


def write_record(record: dict[str, Any], path: str | Path) -> Path:
    """Write the record as JSON atomically."""
    from .utils.atomic import atomic_write_text

    return atomic_write_text(path, json.dumps(record, indent=2) + "\n")
