"""Super-resolution data (SRGAN conventions): bicubic LR vs PIL, built-in photos, SRPairs, eval_pairs."""
import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge.data.superres import SRPairs, bicubic_downsample, builtin_photos, eval_pairs
from ganforge.errors import GanforgeError


@pytest.fixture(scope="module")
def astronaut():
    return np.ascontiguousarray(skimage.data.astronaut())  # 512x512 uint8 RGB


@pytest.fixture(scope="module")
def train_photos():
    return builtin_photos("train")


@pytest.fixture(scope="module")
def test_photos():
    return builtin_photos("test")


def _to_unit(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32))[None] / 127.5 - 1.0


def _to_255(x: torch.Tensor) -> np.ndarray:
    return ((x[0].double().numpy().transpose(1, 2, 0) + 1.0) * 127.5)


def test_matches_pil_bicubic_on_a_photo(astronaut):
    # Measured (astronaut, 4x, torch 0..255 vs PIL uint8): max 3.56, mean 0.24. Without antialias:
    # max 108, mean 5.4. Pure uint8 rounding alone gives mean ~0.25, max 0.5; the larger max comes
    # from PIL rounding AND clipping to uint8 between its horizontal and vertical passes, where the
    # cubic overshoots 0..255 at hard edges (intermediate range -9..265 here); see the next test.
    h, w = astronaut.shape[:2]
    ref = np.asarray(Image.fromarray(astronaut).resize((w // 4, h // 4), Image.BICUBIC)).astype(np.float64)
    ours = _to_255(bicubic_downsample(_to_unit(astronaut), 4))
    diff = np.abs(ours - ref)
    assert ours.shape == ref.shape
    assert diff.mean() < 0.35, diff.mean()
    assert diff.max() < 4.5, diff.max()
    assert (diff > 1.0).mean() < 0.005  # the clipped-overshoot pixels are rare


def test_pil_gap_is_its_intermediate_uint8_pass(astronaut):
    # Emulating PIL's two passes (horizontal, round+clip to uint8, vertical) leaves only rounding:
    # measured max 0.66; bound 0.5 (final rounding) + 0.5 * sum|cubic weights| (~1.07) for the first.
    h, w = astronaut.shape[:2]
    ref = np.asarray(Image.fromarray(astronaut).resize((w // 4, h // 4), Image.BICUBIC)).astype(np.float64)
    x = torch.from_numpy(astronaut.transpose(2, 0, 1).astype(np.float64))[None]
    kw = dict(mode="bicubic", antialias=True, align_corners=False)
    mid = F.interpolate(x, size=(h, w // 4), **kw).round().clamp(0, 255)
    two_pass = F.interpolate(mid, size=(h // 4, w // 4), **kw).clamp(0, 255)[0].numpy().transpose(1, 2, 0)
    assert np.abs(two_pass - ref).max() < 1.1


def test_downsample_shapes_range_and_constant():
    x = torch.rand(2, 3, 48, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = bicubic_downsample(x, 4)
    assert y.shape == (2, 3, 12, 10) and y.dtype == torch.float32
    assert float(y.min()) >= -1.0 and float(y.max()) <= 1.0
    for v in (-1.0, 0.3, 1.0):
        const = torch.full((1, 3, 32, 32), v)
        assert torch.allclose(bicubic_downsample(const, 4), torch.full((1, 3, 8, 8), v), atol=1e-6)


def test_downsample_bad_input():
    with pytest.raises(GanforgeError, match="not a multiple of scale 4"):
        bicubic_downsample(torch.zeros(1, 3, 30, 32), 4)
    with pytest.raises(GanforgeError, match="scale must be a positive integer"):
        bicubic_downsample(torch.zeros(1, 3, 32, 32), 0)
    with pytest.raises(GanforgeError, match=r"\[N, C, H, W\]"):
        bicubic_downsample(torch.zeros(3, 32, 32), 4)


def test_builtin_photos_rgb_range_and_disjoint(train_photos, test_photos):
    assert len(train_photos) >= 3 and len(test_photos) >= 2
    for img in train_photos + test_photos:
        assert img.dim() == 3 and img.shape[0] == 3 and min(img.shape[1:]) >= 256
        assert img.dtype == torch.float32 and float(img.min()) >= -1.0 and float(img.max()) <= 1.0
        assert not torch.equal(img[0], img[1])  # real colour, not grey repeated

    def thumb(img):  # 32x32 thumbnails: equal or near-duplicate photos (cat == chelsea) look alike
        return F.interpolate(img[None], size=(32, 32), mode="area")[0]

    # Measured: distinct photos differ by >= 0.43 (mean abs, [-1, 1] units); cat vs chelsea by 0,
    # the two stereo_motorcycle views by 0.19 (a near-duplicate that must not straddle the split).
    for a in test_photos:
        for b in train_photos:
            assert (thumb(a) - thumb(b)).abs().mean() > 0.3
    assert builtin_photos("test")[0] is not test_photos[0]  # fresh tensors each call


def test_builtin_photos_bad_split():
    with pytest.raises(GanforgeError, match="unknown split 'val'"):
        builtin_photos("val")


def test_srpairs_shapes_determinism_and_lr(train_photos):
    ds = SRPairs(train_photos, hr_size=96, scale=4, seed=3)
    area = sum(i.shape[1] * i.shape[2] for i in train_photos)
    assert len(ds) == round(area / 96**2)
    a, b, c = ds[5], ds[5], ds[6]
    assert set(a) == {"A", "B"}
    assert a["B"].shape == (3, 96, 96) and a["A"].shape == (3, 24, 24)
    assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])
    assert not torch.equal(a["B"], c["B"])
    assert not torch.equal(SRPairs(train_photos, seed=4)[5]["B"], a["B"])
    for i in range(8):
        item = ds[i]
        assert torch.equal(item["A"], bicubic_downsample(item["B"][None], 4)[0])
        assert float(item["B"].min()) >= -1 and float(item["B"].max()) <= 1


def _find_crop(img: torch.Tensor, crop: torch.Tensor) -> bool:
    """Whether `crop` [C,s,s] is a window of `img` [C,H,W] (matched on its first row, then checked)."""
    s = crop.shape[-1]
    rows = img.unfold(2, s, 1)  # [C, H, W-s+1, s]
    hits = (rows == crop[:, 0][:, None, None, :]).all(dim=-1).all(dim=0).nonzero()
    return any(torch.equal(img[:, t:t + s, l:l + s], crop) for t, l in hits.tolist())


def test_srpairs_flips_happen():
    img = torch.linspace(-1, 1, 3 * 40 * 50).reshape(3, 40, 50)  # no window equals a mirrored one
    ds = SRPairs([img], hr_size=16, scale=4, seed=0, length=40)
    plain = [_find_crop(img, ds[i]["B"]) for i in range(40)]
    flipped = [_find_crop(img, ds[i]["B"].flip(-1)) for i in range(40)]
    assert all(p != f for p, f in zip(plain, flipped))  # each crop is a window, plain or mirrored
    assert 8 <= sum(flipped) <= 32
    no_flip = SRPairs([img], hr_size=16, scale=4, seed=0, length=40, flip=False)
    assert all(_find_crop(img, no_flip[i]["B"]) for i in range(40))


def test_srpairs_bad_inputs():
    big, small = torch.zeros(3, 100, 100), torch.zeros(3, 100, 80)
    with pytest.raises(GanforgeError, match="image 1 is 100x80 px, smaller than the 96 px"):
        SRPairs([big, small])
    with pytest.raises(GanforgeError, match="hr_size 30 must be a multiple of scale 4"):
        SRPairs([big], hr_size=30)
    with pytest.raises(GanforgeError, match="no images"):
        SRPairs([])
    with pytest.raises(GanforgeError, match="length must be a positive integer"):
        SRPairs([big], length=0)


def test_eval_pairs(test_photos):
    pairs = eval_pairs(test_photos, 4)
    assert len(pairs) == len(test_photos)
    for (lr, hr), img in zip(pairs, test_photos):
        h, w = img.shape[1] // 4 * 4, img.shape[2] // 4 * 4
        assert hr.shape == (1, 3, h, w) and lr.shape == (1, 3, h // 4, w // 4)
        assert torch.equal(hr[0], img[:, :h, :w])
        assert torch.equal(lr, bicubic_downsample(hr, 4))


def test_srpairs_optional_vflip_rot90():
    img = torch.linspace(-1, 1, 3 * 40 * 50).reshape(3, 40, 50)
    ds = SRPairs([img], hr_size=16, scale=4, seed=0, length=40, flip=False, vflip=True, rot90=True)
    kinds = set()
    for i in range(40):
        hr = ds[i]["B"]
        assert torch.equal(ds[i]["A"], bicubic_downsample(hr[None], 4)[0])
        for k, undo in enumerate((lambda t: t, lambda t: t.flip(-2), lambda t: t.rot90(-1, (-2, -1)),
                                  lambda t: t.rot90(-1, (-2, -1)).flip(-2))):
            if _find_crop(img, undo(hr).contiguous()):
                kinds.add(k)
    assert kinds == {0, 1, 2, 3}
