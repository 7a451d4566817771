"""download() and fetch_user_weights(): hashes, truncation, resets, locks, offline."""
from __future__ import annotations

import hashlib
import time

import pytest

from ssd_zoo.hub import (DownloadError, HashMismatchError, UnreachableError,
                         WeightsUnavailableError, download, fetch_user_weights)

from .test_hub_server import (free_port, hub_env, listing, run_workers, server,  # noqa: F401
                              sha256_of)

BODY = bytes(range(256)) * 4096  # 1 MiB


def test_good_download(hub_env, server):
    url = server.add("/w.bin", BODY)
    dest = download(url, hub_env / "d" / "w.bin", sha256=sha256_of(BODY), progress=False)
    assert dest.read_bytes() == BODY
    assert listing(hub_env / "d") == ["w.bin"]
    # cache hit: re-verified, no second GET
    download(url, dest, sha256=sha256_of(BODY))
    assert server.count("/w.bin") == 1


def test_progress_bar_path(hub_env, server, capsys):
    url = server.add("/w.bin", BODY)
    download(url, hub_env / "w.bin", progress=True)
    assert (hub_env / "w.bin").read_bytes() == BODY


@pytest.mark.parametrize("algo", ["sha1", "sha256"])
def test_wrong_hash_deletes_file(hub_env, server, algo):
    url = server.add("/w.bin", BODY)
    expected = "ab" * (20 if algo == "sha1" else 32)
    actual = hashlib.new(algo, BODY).hexdigest()
    with pytest.raises(HashMismatchError) as info:
        download(url, hub_env / "d" / "w.bin", **{algo: expected})
    msg = str(info.value)
    assert url in msg and expected in msg and actual in msg
    assert listing(hub_env) == []  # nothing (half-)written remains


def test_temp_files_of_killed_processes_are_swept(hub_env, server):
    url = server.add("/w.bin", BODY)
    dest = hub_env / "w.bin"
    dest.parent.mkdir(parents=True)
    (hub_env / ".w.bin.abc123.part").write_bytes(BODY[:100])  # a SIGKILLed download
    download(url, dest)
    assert listing(hub_env) == ["w.bin"]


def test_stale_cache_file_with_wrong_hash_is_replaced(hub_env, server):
    url = server.add("/w.bin", BODY)
    dest = hub_env / "w.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"corrupted")
    download(url, dest, sha256=sha256_of(BODY))
    assert dest.read_bytes() == BODY and server.count() == 1


def test_user_sha256_mismatch_from_url(hub_env, server):
    url = server.add("/user/model.pth", BODY)
    wrong = "0" * 64
    with pytest.raises(HashMismatchError) as info:
        fetch_user_weights(url, sha256=wrong)
    msg = str(info.value)
    assert url in msg and wrong in msg and sha256_of(BODY) in msg
    assert listing(hub_env) == []


def test_user_url_download_and_reuse(hub_env, server):
    url = server.add("/user/model.safetensors", BODY)
    path = fetch_user_weights(url, sha256=sha256_of(BODY))
    assert path.read_bytes() == BODY
    assert path.parent.parent == hub_env / "downloads" and path.name == "model.safetensors"
    assert fetch_user_weights(url, sha256=sha256_of(BODY)) == path
    assert server.count() == 1


def test_user_local_file(tmp_path):
    f = tmp_path / "mine.pth"
    f.write_bytes(BODY)
    assert fetch_user_weights(str(f)) == f
    assert fetch_user_weights(f.as_uri(), sha256=sha256_of(BODY)) == f
    with pytest.raises(HashMismatchError, match="expected 0{64}"):
        fetch_user_weights(str(f), sha256="0" * 64)
    assert f.read_bytes() == BODY  # a user's own file is never deleted
    with pytest.raises(FileNotFoundError):
        fetch_user_weights(str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("mode", ["truncate", "reset"])
def test_interrupted_transfer_leaves_nothing_then_recovers(hub_env, server, mode):
    url = server.add("/w.bin", BODY, mode=mode)
    dest = hub_env / "d" / "w.bin"
    with pytest.raises(DownloadError) as info:
        download(url, dest, retries=0)
    assert url in str(info.value)
    assert listing(hub_env) == []
    server.routes["/w.bin"].mode = "ok"
    assert download(url, dest, sha256=sha256_of(BODY)).read_bytes() == BODY
    assert listing(hub_env) == ["d/w.bin"]


@pytest.mark.parametrize("mode", ["truncate", "reset", "503"])
def test_clean_retry_after_transient_failure(hub_env, server, mode):
    url = server.add("/w.bin", BODY, mode=mode, fail_times=1)
    dest = download(url, hub_env / "w.bin", sha256=sha256_of(BODY), retries=2, backoff=0.01)
    assert dest.read_bytes() == BODY
    assert server.count("/w.bin") == 2
    assert listing(hub_env) == ["w.bin"]


def test_http_404_not_retried(hub_env, server):
    with pytest.raises(DownloadError, match="404"):
        download(server.url("/missing"), hub_env / "m", retries=3, backoff=5)
    assert server.count() == 1


def test_connection_refused_fails_fast(hub_env):
    url = f"http://127.0.0.1:{free_port()}/w.bin"
    t0 = time.monotonic()
    with pytest.raises(UnreachableError) as info:
        download(url, hub_env / "w.bin", retries=5, backoff=10)
    assert time.monotonic() - t0 < 5
    assert url in str(info.value)
    assert listing(hub_env) == []


def test_offline_never_touches_network(hub_env, server, monkeypatch):
    url = server.add("/w.bin", BODY)
    dest = hub_env / "w.bin"
    monkeypatch.setenv("SSD_ZOO_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as info:
        download(url, dest)
    assert url in str(info.value) and str(dest) in str(info.value)
    monkeypatch.delenv("SSD_ZOO_OFFLINE")
    download(url, dest)
    monkeypatch.setenv("SSD_ZOO_OFFLINE", "1")
    assert download(url, dest).read_bytes() == BODY
    assert server.count() == 1


# --------------------------------------------------------------- several processes

def _download_worker(url, dest, sha256, barrier, queue):
    try:
        barrier.wait(timeout=20)
        path = download(url, dest, sha256=sha256, progress=False)
        queue.put(("ok", str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
    except BaseException as exc:  # report everything to the parent
        queue.put(("error", repr(exc), ""))


def test_concurrent_processes_download_once(hub_env, server):
    url = server.add("/big.bin", BODY, delay=0.5)
    dest = hub_env / "shared" / "big.bin"
    results = run_workers(_download_worker, (url, dest, sha256_of(BODY)))
    assert [r[0] for r in results] == ["ok"] * 4, results
    assert {r[1] for r in results} == {str(dest)}
    assert {r[2] for r in results} == {sha256_of(BODY)}
    assert server.count("/big.bin") == 1
    assert listing(hub_env) == ["shared/big.bin"]
