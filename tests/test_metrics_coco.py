"""COCO metric: equal to pycocotools called directly; id mapping and xywh round trip."""
from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ssd_zoo.data import COCODetection
from ssd_zoo.metrics import COCODetectionMetric
from ssd_zoo.metrics.coco import COCO_STAT_NAMES
from tests.test_data_coco import write_coco


@pytest.fixture()
def coco_set(tmp_path):
    path = write_coco(tmp_path, n_images=8, seed=1)
    return path, COCODetection(tmp_path)


def fake_detections(ds, seed=0):
    """Per image: jittered ground truths (some relabelled) + random boxes, padded with -1."""
    rng = np.random.RandomState(seed)
    out = []
    for i in range(len(ds)):
        label = ds.label(i)
        w, h = ds.image_size(i)
        boxes = label[:, :4] + rng.normal(0, 3, (len(label), 4))
        cls = label[:, 4].copy()
        cls[rng.rand(len(cls)) < 0.2] = rng.randint(0, 3)
        n_rand = rng.randint(0, 6)
        xy = rng.uniform(0, [w, h], (n_rand, 2))
        rand_boxes = np.hstack([xy, xy + rng.uniform(5, 80, (n_rand, 2))])
        boxes = np.vstack([boxes, rand_boxes, -np.ones((3, 4))])
        labels = np.concatenate([cls, rng.randint(0, 3, n_rand), -np.ones(3)])
        scores = np.concatenate([rng.rand(len(cls) + n_rand), -np.ones(3)])
        out.append((ds.image_id(i), boxes, labels, scores))
    return out


def direct_pycocotools(path, dets, score_thresh=0.05):
    """The reference: results list built by hand, then loadRes + COCOeval."""
    gt = COCO(str(path))
    cat_ids = sorted(gt.getCatIds())
    results = []
    for image_id, boxes, labels, scores in dets:
        for b, l, s in zip(boxes, labels, scores):
            if l < 0 or s < score_thresh:
                continue
            results.append({"image_id": int(image_id), "category_id": cat_ids[int(l)],
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0] + 1),
                                     float(b[3] - b[1] + 1)],
                            "score": float(s)})
    with contextlib.redirect_stdout(io.StringIO()):
        e = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e.stats, results


def test_equals_pycocotools_directly(coco_set, tmp_path):
    path, ds = coco_set
    dets = fake_detections(ds)
    m = COCODetectionMetric(path)
    for d in dets:
        m.update(*d)
    stats = m.summarize()
    ref_stats, ref_results = direct_pycocotools(path, dets)
    assert list(stats) == list(COCO_STAT_NAMES)
    np.testing.assert_array_equal(np.array(list(stats.values())), ref_stats)
    assert 0.2 < stats["AP"] < 0.95 and stats["APs"] >= 0 and stats["APl"] >= 0
    assert m.results() == ref_results
    out = tmp_path / "res" / "dets.json"
    m.write_results_json(out)
    assert json.loads(out.read_text()) == ref_results
    assert [p.name for p in out.parent.iterdir()] == ["dets.json"]   # no temp file left
    per_class = m.per_class_ap()
    assert list(per_class) == ["cat", "dog", "zebra"]
    assert np.nanmean(list(per_class.values())) == pytest.approx(stats["AP"])


def test_ground_truth_round_trip(coco_set):
    """Dataset labels fed back as detections: json boxes and category ids come back."""
    path, ds = coco_set
    m = COCODetectionMetric(path)
    for i in range(len(ds)):
        label = ds.label(i)
        m.update(ds.image_id(i), label[:, :4], label[:, 4:5], np.ones((len(label), 1)))
    raw = json.loads(path.read_text())
    gt = sorted((a["image_id"], a["category_id"], a["bbox"]) for a in raw["annotations"])
    got = sorted((r["image_id"], r["category_id"], r["bbox"]) for r in m.results())
    assert [g[:2] for g in got] == [g[:2] for g in gt]
    got_boxes = np.array([g[2] for g in got])
    gt_boxes = np.array([g[2] for g in gt])
    np.testing.assert_allclose(got_boxes, gt_boxes, rtol=0, atol=1e-12)
    ints = (gt_boxes == np.round(gt_boxes)).all(axis=1)
    assert ints.sum() >= 5
    np.testing.assert_array_equal(got_boxes[ints], gt_boxes[ints])  # exact when integral
    stats = m.summarize()
    assert stats["AP"] == pytest.approx(1.0) and stats["AR100"] == pytest.approx(1.0)


def test_shards_merge_to_single_process(coco_set):
    path, ds = coco_set
    dets = fake_detections(ds, seed=2)
    whole = COCODetectionMetric(path)
    for d in dets:
        whole.update(*d)
    shards = [COCODetectionMetric(path) for _ in range(2)]
    for k, d in enumerate(dets):
        shards[k % 2].update(*d)
    merged = COCODetectionMetric(path)
    for s in shards[::-1]:
        merged.merge(s.state())
    assert merged.results() == whole.results()
    assert merged.summarize() == whole.summarize()
    with pytest.raises(ValueError, match="two shards"):
        merged.merge(shards[0].state())


def test_empty_unknown_and_bad_input(coco_set, tmp_path):
    path, ds = coco_set
    m = COCODetectionMetric(path)
    assert m.summarize()["AP"] == 0.0                        # no detections at all
    m.update(ds.image_id(0), np.array([[0, 0, 10, 10.]]), np.array([7]), np.array([0.9]))
    assert m.results() == []                                 # unknown class ignored
    with pytest.raises(ValueError, match="already"):
        m.update(ds.image_id(0), np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    with pytest.raises(KeyError, match="123456"):
        m.update(123456, np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    bad = tmp_path / "noann.json"
    raw = json.loads(path.read_text())
    raw.pop("annotations")
    bad.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="noann.json: COCO json has no 'annotations'"):
        COCODetectionMetric(bad)
