"""SSD training: matching, targets, loss, augmentation, distributed engine (Gluon-CV recipe)."""
from .loss import SSDMultiBoxLoss
from .matcher import match_anchors
from .targets import SSDTargetEncoder

__all__ = ["SSDMultiBoxLoss", "SSDTargetEncoder", "match_anchors"]
