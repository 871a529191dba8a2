"""Train the `ganforge-photo-v1` feature extractor on photos bundled with scikit-image and scikit-learn.

    python scripts/train_photo_extractor.py [--steps 2000] [--seed 0]

Two tasks on one 128-d feature vector, each with its own linear head:
  - which of the 18 photos in ganforge.metrics.photo_extractor.PHOTOS a random crop comes from;
  - which defect in DEFECTS the crop carries (none for half of them; otherwise noise, blur, a colour
    cast, desaturation or 2x blockiness, at random strengths), so that the features respond to the
    flaws generated images have instead of learning to ignore them.
Training crops lie in the left 75 % of each photo; held-out accuracies are measured on crops of the
right 25 %, never trained on. One CPU thread, deterministic given --seed (on the same machine and torch
build). Writes src/ganforge/assets/ganforge_photo_v1.safetensors (float16) and pins its SHA-256 in
ganforge/metrics/photo_extractor.py.
"""
from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganforge.data.translation_demo import region
from ganforge.metrics.photo_extractor import DEFECTS, INPUT_SIZE, PHOTOS, PhotoNet
from ganforge.utils.hashing import sha256_file

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = str(ROOT / "src/ganforge/assets/ganforge_photo_v1.safetensors")
MAX_SIDE = 640  # larger photos (retina, hubble) are shrunk first, so crops see similar scales everywhere
CROP_MIN, CROP_MAX = 32, 160  # square crop side in (shrunk) source pixels, drawn log-uniformly


def load_source(name: str) -> torch.Tensor:
    """One bundled photo as a [3, H, W] float tensor in [-1, 1] (grey repeated), longer side <= MAX_SIDE."""
    from PIL import Image

    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        arr = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data

        arr = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    img = Image.fromarray(np.asarray(arr, dtype=np.uint8)).convert("RGB")
    if max(img.size) > MAX_SIDE:
        scale = MAX_SIDE / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 127.5 - 1


