"""The FID Inception extractor: key layout of the published weight file, strict loading, hash pinning,
the TF-specific pooling variants, the pytorch-fid resize, and output shapes (random weights, 2 images)."""
import functools
import hashlib

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.metrics import INCEPTION_FILENAME, INCEPTION_SHA256, InceptionExtractor, get_extractor


def conv_shapes():
    """Conv weight shapes [out, in, kh, kw] of every BasicConv2d, transcribed from the
    torchvision/pytorch-fid Inception3 definition (the key layout of pt_inception-2015-12-05)."""
    s = {"Conv2d_1a_3x3": (32, 3, 3, 3), "Conv2d_2a_3x3": (32, 32, 3, 3), "Conv2d_2b_3x3": (64, 32, 3, 3),
         "Conv2d_3b_1x1": (80, 64, 1, 1), "Conv2d_4a_3x3": (192, 80, 3, 3)}
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        s.update({f"{name}.branch1x1": (64, cin, 1, 1), f"{name}.branch5x5_1": (48, cin, 1, 1),
                  f"{name}.branch5x5_2": (64, 48, 5, 5), f"{name}.branch3x3dbl_1": (64, cin, 1, 1),
                  f"{name}.branch3x3dbl_2": (96, 64, 3, 3), f"{name}.branch3x3dbl_3": (96, 96, 3, 3),
                  f"{name}.branch_pool": (pool, cin, 1, 1)})
    s.update({"Mixed_6a.branch3x3": (384, 288, 3, 3), "Mixed_6a.branch3x3dbl_1": (64, 288, 1, 1),
              "Mixed_6a.branch3x3dbl_2": (96, 64, 3, 3), "Mixed_6a.branch3x3dbl_3": (96, 96, 3, 3)})
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        s.update({f"{name}.branch1x1": (192, 768, 1, 1), f"{name}.branch7x7_1": (c7, 768, 1, 1),
                  f"{name}.branch7x7_2": (c7, c7, 1, 7), f"{name}.branch7x7_3": (192, c7, 7, 1),
                  f"{name}.branch7x7dbl_1": (c7, 768, 1, 1), f"{name}.branch7x7dbl_2": (c7, c7, 7, 1),
                  f"{name}.branch7x7dbl_3": (c7, c7, 1, 7), f"{name}.branch7x7dbl_4": (c7, c7, 7, 1),
                  f"{name}.branch7x7dbl_5": (192, c7, 1, 7), f"{name}.branch_pool": (192, 768, 1, 1)})
    s.update({"Mixed_7a.branch3x3_1": (192, 768, 1, 1), "Mixed_7a.branch3x3_2": (320, 192, 3, 3),
              "Mixed_7a.branch7x7x3_1": (192, 768, 1, 1), "Mixed_7a.branch7x7x3_2": (192, 192, 1, 7),
              "Mixed_7a.branch7x7x3_3": (192, 192, 7, 1), "Mixed_7a.branch7x7x3_4": (192, 192, 3, 3)})
    for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        s.update({f"{name}.branch1x1": (320, cin, 1, 1), f"{name}.branch3x3_1": (384, cin, 1, 1),
                  f"{name}.branch3x3_2a": (384, 384, 1, 3), f"{name}.branch3x3_2b": (384, 384, 3, 1),
                  f"{name}.branch3x3dbl_1": (448, cin, 1, 1), f"{name}.branch3x3dbl_2": (384, 448, 3, 3),
                  f"{name}.branch3x3dbl_3a": (384, 384, 1, 3), f"{name}.branch3x3dbl_3b": (384, 384, 3, 1),
                  f"{name}.branch_pool": (192, cin, 1, 1)})
    return s


def standard_state_dict(with_num_batches_tracked=True):
    """Random weights in the published file's layout (a fresh dict of shared tensors)."""
    sd = dict(_random_state_dict())
    if not with_num_batches_tracked:
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    return sd


