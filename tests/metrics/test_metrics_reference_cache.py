"""Reference-statistics cache: content-hash keys, atomic writes, reuse, recovery from bad files."""
import os

import numpy as np
import pytest

from ganforge.errors import GanforgeError
from ganforge.metrics import FeatureStats, cache_key, cached_reference_stats
from ganforge.metrics import cache as cache_module

KEY = {"dataset": {"name": "mnist", "split": "train"}, "extractor": "inception",
       "weights_sha256": "ab" * 32, "resize_method": "bilinear-299 (pytorch-fid)", "n": 100}


def make_stats(seed=0):
    s = FeatureStats(4, keep=10)
    s.update(np.random.default_rng(seed).normal(size=(30, 4)))
    return s


class Counter:
    def __init__(self, seed=0):
        self.calls, self.seed = 0, seed

    def __call__(self):
        self.calls += 1
        return make_stats(self.seed)


def test_written_once_then_reused(tmp_path):
    fn = Counter()
    first = cached_reference_stats(KEY, fn, tmp_path)
    path = tmp_path / f"{cache_key(KEY)}.npz"
    assert path.is_file() and fn.calls == 1
    with np.load(path, allow_pickle=False) as data:  # plain arrays only: loads without pickle
        _ = {k: data[k] for k in data.files}
    second = cached_reference_stats(dict(reversed(list(KEY.items()))), fn, tmp_path)  # key order irrelevant
    assert fn.calls == 1
    assert np.array_equal(second.mean(), first.mean()) and np.array_equal(second.cov(), first.cov())
    assert np.array_equal(second.features(), first.features())
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp files left


@pytest.mark.parametrize("field,value", [("n", 101), ("weights_sha256", "cd" * 32),
                                          ("resize_method", "bicubic"), ("extractor", "mnist-judge"),
                                          ("dataset", {"name": "mnist", "split": "test"})])
def test_key_changes_with_every_part(tmp_path, field, value):
    changed = {**KEY, field: value}
    assert cache_key(changed) != cache_key(KEY)
    fn = Counter()
    cached_reference_stats(KEY, fn, tmp_path)
    cached_reference_stats(changed, fn, tmp_path)
    assert fn.calls == 2
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_atomic_write_fsyncs_a_temp_file_then_renames(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])

    def spy_replace(src, dst):
        events.append(("replace", os.path.dirname(src), os.path.basename(src), os.path.exists(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy_replace)
    cached_reference_stats(KEY, Counter(), tmp_path)
    replaces = [e for e in events if isinstance(e, tuple)]
    assert len(replaces) == 1
    _, folder, name, existed = replaces[0]
    assert folder == str(tmp_path) and name != f"{cache_key(KEY)}.npz" and not existed
    assert events.index("fsync") < events.index(replaces[0])


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        cached_reference_stats(KEY, Counter(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_or_foreign_file_is_recomputed_with_a_warning(tmp_path):
    path = tmp_path / f"{cache_key(KEY)}.npz"
    path.write_bytes(b"not an npz")
    fn = Counter(seed=1)
    with pytest.warns(UserWarning, match="unreadable"):
        stats = cached_reference_stats(KEY, fn, tmp_path)
    assert fn.calls == 1 and np.array_equal(stats.mean(), make_stats(1).mean())
    assert cached_reference_stats(KEY, fn, tmp_path) is not None and fn.calls == 1  # now valid

    # A file under this key's name but written for another key is not trusted.
    other = {**KEY, "n": 5}
    cache_module._write_atomic(path, {**make_stats(2).to_arrays(),
                                      "cache_key_json": np.array(cache_module.canonical_json(other))})
    with pytest.warns(UserWarning, match="another key"):
        cached_reference_stats(KEY, fn, tmp_path)
    assert fn.calls == 2


def test_key_parts_must_be_json(tmp_path):
    with pytest.raises(GanforgeError, match="JSON"):
        cached_reference_stats({"dataset": object()}, Counter(), tmp_path)
