"""Shared fixtures: real assets (skip when absent) and the reference runtime (.venv-ref)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = (ROOT / ".." / "shared" / "assets").resolve()
REF_PYTHON = ROOT / ".venv-ref" / "bin" / "python"


def pytest_configure(config):
    # Under pytest-xdist each worker gets one core: avoid oversubscribing the machine.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch
        torch.set_num_threads(1)
    config.addinivalue_line("markers", "parity: compares against a reference runtime "
                                       "(MXNet/gluoncv in .venv-ref, or OpenCV dnn)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    if not ASSETS.is_dir():
        pytest.skip(f"shared test assets not found at {ASSETS} (they ship with the "
                    "development checkout, not with the package)")
    return ASSETS


@pytest.fixture(scope="session")
def asset_images(assets_dir) -> list:
    return sorted((assets_dir / "images").glob("*.*"))


@pytest.fixture(scope="session")
def ref_python() -> Path:
    """Interpreter of the reference venv (mxnet + gluoncv).  `make test` builds it and
    sets SSD_ZOO_REQUIRE_REF=1, so there a missing venv is a failure, not a skip."""
    if REF_PYTHON.exists():
        return REF_PYTHON
    msg = (f"reference venv missing ({REF_PYTHON}); `make setup-ref` creates it "
           "(mxnet 1.9.1 + gluoncv 0.10.5.post0)")
    if os.environ.get("SSD_ZOO_REQUIRE_REF") == "1":
        pytest.fail(msg)
    pytest.skip(msg)
