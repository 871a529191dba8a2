"""Frames [F, C, H, W] in [-1, 1] to an animated GIF (Pillow) or an MP4 (ffmpeg), written atomically.

GIF: every frame is kept at `1000 / fps` ms, looping forever; Pillow merges a frame identical to the one
before it into that one (the total time is kept), so a walk through identical images has fewer frames.
MP4: H.264 (yuv420p, so odd sizes are padded to even with black) through the ffmpeg of the
`imageio-ffmpeg` package, else an `ffmpeg` on PATH; without either, `.mp4` is refused before any work.
`size` rescales each frame to `size` pixels high (the width alike): nearest-neighbour when enlarging (a
tiny model's pixels stay crisp), Lanczos when shrinking.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from ..errors import GanforgeError
from ..utils.atomic import atomic_write
from ..utils.images import to_uint8

SUFFIXES = (".gif", ".mp4")
MAX_SIZE = 4096


def ffmpeg_exe() -> str | None:
    """Path of an ffmpeg binary (imageio-ffmpeg's, else one on PATH), or None."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or its binary is missing
        return shutil.which("ffmpeg")


def check_animation_path(path: str | Path) -> str:
    """The suffix (.gif or .mp4) of an animation path, after checking that it can be written."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise GanforgeError(f"animations are written as .gif or .mp4, not {suffix or 'a file without suffix'!r}: "
                            f"{path}")
    if suffix == ".mp4" and ffmpeg_exe() is None:
        raise GanforgeError("writing .mp4 needs ffmpeg (pip install imageio-ffmpeg, or an ffmpeg binary on PATH) "
                            "and none was found; write a .gif instead")
    return suffix


def check_size(size: int | None) -> int | None:
    """A frame size in pixels (8..4096) or None."""
    if size is not None and not 8 <= int(size) <= MAX_SIZE:
        raise GanforgeError(f"frame size must lie in 8..{MAX_SIZE} pixels, got {size}")
    return size


def frame_images(frames: Tensor, size: int | None = None) -> list[Image.Image]:
    """[F, C, H, W] in [-1, 1] as PIL images ("L" or "RGB"), rescaled to `size` pixels high if given."""
    if frames.dim() != 4 or frames.shape[0] < 1:
        raise GanforgeError(f"frames must have shape [F, C, H, W] with F >= 1, got {list(frames.shape)}")
    out = []
    for f in frames:
        img = Image.fromarray(to_uint8(f))
        if size is not None and img.height != size:
            method = Image.Resampling.NEAREST if size > img.height else Image.Resampling.LANCZOS
            img = img.resize((max(1, round(img.width * size / img.height)), size), method)
        out.append(img)
    return out


def write_animation(frames: Tensor, path: str | Path, fps: float = 20.0, size: int | None = None) -> Path:
    """Write frames [F, C, H, W] in [-1, 1] as a looping GIF or an MP4 (by the path's suffix)."""
    suffix = check_animation_path(path)
    check_size(size)
    if not fps > 0:
        raise GanforgeError(f"fps must be > 0, got {fps}")
    images = frame_images(frames, size)
    if suffix == ".gif":
        duration = max(1, round(1000.0 / fps))

        def _gif(tmp: str) -> None:
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)

        return atomic_write(path, _gif)
    return atomic_write(path, lambda tmp: _write_mp4(images, tmp, fps))


def _write_mp4(images: list[Image.Image], out: str, fps: float) -> None:
    w, h = images[0].size
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", f"{fps:g}", "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-f", "mp4", out]
    raw = b"".join(np.asarray(img.convert("RGB")).tobytes() for img in images)
    try:
        proc = subprocess.run(cmd, input=raw, capture_output=True)
    except OSError as e:
        raise GanforgeError(f"cannot run ffmpeg ({cmd[0]}): {e.strerror}") from None
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["unknown error"])[-1]
        raise GanforgeError(f"ffmpeg failed to write the MP4 ({last}); write a .gif instead")
