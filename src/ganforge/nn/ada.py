"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data"): `AugmentPipe` applies random, differentiable transforms to every image D sees (real and
fake), each with probability p; `AdaController` raises p when D starts to overfit, judged by how often
D calls the real images real.

The pipeline follows NVlabs/stylegan2-ada-pytorch (training/augment.py): same constants, same order of
operations, same parametrisation (log2 standard deviations, inverse matrices output -> input). It is the
'bgc' subset: pixel blitting, general geometric and colour transforms. Deliberate differences:

* Geometric transforms are one 3x3 matrix per image, applied by a single bilinear `grid_sample` with
  reflection padding. The reference pads, upsamples 2x with a sym6 wavelet filter, samples and
  downsamples, which suppresses aliasing under rotation and scaling; bilinear sampling blurs a little
  and may alias. `grid_sample`'s reflection (align_corners=False) mirrors about the pixel edge and so
  repeats the border pixel, where the reference's `pad(mode="reflect")` does not.
* Images whose matrix is exactly the identity are passed through untouched, so p=0 is exactly the
  identity (the reference still resamples them).
* 90-degree rotations use exact 0/+-1 matrix entries, so blitting moves whole pixels.
* Image-space filtering, additive noise and cutout ('f', 'n', 'c' presets) are not implemented.
* `p` is clamped to [0, 1] by the controller; the reference only floors it at 0.

Double backward (R1 through the augmentation): PyTorch's own `grid_sample` gained a second derivative
only in 2026, and this package supports older releases, so the sampling goes through a small autograd
Function whose backward is again differentiable w.r.t. the images (the reference's grid_sample_gradfix
idea). The grid holds no gradient: the random transforms do not depend on any parameter.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanforgeError

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
OPS = BLIT + GEOM + COLOR
PRESETS = {"blit": BLIT, "geom": GEOM, "color": COLOR, "bg": BLIT + GEOM, "bgc": OPS}


def check_ops(spec: str) -> tuple[str, ...]:
    """The comma-separated presets and op names as op names in pipeline order; unknown names are an error."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in names if s not in PRESETS and s not in OPS]
    if bad:
        known = ", ".join(list(PRESETS) + list(OPS))
        raise GanforgeError(f"unknown augmentation {', '.join(bad)} (known: {known})")
    chosen = {op for s in names for op in PRESETS.get(s, (s,))}
    return tuple(op for op in OPS if op in chosen)


# --- sampling with a double-backward-safe adjoint ------------------------------------------------------

_BILINEAR, _REFLECTION = 0, 2  # ATen's GridSamplerInterpolation / GridSamplerPadding enums


def _sample(x: Tensor, grid: Tensor) -> Tensor:
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class _GridSample(torch.autograd.Function):
    """y = A x, with A the (fixed) bilinear resampling that `grid` describes."""

    @staticmethod
    def forward(ctx, x: Tensor, grid: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, grid)
        return _sample(x, grid)

    @staticmethod
    def backward(ctx, gy: Tensor):  # type: ignore[override]
        x, grid = ctx.saved_tensors
        return _GridSampleAdjoint.apply(gy, x, grid), None


class _GridSampleAdjoint(torch.autograd.Function):
    """gx = A^T gy; linear in gy, so its own backward is A again (any order of derivative works)."""

    @staticmethod
    def forward(ctx, gy: Tensor, x: Tensor, grid: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(grid)
        # x only supplies the shape; output_mask skips the gradient w.r.t. the grid.
        gx, _ = torch.ops.aten.grid_sampler_2d_backward(
            gy.contiguous(), x, grid, _BILINEAR, _REFLECTION, False, [True, False])
        return gx

    @staticmethod
    def backward(ctx, ggx: Tensor):  # type: ignore[override]
        (grid,) = ctx.saved_tensors
        return _GridSample.apply(ggx, grid), None, None


def grid_sample_reflect(x: Tensor, grid: Tensor) -> Tensor:
    """Bilinear, reflection-padded `grid_sample` (align_corners=False), twice differentiable in x."""
    return _GridSample.apply(x, grid.detach())


# --- batched matrices ----------------------------------------------------------------------------------


def _affine(a: Tensor, b: Tensor, c: Tensor, d: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """Per-image 3x3 homogeneous matrices [[a, b, tx], [c, d, ty], [0, 0, 1]]."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, zero, zero, one], -1).view(-1, 3, 3)


