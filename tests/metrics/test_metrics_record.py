"""Evaluation records and metric dispatch: protocol fields, strict JSON, table text, values by name."""
import json
from datetime import datetime, timezone

import numpy as np
import pytest

import ganforge
from ganforge.errors import GanforgeError
from ganforge.metrics import (FeatureStats, build_record, compute_metrics, fid_from_features, format_table,
                              inception_score, kid, prdc)

INFO = {"name": "inception", "dim": 2048, "weights_sha256": "6726825d" + "0" * 56,
        "resize_method": "bilinear-299 (pytorch-fid)", "logits_method": "fc without bias"}


def test_record_fields_and_strict_json():
    when = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    rec = build_record({"fid": np.float64(12.5), "psnr": float("inf"), "kid_mean": 0.001},
                       INFO, n_real=50000, n_generated=10000, seed=3, options={"kid_subsets": 100},
                       timestamp=when)
    text = json.dumps(rec, allow_nan=False)  # strict JSON: no NaN/Infinity tokens
    back = json.loads(text)
    assert back["metrics"] == {"fid": 12.5, "psnr": None, "kid_mean": 0.001}
    assert back["extractor"] == "inception" and back["weights_sha256"] == INFO["weights_sha256"]
    assert back["resize_method"] == "bilinear-299 (pytorch-fid)"
    assert (back["n_real"], back["n_generated"], back["seed"]) == (50000, 10000, 3)
    assert back["ganforge_version"] == ganforge.__version__
    assert back["timestamp"] == "2024-05-01T12:00:00Z"
    assert back["options"] == {"kid_subsets": 100}


def test_table_lists_values_and_protocol():
    rec = build_record({"fid": 12.3456789, "precision": 0.5}, INFO, 100, 200, 0)
    table = format_table(rec)
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "value"]
    assert any(l.split() == ["fid", "12.3457"] for l in lines)
    assert any(l.split() == ["precision", "0.5000"] for l in lines)
    assert "6726825d00000000" in table and "bilinear-299 (pytorch-fid)" in table
    assert "real 100, generated 200" in table


def test_compute_metrics_dispatches_to_each_metric():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 4)), rng.normal(size=(70, 4)) + 0.4
    logits = rng.normal(size=(70, 5))
    real, gen = FeatureStats(4, keep=1000), FeatureStats(4, keep=1000, keep_logits=True)
    real.update(x)
    gen.update(y, logits=logits)
    out = compute_metrics(["fid", "kid", "is", "pr", "dc"], real, gen, seed=1, kid_subsets=5,
                          kid_subset_size=30, is_splits=7)
    assert out["fid"] == pytest.approx(fid_from_features(x, y))
    want_kid = kid(real.features(), gen.features(), 5, 30, seed=1)
    assert out["kid_mean"] == pytest.approx(want_kid["kid_mean"])
    assert out["is_mean"] == pytest.approx(inception_score(logits, splits=7, seed=1)["is_mean"], rel=1e-6)
    want = prdc(x.astype(np.float32), y.astype(np.float32))
    for key in ("precision", "recall", "density", "coverage"):
        assert out[key] == pytest.approx(want[key])
    with pytest.raises(GanforgeError, match="unknown metric"):
        compute_metrics(["fjd"], real, gen)
    with pytest.raises(GanforgeError, match="need real"):
        compute_metrics(["fid"], None, gen)
