"""A Keras-style model summary: each layer's output shape and parameter count."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def summarize(net: nn.Module, inputs: tuple[Tensor, ...], title: str = "") -> str:
    """Run `inputs` through `net` and tabulate every leaf module's output shape and parameters."""
    rows: list[tuple[str, str, str, int]] = []
    hooks = []

    def hook(name):
        def fn(mod, _inp, out):
            shape = tuple(out.shape) if isinstance(out, Tensor) else "?"
            own = sum(p.numel() for p in mod.parameters(recurse=False))
            text = "(" + ", ".join(["N", *map(str, shape[1:])]) + ")" if shape != "?" else "?"
            rows.append((name, type(mod).__name__, text, own))
        return fn

    for name, mod in net.named_modules():
        if name and not list(mod.children()):
            hooks.append(mod.register_forward_hook(hook(name)))
    was = net.training
    net.eval()
    with torch.no_grad():
        net(*inputs)
    net.train(was)
    for h in hooks:
        h.remove()
    total = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    w1 = max([len(r[0]) + len(r[1]) + 4 for r in rows] + [20])
    w2 = max([len(r[2]) for r in rows] + [12])
    line = "-" * (w1 + w2 + 16)
    out = [title or type(net).__name__, line, f"{'Layer (type)':<{w1}}{'Output shape':<{w2}}{'Param #':>14}", line]
    for name, typ, shape, n in rows:
        out.append(f"{name + ' (' + typ + ')':<{w1}}{shape:<{w2}}{n:>14,}")
    out += [line, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", ""]
    return "\n".join(out)
