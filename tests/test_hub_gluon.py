"""Gluon model-store sources: zip fetch, sha1, zip-slip, offline, MXNET_GLUON_REPO."""
from __future__ import annotations

import hashlib
import io
import time
import zipfile

import pytest

from ssd_zoo.hub import (APACHE_REPO_URL, HashMismatchError, UnsafeArchiveError, WeightSource,
                         WeightsUnavailableError, cache_root, fetch_source, gluon_repo_url,
                         gluon_zip_source)
from ssd_zoo.hub.archive import unsafe_member_reason

from .test_hub_server import (free_port, hub_env, listing, params_bytes, serve_gluon,  # noqa: F401
                              server, sha1_of, zip_bytes)

NAME = "ssd_test_tiny_voc"


@pytest.fixture
def params(tmp_path):
    return params_bytes(tmp_path)


def test_gluon_repo_url_like_gluoncv(monkeypatch):
    monkeypatch.delenv("MXNET_GLUON_REPO", raising=False)
    assert gluon_repo_url() == APACHE_REPO_URL
    monkeypatch.setenv("MXNET_GLUON_REPO", "https://mirror.example/x")
    assert gluon_repo_url() == "https://mirror.example/x/"
    monkeypatch.setenv("MXNET_GLUON_REPO", "https://mirror.example/x/")
    assert gluon_repo_url() == "https://mirror.example/x/"
    src = gluon_zip_source("ssd_512_resnet50_v1_coco", "c48351620d4f0cbc49e4f7a84c8e67ef8fdc6e09")
    assert (src.resolved_url("ssd_512_resnet50_v1_coco")
            == "https://mirror.example/x/gluon/models/ssd_512_resnet50_v1_coco-c4835162.zip")


