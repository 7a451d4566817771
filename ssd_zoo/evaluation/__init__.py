"""Evaluation of zoo models on VOC / COCO / custom data, reproducing Gluon-CV's eval_ssd.py.

``run(EvalConfig(network=..., dataset=...))`` does what ``eval/eval_ssd.py`` does:

* images go through Gluon-CV's ``SSDDefaultValTransform`` (resize to the data shape,
  normalize) and the ground-truth boxes are scaled to the same frame (float64 product,
  stored as float32, like ``tbbox.resize`` + ``astype(img.dtype)``);
* predicted boxes are clipped to ``[0, data_shape]`` as Gluon-CV does, then fed to the VOC
  metric in the resized frame, or rescaled to the original image size (json width/height)
  for the COCO metric (``COCODetectionMetric(data_shape=...)``);
* under ``torchrun`` every rank evaluates whole batches (batch ``k`` goes to rank
  ``k % world``, no padding duplicates) so each image is inferred in the same batch as in a
  single process, and the metric states are gathered and merged on rank 0: the numbers
  equal the single-process ones exactly.
"""
from .errors import CheckFailed, EvalError
from .runner import EvalConfig, run

__all__ = ["EvalConfig", "run", "EvalError", "CheckFailed"]
