"""Built-in image-translation demo data, cut at run time from real photos that ship inside packages.

Nothing here downloads and nothing is committed as image files: the sources are photos bundled with
scikit-image (astronaut, coffee, chelsea, rocket, motorcycle; grass and gravel textures) and
scikit-learn (china, flower), all of which load offline.

- `make_pix2pix_demo`: paired crops, A -> B. Tasks:
  "labels" -> photo (the `pix2pix` preset): a label map in the manner of the facades and cityscapes
  labels, one flat palette colour per class. There are no human labels here, so a pixel's class is its
  colour cluster: k-means (K=8, in RGB) fitted on the training crops only, classes numbered from dark to
  light and drawn in a fixed palette unrelated to the photos' colours. The map fixes where regions and
  boundaries are and which kind each is; shading, texture and the exact colour must be learned.
  "colorize" (grayscale -> colour): A holds all of B's structure and luminance; a hard task for pixel
  metrics, since copying the grey input is already a strong answer. "edges" -> photo (Canny edges, black
  on white, as edges2shoes) must invent brightness, texture and colour from thin lines.
- `make_cyclegan_demo`: two unaligned texture domains, grass (A) and gravel (B).

Held-out data is never seen in training. holdout="regions" (default) splits every photo at 75 % of
its width: training crops lie wholly in the left part, test crops wholly in the right part, and each
crop is cut out before it is resized, so no source pixel is shared. holdout="photos" (pix2pix only)
keeps whole photos (rocket, flower) for the test split. `manifest.json` records each file's source
photo and crop box in source pixels. Everything is deterministic given `seed`. Calling again with
the same arguments reuses the files; other arguments (or an interrupted run) rewrite them.

Files are RGB PNGs (the grayscale inputs and textures repeated over three channels), so the default
3-channel models read them unchanged; channels=1 in the datasets recovers the exact grey values.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import GanforgeError
from .clusters import kmeans, nearest

MANIFEST = "manifest.json"
TRAIN_FRACTION = 0.75  # left part of each photo for training, the rest for testing (holdout="regions")
PIX2PIX_TASKS = ("labels", "colorize", "edges")
LABEL_CLASSES = 8
# Label colours in the manner of the facades / cityscapes maps: saturated, distinct, unrelated to the photos.
LABEL_PALETTE = ((0, 0, 170), (0, 85, 255), (0, 255, 255), (85, 255, 170), (170, 255, 85), (255, 255, 0),
                 (255, 85, 0), (170, 0, 0))
PIX2PIX_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "china", "flower")
HELD_OUT_PHOTOS = ("rocket", "flower")  # the test photos when holdout="photos"
CYCLEGAN_DOMAINS = ("grass", "gravel")


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        if name == "motorcycle":
            return skimage.data.stereo_motorcycle()[0]  # the left view, a bundled file
        return getattr(skimage.data, name)()

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")

    return load


SOURCES: dict[str, Callable[[], np.ndarray]] = {
    **{n: _skimage(n) for n in ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "grass", "gravel")},
    **{n: _sklearn(n) for n in ("china", "flower")},
}


def load_photo(name: str) -> np.ndarray:
    """One bundled source photo as a uint8 array: HxWx3 for colour photos, HxW for the textures."""
    if name not in SOURCES:
        raise GanforgeError(f"unknown demo photo {name!r} (known: {', '.join(sorted(SOURCES))})")
    arr = np.asarray(SOURCES[name]())
    if arr.dtype != np.uint8:
        raise GanforgeError(f"demo photo {name!r} is {arr.dtype}, expected uint8")
    return arr


def region(width: int, split: str) -> tuple[int, int]:
    """Columns [x0, x1) of a `width`-wide photo reserved for `split` under holdout="regions"."""
    cut = int(width * TRAIN_FRACTION)
    return (0, cut) if split == "train" else (cut, width)


def _random_box(rng: np.random.Generator, x0: int, x1: int, height: int, image_size: int) -> tuple[int, int, int, int]:
    """A random square (left, top, right, bottom) inside columns [x0, x1): 1x to 3x image_size on a side."""
    avail = min(x1 - x0, height)
    if avail < 8:
        raise GanforgeError(f"a photo region of {x1 - x0}x{height} px is too small for demo crops")
    lo, hi = min(image_size, avail), min(3 * image_size, avail)
    side = int(rng.integers(lo, hi + 1))
    left = int(rng.integers(x0, x1 - side + 1))
    top = int(rng.integers(0, height - side + 1))
    return left, top, left + side, top + side


def cut(photo: np.ndarray, box: tuple[int, int, int, int], image_size: int) -> Image.Image:
    """The crop `box` of `photo`, cut out first (so no pixel outside it is used) then resized."""
    img = Image.fromarray(photo).crop(box)
    shrink = img.width > image_size  # LANCZOS to shrink, BICUBIC to enlarge, as data.resize does
    return img.resize((image_size, image_size), Image.Resampling.LANCZOS if shrink else Image.Resampling.BICUBIC)


def edges(gray: Image.Image) -> Image.Image:
    """Canny edges of a grayscale image, drawn black on white."""
    from skimage.feature import canny

    e = canny(np.asarray(gray, dtype=np.float64) / 255.0, sigma=1.5)
    return Image.fromarray(np.where(e, 0, 255).astype(np.uint8))


def fit_colour_classes(images: list[Image.Image], k: int = LABEL_CLASSES, seed: int = 0, iters: int = 25,
                       sample: int = 20000) -> np.ndarray:
    """k colour-cluster centres (k x 3, float) of the pixels of `images`, ordered from dark to light.

    k-means (data.clusters) on a seeded sample of pixels: deterministic for a
    seed and independent of any library's version.
    """
    px = np.concatenate([np.asarray(im.convert("RGB"), dtype=np.float64).reshape(-1, 3) for im in images])
    rng = np.random.default_rng(seed)
    px = px[rng.choice(len(px), size=min(sample, len(px)), replace=False)]
    c = kmeans(px, k, rng, iters)
    return c[np.argsort(c @ np.array([0.299, 0.587, 0.114]))]


def label_map(img: Image.Image, centres: np.ndarray) -> Image.Image:
    """Each pixel's nearest colour class drawn in LABEL_PALETTE."""
    px = np.asarray(img.convert("RGB"), dtype=np.float64)
    lab = nearest(px.reshape(-1, 3), centres).reshape(px.shape[:2])
    return Image.fromarray(np.asarray(LABEL_PALETTE, dtype=np.uint8)[lab])


