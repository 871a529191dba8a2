"""train.cuda_graphs: whole steps replayed as CUDA graphs (training/graphs.py).

This machine has no GPU, so the three CUDA calls (side-stream warm-up, capture, replay) are replaced by a
test double that behaves like them on the CPU: a capture runs the step's Python (as a real capture does)
but leaves every tensor as it was (a capture records kernels without running them), and a replay runs the
recorded step's kernels without its host-side effects. What is tested here is everything around those
calls: the keys, the warm-up, the static inputs, the noise drawn into them, the outputs cloned out of the
graph, the host effects of a replay, the fallback after a failed capture and the reset after a rollback.
benchmarks/gpu_speed.py checks the real capture against eager steps on a GPU.
"""
import pytest
import torch

from ganforge.bench import make_trainer
from ganforge.errors import GanforgeError
from ganforge.training import graphs

PLAIN = ["model.ngf=8", "model.ndf=8", "model.clusters=0", "recipe.diffaug=", "train.ema=0", "train.amp=off",
         "train.cuda_graphs=off"]


def _host(recipe):
    return {k: v for k, v in vars(recipe).items() if isinstance(v, (bool, int, float))}


class CPUGraphs(graphs.GraphedSteps):
    """The CUDA calls of GraphedSteps, imitated on the CPU (see the module docstring)."""

    def __init__(self, recipe, device, note, fail=None):
        self.fail = fail
        super().__init__(recipe, device, note)

    def _make_capturable(self):  # CPU optimizers cannot be capturable
        pass

    def _tensors(self):
        r = self.recipe
        out = [t for net in r.nets.values() for t in list(net.parameters()) + list(net.buffers())]
        out += [v for o in r.optimizers.values() for st in o.state.values() for v in st.values()
                if isinstance(v, torch.Tensor)]
        out += [v for v in vars(r).values() if isinstance(v, torch.Tensor)]  # StyleGAN2's path-length mean
        return out

    def _eager(self, fn):
        return fn()

    def _reset_generator(self):
        self.generator_resets = getattr(self, "generator_resets", 0) + 1

    def _capture(self, fn):
        tensors = self._tensors()
        saved = [t.detach().clone() for t in tensors]
        rng = torch.get_rng_state()
        at_capture = _host(self.recipe)
        out = fn()  # the Python runs (and changes host state), and so would a capture that fails afterwards
        with torch.no_grad():
            for t, s in zip(tensors, saved):
                t.copy_(s)
        torch.set_rng_state(rng)
        if self.fail is not None:
            raise RuntimeError(self.fail)
        return {"fn": fn, "packed": out[2], "host": at_capture}, out

    def _replay(self, graph):
        host = _host(self.recipe)
        vars(self.recipe).update(graph["host"])  # the kernels recorded are those of the Python at capture
        _, _, packed = graph["fn"]()
        vars(self.recipe).update(host)  # a replay runs kernels, not Python
        if packed is not None:
            graph["packed"].copy_(packed)


CGAN = ["model.ngf=8", "model.ndf=8", "train.ema=0", "train.amp=off", "train.cuda_graphs=off"]


SG2 = ["model.config=cpu-tiny", "model.image_size=16", "model.clusters=0", "recipe.augment=none", "train.ema=0",
       "train.amp=off", "train.cuda_graphs=off", "recipe.r1_every=2", "recipe.pl_every=3", "recipe.pl_weight=2"]


def _trainer(extra=(), target="dcgan", batch=8):
    if extra == "cgan":
        return make_trainer(target, CGAN, batch_size=batch, device="cpu")
    if extra == "sg2":
        return make_trainer(target, SG2, batch_size=batch, device="cpu")
    return make_trainer(target, PLAIN + list(extra), batch_size=batch, device="cpu")


def _run(tr, steps, log_every=3):
    rows = []
    for i in range(steps):
        out = tr.train_step(logged=(i + 1) % log_every == 0)
        rows.append({k: float(v) for k, v in out.items()})
    weights = {n: {k: v.detach().clone() for k, v in net.state_dict().items()} for n, net in tr.models.nets.items()}
    return rows, weights


def _same(a, b):
    assert len(a[0]) == len(b[0])
    for x, y in zip(a[0], b[0]):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k] == pytest.approx(y[k], rel=1e-6, abs=1e-7), k
    for n in a[1]:
        for k in a[1][n]:
            assert torch.allclose(a[1][n][k].float(), b[1][n][k].float(), rtol=1e-5, atol=1e-6), f"{n}.{k}"


@pytest.mark.parametrize("extra,target", [
    ([], "dcgan"),  # two keys: logged and not
    (["recipe.r1_gamma=1", "recipe.r1_every=2"], "dcgan"),  # lazy R1: the key follows the D update count
    ([], "wgan-gp"),  # n_critic D updates, a gradient penalty
    ("cgan", "cgan"),  # labels drawn through ctx.randint, DiffAugment's draws from the global generator
    ("sg2", "stylegan2"),  # lazy R1 and path length on different intervals, style mixing, noise inputs
])
def test_replayed_steps_equal_eager_steps(extra, target):
    steps = 30 if extra == "sg2" else 14  # StyleGAN2 has up to 8 kinds of step (R1, path length, logged)
    eager = _run(_trainer(extra, target), steps)
    tr = _trainer(extra, target)
    tr.graphs = CPUGraphs(tr.recipe, tr.device, print)
    graphed = _run(tr, steps)
    assert tr.graphs.captures >= 2 and tr.graphs.replays > tr.graphs.captures, (tr.graphs.captures, tr.graphs.replays)
    _same(graphed, eager)
    if extra == "sg2":
        assert tr.recipe.d_steps == tr.recipe.g_steps == steps and len(tr.graphs.entries) >= 4
    if extra not in ("cgan", "sg2") and "recipe.r1_every=2" in extra:
        assert tr.recipe.d_updates == 14
        assert any(key[0][1] == (True,) for key in tr.graphs.entries) and any(
            key[0][1] == (False,) for key in tr.graphs.entries)


