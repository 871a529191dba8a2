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
from ..metrics.image_quality import pixel_metrics
from ..metrics.reference import quantize
from .base import build_optimizer, eval_mode, warn
from .context import StepContext
from ._translation import TranslationData, TranslationRecipe, as_rgb, find_heldout
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
            "G": build_optimizer("adam", itertools.chain(self.G_AB.parameters(), self.G_BA.parameters()), cfg.lr,
                                 betas, device),
            "D": build_optimizer("adam", itertools.chain(self.D_A.parameters(), self.D_B.parameters()), cfg.lr,
                                 betas, device),
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
        self.heldout = find_heldout(
            lambda split: UnpairedDataset(root, split=split, image_size=size, load_size=size, flip=False, serial=True,
                                          channels=channels), root, data_cfg.split, "snapshots and evaluation")
        return TranslationData(ds, str(data_cfg.source), root)

    # ---- the game ------------------------------------------------------------------------------------
    def step(self, batches: list[dict[str, Tensor]], ctx: StepContext) -> dict[str, Any]:
        """One update of both generators, then one of both discriminators."""
        self.check_schedule()
        cfg, kind = self.cfg, self.cfg.loss
        real_a, real_b = batches[0]["A"], batches[0]["B"]
        g_ab, g_ba = self.ddp["G_AB"], self.ddp["G_BA"]
        with self.autocast():
            fake_b = g_ab(real_a)
            rec_a = g_ba(fake_b)
            fake_a = g_ba(real_b)
            rec_b = g_ab(fake_a)
        # Generators, with both discriminators frozen and unwrapped.
        idt_a = idt_b = real_a.new_zeros(())
        with self.frozen("D_A", "D_B") as (d_a_net, d_b_net):
            with self.autocast():
                if cfg.lambda_identity > 0:
                    idt_a = identity_loss(g_ba(real_a).float(), real_a, cfg.lambda_a, cfg.lambda_identity)
                    idt_b = identity_loss(g_ab(real_b).float(), real_b, cfg.lambda_b, cfg.lambda_identity)
                pred_fake_b = d_b_net(fake_b).float()
                pred_fake_a = d_a_net(fake_a).float()
            adv_ab, adv_ba = gan_loss(pred_fake_b, True, kind), gan_loss(pred_fake_a, True, kind)
            cyc_a = cycle_loss(rec_a.float(), real_a, cfg.lambda_a)
            cyc_b = cycle_loss(rec_b.float(), real_b, cfg.lambda_b)
            loss_g = adv_ab + adv_ba + cyc_a + cyc_b + idt_a + idt_b
            norm_g = self.optimize(loss_g, "G", ctx)
        # Discriminators on the generated images from before the G update, through the history pools
        # (the reference queries the pool of fake B first).
        pooled_b = self.pool_b.query(fake_b.detach())
        pooled_a = self.pool_a.query(fake_a.detach())
        d_a_ddp, d_b_ddp = self.ddp["D_A"], self.ddp["D_B"]
        with self.autocast():
            d_b = halved_d_loss(d_b_ddp(real_b).float(), d_b_ddp(pooled_b).float(), kind)
            d_a = halved_d_loss(d_a_ddp(real_a).float(), d_a_ddp(pooled_a).float(), kind)
        norm_d = self.optimize(d_a + d_b, "D", ctx)
        out = {"grad_norm_G": norm_g, "grad_norm_D": norm_d} if ctx.log else {}
        vals = dict(loss_G=loss_g, loss_G_AB=adv_ab, loss_G_BA=adv_ba, loss_cycle_A=cyc_a, loss_cycle_B=cyc_b,
                    loss_D_A=d_a, loss_D_B=d_b)
        if cfg.lambda_identity > 0:
            vals.update(loss_idt_A=idt_a, loss_idt_B=idt_b)
        out.update({k: v.detach() for k, v in vals.items()})
        return out

    # ---- evaluation ----------------------------------------------------------------------------------
    default_eval_metric = "cycle_psnr"
    eval_metric_names = ("cycle_psnr", "cycle_ssim", "cycle_l1", "cycle_psnr_A", "cycle_psnr_B")

    @torch.no_grad()
    def evaluate_heldout(self, nets: dict[str, nn.Module], n: int, batch_size: int = 16) -> dict[str, float]:
        """Cycle consistency on up to n held-out images of each domain: PSNR, SSIM and L1 of
        G_BA(G_AB(A)) against A and of G_AB(G_BA(B)) against B (outputs rounded to 8 bits), per domain
        and averaged. Without pairs, this is what can be measured pixel-wise; distribution metrics of the
        translations against the other domain come from `heldout_translations` (`ganforge eval RUN`)."""
        g_ab, g_ba = nets["G_AB"], nets["G_BA"]
        io_ab, io_ba = self.io.view("AtoB"), self.io.view("BtoA")
        sums: dict[str, float] = {}
        count = 0
        size = min(n, self.heldout_size())
        with eval_mode(g_ab, g_ba):
            for i in range(0, size, batch_size):
                batch = self.heldout_slice(i, min(i + batch_size, size))
                a, b = batch["A"], batch["B"]
                rec_a = quantize(io_ba.generate(g_ba, image=io_ab.generate(g_ab, image=a)))
                rec_b = quantize(io_ab.generate(g_ab, image=io_ba.generate(g_ba, image=b)))
                for dom, (rec, real) in {"A": (rec_a, a), "B": (rec_b, b)}.items():
                    for name, v in pixel_metrics(rec, real).items():
                        key = f"cycle_{name}_{dom}"
                        sums[key] = sums.get(key, 0.0) + float(v.sum())
                count += len(a)
        out = {k: v / max(count, 1) for k, v in sums.items()}
        for name in ("psnr", "ssim", "l1"):
            out[f"cycle_{name}"] = 0.5 * (out[f"cycle_{name}_A"] + out[f"cycle_{name}_B"])
        return out

    def heldout_size(self) -> int:
        """Held-out items pair testA[i] with testB[i] (serial): as many as the smaller domain has."""
        return min(len(self.heldout.files_a), len(self.heldout.files_b))

    @torch.no_grad()
    def heldout_translations(self, nets: dict[str, nn.Module], n: int, batch_size: int = 16) -> dict[str, Tensor]:
        """Up to n held-out images of each domain and their translations, rounded to 8 bits:
        {"A", "B", "AtoB": G_AB(A), "BtoA": G_BA(B)}, for FID/KID against the other domain."""
        ds = self.heldout
        if ds is None:
            raise GanforgeError("held-out data needs build_dataset to have run")
        out: dict[str, list[Tensor]] = {"A": [], "B": [], "AtoB": [], "BtoA": []}
        # Every image of each domain, not only the min(len A, len B) serial pairs evaluate_heldout uses:
        # item i of the serial held-out set holds testA[i % len A] and testB[i % len B].
        todo = (("A", "AtoB", nets["G_AB"], len(ds.files_a)), ("B", "BtoA", nets["G_BA"], len(ds.files_b)))
        with eval_mode(nets["G_AB"], nets["G_BA"]):
            for dom, direction, net, size in todo:
                io = self.io.view(direction)
                for i in range(0, min(n, size), batch_size):
                    x = torch.stack([ds[j][dom] for j in range(i, min(i + batch_size, n, size))])
                    out[dom].append(x)
                    out[direction].append(quantize(io.generate(net, image=x)))
        return {k: torch.cat(v) for k, v in out.items()}

    # ---- state ---------------------------------------------------------------------------------------
    def training_state(self) -> dict[str, Any]:
        """Optimizers, schedule position and the contents of both image pools."""
        return {**super().training_state(), "pools": {"A": self.pool_a.state_dict(), "B": self.pool_b.state_dict()}}

    def load_training_state(self, state: dict[str, Any], step: int | None = None) -> None:
        """Restore training_state(), image pools included."""
        super().load_training_state(state, step)
        pools = state.get("pools")
        if pools is None:
            raise GanforgeError("checkpoint has no CycleGAN image pools")
        self.pool_a.load_state_dict(pools["A"])
        self.pool_b.load_state_dict(pools["B"])

    # ---- snapshots -----------------------------------------------------------------------------------
    @torch.no_grad()
    def render(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """One row per example: A | G_AB(A) | G_BA(G_AB(A)) | B | G_BA(B) | G_AB(G_BA(B)), generators in eval mode."""
        g_ab, g_ba = nets["G_AB"], nets["G_BA"]
        io_ab, io_ba = self.io.view("AtoB"), self.io.view("BtoA")
        a, b = inputs["A"], inputs["B"]
        with eval_mode(g_ab, g_ba):
            fb = io_ab.generate(g_ab, image=a)
            ra = io_ba.generate(g_ba, image=fb)
            fa = io_ba.generate(g_ba, image=b)
            rb = io_ab.generate(g_ab, image=fa)
        cols = [as_rgb(x).float().cpu() for x in (a, fb, ra, b, fa, rb)]
        return torch.stack(cols, 1).flatten(0, 1), 6
