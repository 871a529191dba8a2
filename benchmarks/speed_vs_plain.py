"""Training throughput of ganforge against plain eager fp32 loops written as in the classic tutorials and
reference code, same architecture, same batch size, measured in the same process, interleaved (plain,
ganforge, plain, ganforge, ... for --repeats rounds) so that background load hits both sides alike.

    python benchmarks/speed_vs_plain.py [--cases dcgan28,dcgan64,stylegan2-32,pix2pix256] [--device cpu|cuda]
        [--steps N] [--warmup W] [--repeats R] [--batch B] [--amp {off,bf16,fp16,auto}]
        [--channels-last {auto,on,off}] [--compile {off,default,max-autotune}] [--cuda-graphs {auto,on,off}]
        [--set KEY=VALUE ...] [--no-record]

Cases (ganforge side: `ganforge.bench.make_trainer(target, overrides, batch_size, device)`, one
`train_step()` = data fetch, recipe step and EMA exactly as `ganforge train` runs them; the speed options
--amp/--channels-last/--compile/--cuda-graphs go to it as train.* overrides, --set as any override; the plain
side is always eager fp32 NCHW):

- dcgan28: DCGAN 28x28x1, ngf=ndf=64, z 100 (preset dcgan without self-conditioning, DiffAugment, EMA).
  Plain: speed_dcgan.tutorial_nets and the PyTorch DCGAN tutorial's loop (BCELoss on Sigmoid outputs).
- dcgan64: the PyTorch DCGAN tutorial at 64x64x3 verbatim: its Generator/Discriminator and weights_init,
  BCELoss, Adam(2e-4, (0.5, 0.999)), D on real, D on fake.detach(), optimizerD.step(), G on D(fake),
  `.item()` of the losses every iteration. ganforge: model dcgan at 64 px, 3 channels.
- stylegan2-32: ganforge's own StyleGAN2 networks (cpu-digits widths, mbstd group 8, no D label mapping)
  trained by the papers' simple loop: non-saturating logistic loss, lazy R1 (gamma 1, every 16 D steps,
  scaled by 16, its own D step, torch.autograd.grad with create_graph), no path length, no style mixing
  (the ganforge side runs recipe.style_mixing=0 too), Adam(1e-3, (0, 0.99)) without the reference's lazy
  rescaling of lr/betas (it costs nothing either way), requires_grad toggled per phase as in
  stylegan2-ada-pytorch. ganforge: preset stylegan2 without clusters, augmentation and EMA.
- pix2pix256: ganforge's own U-Net 256 and 70x70 PatchGAN (ngf=ndf=64, batch norm, dropout) trained by the
  loop of junyanz/pytorch-CycleGAN-and-pix2pix: D on cat(A, fake.detach()) and cat(A, B), BCEWithLogits
  x 0.5, then D frozen, G on GAN loss + 100 L1, Adam(2e-4, (0.5, 0.999)), `.item()` every step.
  ganforge: preset pix2pix at 256 px, ngf=ndf=64.

Data: both sides train on the same real images. The plain loops read them from a TensorDataset through
DataLoader(shuffle=True, drop_last=True, no workers) and move each batch to the device as the tutorials
do: MNIST (ganforge.data.build_dataset("mnist"), resized to the case's size and channels) for the noise
models, and for pix2pix the first 64 pairs of ganforge's built-in demo:labels source (the preset's) at
256 px, decoded once without the reference's per-item resize/crop/flip, so the plain side does less data
work than the reference (and than ganforge, which augments): its figure is, if anything, flattering.

Both sides are built once per case, warmed up --warmup steps, then timed for --steps steps per repeat;
the device is synchronized before every clock read. The plain side runs with torch's global settings
as they were when this script started (threads, cuDNN benchmark, TF32), whatever ganforge sets for itself.
The losses of each side's last step in every run (warm-up, repeats) must be finite and move, otherwise
the script stops; they are read back only after the clock.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import math
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

SECTION = "Speed against plain tutorial loops (issue 14)"
PIX2PIX_SOURCE, PIX2PIX_PAIRS = "demo:labels", 64


@dataclass(frozen=True)
class Case:
    """One benchmark case: the ganforge target and overrides, and the default batch size."""

    target: str
    overrides: tuple[str, ...]
    batch: int
    what: str


CASES: dict[str, Case] = {
    "dcgan28": Case("dcgan", ("model.clusters=0", "model.image_size=28", "model.channels=1", "recipe.diffaug=",
                              "train.ema=0"), 64, "DCGAN 28x28x1, ngf=ndf=64, MNIST"),
    "dcgan64": Case("dcgan", ("model.image_size=64", "model.channels=3", "model.clusters=0", "recipe.diffaug=",
                              "train.ema=0", "data.source=mnist"), 64, "DCGAN 64x64x3 (PyTorch tutorial), MNIST"),
    "stylegan2-32": Case("stylegan2", ("model.clusters=0", "recipe.style_mixing=0", "recipe.augment=none",
                                       "train.ema=0"), 32, "StyleGAN2 32x32x1 cpu-digits, lazy R1, MNIST"),
    "pix2pix256": Case("pix2pix", ("model.image_size=256", "model.ngf=64", "model.ndf=64"), 1,
                       "Pix2Pix 256x256 U-Net + PatchGAN, ngf=ndf=64, demo:labels"),
}


# ---- data -------------------------------------------------------------------------------------------

def mnist_images(size: int, channels: int) -> Tensor:
    """The built-in MNIST training images at size x size with `channels` channels, in [-1, 1]."""
    from ganforge.data import build_dataset

    return build_dataset("mnist", split="train", image_size=size, channels=channels).as_tensor()[0]


def paired_images(size: int, n: int) -> tuple[Tensor, Tensor]:
    """The first n (A, B) pairs of the pix2pix preset's demo source at `size` px, without augmentation."""
    from ganforge.data.demo import demo_folder
    from ganforge.data.paired import PairedDataset

    root = demo_folder(PIX2PIX_SOURCE, "paired", size, echo=lambda m: print(m, file=sys.stderr))
    ds = PairedDataset(root, split="train", image_size=size, load_size=size, jitter=False, flip=False,
                       channels=(3, 3))
    items = [ds[i] for i in range(min(n, len(ds)))]
    return torch.stack([it["A"] for it in items]), torch.stack([it["B"] for it in items])


