"""Detection datasets with Gluon-CV semantics: Pascal VOC (XML) and COCO (json) readers."""
from .voc import VOC_CLASSES, VOCDetection

__all__ = ["VOCDetection", "VOC_CLASSES", "COCODetection"]


def __getattr__(name):  # pycocotools is only needed for COCO
    if name == "COCODetection":
        from .coco import COCODetection
        return COCODetection
    raise AttributeError(name)
