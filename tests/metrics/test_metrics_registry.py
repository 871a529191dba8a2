"""Extractor registry: lookup, duplicates, argument checks and lazy registration by a provider module."""
import pytest

from ganforge.errors import GanforgeError
from ganforge.metrics import FeatureExtractor, extractor_names, get_extractor, register_extractor
from ganforge.metrics import extractor as extractor_module


@pytest.fixture
def isolated(monkeypatch):
    monkeypatch.setattr(extractor_module, "_EXTRACTORS", dict(extractor_module._EXTRACTORS))
    monkeypatch.setattr(extractor_module, "_LAZY_PROVIDERS", dict(extractor_module._LAZY_PROVIDERS))


def test_builtin_names():
    assert {"inception", "mnist-judge"} <= set(extractor_names())


def test_unknown_name_and_arguments(isolated):
    with pytest.raises(GanforgeError, match="unknown feature extractor 'nope'.*inception"):
        get_extractor("nope")
    with pytest.raises(GanforgeError, match="unknown argument.*bogus"):
        get_extractor("inception", bogus=1)


def test_duplicate_registration_is_an_error(isolated):
    register_extractor("dup")(lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        register_extractor("dup")(lambda: None)


def test_lazy_provider_registers_on_first_use(isolated, tmp_path, monkeypatch):
    (tmp_path / "fake_judge_provider.py").write_text(
        "from ganforge.metrics import FeatureExtractor, register_extractor\n"
        "@register_extractor('fake-judge')\n"
        "class FakeJudge(FeatureExtractor):\n"
        "    name = 'fake-judge'\n"
        "    dim = 7\n"
        "    def __init__(self, width: int = 1):\n"
        "        super().__init__()\n"
        "        self.width = width\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    extractor_module._LAZY_PROVIDERS["fake-judge"] = "fake_judge_provider"
    assert "fake-judge" in extractor_names()
    ext = get_extractor("fake-judge", width=3)
    assert isinstance(ext, FeatureExtractor) and ext.dim == 7 and ext.width == 3


def test_missing_provider_module_is_a_user_error(isolated):
    extractor_module._LAZY_PROVIDERS["ghost"] = "ganforge.models.ghost_judge_that_does_not_exist"
    with pytest.raises(GanforgeError, match="ghost_judge_that_does_not_exist"):
        get_extractor("ghost")


def test_extractor_without_logits(isolated):
    class NoLogits(FeatureExtractor):
        name = "plain"

    with pytest.raises(GanforgeError, match="no class logits"):
        NoLogits().logits(None)
