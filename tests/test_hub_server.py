"""Local HTTP server (127.0.0.1, ephemeral port) and fixtures for the hub tests.

The server runs in a daemon thread, counts GETs per path and can serve a body normally,
truncated (Content-Length larger than what is sent), with a connection reset, with an
HTTP error status, after a delay, or misbehave only for the first N requests.  A
watchdog shuts it down after ``MAX_LIFETIME`` seconds whatever happens.
"""
from __future__ import annotations

import hashlib
import io
import multiprocessing as mp
import socket
import struct
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests

from ssd_zoo.formats.mxnet_params import write_params

MAX_LIFETIME = 120.0


@dataclass
class Route:
    body: bytes
    mode: str = "ok"           # ok | truncate | reset | <HTTP status as str, e.g. "404">
    delay: float = 0.0         # seconds before answering
    fail_times: int | None = None  # misbehave only for the first N GETs, then "ok"


class LocalServer:
    """Tiny configurable HTTP server; ``url(path)`` gives a full URL."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.counts: Counter = Counter()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, address: None
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._watchdog = threading.Timer(MAX_LIFETIME, self.stop)
        self._watchdog.daemon = True
        self._stopped = False

    def start(self) -> "LocalServer":
        self._thread.start()
        self._watchdog.start()
        return self

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._watchdog.cancel()
            self._httpd.shutdown()
            self._httpd.server_close()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes, **kw) -> str:
        self.routes[path] = Route(body, **kw)
        return self.url(path)

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(self.counts.values()) if path is None else self.counts[path]

    def _hit(self, path: str) -> int:
        with self._lock:
            self.counts[path] += 1
            return self.counts[path]


def _make_handler(server: LocalServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            n = server._hit(self.path)
            route = server.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.delay:
                time.sleep(route.delay)
            mode = route.mode
            if route.fail_times is not None and n > route.fail_times:
                mode = "ok"
            if mode.isdigit():
                self.send_error(int(mode))
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if mode == "ok":
                self.wfile.write(route.body)
                return
            self.wfile.write(route.body[: len(route.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            if mode == "reset":  # RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.connection.close()

        def finish(self):
            try:
                super().finish()
            except OSError:
                pass

    return Handler


# ---------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def server():
    srv = LocalServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def hub_env(tmp_path, monkeypatch, server) -> Path:
    """Isolated cache root, online, Gluon repo pointed at the local server, no proxies."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SSD_ZOO_HOME", str(cache))
    monkeypatch.delenv("SSD_ZOO_OFFLINE", raising=False)
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url("/"))
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return cache


def free_port() -> int:
    """A port nobody listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha1_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def params_bytes(tmp_dir: Path, seed: int = 0) -> bytes:
    """Bytes of a small genuine-format Gluon .params file."""
    rng = np.random.default_rng(seed)
    arrays = {"features.0.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
              "features.0.bias": rng.standard_normal(4).astype(np.float32),
              "class_predictors.0.predictor.weight":
                  rng.standard_normal((6, 4, 3, 3)).astype(np.float32)}
    path = tmp_dir / f"made-{seed}.params"
    write_params(str(path), arrays)
    data = path.read_bytes()
    path.unlink()
    return data


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip holding ``members`` under exactly the given names (unsafe names included)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def serve_gluon(server: LocalServer, name: str, params: bytes, sha1: str | None = None,
                **kw) -> str:
    """Serve ``params`` as the model-store zip for ``name`` (named after ``sha1``)."""
    sha1 = sha1 or sha1_of(params)
    short = sha1[:8]
    body = zip_bytes({f"{name}-{short}.params": params})
    return server.add(f"/gluon/models/{name}-{short}.zip", body, **kw)


def listing(directory: Path) -> list[str]:
    """Every file below ``directory`` (relative, sorted), lock files excluded."""
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if p.is_file() and not p.name.endswith(".lock"))


def run_workers(target, args, n=4, timeout=40):
    """Start ``n`` forked processes on ``target(*args, barrier, queue)``; their results."""
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=timeout)
        assert p.exitcode == 0
    return results


# ------------------------------------------------------------------ server self-test

def test_server_modes(server):
    body = bytes(range(256)) * 40
    url = server.add("/f", body)
    assert requests.get(url, timeout=5).content == body
    server.add("/t", body, mode="truncate")
    with pytest.raises(requests.RequestException):
        requests.get(server.url("/t"), timeout=5).content
    assert requests.get(server.url("/nope"), timeout=5).status_code == 404
    assert server.count("/f") == 1 and server.count() == 3
