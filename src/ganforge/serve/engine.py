"""The server's torch side: a bounded LRU cache of loaded generators and one worker thread that runs every
model call, so torch work never blocks the event loop and never runs twice at once.

Every operation takes a RunEntry (found by runs.RunIndex, never a client's path), goes through the Python
API (ganforge.load and the tools), and returns PNG bytes. Bad parameters raise GanforgeError (a 400).
"""
from __future__ import annotations

import asyncio
import functools
import io
import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import torch
from PIL import Image
from torch import Tensor

from ..errors import GanforgeError
from ..pretrained import LoadedGenerator, load
from ..utils.images import make_grid, to_uint8
from .runs import RunEntry

MAX_N = 64  # images in one sample grid
MAX_FRAMES = 48  # frames per interpolation segment
MAX_MIX = 8  # row or column seeds of a style-mixing grid
MAX_SEED = 2**63 - 1
THUMB_CACHE = 512


class Busy(GanforgeError):
    """Too many requests are waiting for the model worker (a 429)."""


class NotSupported(GanforgeError):
    """The run's model cannot do the asked operation (a 400 naming what it can do)."""


def png_bytes(image: Tensor | Image.Image) -> bytes:
    """A [C,H,W] tensor in [-1, 1] (or a PIL image) as PNG bytes."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(to_uint8(image))
    if pil.mode not in ("1", "L", "LA", "RGB", "RGBA", "I;16", "P"):
        pil = pil.convert("RGBA" if "A" in pil.getbands() else "RGB")
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def grid_png(images: Tensor, nrow: int | None = None) -> bytes:
    """[N,C,H,W] images as one PNG grid (square-ish unless nrow is given)."""
    n = images.shape[0]
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    return png_bytes(make_grid(images.clamp(-1, 1), nrow=nrow, padding=2))


class ModelCache:
    """At most `size` loaded generators, least recently used evicted first; one lock guards it all."""

    def __init__(self, size: int = 4, device: str = "cpu"):
        if size < 1:
            raise GanforgeError(f"the model cache must hold at least 1 model, got {size}")
        self.size, self.device = int(size), device
        self._items: OrderedDict[tuple, LoadedGenerator] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a model was read from disk (tests check it is once per model)

    def get(self, entry: RunEntry, role: str | None = None) -> LoadedGenerator:
        """The generator of a run (its translation direction `role`), loaded on first use."""
        key = (entry.name, str(entry.ckpt), role)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            gen = self._load(entry, role)
            self.loads += 1
            self._items[key] = gen
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return gen

    def _load(self, entry: RunEntry, role: str | None) -> LoadedGenerator:
        if entry.kind == "translate":
            from ..translate import load_translator

            return load_translator(entry.ckpt, role, device=self.device)[0]
        return load(entry.ckpt, device=self.device)  # safetensors + config.json only: nothing is unpickled

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class Engine:
    """Runs model work on one worker thread (torch calls serialised), with a bound on waiting requests."""

    def __init__(self, device: str = "cpu", cache_size: int = 4, max_waiting: int = 256):
        self.cache = ModelCache(cache_size, device)
        self.max_waiting = int(max_waiting)
        self._executor: ThreadPoolExecutor | None = None
        self._waiting = 0
        self._count_lock = threading.Lock()
        self._thumbs: OrderedDict[tuple, bytes] = OrderedDict()

    @property
    def waiting(self) -> int:
        """Requests queued or running on the worker."""
        return self._waiting

    async def run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """fn(*args, **kw) on the worker thread; a Busy error when too many requests already wait."""
        with self._count_lock:
            if self._waiting >= self.max_waiting:
                raise Busy(f"the server is busy ({self._waiting} requests waiting); try again shortly")
            self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._worker(), functools.partial(fn, *args, **kw))
        finally:
            with self._count_lock:
                self._waiting -= 1

    def submit(self, fn: Callable[..., Any], *args: Any):
        """Queue fn on the worker from any thread (a concurrent.futures.Future)."""
        return self._worker().submit(fn, *args)

    def _worker(self) -> ThreadPoolExecutor:
        # Started on first use and again after close(): an app may see several lifespans (one per TestClient).
        with self._count_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganforge-serve")
            return self._executor

    def close(self) -> None:
        """Stop the worker (pending work is cancelled); the next request starts a new one."""
        with self._count_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # ---- what a run can do ------------------------------------------------------------------------
    def describe(self, entry: RunEntry) -> dict[str, Any]:
        """Capabilities of a run: its kind, classes, truncation, directions, translation roles."""
        from ..tools.directions import list_directions
        from ..tools.style import is_style, level_resolutions, model_name

        info = entry.summary()
        if entry.kind == "translate":
            roles = translation_roles(entry)
            gen = self.cache.get(entry, roles[0] if len(roles) > 1 else None)
            info.update(directions=roles, in_channels=gen.io.in_channels,
                        out_channels=gen.io.out_channels, image_size=gen.io.image_size,
                        operations=["translate"], max_side_multiple=gen.io.size_multiple)
            return info
        gen = self.cache.get(entry)
        io_ = gen.io
        info.update(image_size=io_.image_size, in_channels=io_.in_channels, out_channels=io_.out_channels,
                    num_classes=io_.num_classes, family=model_name(gen), ema=gen.ema)
        if io_.kind == "upscale":
            info.update(scale=io_.scale, operations=["upscale"])
            return info
        style = is_style(gen)
        ops = ["sample", "interpolate"] + (["classes"] if io_.num_classes else []) + (["mix", "edit"] if style else [])
        info.update(operations=ops, style=style, z_dim=io_.z_dim,
                    truncation=({"kind": "psi", "min": 0.0, "max": 2.0, "default": 1.0} if style else
                                {"kind": "threshold", "min": 0.04, "max": 4.0, "default": None}))
        if style:
            info.update(attribute_directions=list_directions(gen), num_ws=int(gen.net.num_ws),
                        levels=[k for k, v in level_resolutions(io_.image_size).items() if v])
        return info

    # ---- noise models -----------------------------------------------------------------------------
    def _noise(self, entry: RunEntry, what: str) -> LoadedGenerator:
        if entry.kind != "noise":
            can = "translates" if entry.kind == "translate" else "upscales"
            raise NotSupported(f"run {entry.name!r} holds a {entry.family} model, which {can} images; "
                               f"it cannot do {what}")
        return self.cache.get(entry)

    @staticmethod
    def _truncation(gen: LoadedGenerator, trunc: float | None) -> tuple[float, float | None]:
        """(psi, threshold): trunc is psi on StyleGAN runs, BigGAN's z threshold on other noise models."""
        from ..models.interface import check_threshold
        from ..tools.style import check_psi, is_style

        if trunc is None:
            return 1.0, None
        if is_style(gen):
            return check_psi(trunc), None
        return 1.0, check_threshold(trunc)

    def sample(self, entry: RunEntry, seed: int, n: int, cls: int | None, trunc: float | None) -> bytes:
        """A grid of n samples from one seed (the first image is the seed's, as in interpolation and edits)."""
        gen = self._noise(entry, "sampling")
        _check_range("n", n, 1, MAX_N)
        _check_range("seed", seed, 0, MAX_SEED)
        psi, threshold = self._truncation(gen, trunc)
        imgs = gen.sample(n, seed=seed, labels=cls, psi=psi, threshold=threshold)
        return grid_png(imgs)

    def classes(self, entry: RunEntry, seed: int, per_class: int, trunc: float | None) -> bytes:
        """A class sheet: one row per class, column j seed (seed + j), the same z down a column."""
        from ..tools.conditional import class_sheet

        gen = self._noise(entry, "a class sheet")
        if not gen.io.num_classes:
            raise NotSupported(f"run {entry.name!r} holds a {entry.family} model without classes: no class sheet")
        _check_range("per_class", per_class, 1, 16)
        psi, threshold = self._truncation(gen, trunc)
        if psi != 1.0:
            raise NotSupported("a class sheet truncates z (BigGAN's threshold); psi does not apply to it")
        return grid_png(class_sheet(gen, None, per_class, seed, threshold), nrow=per_class)

    def interpolate(self, entry: RunEntry, seed_a: int, seed_b: int, frames: int, space: str, cls: int | None,
                    trunc: float | None, loop: bool = True) -> tuple[bytes, int]:
        """A horizontal strip of the walk's frames (PNG) and the frame count."""
        from ..tools.interpolation import interpolate

        gen = self._noise(entry, "interpolation")
        _check_range("frames", frames, 2, MAX_FRAMES)
        psi, threshold = self._truncation(gen, trunc)
        if threshold is not None:
            raise NotSupported("interpolation walks the seeds' plain latents; a z threshold does not apply "
                               "(only StyleGAN's psi does)")
        if cls is not None:
            gen.io.check_labels(cls)
        imgs = interpolate(gen, [seed_a, seed_b], space=space, frames=frames, loop=loop, psi=psi,
                           class_label=cls).clamp(-1, 1)
        strip = torch.cat(list(imgs), dim=2)  # [C, H, F*W]
        return png_bytes(strip), imgs.shape[0]

    def mix(self, entry: RunEntry, rows: Sequence[int], cols: Sequence[int], levels: str, psi: float,
            cls: int | None) -> bytes:
        """The style-mixing grid (StyleGAN runs)."""
        from ..tools.style import style_mix_grid

        gen = self._noise(entry, "style mixing")
        _style(gen, entry, "style mixing")
        if not 1 <= len(rows) <= MAX_MIX or not 1 <= len(cols) <= MAX_MIX:
            raise GanforgeError(f"style mixing takes 1 to {MAX_MIX} row seeds and column seeds, got "
                                f"{len(rows)} and {len(cols)}")
        if cls is not None:
            gen.io.check_labels(cls)
        imgs = style_mix_grid(gen, rows, cols, levels, psi=psi, class_label=cls)
        return grid_png(imgs.clamp(-1, 1), nrow=len(cols) + 1)

    def edit(self, entry: RunEntry, seed: int, strengths: dict[str, float], psi: float, cls: int | None) -> bytes:
        """One seed's image moved along the run's saved directions, each by its strength (in stds of W)."""
        from ..tools.directions import check_name, edit, list_directions, load_direction
        from ..tools.style import check_psi, seed_ws

        gen = self._noise(entry, "attribute edits")
        _style(gen, entry, "attribute edits")
        psi = check_psi(psi)
        known = list_directions(gen)
        total = torch.zeros(gen.net.w_dim)
        for name, s in strengths.items():
            check_name(name)
            if name not in known:
                raise GanforgeError(f"run {entry.name!r} has no direction {name!r} (" +
                                    (f"known: {', '.join(known)})" if known else "none saved)"))
            if not math.isfinite(s) or abs(s) > 10:
                raise GanforgeError(f"strength of {name!r} must be a finite number in [-10, 10], got {s}")
            d = load_direction(gen, name)  # torch.load(weights_only=True): tensors and primitives only
            total += float(s) * d.std * d.direction.float()
        if cls is not None:
            gen.io.check_labels(cls)
        label = cls if cls is not None else (0 if gen.io.num_classes else None)
        ws = seed_ws(gen, [seed], psi=psi, labels=label)
        return png_bytes(edit(gen, ws, total, [1.0], scale=1.0)[0].clamp(-1, 1))

    # ---- image to image ---------------------------------------------------------------------------
    def translate(self, entry: RunEntry, image: Image.Image, direction: str | None) -> bytes:
        """An uploaded image translated by a Pix2Pix or CycleGAN run (tiled at the training size)."""
        from ..tools.tiling import translate_tiled
        from ..translate import image_tensor

        if entry.kind != "translate":
            can = "upscales images" if entry.kind == "upscale" else "generates from noise"
            raise NotSupported(f"run {entry.name!r} holds a {entry.family} model, which {can}; it does not "
                               "translate images")
        roles = translation_roles(entry)
        if direction is not None and direction not in roles:
            raise GanforgeError(f"run {entry.name!r} translates {' and '.join(roles)}, not {direction!r}")
        gen = self.cache.get(entry, (direction or roles[0]) if len(roles) > 1 else None)
        x = image_tensor(image, gen.io.in_channels)
        size = int(gen.config["model"]["image_size"])
        with torch.no_grad():
            out = translate_tiled(gen, x, size, size // 4)
        return png_bytes(out[0].float().clamp(-1, 1))

    def upscale(self, entry: RunEntry, image: Image.Image) -> bytes:
        """An uploaded image upscaled by an SRResNet/SRGAN run."""
        from ..upscale import upscale_image

        if entry.kind != "upscale":
            can = "translates images" if entry.kind == "translate" else "generates from noise"
            raise NotSupported(f"run {entry.name!r} holds a {entry.family} model, which {can}; it does not "
                               "upscale images")
        return png_bytes(upscale_image(self.cache.get(entry), image))

    # ---- thumbnails -------------------------------------------------------------------------------
    def thumbnail(self, entry: RunEntry) -> bytes:
        """A small image of what the run makes: 4 samples, or the translation/upscaling of a test pattern."""
        key = (entry.name, str(entry.ckpt))
        if key in self._thumbs:
            self._thumbs.move_to_end(key)
            return self._thumbs[key]
        if entry.kind == "noise":
            gen = self.cache.get(entry)
            data = grid_png(gen.sample(4, seed=0), nrow=2)
        elif entry.kind == "translate":
            size = int((entry.config.get("model") or {}).get("image_size") or 32)
            data = self.translate(entry, pattern_image(size), None)
        else:
            gen = self.cache.get(entry)
            data = self.upscale(entry, pattern_image(max(8, min(32, gen.io.image_size))))
        self._thumbs[key] = data
        while len(self._thumbs) > THUMB_CACHE:
            self._thumbs.popitem(last=False)
        return data


def translation_roles(entry: RunEntry) -> list[str]:
    """The directions a translation run can translate in (both for CycleGAN, the trained one for Pix2Pix)."""
    from ..data.paired import DIRECTIONS
    from ..translate import trained_direction

    conf = entry.config
    roles = [r for r in (conf.get("io_roles") or []) if r in DIRECTIONS] or \
        (list(DIRECTIONS) if conf.get("generator_key") == "G_AB" else [])
    return roles or [trained_direction(conf)]


def pattern_image(size: int) -> Image.Image:
    """A deterministic RGB pattern (gradients and a disc) of size x size, the thumbnail's input."""
    import numpy as np

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
    disc = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.09).astype(np.float32)
    arr = np.stack([xx, yy, 0.3 + 0.7 * disc], -1)
    return Image.fromarray((arr * 255).round().astype(np.uint8), "RGB")


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= int(value) <= hi:
        raise GanforgeError(f"{name} must lie in {lo}..{hi}, got {value}")


def _style(gen: LoadedGenerator, entry: RunEntry, what: str) -> None:
    from ..tools.style import is_style

    if not is_style(gen):
        raise NotSupported(f"{what} needs a StyleGAN run (stylegan, stylegan2); run {entry.name!r} holds a "
                           f"{entry.family} model")
