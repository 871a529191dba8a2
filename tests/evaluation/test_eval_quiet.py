"""`ganforge eval` of paired folders writes its table and nothing else: no library warnings on stderr."""
import subprocess
import sys

import numpy as np
from PIL import Image


def test_paired_eval_prints_no_warnings(tmp_path):
    rng = np.random.default_rng(0)
    for d in ("pred", "ref"):
        (tmp_path / d).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / d / f"{i}.png")
    proc = subprocess.run([sys.executable, "-m", "ganforge", "eval", str(tmp_path / "pred"), "--ref",
                           str(tmp_path / "ref"), "--metrics", "psnr,ssim,l1"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "psnr" in proc.stdout
    assert proc.stderr == ""
