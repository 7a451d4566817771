"""demo/demo_ssd.py end to end, offline: the bundled face SSD on the shipped image, and
each kind of bad input (one `error:` line naming the culprit, the rest still processed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "demo_ssd.py"
SHIPPED = ROOT / "demo" / "images" / "astronaut.png"


def run(tmp_path, *args, timeout=120):
    """The CLI in a subprocess with no network and an empty weight cache."""
    env = {**os.environ, "SSD_ZOO_OFFLINE": "1", "SSD_ZOO_HOME": str(tmp_path / "cache"),
           "TORCH_HOME": str(tmp_path / "torch"), "http_proxy": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "OMP_NUM_THREADS": "1"}
    env.pop("SSD_ZOO_DEBUG", None)
    return subprocess.run([sys.executable, str(DEMO), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path, env=env)


def error_lines(proc):
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    return lines


def test_default_finds_the_astronauts_face_offline(tmp_path):
    proc = run(tmp_path, "--out", str(tmp_path / "out"), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["network"] == "ssd_300_res10_face_caffe" and doc["errors"] == []
    (rec,) = doc["images"]
    assert Path(rec["input"]) == SHIPPED and Path(rec["output"]).is_file()
    (face,) = [d for d in rec["detections"] if d["score"] > 0.9]
    x1, y1, x2, y2 = face["box_xyxy"]
    assert face["name"] == "face"
    # the face of the 512x512 NASA portrait is around (180, 58)-(272, 177)
    assert 150 < x1 < 210 and 30 < y1 < 90 and 240 < x2 < 300 and 150 < y2 < 210


def test_missing_and_corrupt_images_are_named_and_others_processed(tmp_path):
    (tmp_path / "corrupt.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    proc = run(tmp_path, "--images", "missing.jpg", str(SHIPPED), "corrupt.jpg", "--out",
               str(out))
    assert proc.returncode == 1
    lines = error_lines(proc)
    assert len(lines) == 2 and all(ln.startswith("error: ") for ln in lines), lines
    assert "missing.jpg" in lines[0] and "corrupt.jpg" in lines[1]
    assert (out / "astronaut.png").is_file()
    assert "face" in proc.stdout


def main_in_process(capsys, *args):
    """demo_ssd.main() in this process (the cases that stop before loading a model)."""
    sys.path.insert(0, str(DEMO.parent))
    try:
        import demo_ssd
    finally:
        sys.path.remove(str(DEMO.parent))
    try:
        rc = demo_ssd.main(list(args))
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err.strip().splitlines()


def test_unknown_network_suggests_names(capsys, tmp_path):
    rc, lines = main_in_process(capsys, "--network", "ssd_300_vgg16_atrus_voc", "--images",
                                str(SHIPPED), "--out", str(tmp_path / "out"))
    assert rc == 2
    (line,) = lines
    assert "ssd_300_vgg16_atrus_voc" in line and "ssd_300_vgg16_atrous_voc" in line


def test_unwritable_out_is_named_and_detections_still_printed(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")  # a folder cannot be made below a file, even as root
    proc = run(tmp_path, "--images", str(SHIPPED), "--out", str(blocker / "out"))
    assert proc.returncode == 1
    (line,) = error_lines(proc)
    assert line.startswith("error: --out ") and str(blocker / "out") in line
    assert "face" in proc.stdout and "1.000" in proc.stdout


@pytest.mark.parametrize("args", [["--cuda"], ["--threshold", "2"], ["--batch-size", "x"],
                                  ["--fast"]])
def test_bad_options_are_one_line(capsys, tmp_path, args):
    import torch
    if args == ["--cuda"] and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    rc, lines = main_in_process(capsys, *args, "--out", str(tmp_path / "out"))
    assert rc == 2
    (line,) = lines
    assert line.startswith("error: ") and args[0] in line


def test_draw_clamps_boxes_and_names_outputs_uniquely():
    import numpy as np
    from ssd_zoo.demo import draw, out_name
    img = np.zeros((40, 60, 3), np.uint8)
    det = {"boxes": np.array([[-5, 2, 80, 30], [10, 10, 5, 5]], np.float32),
           "labels": np.array([0, 3]), "scores": np.array([0.9, 0.6], np.float32),
           "names": ["face", "cat"]}
    out = draw(img, det)
    assert out.shape == img.shape and out.dtype == np.uint8 and out.any()
    taken = set()
    assert [out_name(Path(p), taken) for p in ("a/x.png", "b/x.png", "c/x.jpeg")] == \
        ["x.png", "x-1.png", "x.jpg"]


def test_fast_gives_the_same_detections(tmp_path):
    """--fast on a Gluon-layout SSD (local weights: random, predictors calibrated so that
    there is something to detect) prints the detections of the plain model."""
    from safetensors.torch import save_file
    from ssd_zoo.transforms import imread_rgb, transform_test
    from tests.test_fast import calibrated_model
    x, _ = transform_test(imread_rgb(str(SHIPPED)), short=300)
    net = calibrated_model("ssd_300_mobilenet0.25_voc", x, cls_std=4.0)
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    docs = []
    for extra in ([], ["--fast"]):
        proc = run(tmp_path, "--network", "ssd_300_mobilenet0.25_voc", "--weights",
                   str(weights), "--images", str(SHIPPED), "--threshold", "0.05", "--json",
                   "--out", str(tmp_path / f"out{len(extra)}"), *extra)
        assert proc.returncode == 0, proc.stderr
        docs.append(json.loads(proc.stdout)["images"][0]["detections"])
    plain, fast = docs
    assert len(plain) >= 3, "test model too degenerate"
    assert [d["name"] for d in plain] == [d["name"] for d in fast]
    for a, b in zip(plain, fast):
        assert abs(a["score"] - b["score"]) < 1e-4
        assert max(abs(p - q) for p, q in zip(a["box_xyxy"], b["box_xyxy"])) < 0.05
