"""The BigGAN game: hinge updates, D steps, micro-batch accumulation, orthogonal regularisation, standing
statistics, class policies."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import ganforge
from ganforge.errors import GanforgeError
from ganforge.losses import add_ortho_grad
from ganforge.nn.conditional_bn import CCBN
from ganforge.recipes.biggan import BigGANConfig, BigGANRecipe, compute_standing_stats
from ganforge.recipes.context import StepContext
from ganforge.registry import create_model

TINY = ["model.ch=4", "model.shared_dim=8", "train.batch_size=8", "train.progress=false", "train.sample_every=1000",
        "recipe.standing_stats=2"]


class _Train:
    batch_size = 4
    steps = 10


def recipe(**cfg) -> BigGANRecipe:
    torch.manual_seed(0)
    m = create_model("biggan", image_size=32, channels=1, num_classes=3, ch=4, shared_dim=8)
    r = BigGANRecipe(m, BigGANConfig(**cfg), torch.device("cpu"))
    r.attach(_Train)
    return r


def batches(k: int, n: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.rand(n, 1, 32, 32, generator=g) * 2 - 1, "label": torch.randint(0, 3, (n,), generator=g)}
            for _ in range(k)]


def test_ortho_gradient_is_the_references_and_skips_vectors():
    w = torch.randn(5, 3, 2, 2, requires_grad=True)
    b = torch.randn(5, requires_grad=True)
    m = w.view(5, -1)
    off = (m @ m.t()) * (1 - torch.eye(5))
    (0.5 * 1e-2 * off.pow(2).sum()).backward()  # the reference adds the gradient of beta/2 ||.||^2
    want = w.grad.clone()
    w.grad = torch.zeros_like(w)
    b.grad = torch.zeros_like(b)
    add_ortho_grad([w, b], 1e-2)
    assert torch.allclose(w.grad, want, rtol=1e-5, atol=1e-7)
    assert torch.equal(b.grad, torch.zeros_like(b))
    q = torch.linalg.qr(torch.randn(6, 6))[0][:4]  # orthonormal rows: no off-diagonal mass, no gradient
    q.grad = torch.zeros_like(q)
    add_ortho_grad([q], 1.0)
    assert q.grad.abs().max() < 1e-5


def test_a_step_does_d_steps_hinge_updates_then_one_g_update():
    r = recipe(d_steps=3)
    assert r.batch_plan(StepContext()) == (4, 3)
    counts = {"G": 0, "D": 0}
    step = r.step_optimizer

    def counting(name, ctx=None):
        counts[name] += 1
        return step(name, ctx)

    r.step_optimizer = counting
    out = r.step(batches(3), StepContext(step=0, batch_size=4))
    assert counts == {"D": 3, "G": 1}
    assert out["loss_D"] >= 0 and {"loss_G", "D_real", "D_fake"} <= set(out)
    opt = r.optimizers["G"].param_groups[0]
    assert opt["lr"] == 5e-5 and opt["betas"] == (0.0, 0.999) and opt["eps"] == 1e-6
    assert r.optimizers["D"].param_groups[0]["lr"] == 2e-4


class _LabelFakes(nn.Module):
    """A stand-in G whose fakes depend on the labels alone (no batch statistics)."""

    def __init__(self):
        super().__init__()
        self.table = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(5)).tanh()

    def forward(self, z, y):
        return self.table[y]


def _d_grads(r: BigGANRecipe, bs: list, ctx: StepContext) -> dict[str, torch.Tensor]:
    grads = {}

    def capture(name, ctx=None):
        grads.update({k: p.grad.clone() for k, p in r.D.named_parameters() if p.grad is not None})

    r.step_optimizer = capture
    r.d_update(bs, ctx)
    return grads


def test_two_micro_batches_give_the_gradient_of_their_union():
    whole = batches(1, n=8)[0]
    halves = [{k: v[:4] for k, v in whole.items()}, {k: v[4:] for k, v in whole.items()}]
    grads = []
    for acc, bs in ((1, [whole]), (2, halves)):
        r = recipe(accumulate=acc)
        r.G = _LabelFakes()
        r.D.eval()  # spectral norm's power iteration frozen: the same weights for every forward
        grads.append(_d_grads(r, bs, StepContext(batch_size=len(bs[0]["image"]))))
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for k in grads[0]:
        assert torch.allclose(grads[0][k], grads[1][k], rtol=1e-4, atol=1e-6), k


def test_accumulation_consumes_micro_batches_per_update():
    r = recipe(d_steps=2, accumulate=3)
    assert r.batch_plan(StepContext()) == (4, 6)
    seen = []
    d_update = r.d_update
    r.d_update = lambda bs, ctx: seen.append(len(bs)) or d_update(bs, ctx)
    r.step(batches(6), StepContext(batch_size=4))
    assert seen == [3, 3]


def test_ortho_reaches_every_g_weight_but_the_shared_embedding():
    grads = []
    for ortho in (0.0, 1e-2):
        r = recipe(ortho=ortho)
        with torch.no_grad():  # not orthogonal (as after training), so the regulariser would move it
            r.G.shared.weight.copy_(torch.randn(3, 8, generator=torch.Generator().manual_seed(1)))
        r.step_optimizer = lambda name, ctx=None: grads.append(
            {k: p.grad.clone() for k, p in r.G.named_parameters() if p.grad is not None})
        r.g_update(4, StepContext(batch_size=4))
    plain, reg = grads
    assert torch.equal(plain["shared.weight"], reg["shared.weight"])
    changed = [k for k in plain if not torch.equal(plain[k], reg[k])]
    assert "linear.weight" in changed and "blocks.0.0.conv1.weight" in changed
    assert all(reg[k].dim() >= 2 for k in changed)


def test_standing_statistics_are_the_mean_of_the_batch_statistics():
    m = create_model("biggan", image_size=32, channels=1, num_classes=3, ch=4, shared_dim=8)
    G = m["G"]
    bn = G.blocks[0][0].bn1
    seen = []
    bn.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()) if mod.training else None)
    compute_standing_stats(G, batches=3, batch_size=5)
    assert not G.training and len(seen) == 3
    means = torch.stack([x.mean((0, 2, 3)) for x in seen])
    vars_ = torch.stack([x.var((0, 2, 3), unbiased=True) for x in seen])
    assert torch.allclose(bn.stored_mean, means.mean(0), atol=1e-6)
    assert torch.allclose(bn.stored_var, vars_.mean(0), atol=1e-5)
    assert all(m.momentum == 0.1 for m in G.modules() if isinstance(m, CCBN))
    state = torch.random.get_rng_state()
    compute_standing_stats(G, batches=3, batch_size=5)
    assert torch.equal(state, torch.random.get_rng_state())  # the training RNG streams are untouched


def test_uniform_and_data_labels_for_g():
    r = recipe(labels="data")
    r.class_probs = torch.tensor([0.0, 0.2, 0.8])
    y = r._g_labels(4000, StepContext())
    share = torch.bincount(y, minlength=3).float() / len(y)
    assert share[0] == 0 and abs(share[2] - 0.8) < 0.03
    r = recipe(labels="uniform")
    share = torch.bincount(r._g_labels(3000, StepContext()), minlength=3).float() / 3000
    assert share.min() > 0.29


@pytest.mark.parametrize("cfg,msg", [
    (dict(d_steps=0), "d_steps"), (dict(accumulate=1.5), "accumulate"), (dict(ortho=-1), "ortho"),
    (dict(labels="even"), "labels"), (dict(beta1=1.0), "beta1"), (dict(g_lr=0), "g_lr"),
    (dict(standing_stats=-1), "standing_stats"), (dict(diffaug="zoom"), "zoom"),
])
def test_bad_recipe_values_are_refused(cfg, msg):
    with pytest.raises(GanforgeError, match=msg):
        BigGANConfig(**cfg)


def _class_folder(root, counts: dict[str, int]):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            px = (torch.rand(12, 12, generator=g) * 255).byte().numpy()
            Image.fromarray(px, "L").save(root / name / f"{i}.png")
    return root


def test_one_class_and_a_wrong_class_count_are_refused_before_training(tmp_path):
    one = _class_folder(tmp_path / "one", {"cat": 4})
    with pytest.raises(GanforgeError, match="no class labels.*at least two"):
        ganforge.train("biggan", data=str(one), overrides=TINY + ["train.steps=1", "model.num_classes=1"],
                       runs_dir=str(tmp_path / "runs"))
    three = _class_folder(tmp_path / "three", {"a": 4, "b": 4, "c": 4})
    with pytest.raises(GanforgeError, match="3 classes but the model was built for 10"):
        ganforge.train("biggan", data=str(three), overrides=TINY + ["train.steps=1"], runs_dir=str(tmp_path / "runs"))


def test_unequal_classes_are_warned_about_and_fakes_follow_the_data(tmp_path, capsys):
    root = _class_folder(tmp_path / "d", {"a": 2, "b": 2, "c": 12})
    run = ganforge.train("biggan", data=str(root), overrides=TINY + ["train.steps=2", "model.num_classes=3",
                                                                      "model.channels=1"],
                         runs_dir=str(tmp_path / "runs"), name="imb")
    err = capsys.readouterr().err
    assert "class sizes differ from 2 to 12 images" in err and "recipe.labels=uniform" in err
    assert ganforge.load(run).sample(3, labels=torch.tensor([0, 1, 2])).shape == (3, 1, 32, 32)


def test_a_run_resumes_bit_identically_and_saves_standing_statistics(tmp_path):
    over = TINY + ["train.ckpt_every=2", "train.ema=0.9", "recipe.d_steps=2", "recipe.accumulate=2"]
    full = ganforge.train("biggan", overrides=over + ["train.steps=4"], runs_dir=str(tmp_path), name="full")
    ganforge.train("biggan", overrides=over + ["train.steps=2"], runs_dir=str(tmp_path), name="part")
    part = ganforge.train("biggan", overrides=over + ["train.steps=4"], runs_dir=str(tmp_path), name="part",
                          resume=str(tmp_path / "part"))
    from ganforge.training.checkpoint import load_weights, resolve_checkpoint

    a, b = resolve_checkpoint(full), resolve_checkpoint(part)
    for net in ("G", "D", "G_ema"):
        wa, wb = load_weights(a, net), load_weights(b, net)
        for k in wa:
            assert torch.equal(wa[k], wb[k]), (net, k)
    # every saved EMA G carries standing statistics (not only the last, written after the final samples):
    # recomputing them changes nothing
    g = ganforge.load(full / "checkpoints" / "step-000002")
    before = {k: v.clone() for k, v in g.net.state_dict().items() if "stored_" in k}
    compute_standing_stats(g.net, 2, 8)
    after = {k: v for k, v in g.net.state_dict().items() if "stored_" in k}
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)


def test_biggan_deep_trains_and_keeps_standing_statistics():
    torch.manual_seed(0)
    m = create_model("biggan", image_size=32, channels=1, num_classes=3, ch=4, shared_dim=8, deep=True)
    r = BigGANRecipe(m, BigGANConfig(d_steps=1), torch.device("cpu"))
    r.attach(_Train)
    before = {k: v.clone() for k, v in m["G"].state_dict().items()}
    out = r.step(batches(1), StepContext(batch_size=4))
    assert all(torch.isfinite(torch.tensor(v)) for v in out.values())
    assert not torch.equal(before["shared.weight"], m["G"].shared.weight)
    compute_standing_stats(m["G"], 2, 4)
    assert not m["G"].training
