"""Pix2Pix (Isola et al. 2017): a conditional GAN on aligned (input, target) pairs, plus L1 to the target.

One step, as the reference's pix2pix_model.optimize_parameters: fake = G(a) once; D update on
0.5 * (loss(D(a, b), real) + loss(D(a, fake.detach()), fake)), the objective halved as in the paper;
then, with D frozen, the G update on loss(D(a, fake), real) + lambda_l1 * ||fake - b||_1 against the
just-updated D. G trains in train mode, its dropout being the only noise (the paper gives G no z).
Defaults are the paper's: BCE with logits ("vanilla"), lambda_l1 = 100, Adam lr 2e-4, betas (0.5,
0.999), resize to 286 then random 256 crop (scaled for other sizes) and random flips, the same for
both images of a pair, and constant-then-linearly-decaying learning rate (see _translation).

Snapshots: input | output | target, G in eval mode, on the first images of the held-out split.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.paired import DIRECTIONS, PairedDataset
from ..errors import GanforgeError
from ..losses.translation import check_translation_loss, gan_loss, halved_d_loss, l1_loss
from ..models.base import GANModels
from ..registry import register_recipe
from ._translation import HELD_OUT_SPLITS, TranslationData, TranslationRecipe, as_rgb, sheet_columns, warn


@dataclass
class Pix2PixConfig:
    """Options of the Pix2Pix game; defaults are the paper's."""

    loss: str = "vanilla"  # vanilla (BCE with logits) | lsgan (MSE)
    lambda_l1: float = 100.0
    lr: float = 2e-4  # G and D
    beta1: float = 0.5
    beta2: float = 0.999
    direction: str = "AtoB"  # AtoB | BtoA: which side of each pair is the input
    load_size: int | None = None  # resize before the random crop; None: image_size * 286 / 256
    flip: bool = True  # random horizontal flips, the same for both images of a pair
    decay_start: int | None = None  # step where the linear LR decay starts; None: total_steps // 2
    total_steps: int | None = None  # step where the LR reaches 0; None: train.steps


