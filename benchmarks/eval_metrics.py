"""Evaluation figures and throughput on this machine.

    python benchmarks/eval_metrics.py RUN [--n 4500]

1. FID, KID, IS, precision/recall and density/coverage of RUN's generator against the built-in MNIST
   training digits with the MNIST judge's features (`ganforge eval RUN --ref mnist ...`), with the time.
2. Feature-extraction throughput (images/s) of the judge and of the FID Inception network. Inception's
   cost does not depend on its weights, so without the real weight file (GANFORGE_INCEPTION) the
   throughput is measured on a randomly initialised copy and labelled so; no Inception FID is reported
   then.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganforge.evaluate import evaluate, format_result
from ganforge.metrics import get_extractor
from ganforge.metrics.inception import InceptionExtractor
from ganforge.metrics.inception_net import FIDInceptionV3
from ganforge.utils.hashing import sha256_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402


def throughput(fn, images: torch.Tensor, batch: int) -> float:
    """Images/s of fn over `images` in batches (after one warm-up batch)."""
    fn(images[:batch])
    t0 = time.perf_counter()
    for i in range(0, len(images), batch):
        fn(images[i:i + batch])
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--n", type=int, default=4500)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rec = evaluate(args.run, "mnist", metrics=["fid", "kid", "is", "pr", "dc"], n=args.n, use_cache=False)
    wall = time.perf_counter() - t0
    table = format_result(rec)
    print(table)
    judge = get_extractor("mnist-judge")
    digits = torch.rand(2000, 1, 28, 28) * 2 - 1
    judge_ips = throughput(judge.features, digits, 500)
    if os.environ.get("GANFORGE_INCEPTION"):
        inc, label = get_extractor("inception"), "real weights"
    else:  # same architecture and code path, random weights saved in the standard file layout
        tmp = Path(tempfile.mkdtemp()) / "random-inception.pth"
        torch.save(FIDInceptionV3().state_dict(), tmp)
        inc, label = InceptionExtractor(weights=tmp, expected_sha256=sha256_file(tmp)), "randomly initialised (throughput only)"
    imgs = torch.rand(64, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        inc_ips = throughput(inc.features, imgs, 32)
    body = (f"`python benchmarks/eval_metrics.py {args.run} --n {args.n}` "
            f"(generated {rec['n_generated']} vs {rec['n_real']} built-in MNIST training digits, mnist-judge features)\n\n"
            f"```\n{table}\n```\n\nwhole evaluation incl. sampling and the reference features: {wall:.1f} s\n\n"
            f"| extractor | images/s | note |\n|---|---|---|\n"
            f"| mnist-judge (28x28) | {judge_ips:.0f} | |\n"
            f"| inception (resize to 299x299) | {inc_ips:.1f} | {label} |")
    print(body)
    if not args.no_record:
        record("Evaluation (issue 3)", body)


if __name__ == "__main__":
    main()
