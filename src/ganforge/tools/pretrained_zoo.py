"""The official stylegan2-ada-pytorch pretrained pickles, by name, with their SHA-256 where one is published.

NVIDIA publishes no checksums for these files. The hashes pinned here are the SHA-256 recorded by Git
LFS for copies of the same files on public mirrors (an LFS object id is the SHA-256 of the file's
bytes), named in `sha256_source`; where two independent uploads agree the pin is stronger, and the
source says so. A wrong pin can only make `fetch_pretrained` refuse a file, never accept an unverified
one. Entries without a pin are listed (name, URL) but not downloaded: fetch refuses them with one line.

Nothing here touches the network unless `fetch_pretrained` is called.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import GanforgeError

CDN = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"


@dataclass(frozen=True)
class PretrainedPickle:
    """One downloadable network pickle: where it is, what it holds, and its pinned SHA-256 (or None)."""

    name: str
    url: str
    resolution: int
    description: str
    sha256: str | None
    size: str  # exact bytes where a source gives them, else the mirrors' rounded size
    sha256_source: str = ""


_HF = "Git LFS object id of "
ZOO: dict[str, PretrainedPickle] = {p.name: p for p in [
    PretrainedPickle("stylegan2-ffhq-1024", CDN + "ffhq.pkl", 1024, "FFHQ, original StyleGAN2 config-f",
                     "a205a346e86a9ddaae702e118097d014b7b8bd719491396a162cca438f2f524c", "381,624,121 bytes",
                     _HF + "huggingface.co/DragGan/DragGan-Models stylegan2-ffhq1024x1024.pkl and of "
                     "huggingface.co/spaces/edemana/my-stylegan-model ffhq.pkl (381,624,121 bytes); public "
                     "download scripts pin this URL to the same hash"),
    PretrainedPickle("stylegan2-metfaces-1024", CDN + "metfaces.pkl", 1024, "MetFaces, ADA transfer from FFHQ",
                     "880a460d011a3696c088f58f5844b44271b17903963f2671f96f72dfbce5f76f", "about 382 MB",
                     _HF + "huggingface.co/aaronb/StyleGAN2-pkl ada/metfaces.pkl and of "
                     "huggingface.co/spaces/adirik/stylemc-demo pretrained/metfaces.pkl (two uploads agree)"),
    PretrainedPickle("stylegan2-afhqdog-512", CDN + "afhqdog.pkl", 512, "AFHQ Dog, ADA from scratch",
                     "f124ff3f23206052473a7212cbc1f4e095a73c231500411e9c3b81a11eac3662", "about 364 MB",
                     _HF + "huggingface.co/ZeqiangLai/StyleGAN2-pkl ada/afhqdog.pkl (one mirror)"),
    PretrainedPickle("stylegan2-brecahad-512", CDN + "brecahad.pkl", 512, "BreCaHAD, ADA from scratch",
                     "f9f0c2766187aff4c3424c4a5a67d52c503672f28cf08eab645382523b7a5161", "about 364 MB",
                     _HF + "huggingface.co/ZeqiangLai/StyleGAN2-pkl ada/brecahad.pkl (one mirror)"),
    PretrainedPickle("stylegan2-cifar10-32", CDN + "cifar10.pkl", 32, "CIFAR-10, class-conditional",
                     "f8952c74e23da2186d147ad871c48780bd59500ee37c301201081ee8e0cb32f1", "about 246 MB",
                     _HF + "huggingface.co/ZeqiangLai/StyleGAN2-pkl ada/cifar10.pkl (one mirror)"),
    PretrainedPickle("stylegan2-afhqcat-512", CDN + "afhqcat.pkl", 512, "AFHQ Cat, ADA from scratch", None, "unknown"),
    PretrainedPickle("stylegan2-afhqwild-512", CDN + "afhqwild.pkl", 512, "AFHQ Wild, ADA from scratch", None,
                     "unknown"),
    PretrainedPickle("stylegan2-ffhq-512", CDN + "transfer-learning-source-nets/ffhq-res512-mirror-stylegan2-noaug.pkl",
                     512, "FFHQ 512, transfer-learning source net", None, "unknown"),
    PretrainedPickle("stylegan2-ffhq-256", CDN + "transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl",
                     256, "FFHQ 256 (paper256), transfer-learning source net", None, "unknown"),
]}


def list_pretrained() -> list[PretrainedPickle]:
    """Every known pickle, pinned ones first."""
    return sorted(ZOO.values(), key=lambda p: (p.sha256 is None, p.name))


def lookup(name: str) -> PretrainedPickle:
    """The entry called `name`, or a GanforgeError listing the known names."""
    if name not in ZOO:
        known = ", ".join(p.name for p in list_pretrained())
        raise GanforgeError(f"unknown pretrained network {name!r} (known: {known})")
    return ZOO[name]


def fetch_pretrained(name: str, to: str | os.PathLike, url: str | None = None) -> Path:
    """Download pickle `name` into folder `to` as NAME.pkl, verified against its pinned SHA-256; returns it."""
    entry = lookup(name)
    if entry.sha256 is None:
        raise GanforgeError(f"no SHA-256 is pinned for {name} ({entry.url}), and ganforge downloads only verified "
                            f"files: download it yourself, check it, then `ganforge import FILE --out RUN`")
    from ..metrics.inception_weights import fetch_inception_weights  # the project's download-and-verify helper

    dest = Path(to).expanduser() / f"{name}.pkl"
    if dest.is_dir():
        raise GanforgeError(f"{dest} is a folder")
    return fetch_inception_weights(dest, url=url or entry.url, expected_sha256=entry.sha256)