@register_recipe("pix2pix")
class Pix2PixRecipe(TranslationRecipe):
    """D then G per step on aligned pairs {"A": input, "B": target}."""

    Config = Pix2PixConfig

    def __init__(self, models: GANModels, cfg: Pix2PixConfig, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        if models.name != "pix2pix":
            raise GanforgeError(f"recipe 'pix2pix' trains the pix2pix model, not {models.name!r}")
        check_translation_loss(cfg.loss)
        if cfg.direction not in DIRECTIONS:
            raise GanforgeError(f"recipe.direction must be one of {', '.join(DIRECTIONS)}, got {cfg.direction!r}")
        if cfg.lambda_l1 < 0:
            raise GanforgeError(f"recipe.lambda_l1 must be >= 0, got {cfg.lambda_l1}")
        self.G, self.D = self.nets["G"], self.nets["D"]
        betas = (cfg.beta1, cfg.beta2)
        self.optimizers = {
            "G": torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas),
            "D": torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas),
        }
        self.plan_schedule(None)

    # ---- data ----------------------------------------------------------------------------------------
    def _channels(self) -> tuple[int, int]:
        """Channels of domains (A, B) as the model expects them, whichever side is the input."""
        a = self.models.args
        pair = (a["in_channels"], a["out_channels"])
        return pair if self.cfg.direction == "AtoB" else (pair[1], pair[0])

    def build_dataset(self, data_cfg: Any) -> TranslationData:
        """Aligned pairs from data.source (a folder, or demo:colorize / demo:edges), converted to the model's channels."""
        size = self.models.args["image_size"]
        root = self.data_root(str(data_cfg.source), "paired", size)
        ds = PairedDataset(root, split=data_cfg.split, image_size=size, load_size=self.load_size(size),
                           direction=self.cfg.direction, jitter=True, flip=self.cfg.flip, seed=self.seed,
                           channels=self._channels())
        if ds.unpaired:
            warn(f"{len(ds.unpaired)} file(s) without a partner skipped, e.g. {ds.unpaired[0]}")
        if ds.skipped:
            warn(f"{ds.skipped} unreadable file(s) skipped, e.g. {ds.skipped_files[0]}")
        self.heldout = self._heldout(root, data_cfg.split, size)
        return TranslationData(ds, str(data_cfg.source), root)

    def _heldout(self, root, train_split: str, size: int) -> PairedDataset:
        """Pairs for snapshots and evaluation: the first held-out split found, without augmentation."""
        kw = dict(image_size=size, load_size=size, direction=self.cfg.direction, jitter=False, flip=False,
                  channels=self._channels())
        for split in HELD_OUT_SPLITS:
            if split == train_split:
                continue
            try:
                return PairedDataset(root, split=split, **kw)
            except GanforgeError:
                continue
        warn(f"no held-out split ({'/'.join(HELD_OUT_SPLITS)}) under {root}: snapshots show training pairs")
        return PairedDataset(root, split=train_split, **kw)

    # ---- the game ------------------------------------------------------------------------------------
    def step(self, batches: list[dict[str, Tensor]]) -> dict[str, float]:
        """One D update, then one G update, on one batch of pairs."""
        self.check_schedule()
        cfg = self.cfg
        real_a, real_b = batches[0]["A"], batches[0]["B"]
        if real_a.shape[1] != self.G.in_ch or real_b.shape[1] != self.G.out_ch:
            raise GanforgeError(f"pairs have {real_a.shape[1]}->{real_b.shape[1]} channels, the model "
                                f"{self.G.in_ch}->{self.G.out_ch}")
        with self.autocast():
            fake_b = self.G(real_a)
        # D: the fake pair first, then the real one, each its own forward (as the reference; BatchNorm
        # statistics are per call).
        self.D.requires_grad_(True)
        with self.autocast():
            pred_fake = self.D(torch.cat([real_a, fake_b.detach()], 1)).float()
            pred_real = self.D(torch.cat([real_a, real_b], 1)).float()
        loss_d = halved_d_loss(pred_real, pred_fake, cfg.loss)
        out = {"grad_norm_D": self.optimize(loss_d, "D")}
        # G: D frozen (no wasted gradients), judged by the D just updated.
        self.D.requires_grad_(False)
        with self.autocast():
            pred = self.D(torch.cat([real_a, fake_b], 1)).float()
        loss_g_gan = gan_loss(pred, True, cfg.loss)
        loss_g_l1 = l1_loss(fake_b.float(), real_b)
        loss_g = loss_g_gan + cfg.lambda_l1 * loss_g_l1
        out["grad_norm_G"] = self.optimize(loss_g, "G")
        self.D.requires_grad_(True)
        out.update(
            loss_D=float(loss_d.detach()),
            loss_G=float(loss_g.detach()),
            loss_G_GAN=float(loss_g_gan.detach()),
            loss_G_L1=float(loss_g_l1.detach()),  # unweighted, in [-1, 1] pixel units
            D_real=float(pred_real.detach().mean()),
            D_fake=float(pred_fake.detach().mean()),
        )
        return out

    # ---- snapshots -----------------------------------------------------------------------------------
    def fixed_inputs(self, n: int, seed: int, dataset: Any = None) -> dict[str, Tensor]:
        """The first n held-out pairs (fewer if the split is smaller)."""
        if self.heldout is None:
            raise GanforgeError("fixed_inputs needs build_dataset to have run")
        items = [self.heldout[i] for i in range(min(n, len(self.heldout)))]
        return {"A": torch.stack([it["A"] for it in items]), "B": torch.stack([it["B"] for it in items])}

    @torch.no_grad()
    def render(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """Rows of input | output | target, G in eval mode (no dropout, running BatchNorm statistics)."""
        g = nets["G"]
        was = g.training
        g.eval()
        try:
            fake = g(inputs["A"].to(self.device)).float().cpu()
        finally:
            g.train(was)
        a, b = as_rgb(inputs["A"]), as_rgb(inputs["B"])
        sheet = torch.stack([a, as_rgb(fake), b], 1).flatten(0, 1)
        return sheet, sheet_columns(len(a), 3)
