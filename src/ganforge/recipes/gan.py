"""The classic adversarial game for noise-to-image models (gan, dcgan, cgan): any loss, n_critic,
WGAN weight clipping and WGAN-GP's gradient penalty."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import GanforgeError
from ..losses import ADVERSARIAL_LOSSES, d_loss, g_loss, gradient_penalty, r1_penalty
from ..models.base import GANModels
from ..nn.diffaug import check_policy, diff_augment
from ..registry import register_recipe
from ._schedule import lr_factor as decay_factor
from .base import NoiseSampling, Recipe, build_optimizer, labelled, self_condition, warn
from .context import StepContext


@dataclass
class GANConfig:
    """Options of the noise-to-image game."""

    loss: str = "ns"  # ns | minimax | lsgan | hinge | wasserstein
    n_critic: int = 1  # D updates per G update, each on a fresh real batch
    clip: float = 0.0  # WGAN weight clipping of D's parameters to [-clip, clip]; 0 = off
    gp_weight: float = 0.0  # WGAN-GP lambda; 0 = off
    real_label: float = 1.0  # < 1: one-sided label smoothing of D's real target (BCE losses only)
    diffaug: str = ""  # DiffAugment policy for D's inputs, e.g. "translation" or "translation,cutout"
    r1_gamma: float = 0.0  # R1 penalty gamma/2 * E||grad_x D(x_real)||^2 (Mescheder et al. 2018); 0 = off
    r1_every: int = 1  # lazy R1: apply the penalty every N D updates, scaled by N (StyleGAN2)
    lr_decay: float = 0.0  # fraction of the run's last steps over which both learning rates fall linearly to 0
    topk: float = 1.0  # top-k training (Sinha et al. 2020): G learns only from the k fakes D rates most real,
    # k = max(topk_gamma ** epoch, topk) x batch; this `topk` is the floor nu (1 = off, the paper uses 0.5-0.75)
    topk_gamma: float = 0.99  # k's decay per epoch of the training data
    reuse_fakes: bool = False  # the G update learns on the last D update's fakes (same z and labels), as
    # dcgan.torch and the PyTorch DCGAN tutorial do: G runs once a step (with autograd) instead of twice. Off: G
    # learns on fresh noise, a second G forward
    optimizer: str = "adam"  # adam | rmsprop
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self):
        if self.loss not in ADVERSARIAL_LOSSES:
            raise GanforgeError(f"unknown loss {self.loss!r} (known: {', '.join(ADVERSARIAL_LOSSES)})")
        if self.n_critic < 1:
            raise GanforgeError(f"recipe.n_critic must be >= 1, got {self.n_critic}")
        if self.clip < 0 or self.gp_weight < 0 or self.r1_gamma < 0:
            raise GanforgeError("recipe.clip, recipe.gp_weight and recipe.r1_gamma must be >= 0")
        if self.r1_every < 1:
            raise GanforgeError(f"recipe.r1_every must be >= 1, got {self.r1_every}")
        if not 0 < self.topk <= 1 or not 0 < self.topk_gamma <= 1:
            raise GanforgeError(f"recipe.topk and recipe.topk_gamma must lie in (0, 1], got {self.topk}, "
                                f"{self.topk_gamma}")
        if not 0 <= self.lr_decay <= 1:
            raise GanforgeError(f"recipe.lr_decay is a fraction of the run in [0, 1], got {self.lr_decay}")
        if not 0 < self.real_label <= 1:
            raise GanforgeError(f"recipe.real_label must lie in (0, 1], got {self.real_label}")
        check_policy(self.diffaug)
        if self.optimizer not in ("adam", "rmsprop"):
            raise GanforgeError(f"unknown optimizer {self.optimizer!r} (known: adam, rmsprop)")


@register_recipe("gan")
class GANRecipe(NoiseSampling, Recipe):
    """D phase(s) then a G phase per step, on z ~ N(0, I) and, for conditional models, class labels."""

    Config = GANConfig

    def __init__(self, models: GANModels, cfg: GANConfig, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        if models.task != "noise":
            raise GanforgeError(f"recipe 'gan' trains noise-to-image models, not {models.name!r}")
        self.G, self.D = self.nets["G"], self.nets["D"]
        self.z_dim = self.io.z_dim
        # Labels D and G are conditioned on: the classes, or for a self-conditioned model its k-means clusters
        # (which the user never passes: io.num_classes stays 0 and G draws its cluster from z).
        self.clusters = int(models.args.get("clusters") or 0)
        self.num_classes = self.io.num_classes or self.clusters
        self.batches_per_step = cfg.n_critic
        self._kept: tuple | None = None  # recipe.reuse_fakes: (fakes with their G graph, labels) for the G update
        self.d_updates = 0  # D updates so far, for the lazy R1 interval (checkpointed with the training state)
        self.dataset_size = 0  # training images, set by build_dataset: the epoch length of top-k's annealing
        self.aug = check_policy(cfg.diffaug)
        betas = (cfg.beta1, cfg.beta2)
        self.optimizers = {
            "G": build_optimizer(cfg.optimizer, self.G.parameters(), cfg.g_lr, betas, device),
            "D": build_optimizer(cfg.optimizer, self.D.parameters(), cfg.d_lr, betas, device),
        }
        for key in ("g_lr", "d_lr"):
            if getattr(cfg, key) > 0.01:
                warn(f"recipe.{key}={getattr(cfg, key)} is far above the usual 1e-5..1e-3 for GANs; "
                     f"training is likely to diverge")

    def base_hparams(self, name: str) -> dict[str, Any]:
        """The config's learning rate (and Adam betas) of optimizer G or D."""
        cfg = self.cfg
        hp: dict[str, Any] = {"lr": cfg.g_lr if name == "G" else cfg.d_lr}
        if cfg.optimizer == "adam":
            hp["betas"] = (cfg.beta1, cfg.beta2)
        return hp

    def lr_factor(self, step: int) -> float:
        """1, then (with recipe.lr_decay) linear to 0 over the last lr_decay of train.steps."""
        total = int(getattr(self.train_cfg, "steps", 0) or 0) if self.cfg.lr_decay > 0 else 0
        if total <= 0:
            return 1.0
        return decay_factor(step, int(round(total * (1 - self.cfg.lr_decay))), total)

    def end_of_step(self, ctx: StepContext) -> None:
        """Set the learning rates of the next step (a no-op without a schedule)."""
        super().end_of_step(ctx)
        if self.cfg.lr_decay > 0:
            self.apply_hparams(ctx.step + 1)

    def training_state(self) -> dict[str, Any]:
        return {**super().training_state(), "d_updates": self.d_updates}

    def load_training_state(self, state: dict[str, Any], step: int) -> None:
        super().load_training_state(state, step)
        self.d_updates = int(state.get("d_updates", step * self.cfg.n_critic))

    def build_dataset(self, data_cfg: Any):
        ds = super().build_dataset(data_cfg)
        self.dataset_size = len(ds)
        if self.clusters:
            self_condition(ds, self.clusters, self.G.cluster_prior)
        return ds

    def kept_fakes(self, n: int, images_seen: int) -> int:
        """How many of n fakes the G update learns from: n, or with top-k training the annealed k."""
        if self.cfg.topk >= 1:
            return n
        epoch = images_seen / max(self.dataset_size, 1)
        frac = max(self.cfg.topk_gamma ** epoch, self.cfg.topk)
        return max(1, min(n, int(frac * n)))

    def _labels(self, batch: dict[str, Tensor]) -> Tensor | None:
        if self.num_classes <= 0:
            return None
        return labelled(batch, self)

    def d_phase(self, batch: dict[str, Tensor], ctx: StepContext, keep: bool = False) -> dict[str, Any]:
        """One D update on a real batch against fresh samples of the frozen G; with `keep` (recipe.reuse_fakes,
        last D update of the step) G runs with autograd and its fakes are kept for the G update."""
        cfg = self.cfg
        out: dict[str, Any] = {}
        real = batch["image"]
        y = self._labels(batch)
        z = ctx.randn(real.shape[0], self.z_dim)
        D = self.ddp["D"]
        with self.autocast():
            if keep:
                kept = self.ddp["G"](z, y)
                self._kept = (kept, y)
                fake = kept.detach()
            else:
                with torch.no_grad():
                    fake = self.G(z, y)
            d_real = D(diff_augment(real, self.aug), y)
            d_fake = D(diff_augment(fake, self.aug), y)
            loss = d_loss(d_real.float(), d_fake.float(), cfg.loss, cfg.real_label)
        if cfg.gp_weight > 0:
            # The penalty's double backward runs through the unwrapped D: its gradient reaches the same
            # parameters, whose DDP hooks fire once for the summed gradient.
            with self.eager("D"):
                # The mixing coefficients come from the step's generator (ctx), as the latents do.
                eps = ctx.rand(real.shape[0], *([1] * (real.dim() - 1))).to(real.dtype)
                gp = gradient_penalty(lambda x: self.D(x, y), real, fake.float(), eps)
            loss = loss + cfg.gp_weight * gp
            out["gp"] = gp.detach()
        if cfg.r1_gamma > 0 and self.d_updates % cfg.r1_every == 0:
            # Lazy R1 (StyleGAN2): every r1_every-th D update, scaled by the interval so the average pull is
            # the same. Like the GP, its double backward runs through the unwrapped D on a separate forward.
            x = real.detach().requires_grad_(True)
            with self.eager("D"):
                r1 = r1_penalty(self.D(diff_augment(x, self.aug), y).float(), x)
            loss = loss + (cfg.r1_gamma / 2 * cfg.r1_every) * r1
            out["r1"] = r1.detach()
        self.d_updates += 1
        norm = self.optimize(loss, "D", ctx)
        if norm is not None:
            out["grad_norm_D"] = norm
        if cfg.clip > 0:
            with torch.no_grad():
                torch._foreach_clamp_min_(ps := list(self.D.parameters()), -cfg.clip)
                torch._foreach_clamp_max_(ps, cfg.clip)
        out["loss_D"] = loss.detach()
        out["D_real"] = d_real.detach().float().mean()
        out["D_fake"] = d_fake.detach().float().mean()
        return out

    def g_phase(self, n: int, ctx: StepContext) -> dict[str, Any]:
        """One G update judged by the (frozen, unwrapped) D: on fresh noise, or (recipe.reuse_fakes) on the fakes
        and labels of the step's last D update, through the G graph that D update kept."""
        kept, self._kept = self._kept, None
        if kept is not None:
            fake, y = kept
        else:
            z = ctx.randn(n, self.z_dim)
            if self.clusters:  # the cluster G itself draws from z, in the training set's proportions
                y = self.G.cluster_prior(z)
            else:
                y = ctx.randint(self.num_classes, n) if self.num_classes > 0 else None
        k = self.kept_fakes(n, ctx.images_seen)
        with self.frozen("D") as D, self.autocast():
            if kept is None:
                fake = self.ddp["G"](z, y)
            scores = D(diff_augment(fake, self.aug), y).float()
            if k < n:  # every loss here rates higher outputs as more real
                scores = scores.flatten().topk(k).values
            gl = g_loss(scores, self.cfg.loss)
            norm = self.optimize(gl, "G", ctx)
        out = {"loss_G": gl.detach()}
        if k < n:
            out["topk"] = k
        if norm is not None:
            out["grad_norm_G"] = norm
        return out

    def graph_key(self, ctx: StepContext) -> Any:
        """train.cuda_graphs: steps differ by which D updates take lazy R1 and by top-k's k; a step whose
        learning rates decay is not captured (they change every step)."""
        if self.cfg.lr_decay > 0 and self.lr_factor(ctx.step) < 1:
            return None
        r1 = tuple(self.cfg.r1_gamma > 0 and (self.d_updates + i) % self.cfg.r1_every == 0
                   for i in range(ctx.batches))
        return "gan", r1, self.kept_fakes(ctx.batch_size, ctx.images_seen)

    def replayed(self, ctx: StepContext) -> None:
        self.d_updates += ctx.batches

    def step(self, batches: list[dict[str, Tensor]], ctx: StepContext) -> dict[str, Any]:
        """n_critic D updates, each on a fresh real batch, then one G update."""
        out: dict[str, Any] = {}
        for i, batch in enumerate(batches):
            out.update(self.d_phase(batch, ctx, keep=self.cfg.reuse_fakes and i == len(batches) - 1))
        out.update(self.g_phase(batches[0]["image"].shape[0], ctx))
        if self.cfg.loss == "wasserstein":
            out["wasserstein_estimate"] = out["D_real"] - out["D_fake"]
        return out

