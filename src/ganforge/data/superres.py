"""Data for 4x single-image super-resolution in the manner of SRGAN (Ledig et al., 2017).

Conventions (as in the paper): the low-resolution (LR) input is the bicubic downsampling of the
high-resolution (HR) image by `scale` (4); training uses random `hr_size` x `hr_size` HR crops (96 px,
so 24 px LR) and their LR versions, made on the fly. Images are float tensors in [-1, 1], [C, H, W]
for one image and [N, C, H, W] for a batch, as everywhere in `ganforge.data`.

- `bicubic_downsample`: bicubic, antialiased (PIL-style cubic, a = -0.5, widened by `scale` on
  downscale), clamped to [-1, 1] as a uint8 image would be. It agrees with PIL's
  `Image.resize(..., BICUBIC)` to within PIL's uint8 rounding (see tests/data/test_superres.py).
- `builtin_photos(split)`: real colour photos bundled with scikit-image (no download). Whole photos
  are held out: TEST_PHOTOS never appear in TRAIN_PHOTOS. Left out on purpose: `cat` (the same photo
  as `chelsea`), the right view of `stereo_motorcycle` (near-duplicate of the left), grayscale images
  (brick, grass, gravel, camera, ... : no colour to super-resolve), synthetic `colorwheel` and `logo`,
  and `retina` (a large, mostly black fundus image); the files of `skin`, `lily`, ... need a download.
- `SRPairs`: items `{"A": lr, "B": hr}` -- the keys of the pix2pix `PairedDataset`, where "A" is the
  input and "B" the target (direction AtoB). The HR crop is cut first and then downsampled, so the LR
  image sees only the crop's pixels (cubic taps are clamped at the crop border). Item `index` draws
  everything (which image, where, which flips) from `paired.sample_generator(seed, epoch, index)`:
  the same index gives the same pair in any worker; call `set_epoch` for fresh crops each epoch.
- `eval_pairs`: whole held-out images, cropped at the top left to multiples of `scale`, with their LR.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import GanforgeError
from .paired import sample_generator

SPLITS = ("train", "test")
# Whole photos per split. Test: a cat (fur, whiskers: fine texture) and a motorcycle (man-made edges,
# text, specular metal) -- two different kinds of high-frequency detail, neither seen in training.
TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
TEST_PHOTOS = ("chelsea", "motorcycle")
MIN_PHOTO_SIDE = 256


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GanforgeError(f"{name} must be a positive integer, not {value!r}")
    return value


def bicubic_downsample(hr: Tensor, scale: int) -> Tensor:
    """[N, C, H, W] in [-1, 1] -> [N, C, H/scale, W/scale]: antialiased bicubic, clamped to [-1, 1]."""
    scale = _positive_int(scale, "scale")
    if hr.dim() != 4 or not hr.is_floating_point():
        raise GanforgeError(f"expected a float [N, C, H, W] tensor, got {hr.dtype} {tuple(hr.shape)}")
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise GanforgeError(f"image size {h}x{w} is not a multiple of scale {scale}; crop it first")
    if scale == 1:
        return hr.clone()
    lr = F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)
    return lr.clamp(-1.0, 1.0)


def _load_skimage(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]  # the left view
    return getattr(skimage.data, name)()


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    arr = np.asarray(_load_skimage(name))
    ok = arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3 and min(arr.shape[:2]) >= MIN_PHOTO_SIDE
    if not ok:  # a changed scikit-image; guards the promise "RGB, >= 256 px a side"
        raise GanforgeError(f"skimage photo {name!r} is {arr.dtype} {arr.shape}, expected uint8 RGB >= 256 px")
    arr.setflags(write=False)
    return arr


def as_float(img: Tensor) -> Tensor:
    """An image kept as uint8 (0..255) or float (already in [-1, 1]) as float32 in [-1, 1]."""
    if img.dtype == torch.uint8:
        return img.float() / 127.5 - 1.0
    return img.float()


def _to_tensor(arr: np.ndarray) -> Tensor:
    """uint8 HxWx3 -> float32 [3, H, W] in [-1, 1]."""
    return torch.from_numpy(arr.transpose(2, 0, 1).astype(np.float32)) / 127.5 - 1.0


def builtin_photos(split: str) -> list[Tensor]:
    """The bundled colour photos of `split` ("train" or "test") as float32 [3, H, W] tensors in [-1, 1]."""
    if split not in SPLITS:
        raise GanforgeError(f"unknown split {split!r} (choose from train, test)")
    names = TRAIN_PHOTOS if split == "train" else TEST_PHOTOS
    return [_to_tensor(_photo(n)) for n in names]


def _check_images(images: list[Tensor], min_side: int) -> None:
    if len(images) == 0:
        raise GanforgeError("no images given")
    for i, img in enumerate(images):
        if not isinstance(img, Tensor) or img.dim() != 3:
            raise GanforgeError(f"image {i} must be a [C, H, W] tensor, got {getattr(img, 'shape', type(img))}")
        h, w = img.shape[-2:]
        if h < min_side or w < min_side:
            raise GanforgeError(f"image {i} is {h}x{w} px, smaller than the {min_side} px needed")


def _default_length(images: list[Tensor], hr_size: int) -> int:
    """Crops that cover every image's area about once (at least one per image)."""
    area = sum(img.shape[-2] * img.shape[-1] for img in images)
    return max(len(images), round(area / hr_size**2))


