"""eval/eval_ssd.py end to end on tiny VOC- and COCO-layout datasets written to disk.

Six small jpgs (64x48 / 48x64, upscaled to the 300 data shape) with ground truth made from
the model's own detections (plus misses and difficult boxes), and mobilenet0.25 SSDs with
seeded random weights saved to .safetensors.  Checked: single process == ``torchrun
--nproc_per_node=2`` (gloo, CPU) bit for bit; custom paths == standard layouts; Gluon-CV's
eval_ssd.py logic (in .venv-ref) on the same network outputs gives the same numbers;
``--check``; one-line errors for bad input.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "eval" / "eval_ssd.py"
TORCHRUN = Path(sys.executable).with_name("torchrun")
PRESENT = ("car", "dog", "person")
VOC_NET, COCO_NET = "ssd_300_mobilenet0.25_voc", "ssd_300_mobilenet0.25_coco"
COMMON = ["--batch-size", "2", "--num-workers", "0", "--no-progress"]

sys.path.insert(0, str(SCRIPT.parent))
import eval_ssd  # noqa: E402


# ----------------------------------------------------------------------------- data
def _pseudo_gt(name, weights, images, rng):
    """Ground truth made from the model's own detections (rounded, some jittered) plus one
    random box per image (a miss, difficult on every third image): a non-trivial AP."""
    import torch
    import ssd_zoo
    from ssd_zoo.transforms import transform_val
    net = ssd_zoo.get_model(name, weights=weights)
    p = net.preset
    with torch.no_grad():
        ids, scores, boxes = net(torch.cat([transform_val(im, 300, 300, p.mean, p.std)
                                            for im in images]))
    out = []
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        objs = []
        for r in (0, 3, 7, 12)[:2 + i % 3]:
            if ids[i, r, 0] < 0:
                continue
            x1, y1, x2, y2 = (boxes[i, r] * torch.tensor([w / 300, h / 300] * 2)).tolist()
            j = int(rng.integers(-2, 3)) if r else 0
            x1, y1 = min(max(round(x1) + j, 0), w - 3), min(max(round(y1), 0), h - 3)
            x2, y2 = min(max(round(x2) + j, x1 + 2), w - 1), min(max(round(y2), y1 + 2), h - 1)
            objs.append((net.classes[int(ids[i, r, 0])], x1 + 1, y1 + 1, x2 + 1, y2 + 1, 0))
        x1, y1 = int(rng.integers(1, w // 2)), int(rng.integers(1, h // 2))
        objs.append((PRESENT[i % 3], x1, y1, x1 + w // 3, y1 + h // 3, int(i % 3 == 2)))
        out.append(objs)
    return out


def _write_voc(root: Path, images, objects):
    voc = root / "VOCdevkit" / "VOC2007"
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / d).mkdir(parents=True)
    for (name, img), objs in zip(images, objects):
        cv2.imwrite(str(voc / "JPEGImages" / f"{name}.jpg"), img[:, :, ::-1])
        h, w = img.shape[:2]
        xml = [f"<annotation><size><width>{w}</width><height>{h}</height></size>"]
        xml += [f"<object><name>{c}</name><difficult>{d}</difficult><bndbox><xmin>{x1}</xmin>"
                f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
                for c, x1, y1, x2, y2, d in objs]
        (voc / "Annotations" / f"{name}.xml").write_text("".join(xml) + "</annotation>")
    (voc / "ImageSets/Main/test.txt").write_text("".join(f"{n}\n" for n, _ in images))
    return root / "VOCdevkit"


def _write_coco(root: Path, images, objects):
    """COCO layout; category ids are not contiguous, image 3 has no annotation."""
    from ssd_zoo.classes import COCO_CLASSES
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    cats = [{"id": 3 * i + 1, "name": n} for i, n in enumerate(COCO_CLASSES)]
    cat_id = {c["name"]: c["id"] for c in cats}
    imgs, anns = [], []
    for i, ((name, img), objs) in enumerate(zip(images, objects)):
        cv2.imwrite(str(root / "val2017" / f"{name}.jpg"), img[:, :, ::-1])
        h, w = img.shape[:2]
        imgs.append({"id": 100 + 7 * i, "file_name": f"{name}.jpg", "width": w, "height": h})
        for c, x1, y1, x2, y2, _ in (objs if i != 3 else ()):
            bw, bh = x2 - x1 + 1, y2 - y1 + 1
            anns.append({"id": len(anns) + 1, "image_id": imgs[-1]["id"], "iscrowd": 0,
                         "category_id": cat_id[c], "area": float(bw * bh),
                         "bbox": [x1 - 1, y1 - 1, bw, bh]})
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({"images": imgs, "annotations": anns, "categories": cats}))
    return root


def _weights(name: str, path: Path):
    """Seeded random weights that depend on the input: He-initialized backbone convs (the
    default init makes the features vanish, so every image would get the same scores),
    small predictor weights; background and the PRESENT classes get a bias offset so that
    only those classes pass the score threshold."""
    import torch
    from safetensors.torch import save_file
    from torch import nn
    import ssd_zoo
    torch.manual_seed(0)
    net = ssd_zoo.get_model(name)
    c1 = len(net.classes) + 1
    with torch.no_grad():
        for m in net.backbone.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        for p in list(net.class_predictors) + list(net.box_predictors):
            nn.init.normal_(p.weight, std=0.01)
        for p in net.class_predictors:
            b = p.bias.view(-1, c1)
            b[:, 0] += 4.0
            for c in PRESENT:
                b[:, 1 + net.classes.index(c)] += 3.0
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """In-process runs use one intra-op thread, like the torchrun workers
    (OMP_NUM_THREADS=1): oneDNN's float32 results can differ in the last bit between
    thread counts, and the comparisons below are bit-exact."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny_eval")
    rng = np.random.default_rng(0)
    images = []
    for i in range(6):
        w, h = (64, 48) if i % 2 == 0 else (48, 64)
        images.append((f"{i:06d}", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
    voc_w = _weights(VOC_NET, base / "voc.safetensors")
    coco_w = _weights(COCO_NET, base / "coco.safetensors")
    # the ground truth is predicted on the decoded jpgs, as the evaluation will see them
    decoded = [cv2.imdecode(cv2.imencode(".jpg", im[:, :, ::-1])[1], cv2.IMREAD_COLOR)
               [:, :, ::-1] for _, im in images]
    voc = _write_voc(base / "voc", images, _pseudo_gt(VOC_NET, voc_w, decoded, rng))
    coco = _write_coco(base / "coco", images, _pseudo_gt(COCO_NET, coco_w, decoded, rng))
    return {"base": base, "voc": voc, "coco": coco, "voc_w": voc_w, "coco_w": coco_w}


def _run_inprocess(args) -> int:
    return eval_ssd.main([str(a) for a in args])


def _torchrun(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", str(SCRIPT)] + \
        [str(a) for a in args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def _load(path):
    return json.loads(Path(path).read_text())


def _same_numbers(a, b):
    assert a["metrics"] == b["metrics"]
    assert a["per_class_ap"] == b["per_class_ap"]
    assert a["num_images"] == b["num_images"]


# ---------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def voc_single(tiny):
    out = tiny["base"] / "voc_single.json"
    rc = _run_inprocess(["--network", VOC_NET, "--dataset", "voc", "--data-root", tiny["voc"],
                         "--weights", tiny["voc_w"], "--output", out] + COMMON)
    assert rc == 0
    return _load(out)


def test_voc_single_vs_torchrun(tiny, voc_single):
    single = voc_single
    assert 0 < single["metrics"]["mAP"] < 1            # non-trivial
    assert single["per_class_ap"]["aeroplane"] is None  # no gt and no detections
    assert single["world_size"] == 1 and single["metric"] == "voc07"
    assert single["weights"]["kind"] == "file" and len(single["weights"]["sha256"]) == 64
    assert set(single["versions"]) >= {"torch", "torchvision", "ssd_zoo"}
    assert "--data-root" in single["command"] and single["date"]
    out = tiny["base"] / "voc_dist.json"
    proc = _torchrun(["--network", VOC_NET, "--dataset", "voc", "--data-root", tiny["voc"],
                      "--weights", tiny["voc_w"], "--output", out] + COMMON, tiny["base"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist = _load(out)
    assert dist["world_size"] == 2
    _same_numbers(single, dist)
    assert "Gluon-CV" in proc.stdout and "Δ Gluon-CV" in proc.stdout


@pytest.fixture(scope="module")
def coco_single(tiny):
    out = tiny["base"] / "coco_single.json"
    rc = _run_inprocess(["--network", COCO_NET, "--dataset", "coco", "--data-root",
                         tiny["coco"], "--weights", tiny["coco_w"], "--output", out,
                         "--save-detections", tiny["base"] / "coco_single_dets.json"] + COMMON)
    assert rc == 0
    return _load(out)


def test_coco_single_vs_torchrun(tiny, coco_single):
    single = coco_single
    assert single["metric"] == "coco" and 0 < single["metrics"]["AP50"] <= 1
    assert set(single["metrics"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"}
    out, dets = tiny["base"] / "coco_dist.json", tiny["base"] / "coco_dist_dets.json"
    proc = _torchrun(["--network", COCO_NET, "--dataset", "coco", "--data-root", tiny["coco"],
                      "--weights", tiny["coco_w"], "--output", out, "--save-detections", dets]
                     + COMMON, tiny["base"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist = _load(out)
    assert dist["world_size"] == 2
    _same_numbers(single, dist)
    assert _load(dets) == _load(tiny["base"] / "coco_single_dets.json")


def test_custom_paths_match_standard_layouts(tiny, voc_single):
    """A VOC-layout folder and a COCO json given as paths give the standard numbers."""
    out = tiny["base"] / "custom_voc.json"
    assert _run_inprocess(["--network", VOC_NET, "--dataset", tiny["voc"] / "VOC2007",
                           "--weights", tiny["voc_w"], "--output", out] + COMMON) == 0
    custom = _load(out)
    assert custom["dataset"] == "VOC2007"
    _same_numbers(voc_single, custom)


def test_coco_json_path(tiny, coco_single):
    out = tiny["base"] / "custom_coco.json"
    ann = tiny["coco"] / "annotations" / "instances_val2017.json"
    assert _run_inprocess(["--network", COCO_NET, "--dataset", ann, "--data-root",
                           tiny["coco"] / "val2017", "--weights", tiny["coco_w"],
                           "--output", out] + COMMON) == 0
    custom = _load(out)
    assert custom["dataset"] == "instances_val2017" and custom["metric"] == "coco"
    _same_numbers(coco_single, custom)


# ------------------------------------------------------------ Gluon-CV parity
def _raw_detections(name, weights, image_paths, path):
    """The network's outputs at the data shape, batched as the runs above (batch 2)."""
    import torch
    import ssd_zoo
    from ssd_zoo.data._image import read_image_rgb
    from ssd_zoo.transforms import transform_val
    net = ssd_zoo.get_model(name, weights=weights)
    p, outs = net.preset, []
    with torch.no_grad():
        for k in range(0, len(image_paths), 2):
            x = torch.cat([transform_val(read_image_rgb(f), 300, 300, p.mean, p.std)
                           for f in image_paths[k:k + 2]])
            outs.append([t.numpy() for t in net(x)])
    np.savez(path, **{key: np.concatenate([o[i] for o in outs])
                      for i, key in enumerate(("ids", "scores", "bboxes"))})
    return path


@pytest.mark.parity
def test_matches_gluoncv_eval_plumbing(tiny, voc_single, coco_single, ref_python):
    """Same network outputs through Gluon-CV's eval_ssd.py logic (val transform labels,
    clip, VOC07MApMetric; COCODetectionMetric(data_shape) rescale) -> same numbers."""
    from tests.refrun import run_ref
    images = sorted((tiny["voc"] / "VOC2007" / "JPEGImages").glob("*.jpg"))
    coco_images = sorted((tiny["coco"] / "val2017").glob("*.jpg"))
    voc_dets = _raw_detections(VOC_NET, tiny["voc_w"], images, tiny["base"] / "voc_dets.npz")
    coco_dets = _raw_detections(COCO_NET, tiny["coco_w"], coco_images,
                                tiny["base"] / "coco_dets.npz")
    digest = hashlib.sha1(voc_dets.read_bytes() + coco_dets.read_bytes()).hexdigest()
    out = run_ref(ref_python, "eval_ref.py", {
        "voc_root": str(tiny["voc"]), "voc_dets": str(voc_dets), "data_shape": 300,
        "coco_json": str(tiny["coco"] / "annotations" / "instances_val2017.json"),
        "coco_dets": str(coco_dets), "batch_size": 2, "digest": digest})
    ref = _load(out / "result.json")
    names, values = ref["voc07"]["names"], ref["voc07"]["values"]
    assert values[-1] == pytest.approx(voc_single["metrics"]["mAP"], rel=0, abs=1e-12)
    for n, v in zip(names[:-1], values[:-1]):
        ours = voc_single["per_class_ap"][n]
        assert (ours is None and np.isnan(v)) or ours == pytest.approx(v, rel=0, abs=1e-12)
    assert ref["coco_results"] == _load(tiny["base"] / "coco_single_dets.json")


# ---------------------------------------------------------------------- --check
def _with_gluoncv_number(monkeypatch, value):
    from ssd_zoo import zoo
    from ssd_zoo.zoo import Metric
    entry = dataclasses.replace(zoo.CATALOG[VOC_NET],
                                published=(Metric("VOC07 mAP", value, "gluoncv"),
                                           Metric("VOC07 mAP", 70.0, "paper")))
    monkeypatch.setitem(zoo.CATALOG, VOC_NET, entry)


@pytest.mark.parametrize("offset,expected", [(0.05, 0), (-0.5, 1)])
def test_check(tiny, voc_single, monkeypatch, capsys, offset, expected):
    ours = 100 * voc_single["metrics"]["mAP"]
    _with_gluoncv_number(monkeypatch, ours + offset)
    out = tiny["base"] / f"check_{offset}.json"
    rc = _run_inprocess(["--network", VOC_NET, "--dataset", "voc", "--data-root", tiny["voc"],
                         "--weights", tiny["voc_w"], "--output", out, "--check",
                         "--tolerance", 0.1] + COMMON)
    cap = capsys.readouterr()
    assert rc == expected, cap.err
    record = _load(out)   # written before the check
    assert record["comparison"]["gluoncv"] == pytest.approx(ours + offset)
    assert record["comparison"]["delta_gluoncv"] == pytest.approx(-offset)
    assert record["comparison"]["paper"] == 70.0
    assert "Δ Gluon-CV" in cap.out
    if expected:
        assert "check failed" in cap.err and "Traceback" not in cap.err


def test_check_needs_a_reference(tiny, capsys):
    rc = _run_inprocess(["--network", VOC_NET, "--dataset", tiny["voc"] / "VOC2007",
                         "--weights", tiny["voc_w"], "--check"] + COMMON)
    assert rc == 2 and "--check needs a Gluon-CV number" in capsys.readouterr().err


# ------------------------------------------------------------------ bad input
def _bad(capsys, args):
    rc = _run_inprocess(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_missing_data_root(tiny, capsys):
    err = _bad(capsys, ["--network", VOC_NET, "--data-root", tiny["base"] / "nope",
                        "--weights", tiny["voc_w"]])
    assert "VOC data not found" in err and "nope" in err


def test_unknown_network_suggests(tiny, capsys):
    err = _bad(capsys, ["--network", "mobilenet0.5", "--data-root", tiny["voc"]])
    assert "unknown model 'mobilenet0.5'" in err
    assert "did you mean" in err and "ssd_300_mobilenet0.25_voc" in err
    assert "no SSD with backbone 'mobilenet0.5'" in err and "mobilenet0.25@300" in err


def test_unreadable_and_missing_weights(tiny, capsys):
    bad = tiny["base"] / "garbage.safetensors"
    bad.write_bytes(b"this is not a weight file")
    err = _bad(capsys, ["--network", VOC_NET, "--data-root", tiny["voc"], "--weights", bad]
               + COMMON)
    assert "cannot load weights" in err and "garbage.safetensors" in err
    err = _bad(capsys, ["--network", VOC_NET, "--data-root", tiny["voc"], "--weights",
                        tiny["base"] / "missing.safetensors"])
    assert "weights file not found" in err


def test_other_bad_inputs(tiny, capsys):
    assert "not a VOC-layout folder" in _bad(capsys, ["--dataset", tiny["base"]])
    assert "has no published weights" in _bad(capsys, ["--network", VOC_NET, "--data-root",
                                                       tiny["voc"]])
    assert "pass --classes" in _bad(capsys, ["--network", "ssd_300_mobilenet0.25_custom",
                                             "--dataset", tiny["voc"] / "VOC2007",
                                             "--weights", tiny["voc_w"]])
    assert "predicts 80 classes" in _bad(capsys, ["--network", COCO_NET, "--data-root",
                                                  tiny["voc"], "--weights", tiny["coco_w"]]
                                         + COMMON)
    assert "--batch-size" in _bad(capsys, ["--batch-size", "0"])
    from ssd_zoo.zoo import CATALOG
    ported = [n for n, e in CATALOG.items() if getattr(e, "upstream", "gluoncv") != "gluoncv"]
    if ported:  # other preprocessing: refused rather than evaluated wrongly
        assert "preprocessing differs" in _bad(capsys, ["--network", ported[0],
                                                        "--data-root", tiny["voc"]])
    import torch
    if not torch.cuda.is_available():
        assert "CUDA is not available" in _bad(capsys, ["--cuda", "--data-root", tiny["voc"]])


def test_cli_subprocess_error_is_one_line(tiny):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--network", "nosuch_net",
                           "--data-root", str(tiny["voc"])], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("eval_ssd.py: error: unknown model")


def test_help():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    for flag in ("--network", "--data-shape", "--batch-size", "--dataset", "--root",
                 "--data-root", "--cuda", "--num-workers", "--weights", "--check",
                 "--tolerance", "--metric", "--precision", "--classes", "--fast"):
        assert flag in proc.stdout


def test_fast_path_gives_the_same_numbers(tiny, voc_single):
    out = tiny["base"] / "voc_fast.json"
    rc = _run_inprocess(["--network", VOC_NET, "--dataset", "voc", "--data-root", tiny["voc"],
                         "--weights", tiny["voc_w"], "--output", out, "--fast"] + COMMON)
    assert rc == 0
    fast = _load(out)
    assert fast["fast"] is True and voc_single["fast"] is False
    assert fast["metrics"]["mAP"] == pytest.approx(voc_single["metrics"]["mAP"], abs=1e-4)
