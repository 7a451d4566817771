"""Backbones: multi-scale feature extractors reproducing Gluon-CV's exactly."""