def _as_rgb(img: Image.Image) -> Image.Image:
    return img.convert("RGB")


def _prepare_root(root: Path, kind: str, params: dict, owned: tuple[str, ...]) -> dict | None:
    """The manifest if `root` already holds this exact, complete demo; else clear our old output."""
    path = root / MANIFEST
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("kind") != kind:
            raise GanforgeError(f"{root} holds something other than a {kind} (see {path}); choose another folder")
        if old.get("complete") and old.get("params") == params:
            return old
        for name in owned:  # ours: an older or interrupted demo
            shutil.rmtree(root / name, ignore_errors=True)
    elif any((root / name).exists() for name in owned):
        raise GanforgeError(
            f"{root} already has {'/'.join(owned)} folders not written by ganforge; choose another folder"
        )
    _write_manifest(root, {"kind": kind, "params": params, "complete": False})
    return None


def _write_manifest(root: Path, manifest: dict) -> dict:
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, root / MANIFEST)
    return manifest


def _check_sizes(image_size: int, counts: dict[str, int]) -> None:
    if image_size < 8:
        raise GanforgeError(f"demo image_size must be >= 8, got {image_size}")
    for name, n in counts.items():
        if n < 1:
            raise GanforgeError(f"{name} must be >= 1, got {n}")


def make_pix2pix_demo(
    root: str | os.PathLike,
    image_size: int = 64,
    n_train: int = 400,
    n_test: int = 50,
    task: str = "labels",
    holdout: str = "regions",
    seed: int = 0,
) -> dict:
    """Write paired demo crops to root/{train,test}/{A,B}/NNNN.png and return the manifest."""
    if task not in PIX2PIX_TASKS:
        raise GanforgeError(f"unknown pix2pix demo task {task!r} (known: {', '.join(PIX2PIX_TASKS)})")
    if holdout not in ("regions", "photos"):
        raise GanforgeError(f"holdout must be 'regions' or 'photos', got {holdout!r}")
    _check_sizes(image_size, {"n_train": n_train, "n_test": n_test})
    root = Path(root)
    params = dict(image_size=image_size, n_train=n_train, n_test=n_test, task=task, holdout=holdout, seed=seed)
    kind = "ganforge-pix2pix-demo"
    root.mkdir(parents=True, exist_ok=True)
    done = _prepare_root(root, kind, params, ("train", "test"))
    if done is not None:
        return done
    photos = {name: load_photo(name) for name in PIX2PIX_PHOTOS}
    rng = np.random.default_rng(seed)
    crops: dict[str, list[tuple[str, tuple[int, int, int, int], Image.Image]]] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        if holdout == "photos":
            names = [p for p in PIX2PIX_PHOTOS if (p in HELD_OUT_PHOTOS) == (split == "test")]
        else:
            names = list(PIX2PIX_PHOTOS)
        crops[split] = []
        for i in range(n):
            name = names[i % len(names)]
            photo = photos[name]
            h, w = photo.shape[:2]
            x0, x1 = region(w, split) if holdout == "regions" else (0, w)
            box = _random_box(rng, x0, x1, h, image_size)
            crops[split].append((name, box, cut(photo, box, image_size)))
    # The colour classes come from the training crops alone, so nothing of the held-out photos leaks in.
    centres = fit_colour_classes([c[2] for c in crops["train"]], seed=seed) if task == "labels" else None
    entries = []
    for split, items in crops.items():
        for folder in ("A", "B"):
            (root / split / folder).mkdir(parents=True, exist_ok=True)
        for i, (name, box, target) in enumerate(items):
            gray = target.convert("L")
            source = label_map(target, centres) if task == "labels" else edges(gray) if task == "edges" else gray
            fname = f"{i:04d}.png"
            _as_rgb(source).save(root / split / "A" / fname)
            target.save(root / split / "B" / fname)
            entries.append({"split": split, "file": fname, "photo": name, "box": list(box)})
    manifest = {
        "kind": kind, "params": params, "complete": True, "photos": list(PIX2PIX_PHOTOS),
        **({"colour_classes": np.round(centres, 3).tolist(), "palette": [list(c) for c in LABEL_PALETTE]}
           if centres is not None else {}),
        "train_fraction": TRAIN_FRACTION, "in_channels": 3, "out_channels": 3, "items": entries,
    }
    return _write_manifest(root, manifest)  # "complete" only once every file is written


