"""Dataset items to batches: one rule for every source and recipe."""
from __future__ import annotations

from typing import Any

import torch


def as_item(item: Any) -> dict[str, Any]:
    """A dataset item as a dict: dict items as they are, (image, label) pairs as {"image", "label"}."""
    if isinstance(item, dict):
        return item
    image, label = item
    return {"image": image, "label": torch.as_tensor(label, dtype=torch.long)}


def collate(items: list[Any]) -> dict[str, torch.Tensor]:
    """Stack a list of dataset items into one batch dict."""
    dicts = [as_item(it) for it in items]
    out: dict[str, Any] = {}
    for k in dicts[0]:
        vals = [d[k] for d in dicts]
        out[k] = torch.stack([torch.as_tensor(v) for v in vals]) if not isinstance(vals[0], str) else vals
    return out