class SRPairs(Dataset):
    """Random HR crops with their bicubic LR versions: items {"A": lr [C, s/r, s/r], "B": hr [C, s, s]}.

    `images` are [C, H, W] tensors, float in [-1, 1] or uint8 (0..255: a quarter of the memory for large
    photo folders; each crop is converted on the fly).

    Images are chosen with probability proportional to their area. Images smaller than `hr_size`
    on a side are refused (GanforgeError naming the image), not skipped.
    """

    def __init__(
        self,
        images: list[Tensor],
        hr_size: int = 96,
        scale: int = 4,
        flip: bool = True,
        seed: int = 0,
        length: int | None = None,
        *,
        vflip: bool = False,
        rot90: bool = False,
    ) -> None:
        self.scale = _positive_int(scale, "scale")
        self.hr_size = _positive_int(hr_size, "hr_size")
        if hr_size % scale:
            raise GanforgeError(f"hr_size {hr_size} must be a multiple of scale {scale}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise GanforgeError(f"seed must be an integer >= 0, not {seed!r}")
        _check_images(images, hr_size)
        self.images = list(images)
        self.length = _default_length(self.images, hr_size) if length is None else _positive_int(length, "length")
        self.flip, self.vflip, self.rot90, self.seed, self.epoch = flip, vflip, rot90, seed, 0
        self._weights = torch.tensor([float(img.shape[-2] * img.shape[-1]) for img in self.images])

    def set_epoch(self, epoch: int) -> None:
        """Draw different crops for a new epoch (index -> pair stays deterministic within an epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def _crop(self, gen: torch.Generator) -> Tensor:
        img = self.images[int(torch.multinomial(self._weights, 1, generator=gen))]
        h, w, s = img.shape[-2], img.shape[-1], self.hr_size
        top = int(torch.randint(0, h - s + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - s + 1, (1,), generator=gen))
        return as_float(img[:, top:top + s, left:left + s])

    def _augment(self, hr: Tensor, gen: torch.Generator) -> Tensor:
        draws = torch.rand(3, generator=gen)  # always three draws, so options do not shift the stream
        if self.flip and draws[0] < 0.5:
            hr = hr.flip(-1)
        if self.vflip and draws[1] < 0.5:
            hr = hr.flip(-2)
        if self.rot90 and draws[2] < 0.5:
            hr = hr.rot90(1, (-2, -1))
        return hr

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} pairs")
        gen = sample_generator(self.seed, self.epoch, index)
        hr = self._augment(self._crop(gen), gen).contiguous()
        lr = bicubic_downsample(hr[None], self.scale)[0]
        return {"A": lr, "B": hr}


def eval_pairs(images: list[Tensor], scale: int = 4) -> list[tuple[Tensor, Tensor]]:
    """Whole images cut at the top left to multiples of `scale`: [(lr [1, C, h, w], hr [1, C, h*scale, w*scale])]."""
    scale = _positive_int(scale, "scale")
    _check_images(images, scale)
    pairs = []
    for img in images:
        h, w = img.shape[-2] // scale * scale, img.shape[-1] // scale * scale
        hr = as_float(img[None, :, :h, :w]).contiguous()
        pairs.append((bicubic_downsample(hr, scale), hr))
    return pairs


# ---- sources: the built-in photos or a folder of high-resolution images --------------------------------
DEMO_SOURCE = "demo:photos"
HELD_OUT_SPLITS = ("test", "val")


@dataclass
class SRSource:
    """High-resolution images of one split, where they came from, and the files left out (and why)."""

    images: list[Tensor]
    where: str
    split: str
    corrupt: list[str] = field(default_factory=list)
    small: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: source, split, image count and sizes, files left out."""
        sides = [min(img.shape[-2:]) for img in self.images]
        mp = sum(img.shape[-2] * img.shape[-1] for img in self.images) / 1e6
        return (f"{self.where} [{self.split}]: {len(self.images)} HR image(s), {mp:.1f} megapixels, shortest side "
                f"{min(sides)} px; {len(self.corrupt)} unreadable and {len(self.small)} too small skipped")


def _split_files(root: Path, split: str) -> list[Path] | None:
    """Image files of `split`: everything under ROOT/split, or for train the images of ROOT outside test/val."""
    from .decode import IMAGE_EXTENSIONS

    def images_under(folder: Path, skip_top: tuple[str, ...] = ()) -> list[Path]:
        return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                      and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                      and p.relative_to(folder).parts[0] not in skip_top)

    if (root / split).is_dir():
        return images_under(root / split)
    if split == "train":
        return images_under(root, skip_top=HELD_OUT_SPLITS)
    return None


