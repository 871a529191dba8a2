"""CycleGAN (Zhu et al. 2017): two generators between unaligned domains, held together by cycle consistency.

One step, as the reference's cycle_gan_model.optimize_parameters: fake_B = G_AB(A), rec_A = G_BA(fake_B),
fake_A = G_BA(B), rec_B = G_AB(fake_A); first the generators' update with both discriminators frozen,
on
    loss(D_B(fake_B), real) + loss(D_A(fake_A), real)
    + lambda_A ||rec_A - A||_1 + lambda_B ||rec_B - B||_1
    + lambda_identity * (lambda_B ||G_AB(B) - B||_1 + lambda_A ||G_BA(A) - A||_1),
then the discriminators' update, each on 0.5 * (loss(D(real), real) + loss(D(pool(fake)), fake)) where
the pool is the 50-image history of generated images (see image_pool). Defaults are the paper's and
the reference's: LSGAN (MSE), lambda_A = lambda_B = 10, lambda_identity = 0.5, pool of 50, Adam lr
2e-4, betas (0.5, 0.999), one optimizer for both G and one for both D, resize to 286 then random 256
crop (scaled for other sizes), random flips, constant-then-linearly-decaying learning rate.

The identity term feeds B images to G_AB, so it needs both domains to have the same channel count; with
lambda_identity > 0 and different counts the recipe refuses to start (the reference asserts the same).
D_A judges domain-A images (the reference's netD_B), D_B domain-B images (its netD_A).

Snapshots, on the first held-out images, one row each: A | G_AB(A) | G_BA(G_AB(A)) | B | G_BA(B) | G_AB(G_BA(B)).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.paired import UnpairedDataset
from ..errors import GanforgeError
from ..losses.translation import check_translation_loss, cycle_loss, gan_loss, halved_d_loss, identity_loss
from ..models.base import GANModels
from ..registry import register_recipe
from ._translation import HELD_OUT_SPLITS, TranslationData, TranslationRecipe, as_rgb, warn
from .image_pool import ImagePool


@dataclass
class CycleGANConfig:
    """Options of the CycleGAN game; defaults are the paper's."""

    loss: str = "lsgan"  # lsgan (MSE) | vanilla (BCE with logits)
    lambda_a: float = 10.0  # weight of the A -> B -> A cycle
    lambda_b: float = 10.0  # weight of the B -> A -> B cycle
    lambda_identity: float = 0.5  # identity weight relative to lambda_a / lambda_b; 0 = off
    pool_size: int = 50  # generated-image history per discriminator; 0 = off
    lr: float = 2e-4  # G and D
    beta1: float = 0.5
    beta2: float = 0.999
    load_size: int | None = None  # resize before the random crop; None: image_size * 286 / 256
    flip: bool = True  # random horizontal flips
    serial: bool = False  # pair A[i] with B[i] rather than with a random B (the reference's --serial_batches)
    decay_start: int | None = None  # step where the linear LR decay starts; None: total_steps // 2
    total_steps: int | None = None  # step where the LR reaches 0; None: train.steps