# ---- plain loops ------------------------------------------------------------------------------------

class PlainLoop:
    """A tutorial-style eager fp32 loop: shuffled DataLoader over a TensorDataset, one step() per batch."""

    def __init__(self, tensors: tuple[Tensor, ...], batch: int, device: torch.device):
        self.device, self.images_per_step = device, batch
        self.loader = DataLoader(TensorDataset(*tensors), batch_size=batch, shuffle=True, drop_last=True)
        self._it: Iterator = iter(self.loader)

    def next_batch(self) -> list[Tensor]:
        """The next batch on the device, a new epoch begun when the loader runs out."""
        try:
            batch = next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            batch = next(self._it)
        return [t.to(self.device) for t in batch]

    def step(self) -> dict[str, float]:
        """One training step; returns the losses as Python floats."""
        raise NotImplementedError


def weights_init(m: nn.Module) -> None:
    """The DCGAN tutorial's init: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02) and bias 0."""
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


def tutorial_nets64(nz: int = 100, ngf: int = 64, ndf: int = 64, nc: int = 3) -> tuple[nn.Module, nn.Module]:
    """The PyTorch DCGAN tutorial's Generator and Discriminator for 64x64 images, layer by layer."""
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    return g, d


class DCGANPlain(PlainLoop):
    """The PyTorch DCGAN tutorial's training loop (BCELoss, Adam 2e-4, .item() every iteration)."""

    def __init__(self, nets: tuple[nn.Module, nn.Module], images: Tensor, batch: int, device: torch.device):
        super().__init__((images,), batch, device)
        self.netG, self.netD = (n.to(device).apply(weights_init) for n in nets)
        self.criterion = nn.BCELoss()
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(self) -> dict[str, float]:
        """D on real, D on fake.detach(), optimizerD.step(), then G on D(fake), as the tutorial."""
        (real,) = self.next_batch()
        b = real.size(0)
        self.netD.zero_grad()
        label = torch.full((b,), 1.0, dtype=torch.float, device=self.device)
        output = self.netD(real).view(-1)
        errD_real = self.criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        fake = self.netG(torch.randn(b, 100, 1, 1, device=self.device))
        label.fill_(0.0)
        output = self.netD(fake.detach()).view(-1)
        errD_fake = self.criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optD.step()
        self.netG.zero_grad()
        label.fill_(1.0)
        output = self.netD(fake).view(-1)
        errG = self.criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optG.step()
        return {"loss_D": errD.item(), "loss_G": errG.item(), "D_x": D_x, "D_G_z1": D_G_z1, "D_G_z2": D_G_z2}


