"""Image grids and [-1, 1] <-> uint8 conversions: every snapshot and `ganforge sample` grid goes through them."""
import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.utils.images import from_uint8, make_grid, save_grid, save_image, to_uint8


def _flat(n, c=1, h=3, w=2):
    """n images, image i filled with the value -1 + i / 10 (distinct, inside [-1, 1])."""
    return torch.stack([torch.full((c, h, w), -1 + i / 10) for i in range(n)])


def test_grid_layout_padding_and_row_count():
    imgs = _flat(5)
    g = make_grid(imgs, nrow=2, padding=1)
    # 2 per row, 3 rows; 1 px padding around and between, filled with white (+1)
    assert g.shape == (1, 3 * (3 + 1) + 1, 2 * (2 + 1) + 1)
    for i in range(5):
        r, k = divmod(i, 2)
        y, x = 1 + r * 4, 1 + k * 3
        assert torch.equal(g[:, y:y + 3, x:x + 2], imgs[i]), i
    mask = torch.ones_like(g, dtype=torch.bool)
    for i in range(5):
        r, k = divmod(i, 2)
        mask[:, 1 + r * 4:4 + r * 4, 1 + k * 3:3 + k * 3] = False
    assert torch.all(g[mask] == 1.0)  # padding and the empty last cell are white
    # fewer images than nrow: one row, as wide as the images
    assert make_grid(_flat(3), nrow=8, padding=2).shape == (1, 3 + 4, 3 * 4 + 2)


def test_uint8_round_trip_rounds_and_clamps():
    x = torch.tensor([[[-1.0, -0.999, 0.0, 0.5], [1.0, 2.0, -3.0, 0.004]]])  # [1, 2, 4]
    arr = to_uint8(x)
    assert arr.dtype == np.uint8 and arr.shape == (2, 4)  # one channel: a 2-D array
    assert arr.tolist() == [[0, 0, 128, 191], [255, 255, 0, 128]]  # (x + 1) * 127.5, rounded, clamped
    rgb = to_uint8(torch.zeros(3, 2, 2).index_fill_(0, torch.tensor([1]), 1.0))
    assert rgb.shape == (2, 2, 3) and rgb[0, 0].tolist() == [128, 255, 128]  # channels last
    back = from_uint8(np.arange(256, dtype=np.uint8).reshape(16, 16))
    assert back.shape == (1, 16, 16) and back.min() == -1 and back.max() == 1
    assert torch.equal(torch.from_numpy(to_uint8(back).astype(np.int64)), torch.arange(256).view(16, 16))


def test_saved_grid_and_image_hold_the_pixels(tmp_path):
    imgs = torch.rand(3, 3, 4, 5) * 2 - 1
    p = save_grid(imgs, tmp_path / "g.png", nrow=2)
    got = np.asarray(Image.open(p))
    assert np.array_equal(got, to_uint8(make_grid(imgs, nrow=2)))
    q = save_image(imgs[0], tmp_path / "one.bmp")
    assert Image.open(q).format == "BMP" and np.array_equal(np.asarray(Image.open(q)), to_uint8(imgs[0]))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["g.png", "one.bmp"]  # no temporary files left


def test_grid_needs_a_batch():
    with pytest.raises(ValueError):
        make_grid(torch.zeros(3, 4, 4))
