"""Self-conditioned DCGAN (model.clusters): G and D conditioned on k-means clusters of the training images,
the cluster drawn from z in the clusters' proportions, and the model sampled like an unconditional one."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ganforge
from ganforge.data.builtin import load_mnist
from ganforge.data.clusters import cluster_labels
from ganforge.errors import GanforgeError
from ganforge.models.conditioning import ClusterPrior
from ganforge.recipes.context import StepContext
from ganforge.registry import create_model

from test_gan_options import TINY  # noqa: E402 (tests/recipes is on sys.path)
from test_gan_recipe import Recorder  # noqa: E402


def test_cluster_prior_draws_clusters_in_proportion_from_the_first_latent():
    p = ClusterPrior(3)
    p.set_sizes(torch.tensor([100, 300, 600]))
    z = torch.randn(40000, 5, generator=torch.Generator().manual_seed(0))
    y = p(z)
    share = torch.bincount(y, minlength=3).float() / len(y)
    assert torch.allclose(share, torch.tensor([0.1, 0.3, 0.6]), atol=0.01)
    # monotone in z0 alone: the cluster is where Phi(z0) falls in the cumulative prior
    z0 = torch.tensor([[-3.0, 9.0], [-1.0, -9.0], [0.0, 0.0], [3.0, 0.0]])
    assert p(z0).tolist() == [0, 1, 2, 2]  # Phi: 0.001, 0.159 (< 0.1 + 0.3), 0.5, 0.999


def test_self_conditioned_generator_is_unconditional_outside_and_conditional_inside():
    m = create_model("dcgan", image_size=28, channels=1, ngf=8, ndf=8, clusters=4)
    assert m.io.num_classes == 0  # users sample it without labels
    G = m["G"].eval()
    G.cluster_prior.set_sizes(torch.tensor([1, 1, 1, 5]))
    z = torch.randn(6, 100)
    assert torch.equal(G(z), G(z, G.cluster_prior(z)))
    assert not torch.allclose(G(z, torch.zeros(6, dtype=torch.long)), G(z, torch.full((6,), 3)))
    exported = torch.export.export(G, (z,))
    assert torch.allclose(exported.module()(z), G(z), atol=1e-5)
    assert m["D"](G(z), torch.zeros(6, dtype=torch.long)).shape == (6,)
    with pytest.raises(GanforgeError, match="not class-conditional"):
        m.io.latents(4, 0, labels=1)


def test_training_replaces_labels_by_kmeans_clusters_and_sets_the_prior(tmp_path):
    run = ganforge.train("dcgan", overrides=TINY + ["train.steps=2", "model.clusters=10",
                                                    "model.d_conditioning=projection"],
                         name="sc", runs_dir=str(tmp_path))
    x, truth, _ = load_mnist("train")
    want = cluster_labels(torch.from_numpy(x).float() / 127.5 - 1, 10)
    g = ganforge.load(run)
    prior = g.net.cluster_prior.prior
    assert torch.allclose(prior, torch.from_numpy(np.bincount(want, minlength=10) / len(want)).float(), atol=1e-6)
    assert not np.array_equal(want, truth)  # not the human labels
    imgs = g.sample(4, seed=0)
    assert imgs.shape == (4, 1, 28, 28)


def test_generator_step_conditions_d_on_the_cluster_g_drew():
    from ganforge.registry import recipe_class

    rcls = recipe_class("gan")
    models = create_model("dcgan", image_size=28, channels=1, ngf=8, ndf=8, clusters=3,
                          d_conditioning="projection")
    models["G"].cluster_prior.set_sizes(torch.tensor([1, 0, 0]))  # every z -> cluster 0
    r = rcls(models, rcls.Config(), torch.device("cpu"))
    rec = Recorder(models)
    try:
        batch = {"image": torch.rand(8, 1, 28, 28) * 2 - 1, "label": torch.full((8,), 2)}
        r.step([batch], StepContext(batch_size=8))
    finally:
        rec.remove()
    d_labels = [c[1][1] for c in rec.calls if c[0] == "D"]
    assert all(torch.equal(y, torch.full((8,), 2)) for y in d_labels[:2])  # D phase: the batch's clusters
    assert torch.equal(d_labels[-1], torch.zeros(8, dtype=torch.long))  # G phase: the cluster G drew


def test_clusters_and_classes_together_are_refused():
    with pytest.raises(GanforgeError, match="replaces class labels"):
        create_model("dcgan", num_classes=10, clusters=10)


@pytest.mark.parametrize("k,spectral", [(10, False), (80, False), (5, True)])
def test_label_planes_are_the_explicit_one_hot_concatenation(k, spectral):
    from ganforge.models.conditioning import one_hot_maps

    m = create_model("dcgan", image_size=28, channels=1, ngf=8, ndf=8, num_classes=k, d_spectral=spectral)
    D = m["D"].eval()
    x, y = torch.randn(6, 1, 28, 28), torch.randint(0, k, (6,))
    with torch.no_grad():
        want = D.out(D.features(torch.cat([x, one_hot_maps(y, k, 28, 28)], 1))).flatten()
        assert torch.allclose(D(x, y), want, atol=1e-5)


@pytest.mark.parametrize("name,args", [("gan", {}), ("dcgan", dict(ngf=8, ndf=8)), ("cgan", {}),
                                       ("cgan", dict(arch="mlp"))])
def test_recorded_arguments_rebuild_the_model(name, args):
    m = create_model(name, **args)
    again = create_model(name, **m.args)
    assert {k: v.shape for k, v in again["G"].state_dict().items()} == {k: v.shape for k, v in m["G"].state_dict().items()}


def test_mlp_gan_self_conditions_too():
    m = create_model("gan", clusters=5)
    G = m["G"].eval()
    z = torch.randn(4, 100)
    assert m.io.num_classes == 0 and torch.equal(G(z), G(z, G.cluster_prior(z)))
