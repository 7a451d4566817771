"""`get_model(name, pretrained=True)` end to end against a local model-store server:
download -> sha1 -> convert -> safetensors cache -> strict load; then offline from cache;
plus the maintainer export (converters/export_zoo.py) and hubconf."""
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ssd_zoo
from ssd_zoo.formats.mxnet_params import write_params
from ssd_zoo.zoo import CATALOG, gluon_source
from tests.test_convert_gluon import fake_gluon_params
from tests.test_hub_server import hub_env, server, serve_gluon  # noqa: F401  (fixtures)

NAME = "ssd_300_vgg16_atrous_voc"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def upstream(tmp_path, server, hub_env, monkeypatch):  # noqa: F811
    """Serve a genuine-format .params for NAME and point its catalog entry at its sha1."""
    torch.manual_seed(0)
    net = ssd_zoo.get_model(NAME)
    path = tmp_path / "up.params"
    write_params(str(path), fake_gluon_params(net, "prefixed"))
    data = path.read_bytes()
    sha1 = hashlib.sha1(data).hexdigest()
    serve_gluon(server, NAME, data)
    entry = dataclasses.replace(CATALOG[NAME], sources=(gluon_source(sha1),))
    monkeypatch.setitem(CATALOG, NAME, entry)
    return net, server


def test_pretrained_download_convert_cache_offline(upstream, hub_env, monkeypatch):  # noqa: F811
    net, srv = upstream
    a = ssd_zoo.get_model(NAME, pretrained=True)
    assert srv.count() == 1
    for k, v in net.state_dict().items():
        if k.endswith("bias"):
            assert torch.allclose(a.state_dict()[k], v + 0.01)
    converted = list((hub_env / "converted").glob(f"{NAME}-*.safetensors"))
    assert len(converted) == 1
    digest = hashlib.sha256(converted[0].read_bytes()).hexdigest()
    assert converted[0].name == f"{NAME}-{digest[:8]}.safetensors"
    monkeypatch.setenv("SSD_ZOO_OFFLINE", "1")
    b = ssd_zoo.get_model(NAME, pretrained=True)
    assert srv.count() == 1
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


def test_export_zoo_manifest(upstream, hub_env, tmp_path):  # noqa: F811
    out = tmp_path / "release"
    r = subprocess.run([sys.executable, str(ROOT / "converters" / "export_zoo.py"), "--output",
                        str(out), "--names", NAME], capture_output=True, text=True,
                       env={**__import__("os").environ})
    # the subprocess has the real catalog (no monkeypatch): it must fail cleanly, one line
    assert r.returncode != 0 and "Traceback" not in r.stderr
    from ssd_zoo.publish import export_converted
    rows = export_converted([NAME], out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == rows and rows[0]["name"] == NAME
    f = out / rows[0]["file"]
    assert hashlib.sha256(f.read_bytes()).hexdigest() == rows[0]["sha256"]
    loaded = ssd_zoo.get_model(NAME, weights=str(f), sha256=rows[0]["sha256"])
    assert loaded is not None


def test_user_weights_url_with_sha256(upstream, hub_env, tmp_path):  # noqa: F811
    net, srv = upstream
    from ssd_zoo.convert.cli import save_state_dict
    f = save_state_dict(net.state_dict(), tmp_path / "w.safetensors")
    data = f.read_bytes()
    url = srv.add("/w.safetensors", data)
    good = hashlib.sha256(data).hexdigest()
    m = ssd_zoo.get_model(NAME, weights=url, sha256=good)
    assert torch.equal(m.state_dict()["class_predictors.0.bias"], net.state_dict()["class_predictors.0.bias"])
    url2 = srv.add("/w2.safetensors", data)
    with pytest.raises(Exception, match=good[:16]) as e:
        ssd_zoo.get_model(NAME, weights=url2, sha256="0" * 64)
    assert "0" * 64 in str(e.value)
