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
from ..metrics.image_quality import pixel_metrics
from ..metrics.reference import quantize
from .base import build_optimizer, eval_mode, warn
from .context import StepContext
from ._translation import TranslationData, TranslationRecipe, as_rgb, find_heldout, sheet_columns


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
            "G": build_optimizer("adam", self.G.parameters(), cfg.lr, betas, device),
            "D": build_optimizer("adam", self.D.parameters(), cfg.lr, betas, device),
        }
        self._train_pairs: tuple | None = None  # (root, split) of the training pairs, set by build_dataset
        self._mean_target: Tensor | None = None  # their per-pixel mean, computed on first use
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
        self._train_pairs = (root, data_cfg.split)
        self._mean_target = None
        return TranslationData(ds, str(data_cfg.source), root)

    def mean_target(self) -> Tensor | None:
        """Per-pixel mean of the training targets (no augmentation): the best output that ignores the
        input, on average, and so the second trivial baseline. None before build_dataset."""
        if self._train_pairs is None:
            return None
        if self._mean_target is None:
            root, split = self._train_pairs
            size = self.models.args["image_size"]
            ds = PairedDataset(root, split=split, image_size=size, load_size=size, direction=self.cfg.direction,
                               jitter=False, flip=False, channels=self._channels())
            targets = torch.stack([ds[i]["B"] for i in range(len(ds))])
            self._mean_target = targets.double().mean(0, keepdim=True).float()
        return self._mean_target

    def _heldout(self, root, train_split: str, size: int) -> PairedDataset:
        """Pairs for snapshots and evaluation: the first held-out split found, without augmentation."""
        kw = dict(image_size=size, load_size=size, direction=self.cfg.direction, jitter=False, flip=False,
                  channels=self._channels())
        return find_heldout(lambda split: PairedDataset(root, split=split, **kw), root, train_split,
                            "snapshots and evaluation")

    # ---- the game ------------------------------------------------------------------------------------
    def step(self, batches: list[dict[str, Tensor]], ctx: StepContext) -> dict[str, Any]:
        """One D update, then one G update, on one batch of pairs."""
        self.check_schedule()
        cfg = self.cfg
        real_a, real_b = batches[0]["A"], batches[0]["B"]
        if real_a.shape[1] != self.io.in_channels or real_b.shape[1] != self.io.out_channels:
            raise GanforgeError(f"pairs have {real_a.shape[1]}->{real_b.shape[1]} channels, the model "
                                f"{self.io.in_channels}->{self.io.out_channels}")
        with self.autocast():
            fake_b = self.ddp["G"](real_a)
        # D: the fake pair first, then the real one, each its own forward (as the reference; BatchNorm
        # statistics are per call).
        D = self.ddp["D"]
        with self.autocast():
            pred_fake = D(torch.cat([real_a, fake_b.detach()], 1)).float()
            pred_real = D(torch.cat([real_a, real_b], 1)).float()
        loss_d = halved_d_loss(pred_real, pred_fake, cfg.loss)
        out: dict[str, Any] = {}
        norm_d = self.optimize(loss_d, "D", ctx)
        # G: D frozen and unwrapped (no wasted gradients, no DDP reducer left waiting), judged by the D
        # just updated.
        with self.frozen("D") as d_net:
            with self.autocast():
                pred = d_net(torch.cat([real_a, fake_b], 1)).float()
            loss_g_gan = gan_loss(pred, True, cfg.loss)
            loss_g_l1 = l1_loss(fake_b.float(), real_b)
            loss_g = loss_g_gan + cfg.lambda_l1 * loss_g_l1
            norm_g = self.optimize(loss_g, "G", ctx)
        if ctx.log:
            out.update(grad_norm_D=norm_d, grad_norm_G=norm_g)
        out.update(
            loss_D=loss_d.detach(),
            loss_G=loss_g.detach(),
            loss_G_GAN=loss_g_gan.detach(),
            loss_G_L1=loss_g_l1.detach(),  # unweighted, in [-1, 1] pixel units
            D_real=pred_real.detach().mean(),
            D_fake=pred_fake.detach().mean(),
        )
        return out

    # ---- evaluation ----------------------------------------------------------------------------------
    default_eval_metric = "psnr"
    eval_metric_names = ("psnr", "ssim", "l1", "baseline_psnr", "baseline_ssim", "baseline_l1",
                         "mean_target_psnr", "mean_target_ssim", "mean_target_l1")

    @torch.no_grad()
    def evaluate_heldout(self, nets: dict[str, nn.Module], n: int, batch_size: int = 16) -> dict[str, float]:
        """PSNR, SSIM and L1 of G(input) against the target on up to n held-out pairs (outputs rounded to
        8 bits as if saved), and the same figures for the two trivial baselines a translation model must
        beat: the input itself as the output (baseline_*, where channels allow) and the per-pixel mean of
        the training targets (mean_target_*)."""
        g = nets["G"]
        mean = self.mean_target()
        total: dict[str, float] = {}
        count = 0
        size = min(n, self.heldout_size())
        with eval_mode(g):
            for i in range(0, size, batch_size):
                batch = self.heldout_slice(i, min(i + batch_size, size))
                a, b = batch["A"], batch["B"]
                fake = quantize(self.io.generate(g, image=a))  # as it would be saved
                pairs = {"": fake}
                if a.shape[1] == b.shape[1]:
                    pairs["baseline_"] = a
                if mean is not None:
                    pairs["mean_target_"] = quantize(mean.expand_as(b))
                for prefix, pred in pairs.items():
                    for name, value in pixel_metrics(pred, b).items():
                        total[prefix + name] = total.get(prefix + name, 0.0) + float(value.sum())
                count += len(a)
        return {k: v / max(count, 1) for k, v in total.items()}

    # ---- snapshots -----------------------------------------------------------------------------------
    @torch.no_grad()
    def render(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """Rows of input | output | target, G in eval mode (no dropout, running BatchNorm statistics)."""
        with eval_mode(nets["G"]):
            fake = self.io.generate(nets["G"], image=inputs["A"])
        a, b = as_rgb(inputs["A"]), as_rgb(inputs["B"])
        sheet = torch.stack([a, as_rgb(fake), b], 1).flatten(0, 1)
        return sheet, sheet_columns(len(a), 3)
