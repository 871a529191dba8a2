"""The MNIST judge's scoring temperature: pinned to what the fit finds, fitted on the calibration half only,
applied when scoring (with the ceiling at the same temperature), and never applied to the extractor."""
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics import get_extractor
from ganforge.metrics import judge_score as js
from ganforge.models import judge as judge_module
from ganforge.models.judge import (JUDGE_TEMPERATURE, WEIGHTS_SHA256, MNISTJudge, judge_temperature, load_judge,
                                   weights_path)


@pytest.fixture(scope="module")
def cal():
    return js.calibrate()


@pytest.fixture(scope="module")
def halves():
    return js.heldout_halves()


def test_halves_are_disjoint_stratified_and_fixed(halves):
    xc, yc, xr, yr = halves
    assert torch.bincount(yc, minlength=10).tolist() == [25] * 10 == torch.bincount(yr, minlength=10).tolist()
    # no report digit is also a calibration digit, and together they are the whole held-out split
    from ganforge.data import build_dataset

    x, _ = build_dataset("mnist", split="test").as_tensor()
    flat = {tuple(v.tolist()) for v in x.flatten(1)}
    cal_set, rep_set = {tuple(v.tolist()) for v in xc.flatten(1)}, {tuple(v.tolist()) for v in xr.flatten(1)}
    assert not cal_set & rep_set and cal_set | rep_set == flat
    again = js.heldout_halves()
    assert all(torch.equal(a, b) for a, b in zip(halves, again))


def test_calibration_set_has_digits_and_non_digits(halves):
    x, y = js.calibration_set()
    n_neg = int((y == MNISTJudge.reject_class).sum())
    assert n_neg == int(len(halves[0]) * js.NON_DIGITS_PER_DIGIT) > 0
    assert torch.equal(x[:len(halves[0])], halves[0])  # the digits are the calibration half, not the report half


def test_shipped_temperature_is_what_the_fit_finds(cal):
    # (a) the constant cannot drift from the weights and the calibration recipe
    assert judge_module.JUDGE_TEMPERATURE_WEIGHTS_SHA256 == WEIGHTS_SHA256
    assert judge_temperature() == JUDGE_TEMPERATURE
    assert cal.temperature == pytest.approx(JUDGE_TEMPERATURE, abs=1e-3), (
        f"shipped JUDGE_TEMPERATURE {JUDGE_TEMPERATURE} but the calibration half gives {cal.temperature:.6f}: "
        "rerun python scripts/calibrate_judge.py")


def test_fit_finds_a_known_temperature():
    # labels drawn from softmax(z / 2) are best explained by T = 2
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 11, generator=g, dtype=torch.float64) * 4
    y = torch.multinomial((z / 2).softmax(1), 1, generator=g)[:, 0]
    assert js.fit_temperature(z, y) == pytest.approx(2.0, rel=0.03)


def test_calibration_improves_held_out_fit(cal):
    # (b) on the report half, never fitted on. The NLL is what the temperature optimises and what a few hundred
    # digits measure well; a 15-bin ECE over 250 digits with ~6 errors moves by ~0.005 between resamples of the
    # same digits, so it is only required not to get worse beyond that noise (a badly wrong T, 0.5 or 2.5, does).
    msg = (f"T {cal.temperature:.4f}: NLL {cal.nll_before:.4f} -> {cal.nll_after:.4f}, "
           f"ECE {cal.ece_before:.5f} -> {cal.ece_after:.5f}")
    assert cal.nll_after < 0.9 * cal.nll_before, msg
    assert cal.ece_after <= cal.ece_before + 0.005, msg
    assert cal.accuracy >= 0.97, msg
    # the temperature does not make non-digits look like digits
    assert cal.non_digits_rejected >= 0.95 and cal.non_digits_confident <= 0.02, msg


def test_ece_matches_a_hand_computed_case():
    # confidence 0.92 (right) falls in the 15-bin (0.867, 0.933], 0.95 (wrong) in (0.933, 1]: gaps 0.08 and 0.95.
    # With 10 bins both would share (0.9, 1] and their gaps of opposite sign would partly cancel (0.435).
    logits = torch.tensor([[0.0, 2.4423], [0.0, 2.9444]], dtype=torch.float64)
    p = logits.softmax(1)[:, 1]
    assert 0.87 < p[0] < 0.933 < p[1]
    expected = (abs(float(p[0]) - 1.0) + abs(float(p[1]) - 0.0)) / 2
    assert js.expected_calibration_error(logits, torch.tensor([1, 0])) == pytest.approx(expected, abs=1e-12)


def test_judge_images_applies_the_temperature(halves):
    # (c) real report-half digits score exactly the ceiling, at the shipped temperature and at T = 1
    _, _, xr, yr = halves
    s = js.judge_images(xr, requested=yr)
    assert s.temperature == JUDGE_TEMPERATURE and s.confident == s.ceiling == js.ceiling()
    assert s.of_ceiling == 1.0 and s.class_accuracy >= 0.97
    raw = js.judge_images(xr, temperature=1.0)
    assert raw.confident == raw.ceiling
    assert raw.confident != s.confident and raw.mean_confidence > s.mean_confidence
    # by hand: tempered probabilities, digit confidence out of all eleven classes
    with torch.no_grad():
        logits = load_judge()(xr)
    conf = (logits / JUDGE_TEMPERATURE).softmax(1)[:, :10].max(1).values
    assert s.confident == pytest.approx(float((conf >= 0.9).float().mean()))
    assert s.mean_confidence == pytest.approx(float(conf.mean()), abs=1e-6)


def test_every_score_reports_the_ceiling():
    noise = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    s = js.judge_images(noise, threshold=0.8)
    assert s.ceiling == js.ceiling(0.8) and s.ceiling > 0.9
    text = s.format()
    assert f"real held-out digits: {s.ceiling:.1%}, i.e. {s.of_ceiling:.1%} of the ceiling" in text
    d = s.as_dict()
    assert d["ceiling"] == s.ceiling and d["temperature"] == JUDGE_TEMPERATURE and d["of_ceiling"] == s.of_ceiling
    with pytest.raises(GanforgeError, match="positive"):
        js.judge_images(noise, temperature=0.0)


def test_temperature_for_other_weights_is_refused(monkeypatch):
    monkeypatch.setattr(judge_module, "JUDGE_TEMPERATURE_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(GanforgeError, match="calibrate_judge.py"):
        js.judge_images(torch.zeros(2, 1, 28, 28))


def test_extractor_is_untempered(halves):
    # (d) FID/KID/IS see the raw network: 128-d features and the first ten logits, no temperature
    from safetensors.torch import load_file

    x = halves[2][:64]
    net = MNISTJudge().eval()  # straight from the shipped file, not through load_judge
    net.load_state_dict(load_file(str(weights_path())))
    with torch.no_grad():
        f_raw = net.features(x)
        lg_raw = net.head(f_raw)[:, :10]
    f, lg = get_extractor("mnist-judge").features_and_logits(x)
    assert torch.equal(f, f_raw) and torch.equal(lg, lg_raw)
