"""Every PriorBox / DetectionOutput option on small random-weight SSDs, against OpenCV."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ssd_zoo.caffe import load_caffe
from tests.test_caffe_util import (compare_detections, opencv_forward, random_image,
                                   run_torch, ssd_prototxt, write_net)

DET = ("nms_param {{ nms_threshold: {nms} top_k: {top_k} }} code_type: {code} "
       "keep_top_k: {keep} confidence_threshold: {thr} {extra}")


def det(nms=0.45, top_k=100, code="CENTER_SIZE", keep=50, thr=0.2, extra=""):
    return DET.format(nms=nms, top_k=top_k, code=code, keep=keep, thr=thr, extra=extra)


# (id, input h, w, prior_box_param of the two heads, extra ssd_prototxt kwargs)
PRIOR_CASES = [
    ("several_min_max_flip_step", 64, 64,
     ("min_size: 10 min_size: 20 max_size: 18 max_size: 30 aspect_ratio: 2 aspect_ratio: 3 "
      "flip: true clip: false step: 2 offset: 0.5 variance: 0.1 variance: 0.1 "
      "variance: 0.2 variance: 0.2",
      "min_size: 30 max_size: 50 aspect_ratio: 2 flip: true clip: false step: 4 "
      "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2"), {}),
    ("no_flip_clip_derived_step_nonsquare", 48, 80,
     ("min_size: 12 aspect_ratio: 2 aspect_ratio: 0.3 flip: false clip: true variance: 0.2",
      "min_size: 24 max_size: 40 aspect_ratio: 3 flip: false clip: true variance: 0.15"), {}),
    ("step_hw_offset_custom_variance_dup_ratios", 56, 72,
     ("min_size: 14 aspect_ratio: 2 aspect_ratio: 2 aspect_ratio: 1 flip: true clip: false "
      "step_h: 1.75 step_w: 2.25 offset: 0.3 variance: 0.2 variance: 0.15 variance: 0.3 "
      "variance: 0.25",
      "min_size: 20 max_size: 36 clip: false step_h: 4 step_w: 5 offset: 0.7 "
      "variance: 0.05"), {}),
    ("img_size", 64, 64,
     ("min_size: 16 max_size: 24 aspect_ratio: 2 clip: false img_size: 64 variance: 0.1",
      "min_size: 32 clip: true img_size: 64 offset: 0.25 variance: 0.1"), {}),
    ("img_h_img_w_nonsquare", 40, 96,
     ("min_size: 10 aspect_ratio: 3 flip: true clip: false img_h: 40 img_w: 96 "
      "variance: 0.1",
      "min_size: 22 max_size: 33 clip: false img_h: 40 img_w: 96 step_h: 4 step_w: 4 "
      "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2"), {}),
]
PRIOR_DEFAULT = ("min_size: 12 max_size: 24 aspect_ratio: 2 clip: false variance: 0.1 "
                 "variance: 0.1 variance: 0.2 variance: 0.2",
                 "min_size: 28 aspect_ratio: 2 aspect_ratio: 3 clip: false variance: 0.1 "
                 "variance: 0.1 variance: 0.2 variance: 0.2")
# (id, h, w, detection_output_param text, extra ssd_prototxt kwargs, min ref detections)
DET_CASES = [
    ("share_location_false", 64, 64, det(), dict(share_location=False, n_cls=4), 20),
    ("background_middle_class", 64, 64, det(thr=0.3), dict(n_cls=4, background=2), 20),
    # background -1 with share_location true fails in OpenCV (and Caffe): label -1 is
    # both "shared" and "background" there, so it is tested unshared.
    ("no_background", 64, 64, det(thr=0.4, keep=30),
     dict(n_cls=3, background=-1, share_location=False), 20),
    ("keep_top_k_truncates", 64, 64, det(thr=0.05, keep=7, top_k=40), dict(n_cls=5), 7),
    ("no_top_k_low_nms", 48, 64, det(nms=0.2, top_k=-1, keep=100, thr=0.3), {}, 10),
    ("variance_encoded_in_target", 64, 64,
     det(extra="variance_encoded_in_target: true"), dict(slice_priors=True), 20),
    ("corner_code", 64, 64, det(code="CORNER"), {}, 20),
    ("single_class_keep", 64, 80, det(keep=12, thr=0.1), dict(n_cls=2), 12),
    ("batch_of_two", 64, 64, det(keep=20), dict(batch=2), 20),
    ("nothing_passes", 64, 64, det(thr=1.0, keep=15), {}, 0),
]


def _run(tmp_path, h, w, text, batch=1, seed=0):
    proto, model = write_net(tmp_path, text, seed=seed)
    x = random_image(h, w, batch, seed=seed)
    ref = opencv_forward(proto, model, x, ["detection_out"])[0]
    net = load_caffe(proto, model).eval()
    return run_torch(net, x, ["detection_out"])[0], ref


@pytest.mark.parity
@pytest.mark.parametrize("case", PRIOR_CASES, ids=[c[0] for c in PRIOR_CASES])
def test_prior_box_options_match_opencv(tmp_path, case):
    _, h, w, priors, kw = case
    text = ssd_prototxt(h, w, priors=priors, det=det(), **kw)
    proto, model = write_net(tmp_path, text)
    x = random_image(h, w)
    names = ["h0_prior", "h1_prior", "detection_out"]
    refs = opencv_forward(proto, model, x, names)
    net = load_caffe(proto, model).eval()
    outs = run_torch(net, x, names)
    for name, r, o in zip(names[:2], refs, outs):
        assert r.shape == o.shape, name
        np.testing.assert_allclose(o, r, atol=1e-6, rtol=0, err_msg=name)
    assert (refs[2][0, 0, :, 2] > 0).sum() >= 20  # thresholds and NMS really exercised
    compare_detections(outs[2], refs[2])


@pytest.mark.parity
@pytest.mark.parametrize("case", DET_CASES, ids=[c[0] for c in DET_CASES])
def test_detection_output_options_match_opencv(tmp_path, case):
    _, h, w, det_text, kw, min_dets = case
    text = ssd_prototxt(h, w, priors=PRIOR_DEFAULT, det=det_text, **kw)
    ours, ref = _run(tmp_path, h, w, text, batch=kw.get("batch", 1))
    n_ref = int((ref[0, 0, :, 2] > 0).sum())
    assert n_ref >= min_dets
    if min_dets == 0:
        assert n_ref == 0 and not ours.any()  # OpenCV: keep_top_k * N rows, all zero
    compare_detections(ours, ref)


def test_img_size_differing_from_input_follows_caffe():
    """OpenCV ignores img_h/img_w; Caffe normalizes and derives the step with them."""
    from ssd_zoo.caffe.textformat import parse_prototxt
    from ssd_zoo.caffe.ssd_layers import PriorBox

    spec = parse_prototxt('prior_box_param { min_size: 10 img_h: 100 img_w: 200 '
                          'clip: false }')
    layer = PriorBox(spec, [], "test")
    out = layer(torch.zeros(1, 1, 2, 4), torch.zeros(1, 3, 50, 50))
    boxes = out[0, 0].view(2, 4, 4)
    # step = (100 / 2, 200 / 4) = (50, 50); first center (25, 25); size 10
    np.testing.assert_allclose(boxes[0, 0].numpy(), [20 / 200, 20 / 100, 30 / 200,
                                                     30 / 100], rtol=1e-6)
    np.testing.assert_allclose(boxes[1, 3].numpy(), [170 / 200, 70 / 100, 180 / 200,
                                                     80 / 100], rtol=1e-6)
    np.testing.assert_allclose(out[0, 1].numpy(), 0.1)  # caffe.proto default variance
