"""Caffe SSD import without Caffe: ``load_caffe(prototxt, caffemodel)`` -> nn.Module that
reproduces OpenCV dnn's output (see ``net.CaffeNet``); ``save``/``load`` keep such a
module in one safetensors file (prototxt text in the metadata, blobs as tensors)."""
from .proto import CaffeFormatError, read_caffemodel, write_caffemodel
from .textformat import parse_prototxt
from .net import CaffeNet, LAYER_TYPES
from .serialize import load, load_caffe, save

__all__ = ["load_caffe", "save", "load", "CaffeNet", "CaffeFormatError", "LAYER_TYPES",
           "parse_prototxt", "read_caffemodel", "write_caffemodel"]
