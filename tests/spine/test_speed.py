"""The speed options (channels_last, torch.compile, bf16 autocast, data on the device, no per-step host
reads) change no result they are not meant to change, and no checkpoint format."""
import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge.bench import make_trainer
from ganforge.errors import GanforgeError
from ganforge.training import device as device_mod
from ganforge.training import speed
from ganforge.training.batches import Batches
from ganforge.training.checkpoint import load_state, resolve_checkpoint
from ganforge.training.device import resolve_amp

# The plain DCGAN game (no self-conditioning, DiffAugment or EMA), tiny.
PLAIN = ["model.ngf=8", "model.ndf=8", "model.clusters=0", "recipe.diffaug=", "train.ema=0", "train.amp=off"]
FP32_REL = 1e-5  # fp32 fast path against the plain path: losses, relative
FP32_ABS = 1e-5  # and weights, absolute, after 4 Adam steps (measured: 2e-7 and 1e-6)
BF16_REL = 2e-2  # bf16 autocast against float32: losses, relative, over 4 steps (measured: 4e-4)


def _losses_and_weights(extra, steps=4, target="dcgan", base=PLAIN, batch=16):
    tr = make_trainer(target, base + extra, batch_size=batch, device="cpu")
    losses = [{k: float(v) for k, v in tr.train_step(logged=True).items()} for _ in range(steps)]
    weights = {n: {k: v.detach().float().contiguous().clone() for k, v in net.state_dict().items()}
               for n, net in tr.models.nets.items()}
    return tr, losses, weights


def _close(a, b, rel):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for k in y:
            if k.startswith("loss"):
                assert x[k] == pytest.approx(y[k], rel=rel), k


def _weights_close(a, b, tol):
    for n in b:
        for k in b[n]:
            assert (a[n][k] - b[n][k]).abs().max() <= tol, f"{n}.{k}"


def test_channels_last_gives_the_plain_paths_losses_and_weights():
    tr, fast, wf = _losses_and_weights(["train.channels_last=on"])
    assert tr.channels_last
    assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in tr.models.nets["D"].parameters())
    plain_tr, plain, wp = _losses_and_weights(["train.channels_last=off"])
    assert not plain_tr.channels_last
    _close(fast, plain, FP32_REL)
    _weights_close(wf, wp, FP32_ABS)


def test_channels_last_auto_leaves_mlp_nets_alone():
    tr = make_trainer("gan", ["train.channels_last=auto"], batch_size=8, device="cpu")
    assert not tr.channels_last
    tr = make_trainer("dcgan", PLAIN + ["train.channels_last=auto"], batch_size=8, device="cpu")
    assert tr.channels_last


@pytest.mark.skipif(speed.compile_problem(torch.device("cpu")) is not None, reason="no C++ compiler for inductor")
def test_compile_gives_the_plain_paths_losses_and_weights():
    tr, fast, wf = _losses_and_weights(["train.compile=default", "train.channels_last=on"])
    assert tr.compiled and all(getattr(m, "_compiled_call_impl", None) is not None
                               for m in tr.recipe.compile_targets())
    _, plain, wp = _losses_and_weights(["train.compile=off", "train.channels_last=off"])
    _close(fast, plain, FP32_REL)
    _weights_close(wf, wp, FP32_ABS)


def test_bf16_autocast_stays_within_its_stated_tolerance(monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)
    tr, fast, _ = _losses_and_weights(["train.amp=bf16"])
    assert tr.amp_dtype == torch.bfloat16 and tr.recipe.amp and not tr.recipe.scalers
    _, plain, _ = _losses_and_weights(["train.amp=off"])
    _close(fast, plain, BF16_REL)
    assert any(abs(f["loss_D"] - p["loss_D"]) > 0 for f, p in zip(fast, plain)), "bf16 changed nothing: not applied"


def _train(tmp_path, name, extra, steps, resume=None):
    ov = PLAIN + ["train.batch_size=16", "train.progress=false", "train.log_every=1", "train.sample_every=100",
                  "train.ckpt_every=100", f"train.steps={steps}"] + extra
    if resume is not None:
        return ganforge.train(resume=resume, overrides=[f"train.steps={steps}"] + extra, runs_dir=str(tmp_path))
    return ganforge.train("dcgan", overrides=ov, name=name, runs_dir=str(tmp_path))


def _ckpt(run):
    ck = resolve_checkpoint(run)
    return {f.stem: load_file(str(f)) for f in sorted(ck.glob("*.safetensors"))}, load_state(ck)


FAST = ["train.channels_last=on"] + (["train.compile=default"]
                                     if speed.compile_problem(torch.device("cpu")) is None else [])


@pytest.mark.parametrize("first,second", [(FAST, ["train.channels_last=off", "train.compile=off"]),
                                          (["train.channels_last=off", "train.compile=off"], FAST)])
def test_a_run_resumes_across_the_speed_options_and_the_checkpoint_format_is_unchanged(tmp_path, first, second):
    plain = _train(tmp_path, "plain", ["train.channels_last=off", "train.compile=off"], 4)
    part = _train(tmp_path, "part", first, 2)
    w_plain2, _ = _ckpt(_train(tmp_path, "plain2", ["train.channels_last=off", "train.compile=off"], 2))
    w_part, s_part = _ckpt(part)
    # The same files, keys, shapes and dtypes with and without the options (no "_orig_mod." prefixes).
    assert w_part.keys() == w_plain2.keys()
    for n in w_part:
        assert {k: (v.shape, v.dtype) for k, v in w_part[n].items()} == \
            {k: (v.shape, v.dtype) for k, v in w_plain2[n].items()}
    assert all(not k.startswith("_orig_mod") for n in w_part for k in w_part[n])
    assert s_part["recipe"]["optimizers"].keys() == {"G", "D"}
    _train(tmp_path, None, second, 4, resume=part)
    (a, _), (b, _) = _ckpt(part), _ckpt(plain)
    for n in b:
        for k in b[n]:
            if b[n][k].is_floating_point():
                assert (a[n][k] - b[n][k]).abs().max() <= FP32_ABS, f"{n}.{k}"
            else:
                assert torch.equal(a[n][k], b[n][k])


