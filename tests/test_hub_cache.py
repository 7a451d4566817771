"""cached_conversion() and resolve(): convert once, re-verify, source order, errors."""
from __future__ import annotations

import hashlib
import os

import pytest
import torch

from ssd_zoo.formats.mxnet_params import read_params
from ssd_zoo.hub import (WeightSource, WeightsUnavailableError, cached_conversion,
                         gluon_zip_source, load_state_dict_file, resolve)

from .test_hub_server import (hub_env, listing, params_bytes, run_workers,  # noqa: F401
                              serve_gluon, server, sha1_of)

NAME = "ssd_test_tiny_coco"


class Converter:
    """A stand-in for the Gluon converter that counts its calls (in a file, so calls
    made by other processes count too)."""

    def __init__(self, log_file):
        self.log_file = log_file

    def __call__(self, params_path):
        with open(self.log_file, "a") as f:
            f.write(f"{os.getpid()}\n")
        return {k.replace("features.0", "backbone.conv1"): torch.from_numpy(v.copy())
                for k, v in read_params(params_path).items()}

    @property
    def calls(self) -> int:
        return len(self.log_file.read_text().split()) if self.log_file.exists() else 0


@pytest.fixture
def params(tmp_path):
    return params_bytes(tmp_path)


@pytest.fixture
def convert(tmp_path):
    return Converter(tmp_path / "convert_calls.txt")


