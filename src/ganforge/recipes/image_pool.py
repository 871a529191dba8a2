"""The image history buffer of Shrivastava et al. (2017), as CycleGAN uses it for each discriminator.

Semantics of the reference ImagePool (junyanz/pytorch-CycleGAN-and-pix2pix, util/image_pool.py): until
the pool holds `size` images every generated image is stored and passed through unchanged; after that,
each image is, with probability 1/2, swapped for a uniformly chosen stored one (which the new image
replaces), and otherwise passed through. D thus sees a history of generated images rather than only
the latest generator's, which the CycleGAN paper credits with reducing oscillation.

Randomness comes from torch's global CPU generator, which the training loop saves and restores, and the
stored images are part of `state_dict()`, so a resumed run draws and returns exactly what an
uninterrupted one would.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import GanforgeError


class ImagePool:
    """A history of up to `size` generated images (size 0: a pass-through)."""

    def __init__(self, size: int = 50):
        if size < 0:
            raise GanforgeError(f"pool_size must be >= 0, got {size}")
        self.size = int(size)
        self.count = 0
        self.images: Tensor | None = None  # [size, C, H, W], allocated on the first query

    def __len__(self) -> int:
        return self.count

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """Images for D: each new image, or (once the pool is full, with prob. 1/2) a stored one it replaces."""
        if self.size == 0:
            return images.detach()
        images = images.detach()
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
        elif self.images.shape[1:] != images.shape[1:]:
            raise GanforgeError(
                f"image pool holds {tuple(self.images.shape[1:])} images, got {tuple(images.shape[1:])}")
        elif self.images.device != images.device or self.images.dtype != images.dtype:
            self.images = self.images.to(images.device, images.dtype)  # restored from a CPU checkpoint
        out = []
        for image in images:
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif float(torch.rand(())) > 0.5:  # the reference's `random.uniform(0, 1) > 0.5`
                j = int(torch.randint(self.size, ()))
                out.append(self.images[j].clone())
                self.images[j] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """The stored images (on CPU) and their count: tensors and primitives only."""
        stored = self.images[: self.count].detach().cpu().clone() if self.images is not None else torch.empty(0)
        return {"size": self.size, "count": self.count, "images": stored}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict() returned (the images move to the device of the next query)."""
        if int(state["size"]) != self.size:
            raise GanforgeError(f"checkpoint image pool has size {state['size']}, this run's pool_size is {self.size}")
        self.count = int(state["count"])
        stored = state["images"]
        if self.count == 0:
            self.images = None
            return
        self.images = stored.new_empty((self.size, *stored.shape[1:]))
        self.images[: self.count] = stored
