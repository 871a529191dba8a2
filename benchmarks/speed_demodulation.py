"""Weight demodulation computed two ways: the per-sample weight tensor (the reference's formula) against the
factored product ganforge uses, timed interleaved in one process on a StyleGAN2 generator step.

    python benchmarks/speed_demodulation.py [--config cpu-digits] [--batch 64] [--rounds 7] [--section TITLE]

The reference forms w[n, o, i, kh, kw] = weight[o, i, kh, kw] * styles[n, i] and sums its squares for each
(n, o). The same number is sum_i styles[n, i]^2 * ||weight[o, i]||^2: a [N, in] x [in, out] product that
never builds the [N, out, in, kh, kw] tensor. Both are timed on a full G forward and backward (training mode,
the non-fused path the loop uses), alternating, and their outputs compared.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from ganforge.models import stylegan2 as sg2_module
from ganforge.nn import equalized
from ganforge.registry import create_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, record  # noqa: E402

FACTORED = equalized.modulated_conv2d


def reference_demodulation(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                           demodulate=True, fused_modconv=True, flip_weight=True):
    """The reference's non-fused path: demodulation coefficients from the per-sample weights."""
    if not demodulate or fused_modconv:
        return FACTORED(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, fused_modconv,
                        flip_weight)
    n, in_c = styles.shape
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_c, 1, 1)
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    x = x * styles.reshape(n, in_c, 1, 1)
    x = equalized.conv2d_resample(x, weight, resample_filter, up=up, down=down, padding=padding,
                                  flip_weight=flip_weight)
    x = x * dcoefs.reshape(n, -1, 1, 1)
    return x + noise if noise is not None else x


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="cpu-digits")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--section", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    G = create_model("stylegan2", config=args.config, channels=args.channels)["G"].train()
    z = torch.randn(args.batch, G.z_dim)

    def step() -> torch.Tensor:
        G.zero_grad(set_to_none=True)
        out = G(z, noise_mode="const")
        out.square().mean().backward()
        return out.detach()

    def use(fn) -> None:  # every module that calls it by name
        equalized.modulated_conv2d = sg2_module.modulated_conv2d = fn

    def timed(fn) -> float:
        use(fn)
        t0 = time.perf_counter()
        for _ in range(args.iters):
            step()
        return (time.perf_counter() - t0) / args.iters

    outs = {}
    for name, fn in (("reference", reference_demodulation), ("factored", FACTORED)):
        use(fn)
        outs[name] = step()
    diff = float((outs["reference"] - outs["factored"]).abs().max())
    times = {"reference": [], "factored": []}
    for _ in range(args.rounds):  # interleaved: the machine's noise hits both alike
        times["reference"].append(timed(reference_demodulation))
        times["factored"].append(timed(FACTORED))
    use(FACTORED)
    ref, fac = statistics.median(times["reference"]), statistics.median(times["factored"])
    body = (f"`python benchmarks/speed_demodulation.py {' '.join(sys.argv[1:])}`\n\n"
            f"StyleGAN2 `{args.config}` generator, batch {args.batch}, forward + backward in training mode, "
            f"{args.rounds} interleaved rounds of {args.iters} steps, median per step. Machine: {machine()}.\n\n"
            "| demodulation | ms per G step |\n|---|---|\n"
            f"| reference (per-sample weight tensor) | {ref * 1000:.1f} |\n"
            f"| factored (styles^2 x weight norms) | {fac * 1000:.1f} |\n\n"
            f"Speed-up {ref / fac:.2f}x; largest output difference {diff:.1e}.")
    print(body)
    if args.section:
        record(args.section, body)


if __name__ == "__main__":
    main()
