"""The BigGAN training game (Brock et al. 2019; facts from ajbrock/BigGAN-PyTorch train_fns.py and utils.py).

Per step: `d_steps` D updates, then one G update; each update accumulates gradients over `accumulate`
micro-batches of train.batch_size (the reference's num_D_accumulations / num_G_accumulations), so the
effective batch is batch_size x accumulate on the memory of one micro-batch. Hinge loss; Adam with the
paper's learning rates (G 5e-5, D 2e-4), betas (0, 0.999) and the reference's eps 1e-6; the off-diagonal
orthogonal regularisation added to G's gradients (the shared embedding left out, as the reference does).

BatchNorm under accumulation: G's batch statistics are those of each micro-batch, as in the reference (its
accumulated batch is never normalised as one); the effective batch changes the gradient's noise, not the
normalisation. For sampling, G's stored statistics are replaced by standing statistics: the mean over
`standing_stats` batches of generated samples (classes cycling, fixed seed), computed on the G about to be
sampled before every snapshot, evaluation and checkpoint, so a loaded checkpoint samples in eval mode with
them and a single-class batch is normalised like any other.

Class labels: D sees reals with their labels and fakes drawn with the same labels; G's update draws labels
from the data's class frequencies (`labels: data`, so D meets the same class prior in reals and fakes) or
uniformly (`labels: uniform`). A dataset with one class is refused; one whose classes differ more than
`imbalance_warn` times in count gets a warning that states this policy.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import GanforgeError
from ..losses import add_ortho_grad, d_loss, g_loss
from ..models.base import GANModels
from ..nn.conditional_bn import standing_stats
from ..nn.diffaug import check_policy, diff_augment
from ..registry import register_recipe
from .base import NoiseSampling, Recipe, build_optimizer
from .context import StepContext

LABELS = ("data", "uniform")


@dataclass
class BigGANConfig:
    """Options of the BigGAN game; the defaults are the paper's (section 3 and appendix C)."""

    g_lr: float = 5e-5
    d_lr: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.999
    adam_eps: float = 1e-6  # the reference's ImageNet scripts (--adam_eps 1e-6)
    d_steps: int = 2  # D updates per G update, each on fresh real batches
    accumulate: int = 1  # micro-batches per update (effective batch = train.batch_size x accumulate)
    ortho: float = 1e-4  # orthogonal regularisation strength on G (0 = off)
    standing_stats: int = 16  # batches of standing statistics before sampling (0 = keep the running ones)
    labels: str = "data"  # class labels of G's update: data (the training set's frequencies) | uniform
    diffaug: str = ""  # DiffAugment policy for D's inputs (small datasets), e.g. "translation"
    imbalance_warn: float = 3.0  # warn when the largest class has more than this many times the smallest's images

    def __post_init__(self):
        for key in ("d_steps", "accumulate"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise GanforgeError(f"recipe.{key} must be an integer >= 1, got {v!r}")
        if isinstance(self.standing_stats, bool) or not isinstance(self.standing_stats, int) or self.standing_stats < 0:
            raise GanforgeError(f"recipe.standing_stats must be an integer >= 0, got {self.standing_stats!r}")
        for key in ("g_lr", "d_lr", "adam_eps"):
            if not getattr(self, key) > 0:
                raise GanforgeError(f"recipe.{key} must be > 0, got {getattr(self, key)}")
        if self.ortho < 0:
            raise GanforgeError(f"recipe.ortho must be >= 0, got {self.ortho}")
        for key in ("beta1", "beta2"):
            if not 0 <= getattr(self, key) < 1:
                raise GanforgeError(f"recipe.{key} must lie in [0, 1), got {getattr(self, key)}")
        if self.labels not in LABELS:
            raise GanforgeError(f"unknown recipe.labels {self.labels!r} (known: {', '.join(LABELS)})")
        if not self.imbalance_warn >= 1:
            raise GanforgeError(f"recipe.imbalance_warn must be >= 1, got {self.imbalance_warn}")
        check_policy(self.diffaug)


@register_recipe("biggan")
class BigGANRecipe(NoiseSampling, Recipe):
    """d_steps hinge D updates, then a hinge G update with orthogonal regularisation; micro-batch accumulation."""

    Config = BigGANConfig

    def __init__(self, models: GANModels, cfg: BigGANConfig, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        G = models.nets.get("G")
        if models.task != "noise" or not hasattr(G, "shared") or models.io.num_classes < 1:
            raise GanforgeError(f"recipe 'biggan' trains BigGAN generators, not {models.name!r}")
        self.G, self.D = G, self.nets["D"]
        self.z_dim = self.io.z_dim
        self.num_classes = self.io.num_classes
        self.class_probs = torch.full((self.num_classes,), 1.0 / self.num_classes)
        self._cdf: Tensor | None = None  # cumulative class_probs on the training device
        self.aug = check_policy(cfg.diffaug)
        self.batches_per_step = cfg.d_steps * cfg.accumulate
        shared = {id(p) for p in G.shared.parameters()}
        self.ortho_params = [p for p in G.parameters() if id(p) not in shared]
        self.optimizers = {
            "G": build_optimizer("adam", G.parameters(), cfg.g_lr, (cfg.beta1, cfg.beta2), device),
            "D": build_optimizer("adam", self.D.parameters(), cfg.d_lr, (cfg.beta1, cfg.beta2), device),
        }
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["eps"] = cfg.adam_eps

    def base_hparams(self, name: str) -> dict[str, Any]:
        """The config's learning rate and betas of optimizer G or D."""
        return {"lr": self.cfg.g_lr if name == "G" else self.cfg.d_lr, "betas": (self.cfg.beta1, self.cfg.beta2)}

    # ---- data and labels --------------------------------------------------------------------------
    def build_dataset(self, data_cfg: Any):
        """The labelled training set, checked against the model's classes; its class frequencies kept."""
        ds = super().build_dataset(data_cfg)
        labels = getattr(ds, "labels", None)
        k = getattr(ds, "num_classes", None)
        if labels is None or not k:
            raise GanforgeError("BigGAN is class-conditional but the dataset has no class labels: give a folder "
                                "with one subfolder per class (at least two; a single subfolder is read as "
                                "unlabelled images) or a labelled dataset such as mnist or cifar10")
        labels = torch.as_tensor(labels)
        if (labels < 0).any():
            raise GanforgeError("BigGAN is class-conditional: some training images have no label")
        if k < 2:
            raise GanforgeError("the dataset has one class: BigGAN needs at least two (for one class train an "
                                "unconditional model such as dcgan or stylegan2)")
        if k != self.num_classes:
            raise GanforgeError(f"the dataset has {k} classes but the model was built for {self.num_classes}: "
                                f"set model.num_classes={k}")
        counts = torch.bincount(labels.long(), minlength=k).double()
        if (counts == 0).any():
            empty = ", ".join(str(i) for i in torch.nonzero(counts == 0).flatten().tolist())
            raise GanforgeError(f"class(es) {empty} have no training images")
        self._cdf = None
        self.class_probs = (counts / counts.sum()).float()
        if counts.max() > self.cfg.imbalance_warn * counts.min():
            policy = ("G is trained on labels drawn in the data's proportions, so rare classes get fewer "
                      "updates (recipe.labels=uniform draws them evenly)") if self.cfg.labels == "data" else \
                     "G is trained on uniformly drawn labels while reals come in the data's proportions"
            print(f"ganforge: warning: class sizes differ from {int(counts.min())} to {int(counts.max())} "
                  f"images; {policy}", file=sys.stderr)
        return ds

    def _g_labels(self, n: int, ctx: StepContext) -> Tensor:
        if self.cfg.labels == "uniform":
            return ctx.randint(self.num_classes, n)
        u = ctx.rand(n)
        if self._cdf is None or self._cdf.device != u.device:
            # Once: copying the CPU table to a GPU every step was the one host sync left in BigGAN's step.
            self._cdf = torch.cumsum(self.class_probs, 0).to(u.device)
        return torch.searchsorted(self._cdf, u.contiguous(), right=True).clamp_(max=self.num_classes - 1)

    # ---- the game ---------------------------------------------------------------------------------
    def batch_plan(self, ctx: StepContext) -> tuple[int, int]:
        return int(self.train_cfg.batch_size), self.batches_per_step

    def _micro(self, name: str, i: int):
        """All micro-batches but an update's last skip DDP's all-reduce."""
        return self.no_sync(name) if i < self.cfg.accumulate - 1 else contextlib.nullcontext()

    def d_update(self, batches: list[dict[str, Tensor]], ctx: StepContext) -> dict[str, Any]:
        """One D update: hinge loss on real micro-batches and as many fakes of G (train mode, no grad)."""
        acc = len(batches)
        D = self.ddp["D"]
        self.zero_grad("D")
        total = real_mean = fake_mean = 0.0
        for i, batch in enumerate(batches):
            real, y = batch["image"], batch["label"]
            z = ctx.randn(real.shape[0], self.z_dim)
            with self._micro("D", i):
                with self.autocast():
                    with torch.no_grad():
                        fake = self.G(z, y)
                    d_real = D(diff_augment(real, self.aug), y).float()
                    d_fake = D(diff_augment(fake, self.aug), y).float()
                    loss = d_loss(d_real, d_fake, "hinge")
                self.backward(loss / acc, "D")
            total = total + loss.detach() / acc
            real_mean = real_mean + d_real.detach().mean() / acc
            fake_mean = fake_mean + d_fake.detach().mean() / acc
        norm = self.step_optimizer("D", ctx)
        out = {"loss_D": total, "D_real": real_mean, "D_fake": fake_mean}
        if norm is not None:
            out["grad_norm_D"] = norm
        return out

    def g_update(self, n: int, ctx: StepContext) -> dict[str, Any]:
        """One G update: hinge G loss from the frozen D, accumulated, plus the orthogonal regulariser's gradient."""
        acc = self.cfg.accumulate
        G = self.ddp["G"]
        self.zero_grad("G")
        total = 0.0
        with self.frozen("D") as D:
            for i in range(acc):
                z, y = ctx.randn(n, self.z_dim), self._g_labels(n, ctx)
                with self._micro("G", i):
                    with self.autocast():
                        loss = g_loss(D(diff_augment(G(z, y), self.aug), y).float(), "hinge")
                    self.backward(loss / acc, "G")
                total = total + loss.detach() / acc
        if self.cfg.ortho > 0:  # after the all-reduce: the same term on every rank, as the weights are equal
            add_ortho_grad(self.ortho_params, self.cfg.ortho)
        norm = self.step_optimizer("G", ctx)
        out = {"loss_G": total}
        if norm is not None:
            out["grad_norm_G"] = norm
        return out

    def step(self, batches: list[dict[str, Tensor]], ctx: StepContext) -> dict[str, Any]:
        """d_steps D updates on fresh micro-batches, then one G update."""
        out: dict[str, Any] = {}
        acc = self.cfg.accumulate
        for s in range(self.cfg.d_steps):
            out.update(self.d_update(batches[s * acc:(s + 1) * acc], ctx))
        out.update(self.g_update(batches[0]["image"].shape[0], ctx))
        return out

    # ---- sampling ---------------------------------------------------------------------------------
    def before_sampling(self, nets: dict[str, nn.Module]) -> None:
        """Standing statistics on the G about to be sampled (seeded apart from training's random streams)."""
        if self.cfg.standing_stats > 0:
            compute_standing_stats(nets["G"], self.cfg.standing_stats, int(self.train_cfg.batch_size))


def compute_standing_stats(G: nn.Module, batches: int = 16, batch_size: int = 64, seed: int = 0) -> None:
    """BigGAN's standing statistics of G: stored BN statistics averaged over `batches` batches of samples with
    classes cycling through all of them, drawn from a private generator (the global RNG is left alone)."""
    dev = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    k = G.shared.num_embeddings

    def forward(i: int) -> None:
        z = torch.randn(batch_size, G.z_dim, generator=gen)
        y = (torch.arange(batch_size) + i * batch_size) % k
        G(z.to(dev), y.to(dev))

    standing_stats(G, forward, batches)
