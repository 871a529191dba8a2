"""`ganforge bench`: rates over repeats, FLOPs per image counted right, MFU against the peak, and bad input as
one line with exit code 2 (a batch too large for memory: the largest that fits)."""
import json
import statistics

import pytest
import torch
from torch import nn

from ganforge.bench import device_peak, run_bench
from ganforge.cli import main
from ganforge.registry import create_model
from ganforge.training import speed

TINY = ["model.ngf=8", "model.ndf=8", "--device", "cpu"]


def test_bench_prints_rates_flops_and_mfu(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["bench", "dcgan", "--batch", "8", "--steps", "2", "--warmup", "1", "--repeats", "3",
               "--peak-tflops", "2.5", "--json", str(out), "--cuda-graphs", "on", *TINY])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| train |" in text and "| sample |" in text and "--peak-tflops" in text
    assert "cuda_graphs off" in text  # asked for, but this machine has no CUDA
    r = json.loads(out.read_text())
    assert len(r["train_images_per_s"]) == 3 and len(r["sample_images_per_s"]) == 3
    assert r["batch"] == 8 and r["train_flops_per_image"] > 3 * r["sample_flops_per_image"] > 0
    mfu = statistics.median(r["train_images_per_s"]) * r["train_flops_per_image"] / 2.5e12
    assert r["train_mfu"] == pytest.approx(mfu)


def test_sampling_flops_per_image_equal_the_generators_linear_layers():
    """The MLP GAN's G is Linear layers only: 2 * in * out FLOPs per image each (a multiply and an add)."""
    res = run_bench("gan", batch=4, device="cpu", steps=1, warmup=0, repeats=1)
    g = create_model("gan").nets["G"]
    expected = sum(2 * m.in_features * m.out_features for m in g.modules() if isinstance(m, nn.Linear))
    assert res.sample_flops_per_image == expected
    # Training: G forward twice (D phase, G phase), D forward three times, their backwards: well above 3x.
    assert res.train_flops_per_image > 3 * expected


def test_peaks_of_known_gpus(monkeypatch):
    cuda = torch.device("cuda", 0)
    for name, bf16 in (("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.5), ("NVIDIA H200", 989.4),
                       ("NVIDIA A100-SXM4-80GB", 312.0)):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None, n=name: n)
        assert device_peak(cuda, torch.bfloat16)[0] == bf16
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Some Future GPU")
    peak, why = device_peak(cuda, torch.bfloat16)
    assert peak is None and "--peak-tflops" in why
    assert device_peak(torch.device("cpu"), None)[0] is None


@pytest.mark.parametrize("args,msg", [
    (["--amp", "fp16"], "ganforge: error: train.amp=fp16 needs a CUDA GPU"),
    (["--batch", "0"], "ganforge: error: argument --batch: must be >= 1, got 0"),
    (["--peak-tflops", "nan"], "ganforge: error: --peak-tflops must be a finite number > 0, got nan"),
    (["--compile", "turbo"], "ganforge: error: argument --compile: invalid choice: 'turbo'"),
    (["--cuda-graphs", "yes"], "ganforge: error: argument --cuda-graphs: invalid choice: 'yes'"),
    (["model.ngf=-3"], "ganforge: error: "),
])
def test_bad_input_is_one_line_and_exit_2(args, msg, capsys):
    rc = main(["bench", "dcgan", "--steps", "1", "--repeats", "1", *TINY, *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith(msg), err


def test_compile_where_it_cannot_run_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(speed, "compile_problem", lambda dev: "torch.compile on CPU needs a C++ compiler")
    rc = main(["bench", "dcgan", *TINY, "--compile"])
    assert rc == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "ganforge: error: --compile default: torch.compile on CPU needs a C++ compiler"


@pytest.mark.parametrize("room,group,want", [
    (11, 1, 11),  # bisection past the halving (64 -> 32 -> 16 -> 8 fits, then 11)
    (27, 8, 24),  # a batch the model refuses (a minibatch-std group of 8) counts as not fitting
])
def test_a_batch_larger_than_memory_names_the_largest_that_fits(monkeypatch, capsys, room, group, want):
    from ganforge.errors import GanforgeError
    from ganforge.recipes.gan import GANRecipe

    real = GANRecipe.step

    def step(self, batches, ctx):  # a device with room for `room` images, a model that takes multiples of `group`
        n = batches[0]["image"].shape[0]
        if n % group:
            raise GanforgeError(f"minibatch std: batch {n} must be a multiple of the group size {group}")
        if n > room:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(self, batches, ctx)

    monkeypatch.setattr(GANRecipe, "step", step)
    rc = main(["bench", "dcgan", "--batch", "64", "--steps", "1", "--repeats", "1", *TINY])
    assert rc == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"ganforge: error: batch 64 does not fit in the memory of cpu; the largest that fits is {want}"


def test_flop_count_equals_torchs_flop_counter_and_survives_double_backward():
    """The reference: torch.utils.flop_counter.FlopCounterMode, on a step it can count."""
    from torch.utils.flop_counter import FlopCounterMode

    from ganforge.bench import count_flops

    m = create_model("dcgan", image_size=32, channels=3, ngf=16, ndf=16)
    g, d = m.nets["G"], m.nets["D"]
    z = torch.randn(4, 100)

    def step():
        d(g(z, None), None).sum().backward()

    with FlopCounterMode(display=False) as ref:
        step()
    assert count_flops(step) == ref.get_total_flops() > 0

    def r1():  # autograd.grad on an input: FlopCounterMode's module hooks fail here
        x = torch.randn(4, 3, 32, 32, requires_grad=True)
        (grad,) = torch.autograd.grad(d(x, None).sum(), x, create_graph=True)
        grad.square().sum().backward()

    assert count_flops(r1) > 0
