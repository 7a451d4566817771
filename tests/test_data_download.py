"""Download scripts: CLI smoke (--help) and the archive extraction helper."""
from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from _download import extract, md5sum  # noqa: E402


@pytest.mark.parametrize("script", ["download_voc.py", "download_coco.py"])
def test_help(script):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--root" in out.stdout and "Download" in out.stdout


def test_extract_tar_and_zip(tmp_path):
    (tmp_path / "src").mkdir()
    f = tmp_path / "src" / "a.txt"
    f.write_text("hello")
    with tarfile.open(tmp_path / "x.tar", "w") as t:
        t.add(f, arcname="VOCdevkit/a.txt")
    extract(tmp_path / "x.tar", tmp_path / "out")
    assert (tmp_path / "out" / "VOCdevkit" / "a.txt").read_text() == "hello"
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.writestr("../evil.txt", "x")
    with pytest.raises(IOError, match="escapes"):
        extract(tmp_path / "bad.zip", tmp_path / "out")
    assert md5sum(f) == "5d41402abc4b2a76b9719d911017c592"
