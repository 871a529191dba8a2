"""Tiny trained runs of several families (one step each) under one runs folder, and a live server helper."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch


pytest.importorskip("fastapi", reason="`ganforge serve` needs fastapi (pip install 'ganforge[serve]')")
pytest.importorskip("uvicorn", reason="`ganforge serve` needs uvicorn (pip install 'ganforge[serve]')")

import ganforge  # noqa: E402
from servehelp import DIRECTION  # noqa: E402

COMMON = ["train.progress=false", "train.sample_every=1000", "train.ckpt_every=1000", "train.steps=1"]
SPECS = {
    "dcgan": ("dcgan", ["model.ngf=8", "model.ndf=8", "model.clusters=0", "train.batch_size=8"]),
    "cgan": ("cgan", ["model.ngf=8", "model.ndf=8", "train.batch_size=8"]),
    "sg2": ("stylegan2", ["model.config=cpu-tiny", "model.clusters=0", "model.channels=1", "model.channel_max=16",
                          "model.z_dim=16", "model.w_dim=16", "train.batch_size=8"]),
    "p2p": ("pix2pix", ["model.image_size=32", "model.ngf=8", "model.ndf=8", "train.batch_size=4",
                        "train.n_samples=4", "data.source=demo:colorize,n_train=16,n_test=4"]),
    "cyc": ("cyclegan", ["model.image_size=32", "model.ngf=8", "model.ndf=8", "model.n_blocks=1",
                         "train.batch_size=2", "train.n_samples=3", "data.source=demo:grass2gravel,n_train=8,n_test=3"]),
    "sr": ("srresnet", ["model.num_blocks=1", "model.features=8", "model.hr_size=32", "train.batch_size=4",
                        "train.eval_every=0", "recipe.crops_per_epoch=16"]),
}


def pytest_configure(config):
    # starlette's TestClient asks for httpx2; httpx works the same for these tests
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


def _quiet(*args, **kwargs) -> None:
    pass


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    """runs/{dcgan,cgan,sg2,p2p,cyc,sr} plus a nested group~nested (a dcgan) and a saved StyleGAN direction."""
    from ganforge.tools.directions import Direction, save_direction

    root = tmp_path_factory.mktemp("serve-runs")
    torch.manual_seed(0)
    for name, (target, overrides) in SPECS.items():
        ganforge.train(target, overrides=overrides + COMMON, runs_dir=str(root), name=name, echo=_quiet)
    (root / "group").mkdir()
    ganforge.train("dcgan", overrides=SPECS["dcgan"][1] + COMMON, runs_dir=str(root / "group"), name="nested",
                   echo=_quiet)
    g = ganforge.load(root / "sg2")
    d = torch.zeros(g.net.w_dim)
    d[0] = 1.0
    save_direction(g, Direction(d, 3.0, 0.0, "regression", "correlation", 0.9, 8, 2, "test"), DIRECTION)
    return root


@pytest.fixture(scope="module")
def app(runs_dir):
    from ganforge.serve import create_app

    application = create_app(runs_dir, max_upload_bytes=256 * 1024, max_pixels=256 * 256,
                             max_upscale_pixels=64 * 64)
    yield application
    application.state.engine.close()


@pytest.fixture(scope="module")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