def expected_tensors(params_path):
    return {k.replace("features.0", "backbone.conv1"): torch.from_numpy(v.copy())
            for k, v in read_params(params_path).items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_convert_once_then_cache_without_network(hub_env, server, params, convert, monkeypatch):
    sha1 = sha1_of(params)
    serve_gluon(server, NAME, params)
    src = gluon_zip_source(NAME, sha1)
    path = cached_conversion(NAME, src, convert)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.name == f"{NAME}-{digest[:8]}.safetensors"
    assert path.parent == hub_env / "converted"
    assert _same(load_state_dict_file(path, sha256=digest),
                 expected_tensors(hub_env / "gluon" / f"{NAME}-{sha1[:8]}.params"))
    assert convert.calls == 1 and server.count() == 1
    assert sorted(listing(hub_env)) == sorted([
        f"converted/{path.name}", "converted/index.json", f"gluon/{NAME}-{sha1[:8]}.params"])
    # second call: no convert, no network (offline even)
    assert cached_conversion(NAME, src, convert) == path
    monkeypatch.setenv("SSD_ZOO_OFFLINE", "1")
    assert cached_conversion(NAME, src, convert) == path
    assert convert.calls == 1 and server.count() == 1


def test_tampered_conversion_is_rebuilt(hub_env, server, params, convert):
    src = gluon_zip_source(NAME, sha1_of(params))
    serve_gluon(server, NAME, params)
    path = cached_conversion(NAME, src, convert)
    good = path.read_bytes()
    path.write_bytes(good[:-4] + b"EVIL")
    rebuilt = cached_conversion(NAME, src, convert)
    assert rebuilt.read_bytes() == good and convert.calls == 2
    assert server.count() == 1  # rebuilt from the kept, sha1-verified .params


def test_tampered_conversion_refused_clearly_when_it_cannot_be_rebuilt(
        hub_env, server, params, convert, monkeypatch):
    src = gluon_zip_source(NAME, sha1_of(params))
    serve_gluon(server, NAME, params)
    path = cached_conversion(NAME, src, convert, keep_source=False)
    assert not (hub_env / "gluon" / f"{NAME}-{src.sha1[:8]}.params").exists()
    path.write_bytes(b"garbage")
    monkeypatch.setenv("SSD_ZOO_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as info:
        cached_conversion(NAME, src, convert)
    msg = str(info.value)
    assert "failed its sha256 check" in msg and str(path) in msg and "SSD_ZOO_OFFLINE" in msg
    assert not path.exists()


def test_converter_version_is_part_of_the_key(hub_env, server, params, convert):
    src = gluon_zip_source(NAME, sha1_of(params))
    serve_gluon(server, NAME, params)
    first = cached_conversion(NAME, src, convert)
    convert.version = "2"
    second = cached_conversion(NAME, src, convert)
    assert convert.calls == 2 and server.count() == 1
    assert second == first  # same tensors -> byte-identical file, same sha256 name


def test_corrupt_index_is_rebuilt(hub_env, server, params, convert):
    src = gluon_zip_source(NAME, sha1_of(params))
    serve_gluon(server, NAME, params)
    path = cached_conversion(NAME, src, convert)
    (hub_env / "converted" / "index.json").write_text("{not json")
    assert cached_conversion(NAME, src, convert) == path and convert.calls == 2


def _conversion_worker(name, src, convert, barrier, queue):
    try:
        barrier.wait(timeout=20)
        path = cached_conversion(name, src, convert)
        queue.put(("ok", str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
    except BaseException as exc:
        queue.put(("error", repr(exc), ""))


def test_concurrent_processes_convert_once(hub_env, server, params, convert):
    src = gluon_zip_source(NAME, sha1_of(params))
    serve_gluon(server, NAME, params, delay=0.5)
    results = run_workers(_conversion_worker, (NAME, src, convert))
    assert [r[0] for r in results] == ["ok"] * 4, results
    assert len({r[1] for r in results}) == 1 and len({r[2] for r in results}) == 1
    assert server.count() == 1 and convert.calls == 1


# ----------------------------------------------------------------------------- resolve

def test_resolve_first_source_404_second_succeeds(hub_env, server, params, convert):
    missing = WeightSource("file", server.url("/release/missing.safetensors"),
                           sha256="0" * 64, fmt="safetensors")
    serve_gluon(server, NAME, params)
    path = resolve(NAME, (missing, gluon_zip_source(NAME, sha1_of(params))), convert)
    assert path.suffix == ".safetensors" and path.parent == hub_env / "converted"
    assert server.count("/release/missing.safetensors") == 1
    assert convert.calls == 1


def test_resolve_prefers_converted_file_source(hub_env, server, params, convert, tmp_path):
    from safetensors.torch import save_file

    st = tmp_path / "rel.safetensors"
    save_file({"w": torch.ones(3)}, str(st))
    body = st.read_bytes()
    release = WeightSource("file", server.add("/release/rel.safetensors", body),
                           sha256=hashlib.sha256(body).hexdigest(), fmt="safetensors")
    upstream = gluon_zip_source(NAME, sha1_of(params))
    path = resolve(NAME, (release, upstream), convert)
    assert path == hub_env / "files" / "rel.safetensors" and convert.calls == 0
    assert torch.equal(load_state_dict_file(path)["w"], torch.ones(3))


def test_resolve_uses_cache_before_trying_new_sources(hub_env, server, params, convert):
    upstream = gluon_zip_source(NAME, sha1_of(params))
    serve_gluon(server, NAME, params)
    first = resolve(NAME, (upstream,), convert)
    n = server.count()
    newer = WeightSource("file", server.url("/release/new.safetensors"), sha256="1" * 64,
                         fmt="safetensors")
    assert resolve(NAME, (newer, upstream), convert) == first
    assert server.count() == n and convert.calls == 1


def test_resolve_all_fail_lists_every_source(hub_env, server, params, convert, monkeypatch):
    release = WeightSource("file", server.url("/release/a.safetensors"), sha256="0" * 64,
                           fmt="safetensors")
    upstream = gluon_zip_source(NAME, sha1_of(params))   # not served: 404
    with pytest.raises(WeightsUnavailableError) as info:
        resolve(NAME, (release, upstream), convert)
    msg = str(info.value)
    assert "tried 2 source(s)" in msg and "404" in msg
    assert release.url in msg and upstream.resolved_url(NAME) in msg
    monkeypatch.setenv("SSD_ZOO_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as info:
        resolve(NAME, (release, upstream), convert)
    msg = str(info.value)
    assert str(hub_env / "files" / "a.safetensors") in msg
    assert str(hub_env / "gluon" / f"{NAME}-{upstream.sha1[:8]}.params") in msg
    assert listing(hub_env) == []


def test_resolve_propagates_converter_bugs(hub_env, server, params):
    serve_gluon(server, NAME, params)

    def broken(_):
        raise KeyError("unmapped parameter")

    with pytest.raises(KeyError):
        resolve(NAME, (gluon_zip_source(NAME, sha1_of(params)),), broken)
    assert not list((hub_env / "converted").glob("*.safetensors"))
