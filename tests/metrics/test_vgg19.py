"""VGG19 (torchvision layout), its frozen feature extractor, the pinned weight file, and the SRGAN VGG loss.

Nothing here downloads or builds a real 548 MB file: loading is tested on small state dicts with the real
key names and shapes of the early layers, the pin monkeypatched to the small file's hash prefix.
"""
import hashlib
import os

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.losses.perceptual import SRGAN_VGG_RESCALE, vgg_content_loss
from ganforge.metrics import vgg_net
from ganforge.metrics.vgg_net import (
    LAYER_INDEX, VGG19, VGG19_FILENAME, VGG19Features, fetch_vgg19_weights, load_vgg19_features,
    resolve_vgg19_weights,
)
from ganforge.utils.atomic import current_umask
from ganforge.utils.download import check_pin, sha256_matches, verify_sha256

CONV = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]  # torchvision vgg19 conv indices
CHANNELS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256)] + [(256, 256)] * 3 + [(256, 512)] + [(512, 512)] * 7


@pytest.fixture(autouse=True)
def clean(monkeypatch, tmp_path):
    monkeypatch.delenv("GANFORGE_VGG19", raising=False)
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    vgg_net.clear_vgg19_cache()
    yield
    vgg_net.clear_vgg19_cache()


def early_state(n_convs: int = 4, seed: int = 0) -> dict:
    """Real key names and shapes of the first n convolutions (relu2_2 needs 4), random values."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, (cin, cout) in zip(CONV[:n_convs], CHANNELS[:n_convs]):
        state[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.1
        state[f"features.{i}.bias"] = torch.randn(cout, generator=g) * 0.1
    return state


def save_pinned(state: dict, folder, monkeypatch):
    """Save `state` under the standard name and pin its hash prefix, as the real file is pinned."""
    path = folder / VGG19_FILENAME
    torch.save(state, path)
    monkeypatch.setattr(vgg_net, "VGG19_SHA256_PREFIX", hashlib.sha256(path.read_bytes()).hexdigest()[:8])
    return path


# --- the network ----------------------------------------------------------------------------------

def test_parameter_count_is_torchvisions():
    with torch.device("meta"):
        net = VGG19()
    assert sum(p.numel() for p in net.parameters()) == 143_667_240


def test_state_dict_keys_and_shapes_are_torchvisions():
    expected = [f"features.{i}.{t}" for i in CONV for t in ("weight", "bias")]
    expected += [f"classifier.{i}.{t}" for i in (0, 3, 6) for t in ("weight", "bias")]
    with torch.device("meta"):
        state = VGG19().state_dict()
    assert list(state) == expected
    for i, (cin, cout) in zip(CONV, CHANNELS):
        assert state[f"features.{i}.weight"].shape == (cout, cin, 3, 3)
    assert state["classifier.0.weight"].shape == (4096, 25088)
    assert state["classifier.6.weight"].shape == (1000, 4096)
    with torch.device("meta"):
        net = VGG19()
    # Parameter-free modules are part of the layout too: ReLU then Dropout, a 7x7 adaptive average pool.
    assert [type(m).__name__ for m in net.classifier] == ["Linear", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert net.avgpool.output_size == (7, 7) and len(net.features) == 37


def test_layer_names_map_to_torchvision_indices():
    assert LAYER_INDEX["conv1_1"] == 0 and LAYER_INDEX["relu1_2"] == 3 and LAYER_INDEX["pool1"] == 4
    assert LAYER_INDEX["relu2_2"] == 8 and LAYER_INDEX["relu3_4"] == 17 and LAYER_INDEX["relu4_4"] == 26
    assert LAYER_INDEX["conv5_4"] == 34 and LAYER_INDEX["relu5_4"] == 35 and LAYER_INDEX["pool5"] == 36
    assert len(LAYER_INDEX) == 16 * 2 + 5
    with torch.device("meta"):
        f = VGG19Features("relu5_4")
    assert len(f.features) == 36  # modules 0..35 kept, pool5 dropped
    assert isinstance(f.features[35], torch.nn.ReLU) and f.features[34].out_channels == 512
    assert list(f.state_dict()) == [f"features.{i}.{t}" for i in CONV for t in ("weight", "bias")]
    with pytest.raises(GanforgeError, match="unknown VGG19 layer"):
        VGG19Features("relu5_5")


def test_relu5_4_output_shape():
    with torch.device("meta"):
        f = VGG19Features()
        out = f(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 512, 4, 4)  # four 2x2 pools before relu5_4


def test_frozen_and_stays_in_eval_mode():
    f = VGG19Features("relu1_2")
    assert not f.training and not any(p.requires_grad for p in f.parameters())
    torch.nn.Sequential(f).train()
    assert not f.training


def test_normalisation_by_hand():
    f = VGG19Features("conv1_1")
    w = torch.zeros(64, 3, 3, 3)
    for k in range(64):
        w[k, k % 3, 1, 1] = 1.0  # output channel k copies input channel k % 3
    f.features[0].weight.copy_(w)
    f.features[0].bias.zero_()
    v = torch.tensor([0.2, -0.4, 0.9])
    out = f(v.view(1, 3, 1, 1).expand(1, 3, 5, 5))
    # ((v + 1) / 2 - mean) / std: (0.6-0.485)/0.229, (0.3-0.456)/0.224, (0.95-0.406)/0.225
    hand = torch.tensor([0.502183, -0.696429, 2.417778])
    assert out.shape == (1, 64, 5, 5)
    for k in range(64):
        assert torch.allclose(out[0, k], hand[k % 3].expand(5, 5), atol=1e-5)
    grey = f(torch.full((1, 1, 5, 5), 0.2))
    assert torch.allclose(grey, f(torch.full((1, 3, 5, 5), 0.2)))
    with pytest.raises(GanforgeError, match=r"\[N,1\|3,H,W\]"):
        f(torch.zeros(1, 4, 5, 5))


# --- the weight file --------------------------------------------------------------------------------

def test_load_pinned_file_matches_manual_computation(tmp_path, monkeypatch):
    state = early_state()
    path = save_pinned(state, tmp_path, monkeypatch)
    f = load_vgg19_features("relu2_2", weights=path)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = ((x + 1) / 2 - mean) / std
    for i in (0, 2):
        h = F.relu(F.conv2d(h, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
    h = F.max_pool2d(h, 2)
    for i in (5, 7):
        h = F.relu(F.conv2d(h, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
    assert torch.allclose(f(x), h, atol=1e-5)
    # Cached per (file, layer, device): the file is read once per run.
    assert load_vgg19_features("relu2_2", weights=path) is f
    assert load_vgg19_features("relu2_2", weights=tmp_path) is f  # the folder holding it
    assert load_vgg19_features("relu1_2", weights=path) is not f


def test_env_var_and_default_folder(tmp_path, monkeypatch):
    path = save_pinned(early_state(1), tmp_path, monkeypatch)
    monkeypatch.setenv("GANFORGE_VGG19", str(tmp_path))
    assert resolve_vgg19_weights() == path
    monkeypatch.delenv("GANFORGE_VGG19")
    cached = tmp_path / "cache" / "weights"
    cached.mkdir(parents=True)
    (cached / VGG19_FILENAME).write_bytes(path.read_bytes())
    assert resolve_vgg19_weights() == cached / VGG19_FILENAME


def test_wrong_hash_is_refused_naming_both(tmp_path, monkeypatch):
    path = save_pinned(early_state(1), tmp_path, monkeypatch)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    wrong = "0000000a" if not actual.startswith("0000000a") else "0000000b"
    monkeypatch.setattr(vgg_net, "VGG19_SHA256_PREFIX", wrong)
    with pytest.raises(GanforgeError) as e:
        load_vgg19_features("conv1_1", weights=path)
    msg = str(e.value)
    assert wrong in msg and actual in msg and "\n" not in msg


def test_pin_may_be_full_digest_or_prefix(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    full = hashlib.sha256(b"abc").hexdigest()
    assert verify_sha256(p, full) == full and verify_sha256(p, full[:8].upper()) == full
    assert sha256_matches(full, full[:12]) and not sha256_matches(full, "f" * 64)
    with pytest.raises(GanforgeError):
        verify_sha256(p, full[:63] + ("0" if full[63] != "0" else "1"))
    with pytest.raises(ValueError):
        check_pin(full[:7])  # too short to pin anything
    with pytest.raises(ValueError):
        check_pin("g" * 8)


def test_missing_file_says_how_to_get_it(tmp_path, monkeypatch):
    with pytest.raises(GanforgeError) as e:
        load_vgg19_features()
    msg = str(e.value)
    assert "ganforge weights fetch vgg19" in msg and "GANFORGE_VGG19" in msg and "recipe.content=mse" in msg
    assert str(tmp_path / "cache" / "weights" / VGG19_FILENAME) in msg and "\n" not in msg
    monkeypatch.setenv("GANFORGE_VGG19", str(tmp_path / "nowhere.pth"))
    with pytest.raises(GanforgeError, match=r"nowhere\.pth \(from \$GANFORGE_VGG19\)"):
        resolve_vgg19_weights()


@pytest.mark.parametrize("change, needle", [
    (lambda s: s.update({"features.2.weight": torch.zeros(64, 32, 3, 3)}),
     r"features\.2\.weight has shape \(64, 32, 3, 3\), expected \(64, 64, 3, 3\)"),
    (lambda s: s.pop("features.7.bias"), r"features\.7\.bias missing"),
    (lambda s: s.update({"features.1.running_mean": torch.zeros(64)}), r"unexpected key features\.1\.running_mean"),
])
def test_state_that_does_not_fit_is_refused(tmp_path, monkeypatch, change, needle):
    state = early_state()
    change(state)
    path = save_pinned(state, tmp_path, monkeypatch)
    with pytest.raises(GanforgeError, match=needle) as e:
        load_vgg19_features("relu2_2", weights=path)
    assert "\n" not in str(e.value)


def test_file_with_classifier_and_later_layers_loads(tmp_path, monkeypatch):
    state = early_state()
    state.update({"features.34.bias": torch.zeros(512), "classifier.0.bias": torch.zeros(4096),
                  "classifier.3.bias": torch.zeros(4096), "classifier.6.bias": torch.zeros(1000)})
    path = save_pinned(state, tmp_path, monkeypatch)
    f = load_vgg19_features("relu2_2", weights=path)
    assert set(f.state_dict()) == {k for k in early_state()}
    assert torch.equal(f.features[7].bias, state["features.7.bias"])


# --- the loss -----------------------------------------------------------------------------------------

def test_vgg_content_loss():
    torch.manual_seed(0)
    f = VGG19Features("relu2_2")
    real = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    fake = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    assert SRGAN_VGG_RESCALE == 1 / 12.75
    assert vgg_content_loss(f, real.detach(), real.detach()).item() == 0.0
    loss = vgg_content_loss(f, fake, real)
    manual = F.mse_loss(f(fake), f(real)) * (1 / 12.75) ** 2
    assert loss.item() > 0 and torch.allclose(loss, manual, rtol=1e-5)
    assert torch.allclose(vgg_content_loss(f, fake, real, rescale=1.0), manual * 12.75**2, rtol=1e-5)
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert real.grad is None  # the target branch is computed without a graph
    assert all(p.grad is None for p in f.parameters())
    with pytest.raises(GanforgeError, match="one shape"):
        vgg_content_loss(f, fake, real[:1])


# --- the download ---------------------------------------------------------------------------------------

PAYLOAD = b"pretend these are vgg19 weights\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_file_url_with_prefix_pin(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    got = fetch_vgg19_weights(dest_dir, url=src.as_uri(), expected_sha256=PAYLOAD_SHA[:8])
    assert got == dest_dir / VGG19_FILENAME and got.read_bytes() == PAYLOAD
    assert os.listdir(dest_dir) == [VGG19_FILENAME]
    assert got.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # an ordinary file, not a private temporary one
    # Intact copy present: no download (this URL would fail).
    assert fetch_vgg19_weights(dest_dir, url="file:///nonexistent", expected_sha256=PAYLOAD_SHA[:8]) == got
    # Default destination: the weights folder, where resolve_vgg19_weights looks.
    default = fetch_vgg19_weights(url=src.as_uri(), expected_sha256=PAYLOAD_SHA)
    assert default == tmp_path / "cache" / "weights" / VGG19_FILENAME and default.read_bytes() == PAYLOAD


def test_download_with_wrong_hash_is_refused_and_leaves_nothing(tmp_path):
    assert not PAYLOAD_SHA.startswith(vgg_net.VGG19_SHA256_PREFIX)
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    with pytest.raises(GanforgeError) as e:
        fetch_vgg19_weights(dest_dir, url=src.as_uri())  # the real pin, dcbb9e9d
    msg = str(e.value)
    assert "dcbb9e9d" in msg and PAYLOAD_SHA in msg and "\n" not in msg
    assert os.listdir(dest_dir) == []
    with pytest.raises(GanforgeError, match="could not download"):
        fetch_vgg19_weights(dest_dir, url=(tmp_path / "absent").as_uri(), expected_sha256=PAYLOAD_SHA)
    assert os.listdir(dest_dir) == []
