"""`ganforge translate`: run a trained Pix2Pix or CycleGAN generator over image files of any size.

Each image is converted explicitly to the generator's input channels (alpha composited onto black,
16-bit scaled, colour <-> grey by ITU-R 601 luma, as `data.convert`), translated tile by tile with
`tools.tiling.translate_tiled` (default tiles of the training size overlapping by a quarter, blended with
raised-cosine windows so no seams show) and written as PNG under the output folder with the input's
stem; files found inside an input folder keep their relative subfolders. Unreadable files are skipped,
counted and named in one warning line.

The generator runs in eval mode: dropout off and BatchNorm on its running statistics. The Pix2Pix
paper and the reference's test.py (without --eval) instead keep train mode at test time, i.e. dropout
noise and each test batch's own statistics; with tiling that would make every tile random and
normalised differently, so seams would show, and the output would change from run to run.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .data.convert import to_canonical, to_channels, to_chw
from .data.paired import DIRECTIONS
from .errors import GanforgeError
from .pretrained import LoadedGenerator, load
from .tools.tiling import translate_tiled
from .training.checkpoint import read_config, resolve_checkpoint
from .utils.images import save_image
from .utils.inputs import collect_inputs

def trained_direction(config: dict) -> str:
    """The direction a single-generator translation model (Pix2Pix) was trained in, from its config.json."""
    return ((config.get("run") or {}).get("recipe") or {}).get("direction") or "AtoB"


def load_translator(ckpt: str | Path, direction: str | None = None, device: str = "cpu",
                    ema: bool = True) -> tuple[LoadedGenerator, str]:
    """The generator that translates in `direction` (None: the model's own) and that direction."""
    if direction is not None and direction not in DIRECTIONS:
        raise GanforgeError(f"--direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    path = resolve_checkpoint(ckpt)
    conf = read_config(path)
    name = (conf.get("model") or {}).get("name")
    if conf.get("task") != "translate":
        use = "ganforge upscale" if conf.get("task") == "upscale" else "ganforge sample"
        raise GanforgeError(f"{path} holds a {name} model, which does not translate images (use `{use}`)")
    roles = [r for r in (conf.get("io_roles") or []) if r in DIRECTIONS] or \
        (["AtoB", "BtoA"] if conf.get("generator_key") == "G_AB" else [])
    if roles:  # one generator per direction (CycleGAN): the direction picks it
        direction = direction or roles[0]
        return load(path, ema=ema, device=device, role=direction), direction
    trained = trained_direction(conf)
    if direction is not None and direction != trained:
        raise GanforgeError(f"this {name} model was trained {trained} and cannot translate {direction}; "
                            f"train one with recipe.direction={direction}")
    return load(path, ema=ema, device=device), trained


def image_tensor(img: Image.Image, channels: int) -> Tensor:
    """A decoded PIL image as a [1, channels, H, W] float tensor in [-1, 1] (also the web page's uploads)."""
    arr = to_chw(to_channels(to_canonical(img), channels), channels).astype(np.float32)
    return torch.from_numpy(arr).div_(127.5).sub_(1.0).clamp_(-1.0, 1.0)[None]


def read_image(path: Path, channels: int) -> Tensor:
    """An image file as a [1, channels, H, W] float tensor in [-1, 1]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's decompression-bomb and truncation chatter
        with Image.open(path) as img:
            img.load()
            return image_tensor(img, channels)


def translate_paths(ckpt: str | Path, inputs: list[str], out: str | Path, direction: str | None = None,
                    tile: int | None = None, overlap: int | None = None, device: str = "cpu",
                    ema: bool = True) -> list[Path]:
    """Translate image files/folders with a trained model into PNGs under `out`; returns the files written."""
    gen, direction = load_translator(ckpt, direction, device, ema)
    size = int(gen.config["model"]["image_size"])
    tile = size if tile is None else int(tile)
    m = gen.io.size_multiple
    if tile < m or tile % m:
        raise GanforgeError(f"--tile must be a positive multiple of {m} for this generator, got {tile}")
    overlap = tile // 4 if overlap is None else int(overlap)
    if not 0 <= overlap < tile:
        raise GanforgeError(f"--overlap must be >= 0 and smaller than the tile ({tile}), got {overlap}")
    out = Path(out)
    files = collect_inputs(inputs, out, lambda rel: rel.with_suffix(".png"), "translate")
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"--out {out} exists and is not a folder")
    in_ch = gen.io.in_channels
    written: list[Path] = []
    bad: list[str] = []
    for src, rel in files:
        try:
            image = read_image(src, in_ch)
        except Exception as e:  # PIL signals bad files with many types (OSError, SyntaxError, ValueError...)
            bad.append(f"{src} ({type(e).__name__})")
            continue
        with torch.no_grad():
            result = translate_tiled(gen, image, tile, overlap)  # through the model's checked contract
        written.append(save_image(result[0].float().cpu(), out / rel))
    if bad:
        print(f"ganforge: warning: skipped {len(bad)} unreadable image(s): {', '.join(bad)}", file=sys.stderr)
    return written
