"""ssd_zoo.metrics.agreement: row-by-row reproduction of one detector's output by another."""
from __future__ import annotations

import torch

from ssd_zoo.metrics.agreement import agreement_misses, detection_agreement


def _out(rows, pad=1):
    """rows: [(id, score, (x1, y1, x2, y2))] -> (ids, scores, bboxes) of one image, padded."""
    rows = list(rows) + [(-1, -1.0, (-1, -1, -1, -1))] * pad
    ids = torch.tensor([[[float(r[0])] for r in rows]])
    scores = torch.tensor([[[r[1]] for r in rows]])
    boxes = torch.tensor([[list(map(float, r[2])) for r in rows]])
    return ids, scores, boxes


REF = _out([(3, 0.90, (10, 10, 50, 60)),     # reproduced exactly
            (3, 0.80, (100, 100, 150, 170)),  # test score off by 0.05
            (7, 0.70, (20, 200, 90, 260)),    # test box off by 2.5 px
            (7, 0.60, (300, 20, 340, 80)),    # test has another class there
            (1, 0.50, (5, 5, 25, 25))])       # test has nothing near


TEST = _out([(3, 0.905, (10.5, 10, 50, 60.9)),
             (3, 0.85, (100, 100, 150, 170)),
             (7, 0.70, (20, 202.5, 90, 260)),
             (2, 0.60, (300, 20, 340, 80)),
             (1, 0.50, (200, 200, 240, 240))], pad=3)


def test_counts_and_causes():
    assert detection_agreement(REF, TEST) == (1, 5)
    assert agreement_misses(REF, TEST) == {"score": 1, "box": 1, "absent": 2}
    assert detection_agreement(REF, REF) == (5, 5)
    assert agreement_misses(REF, REF) == {"score": 0, "box": 0, "absent": 0}


def test_tolerances_are_applied():
    assert detection_agreement(REF, TEST, score_tol=0.06, box_tol=3.0) == (3, 5)
    assert agreement_misses(REF, TEST, near_px=2.0) == {"score": 1, "box": 0, "absent": 3}


def test_a_test_row_is_used_once():
    two = _out([(3, 0.9, (10, 10, 50, 60)), (3, 0.9, (10, 10, 50, 60))])
    one = _out([(3, 0.9, (10, 10, 50, 60))])
    assert detection_agreement(two, one) == (1, 2)
    assert detection_agreement(one, two) == (1, 1)


def test_reexported_from_fast():
    from ssd_zoo import fast
    assert fast.detection_agreement is detection_agreement
