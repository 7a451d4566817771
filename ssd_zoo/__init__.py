"""ssd_zoo: SSD detectors in PyTorch with weights converted exactly from Gluon-CV and Caffe.

Public API (re-exports only):
    get_model(name, pretrained=False, weights=None, **overrides) -> SSD
    list_models(pattern='*') -> list of names
    detect(net, images, threshold=0.5) -> detections in original-image pixels
"""
from .detect import detect
from .registry import get_entry, get_model, list_models

__version__ = "0.1.0"
__all__ = ["get_model", "list_models", "get_entry", "detect", "__version__"]
