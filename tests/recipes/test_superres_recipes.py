"""SRResNet and SRGAN recipes: the losses they optimise, staged training, the learning-rate step, data
from built-in photos and folders, and the held-out evaluation against bicubic upsampling."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.config import config_for
from ganforge.errors import GanforgeError
from ganforge.recipes.context import StepContext
from ganforge.registry import create_model, recipe_class

TINY_G = ["model.num_blocks=1", "model.features=8", "model.hr_size=32"]
FAST = ["train.progress=false", "train.batch_size=4", "train.sample_every=100", "train.ckpt_every=100",
        "train.eval_every=0", "recipe.crops_per_epoch=16"]


def _recipe(name: str, **cfg):
    model = create_model("srresnet" if name == "srresnet" else "srgan", num_blocks=1, features=8, hr_size=32,
                         **({"d_features": 8} if name == "srgan" else {}))
    rcls = recipe_class(name)
    r = rcls(model, rcls.Config(**cfg), torch.device("cpu"))
    r.attach(config_for(name, ["train.steps=10"]).train)
    return r


def _ctx(step: int = 0) -> StepContext:
    return StepContext(step=step, images_seen=0, rank=0, world=1, log=True, batches=1)


def _batch(seed: int = 0, n: int = 4, size: int = 32):
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    lr = F.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True)
    return [{"A": lr, "B": hr}]


@pytest.mark.parametrize("content,fn", [("mse", F.mse_loss), ("l1", F.l1_loss)])
def test_srresnet_step_minimises_the_pixel_content_loss(content, fn):
    torch.manual_seed(0)
    r = _recipe("srresnet", content=content)
    batch = _batch()
    with torch.no_grad():
        expected = float(fn(r.G(batch[0]["A"]), batch[0]["B"]))
    before = [p.detach().clone() for p in r.G.parameters()]
    out = r.step(batch, _ctx())
    assert out["loss_G"] == pytest.approx(expected, rel=1e-5)
    assert out[f"loss_G_{content}"] == out["loss_G"]
    assert any(not torch.equal(a, p) for a, p in zip(before, r.G.parameters()))


def test_srgan_generator_update_is_content_plus_weighted_adversarial():
    """With adv_weight 0 SRGAN's G update equals SRResNet's from the same weights; with the paper's 1e-3 it
    differs, and the logged adversarial term is -log sigmoid(D(G(x)))."""
    torch.manual_seed(0)
    s = _recipe("srgan", content="mse", adv_weight=0.0)
    plain = _recipe("srresnet", content="mse")
    plain.G.load_state_dict(s.G.state_dict())
    batch = _batch(1)
    s.step(batch, _ctx())
    plain.step(batch, _ctx())
    for a, b in zip(s.G.parameters(), plain.G.parameters()):
        assert torch.allclose(a, b, atol=1e-7)

    torch.manual_seed(0)
    s2 = _recipe("srgan", content="mse")  # adv_weight 1e-3
    assert s2.cfg.adv_weight == 1e-3
    g0 = {k: v.clone() for k, v in s2.G.state_dict().items()}
    s3 = _recipe("srgan", content="mse", adv_weight=0.0)
    s3.G.load_state_dict(g0)
    s3.D.load_state_dict(s2.D.state_dict())
    out = {k: float(v) for k, v in s2.step(batch, _ctx()).items()}
    s3.step(batch, _ctx())
    assert any(not torch.allclose(a, b, atol=1e-7) for a, b in zip(s2.G.parameters(), s3.G.parameters()))
    assert out["loss_G"] == pytest.approx(out["loss_G_mse"] + 1e-3 * out["loss_G_adv"], rel=1e-5)


def test_adversarial_losses_match_their_formulas():
    r = _recipe("srgan", content="mse")
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-0.3, 1.2, 0.1])
    bce = lambda x, t: F.binary_cross_entropy_with_logits(x, torch.full_like(x, t))
    assert float(r.d_loss(real, fake)) == pytest.approx(float(-F.logsigmoid(real).mean() - F.logsigmoid(-fake).mean()))
    assert float(r.g_adv_loss(None, fake)) == pytest.approx(float(-F.logsigmoid(fake).mean()))
    r.cfg.adversarial = "relativistic"
    d = 0.5 * (bce(real - fake.mean(), 1.0) + bce(fake - real.mean(), 0.0))
    g = 0.5 * (bce(real - fake.mean(), 0.0) + bce(fake - real.mean(), 1.0))
    assert float(r.d_loss(real, fake)) == pytest.approx(float(d))
    assert float(r.g_adv_loss(real, fake)) == pytest.approx(float(g))


def test_srgan_learning_rate_drops_tenfold_at_half_the_steps():
    r = _recipe("srgan", content="mse")  # train.steps=10 attached
    r.apply_hparams(4)
    assert [g["lr"] for o in r.optimizers.values() for g in o.param_groups] == [1e-4, 1e-4]
    r.apply_hparams(5)
    assert [g["lr"] for o in r.optimizers.values() for g in o.param_groups] == pytest.approx([1e-5, 1e-5])
    s = _recipe("srresnet")
    s.apply_hparams(9)
    assert s.optimizers["G"].param_groups[0]["lr"] == 1e-4  # SRResNet: constant, as the paper


def test_bad_settings_are_refused_before_any_work():
    for kw, match in ((dict(content="ssim"), "recipe.content"), (dict(decay_factor=0.0), "decay_factor"),
                      (dict(vgg_rescale=0.0), "vgg_rescale"), (dict(vgg_layer="relu6_1"), "vgg_layer")):
        with pytest.raises(GanforgeError, match=match):
            _recipe("srresnet", **kw)
    with pytest.raises(GanforgeError, match="recipe.adversarial"):
        _recipe("srgan", content="mse", adversarial="hinge")
    with pytest.raises(GanforgeError, match="recipe 'srresnet' trains the srresnet model"):
        recipe_class("srresnet")(create_model("srgan"), recipe_class("srresnet").Config(), torch.device("cpu"))


def test_vgg_content_without_the_weight_file_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANFORGE_VGG19", raising=False)
    code = main(["train", "srgan", "--name", "x", f"train.runs_dir={tmp_path}", *TINY_G, "model.d_features=8", *FAST,
                 "recipe.content=vgg"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "ganforge weights fetch vgg19" in err[0] and "recipe.content=mse" in err[0]
    assert not (tmp_path / "x" / "checkpoints").exists()


def test_bicubic_baseline_is_pil_bicubic_upsampling():
    import skimage.data

    r = _recipe("srresnet")
    small = skimage.data.astronaut()[100:160:2, 150:220:2].copy()  # a 30x35 photo crop
    lr = torch.from_numpy(small).permute(2, 0, 1)[None].float() / 127.5 - 1

    def u8(t):
        return ((t[0].permute(1, 2, 0) + 1) * 127.5).round().numpy()

    pil = np.asarray(Image.fromarray(small).resize((140, 120), Image.BICUBIC)).astype(float)
    diff = np.abs(u8(r.bicubic(lr)) - pil)
    # PIL rounds and clips to 8 bits between its horizontal and vertical passes: a few levels at hard edges.
    assert diff.mean() < 0.3 and diff.max() <= 8
    # torch's default bicubic (a = -0.75, OpenCV's kernel) is a different interpolation, 4x further from PIL.
    other = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(-1, 1)
    assert np.abs(u8(other) - pil).mean() > 3 * diff.mean()


def test_evaluation_of_a_generator_that_is_bicubic_gains_nothing_and_crops_the_border():
    torch.manual_seed(0)
    r = _recipe("srresnet")
    r.build_dataset(config_for("srresnet", []).data)  # demo:photos: held-out chelsea, motorcycle

    class Bicubic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return r.bicubic(x) + 0 * self.w

    vals = r.evaluate_heldout({"G": Bicubic()}, n=10)
    # G runs tile by tile (128 px LR tiles): bicubic through tiles differs from whole-image bicubic in rounding only
    assert abs(vals["psnr_gain"]) < 1e-4 and vals["psnr_y"] == pytest.approx(vals["bicubic_psnr_y"], abs=1e-4)
    assert 20 < vals["bicubic_psnr_y"] < 40 and 0.5 < vals["bicubic_ssim_y"] < 1
    # Independent figure: the same PSNR from numpy on the Y channel, 4-pixel border cropped.
    psnrs = []
    for lr, hr in r.eval_set():
        def y(t):
            a = ((t[0].clamp(-1, 1) + 1) * 127.5).round().double().numpy() / 255
            return (16 + 65.481 * a[0] + 128.553 * a[1] + 24.966 * a[2])[4:-4, 4:-4]
        mse = np.mean((y(r.bicubic(lr)) - y(hr)) ** 2)
        psnrs.append(10 * np.log10(255**2 / mse))
    assert vals["bicubic_psnr_y"] == pytest.approx(np.mean(psnrs), abs=1e-6)


def test_srresnet_then_srgan_from_it_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    assert main(["train", "srresnet", "--name", "pre", f"train.runs_dir={runs}", *TINY_G, *FAST,
                 "train.steps=4", "train.eval_every=4", "model.skip=none"]) == 0
    rows = [json.loads(line) for line in (runs / "pre" / "metrics.jsonl").read_text().splitlines()]
    ev = [x for x in rows if "eval_psnr_y" in x]
    assert ev and {"eval_bicubic_psnr_y", "eval_ssim_y", "eval_psnr_gain"} <= set(ev[-1])
    capsys.readouterr()
    assert main(["train", "srgan", "--name", "gan", f"train.runs_dir={runs}", *TINY_G, "model.d_features=8", *FAST,
                 "train.steps=2", "recipe.content=l1", "recipe.adversarial=relativistic", "model.skip=none",
                 f"train.init_from={runs / 'pre'}"]) == 0
    err = capsys.readouterr().err
    assert "initialised G from" in err and "from scratch" not in err and "other model settings" not in err
    pre = ganforge.load(runs / "pre", ema=False)
    g0 = create_model("srgan", num_blocks=1, features=8, hr_size=32, d_features=8)
    from ganforge.training.checkpoint import load_weights, resolve_checkpoint

    first = load_weights(resolve_checkpoint(runs / "pre"), "G")
    assert all(torch.equal(first[k], v) for k, v in pre.net.state_dict().items())
    del g0
    # Weights that fit but a setting without weights that differs (the bicubic skip): said, not silent.
    assert main(["train", "srgan", "--name", "skip", f"train.runs_dir={runs}", *TINY_G, "model.d_features=8", *FAST,
                 "train.steps=0", "recipe.content=mse", "model.skip=bicubic", f"train.init_from={runs / 'pre'}"]) == 0
    assert "model.skip='none' there, 'bicubic' here" in capsys.readouterr().err
    # Without init_from it says that it trains from scratch.
    assert main(["train", "srgan", "--name", "scratch", f"train.runs_dir={runs}", *TINY_G, "model.d_features=8",
                 *FAST, "train.steps=1", "recipe.content=mse"]) == 0
    assert "trains G from scratch" in capsys.readouterr().err
    assert main(["eval", str(runs / "scratch")]) == 0  # evaluating is not training: no training notes
    assert "note:" not in capsys.readouterr().err
    # ganforge eval on the SR run: PSNR-Y/SSIM-Y next to bicubic, the figures the run logged at that step.
    assert main(["eval", str(runs / "pre")]) == 0
    out = capsys.readouterr().out
    assert "psnr_y" in out and "bicubic_psnr_y" in out and "bicubic upsampling" in out
    rec = json.loads((runs / "pre" / "eval-heldout.json").read_text())
    assert rec["metrics"]["psnr_y"] == pytest.approx(ev[-1]["eval_psnr_y"], abs=1e-9)
    # ganforge upscale with the trained run: a held-out photo, 4x its size.
    import skimage.data

    Image.fromarray(skimage.data.chelsea()[:50, :70]).save(tmp_path / "cat.jpg")
    assert main(["upscale", str(runs / "gan"), str(tmp_path / "cat.jpg"), "--out", str(tmp_path / "up")]) == 0
    with Image.open(tmp_path / "up" / "cat.jpg") as im:
        assert im.size == (280, 200) and im.mode == "RGB" and im.format == "JPEG"
    # The other image commands point to upscale.
    capsys.readouterr()
    assert main(["sample", str(runs / "pre"), "--out", str(tmp_path / "s.png")]) == 2
    assert "upscales images" in capsys.readouterr().err
    assert main(["translate", str(runs / "pre"), str(tmp_path / "cat.jpg"), "--out", str(tmp_path / "t")]) == 2
    assert "use `ganforge upscale`" in capsys.readouterr().err
    # summary shows both networks at their own input sizes (G the LR tile, D the HR crop).
    assert main(["summary", "srgan", *TINY_G, "model.d_features=8"]) == 0
    assert "SRGANDiscriminator" in capsys.readouterr().out


def _save(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path) if mode else Image.fromarray(arr).save(path)


def test_a_folder_of_hr_images_with_a_test_split(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(3):
        _save(tmp_path / "data" / "train" / f"p{i}.png", rng.integers(0, 256, (48, 40, 3), dtype=np.uint8))
    _save(tmp_path / "data" / "train" / "tiny.png", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    (tmp_path / "data" / "train" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    wide = (rng.integers(0, 65536, (40, 36), dtype=np.uint16))
    Image.fromarray(wide).save(tmp_path / "data" / "train" / "deep.png")  # 16-bit grey
    _save(tmp_path / "data" / "test" / "t0.png", rng.integers(0, 256, (36, 44, 3), dtype=np.uint8))
    r = _recipe("srresnet")
    data = r.build_dataset(config_for("srresnet", [f"data.source={tmp_path / 'data'}"]).data)
    err = capsys.readouterr().err
    assert "1 unreadable file(s) skipped in [train]" in err and "1 smaller than the 32 px crop file(s) skipped" in err
    src = data.source
    assert len(src.images) == 4 and sum(img.dtype == torch.uint8 for img in src.images) == 3
    deep = [img for img in src.images if img.dtype != torch.uint8][0]
    assert deep.shape == (3, 40, 36) and len(torch.unique(deep)) > 256  # 16-bit precision kept
    assert "1 unreadable and 1 too small skipped" in data.describe()
    item = data[0]
    assert item["A"].shape == (3, 8, 8) and item["B"].shape == (3, 32, 32) and item["B"].dtype == torch.float32
    assert r.heldout_size() == 1 and r.eval_set()[0][1].shape == (1, 3, 36, 44)


def test_a_flat_folder_trains_and_warns_that_nothing_is_held_out(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for i in range(2):
        _save(tmp_path / "flat" / f"p{i}.jpg", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    r = _recipe("srresnet")
    r.build_dataset(config_for("srresnet", [f"data.source={tmp_path / 'flat'}"]).data)
    assert "no held-out split" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GanforgeError, match="no usable high-resolution images"):
        r.build_dataset(config_for("srresnet", [f"data.source={empty}"]).data)
    with pytest.raises(GanforgeError, match="demo:photos"):
        r.build_dataset(config_for("srresnet", ["data.source=demo:nope"]).data)


def test_vgg_content_loss_trains_g_through_frozen_features(tmp_path, monkeypatch):
    """recipe.content=vgg with a (small, made-up) VGG19 file: the loss is the rescaled feature MSE and only G
    learns; the VGG weights stay out of the recipe's optimizers."""
    import ganforge.metrics.vgg_net as vgg
    from ganforge.utils.hashing import sha256_file

    torch.manual_seed(0)
    sd = {"features.0.weight": torch.randn(64, 3, 3, 3) * 0.1, "features.0.bias": torch.zeros(64),
          "features.2.weight": torch.randn(64, 64, 3, 3) * 0.05, "features.2.bias": torch.zeros(64)}
    path = tmp_path / vgg.VGG19_FILENAME
    torch.save(sd, path)
    monkeypatch.setattr(vgg, "VGG19_SHA256_PREFIX", sha256_file(path)[:8])
    monkeypatch.setenv("GANFORGE_VGG19", str(path))
    r = _recipe("srgan", content="vgg", vgg_layer="relu1_2")
    feats = r.vgg
    assert not any(p.requires_grad for p in feats.parameters())
    assert all(p is not q for o in r.optimizers.values() for g in o.param_groups for p in g["params"]
               for q in feats.parameters())
    batch = _batch(2)
    with torch.no_grad():
        fake = r.G(batch[0]["A"])
        expected = float(F.mse_loss(feats(fake) / 12.75, feats(batch[0]["B"]) / 12.75))
    w0 = feats.state_dict()["features.0.weight"].clone()
    out = r.step(batch, _ctx())
    assert out["loss_G_vgg"] == pytest.approx(expected, rel=1e-4)
    assert torch.equal(feats.state_dict()["features.0.weight"], w0)