def test_the_loop_reads_step_values_only_at_check_points(tmp_path, monkeypatch):
    """Losses stay on the device between logging steps: reading them every step would stall a GPU."""
    from ganforge.recipes.gan import GANRecipe

    reads: list[int] = []
    at = {"step": 0}

    class Watched(torch.Tensor):
        def _note(self):
            reads.append(at["step"])

        def __float__(self):
            self._note()
            return super().__float__()

        def item(self):
            self._note()
            return super().item()

        def tolist(self):
            self._note()
            return super().tolist()

        def __bool__(self):
            self._note()
            return super().__bool__()

    real = GANRecipe.step

    def step(self, batches, ctx):
        at["step"] = ctx.step + 1
        return {k: (v.as_subclass(Watched) if isinstance(v, torch.Tensor) else v)
                for k, v in real(self, batches, ctx).items()}

    monkeypatch.setattr(GANRecipe, "step", step)
    run = _train(tmp_path, "w", ["train.log_every=3"], 7)
    assert reads and set(reads) <= {3, 6, 7}, sorted(set(reads))  # logged steps (and the last)
    assert [r["step"] for r in ganforge.training.loop.read_metrics(run)] == [3, 6, 7]


def test_indices_equal_the_items_across_epoch_boundaries():
    ds = torch.utils.data.TensorDataset(torch.zeros(10, 1, 2, 2))
    b = Batches(ds, seed=3, world=2, rank=1)
    for cursor in (0, 6, 14, 18, 36):
        assert b.indices(cursor, 4).tolist() == [i for _, i in b.items(cursor, 4)]


def test_amp_choices_per_device(monkeypatch):
    cpu, warned, noted = torch.device("cpu"), [], []
    with pytest.raises(GanforgeError, match="train.amp=fp16 needs a CUDA GPU"):
        resolve_amp(cpu, "fp16", warned.append)
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)
    assert resolve_amp(cpu, "auto", warned.append) == torch.bfloat16 and not warned
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: False)
    assert resolve_amp(cpu, "auto", warned.append, noted.append) is None and noted and not warned
    assert resolve_amp(cpu, "bf16", warned.append) == torch.bfloat16 and "slower" in warned[0]
    assert resolve_amp(cpu, "off", warned.append) is None
    cuda = torch.device("cuda", 0)
    for cc, auto in (((9, 0), torch.bfloat16), ((7, 5), torch.float16)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None, cc=cc: cc)
        assert resolve_amp(cuda, "auto", warned.append) == auto
    with pytest.raises(GanforgeError, match=r"compute capability 7\.5\) has no bfloat16"):
        resolve_amp(cuda, "bf16", warned.append)


def test_compile_falls_back_with_one_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(speed, "compile_problem", lambda dev: "torch.compile on CPU needs a C++ compiler")
    run = _train(tmp_path, "c", ["train.compile=default"], 2)
    err = capsys.readouterr().err
    assert err.count("train.compile=default: torch.compile on CPU needs a C++ compiler; training runs eagerly") == 1
    assert load_state(resolve_checkpoint(run))["step"] == 2


def test_out_of_memory_in_training_is_one_line(tmp_path, monkeypatch):
    from ganforge.recipes.gan import GANRecipe

    def step(self, batches, ctx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(GANRecipe, "step", step)
    with pytest.raises(GanforgeError, match=r"out of memory at step 1 with a batch of 16 per process on cpu; "
                                            r"`ganforge bench dcgan --batch 16` finds the largest batch that fits"):
        _train(tmp_path, "oom", [], 2)


def test_data_on_device_is_refused_without_room(monkeypatch):
    assert not speed.data_on_device("on", torch.device("cpu"), 10)  # already in memory on a CPU
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (1000, 4000))
    cuda = torch.device("cuda", 0)
    assert speed.data_on_device("auto", cuda, 250) and not speed.data_on_device("auto", cuda, 251)
    assert not speed.data_on_device("off", cuda, 1)
    with pytest.raises(GanforgeError, match="more than the 0.00 GiB free"):
        speed.data_on_device("on", cuda, 2000)


SMALL = {"stylegan": ["model.image_size=16"],
         "pix2pix": ["model.image_size=32", "data.source=demo:colorize,n_train=4,n_test=2"],
         "pix2pix-colorize": ["model.image_size=32", "data.source=demo:colorize,n_train=4,n_test=2"]}


@pytest.mark.parametrize("preset", __import__("ganforge.config", fromlist=["list_presets"]).list_presets())
def test_every_preset_trains_under_bf16_and_channels_last(preset, monkeypatch):
    """Mixed dtypes meet in places fp32 never tests (StyleGAN2's w_avg lerp once failed under bf16)."""
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)
    tr = make_trainer(preset, ["train.amp=bf16", "train.channels_last=on"] + SMALL.get(preset, []), batch_size=4,
                      device="cpu")
    assert tr.amp_dtype == torch.bfloat16
    for _ in range(2):
        out = tr.train_step(logged=True)
    losses = {k: float(v) for k, v in out.items() if k.startswith("loss")}
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
