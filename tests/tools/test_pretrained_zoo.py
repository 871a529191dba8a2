"""The pretrained-pickle table and fetch_pretrained: pinned SHA-256 or refusal, file:// mirrors, never the internet."""
from __future__ import annotations

import dataclasses
import hashlib
import re

import pytest

from ganforge.errors import GanforgeError
from ganforge.tools import pretrained_zoo as zoo


def test_table_is_well_formed():
    assert len(zoo.ZOO) == len({p.url for p in zoo.ZOO.values()})
    for name, p in zoo.ZOO.items():
        assert name == p.name and re.fullmatch(r"stylegan2-[a-z0-9]+-\d+", name)
        assert p.url.startswith(zoo.CDN) and p.url.endswith(".pkl") and str(p.resolution) in name
        if p.sha256 is not None:
            assert re.fullmatch(r"[0-9a-f]{64}", p.sha256) and p.sha256_source  # a pin always names its source
    pinned = [p.name for p in zoo.list_pretrained() if p.sha256]
    assert "stylegan2-ffhq-1024" in pinned and zoo.list_pretrained()[0].sha256 is not None


def test_unpinned_and_unknown_names_are_refused_without_downloading(tmp_path):
    with pytest.raises(GanforgeError, match="no SHA-256 is pinned for stylegan2-afhqcat-512"):
        zoo.fetch_pretrained("stylegan2-afhqcat-512", tmp_path, url=(tmp_path / "x").as_uri())
    with pytest.raises(GanforgeError, match="unknown pretrained network 'ffhq'.*stylegan2-ffhq-1024"):
        zoo.fetch_pretrained("ffhq", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_fetch_verifies_the_pinned_hash(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror.pkl"
    mirror.write_bytes(b"not the real ffhq.pkl")
    with pytest.raises(GanforgeError, match="has SHA-256 .* expected a205a346"):
        zoo.fetch_pretrained("stylegan2-ffhq-1024", tmp_path / "w", url=mirror.as_uri())
    assert not list((tmp_path / "w").iterdir())  # nothing kept
    digest = hashlib.sha256(mirror.read_bytes()).hexdigest()
    entry = dataclasses.replace(zoo.ZOO["stylegan2-ffhq-1024"], sha256=digest)
    monkeypatch.setitem(zoo.ZOO, "stylegan2-ffhq-1024", entry)
    got = zoo.fetch_pretrained("stylegan2-ffhq-1024", tmp_path / "w", url=mirror.as_uri())
    assert got == tmp_path / "w" / "stylegan2-ffhq-1024.pkl" and got.read_bytes() == mirror.read_bytes()
