"""hubconf.py: one torch.hub entry point per registry name, clear failure without it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import ssd_zoo

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["ssd_300_vgg16_atrous_voc", "ssd_512_mobilenet1.0_voc"]


def _import_hubconf():
    spec = importlib.util.spec_from_file_location("ssd_zoo_test_hubconf", ROOT / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_registry(monkeypatch):
    calls = []

    def get_model(name, pretrained=False, **kw):
        calls.append((name, pretrained, kw))
        return torch.nn.Identity()

    monkeypatch.setattr(ssd_zoo, "list_models", lambda: list(NAMES), raising=False)
    monkeypatch.setattr(ssd_zoo, "get_model", get_model, raising=False)
    return calls


def test_entry_points_forward_to_get_model(fake_registry):
    hub = _import_hubconf()
    model = getattr(hub, "ssd_512_mobilenet1.0_voc")(pretrained=True, num_classes=3)
    assert isinstance(model, torch.nn.Identity)
    assert fake_registry == [("ssd_512_mobilenet1.0_voc", True, {"num_classes": 3})]
    assert hub.ssd_300_vgg16_atrous_voc.__name__ == "ssd_300_vgg16_atrous_voc"


def test_torch_hub_local_load_and_list(fake_registry):
    hub = _import_hubconf()  # torch.hub.list's rule: public callables of hubconf
    public = [n for n in dir(hub) if callable(getattr(hub, n)) and not n.startswith("_")]
    assert sorted(public) == sorted(NAMES)
    torch.hub.load(str(ROOT), "ssd_300_vgg16_atrous_voc", source="local", pretrained=True)
    assert fake_registry[-1] == ("ssd_300_vgg16_atrous_voc", True, {})


def test_missing_registry_fails_clearly(monkeypatch):
    monkeypatch.delattr(ssd_zoo, "list_models", raising=False)
    with pytest.raises(ImportError, match="registry is unavailable"):
        _import_hubconf()
