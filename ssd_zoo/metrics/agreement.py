"""How closely one detector's output reproduces another's (e.g. bf16 vs fp32), row by row.

Both inputs are ``(ids (N,P,1), scores (N,P,1), bboxes_xyxy (N,P,4))`` as an SSD returns
them (tensors or arrays; boxes in input pixels); rows with ``id < 0`` are padding.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np


def _row_diffs(ref, test):
    """Per image, for each valid ref row in order: (same_class (P,), |score diff| (P,),
    max |box coordinate diff| in px (P,)) against every test row of that image."""
    r_ids, r_s, r_b = (np.asarray(t, dtype=np.float64) for t in ref)
    t_ids, t_s, t_b = (np.asarray(t, dtype=np.float64) for t in test)
    for n in range(r_ids.shape[0]):
        yield [(t_ids[n, :, 0] == r_ids[n, i, 0], np.abs(t_s[n, :, 0] - r_s[n, i, 0]),
                np.abs(t_b[n] - r_b[n, i]).max(-1))
               for i in np.flatnonzero(r_ids[n, :, 0] >= 0)]


def detection_agreement(ref, test, score_tol: float = 0.01,
                        box_tol: float = 1.0) -> Tuple[int, int]:
    """How many of ``ref``'s detections ``test`` reproduces.

    A valid ref row is reproduced when an unused valid test row of the same image has the
    same class, ``|score diff| <= score_tol`` and every box coordinate within ``box_tol``
    pixels (greedy, in ref order).  Returns ``(reproduced, total)``.
    """
    hit = total = 0
    for rows in _row_diffs(ref, test):
        used = set()
        for same, ds, db in rows:
            total += 1
            ok = np.flatnonzero(same & (ds <= score_tol) & (db <= box_tol))
            j = next((int(k) for k in ok if k not in used), None)
            if j is not None:
                used.add(j)
                hit += 1
    return hit, total


def agreement_misses(ref, test, score_tol: float = 0.01, box_tol: float = 1.0,
                     near_px: float = 4.0) -> Dict[str, int]:
    """Why ``ref`` rows are not reproduced by ``test`` (no row is consumed; counts only).

    For each ref row without a same-class test row within both tolerances:
    ``'score'``: a same-class test box within ``box_tol`` px exists, its score is off;
    ``'box'``: a same-class test row within ``score_tol`` exists whose box is off by at most
    ``near_px`` px; ``'absent'``: neither -- the test's NMS kept another of the overlapping
    candidates instead, or the row fell out of the top-P.  ``'absent'`` misses mean the
    numbers of the surviving rows agree and the set of survivors differs.
    """
    out = {"score": 0, "box": 0, "absent": 0}
    for rows in _row_diffs(ref, test):
        for same, ds, db in rows:
            if (same & (ds <= score_tol) & (db <= box_tol)).any():
                continue
            if (same & (db <= box_tol)).any():
                out["score"] += 1
            elif (same & (ds <= score_tol) & (db <= near_px)).any():
                out["box"] += 1
            else:
                out["absent"] += 1
    return out
