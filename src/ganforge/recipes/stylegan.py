"""The StyleGAN2 training game (Karras et al. 2020, as in NVlabs/stylegan2-ada-pytorch `training/loss.py`).

Per step: D main (non-saturating logistic loss on augmented reals and fakes), D's lazy R1 every r1_every D
steps (its own optimizer step, the penalty scaled by the interval), G main, and G's lazy path-length
regularisation every pl_every G steps. Fakes use style mixing (probability style_mixing, one crossover per
batch), the mapping tracks the mean w for truncation, and G's EMA follows the reference's half-life rule
(ema_kimg, ramped up over the first images). D's inputs go through ADA (an adaptive probability p driven by
the sign of D on reals) or DiffAugment. Lazy regularisation rescales Adam's learning rate and betas by
interval / (interval + 1), as the reference does, so the average update stays the same.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanforgeError
from ..losses import path_lengths, r1_penalty
from ..models.base import GANModels
from ..nn.ada import AdaController, AugmentPipe, check_ops
from ..nn.diffaug import check_policy, diff_augment
from ..registry import register_recipe
from .base import NoiseSampling, Recipe, labelled, self_condition
from .context import StepContext

AUGMENTS = ("none", "ada", "diffaug")


@dataclass
class StyleGAN2Config:
    """Options of the StyleGAN2 game; the defaults are the reference's (config-f, 'auto' EMA)."""

    g_lr: float = 0.0025
    d_lr: float = 0.0025
    beta1: float = 0.0
    beta2: float = 0.99
    eps: float = 1e-8
    r1_gamma: float = 10.0  # R1 weight gamma: gamma/2 * E||grad D(x_real)||^2; 0 = off
    r1_every: int = 16  # lazy R1: every N D steps, scaled by N
    pl_weight: float = 2.0  # path-length regularisation weight; 0 = off
    pl_every: int = 4  # lazy path-length regularisation: every N G steps, scaled by N
    pl_batch_shrink: int = 2  # the PL pass uses batch / shrink samples
    pl_decay: float = 0.01  # running mean of path lengths: mean += decay * (batch mean - mean)
    style_mixing: float = 0.9  # probability that a batch mixes two latents at a random layer
    augment: str = "ada"  # none | ada | diffaug
    ada_ops: str = "bgc"  # ADA's transformations (nn/ada.py): blit, geom, color, or single names
    ada_target: float = 0.6  # target of r_t = E[sign(D(real))]
    ada_kimg: float = 500.0  # p can move from 0 to 1 in this many thousand images
    ada_interval: int = 4  # adjust p every N steps
    augment_p: float = 0.0  # initial p (ADA) or the fixed p when ada_target is 0
    diffaug: str = "translation,color,cutout"  # DiffAugment policy when augment=diffaug
    ema_kimg: float = 10.0  # G EMA half-life in thousands of images
    ema_rampup: float = 0.05  # half-life at most this fraction of the images seen so far; 0 = off

    def __post_init__(self):
        if self.augment not in AUGMENTS:
            raise GanforgeError(f"unknown recipe.augment {self.augment!r} (known: {', '.join(AUGMENTS)})")
        # Checked whatever recipe.augment says: a typo is an error even while augmentation is off.
        check_ops(self.ada_ops)
        check_policy(self.diffaug)
        for key in ("r1_every", "pl_every", "pl_batch_shrink", "ada_interval"):
            if getattr(self, key) < 1:
                raise GanforgeError(f"recipe.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("g_lr", "d_lr", "r1_gamma", "pl_weight", "ema_kimg", "ema_rampup", "ada_kimg"):
            if getattr(self, key) < 0:
                raise GanforgeError(f"recipe.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("style_mixing", "augment_p", "ada_target", "pl_decay", "beta1", "beta2"):
            if not 0 <= getattr(self, key) <= 1:
                raise GanforgeError(f"recipe.{key} must lie in [0, 1], got {getattr(self, key)}")


def _all_reduce(t: Tensor) -> Tensor:
    torch.distributed.all_reduce(t)
    return t


@register_recipe("stylegan2")
class StyleGAN2Recipe(NoiseSampling, Recipe):
    """D main, lazy R1, G main, lazy path length, per step; mapping and synthesis wrapped for DDP apart."""

    Config = StyleGAN2Config

    def __init__(self, models: GANModels, cfg: StyleGAN2Config, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        if models.task != "noise" or not hasattr(models.nets.get("G"), "mapping"):
            raise GanforgeError(f"recipe 'stylegan2' trains style-based generators, not {models.name!r}")
        self.G, self.D = self.nets["G"], self.nets["D"]
        # Mapping and synthesis are trained through separate (DDP) modules, as in the reference: the path-length
        # pass differentiates the synthesis output with respect to the mapped ws.
        self.ddp = {"G_mapping": self.G.mapping, "G_synthesis": self.G.synthesis, "D": self.D}
        self.z_dim = self.io.z_dim
        # Labels G and D are conditioned on: the classes, or a self-conditioned model's k-means clusters.
        self.clusters = int(models.args.get("clusters") or 0)
        self.num_classes = self.io.num_classes or self.clusters
        self.g_steps = self.d_steps = 0  # for the lazy intervals (checkpointed)
        self.pl_mean = torch.zeros((), device=device)
        self.pipe = self.ada = None
        if cfg.augment == "ada":
            self.pipe = AugmentPipe(cfg.ada_ops, p=cfg.augment_p).to(device)
            if cfg.ada_target > 0:
                self.ada = AdaController(cfg.ada_target, cfg.ada_interval, cfg.ada_kimg, cfg.augment_p, self.pipe)
        self.policy = check_policy(cfg.diffaug) if cfg.augment == "diffaug" else ()
        self.optimizers = {
            "G": torch.optim.Adam(self.G.parameters(), **self.base_hparams("G"), eps=cfg.eps),
            "D": torch.optim.Adam(self.D.parameters(), **self.base_hparams("D"), eps=cfg.eps),
        }

    # ---- settings -----------------------------------------------------------------------------
    def _lazy_ratio(self, name: str) -> float:
        cfg = self.cfg
        every = cfg.pl_every if name == "G" else cfg.r1_every
        active = (cfg.pl_weight > 0) if name == "G" else (cfg.r1_gamma > 0)
        return every / (every + 1) if active and every > 1 else 1.0

    def base_hparams(self, name: str) -> dict[str, Any]:
        """Adam's learning rate and betas for G or D, rescaled for lazy regularisation."""
        c = self._lazy_ratio(name)
        lr = self.cfg.g_lr if name == "G" else self.cfg.d_lr
        return {"lr": lr * c, "betas": (self.cfg.beta1 ** c, self.cfg.beta2 ** c)}

    def wrap(self, wrapper) -> None:
        """DDP-wrap G's mapping and synthesis apart (the PL pass differentiates through ws) and D."""
        self.ddp = {k: wrapper(m) for k, m in self.ddp.items()}

    def ema_decay(self, ctx: StepContext) -> float | None:
        """0.5 ** (batch / half-life), the half-life ema_kimg ramped up to at most ema_rampup x images seen."""
        if self.train_cfg.ema <= 0:
            return None
        batch = ctx.batch_size * ctx.world
        nimg = self.cfg.ema_kimg * 1000
        if self.cfg.ema_rampup > 0:
            nimg = min(nimg, (ctx.images_seen + batch) * self.cfg.ema_rampup)
        return 0.5 ** (batch / max(nimg, 1e-8))

    # ---- pieces -------------------------------------------------------------------------------
    def _augment(self, x: Tensor) -> Tensor:
        if self.pipe is not None:
            return self.pipe(x)
        return diff_augment(x, self.policy) if self.policy else x

    def build_dataset(self, data_cfg: Any):
        ds = super().build_dataset(data_cfg)
        if self.clusters:
            self_condition(ds, self.clusters, self.G.mapping.cluster_prior)
        return ds

    def _labels(self, batch: dict[str, Tensor] | None, n: int, ctx: StepContext) -> Tensor | None:
        """The batch's labels, or for fakes drawn by G: uniform classes (None for a self-conditioned G, whose
        mapping draws the cluster from z)."""
        if self.num_classes <= 0:
            return None
        if batch is None:
            return None if self.clusters else ctx.randint(self.num_classes, n)
        return labelled(batch, self)

    def _ws(self, z: Tensor, y: Tensor | None, ctx: StepContext, update_w_avg: bool) -> Tensor:
        """Mapped latents with style mixing: one crossover layer per batch, with probability style_mixing."""
        mapping = self.ddp["G_mapping"]
        ws = mapping(z, y, update_w_avg=update_w_avg)
        num_ws = ws.shape[1]
        if self.cfg.style_mixing > 0 and num_ws > 1:
            # Decided on the device, as the reference does (the second mapping always runs): reading the coin on
            # the host would stall a GPU every step. A cut at num_ws keeps every layer's first w.
            u = ctx.rand(1)
            cut = ctx.randint(num_ws - 1, 1) + 1
            cut = torch.where(u < self.cfg.style_mixing, cut, torch.full_like(cut, num_ws))
            ws2 = mapping(ctx.randn(z.shape[0], self.z_dim), y, update_w_avg=False)
            layer = torch.arange(num_ws, device=ws.device)[None, :, None]
            ws = torch.where(layer < cut[:1, None, None], ws, ws2)
        return ws

    def _fake(self, n: int, y: Tensor | None, ctx: StepContext,
              update_w_avg: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        """Fakes, their ws and their labels (a self-conditioned G's clusters drawn here from z)."""
        z = ctx.randn(n, self.z_dim)
        if y is None and self.clusters:
            y = self.G.mapping.cluster_prior(z)
        ws = self._ws(z, y, ctx, update_w_avg)
        return self.ddp["G_synthesis"](ws, noise_mode="random"), ws, y

    # ---- phases -------------------------------------------------------------------------------
    def d_main(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Any]:
        """Logistic loss on augmented reals and fakes of the frozen G; feeds ADA's statistic."""
        real = batch["image"]
        y = self._labels(batch, real.shape[0], ctx)
        D = self.ddp["D"]
        with torch.no_grad(), self.autocast():
            fake, _, _ = self._fake(real.shape[0], y, ctx, update_w_avg=False)
        with self.autocast():
            d_real = D(self._augment(real), y).float()
            d_fake = D(self._augment(fake.float()), y).float()
            loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        norm = self.optimize(loss, "D", ctx)
        if self.ada is not None:
            self.ada.accumulate(d_real.detach())
        out = {"loss_D": loss.detach(), "D_real": d_real.detach().mean(), "D_fake": d_fake.detach().mean()}
        if norm is not None:
            out["grad_norm_D"] = norm
        return out

    def d_reg(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Any]:
        """Lazy R1 on (augmented) reals: gamma/2 * ||grad||^2, times the interval, its own D step."""
        x = batch["image"].detach().requires_grad_(True)
        y = self._labels(batch, x.shape[0], ctx)
        # Through D's DDP wrapper, as the reference does: this step's backward is its own, so the wrapper must
        # see the forward for the parameter gradients to be all-reduced (autograd.grad w.r.t. x reduces nothing).
        with self.eager("D"):
            logits = self.ddp["D"](self._augment(x), y).float()
            r1 = r1_penalty(logits, x)
        # logits * 0 keeps every D parameter in the graph: the output layer's bias has no gradient through
        # the penalty, and DDP waits for a gradient of every parameter (the reference does the same).
        self.optimize((logits * 0).sum() + r1 * (self.cfg.r1_gamma / 2 * self.cfg.r1_every), "D")
        return {"r1": r1.detach()}

    def g_main(self, n: int, ctx: StepContext) -> dict[str, Any]:
        """Non-saturating loss of the augmented fakes, judged by the frozen D; the mapping tracks mean w."""
        y = self._labels(None, n, ctx)
        with self.frozen("D") as D, self.autocast():
            fake, _, y = self._fake(n, y, ctx, update_w_avg=True)
            loss = F.softplus(-D(self._augment(fake), y).float()).mean()
            norm = self.optimize(loss, "G", ctx)
        out = {"loss_G": loss.detach()}
        if norm is not None:
            out["grad_norm_G"] = norm
        return out

    def g_reg(self, n: int, ctx: StepContext) -> dict[str, Any]:
        """Lazy path-length regularisation: (|J^T y| - running mean)^2 * weight * interval."""
        m = max(1, n // self.cfg.pl_batch_shrink)
        y = self._labels(None, m, ctx)
        with self.eager("G_mapping", "G_synthesis"):
            fake, ws, _ = self._fake(m, y, ctx, update_w_avg=False)
            lengths = path_lengths(fake, ws, ctx.randn(m, *fake.shape[1:]))
        mean = self.pl_mean.lerp(lengths.mean().detach(), self.cfg.pl_decay)
        self.pl_mean.copy_(mean)
        penalty = (lengths - mean).square().mean()
        # fake[:, 0, 0, 0] * 0 keeps every synthesis parameter in the graph (DDP needs them all to get a gradient).
        loss = (fake[:, 0, 0, 0] * 0).sum() + penalty * (self.cfg.pl_weight * self.cfg.pl_every)
        with self.frozen("D"):
            self.optimize(loss, "G")
        return {"pl_penalty": penalty.detach(), "pl_mean": mean.detach()}

    def graph_key(self, ctx: StepContext) -> Any:
        """train.cuda_graphs: steps differ by whether lazy R1 and path length fall on them. ADA's controller adjusts
        p on the host from device statistics, so a run with ADA is not captured."""
        if self.ada is not None:
            return None
        cfg = self.cfg
        return ("stylegan2", cfg.r1_gamma > 0 and self.d_steps % cfg.r1_every == 0,
                cfg.pl_weight > 0 and self.g_steps % cfg.pl_every == 0)

    def replayed(self, ctx: StepContext) -> None:
        self.d_steps += 1
        self.g_steps += 1

    def step(self, batches: list[dict[str, Tensor]], ctx: StepContext) -> dict[str, Any]:
        """D main (+ lazy R1), G main (+ lazy path length), then ADA's update of p."""
        cfg = self.cfg
        batch = batches[0]
        n = batch["image"].shape[0]
        out = self.d_main(batch, ctx)
        if cfg.r1_gamma > 0 and self.d_steps % cfg.r1_every == 0:
            out.update(self.d_reg(batch, ctx))
        self.d_steps += 1
        out.update(self.g_main(n, ctx))
        if cfg.pl_weight > 0 and self.g_steps % cfg.pl_every == 0:
            out.update(self.g_reg(n, ctx))
        self.g_steps += 1
        if self.ada is not None:
            self.ada.step(n * ctx.world, reduce=_all_reduce if ctx.world > 1 else None)
        if self.pipe is not None:
            out["augment_p"] = self.pipe.p.detach().clone()
        return out

    # ---- state --------------------------------------------------------------------------------
    def training_state(self) -> dict[str, Any]:
        state = {**super().training_state(), "g_steps": self.g_steps, "d_steps": self.d_steps,
                 "pl_mean": self.pl_mean.detach().cpu()}
        if self.pipe is not None:
            state["augment_p"] = self.pipe.p.detach().cpu()
        if self.ada is not None:
            state["ada"] = self.ada.state_dict()
        return state

    def load_training_state(self, state: dict[str, Any], step: int | None = None) -> None:
        super().load_training_state(state, step)
        self.g_steps = int(state.get("g_steps", step or 0))
        self.d_steps = int(state.get("d_steps", step or 0))
        self.pl_mean.copy_(torch.as_tensor(state.get("pl_mean", 0.0)))
        if self.pipe is not None and "augment_p" in state:
            self.pipe.p.copy_(torch.as_tensor(state["augment_p"]))
        if self.ada is not None and "ada" in state:
            self.ada.load_state_dict(state["ada"])



@dataclass
class StyleGANConfig(StyleGAN2Config):
    """StyleGAN (2019): the same game with R1 every step, no path length, no augmentation, plus progressive
    growing (Karras et al. 2018): each resolution trains for phase_kimg, then the next one fades in over
    fade_kimg thousand images. Batch size and learning rate may change with the resolution."""

    g_lr: float = 0.001
    d_lr: float = 0.001
    r1_gamma: float = 10.0
    r1_every: int = 1
    pl_weight: float = 0.0
    augment: str = "none"
    ema_rampup: float = 0.0
    start_res: int = 8  # the first resolution (the paper starts at 8x8)
    phase_kimg: float = 600.0  # thousand images at each resolution before the next fades in
    fade_kimg: float = 600.0  # thousand images over which it fades in
    batch_by_res: str = ""  # e.g. "8:128,16:64,32:32" (per process); others use train.batch_size
    lr_by_res: str = ""  # e.g. "128:0.0015,256:0.002"; others use g_lr / d_lr

    def __post_init__(self):
        super().__post_init__()
        if self.start_res < 4 or self.start_res & (self.start_res - 1):
            raise GanforgeError(f"recipe.start_res must be a power of two >= 4, got {self.start_res}")
        if self.phase_kimg < 0 or self.fade_kimg < 0:
            raise GanforgeError("recipe.phase_kimg and recipe.fade_kimg must be >= 0")
        self.batches = parse_by_res(self.batch_by_res, int, "recipe.batch_by_res")
        self.lrs = parse_by_res(self.lr_by_res, float, "recipe.lr_by_res")
        if any(v < 1 for v in self.batches.values()) or any(v <= 0 for v in self.lrs.values()):
            raise GanforgeError("recipe.batch_by_res and recipe.lr_by_res need positive values")


def parse_by_res(text: str, kind: type, key: str) -> dict[int, Any]:
    """'8:128,16:64' -> {8: 128, 16: 64}; one clear error for anything else."""
    out: dict[int, Any] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        res, sep, val = part.partition(":")
        try:
            r, v = int(res), kind(val)
        except ValueError:
            r = v = None
        if not sep or r is None or r < 4 or r & (r - 1):
            raise GanforgeError(f"{key}: expected 'resolution:value,...' with power-of-two resolutions, got {text!r}")
        out[r] = v
    return out


def progressive_lod(images_seen: int, image_size: int, start_res: int, phase_kimg: float, fade_kimg: float) -> float:
    """The level of detail after `images_seen` images (0 = full resolution), as in the progressive-GAN schedule:
    phase_kimg at each resolution, then fade_kimg of fade-in to the next."""
    max_lod = math.log2(image_size) - math.log2(min(start_res, image_size))
    period = phase_kimg + fade_kimg
    if period <= 0:
        return 0.0
    kimg = images_seen / 1000
    phase = math.floor(kimg / period)
    lod = max_lod - phase
    if fade_kimg > 0:
        lod -= max(kimg - phase * period - phase_kimg, 0.0) / fade_kimg
    return max(lod, 0.0)


@register_recipe("stylegan")
class StyleGANRecipe(StyleGAN2Recipe):
    """StyleGAN2's phases without path length, on networks that grow: lod, batch and lr follow the schedule."""

    Config = StyleGANConfig
    # Not captured by train.cuda_graphs: the level of detail and fade-in are Python floats that change every step.
    graph_key = Recipe.graph_key
    replayed = Recipe.replayed

    def __init__(self, models: GANModels, cfg: StyleGANConfig, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        if not hasattr(self.G, "set_lod"):
            raise GanforgeError(f"recipe 'stylegan' trains the progressive StyleGAN, not {models.name!r}")
        self.image_size = self.io.image_size

    def wrap(self, wrapper) -> None:
        """As StyleGAN2, but below full resolution the inactive layers get no gradient: DDP must expect that."""
        self.ddp = {k: wrapper(m, find_unused=True) for k, m in self.ddp.items()}

    def lod_at(self, images_seen: int) -> float:
        """The schedule's level of detail after images_seen images."""
        c = self.cfg
        return progressive_lod(images_seen, self.image_size, c.start_res, c.phase_kimg, c.fade_kimg)

    def resolution_at(self, images_seen: int) -> int:
        """The resolution being trained (or faded in) after images_seen images."""
        return self.image_size >> math.floor(self.lod_at(images_seen))

    def batch_plan(self, ctx: StepContext) -> tuple[int, int]:
        """The resolution's batch size from recipe.batch_by_res, else train.batch_size."""
        base, batches = super().batch_plan(ctx)
        return int(self.cfg.batches.get(self.resolution_at(ctx.images_seen), base)), batches

    def _set_schedule(self, images_seen: int) -> None:
        lod = self.lod_at(images_seen)
        self.G.set_lod(lod)
        self.D.set_lod(lod)
        res = self.resolution_at(images_seen)
        for name, opt in self.optimizers.items():
            base = self.cfg.lrs.get(res, self.cfg.g_lr if name == "G" else self.cfg.d_lr)
            for group in opt.param_groups:
                group["lr"] = base * self._lazy_ratio(name) * self.lr_scale

    def step(self, batches: list[dict[str, Tensor]], ctx: StepContext) -> dict[str, Any]:
        """Set lod and learning rates for the images seen, then StyleGAN2's phases (path length off)."""
        self._set_schedule(ctx.images_seen)
        out = super().step(batches, ctx)
        out["lod"] = self.G.current_lod
        out["resolution"] = self.resolution_at(ctx.images_seen)
        return out

    def load_training_state(self, state: dict[str, Any], step: int | None = None) -> None:
        super().load_training_state(state, step)
        self.G.sync_lod()
        self.D.sync_lod()

    def before_sampling(self, nets: dict[str, nn.Module]) -> None:
        """An EMA copy got the lod buffer copied in place: refresh its python lod."""
        for net in nets.values():
            if hasattr(net, "sync_lod"):
                net.sync_lod()