class StyleGAN2Plain(PlainLoop):
    """The StyleGAN2 papers' simple loop: logistic NS loss, lazy R1 every 16 D steps, no PL, no mixing."""

    R1_GAMMA, R1_EVERY = 1.0, 16

    def __init__(self, images: Tensor, batch: int, device: torch.device):
        from ganforge.registry import create_model

        super().__init__((images,), batch, device)
        models = create_model("stylegan2", config="cpu-digits", image_size=32, channels=1, mbstd_group=8,
                              d_mapping_layers=0)
        self.G, self.D = models.nets["G"].to(device), models.nets["D"].to(device)
        self.z_dim = int(models.args["z_dim"])
        self.optG = torch.optim.Adam(self.G.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
        self.optD = torch.optim.Adam(self.D.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
        self.d_steps = 0

    def fake(self, n: int, update_w_avg: bool) -> Tensor:
        """G(z): mapping (tracking mean w when asked), then synthesis with random noise."""
        ws = self.G.mapping(torch.randn(n, self.z_dim, device=self.device), None, update_w_avg=update_w_avg)
        return self.G.synthesis(ws, noise_mode="random")

    def step(self) -> dict[str, float]:
        """D main (+ lazy R1 as its own D step), then G main, D frozen while G trains and the other way."""
        (real,) = self.next_batch()
        n = real.shape[0]
        out: dict[str, float] = {}
        # D main: softplus(D(fake)) + softplus(-D(real)), G not differentiated.
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with torch.no_grad():
            fake = self.fake(n, update_w_avg=False)
        d_real, d_fake = self.D(real, None), self.D(fake, None)
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        self.optD.zero_grad(set_to_none=True)
        loss_d.backward()
        self.optD.step()
        out["loss_D"] = loss_d.item()
        # Lazy R1: gamma/2 * E||grad_x D(x)||^2 on reals, times the interval.
        if self.d_steps % self.R1_EVERY == 0:
            x = real.detach().requires_grad_(True)
            logits = self.D(x, None)
            (grad,) = torch.autograd.grad(outputs=[logits.sum()], inputs=[x], create_graph=True, only_inputs=True)
            r1 = grad.square().sum([1, 2, 3]).mean()
            self.optD.zero_grad(set_to_none=True)
            (r1 * (self.R1_GAMMA / 2 * self.R1_EVERY)).backward()
            self.optD.step()
            out["r1"] = r1.item()
        self.d_steps += 1
        # G main: softplus(-D(G(z))), D frozen.
        self.D.requires_grad_(False)
        self.G.requires_grad_(True)
        loss_g = F.softplus(-self.D(self.fake(n, update_w_avg=True), None)).mean()
        self.optG.zero_grad(set_to_none=True)
        loss_g.backward()
        self.optG.step()
        self.D.requires_grad_(True)
        out["loss_G"] = loss_g.item()
        return out


class Pix2PixPlain(PlainLoop):
    """junyanz/pytorch-CycleGAN-and-pix2pix's Pix2PixModel.optimize_parameters, vanilla GAN loss, L1 x 100."""

    def __init__(self, pairs: tuple[Tensor, Tensor], batch: int, device: torch.device):
        from ganforge.registry import create_model

        super().__init__(pairs, batch, device)
        models = create_model("pix2pix", image_size=256, in_channels=3, out_channels=3, ngf=64, ndf=64,
                              norm="batch", dropout=True)
        self.netG, self.netD = models.nets["G"].to(device), models.nets["D"].to(device)
        self.criterionGAN, self.criterionL1 = nn.BCEWithLogitsLoss(), nn.L1Loss()
        self.real_label, self.fake_label = torch.tensor(1.0, device=device), torch.tensor(0.0, device=device)
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def gan_loss(self, pred: Tensor, real: bool) -> Tensor:
        """The reference GANLoss('vanilla'): BCE with logits against a 1 or 0 target expanded to pred."""
        return self.criterionGAN(pred, (self.real_label if real else self.fake_label).expand_as(pred))

    def step(self) -> dict[str, float]:
        """fake_B = G(A); D step on the halved fake/real pair losses; G step on GAN + 100 L1 with D frozen."""
        real_A, real_B = self.next_batch()
        fake_B = self.netG(real_A)
        self.netD.requires_grad_(True)
        self.optD.zero_grad()
        loss_D_fake = self.gan_loss(self.netD(torch.cat((real_A, fake_B), 1).detach()), False)
        loss_D_real = self.gan_loss(self.netD(torch.cat((real_A, real_B), 1)), True)
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        self.optD.step()
        self.netD.requires_grad_(False)
        self.optG.zero_grad()
        loss_G_GAN = self.gan_loss(self.netD(torch.cat((real_A, fake_B), 1)), True)
        loss_G_L1 = self.criterionL1(fake_B, real_B) * 100.0
        loss_G = loss_G_GAN + loss_G_L1
        loss_G.backward()
        self.optG.step()
        return {"loss_D": loss_D.item(), "loss_G_GAN": loss_G_GAN.item(), "loss_G_L1": loss_G_L1.item()}


def make_plain(case: str, batch: int, device: torch.device) -> PlainLoop:
    """The plain loop of `case`, its networks seeded with 0."""
    torch.manual_seed(0)
    if case == "dcgan28":
        from speed_dcgan import tutorial_nets

        return DCGANPlain(tutorial_nets(), mnist_images(28, 1), batch, device)
    if case == "dcgan64":
        return DCGANPlain(tutorial_nets64(), mnist_images(64, 3), batch, device)
    if case == "stylegan2-32":
        return StyleGAN2Plain(mnist_images(32, 1), batch, device)
    if case == "pix2pix256":
        return Pix2PixPlain(paired_images(256, PIX2PIX_PAIRS), batch, device)
    raise ValueError(f"unknown case {case!r}")


# ---- timing -----------------------------------------------------------------------------------------

def torch_settings(new: dict[str, Any] | None = None) -> dict[str, Any]:
    """torch's global speed settings (threads, cuDNN benchmark/TF32, matmul TF32/precision); sets `new` if given."""
    old = {"threads": torch.get_num_threads(), "benchmark": torch.backends.cudnn.benchmark,
           "cudnn_tf32": torch.backends.cudnn.allow_tf32, "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
           "precision": torch.get_float32_matmul_precision()}
    if new is not None:
        if new["threads"] != old["threads"]:
            torch.set_num_threads(new["threads"])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = new["benchmark"], new["cudnn_tf32"]
        torch.backends.cuda.matmul.allow_tf32 = new["matmul_tf32"]
        torch.set_float32_matmul_precision(new["precision"])
    return old


@contextlib.contextmanager
def plain_settings(saved: dict[str, Any]) -> Iterator[None]:
    """Run the block under torch settings `saved` (as the script found them), then put back the current ones."""
    before = torch_settings(saved)
    try:
        yield
    finally:
        torch_settings(before)


def run_steps(step: Callable[[], dict], sync: Callable[[], None], n: int, losses: list[dict]) -> float:
    """Seconds for n steps (device synchronized before both clock reads); the last step's losses, read back
    as floats only after the clock (ganforge's stay on the device), are appended to `losses`."""
    sync()
    t0 = time.perf_counter()
    out = None
    for _ in range(n):
        out = step()
    sync()
    secs = time.perf_counter() - t0
    if out is not None:
        losses.append({k: float(v) for k, v in out.items()
                       if isinstance(v, (int, float)) or (torch.is_tensor(v) and v.numel() == 1)})
    return secs


def check_losses(side: str, losses: list[dict]) -> str:
    """Stop unless the losses (last step of each run) are finite and some moved; returns 'key first -> last'."""
    keys = [k for k in losses[0] if k.startswith("loss")] or list(losses[0])
    first, last = losses[0], losses[-1]
    bad = [(i, k) for i, d in enumerate(losses) for k, v in d.items() if not math.isfinite(v)]
    if bad:
        raise SystemExit(f"{side}: non-finite {bad[0][1]} at the end of run {bad[0][0]}: {losses[bad[0][0]]}")
    if len(losses) > 1 and all(first[k] == last.get(k) for k in keys):
        raise SystemExit(f"{side}: losses did not change over {len(losses)} runs: {first}")
    return ", ".join(f"{k} {first[k]:.3f} -> {last[k]:.3f}" for k in keys if k in last)


def resolved(tr: Any) -> str:
    """What the trainer made of the speed options: autocast dtype, channels_last, compiled ('?' if not told)."""
    amp = getattr(tr, "amp_dtype", "?")
    amp = "fp32" if amp is None else str(amp).replace("torch.", "")
    flag = {True: "on", False: "off"}
    graphs = getattr(tr, "graphs", "?")
    return (f"{amp}, channels_last {flag.get(getattr(tr, 'channels_last', None), '?')}, "
            f"compiled {flag.get(getattr(tr, 'compiled', None), '?')}, "
            f"cuda_graphs {'?' if graphs == '?' else flag[graphs is not None]}")


def bench_case(case: str, args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    """Build both sides, warm them up, then time them interleaved for args.repeats rounds."""
    from ganforge.bench import make_trainer

    spec = CASES[case]
    batch = args.batch or spec.batch
    device = torch.device(args.device)
    with plain_settings(settings):
        plain = make_plain(case, batch, device)
    overrides = [*spec.overrides, f"train.amp={args.amp}", f"train.channels_last={args.channels_last}",
                 f"train.compile={args.compile}", f"train.cuda_graphs={args.cuda_graphs}", *args.set]
    torch.manual_seed(0)
    tr = make_trainer(spec.target, overrides=overrides, batch_size=batch, device=args.device)
    print(f"  ganforge runs {resolved(tr)}", flush=True)

    def plain_sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def plain_run(n: int, losses: list[dict]) -> float:
        with plain_settings(settings):
            return run_steps(plain.step, plain_sync, n, losses)

    p_losses: list[dict] = []
    g_losses: list[dict] = []
    plain_run(args.warmup, p_losses)
    run_steps(tr.train_step, tr.synchronize, args.warmup, g_losses)
    plain_ips, ours_ips, ours_images = [], [], tr.images_per_step
    for r in range(args.repeats):
        plain_ips.append(args.steps * plain.images_per_step / plain_run(args.steps, p_losses))
        ours_ips.append(args.steps * ours_images / run_steps(tr.train_step, tr.synchronize, args.steps, g_losses))
        print(f"  {case} repeat {r + 1}: plain {plain_ips[-1]:.1f} img/s, ganforge {ours_ips[-1]:.1f} img/s",
              flush=True)
    print(f"  plain losses: {check_losses(f'{case} plain', p_losses)}")
    print(f"  ganforge losses: {check_losses(f'{case} ganforge', g_losses)}")
    if ours_images != plain.images_per_step:
        print(f"  note: ganforge consumes {ours_images} images per step, plain {plain.images_per_step}")
    return {"case": case, "batch": batch, "plain": plain_ips, "ours": ours_ips, "resolved": resolved(tr)}


# ---- report -----------------------------------------------------------------------------------------

def fmt(values: list[float]) -> str:
    """Images/s figures, comma separated."""
    return ", ".join(f"{v:.1f}" for v in values)


def case_table(res: dict[str, Any]) -> str:
    """The per-case table: median and all repeats of each side, and the ratio of medians."""
    p, o = statistics.median(res["plain"]), statistics.median(res["ours"])
    return (f"| {res['case']} (batch {res['batch']}) | images/s (median) | all repeats |\n|---|---|---|\n"
            f"| plain eager fp32 loop | {p:.1f} | {fmt(res['plain'])} |\n"
            f"| ganforge | {o:.1f} | {fmt(res['ours'])} |\n\nratio ganforge/plain: {o / p:.2f}")


def summary(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The RESULTS.md body: command line, options, what each case is, and one row per case."""
    cmd = " ".join(["python benchmarks/speed_vs_plain.py", *map(shlex.quote, sys.argv[1:])])
    rows = [f"| {r['case']} | {r['batch']} | {statistics.median(r['plain']):.1f} | {fmt(r['plain'])} | "
            f"{statistics.median(r['ours']):.1f} | {fmt(r['ours'])} | "
            f"{statistics.median(r['ours']) / statistics.median(r['plain']):.2f} | {r['resolved']} |" for r in results]
    cases = "\n".join(f"- {r['case']}: {CASES[r['case']].what}; ganforge target `{CASES[r['case']].target}` with "
                      f"`{' '.join(CASES[r['case']].overrides)}`" for r in results)
    return (f"`{cmd}`\n\nOptions: device {args.device}, steps {args.steps} (after {args.warmup} warm-up), "
            f"repeats {args.repeats} interleaved, ganforge `train.amp={args.amp} "
            f"train.channels_last={args.channels_last} train.compile={args.compile} "
            f"train.cuda_graphs={args.cuda_graphs}{''.join(' ' + o for o in args.set)}`; plain side eager fp32 "
            f"NCHW.\n\n{cases}\n\n"
            f"| case | batch | plain img/s (median) | plain repeats | ganforge img/s (median) | ganforge repeats "
            f"| ratio ganforge/plain | ganforge ran |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))


def main() -> None:
    """Parse the command line, run the cases, print and (unless --no-record) record the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--steps", type=int, default=30, help="timed steps per repeat and side")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per side before the first repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=0,
                    help="batch size of every case (default per case: " +
                    ", ".join(f"{k} {c.batch}" for k, c in CASES.items()) + ")")
    ap.add_argument("--amp", default="auto", choices=("off", "bf16", "fp16", "auto"))
    ap.add_argument("--channels-last", default="auto", choices=("auto", "on", "off"))
    ap.add_argument("--compile", default="off", choices=("off", "default", "max-autotune"))
    ap.add_argument("--cuda-graphs", default="auto", choices=("auto", "on", "off"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="another override of the ganforge side, e.g. recipe.reuse_fakes=true (repeatable)")
    ap.add_argument("--no-record", action="store_true", help="print only, leave RESULTS.md alone")
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)} (known: {', '.join(CASES)})")
    if args.steps < 1 or args.repeats < 1 or args.warmup < 0 or args.batch < 0:
        ap.error("--steps and --repeats must be >= 1, --warmup and --batch >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available")
    settings = torch_settings()  # before ganforge sets anything
    results = []
    for case in cases:
        print(f"{case}: {CASES[case].what}", flush=True)
        results.append(bench_case(case, args, settings))
        gc.collect()  # free this case's networks and data before the next
        if args.device == "cuda":
            torch.cuda.empty_cache()
        print(case_table(results[-1]) + "\n", flush=True)
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"
    body = summary(results, args)
    print(f"## {SECTION}, {device}\n\n{body}")
    if not args.no_record:
        extra = f", {' '.join(args.set)}" if args.set else ""
        record(f"{SECTION}, {device}{extra}", body)


if __name__ == "__main__":
    main()
