"""Matcher, targets and loss: unit tests and parity with gluoncv's SSDTargetGenerator +
SSDMultiBoxLoss (tests/ref/train_ref.py in .venv-ref)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ssd_zoo.train.loss import SSDMultiBoxLoss, hard_negative_mask
from ssd_zoo.train.matcher import bipartite_match, match_anchors
from ssd_zoo.train.schedule import SSDLRLambda
from ssd_zoo.train.targets import SSDTargetEncoder, pad_labels
from tests.refrun import run_ref


def test_bipartite_every_gt_gets_its_best_free_anchor():
    ious = torch.tensor([[[0.9, 0.8], [0.85, 0.1], [0.2, 0.3]]])   # (1, A=3, M=2)
    m = bipartite_match(ious, torch.tensor([[True, True]]))
    # greedy: (a0, g0) = 0.9 first, then g1's best free anchor is a2 (0.3; a0 taken)
    assert m.tolist() == [[0, -1, 1]]


def test_match_anchors_threshold_ties_and_padding():
    ious = torch.tensor([[[0.9, 0.0, 0.7], [0.6, 0.0, 0.9], [0.4, 0.1, 0.0], [0.9, 0.0, 0.0]]])
    valid = torch.tensor([[True, True, False]])   # third column is padding
    m = match_anchors(ious, valid)
    # a0: bipartite g0; a1: 0.6 >= 0.5 -> g0; a2: bipartite g1 (0.1 is g1's best);
    # a3: ties a0's 0.9 with g0 -> g0 (share_max=False rule); padding never matched
    assert m.tolist() == [[0, 0, 1, 0]]
    assert match_anchors(ious, torch.zeros(1, 3, dtype=torch.bool)).eq(-1).all()
    assert match_anchors(torch.zeros(2, 4, 0), torch.zeros(2, 0, dtype=torch.bool)).eq(-1).all()


def test_hard_negative_mask_takes_three_per_positive():
    ce = torch.tensor([[5.0, 1.0, 4.0, 3.0, 2.0, 0.5, 6.0, 0.1]])
    pos = torch.zeros(1, 8, dtype=torch.bool)
    pos[0, 6] = True
    mask = hard_negative_mask(ce, pos, 3.0)
    assert mask[0].nonzero().flatten().tolist() == [0, 2, 3]


def test_loss_zero_without_positives_and_grad_flows():
    cls = torch.randn(2, 10, 4, requires_grad=True)
    box = torch.randn(2, 10, 4, requires_grad=True)
    total, c, b = SSDMultiBoxLoss()(cls, box, torch.zeros(2, 10, dtype=torch.long),
                                    torch.zeros(2, 10, 4))
    assert total.item() == 0
    total.backward()
    assert cls.grad is not None and cls.grad.abs().sum() == 0


def test_targets_are_batched_and_invariant_to_padding():
    anchors = torch.tensor([[50., 50., 40., 40.], [150., 150., 60., 60.], [100., 50., 40., 80.]])
    enc = SSDTargetEncoder(anchors)
    lab_a = torch.tensor([[30., 30., 70., 70., 2.]])
    lab_b = torch.tensor([[120., 120., 180., 180., 0.], [0., 0., 10., 10., 1.]])
    boxes, ids = pad_labels([lab_a, lab_b])
    cls, box = enc(boxes, ids)
    assert cls.tolist()[0] == [3, 0, 0]
    cls1, box1 = enc(*pad_labels([lab_a]))
    assert torch.equal(cls1[0], cls[0]) and torch.allclose(box1[0], box[0])
    assert torch.allclose(enc.coder.decode(box[0, :1], anchors[:1]), lab_a[:, :4], atol=1e-4)
    assert (box[cls == 0] == 0).all()


def test_lr_schedule_warmup_step_cos():
    f = SSDLRLambda("step", 10, 5, 0.1, (2, 4), warmup_epochs=1, warmup_factor=0.5)
    assert f(0) == 0.5 and f(10) == 1.0 and f(19) == 1.0
    assert f(20) == pytest.approx(0.1) and f(45) == pytest.approx(0.01)
    g = SSDLRLambda("cos", 10, 5)
    assert g(0) == 1.0 and g(25) == pytest.approx(0.5) and g(50) == pytest.approx(0.0)


@pytest.mark.parity
def test_targets_and_loss_match_gluoncv(ref_python):
    out = run_ref(ref_python, "train_ref.py", {"seed": 0, "batch": 6, "anchors": 600,
                                               "classes": 5})
    d = np.load(out / "ref.npz")
    gt = torch.from_numpy(d["gt"])
    enc = SSDTargetEncoder(torch.from_numpy(d["anchors"]))
    ids = gt[..., 4].long()
    cls_t, box_t = enc(gt[..., :4], ids)
    ref_cls = torch.from_numpy(d["cls_targets"]).long()
    assert torch.equal(cls_t, ref_cls)
    pos = ref_cls > 0
    assert torch.allclose(box_t[pos], torch.from_numpy(d["box_targets"])[pos], atol=1e-4)
    total, c, b = SSDMultiBoxLoss()(torch.from_numpy(d["cls_pred"]),
                                    torch.from_numpy(d["box_pred"]), cls_t, box_t)
    # gluon's image without objects gives a NaN box loss (log of a padding box times 0)
    assert c.item() == pytest.approx(float(d["cls_loss"].sum()), rel=1e-5)
    assert b.item() == pytest.approx(float(np.nansum(d["box_loss"])), rel=1e-5)
    assert total.item() == pytest.approx(float(np.nansum(d["sum_loss"])), rel=1e-5)
