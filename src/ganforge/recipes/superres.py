"""Super-resolution in two stages, as Ledig et al. (2017): SRResNet on a pixel loss, then SRGAN.

`srresnet` (model `srresnet`): G alone on a content loss, by default the per-pixel MSE (the paper's
SRResNet-MSE), Adam lr 1e-4, betas (0.9, 0.999).

`srgan` (model `srgan`): G and the SRGAN discriminator, G's loss = content + adv_weight (1e-3) x
adversarial. The content loss defaults to the paper's VGG54: the MSE between VGG19 relu5_4 features
(ImageNet weights from the standard torchvision file, ImageNet normalisation), each scaled by 1/12.75
"to obtain VGG losses of a scale that is comparable to the MSE loss". `recipe.content=mse` is the paper's
SRGAN-MSE and `l1` the pixel loss of ESRGAN; both need no weight file. The adversarial loss is the
paper's -log D(G(I_LR)) (`vanilla`, BCE with logits) or the relativistic average loss of ESRGAN
(`relativistic`: D judges whether a real image is more realistic than the average fake, and the reverse;
G gets the symmetric loss). Initialise G from a trained SRResNet run with train.init_from=RUN (the
paper's staged training); without it the run says that it trains from scratch. Learning rate as the
paper: 1e-4 for the first half of the steps, then 1e-5 (decay_start, decay_factor).

Data: random hr_size HR crops (96 px by default, the model's hr_size) with random flips, their LR input
the antialiased bicubic downsampling (data/superres.py), from `demo:photos` (photos bundled with
scikit-image; whole photos held out) or a folder of HR images (ROOT/train and ROOT/test or ROOT/val, or
the images of ROOT when it has no train/ folder).

Evaluation (`train.eval_every`, `ganforge eval RUN`), the convention of the super-resolution
literature: whole held-out images, cut at the top left to multiples of the scale, their LR version
upscaled by G (tile by tile, as `ganforge upscale`) and by bicubic interpolation (PIL's kernel, a = -0.5),
both rounded to 8 bits; PSNR and SSIM on the BT.601 Y channel (the only channel for grayscale models)
with `scale` pixels cropped from every border; averaged over images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.superres import SRPairs, SRSource, as_float, eval_pairs, load_sr_split, HELD_OUT_SPLITS
from ..errors import GanforgeError
from ..losses.adversarial import bce_with_target
from ..metrics.image_quality import psnr, ssim
from ..metrics.reference import quantize
from ..models.base import GANModels
from ..registry import register_recipe
from ..tools.tiling import UPSCALE_OVERLAP, UPSCALE_TILE, translate_tiled
from ._translation import sheet_columns
from .base import Recipe, build_optimizer, eval_mode, warn
from .context import StepContext

CONTENT_LOSSES = ("mse", "l1", "vgg")
ADVERSARIAL = ("vanilla", "relativistic")
EVAL_TILE, EVAL_OVERLAP = UPSCALE_TILE, UPSCALE_OVERLAP  # LR pixels; the defaults of `ganforge upscale`


@dataclass
class SRResNetConfig:
    """Options of SRResNet training; defaults are the paper's."""

    content: str = "mse"  # mse | l1 | vgg (VGG19 features, needs the weight file)
    vgg_layer: str = "relu5_4"  # VGG54 in the paper; relu2_2 is its VGG22
    vgg_rescale: float = 1 / 12.75
    vgg_weights: str | None = None  # the VGG19 file; None: $GANFORGE_VGG19 or the weights cache
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    decay_start: int | None = None  # step from which the lr is multiplied by decay_factor (None: never)
    decay_factor: float = 1.0
    flip: bool = True  # random horizontal flips of the HR crops
    rot90: bool = False  # random 90-degree rotations (not in the paper)
    crops_per_epoch: int | None = None  # None: about one crop per hr_size^2 of training pixels


@dataclass
class SRGANConfig(SRResNetConfig):
    """Options of SRGAN training; defaults are the paper's SRGAN-VGG54."""

    content: str = "vgg"
    adv_weight: float = 1e-3
    adversarial: str = "vanilla"  # vanilla (-log D(G(x))) | relativistic (ESRGAN's relativistic average)
    d_lr: float | None = None  # None: lr
    decay_start: int | None = None  # None: half of train.steps (the paper: 1e5 of 2e5 updates)
    decay_factor: float = 0.1


