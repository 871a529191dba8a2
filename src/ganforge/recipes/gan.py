"""The classic adversarial game for noise-to-image models (gan, dcgan, cgan): any loss, n_critic,
WGAN weight clipping and WGAN-GP's gradient penalty."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import GanforgeError
from ..losses import ADVERSARIAL_LOSSES, d_loss, g_loss, gradient_penalty
from ..models.base import GANModels, make_latents
from ..nn.diffaug import check_policy, diff_augment
from ..registry import register_recipe
from .base import Recipe, build_optimizer


@dataclass
class GANConfig:
    """Options of the noise-to-image game."""

    loss: str = "ns"  # ns | minimax | lsgan | hinge | wasserstein
    n_critic: int = 1  # D updates per G update, each on a fresh real batch
    clip: float = 0.0  # WGAN weight clipping of D's parameters to [-clip, clip]; 0 = off
    gp_weight: float = 0.0  # WGAN-GP lambda; 0 = off
    real_label: float = 1.0  # < 1: one-sided label smoothing of D's real target (BCE losses only)
    diffaug: str = ""  # DiffAugment policy for D's inputs, e.g. "translation" or "translation,cutout"
    optimizer: str = "adam"  # adam | rmsprop
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


@register_recipe("gan")
class GANRecipe(Recipe):
    """D phase(s) then a G phase per step, on z ~ N(0, I) and, for conditional models, class labels."""

    Config = GANConfig

    def __init__(self, models: GANModels, cfg: GANConfig, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        if cfg.loss not in ADVERSARIAL_LOSSES:
            raise GanforgeError(f"unknown loss {cfg.loss!r} (known: {', '.join(ADVERSARIAL_LOSSES)})")
        if cfg.n_critic < 1:
            raise GanforgeError("recipe.n_critic must be >= 1")
        if models.task != "noise":
            raise GanforgeError(f"recipe 'gan' trains noise-to-image models, not {models.name!r}")
        self.G, self.D = self.nets["G"], self.nets["D"]
        self.num_classes = getattr(self.G, "num_classes", 0)
        self.batches_per_step = cfg.n_critic
        self.aug = check_policy(cfg.diffaug)
        betas = (cfg.beta1, cfg.beta2)
        self.optimizers = {
            "G": build_optimizer(cfg.optimizer, self.G.parameters(), cfg.g_lr, betas),
            "D": build_optimizer(cfg.optimizer, self.D.parameters(), cfg.d_lr, betas),
        }

    def _labels(self, batch: dict[str, Tensor]) -> Tensor | None:
        if self.num_classes <= 0:
            return None
        y = batch.get("label")
        if y is None or (y < 0).any():
            raise GanforgeError("a conditional model needs labelled data (a class-folder layout or a labelled dataset)")
        return y

    def step(self, batches: list[dict[str, Tensor]]) -> dict[str, float]:
        """n_critic D updates, then one G update."""
        cfg = self.cfg
        out: dict[str, float] = {}
        for batch in batches:
            real = batch["image"]
            y = self._labels(batch)
            z = torch.randn(real.shape[0], self.G.z_dim, device=self.device)
            with self.autocast():
                with torch.no_grad():
                    fake = self.G(z, y)
                d_real = self.D(diff_augment(real, self.aug), y)
                d_fake = self.D(diff_augment(fake, self.aug), y)
                loss = d_loss(d_real.float(), d_fake.float(), cfg.loss, cfg.real_label)
            if cfg.gp_weight > 0:
                gp = gradient_penalty(lambda x: self.D(x, y), real, fake.float())
                loss = loss + cfg.gp_weight * gp
                out["gp"] = float(gp.detach())
            out["grad_norm_D"] = self.optimize(loss, "D")
            if cfg.clip > 0:
                with torch.no_grad():
                    for p in self.D.parameters():
                        p.clamp_(-cfg.clip, cfg.clip)
            out["loss_D"] = float(loss.detach())
            out["D_real"] = float(d_real.detach().float().mean())
            out["D_fake"] = float(d_fake.detach().float().mean())
        n = batches[0]["image"].shape[0]
        z = torch.randn(n, self.G.z_dim, device=self.device)
        y = torch.randint(0, self.num_classes, (n,), device=self.device) if self.num_classes > 0 else None
        with self.autocast():
            gl = g_loss(self.D(diff_augment(self.G(z, y), self.aug), y).float(), cfg.loss)
        out["grad_norm_G"] = self.optimize(gl, "G")
        out["loss_G"] = float(gl.detach())
        if cfg.loss == "wasserstein":
            out["wasserstein_estimate"] = out["D_real"] - out["D_fake"]
        return out

    def fixed_inputs(self, n: int, seed: int, dataset: Any = None) -> dict[str, Tensor]:
        """Fixed latents (and labels cycling through classes, one class per grid column)."""
        if self.num_classes > 0:
            n = max(self.num_classes, (n // self.num_classes) * self.num_classes)
        z, y = make_latents(self.G, n, seed)
        return {"z": z, **({"y": y} if y is not None else {})}

    @torch.no_grad()
    def eval_images(self, nets: dict[str, nn.Module], n: int, seed: int) -> Tensor:
        """n samples from seeded latents, labels cycling through the classes."""
        g = nets["G"]
        was = g.training
        g.eval()
        z, y = make_latents(g, n, seed + 1)
        out = torch.cat([g(z[i:i + 256].to(self.device), None if y is None else y[i:i + 256].to(self.device)).float().cpu()
                         for i in range(0, n, 256)])
        g.train(was)
        return out

    @torch.no_grad()
    def render(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """Generator output for the fixed latents."""
        g = nets["G"]
        was = g.training
        g.eval()
        imgs = g(inputs["z"].to(self.device), inputs["y"].to(self.device) if "y" in inputs else None)
        g.train(was)
        return imgs.float().cpu(), (self.num_classes if self.num_classes > 0 else 8)
