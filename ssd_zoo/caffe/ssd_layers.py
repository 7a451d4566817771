"""The SSD-specific Caffe layers: Normalize, PriorBox, DetectionOutput.

They reproduce OpenCV dnn (the reference runtime, ``cv2.dnn.readNetFromCaffe``) number for
number.  Where OpenCV departs from Caffe's own proto we follow Caffe and say so:
* PriorBox defaults follow caffe.proto (``clip`` false, ``variance`` 0.1); OpenCV defaults
  ``clip`` to true and refuses a missing ``variance``.
* PriorBox ``img_size`` / ``img_h`` / ``img_w`` replace the image size (normalization and
  derived step) as in Caffe; OpenCV ignores them (identical when they equal the input).
* Box sizes are float as in OpenCV (weiliu89's Caffe truncates min/max_size to int).
"""
from __future__ import annotations

import torch
import torchvision

from .layers import CaffeLayer
from .proto import CaffeFormatError


class Normalize(CaffeLayer):
    """L2 normalization (``norm_param``): across_spatial (default true) normalizes each
    sample by sqrt(sum x^2 + eps) over C,H,W, otherwise each pixel over C; then multiplies
    by blobs[0] (1 value if ``channel_shared``, default true, else C).  eps default 1e-10,
    inside the sqrt as in Caffe and OpenCV."""

    n_blobs = (0, 1)

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("norm_param")
        self.across_spatial = p.flag("across_spatial", True)
        self.eps = p.num("eps", 1e-10)
        if blobs:
            shared = p.flag("channel_shared", True)
            self.blob(0, [1] if shared else [self.blobs[0].numel()], "scale",
                      "norm_param.channel_shared")

    def forward(self, x):
        sq = x * x
        if self.across_spatial:
            norm = torch.sqrt(sq.flatten(1).sum(1) + self.eps).view(-1, *[1] * (x.dim() - 1))
        else:
            norm = torch.sqrt(sq.sum(1, keepdim=True) + self.eps)
        y = x / norm
        if len(self.blobs):
            s = self.blobs[0]
            y = y * (s.reshape(1, -1, *[1] * (x.dim() - 2)) if s.numel() > 1 else s)
        return y


class PriorBox(CaffeLayer):
    """Prior boxes of one feature map: bottoms (feature N,C,h,w; image N,C,H,W) ->
    (1, 2, h*w*K*4): channel 0 the boxes (xmin, ymin, xmax, ymax) normalized by the image
    size, channel 1 their variances.  Order: row h, column w, then per ``min_size``: the
    min square, sqrt(min*max) square (if ``max_size``), one box per aspect ratio (each
    ``aspect_ratio`` != 1 once, then 1/ar when ``flip``).  Centers (w + offset) * step_w;
    step = ``step`` | ``step_w``/``step_h`` | image size / feature size."""

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("prior_box_param")
        f = "prior_box_param"
        self.min_sizes = p.nums("min_size")
        self.max_sizes = p.nums("max_size")
        if not self.min_sizes or any(s <= 0 for s in self.min_sizes):
            raise CaffeFormatError(f"{ctx}: field '{f}.min_size' must be given and positive")
        if self.max_sizes and (len(self.max_sizes) != len(self.min_sizes) or any(
                mx <= mn for mn, mx in zip(self.min_sizes, self.max_sizes))):
            raise CaffeFormatError(f"{ctx}: field '{f}.max_size' needs one value per min_size, "
                                   "each larger than it")
        flip = p.flag("flip", True)
        ratios = []
        for ar in p.nums("aspect_ratio"):
            if abs(ar - 1) < 1e-6 or any(abs(ar - r) < 1e-6 for r in ratios):
                continue
            ratios += [ar, 1.0 / ar] if flip else [ar]
        widths, heights = [], []
        for i, mn in enumerate(self.min_sizes):
            sizes = [(mn, mn)]
            if self.max_sizes:
                s = float(torch.tensor(mn * self.max_sizes[i], dtype=torch.float32).sqrt())
                sizes.append((s, s))
            for ar in ratios:
                r = torch.tensor(ar, dtype=torch.float32).sqrt()
                sizes.append((float(torch.tensor(mn, dtype=torch.float32) * r),
                              float(torch.tensor(mn, dtype=torch.float32) / r)))
            widths += [w for w, _ in sizes]
            heights += [h for _, h in sizes]
        self.register_buffer("box_wh", torch.tensor([widths, heights], dtype=torch.float32),
                             persistent=False)
        self.clip = p.flag("clip", False)
        var = p.nums("variance") or [0.1]
        if len(var) not in (1, 4) or any(v <= 0 for v in var):
            raise CaffeFormatError(f"{ctx}: field '{f}.variance' needs 1 or 4 positive values")
        self.variance = var * 4 if len(var) == 1 else var
        self.img_hw = self._pair(p, "img", int, ctx)
        self.step_hw = self._pair(p, "step", float, ctx)
        self.offset = p.num("offset", 0.5)

    @staticmethod
    def _pair(p, name, kind, ctx):
        """(h, w) from ``name_h``/``name_w`` or ``name``/``name_size``; None when absent."""
        single = "img_size" if name == "img" else name
        if p.has(f"{name}_h") or p.has(f"{name}_w"):
            if p.has(single):
                raise CaffeFormatError(f"{ctx}: give either '{single}' or "
                                       f"'{name}_h'/'{name}_w', not both")
            hw = (p.num(f"{name}_h", 0, kind), p.num(f"{name}_w", 0, kind))
        elif p.has(single):
            hw = (p.num(single, 0, kind),) * 2
        else:
            return None
        if min(hw) <= 0:
            raise CaffeFormatError(f"{ctx}: field 'prior_box_param.{name}*' must be positive")
        return hw

    def forward(self, feature, image):
        h, w = feature.shape[-2:]
        img_h, img_w = self.img_hw or image.shape[-2:]
        f32 = dict(dtype=torch.float32, device=feature.device)
        if self.step_hw is None:  # float division as in Caffe/OpenCV
            step_h = torch.tensor(float(img_h), **f32) / h
            step_w = torch.tensor(float(img_w), **f32) / w
        else:
            step_h, step_w = (torch.tensor(float(s), **f32) for s in self.step_hw)
        cy = (torch.arange(h, **f32) + self.offset) * step_h       # (h,)
        cx = (torch.arange(w, **f32) + self.offset) * step_w       # (w,)
        half_w = self.box_wh[0].to(feature.device) * 0.5           # (K,)
        half_h = self.box_wh[1].to(feature.device) * 0.5
        k = half_w.numel()
        cx = cx.view(1, w, 1).expand(h, w, k)
        cy = cy.view(h, 1, 1).expand(h, w, k)
        boxes = torch.stack([(cx - half_w) / img_w, (cy - half_h) / img_h,
                             (cx + half_w) / img_w, (cy + half_h) / img_h], -1).reshape(-1)
        if self.clip:
            boxes = boxes.clamp(0.0, 1.0)
        var = torch.tensor(self.variance, **f32).repeat(h * w * k)
        return torch.stack([boxes, var]).unsqueeze(0)


