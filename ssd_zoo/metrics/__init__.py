"""Detection metrics: Pascal VOC mAP (Gluon-CV semantics, vectorized) and COCO (pycocotools)."""
from .voc import VOC07MApMetric, VOCMApMetric

__all__ = ["VOC07MApMetric", "VOCMApMetric", "COCODetectionMetric"]


def __getattr__(name):  # pycocotools is an optional dependency ("eval" extra)
    if name == "COCODetectionMetric":
        from .coco import COCODetectionMetric
        return COCODetectionMetric
    raise AttributeError(name)
