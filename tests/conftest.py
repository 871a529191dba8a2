"""Shared fixtures: small, fast runs on the built-in data."""
import pytest
import torch

torch.set_num_threads(1)  # tiny test networks run faster on one thread than contending for two

# A tiny DCGAN so loop tests take seconds on 2 CPU cores.
TINY = ["model.ngf=8", "model.ndf=8", "train.batch_size=16", "train.progress=false"]


@pytest.fixture
def tiny():
    """Overrides for a tiny, quick DCGAN run."""
    return list(TINY)
