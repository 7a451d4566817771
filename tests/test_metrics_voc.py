"""VOC mAP metrics: parity with gluoncv (.venv-ref), hand-checked cases, sharding, inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ssd_zoo.metrics import VOC07MApMetric, VOCMApMetric
from tests.refrun import run_ref

FIELDS = ("pred_bboxes", "pred_labels", "pred_scores", "gt_bboxes", "gt_labels",
          "gt_difficults")
CASES = [
    dict(name="f64", n_batches=12, batch=8, n_cls=7, dtype="float64", iou_thresh=0.5,
         class_names=True, label_3d=False),
    dict(name="f32_3d", n_batches=6, batch=5, n_cls=5, dtype="float32", iou_thresh=0.5,
         class_names=False, label_3d=True),
    dict(name="iou07", n_batches=8, batch=8, n_cls=6, dtype="float64", iou_thresh=0.7,
         class_names=True, label_3d=False),
]
METRICS = {"voc07": VOC07MApMetric, "voc": VOCMApMetric}


@pytest.fixture(scope="module")
def ref_dir(ref_python):
    return run_ref(ref_python, "metrics_ref.py", {"seed": 7, "cases": CASES, "hand": True})


def _batches(ref_dir, case):
    data = np.load(ref_dir / f"data_{case['name']}.npz")
    return [{k: data[f"b{i}_{k}"] for k in FIELDS} for i in range(case["n_batches"])]


def _ours(cls, case, batches):
    names = [f"c{i}" for i in range(case["n_cls"])] if case["class_names"] else None
    m = cls(case["iou_thresh"], names)
    for b in batches:
        m.update(*[b[k] for k in FIELDS])
    return m


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
@pytest.mark.parametrize("kind", ["voc07", "voc"])
def test_parity_with_gluoncv(ref_dir, case, kind):
    ref = json.loads((ref_dir / f"result_{case['name']}.json").read_text())[kind]
    batches = _batches(ref_dir, case)
    names, values = _ours(METRICS[kind], case, batches).get()
    if case["class_names"]:
        assert names == ref["names"]
        ours_v = np.array(values)
    else:  # gluoncv reports only mAP without class names
        assert names[-1] == "mAP"
        ours_v = np.array(values[-1:])
    ref_v = np.array(ref["values"])
    assert np.array_equal(np.isnan(ours_v), np.isnan(ref_v))
    ok = ~np.isnan(ref_v)
    diff = np.abs(ours_v[ok] - ref_v[ok]).max()
    print(f"{kind}/{case['name']}: max |ours - gluoncv| = {diff:.3g}")
    assert diff <= 1e-6
    if case["class_names"]:  # the generated data covers every corner case
        aps = dict(zip(names, values))
        n = case["n_cls"]
        assert np.isnan(aps[f"c{n - 2}"])           # predicted, never in ground truth
        assert aps[f"c{n - 1}"] == 0.0              # ground truth, never predicted
        assert np.isnan(aps[f"c{n - 3}"])           # only difficult ground truths


@pytest.mark.parity
@pytest.mark.parametrize("kind", ["voc07", "voc"])
def test_parity_torch_tensors_and_batch_split(ref_dir, kind):
    """Same numbers from torch tensors, one big batch, or any update order."""
    case = CASES[0]
    ref = json.loads((ref_dir / f"result_{case['name']}.json").read_text())[kind]
    batches = _batches(ref_dir, case)
    m = METRICS[kind](case["iou_thresh"], [f"c{i}" for i in range(case["n_cls"])])
    for b in reversed(batches):
        m.update(*[torch.from_numpy(b[k]) for k in FIELDS])
    assert np.allclose(m.get()[1], ref["values"], atol=1e-6, equal_nan=True)
    m.reset()
    m.update(*[np.concatenate([b[k] for b in batches]) for k in FIELDS])
    assert np.allclose(m.get()[1], ref["values"], atol=1e-6, equal_nan=True)


@pytest.mark.parity
def test_gluoncv_uses_plus_one_widths(ref_dir):
    """Gluon-CV adds 1 to xmax/ymax before its IoU: the devkit convention (our default)."""
    hand = json.loads((ref_dir / "hand.json").read_text())
    assert hand == pytest.approx({"VOC07MApMetric": 1.0, "VOCMApMetric": 1.0})


def _hand_update(m):
    # pred [0,0,9,9] vs gt [0,0,9,4]: +1 widths -> 10*5 / (10*10) = 0.5; continuous 36/81
    m.update(np.array([[[0, 0, 9, 9.]]]), np.array([[0.]]), np.array([[0.9]]),
             np.array([[[0, 0, 9, 4.]]]), np.array([[0.]]))
    return m.get()[1][-1]


@pytest.mark.parametrize("cls", [VOC07MApMetric, VOCMApMetric])
def test_iou_offset_hand_checked(cls):
    assert _hand_update(cls(0.5)) == pytest.approx(1.0)      # default = gluoncv = devkit
    assert _hand_update(cls(0.5, iou_offset=1.0)) == pytest.approx(1.0)
    assert _hand_update(cls(0.5, iou_offset=0.0)) == 0.0     # 0.444 < 0.5
    assert _hand_update(cls(0.44, iou_offset=0.0)) == pytest.approx(1.0)


def test_hand_checked_ap_values():
    """2 gts (one difficult), 4 dets: TP, ignored (difficult), FP (duplicate), FP."""
    gt = np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]], float)
    gl = np.array([[0, 0, 0]], float)
    gd = np.array([[0, 1, 0]], float)
    pb = np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10], [80, 80, 90, 90],
                    [50, 50, 60, 60]]], float)
    pl = np.array([[0, 0, 0, 0, 0]], float)
    ps = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
    # ranked: TP, (ignored), FP, FP, TP -> recall 0.5,0.5,0.5,1.0 / precision 1,.5,1/3,.5
    m07, m = VOC07MApMetric(), VOCMApMetric()
    for metric in (m07, m):
        metric.update(pb, pl, ps, gt, gl, gd)
    assert m.get()[1][-1] == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    assert m07.get()[1][-1] == pytest.approx((6 * 1.0 + 5 * 0.5) / 11)
    assert m.get()[0] == ["0", "mAP"]


def test_state_merge_equals_single_process():
    rng = np.random.RandomState(0)
    B, N, M = 40, 20, 5
    gt = np.sort(rng.uniform(0, 100, (B, M, 4)).reshape(B, M, 2, 2), axis=2)
    gt = gt.transpose(0, 1, 3, 2).reshape(B, M, 4)
    gl = rng.randint(-1, 4, (B, M)).astype(float)
    gd = (rng.rand(B, M) < 0.2).astype(float)
    pb = np.repeat(gt, 4, axis=1) + rng.normal(0, 3, (B, M * 4, 4))
    pl = np.repeat(gl, 4, axis=1)
    ps = np.round(rng.rand(B, M * 4), 1)            # many ties on purpose
    for cls in (VOC07MApMetric, VOCMApMetric):
        whole = cls()
        whole.update(pb, pl, ps, gt, gl, gd)
        shards = [cls() for _ in range(3)]
        for r, shard in enumerate(shards):
            idx = np.arange(r, B, 3)[::-1]
            shard.update(pb[idx], pl[idx], ps[idx], gt[idx], gl[idx], gd[idx])
        merged = cls()
        for shard in shards[::-1]:
            merged.merge(shard.state())
        assert merged.get() == whole.get()


def test_empty_and_padding_only():
    m = VOCMApMetric(class_names=["a", "b"])
    names, values = m.get()
    assert names == ["a", "b", "mAP"] and all(np.isnan(values))
    m.update(np.zeros((2, 0, 4)), np.zeros((2, 0)), np.zeros((2, 0)),
             np.full((2, 3, 4), -1.0), np.full((2, 3), -1.0))
    assert all(np.isnan(m.get()[1]))
    m.update(np.full((1, 2, 4), -1.0), -np.ones((1, 2, 1)), -np.ones((1, 2, 1)),
             np.array([[[0, 0, 5, 5.]]]), np.array([[1.]]))
    names, values = m.get()
    assert np.isnan(values[0]) and values[1] == 0.0 and values[2] == 0.0


def test_bad_shapes():
    m = VOC07MApMetric()
    with pytest.raises(ValueError, match="pred_bboxes"):
        m.update(np.zeros((2, 4)), np.zeros((2,)), np.zeros((2,)), np.zeros((1, 1, 4)),
                 np.zeros((1, 1)))
    with pytest.raises(ValueError, match="gt_labels"):
        m.update(np.zeros((1, 2, 4)), np.zeros((1, 2)), np.zeros((1, 2)),
                 np.zeros((1, 1, 4)), np.zeros((2, 1)))