def _read_hr(path: Path, channels: int) -> Tensor:
    """One file as [C, H, W]: uint8 for 8-bit images, float32 in [-1, 1] for 16-bit ones (no precision lost)."""
    from .decode import decode_image

    with open(path, "rb") as fp:
        arr = decode_image(fp, channels, None, "none")
    if arr.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(arr))
    return torch.from_numpy(arr.astype(np.float32)) / 127.5 - 1.0


def load_sr_split(source: str, split: str, channels: int, min_side: int) -> SRSource | None:
    """The HR images of `split` of a source (demo:photos or a folder); None when the split does not exist.

    Unreadable files and images smaller than `min_side` (the HR crop) are skipped and counted."""
    from .decode import DecodeError

    if source == DEMO_SOURCE:
        if split not in SPLITS:
            return None
        imgs = builtin_photos(split)
        if channels == 1:  # ITU-R 601 luma, as data.convert does for files
            w = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
            imgs = [(img * w).sum(0, keepdim=True) for img in imgs]
        names = TRAIN_PHOTOS if split == "train" else TEST_PHOTOS
        return SRSource(imgs, f"{DEMO_SOURCE} ({', '.join(names)})", split)
    if source.startswith("demo:"):
        raise GanforgeError(f"unknown super-resolution demo {source!r} (built-in: {DEMO_SOURCE})")
    root = Path(source).expanduser()
    if not root.is_dir():
        raise GanforgeError(f"super-resolution data must be a folder of high-resolution images or {DEMO_SOURCE}; "
                            f"{root} is not a folder")
    files = _split_files(root, split)
    if files is None:
        return None
    out = SRSource([], str(root), split)
    for f in files:
        try:
            img = _read_hr(f, channels)
        except (DecodeError, OSError) as e:
            out.corrupt.append(f"{f} ({e})")
            continue
        if min(img.shape[-2:]) < min_side:
            out.small.append(f"{f} ({img.shape[-1]}x{img.shape[-2]})")
            continue
        out.images.append(img)
    if not out.images:
        why = f"{len(files)} image file(s), {len(out.corrupt)} unreadable, {len(out.small)} smaller than {min_side} px"
        raise GanforgeError(f"no usable high-resolution images in {root} [{split}] ({why})")
    return out