def _scale(sx: Tensor, sy: Tensor) -> Tensor:
    z = torch.zeros_like(sx)
    return _affine(sx, z, z, sy, z, z)


def _rotate(cos: Tensor, sin: Tensor) -> Tensor:
    z = torch.zeros_like(cos)
    return _affine(cos, -sin, sin, cos, z, z)


def _translate(tx: Tensor, ty: Tensor) -> Tensor:
    z, o = torch.zeros_like(tx), torch.ones_like(tx)
    return _affine(o, z, z, o, tx, ty)


class _Rng:
    """Draws on the generator's device (so a seed reproduces across devices), used on the images'."""

    def __init__(self, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype):
        self.gen, self.dst, self.dtype = generator, device, dtype
        self.src = generator.device if generator is not None else device

    def rand(self, *shape: int) -> Tensor:
        return torch.rand(shape, generator=self.gen, device=self.src).to(self.dst, self.dtype)

    def randn(self, *shape: int) -> Tensor:
        return torch.randn(shape, generator=self.gen, device=self.src).to(self.dst, self.dtype)


class AugmentPipe(nn.Module):
    """ADA's differentiable augmentation: each enabled transform hits each image with probability p."""

    def __init__(self, ops: str = "bgc", p: float = 0.0, *, xint_max: float = 0.125,
                 scale_std: float = 0.2, rotate_max: float = 1.0, aniso_std: float = 0.2,
                 xfrac_std: float = 0.125, brightness_std: float = 0.2, contrast_std: float = 0.5,
                 hue_max: float = 1.0, saturation_std: float = 1.0):
        super().__init__()
        self.ops = check_ops(ops)
        if not self.ops:
            raise GanforgeError("AugmentPipe needs at least one augmentation")
        # A buffer, so p travels with the state_dict and the device; the controller writes it in place.
        self.register_buffer("p", torch.tensor(float(p)))
        self.xint_max, self.xfrac_std = xint_max, xfrac_std  # fractions of the image size
        self.scale_std, self.aniso_std = scale_std, aniso_std  # log2 standard deviations
        self.rotate_max, self.hue_max = rotate_max, hue_max  # 1 = a full turn either way
        self.brightness_std = brightness_std  # additive, in [-1, 1] units
        self.contrast_std, self.saturation_std = contrast_std, saturation_std  # log2 standard deviations

    def extra_repr(self) -> str:
        return f"ops={','.join(self.ops)}, p={float(self.p):.4f}"

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment a batch of NCHW images in [-1, 1]; `generator` makes the draws reproducible."""
        if images.ndim != 4:
            raise GanforgeError(f"AugmentPipe expects NCHW images, got shape {tuple(images.shape)}")
        n, c, h, w = images.shape
        # Matrices in float32 at least: half precision would visibly distort the transforms.
        mdtype = torch.float64 if images.dtype == torch.float64 else torch.float32
        rng = _Rng(generator, images.device, mdtype)
        p = self.p.to(images.device, mdtype)
        if any(op in self.ops for op in BLIT + GEOM):
            images = self._warp(images, self._geometry(n, h, w, p, rng))
        if any(op in self.ops for op in COLOR):
            images = self._recolour(images, self._colour(n, c, p, rng))
        return images

    def _geometry(self, n: int, h: int, w: int, p: Tensor, rng: _Rng) -> Tensor:
        """Per-image inverse transform (output pixel -> input pixel), pixel units, origin at the centre."""
        g = torch.eye(3, device=rng.dst, dtype=rng.dtype).expand(n, 3, 3)
        one, zero = torch.ones(n, device=rng.dst, dtype=rng.dtype), torch.zeros(n, device=rng.dst, dtype=rng.dtype)

        def gate(value: Tensor, identity: Tensor, prob: Tensor | float = p) -> Tensor:
            # The value is drawn before the coin, as in the reference, so seeds line up op by op.
            return torch.where(rng.rand(*value.shape[:1], *([1] * (value.ndim - 1))) < prob, value, identity)

        if "xflip" in self.ops:
            # Applied with probability p, the flip itself is a fair coin: half of those images flip.
            i = gate(torch.floor(rng.rand(n) * 2), zero)
            g = g @ _scale(1 - 2 * i, one)
        if "rotate90" in self.ops:
            k = gate(torch.floor(rng.rand(n) * 4), zero).long()
            cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=rng.dst, dtype=rng.dtype)[k]
            sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=rng.dst, dtype=rng.dtype)[k]
            g = g @ _rotate(cos, sin)  # exact entries: whole-pixel moves, no interpolation
        if "xint" in self.ops:
            t = gate((rng.rand(n, 2) * 2 - 1) * self.xint_max, torch.zeros(n, 2, device=rng.dst, dtype=rng.dtype))
            g = g @ _translate(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
        if "scale" in self.ops:
            s = gate(torch.exp2(rng.randn(n) * self.scale_std), one)
            g = g @ _scale(1 / s, 1 / s)
        # Two independent rotations, each with this probability, make "rotated at all" probability p.
        p_rot = 1 - torch.sqrt((1 - p).clamp(0, 1))
        if "rotate" in self.ops:
            theta = gate((rng.rand(n) * 2 - 1) * math.pi * self.rotate_max, zero, p_rot)
            g = g @ _rotate(torch.cos(theta), torch.sin(theta))
        if "aniso" in self.ops:
            s = gate(torch.exp2(rng.randn(n) * self.aniso_std), one)
            g = g @ _scale(1 / s, s)
        if "rotate" in self.ops:
            theta = gate((rng.rand(n) * 2 - 1) * math.pi * self.rotate_max, zero, p_rot)
            g = g @ _rotate(torch.cos(theta), torch.sin(theta))
        if "xfrac" in self.ops:
            t = gate(rng.randn(n, 2) * self.xfrac_std, torch.zeros(n, 2, device=rng.dst, dtype=rng.dtype))
            g = g @ _translate(-t[:, 0] * w, -t[:, 1] * h)
        return g

    def _warp(self, images: Tensor, g: Tensor) -> Tensor:
        """Resample each image through its matrix; identity matrices leave their image bit-exact."""
        n, c, h, w = images.shape
        # affine_grid works in [-1, 1] coordinates where a pixel centre sits at (2 * i + 1) / size - 1:
        # conjugate the pixel-space matrix by that scaling.
        to_norm = torch.diag(torch.tensor([2 / w, 2 / h, 1.0], device=g.device, dtype=g.dtype))
        to_pix = torch.diag(torch.tensor([w / 2, h / 2, 1.0], device=g.device, dtype=g.dtype))
        theta = (to_norm @ g @ to_pix)[:, :2, :]
        grid = F.affine_grid(theta, [n, c, h, w], align_corners=False).to(images.dtype)
        warped = grid_sample_reflect(images, grid)
        keep = (g == torch.eye(3, device=g.device, dtype=g.dtype)).flatten(1).all(1)
        return torch.where(keep.view(n, 1, 1, 1), images, warped)

    def _colour(self, n: int, c: int, p: Tensor, rng: _Rng) -> Tensor:
        """Per-image 4x4 homogeneous colour matrix acting on (r, g, b, 1)."""
        if c not in (1, 3):
            raise GanforgeError(f"colour augmentation needs 1 or 3 channels, got {c}")
        eye = torch.eye(4, device=rng.dst, dtype=rng.dtype)
        m = eye.expand(n, 4, 4)
        v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=rng.dst, dtype=rng.dtype) / math.sqrt(3)  # luma axis
        vv = torch.outer(v, v)

        def gate(value: Tensor, identity: float) -> Tensor:
            return torch.where(rng.rand(n) < p, value, torch.full_like(value, identity))

        def diag(a: Tensor, offset: Tensor) -> Tensor:  # a*I on RGB, then + offset on every channel
            out = eye * a.view(n, 1, 1)
            out[:, 3, 3] = 1
            out[:, :3, 3] = offset.view(n, 1)
            return out

        if "brightness" in self.ops:
            b = gate(rng.randn(n) * self.brightness_std, 0.0)
            m = diag(torch.ones_like(b), b) @ m
        if "contrast" in self.ops:
            k = gate(torch.exp2(rng.randn(n) * self.contrast_std), 1.0)
            m = diag(k, torch.zeros_like(k)) @ m
        if "lumaflip" in self.ops:
            i = gate(torch.floor(rng.rand(n) * 2), 0.0)
            m = (eye - 2 * vv * i.view(n, 1, 1)) @ m  # Householder reflection of the luma axis
        # Hue and saturation move colour around the grey axis; a 1-channel image has nothing to move.
        if "hue" in self.ops and c == 3:
            theta = gate((rng.rand(n) * 2 - 1) * math.pi * self.hue_max, 0.0).view(n, 1, 1)
            cross = torch.zeros(4, 4, device=rng.dst, dtype=rng.dtype)  # [v]_x, so cross @ u = v x u
            cross[0, 1], cross[0, 2], cross[1, 2] = -v[2], v[1], -v[0]
            cross = cross - cross.T
            rot = torch.cos(theta) * (eye - vv) + torch.sin(theta) * cross + vv  # Rodrigues about v
            rot[:, 3, 3] = 1
            m = rot @ m
        if "saturation" in self.ops and c == 3:
            s = gate(torch.exp2(rng.randn(n) * self.saturation_std), 1.0).view(n, 1, 1)
            sat = vv + (eye - vv) * s
            sat[:, 3, 3] = 1
            m = sat @ m
        return m

    def _recolour(self, images: Tensor, m: Tensor) -> Tensor:
        """Apply the colour matrices pixel-wise."""
        n, c, h, w = images.shape
        x = images.reshape(n, c, h * w)
        m = m.to(images.dtype)
        if c == 3:
            x = m[:, :3, :3] @ x + m[:, :3, 3:]
        else:
            # A grey image is r = g = b = x; map it through m and take the mean of the three outputs.
            row = m[:, :3, :].mean(1)
            x = x * row[:, :3].sum(1).view(n, 1, 1) + row[:, 3].view(n, 1, 1)
        return x.reshape(n, c, h, w)


class AdaController:
    """ADA's p heuristic: nudge p so that E[sign(D(real))] stays near `target`."""

    def __init__(self, target: float = 0.6, interval: int = 4, kimg: float = 500.0, p: float = 0.0,
                 pipe: AugmentPipe | None = None):
        if interval < 1 or kimg <= 0:
            raise GanforgeError(f"ADA needs interval >= 1 and kimg > 0, got {interval} and {kimg}")
        self.target, self.interval, self.kimg, self.pipe = target, interval, kimg, pipe
        self.p = min(max(float(p), 0.0), 1.0)
        self.rt = float("nan")  # the last E[sign(D(real))], for logging
        self.acc = torch.zeros(2)  # [sum of sign(D(real)), number of outputs] since the last update
        self.batches = 0  # minibatches since the last update
        self.images = 0  # images since the last update
        self.updates = 0
        self._push()

    def accumulate(self, real_logits: Tensor) -> None:
        """Record D's outputs on a batch of (augmented) real images; stays on their device, no sync."""
        logits = real_logits.detach()
        if self.acc.device != logits.device:
            self.acc = self.acc.to(logits.device)
        self.acc[0] += torch.sign(logits).sum().to(self.acc.dtype)
        self.acc[1] += logits.numel()

    def step(self, batch_size: int, reduce: Callable[[Tensor], Tensor] | None = None) -> float:
        """Count one minibatch of `batch_size` images (all ranks); every `interval` of them, adjust p."""
        self.batches += 1
        self.images += int(batch_size)
        if self.batches < self.interval:
            return self.p
        # With DDP, pass e.g. `lambda t: (dist.all_reduce(t), t)[1]`: every rank then sees the global
        # sum and count, and takes the same step, so p stays identical across ranks.
        acc = reduce(self.acc.clone()) if reduce is not None else self.acc
        total, count = acc.double().tolist()
        if count > 0:  # nothing recorded: no evidence either way, keep p
            self.rt = total / count
            adjust = math.copysign(1.0, self.rt - self.target) if self.rt != self.target else 0.0
            self.p = min(max(self.p + adjust * self.images / (self.kimg * 1000), 0.0), 1.0)
            self.updates += 1
        self.acc.zero_()
        self.batches = self.images = 0
        self._push()
        return self.p

    def _push(self) -> None:
        if self.pipe is not None:
            self.pipe.p.fill_(self.p)

    def state_dict(self) -> dict:
        """p, the pending sums and the counters, as primitives and a CPU tensor (weights_only-safe)."""
        return {"p": self.p, "rt": self.rt, "acc": self.acc.detach().cpu().clone(), "batches": self.batches,
                "images": self.images, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` saved (and write p into the attached pipe)."""
        self.p, self.rt = float(state["p"]), float(state["rt"])
        self.acc = state["acc"].detach().to(self.acc.device, self.acc.dtype).clone()
        self.batches, self.images, self.updates = int(state["batches"]), int(state["images"]), int(state["updates"])
        self._push()