def make_cyclegan_demo(
    root: str | os.PathLike,
    image_size: int = 64,
    n_train: int = 200,
    n_test: int = 50,
    seed: int = 0,
) -> dict:
    """Write unpaired grass (A) / gravel (B) texture crops to root/{train,test}{A,B}/ and return the manifest."""
    _check_sizes(image_size, {"n_train": n_train, "n_test": n_test})
    root = Path(root)
    params = dict(image_size=image_size, n_train=n_train, n_test=n_test, seed=seed)
    kind = "ganforge-cyclegan-demo"
    root.mkdir(parents=True, exist_ok=True)
    owned = ("trainA", "trainB", "testA", "testB")
    done = _prepare_root(root, kind, params, owned)
    if done is not None:
        return done
    rng = np.random.default_rng(seed)
    entries = []
    for domain, name in zip("AB", CYCLEGAN_DOMAINS):
        photo = load_photo(name)
        h, w = photo.shape[:2]
        for split, n in (("train", n_train), ("test", n_test)):
            folder = root / f"{split}{domain}"
            folder.mkdir(parents=True, exist_ok=True)
            x0, x1 = region(w, split)
            for i in range(n):
                box = _random_box(rng, x0, x1, h, image_size)
                fname = f"{i:04d}.png"
                _as_rgb(cut(photo, box, image_size)).save(folder / fname)
                entries.append({"split": split, "domain": domain, "file": fname, "photo": name, "box": list(box)})
    manifest = {
        "kind": kind, "params": params, "complete": True,
        "domains": {"A": CYCLEGAN_DOMAINS[0], "B": CYCLEGAN_DOMAINS[1]},
        "train_fraction": TRAIN_FRACTION, "channels_a": 3, "channels_b": 3, "items": entries,
    }
    return _write_manifest(root, manifest)
