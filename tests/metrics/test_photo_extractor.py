"""The shipped offline extractor `ganforge-photo-v1`: pinned weights, protocol, determinism, what its
FID/KID separate; and "auto", which must not switch to it by itself."""
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.data.translation_demo import load_photo, region
from ganforge.errors import GanforgeError
from ganforge.metrics import extractor_names, fid_from_features, get_extractor, kid
from ganforge.metrics import photo_extractor as pe
from ganforge.metrics import reference
from ganforge.metrics.inception_weights import INCEPTION_FILENAME
from ganforge.utils.hashing import sha256_file


@pytest.fixture(scope="module")
def ext():
    return get_extractor("ganforge-photo-v1")


def heldout_crops(name: str, parity: int, n: int, seed: int, size: int = 32, block: int = 64) -> torch.Tensor:
    """n crops from the right 25 % of a bundled photo (never trained on), inside the 64 px blocks of one
    colour of a checkerboard: the two parities share no pixel. 32-64 px cut out, resized to `size`."""
    p = load_photo(name)
    p = np.repeat(p[..., None], 3, 2) if p.ndim == 2 else p
    x = torch.from_numpy(p.copy()).permute(2, 0, 1).float() / 127.5 - 1
    h, w = x.shape[1:]
    x0, x1 = region(w, "test")
    blocks = [(r, c) for r in range(0, h - block + 1, block) for c in range(x0, x1 - block + 1, block)
              if (r // block + (c - x0) // block) % 2 == parity]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r, c = blocks[rng.integers(len(blocks))]
        side = int(rng.integers(size, block + 1))
        t, left = r + int(rng.integers(0, block - side + 1)), c + int(rng.integers(0, block - side + 1))
        out.append(F.interpolate(x[None, :, t:t + side, left:left + side], size=(size, size), mode="bilinear",
                                 antialias=True, align_corners=False)[0])
    return torch.stack(out)


def test_shipped_weights_are_pinned_small_and_registered(ext):
    path = pe.weights_path()
    assert sha256_file(path) == pe.WEIGHTS_SHA256 and path.stat().st_size < 300_000
    assert "ganforge-photo-v1" in extractor_names()
    d = ext.describe()
    assert d["name"] == "ganforge-photo-v1" and d["dim"] == 128 and d["input_size"] == 64
    assert d["weights_sha256"] == pe.WEIGHTS_SHA256 and "64" in d["resize_method"]
    assert not ext.has_logits  # no Inception Score from 18 photo classes
    with pytest.raises(GanforgeError, match="no class logits"):
        ext.logits(torch.zeros(1, 3, 32, 32))


def test_a_changed_weight_file_is_refused_in_one_line(tmp_path, monkeypatch):
    bad = tmp_path / pe.WEIGHTS_NAME
    shutil.copy(pe.weights_path(), bad)
    data = bytearray(bad.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(pe, "weights_path", lambda: bad)
    with pytest.raises(GanforgeError, match="SHA-256") as e:
        get_extractor("ganforge-photo-v1")
    assert "\n" not in str(e.value) and pe.WEIGHTS_SHA256 in str(e.value)


def test_the_network_recognises_heldout_crops():
    # It was trained: crops of the right 25 % of each photo, never seen, are told apart.
    net = pe.load_photo_net()
    names = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle", "china", "flower", "grass", "gravel"]
    x = torch.cat([heldout_crops(n, parity, 10, seed=parity, size=64) for n in names for parity in (0, 1)])
    y = torch.tensor([pe.PHOTOS.index(n) for n in names for _ in range(20)])
    with torch.no_grad():
        acc = (net(x)[0].argmax(1) == y).float().mean().item()
    assert acc >= 0.8


def test_features_are_deterministic_and_do_not_depend_on_the_batch(ext):
    x = heldout_crops("astronaut", 0, 24, seed=0)
    f = ext.features(x)
    assert f.shape == (24, 128) and f.dtype == torch.float32
    ext.train()  # stays in eval mode: stored batch-norm statistics
    assert not ext.training
    assert torch.equal(ext.features(x), f)
    assert torch.allclose(ext.features(x[5:6]), f[5:6], atol=1e-5)
    # the protocol: grey is repeated to RGB; any size is resized to 64 px (bilinear, antialiased)
    grey = x.mean(1, keepdim=True)
    assert torch.equal(ext.features(grey), ext.features(grey.expand(-1, 3, -1, -1)))
    up = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(ext.features(up), f)
    assert torch.equal(ext.features(((x + 1) * 127.5).round().to(torch.uint8)),
                       ext.features(((x + 1) * 127.5).round() / 127.5 - 1))
    with pytest.raises(GanforgeError, match="1- or 3-channel"):
        ext.features(torch.zeros(2, 4, 32, 32))


def _fid_kid(ext, a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    fa, fb = ext.features(a).numpy(), ext.features(b).numpy()
    return fid_from_features(fa, fb), kid(fa, fb, subset_size=100)["kid_mean"]


@pytest.mark.filterwarnings("ignore:FID from")
def test_fid_and_kid_separate_photos_not_crops_of_the_same_photo(ext):
    n = 150
    grass = [heldout_crops("grass", p, n, seed=p) for p in (0, 1)]
    gravel = [heldout_crops("gravel", p, n, seed=p) for p in (0, 1)]
    same_grass, same_gravel = _fid_kid(ext, *grass), _fid_kid(ext, *gravel)
    across = _fid_kid(ext, grass[0], gravel[1])
    assert across[0] > 5 * max(same_grass[0], same_gravel[0])
    assert across[1] > 5 * max(same_grass[1], same_gravel[1])
    # colour photos: a mixture against a disjoint mixture of the same photos, and against its grey version
    names = ["astronaut", "coffee", "chelsea", "rocket", "china", "flower"]
    mix = [torch.cat([heldout_crops(nm, p, n // 3, seed=p) for nm in names]) for p in (0, 1)]
    same_mix = _fid_kid(ext, *mix)
    grey = _fid_kid(ext, mix[0], mix[1].mean(1, keepdim=True))
    assert grey[0] > 5 * same_mix[0] and grey[1] > 5 * same_mix[1]
    # texture, not only colour: blurring grass keeps its mean colour but must read as different
    blurred = F.avg_pool2d(F.pad(grass[1], (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    blur = _fid_kid(ext, grass[0], blurred)
    assert blur[0] > 5 * same_grass[0] and blur[1] > 5 * same_grass[1]
    # and the numbers are reproducible
    assert _fid_kid(ext, *grass) == same_grass


def test_auto_never_switches_to_the_offline_extractor(tmp_path, monkeypatch):
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)
    monkeypatch.delenv("GANFORGE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no weights at the default fetch location either
    with pytest.raises(GanforgeError) as e:
        reference.choose_extractor("auto", 3, None, "cpu")
    msg = str(e.value)
    assert "ganforge weights fetch inception" in msg and "--extractor ganforge-photo-v1" in msg and "\n" not in msg
    assert reference.choose_extractor("ganforge-photo-v1", 3, None, "cpu").name == "ganforge-photo-v1"
    # Inception stays the default when its file is where `ganforge weights fetch inception` puts it
    default = tmp_path / ".cache" / "ganforge" / "weights" / INCEPTION_FILENAME
    default.parent.mkdir(parents=True)
    default.write_bytes(b"not really weights")
    built = {}
    monkeypatch.setattr(reference, "get_extractor", lambda name, **kw: built.update(name=name, **kw))
    reference.choose_extractor("auto", 3, None, "cpu")
    assert built == {"name": "inception", "weights": str(default), "device": "cpu"}
    monkeypatch.setenv("GANFORGE_INCEPTION", str(tmp_path / "elsewhere.pth"))  # the variable wins, and must exist
    with pytest.raises(GanforgeError, match="elsewhere.pth.*ganforge-photo-v1"):
        reference.choose_extractor("auto", 3, None, "cpu")
