"""Catalog data of the original SSD models (weiliu89/caffe, branch ``ssd``), used by the
``ssd_*_vgg16_caffe_*`` entries of zoo.py (kept here so zoo.py only appends entries).

Weights: the weiliu89 README ("Models") links one Google Drive tarball per model, each
holding ``models/VGGNet/{dataset}/SSD_{size}x{size}/`` with ``deploy.prototxt`` and the
``.caffemodel``.  No checksum is published, so there is NO automatic download
(``sources`` stay empty): the entries record the URLs in ``extra`` and
``get_model(name, pretrained=True)`` explains the manual steps (download, convert with
converters/convert_caffe_ssd.py, ``get_model(name, weights=OUT, sha256=...)``).
Google Drive serves these through a confirmation page, not as plain file URLs.
"""
from __future__ import annotations

from typing import Dict

WEILIU89_README = "https://github.com/weiliu89/caffe/tree/ssd#models"
WEILIU89_LICENSE = "BSD (weiliu89/caffe, see its LICENSE)"
#: preset fields shared by every weiliu89 model (see ssd_zoo/models/caffe_ssd.py):
#: RGB input (conv1_1 flipped from BGR) minus (123, 117, 104) on 0..255 pixels.
CAFFE_PRESET = dict(anchor="caffe", mean=(123 / 255, 117 / 255, 104 / 255),
                    std=(1 / 255,) * 3, nms_thresh=0.45, nms_topk=400, post_nms=200,
                    score_thresh=0.01)
CAFFE_RATIOS_6 = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
CAFFE_RATIOS_7 = ((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,))
# PriorBox min_sizes + last max_size (ssd_pascal.py / ssd_coco.py / *_512.py ratios).
SIZES_300_VOC0712 = (30, 60, 111, 162, 213, 264, 315)
SIZES_300_COCO = (21, 45, 99, 153, 207, 261, 315)
SIZES_512_VOC0712 = (35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6)
SIZES_512_COCO = (20.48, 51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72)
# Google Drive ids from the weiliu89 README, (dataset folder, size) -> (id, iterations).
DRIVE = {
    ("VOC0712", 300): ("0BzKzrI_SkD1_WVVTSmQxU0dVRzA", 120000),
    ("VOC0712", 512): ("0BzKzrI_SkD1_ZDIxVHBEcUNBb2s", 120000),
    ("coco", 300): ("0BzKzrI_SkD1_dUY1Ml9GRTFpUWc", 400000),
    ("coco", 512): ("0BzKzrI_SkD1_dlJpZHJzOXd3MTg", 360000),
}


def weiliu89_extra(name: str, dataset: str, size: int) -> Dict[str, str]:
    """``ModelEntry.extra`` of a weiliu89 model: where its weights are and how to use them."""
    drive_id, iters = DRIVE[(dataset, size)]
    folder = f"models/VGGNet/{dataset}/SSD_{size}x{size}"
    model = f"{folder}/VGG_{dataset}_SSD_{size}x{size}_iter_{iters}.caffemodel"
    archive = f"models_VGGNet_{dataset}_SSD_{size}x{size}.tar.gz"
    url = f"https://drive.google.com/open?id={drive_id}"
    return {
        "converter": "caffe_native", "archive_url": url, "archive": archive,
        "caffemodel": model, "prototxt": f"{folder}/deploy.prototxt", "readme": WEILIU89_README,
        "hash": "none published (verify your download yourself; pass sha256= when loading)",
        "manual_weights": (
            f"its weights are a Google Drive tarball without a published checksum, so they "
            f"are not downloaded automatically: get {archive} from {url} (listed in "
            f"{WEILIU89_README}), extract it, run `python converters/convert_caffe_ssd.py "
            f"--network {name} --prototxt {folder}/deploy.prototxt --caffemodel {model} "
            f"--output {name}.safetensors`, then get_model('{name}', "
            f"weights='{name}.safetensors', sha256=...)"),
    }