@register_recipe("cyclegan")
class CycleGANRecipe(TranslationRecipe):
    """Generators then discriminators per step on unaligned batches {"A", "B"}."""

    Config = CycleGANConfig

    def __init__(self, models: GANModels, cfg: CycleGANConfig, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        if models.name != "cyclegan":
            raise GanforgeError(f"recipe 'cyclegan' trains the cyclegan model, not {models.name!r}")
        check_translation_loss(cfg.loss)
        for key in ("lambda_a", "lambda_b", "lambda_identity"):
            if getattr(cfg, key) < 0:
                raise GanforgeError(f"recipe.{key} must be >= 0, got {getattr(cfg, key)}")
        ca, cb = models.args["channels_a"], models.args["channels_b"]
        if cfg.lambda_identity > 0 and ca != cb:
            raise GanforgeError(f"the identity loss needs domains with equal channels (A has {ca}, B {cb}): "
                                f"set recipe.lambda_identity=0")
        n = self.nets
        self.G_AB, self.G_BA, self.D_A, self.D_B = n["G_AB"], n["G_BA"], n["D_A"], n["D_B"]
        betas = (cfg.beta1, cfg.beta2)
        self.optimizers = {
            "G": torch.optim.Adam(itertools.chain(self.G_AB.parameters(), self.G_BA.parameters()), lr=cfg.lr, betas=betas),
            "D": torch.optim.Adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), lr=cfg.lr, betas=betas),
        }
        # pool_B holds generated B images for D_B, pool_A generated A images for D_A.
        self.pool_a, self.pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)
        self.plan_schedule(None)

    # ---- data ----------------------------------------------------------------------------------------
    def build_dataset(self, data_cfg: Any) -> TranslationData:
        """Two domains from data.source (<split>A/ + <split>B/, or demo:grass2gravel), in the model's channels."""
        a = self.models.args
        size, channels = a["image_size"], (a["channels_a"], a["channels_b"])
        root = self.data_root(str(data_cfg.source), "unpaired", size)
        ds = UnpairedDataset(root, split=data_cfg.split, image_size=size, load_size=self.load_size(size),
                             flip=self.cfg.flip, seed=self.seed, serial=self.cfg.serial, channels=channels)
        if ds.skipped:
            warn(f"{ds.skipped} unreadable file(s) skipped, e.g. {ds.skipped_files[0]}")
        self.heldout = None
        for split in HELD_OUT_SPLITS:
            if split == data_cfg.split:
                continue
            try:
                self.heldout = UnpairedDataset(root, split=split, image_size=size, load_size=size, flip=False,
                                               serial=True, channels=channels)
                break
            except GanforgeError:
                continue
        if self.heldout is None:
            warn(f"no held-out split (testA/testB or valA/valB) under {root}: snapshots show training images")
            self.heldout = UnpairedDataset(root, split=data_cfg.split, image_size=size, load_size=size, flip=False,
                                           serial=True, channels=channels)
        return TranslationData(ds, str(data_cfg.source), root)

    # ---- the game ------------------------------------------------------------------------------------
    def step(self, batches: list[dict[str, Tensor]]) -> dict[str, float]:
        """One update of both generators, then one of both discriminators."""
        self.check_schedule()
        cfg, kind = self.cfg, self.cfg.loss
        real_a, real_b = batches[0]["A"], batches[0]["B"]
        with self.autocast():
            fake_b = self.G_AB(real_a)
            rec_a = self.G_BA(fake_b)
            fake_a = self.G_BA(real_b)
            rec_b = self.G_AB(fake_a)
        # Generators, discriminators frozen.
        for d in (self.D_A, self.D_B):
            d.requires_grad_(False)
        idt_a = idt_b = real_a.new_zeros(())
        with self.autocast():
            if cfg.lambda_identity > 0:
                idt_a = identity_loss(self.G_BA(real_a).float(), real_a, cfg.lambda_a, cfg.lambda_identity)
                idt_b = identity_loss(self.G_AB(real_b).float(), real_b, cfg.lambda_b, cfg.lambda_identity)
            pred_fake_b = self.D_B(fake_b).float()
            pred_fake_a = self.D_A(fake_a).float()
        adv_ab, adv_ba = gan_loss(pred_fake_b, True, kind), gan_loss(pred_fake_a, True, kind)
        cyc_a = cycle_loss(rec_a.float(), real_a, cfg.lambda_a)
        cyc_b = cycle_loss(rec_b.float(), real_b, cfg.lambda_b)
        loss_g = adv_ab + adv_ba + cyc_a + cyc_b + idt_a + idt_b
        out = {"grad_norm_G": self.optimize(loss_g, "G")}
        for d in (self.D_A, self.D_B):
            d.requires_grad_(True)
        # Discriminators on the generated images from before the G update, through the history pools
        # (the reference queries the pool of fake B first).
        pooled_b = self.pool_b.query(fake_b.detach())
        pooled_a = self.pool_a.query(fake_a.detach())
        with self.autocast():
            d_b = halved_d_loss(self.D_B(real_b).float(), self.D_B(pooled_b).float(), kind)
            d_a = halved_d_loss(self.D_A(real_a).float(), self.D_A(pooled_a).float(), kind)
        out["grad_norm_D"] = self.optimize(d_a + d_b, "D")
        vals = dict(loss_G=loss_g, loss_G_AB=adv_ab, loss_G_BA=adv_ba, loss_cycle_A=cyc_a, loss_cycle_B=cyc_b,
                    loss_D_A=d_a, loss_D_B=d_b)
        if cfg.lambda_identity > 0:
            vals.update(loss_idt_A=idt_a, loss_idt_B=idt_b)
        out.update({k: float(v.detach()) for k, v in vals.items()})
        return out

    # ---- state ---------------------------------------------------------------------------------------
    def training_state(self) -> dict[str, Any]:
        """Optimizers, schedule position and the contents of both image pools."""
        return {**super().training_state(), "pools": {"A": self.pool_a.state_dict(), "B": self.pool_b.state_dict()}}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore training_state(), image pools included."""
        super().load_training_state(state)
        pools = state.get("pools")
        if pools is None:
            raise GanforgeError("checkpoint has no CycleGAN image pools")
        self.pool_a.load_state_dict(pools["A"])
        self.pool_b.load_state_dict(pools["B"])

    # ---- snapshots -----------------------------------------------------------------------------------
    def fixed_inputs(self, n: int, seed: int, dataset: Any = None) -> dict[str, Tensor]:
        """The first n held-out images of each domain (fewer if a domain has fewer)."""
        if self.heldout is None:
            raise GanforgeError("fixed_inputs needs build_dataset to have run")
        h = self.heldout
        k = min(n, len(h.files_a), len(h.files_b))
        items = [h[i] for i in range(k)]  # serial: item i is (testA[i], testB[i])
        return {"A": torch.stack([it["A"] for it in items]), "B": torch.stack([it["B"] for it in items])}

    @torch.no_grad()
    def render(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """One row per example: A | G_AB(A) | G_BA(G_AB(A)) | B | G_BA(B) | G_AB(G_BA(B)), generators in eval mode."""
        g_ab, g_ba = nets["G_AB"], nets["G_BA"]
        modes = (g_ab.training, g_ba.training)
        g_ab.eval()
        g_ba.eval()
        try:
            a, b = inputs["A"].to(self.device), inputs["B"].to(self.device)
            fb = g_ab(a)
            ra = g_ba(fb)
            fa = g_ba(b)
            rb = g_ab(fa)
        finally:
            g_ab.train(modes[0])
            g_ba.train(modes[1])
        cols = [as_rgb(x).float().cpu() for x in (a, fb, ra, b, fa, rb)]
        return torch.stack(cols, 1).flatten(0, 1), 6