class DetectionOutput(CaffeLayer):
    """SSD decoding + per-class NMS, as OpenCV dnn does it.

    Bottoms: loc (N, P*L*4) with L = 1 if share_location else num_classes; conf
    (N, P*num_classes) (probabilities); priors (1, 1 or 2, P*4).  Output (1, 1, K, 7):
    rows [image_id, label, score, xmin, ymin, xmax, ymax] (normalized), per image sorted
    by score (descending), images one after another, zero rows after; K = keep_top_k * N
    (all rows zero when nothing passes), or the number of detections (at least 1) when
    keep_top_k <= 0.

    Per image and class (background_label_id skipped): scores > confidence_threshold,
    best ``top_k`` (stable order), greedy NMS keeping a box when its IoU with every kept
    box is <= nms_threshold; then the best ``keep_top_k`` over all classes.
    """

    def __init__(self, param, blobs, ctx):
        super().__init__(param, blobs, ctx)
        p = param.msg("detection_output_param")
        nms = p.msg("nms_param")
        self.num_classes = p.num("num_classes", None, int)
        if self.num_classes is None:
            raise CaffeFormatError(f"{ctx}: missing field "
                                   "'detection_output_param.num_classes'")
        self.share_location = p.flag("share_location", True)
        self.background = p.num("background_label_id", 0, int)
        self.code_type = p.enum("code_type", ["", "CORNER", "CENTER_SIZE", "CORNER_SIZE"],
                                "CORNER")
        if self.code_type == "CORNER_SIZE":
            raise CaffeFormatError(f"{ctx}: code_type CORNER_SIZE is not supported")
        self.variance_in_target = p.flag("variance_encoded_in_target", False)
        self.keep_top_k = p.num("keep_top_k", -1, int)
        self.threshold = p.num("confidence_threshold", float("-inf"))
        self.nms_threshold = nms.num("nms_threshold", 0.3)
        self.top_k = nms.num("top_k", -1, int)
        self.clip = p.flag("clip", False)
        if nms.num("eta", 1.0) != 1.0:
            raise CaffeFormatError(f"{ctx}: field 'nms_param.eta' != 1 (adaptive NMS) is "
                                   "not supported")

    def decode(self, loc, priors):
        """loc (N, P, L, 4), priors (1, C, P*4) -> boxes (N, P, L, 4), xmin..ymax.
        Mirrors OpenCV's float/double mix (the ``* .5`` terms are double there)."""
        pr = priors[0, 0].view(-1, 4)
        pw, ph = pr[:, 2] - pr[:, 0], pr[:, 3] - pr[:, 1]
        if self.variance_in_target:
            d = loc
        else:
            if priors.shape[1] < 2:
                raise CaffeFormatError(f"{self.ctx}: the priors have no variance channel")
            d = loc * priors[0, 1].view(1, -1, 1, 4)
        if self.code_type == "CORNER":
            out = pr.view(1, -1, 1, 4) + d
        else:
            pw_, ph_ = pw.view(1, -1, 1), ph.view(1, -1, 1)
            pcx = (pr[:, 0].double() + pw.double() * 0.5).float().view(1, -1, 1)
            pcy = (pr[:, 1].double() + ph.double() * 0.5).float().view(1, -1, 1)
            cx = d[..., 0] * pw_ + pcx
            cy = d[..., 1] * ph_ + pcy
            bw = (torch.exp(d[..., 2].double()) * pw_.double()) * 0.5
            bh = (torch.exp(d[..., 3].double()) * ph_.double()) * 0.5
            out = torch.stack([cx - bw, cy - bh, cx + bw, cy + bh], -1).float()
        return out.clamp(0.0, 1.0) if self.clip else out

    def forward(self, loc, conf, priors):
        n, n_cls = loc.shape[0], self.num_classes
        n_loc = 1 if self.share_location else n_cls
        n_pri = priors.shape[2] // 4
        if loc[0].numel() != n_pri * n_loc * 4 or conf[0].numel() != n_pri * n_cls:
            raise CaffeFormatError(
                f"{self.ctx}: {n_pri} priors need loc of {n_pri * n_loc * 4} and conf of "
                f"{n_pri * n_cls} values per image, got {loc[0].numel()} and "
                f"{conf[0].numel()} (fields 'num_classes'/'share_location')")
        boxes = self.decode(loc.reshape(n, n_pri, n_loc, 4).float(), priors.float())
        conf = conf.reshape(n, n_pri, n_cls).float()
        targets = [c for c in range(n_cls) if c != self.background]
        rows = [self._image(i, boxes[i], conf[i], targets) for i in range(n)]
        total = sum(r.shape[0] for r in rows)
        k = self.keep_top_k * n if self.keep_top_k > 0 else max(total, 1)
        out = torch.zeros(k, 7, dtype=torch.float32, device=loc.device)
        if total:
            out[:total] = torch.cat(rows)
        return out.view(1, 1, k, 7)

    def _image(self, i, boxes, conf, targets):
        """Detections of one image: (M, 7) rows sorted by score."""
        found = []
        for c in targets:
            scores = conf[:, c]
            cand = torch.nonzero(scores > self.threshold).flatten()
            if cand.numel() == 0:
                continue
            order = torch.sort(scores[cand], descending=True, stable=True).indices
            if 0 < self.top_k < order.numel():
                order = order[:self.top_k]
            idx = cand[order]
            b = boxes[idx, 0 if self.share_location else c]
            keep = idx[_caffe_nms(b, self.nms_threshold)]
            if len(targets) == 1 and self.keep_top_k > 0:
                keep = keep[:self.keep_top_k]
            kb = boxes[keep, 0 if self.share_location else c]
            col = dict(size=(keep.numel(), 1), device=kb.device)
            found.append(torch.cat([torch.full(fill_value=float(i), **col),
                                    torch.full(fill_value=float(c), **col),
                                    scores[keep, None], kb], 1))
        if not found:
            return torch.zeros(0, 7, device=boxes.device)
        det = torch.cat(found)
        det = det[torch.sort(det[:, 2], descending=True, stable=True).indices]
        return det[:self.keep_top_k] if self.keep_top_k > 0 else det


def _caffe_nms(boxes: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS over ``boxes`` (M, 4) already in priority order -> kept positions.

    torchvision.ops.nms computes IoU exactly like Caffe for proper boxes; Caffe gives a
    box with xmax < xmin or ymax < ymin area 0 and IoU 0 with everything, so such boxes
    are collapsed to a point (IoU 0 / NaN: never suppresses, never suppressed).
    Not batched_nms: its class-offset trick shifts coordinates and so float rounding."""
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bool(bad.any()):
        boxes = torch.where(bad[:, None], boxes[:, [0, 1, 0, 1]], boxes)
    rank = torch.arange(boxes.shape[0], 0, -1, dtype=torch.float32,
                        device=boxes.device)  # equal to our order: no re-sorting
    return torchvision.ops.nms(boxes.contiguous(), rank, threshold)