def test_replays_return_values_the_next_replay_does_not_overwrite():
    tr = _trainer()
    tr.graphs = CPUGraphs(tr.recipe, tr.device, print)
    outs = [tr.train_step(logged=False) for _ in range(6)]
    assert tr.graphs.replays >= 2
    first, last = outs[-2]["loss_D"], outs[-1]["loss_D"]
    assert float(first) != float(last)


def test_a_failed_capture_leaves_that_kind_of_step_eager_with_its_host_state(capsys):
    eager = _run(_trainer(["recipe.r1_gamma=1", "recipe.r1_every=3"]), 10)
    tr = _trainer(["recipe.r1_gamma=1", "recipe.r1_every=3"])
    notes = []
    tr.graphs = CPUGraphs(tr.recipe, tr.device, notes.append, fail="operation not permitted when stream is capturing")
    failed = _run(tr, 10)
    assert tr.graphs.captures == 0 and tr.graphs.replays == 0
    assert len(notes) >= 1 and all("could not be captured (operation not permitted" in n for n in notes)
    assert all(e.failed for e in tr.graphs.entries.values() if e.seen >= graphs.WARMUP)
    assert tr.graphs.generator_resets == len(notes)
    _same(failed, eager)  # d_updates was put back: lazy R1 fell on the same steps


def test_a_key_whose_noise_changes_is_not_captured():
    tr = _trainer()
    g = CPUGraphs(tr.recipe, tr.device, print)
    calls = iter([1, 2])
    real_step = tr.recipe.step

    def step(batches, ctx):  # draws a different amount of noise on every step
        ctx.randn(next(calls, 3), 4)
        return real_step(batches, ctx)

    tr.recipe.step = step
    tr.graphs = g
    for _ in range(5):
        tr.train_step(logged=False)
    assert g.captures == 0 and all(e.failed for e in g.entries.values())


def test_the_number_of_graphs_is_bounded(monkeypatch):
    tr = _trainer()
    notes = []
    tr.graphs = CPUGraphs(tr.recipe, tr.device, notes.append)
    monkeypatch.setattr(graphs, "MAX_GRAPHS", 2)
    for i in range(8):  # a learning rate that changes every step makes a new key every step
        for o in tr.recipe.optimizers.values():
            o.param_groups[0]["lr"] = 1e-4 * (1 + i)
        tr.train_step(logged=False)
    assert len(tr.graphs.entries) == 2 and len(notes) == 1 and "run eagerly" in notes[0]


def test_a_rollback_drops_the_graphs(tmp_path):
    tr = _trainer()
    tr.graphs = CPUGraphs(tr.recipe, tr.device, print)
    for _ in range(5):
        tr.train_step(logged=False)
    assert tr.graphs.entries
    tr._remember_good()
    tr.train_step(logged=False)
    tr._restore_good()
    assert not tr.graphs.entries


def test_optimizer_state_is_saved_as_an_eager_runs():
    tr = _trainer()
    tr.train_step()
    tr.recipe.capturable = True
    for o in tr.recipe.optimizers.values():
        for g in o.param_groups:
            g["capturable"] = True
    state = tr.recipe.training_state()
    assert all(g["capturable"] is False for sd in state["optimizers"].values() for g in sd["param_groups"])
    assert all(g["capturable"] is True for o in tr.recipe.optimizers.values() for g in o.param_groups)


def test_setup_on_this_machine(capsys):
    notes = []
    tr = _trainer(["train.cuda_graphs=on"])
    assert tr.graphs is None  # no CUDA here
    assert graphs.setup("on", tr.recipe, torch.device("cpu"), 1, False, notes.append) is None
    assert notes == ["train.cuda_graphs=on: CUDA graphs need a CUDA device, not cpu; steps run eagerly"]
    assert graphs.setup("auto", tr.recipe, torch.device("cpu"), 1, False, notes.append) is None and len(notes) == 1
    for target, extra in (("srresnet", []), ("stylegan", ["model.image_size=16"])):
        other = make_trainer(target, ["train.cuda_graphs=off"] + extra, batch_size=2, device="cpu")
        why = graphs.problem(torch.device("cuda"), other.recipe, 1, False)
        assert "does not declare" in why, target


def test_cuda_graphs_setting_is_validated():
    with pytest.raises(GanforgeError, match="train.cuda_graphs must be one of auto, on, off"):
        _trainer(["train.cuda_graphs=always"])
    with pytest.raises(GanforgeError, match="train.cuda_graphs=on, which replays whole steps"):
        _trainer(["train.compile=reduce-overhead"])


def test_training_asked_for_graphs_without_cuda_says_so_once_and_trains(tmp_path, capsys):
    import ganforge
    from ganforge.training.checkpoint import load_state, resolve_checkpoint

    ov = [o for o in PLAIN if not o.startswith("train.cuda_graphs")] + [
        "train.cuda_graphs=on", "train.batch_size=8", "train.steps=3", "train.progress=false", "train.log_every=1"]
    run = ganforge.train("dcgan", overrides=ov, name="g", runs_dir=str(tmp_path))
    err = capsys.readouterr().err
    assert err.count("train.cuda_graphs=on: CUDA graphs need a CUDA device, not cpu; steps run eagerly") == 1
    assert load_state(resolve_checkpoint(run))["step"] == 3