@functools.lru_cache(maxsize=1)
def _random_state_dict():
    """Random weights in the published file's layout, scaled so activations stay O(1)."""
    g = torch.Generator().manual_seed(0)
    sd = {}
    for prefix, shape in conv_shapes().items():
        fan_in = shape[1] * shape[2] * shape[3]
        c = shape[0]
        sd[f"{prefix}.conv.weight"] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        sd[f"{prefix}.bn.weight"] = 1 + 0.1 * torch.randn(c, generator=g)
        sd[f"{prefix}.bn.bias"] = 0.1 * torch.randn(c, generator=g)
        sd[f"{prefix}.bn.running_mean"] = 0.1 * torch.randn(c, generator=g)
        sd[f"{prefix}.bn.running_var"] = 1 + torch.rand(c, generator=g)
        sd[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(0)
    sd["fc.weight"] = 0.05 * torch.randn(1008, 2048, generator=g)
    sd["fc.bias"] = torch.randn(1008, generator=g)
    return sd


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / INCEPTION_FILENAME
    sd = standard_state_dict()
    torch.save(sd, path)
    return path, sd


@pytest.fixture(scope="module")
def extractor(weights):
    path, _ = weights
    return InceptionExtractor(weights=path, expected_sha256=sha(path))


def test_layout_matches_the_published_parameter_count(weights):
    _, sd = weights
    # torchvision's inception_v3 has 27,161,264 parameters; minus AuxLogits (3,326,696) plus the
    # 8 extra classes of the TF graph's 1008-way fc (8*2048 + 8): 23,850,960.
    params = sum(v.numel() for k, v in sd.items() if not k.endswith(("running_mean", "running_var", "tracked")))
    assert params == 23_850_960


def test_loads_strictly_every_tensor(weights, extractor):
    _, sd = weights
    loaded = extractor.net.state_dict()
    assert set(loaded) == set(sd)
    for key, value in sd.items():
        assert torch.equal(loaded[key], value), key
    assert extractor.weights_sha256 == sha(weights[0])
    assert not any(p.requires_grad for p in extractor.parameters())


def test_forward_shapes_resize_and_tf_pooling(extractor):
    g = torch.Generator().manual_seed(1)
    images = torch.rand(2, 1, 16, 12, generator=g) * 2 - 1  # one channel, not square, not 299
    seen = {}

    def keep_input(name):
        return lambda module, args: seen.__setitem__(name, args[0].detach().clone())

    net = extractor.net
    hooks = [net.Conv2d_1a_3x3.register_forward_pre_hook(keep_input("stem")),
             net.Mixed_5b.register_forward_pre_hook(keep_input("5b")),
             net.Mixed_5b.branch_pool.register_forward_pre_hook(keep_input("5b_pool")),
             net.Mixed_6b.register_forward_pre_hook(keep_input("6b")),
             net.Mixed_6b.branch_pool.register_forward_pre_hook(keep_input("6b_pool")),
             net.Mixed_7b.register_forward_pre_hook(keep_input("7b")),
             net.Mixed_7b.branch_pool.register_forward_pre_hook(keep_input("7b_pool")),
             net.Mixed_7c.register_forward_pre_hook(keep_input("7c")),
             net.Mixed_7c.branch_pool.register_forward_pre_hook(keep_input("7c_pool")),
             net.Mixed_7c.register_forward_hook(lambda m, a, out: seen.__setitem__("7c_out", out.clone()))]
    try:
        feats, logits = extractor.features_and_logits(images)
    finally:
        for h in hooks:
            h.remove()

    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(feats).all() and torch.isfinite(logits).all() and feats.std() > 0

    # pytorch-fid's input: bilinear 299x299, align_corners=False, gray repeated to RGB, kept in [-1,1].
    want = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    assert torch.allclose(seen["stem"], want, atol=1e-6)
    # TF graph: average pools ignore padding in A, C and the first E block; the last E block max-pools.
    for block in ("5b", "6b", "7b"):
        avg = F.avg_pool2d(seen[block], 3, stride=1, padding=1, count_include_pad=False)
        assert torch.allclose(seen[f"{block}_pool"], avg, atol=1e-6), block
        padded_avg = F.avg_pool2d(seen[block], 3, stride=1, padding=1)
        assert not torch.allclose(seen[f"{block}_pool"], padded_avg, atol=1e-6)
    assert torch.equal(seen["7c_pool"], F.max_pool2d(seen["7c"], 3, stride=1, padding=1))
    assert seen["7c_out"].shape == (2, 2048, 8, 8)
    assert torch.allclose(feats, seen["7c_out"].mean(dim=(2, 3)), atol=1e-6)

    # IS logits: fc weight without the bias, as Salimans et al.'s code and torch-fidelity.
    assert torch.allclose(logits, feats @ net.fc.weight.t(), atol=1e-4)


def test_logits_bias_option(extractor, monkeypatch):
    feats = torch.randn(2, 2048)
    monkeypatch.setattr(extractor.net, "pool3", lambda x: feats)  # skip the expensive trunk
    images = torch.zeros(2, 3, 8, 8)
    assert torch.allclose(extractor.logits(images), feats @ extractor.net.fc.weight.t())
    assert torch.equal(extractor.features(images), feats)
    monkeypatch.setattr(extractor, "logits_bias", True)
    assert torch.allclose(extractor.logits(images), extractor.net.fc(feats))
    assert extractor.describe()["logits_method"] == "fc with bias"


def test_stays_in_eval_mode(extractor):
    extractor.train()
    assert not extractor.training and not extractor.net.Mixed_5b.branch1x1.bn.training


def test_file_without_num_batches_tracked_loads(tmp_path):
    path = tmp_path / "old-layout.pth"
    torch.save(standard_state_dict(with_num_batches_tracked=False), path)
    ext = InceptionExtractor(weights=path, expected_sha256=sha(path))
    assert ext.net.fc.weight.shape == (1008, 2048)


def test_hash_mismatch_names_both_hashes(weights):
    path, _ = weights
    with pytest.raises(GanforgeError) as e:
        InceptionExtractor(weights=path)  # the pinned hash of the real file
    assert INCEPTION_SHA256 in str(e.value) and sha(path) in str(e.value)
    assert len(INCEPTION_SHA256) == 64 and INCEPTION_SHA256.startswith("6726825d")


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)
    for kwargs in ({}, {"weights": tmp_path / "nope.pth"}):
        with pytest.raises(GanforgeError) as e:
            InceptionExtractor(**kwargs)
        assert "ganforge weights fetch inception" in str(e.value) and "GANFORGE_INCEPTION" in str(e.value)


def test_environment_variable_and_registry(weights, monkeypatch):
    path, _ = weights
    monkeypatch.setenv("GANFORGE_INCEPTION", str(path.parent))  # a folder holding the standard name
    ext = get_extractor("inception", expected_sha256=sha(path))
    assert isinstance(ext, InceptionExtractor)
    assert ext.describe() == {"name": "inception", "dim": 2048, "weights_sha256": sha(path),
                              "input_size": 299, "resize_method": "bilinear-299 (pytorch-fid)",
                              "logits_method": "fc without bias (Salimans et al. 2016, torch-fidelity)"}


def test_wrong_layout_and_pickled_code_are_refused(tmp_path):
    sd = standard_state_dict()
    del sd["Mixed_7c.branch_pool.conv.weight"]
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(GanforgeError, match="do not fit"):
        InceptionExtractor(weights=bad, expected_sha256=sha(bad))
    evil = tmp_path / "evil.pth"
    torch.save({"x": torch.zeros(1), "obj": ValueError("not a tensor")}, evil)
    with pytest.raises(GanforgeError, match="could not load"):
        InceptionExtractor(weights=evil, expected_sha256=sha(evil))
