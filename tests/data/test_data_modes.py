"""Every PIL mode converts to the documented values (alpha on black, 16-bit scaled, luma, repetition)."""
import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import build_dataset
from ganforge.data.convert import convert_channels_array


def v(x: float) -> float:
    """0..255 value -> [-1, 1]."""
    return x / 127.5 - 1.0


def load_one(folder, **kw) -> torch.Tensor:
    ds = build_dataset(str(folder), **kw)
    assert len(ds) == 1 and ds.skipped == 0
    return ds[0][0]


def test_L(tmp_path, save, decode_mode):
    save(Image.new("L", (3, 2), 100), tmp_path / "a.png")
    x = load_one(tmp_path)
    assert x.shape == (1, 2, 3)
    assert torch.allclose(x, torch.full_like(x, v(100)))


def test_LA_composited_on_black(tmp_path, save, decode_mode):
    img = Image.new("LA", (3, 1))
    img.putpixel((0, 0), (200, 0))      # transparent -> black
    img.putpixel((1, 0), (200, 255))    # opaque -> 200
    img.putpixel((2, 0), (200, 128))    # half -> ~100
    save(img, tmp_path / "a.png")
    x = load_one(tmp_path)[0, 0]
    assert x[0] == -1.0
    assert x[1] == pytest.approx(v(200))
    assert x[2] == pytest.approx(v(200 * 128 / 255), abs=1 / 127.5)


def test_P_with_transparency(tmp_path, save, decode_mode):
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((0, 0), 0)  # red, opaque
    img.putpixel((1, 0), 1)  # green, but palette index 1 is transparent
    save(img, tmp_path / "a.png", transparency=1)
    x = load_one(tmp_path)
    assert x.shape == (3, 1, 2)
    assert x[:, 0, 0].tolist() == [1.0, -1.0, -1.0]
    assert x[:, 0, 1].tolist() == [-1.0, -1.0, -1.0]  # not green: alpha was honoured


def test_P_without_transparency(tmp_path, save):
    img = Image.new("P", (1, 1))
    img.putpalette([10, 20, 30] + [0] * 765)
    save(img, tmp_path / "a.png")
    x = load_one(tmp_path)
    assert torch.allclose(x[:, 0, 0], torch.tensor([v(10), v(20), v(30)]))


def test_RGBA_composited_on_black(tmp_path, save, decode_mode):
    img = Image.new("RGBA", (2, 1))
    img.putpixel((0, 0), (255, 255, 255, 0))
    img.putpixel((1, 0), (0, 255, 0, 255))
    save(img, tmp_path / "a.png")
    x = load_one(tmp_path)
    assert x[:, 0, 0].tolist() == [-1.0, -1.0, -1.0]
    assert x[:, 0, 1].tolist() == [-1.0, 1.0, -1.0]


def test_CMYK(tmp_path, save, decode_mode):
    save(Image.new("CMYK", (2, 2), (0, 255, 255, 0)), tmp_path / "a.tiff")
    x = load_one(tmp_path)
    assert x.shape == (3, 2, 2)
    assert x[:, 0, 0].tolist() == [1.0, -1.0, -1.0]  # pure red


def test_I16_scaled_not_clipped(tmp_path, save, decode_mode):
    img = Image.new("I;16", (3, 1))
    for i, val in enumerate((0, 32768, 65535)):
        img.putpixel((i, 0), val)
    save(img, tmp_path / "a.png")
    x = load_one(tmp_path)[0, 0]
    assert x[0] == -1.0
    assert abs(float(x[1])) < 1e-3  # 32768/65535 of full scale, kept at 16-bit precision
    assert x[2] == 1.0


def test_I32_treated_as_16_bit(tmp_path, save):
    arr = np.array([[0, 32768, 65535]], dtype=np.int32)
    save(Image.fromarray(arr), tmp_path / "a.tiff")
    x = load_one(tmp_path)[0, 0]
    assert x.tolist()[0] == -1.0 and abs(float(x[1])) < 1e-3 and float(x[2]) == 1.0


def test_I16_to_three_channels_and_resized(tmp_path, save):
    img = Image.new("I;16", (4, 4), 65535)
    save(img, tmp_path / "a.png")
    x = load_one(tmp_path, channels=3, image_size=8)
    assert x.shape == (3, 8, 8)
    assert torch.allclose(x, torch.ones_like(x), atol=1e-5)


def test_F_unit_range(tmp_path, save):
    arr = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    save(Image.fromarray(arr), tmp_path / "a.tiff")
    x = load_one(tmp_path)[0, 0]
    assert x.tolist() == pytest.approx([-1.0, 0.0, 1.0], abs=1e-6)


def test_one_bit(tmp_path, save, decode_mode):
    img = Image.new("1", (2, 1), 0)
    img.putpixel((1, 0), 1)
    save(img, tmp_path / "a.png")
    x = load_one(tmp_path)
    assert x[0, 0].tolist() == [-1.0, 1.0]


def test_rgb_to_one_channel_is_601_luma(tmp_path, save, decode_mode):
    img = Image.new("RGB", (3, 1))
    for i, c in enumerate(((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        img.putpixel((i, 0), c)
    save(img, tmp_path / "a.png")
    x = load_one(tmp_path, channels=1)
    # 0.299, 0.587, 0.114 of 255, rounded as PIL does
    assert x[0, 0].tolist() == pytest.approx([v(76), v(150), v(29)])


def test_gray_to_three_channels_repeats(tmp_path, save, decode_mode):
    save(Image.new("L", (2, 2), 77), tmp_path / "a.png")
    x = load_one(tmp_path, channels=3)
    assert x.shape == (3, 2, 2) and torch.allclose(x, torch.full_like(x, v(77)))


def test_mixed_modes_default_to_three_channels(tmp_path, save):
    save(Image.new("L", (2, 2), 10), tmp_path / "a.png")
    save(Image.new("RGB", (2, 2), (1, 2, 3)), tmp_path / "b.png")
    ds = build_dataset(str(tmp_path))
    assert ds.channels == 3 and ds[0][0].shape == (3, 2, 2)
    assert torch.allclose(ds[0][0], torch.full((3, 2, 2), v(10)))
    assert build_dataset(str(tmp_path), channels=1).channels == 1


def test_vectorized_luma_matches_pil_bit_for_bit():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (50, 3, 7, 5), dtype=np.uint8)
    ours = convert_channels_array(rgb, 1)
    for i in range(50):
        ref = np.asarray(Image.fromarray(rgb[i].transpose(1, 2, 0)).convert("L"))
        assert np.array_equal(ours[i, 0], ref)
    assert np.array_equal(convert_channels_array(ours, 3)[:, 2], ours[:, 0])