@register_recipe("srresnet")
class SRResNetRecipe(Recipe):
    """G on a content loss between G(LR) and the HR crop."""

    Config = SRResNetConfig
    model_name = "srresnet"
    default_eval_metric = "psnr_y"
    eval_metric_names = ("psnr_y", "ssim_y", "psnr_gain", "bicubic_psnr_y", "bicubic_ssim_y")
    baseline_note = "bicubic_* = bicubic upsampling of the same inputs; Y channel, border of `scale` px cropped"

    def __init__(self, models: GANModels, cfg: Any, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        if models.name != self.model_name:
            raise GanforgeError(f"recipe {self.model_name!r} trains the {self.model_name} model, not {models.name!r}"
                                + (" (use model srresnet, or recipe srgan)" if models.name == "srgan" else ""))
        if cfg.content not in CONTENT_LOSSES:
            raise GanforgeError(f"recipe.content must be one of {', '.join(CONTENT_LOSSES)}, got {cfg.content!r}")
        if not 0 < cfg.decay_factor <= 1:
            raise GanforgeError(f"recipe.decay_factor must be in (0, 1], got {cfg.decay_factor}")
        if cfg.decay_start is not None and cfg.decay_start < 0:
            raise GanforgeError(f"recipe.decay_start must be >= 0, got {cfg.decay_start}")
        from ..metrics.vgg_net import LAYER_INDEX

        if cfg.vgg_layer not in LAYER_INDEX:
            raise GanforgeError(f"recipe.vgg_layer must be a VGG19 layer name (conv1_1 .. relu5_4, pool1 .. pool5), "
                                f"got {cfg.vgg_layer!r}")
        if not cfg.vgg_rescale > 0:
            raise GanforgeError(f"recipe.vgg_rescale must be > 0, got {cfg.vgg_rescale}")
        if cfg.crops_per_epoch is not None and cfg.crops_per_epoch < 1:
            raise GanforgeError(f"recipe.crops_per_epoch must be >= 1, got {cfg.crops_per_epoch}")
        self.scale = int(models.args["scale"])
        self.hr_size = int(models.args["hr_size"])
        self.channels = int(models.args["channels"])
        self.G = self.nets["G"]
        self.vgg: nn.Module | None = None
        if cfg.content == "vgg":  # before any work: a missing or wrong weight file is one line
            if self.channels not in (1, 3):
                raise GanforgeError("the VGG content loss takes 1- or 3-channel images")
            from ..metrics.vgg_net import load_vgg19_features

            self.vgg = load_vgg19_features(cfg.vgg_layer, cfg.vgg_weights, device=str(device))
        self.optimizers = {"G": build_optimizer("adam", self.G.parameters(), cfg.lr, (cfg.beta1, cfg.beta2), device)}
        self.seed = 0
        self.decay_start: int | None = cfg.decay_start
        self.heldout: SRSource | None = None
        self._eval: list[tuple[Tensor, Tensor]] | None = None

    # ---- loop settings and the learning rate --------------------------------------------------------
    def attach(self, train: Any) -> None:
        """Receive the loop's settings: the seed of the crops, the steps that place the lr decay."""
        super().attach(train)
        self.seed = int(train.seed)
        if self.cfg.decay_start is None and self.cfg.decay_factor < 1:
            self.decay_start = int(train.steps) // 2

    def base_hparams(self, name: str) -> dict[str, Any]:
        """Each optimizer's lr and betas from the config."""
        lr = self.cfg.lr if name == "G" else (getattr(self.cfg, "d_lr", None) or self.cfg.lr)
        return {"lr": lr, "betas": (self.cfg.beta1, self.cfg.beta2)}

    def lr_factor(self, step: int) -> float:
        """decay_factor from decay_start on, 1 before."""
        return self.cfg.decay_factor if self.decay_start is not None and step >= self.decay_start else 1.0

    def end_of_step(self, ctx: StepContext) -> None:
        """Set the learning rate of the next step."""
        self.apply_hparams(ctx.step + 1)

    # ---- data ---------------------------------------------------------------------------------------
    def build_dataset(self, data_cfg: Any) -> "SRData":
        """Random HR crops and their LR inputs from data.source; the held-out images for evaluation."""
        train = load_sr_split(str(data_cfg.source), data_cfg.split, self.channels, self.hr_size)
        if train is None:
            raise GanforgeError(f"{data_cfg.source} has no {data_cfg.split}/ folder")
        self.heldout = None
        # SSIM's 11 px window must fit once `scale` px are cropped from each border
        min_heldout = 2 * self.scale + 11
        for split in HELD_OUT_SPLITS:
            if split != data_cfg.split:
                self.heldout = load_sr_split(str(data_cfg.source), split, self.channels, min_heldout)
                if self.heldout is not None:
                    break
        for src, side in ((train, f"the {self.hr_size} px crop"), (self.heldout, f"{min_heldout} px")):
            if src is None:
                continue
            for what, files in (("unreadable", src.corrupt), (f"smaller than {side}", src.small)):
                if files:
                    warn(f"{len(files)} {what} file(s) skipped in [{src.split}], e.g. {files[0]}")
        if self.heldout is None:
            warn(f"no held-out split ({'/'.join(HELD_OUT_SPLITS)}) in {data_cfg.source}: snapshots and evaluation "
                 f"use training images, which says nothing about unseen photos")
            self.heldout = train
        self._eval = None
        pairs = SRPairs(train.images, self.hr_size, self.scale, flip=self.cfg.flip, seed=self.seed,
                        length=self.cfg.crops_per_epoch, rot90=self.cfg.rot90)
        return SRData(pairs, train, self.heldout)

    def eval_set(self) -> list[tuple[Tensor, Tensor]]:
        """The held-out (LR, HR) pairs, whole images, made once."""
        if self.heldout is None:
            raise GanforgeError("held-out data needs build_dataset to have run")
        if self._eval is None:
            self._eval = eval_pairs([as_float(img) for img in self.heldout.images], self.scale)
        return self._eval

    def heldout_size(self) -> int:
        """Number of held-out images."""
        return len(self.eval_set())

    # ---- the game -----------------------------------------------------------------------------------
    def content_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        """The configured content loss between G's output and the HR target."""
        if self.cfg.content == "mse":
            return F.mse_loss(fake, real)
        if self.cfg.content == "l1":
            return F.l1_loss(fake, real)
        from ..losses.perceptual import vgg_content_loss

        return vgg_content_loss(self.vgg, fake, real, rescale=self.cfg.vgg_rescale)

    def _pairs(self, batches: list[dict[str, Tensor]]) -> tuple[Tensor, Tensor]:
        lr, hr = batches[0]["A"], batches[0]["B"]
        if lr.shape[-1] * self.scale != hr.shape[-1] or lr.shape[1] != self.channels:
            raise GanforgeError(f"pairs of {tuple(lr.shape[1:])} -> {tuple(hr.shape[1:])} do not fit a "
                                f"{self.scale}x model with {self.channels} channels")
        return lr, hr

    def step(self, batches: list[dict[str, Tensor]], ctx: StepContext) -> dict[str, Any]:
        """One G update on the content loss."""
        lr, hr = self._pairs(batches)
        with self.autocast():
            fake = self.ddp["G"](lr)
        loss = self.content_loss(fake.float(), hr)
        norm = self.optimize(loss, "G", ctx)
        out = {"loss_G": loss.detach(), f"loss_G_{self.cfg.content}": loss.detach()}
        if ctx.log:
            out["grad_norm_G"] = norm
        return out

    # ---- evaluation ---------------------------------------------------------------------------------
    def upscale(self, g: nn.Module, lr: Tensor) -> Tensor:
        """G's upscaling of one LR image [1, C, h, w], tile by tile as `ganforge upscale` does."""
        with eval_mode(g):
            if max(lr.shape[-2:]) <= EVAL_TILE:
                return self.io.generate(g, image=lr)
            return translate_tiled(lambda x: self.io.generate(g, image=x), lr, EVAL_TILE, EVAL_OVERLAP,
                                   scale=self.scale)

    def bicubic(self, lr: Tensor) -> Tensor:
        """Bicubic upsampling by the scale, PIL's kernel (a = -0.5), clamped."""
        return F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False,
                             antialias=True).clamp(-1, 1)

    def measure(self, pred: Tensor, hr: Tensor) -> tuple[float, float]:
        """(PSNR, SSIM) of an 8-bit-rounded prediction on the Y channel with a border of `scale` pixels cropped."""
        y = pred.shape[1] == 3
        pred = quantize(pred.clamp(-1, 1))
        return (float(psnr(pred, hr, y_channel=y, crop_border=self.scale).clamp(max=100)),
                float(ssim(pred, hr, y_channel=y, crop_border=self.scale)))

    @torch.no_grad()
    def evaluate_heldout(self, nets: dict[str, nn.Module], n: int, batch_size: int = 1) -> dict[str, float]:
        """PSNR-Y and SSIM-Y of G and of bicubic upsampling on up to n whole held-out images (mean over images)."""
        g = nets["G"]
        dev = next(g.parameters()).device
        total = {k: 0.0 for k in ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y")}
        pairs = self.eval_set()[:n]
        for lr, hr in pairs:
            lr, hr = lr.to(dev), hr.to(dev)
            for prefix, pred in (("", self.upscale(g, lr)), ("bicubic_", self.bicubic(lr))):
                p, s = self.measure(pred, hr)
                total[prefix + "psnr_y"] += p
                total[prefix + "ssim_y"] += s
        out = {k: v / max(len(pairs), 1) for k, v in total.items()}
        out["psnr_gain"] = out["psnr_y"] - out["bicubic_psnr_y"]
        return out

    def make_evaluator(self, run_cfg: Any, echo: Callable[..., None] = print):
        """PSNR-Y/SSIM-Y against bicubic on the held-out images (see `evaluate_heldout`)."""
        from .evaluation import HeldoutEvaluator

        return HeldoutEvaluator(run_cfg, self, echo=echo)

    # ---- snapshots ----------------------------------------------------------------------------------
    def fixed_inputs(self, n: int, seed: int, dataset: Any = None) -> dict[str, Tensor]:
        """n (LR, HR) crops of the held-out images, spread over them (the same for the whole run)."""
        pairs = self.eval_set()
        side = min(2 * self.hr_size, min(min(hr.shape[-2:]) for _, hr in pairs)) // self.scale * self.scale
        gen = torch.Generator().manual_seed(seed)
        lrs, hrs = [], []
        for i in range(n):
            _, hr = pairs[i % len(pairs)]
            top = int(torch.randint(0, hr.shape[-2] - side + 1, (1,), generator=gen)) // self.scale * self.scale
            left = int(torch.randint(0, hr.shape[-1] - side + 1, (1,), generator=gen)) // self.scale * self.scale
            crop = hr[:, :, top:top + side, left:left + side]
            hrs.append(crop)
            lrs.append(pairs[i % len(pairs)][0][:, :, top // self.scale:(top + side) // self.scale,
                                                 left // self.scale:(left + side) // self.scale])
        return {"A": torch.cat(lrs), "B": torch.cat(hrs)}

    @torch.no_grad()
    def render(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """Rows of bicubic | G | original, G in eval mode."""
        g = nets["G"]
        lr = inputs["A"].to(next(g.parameters()).device)
        with eval_mode(g):
            fake = self.io.generate(g, image=lr).clamp(-1, 1)
        sheet = torch.stack([self.bicubic(lr), fake, inputs["B"].to(fake.device)], 1).flatten(0, 1)
        if sheet.shape[1] == 1:
            sheet = sheet.expand(-1, 3, -1, -1)
        return sheet, sheet_columns(len(lr), 3)


@register_recipe("srgan")
class SRGANRecipe(SRResNetRecipe):
    """D then G per step: D tells HR crops from G's outputs; G's loss is content + adv_weight x adversarial."""

    Config = SRGANConfig
    model_name = "srgan"

    def __init__(self, models: GANModels, cfg: Any, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        if cfg.adversarial not in ADVERSARIAL:
            raise GanforgeError(f"recipe.adversarial must be one of {', '.join(ADVERSARIAL)}, got {cfg.adversarial!r}")
        if cfg.adv_weight < 0:
            raise GanforgeError(f"recipe.adv_weight must be >= 0, got {cfg.adv_weight}")
        self.D = self.nets["D"]
        self.optimizers["D"] = build_optimizer("adam", self.D.parameters(), cfg.d_lr or cfg.lr,
                                               (cfg.beta1, cfg.beta2), device)

    def training_notes(self) -> list[str]:
        """Say when G starts from random weights rather than a trained SRResNet, and which paper variant runs."""
        notes = []
        if not self.train_cfg.init_from:
            notes.append("SRGAN trains G from scratch (no train.init_from); the paper starts it from a trained "
                         "SRResNet: `ganforge train srresnet`, then train.init_from=RUN")
        if self.cfg.content != "vgg":  # the offline demo: say which variant of the paper this is
            variant = "SRGAN-MSE" if self.cfg.content == "mse" else "an L1 content loss (as ESRGAN's pixel term)"
            notes.append(f"content loss {self.cfg.content}: {variant}, no weight file needed; the paper's "
                         "SRGAN-VGG54 is recipe.content=vgg after `ganforge weights fetch vgg19`")
        return notes

    def d_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """D's loss on logits of HR crops and of G's outputs."""
        if self.cfg.adversarial == "relativistic":  # ESRGAN eq. (1)-(2), halved as its code
            return 0.5 * (bce_with_target(real - fake.mean(), True) + bce_with_target(fake - real.mean(), False))
        return bce_with_target(real, True) + bce_with_target(fake, False)

    def g_adv_loss(self, real: Tensor | None, fake: Tensor) -> Tensor:
        """G's adversarial loss: -log D(G(x)), or the relativistic average loss with the roles swapped."""
        if self.cfg.adversarial == "relativistic":
            return 0.5 * (bce_with_target(real - fake.mean(), False) + bce_with_target(fake - real.mean(), True))
        return bce_with_target(fake, True)

    def step(self, batches: list[dict[str, Tensor]], ctx: StepContext) -> dict[str, Any]:
        """One D update, then one G update against the D just updated."""
        lr, hr = self._pairs(batches)
        with self.autocast():
            fake = self.ddp["G"](lr)
        D = self.ddp["D"]
        with self.autocast():
            pred_real = D(hr).float()
            pred_fake = D(fake.detach()).float()
        loss_d = self.d_loss(pred_real, pred_fake)
        norm_d = self.optimize(loss_d, "D", ctx)
        with self.frozen("D") as d_net:
            with self.autocast():
                judged = d_net(fake).float()
                real_now = d_net(hr).float().detach() if self.cfg.adversarial == "relativistic" else None
            content = self.content_loss(fake.float(), hr)
            adv = self.g_adv_loss(real_now, judged)
            loss_g = content + self.cfg.adv_weight * adv
            norm_g = self.optimize(loss_g, "G", ctx)
        out = {
            "loss_D": loss_d.detach(),
            "loss_G": loss_g.detach(),
            f"loss_G_{self.cfg.content}": content.detach(),
            "loss_G_adv": adv.detach(),
            "D_real": pred_real.detach().mean(),
            "D_fake": pred_fake.detach().mean(),
        }
        if ctx.log:
            out.update(grad_norm_D=norm_d, grad_norm_G=norm_g)
        return out


class SRData(torch.utils.data.Dataset):
    """The training crops plus their source, with the one-line `describe()` the CLI prints."""

    def __init__(self, pairs: SRPairs, source: SRSource, heldout: SRSource):
        self.pairs, self.source, self.heldout = pairs, source, heldout

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.pairs[index]

    def set_epoch(self, epoch: int) -> None:
        """Fresh crops for a new epoch."""
        self.pairs.set_epoch(epoch)

    def describe(self) -> str:
        """Source, images, crops per epoch and their size."""
        p = self.pairs
        held = ("none (evaluating on training images)" if self.heldout is self.source
                else f"{len(self.heldout.images)} image(s) [{self.heldout.split}]")
        return (f"{self.source.describe()}; {len(p)} random {p.hr_size}px HR crops per epoch, "
                f"LR {p.hr_size // p.scale}px (bicubic x1/{p.scale}); held out: {held}")