def test_srgan_resume_is_bit_identical_across_the_learning_rate_step(tmp_path, monkeypatch):
    """4 steps in one go == 2 steps + resume + 2 (the lr drops at step 2): crops, both nets, optimizers."""
    from safetensors.torch import load_file

    from ganforge.training.checkpoint import resolve_checkpoint

    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    ov = TINY_G + ["model.d_features=8", "recipe.content=mse"] + [f for f in FAST if "crops" not in f] + \
        ["recipe.decay_start=2", "train.log_every=1"]
    full = ganforge.train("srgan", overrides=ov + ["train.steps=4"], name="full", runs_dir=str(tmp_path))
    part = ganforge.train("srgan", overrides=ov + ["train.steps=2"], name="part", runs_dir=str(tmp_path))
    ganforge.train(resume=part, overrides=["train.steps=4"], runs_dir=str(tmp_path))
    for net in ("G", "D"):
        a = load_file(str(resolve_checkpoint(full) / f"{net}.safetensors"))
        b = load_file(str(resolve_checkpoint(part) / f"{net}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), net
    lrs = [json.loads(x).get("lr_G") for x in (full / "metrics.jsonl").read_text().splitlines()]
    # The line logged after k steps shows the rate of the coming step (index k): 1e-4 for index 1, 1e-5 from 2.
    assert lrs[:4] == pytest.approx([1e-4, 1e-5, 1e-5, 1e-5])


def test_eval_of_a_vgg_trained_run_needs_no_vgg_file(tmp_path, monkeypatch, capsys):
    """The content loss is a training matter: `ganforge eval` of a recipe.content=vgg run works without the file."""
    import ganforge.metrics.vgg_net as vgg
    from ganforge.utils.hashing import sha256_file

    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    sd = {"features.0.weight": torch.randn(64, 3, 3, 3) * 0.1, "features.0.bias": torch.zeros(64)}
    path = tmp_path / vgg.VGG19_FILENAME
    torch.save(sd, path)
    monkeypatch.setattr(vgg, "VGG19_SHA256_PREFIX", sha256_file(path)[:8])
    run = ganforge.train("srgan", overrides=TINY_G + ["model.d_features=8", *FAST, "train.steps=1",
                                                      "recipe.content=vgg", "recipe.vgg_layer=relu1_1",
                                                      f"recipe.vgg_weights={path}"],
                         name="v", runs_dir=str(tmp_path / "runs"))
    path.unlink()
    vgg.clear_vgg19_cache()
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    assert "psnr_y" in capsys.readouterr().out