def _u(g: torch.Generator, lo: float = 0.0, hi: float = 1.0, shape: tuple[int, ...] = ()) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def defect(x: torch.Tensor, kind: str, g: torch.Generator) -> torch.Tensor:
    """Apply one DEFECTS entry, at a random strength, to a [1, 3, s, s] image in [-1, 1]."""
    if kind == "noise":
        return (x + float(_u(g, 0.04, 0.2)) * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    if kind == "blur":
        sigma = float(_u(g, 0.6, 1.5))
        t = torch.arange(-3, 4, dtype=torch.float32)
        k = torch.exp(-t ** 2 / (2 * sigma ** 2))
        k = (k / k.sum()).view(1, 1, 1, 7)
        x = F.pad(x, (3, 3, 3, 3), mode="replicate")
        x = F.conv2d(x, k.expand(3, 1, 1, 7), groups=3)
        return F.conv2d(x, k.view(1, 1, 7, 1).expand(3, 1, 7, 1), groups=3)
    if kind == "colour-cast":
        gain, bias = _u(g, -0.2, 0.2, (1, 3, 1, 1)), _u(g, -0.2, 0.2, (1, 3, 1, 1))
        return (x * (1 + gain) + bias).clamp(-1, 1)
    if kind == "desaturated":
        a = float(_u(g, 0.5, 1.0))
        return x + a * (x.mean(1, keepdim=True) - x)
    if kind == "blocky":
        s = x.shape[-1]
        return F.interpolate(F.interpolate(x, size=(s // 2, s // 2), mode="area"), size=(s, s), mode="nearest")
    return x


def crops(photo: torch.Tensor, split: str, n: int, g: torch.Generator, augment: bool,
          defects: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """n random square crops of `photo` in its `split` region, at 32 or 64 px, maybe with a defect, as
    the extractor sees them (INPUT_SIZE); and the index of each one's defect."""
    h, w = photo.shape[1:]
    x0, x1 = region(w, split)
    out = torch.empty(n, 3, INPUT_SIZE, INPUT_SIZE)
    labels = torch.zeros(n, dtype=torch.long)
    avail = min(x1 - x0, h)
    lo, hi = math.log(min(CROP_MIN, avail)), math.log(min(CROP_MAX, avail))
    grey = bool((photo[0] == photo[1]).all() and (photo[1] == photo[2]).all())
    # Desaturating a grey photo changes nothing: it would be a label the image cannot show.
    choices = [k for k in range(1, len(DEFECTS)) if not (grey and DEFECTS[k] == "desaturated")]
    for i in range(n):
        side = int(round(math.exp(lo + (hi - lo) * float(_u(g)))))
        left = x0 + int(torch.randint(0, x1 - x0 - side + 1, (), generator=g))
        top = int(torch.randint(0, h - side + 1, (), generator=g))
        c = photo[None, :, top:top + side, left:left + side]
        # Half at 32 px, the demos' size, which the extractor upsamples to 64 like any small image.
        size = 32 if augment and float(_u(g)) < 0.5 else INPUT_SIZE
        c = F.interpolate(c, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if augment and float(_u(g)) < 0.5:
            c = c.flip(-1)
        if defects and float(_u(g)) < 0.5:
            labels[i] = choices[int(torch.randint(0, len(choices), (), generator=g))]
            c = defect(c, DEFECTS[int(labels[i])], g)
        out[i] = PhotoNet.prepare(((c.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1)[0]  # 8-bit, as files are
    return out, labels


def batch(photos: list[torch.Tensor], split: str, n: int, g: torch.Generator, augment: bool,
          defects: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n crops with photo labels drawn uniformly, and their defect labels."""
    labels = torch.randint(0, len(photos), (n,), generator=g)
    x = torch.empty(n, 3, INPUT_SIZE, INPUT_SIZE)
    d = torch.zeros(n, dtype=torch.long)
    for k in labels.unique().tolist():
        idx = (labels == k).nonzero()[:, 0]
        x[idx], d[idx] = crops(photos[k], split, len(idx), g, augment, defects)
    return x, labels, d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    photos = [load_source(name) for name in PHOTOS]
    gv = torch.Generator().manual_seed(10_000 + args.seed)
    val_x, val_y, _ = batch(photos, "test", 40 * len(PHOTOS), gv, False, False)
    dval_x, _, dval_d = batch(photos, "test", 40 * len(PHOTOS), gv, True, True)
    print(f"{len(PHOTOS)} photos, {len(DEFECTS)} defect classes; held-out {len(val_x)} clean and "
          f"{len(dval_x)} augmented crops of their right 25 %")
    net = PhotoNet()
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 4e-3, total_steps=args.steps, pct_start=0.2)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        net.train()
        x, y, d = batch(photos, "train", args.batch_size, g, True, True)
        photo_logits, defect_logits = net(x)
        loss = F.cross_entropy(photo_logits, y, label_smoothing=0.1) + F.cross_entropy(defect_logits, d)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0 or step == args.steps:
            net.eval()
            with torch.no_grad():
                acc = (net(val_x)[0].argmax(1) == val_y).float().mean().item()
                dacc = (net(dval_x)[1].argmax(1) == dval_d).float().mean().item()
            print(f"step {step:5d}  loss {loss.item():.4f}  held-out photo accuracy {acc:.4f}  "
                  f"defect accuracy {dacc:.4f}  ({time.time() - t0:.0f}s)", flush=True)
    # float16 on disk halves the file; the extractor computes in float32 all the same.
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in net.state_dict().items()},
              args.out)
    digest = sha256_file(args.out)
    if Path(args.out).resolve() == Path(DEFAULT_OUT).resolve():  # only the shipped file is pinned
        module = ROOT / "src/ganforge/metrics/photo_extractor.py"
        module.write_text(re.sub(r'WEIGHTS_SHA256 = "[^"]*"', f'WEIGHTS_SHA256 = "{digest}"', module.read_text()))
    print(f"held-out photo accuracy {acc:.4f}, defect accuracy {dacc:.4f} on {len(val_x)} crops each; "
          f"{time.time() - t0:.0f}s; wrote {args.out} ({Path(args.out).stat().st_size} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