def test_cache_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("SSD_ZOO_HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("SSD_ZOO_HOME")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert cache_root() == tmp_path / "th" / "hub" / "ssd_zoo"


@pytest.mark.parametrize("trailing_slash", [True, False])
def test_fetch_gluon_zip_via_repo_override(hub_env, server, params, monkeypatch,
                                           trailing_slash):
    repo = server.url("/") if trailing_slash else server.url("/").rstrip("/")
    monkeypatch.setenv("MXNET_GLUON_REPO", repo)
    sha1 = sha1_of(params)
    serve_gluon(server, NAME, params)
    path = fetch_source(gluon_zip_source(NAME, sha1), NAME)
    assert path == hub_env / "gluon" / f"{NAME}-{sha1[:8]}.params"
    assert path.read_bytes() == params
    assert listing(hub_env) == [f"gluon/{NAME}-{sha1[:8]}.params"]  # zip removed
    assert server.count() == 1
    # cache hit: sha1 re-checked, no network
    assert fetch_source(gluon_zip_source(NAME, sha1), NAME) == path
    assert server.count() == 1


def test_gluon_sha1_mismatch(hub_env, server, params, tmp_path):
    claimed = sha1_of(params_bytes(tmp_path, seed=1))  # the zoo expects other bytes
    serve_gluon(server, NAME, params, sha1=claimed)
    with pytest.raises(HashMismatchError) as info:
        fetch_source(gluon_zip_source(NAME, claimed), NAME)
    msg = str(info.value)
    assert claimed in msg and sha1_of(params) in msg and server.url("/gluon/models/") in msg
    assert listing(hub_env) == []


def test_cached_file_tampered_is_refetched(hub_env, server, params):
    sha1 = sha1_of(params)
    serve_gluon(server, NAME, params)
    path = fetch_source(gluon_zip_source(NAME, sha1), NAME)
    path.write_bytes(b"tampered")
    assert fetch_source(gluon_zip_source(NAME, sha1), NAME).read_bytes() == params
    assert server.count() == 2


@pytest.mark.parametrize("evil", ["../../escaped.params", "abs"])
def test_zip_slip_refused(hub_env, server, params, tmp_path, evil):
    sha1 = sha1_of(params)
    outside = tmp_path / "escaped.params"           # where '../../' from cache/gluon leads
    if evil == "abs":
        evil = str(tmp_path / "abs_escaped.params")
        outside = tmp_path / "abs_escaped.params"
    hub_env.mkdir(parents=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    body = zip_bytes({f"{NAME}-{sha1[:8]}.params": params, evil: b"pwned"})
    assert evil in zipfile.ZipFile(io.BytesIO(body)).namelist()  # the name survived as is
    server.add(f"/gluon/models/{NAME}-{sha1[:8]}.zip", body)
    with pytest.raises(UnsafeArchiveError, match="zip-slip"):
        fetch_source(gluon_zip_source(NAME, sha1), NAME)
    assert not outside.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert listing(hub_env) == []  # nothing extracted, zip removed


@pytest.mark.parametrize("name,bad", [
    ("a/b.params", False), ("/etc/passwd", True), ("..\\x", True), ("C:\\x", True),
    ("\\x", True), ("a/../../b", True), ("a/..", True), ("a..b.params", False)])
def test_unsafe_member_names(name, bad):
    assert (unsafe_member_reason(name) is not None) == bad


def test_missing_member_is_a_clear_error(hub_env, server, params):
    sha1 = sha1_of(params)
    server.add(f"/gluon/models/{NAME}-{sha1[:8]}.zip", zip_bytes({"other.params": params}))
    with pytest.raises(Exception, match="does not contain"):
        fetch_source(gluon_zip_source(NAME, sha1), NAME)
    assert listing(hub_env) == []


def test_offline_empty_cache_fails_fast_with_url_and_path(hub_env, server, params, monkeypatch):
    sha1 = sha1_of(params)
    url = serve_gluon(server, NAME, params)
    monkeypatch.setenv("SSD_ZOO_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        fetch_source(gluon_zip_source(NAME, sha1), NAME)
    assert time.monotonic() - t0 < 3
    msg = str(info.value)
    dest = hub_env / "gluon" / f"{NAME}-{sha1[:8]}.params"
    assert url in msg and str(dest) in msg and "SSD_ZOO_OFFLINE" in msg
    assert info.value.path == dest and info.value.url == url
    assert server.count() == 0


def test_offline_file_placed_by_hand_is_used(hub_env, server, params, monkeypatch):
    sha1 = sha1_of(params)
    monkeypatch.setenv("SSD_ZOO_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as info:
        fetch_source(gluon_zip_source(NAME, sha1), NAME)
    info.value.path.parent.mkdir(parents=True, exist_ok=True)
    info.value.path.write_bytes(params)                   # the user follows the message
    assert fetch_source(gluon_zip_source(NAME, sha1), NAME).read_bytes() == params
    # a hand-placed zip works too
    info.value.path.unlink()
    zip_path = info.value.path.with_suffix(".zip")
    zip_path.write_bytes(zip_bytes({info.value.path.name: params}))
    assert fetch_source(gluon_zip_source(NAME, sha1), NAME).read_bytes() == params
    assert not zip_path.exists() and server.count() == 0


def test_unreachable_repo_fails_fast(hub_env, params, monkeypatch):
    sha1 = sha1_of(params)
    monkeypatch.setenv("MXNET_GLUON_REPO", f"http://127.0.0.1:{free_port()}")
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        fetch_source(gluon_zip_source(NAME, sha1), NAME)
    assert time.monotonic() - t0 < 5
    msg = str(info.value)
    assert "cannot connect" in msg and f"{NAME}-{sha1[:8]}.zip" in msg
    assert str(hub_env / "gluon" / f"{NAME}-{sha1[:8]}.params") in msg
    assert listing(hub_env) == []


def test_file_source(hub_env, server):
    body = b"\x00" * 1000
    src = WeightSource("file", server.add("/rel/x.safetensors", body),
                       sha256=__import__("hashlib").sha256(body).hexdigest(), fmt="safetensors")
    path = fetch_source(src, NAME)
    assert path == hub_env / "files" / "x.safetensors" and path.read_bytes() == body


def test_weight_source_validation():
    with pytest.raises(ValueError):
        WeightSource("gluon_zip", "{repo}x")                  # no sha1
    with pytest.raises(ValueError):
        WeightSource("torrent", "x")
    with pytest.raises(ValueError):
        WeightSource("file", "http://x/y", sha256="abc")
    with pytest.raises(ValueError):
        WeightSource("file", "http://x/y", file_name="../evil")
    with pytest.raises(ValueError):
        gluon_zip_source("a", "0" * 40).local_path("../../etc")


def test_file_source_sha256_prefix(server, hub_env):  # noqa: F811
    """torchvision-style sources publish only a sha256 prefix: it is enforced."""
    from ssd_zoo.hub import WeightSource, fetch_source
    data = b"weights-bytes" * 100
    good = hashlib.sha256(data).hexdigest()
    url = server.add("/tv/model-x.pth", data)
    ok = WeightSource("file", url, fmt="pth", sha256_prefix=good[:8])
    assert fetch_source(ok, "tvmodel").read_bytes() == data
    url2 = server.add("/tv/model-y.pth", data)
    bad = WeightSource("file", url2, fmt="pth", sha256_prefix="00000000")
    with pytest.raises(ValueError, match="00000000"):
        fetch_source(bad, "tvmodel2")
    assert not bad.local_path("tvmodel2").exists()
