"""Reference run (in .venv-ref): mx.image.imresize on real and random uint8 images.

Args (JSON):
  images  [path, ...]          decoded with mx.image.imread (RGB)
  sizes   [[w, h], ...]        target sizes applied to every image
  image_sizes [[[w, h], ...], ...]  optional extra target sizes, one list per image
  random  [[h, w, c, seed], ...] random uint8 images (numpy RandomState(seed).randint)
  rsizes  [[w, h], ...]        target sizes applied to every random image
  interp  int                  interpolation code (2 = bicubic)
Writes into --out:
  resize.npz  src_img{i} / src_rand{i}: the inputs (HxWxC uint8);
              img{i}_{j} / rand{i}_{j}: mx.image.imresize(src, w, h, interp) for the j-th
              size (sizes + image_sizes[i] for images, rsizes for random images)
"""
import argparse
import json
import os
import warnings

warnings.filterwarnings("ignore")
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--args", required=True)
ns = p.parse_args()
a = json.loads(ns.args)
interp = int(a.get("interp", 2))
res = {}


def resize_all(key, src, sizes):
    res["src_" + key] = src
    nd = mx.nd.array(src, dtype=np.uint8)
    for j, (w, h) in enumerate(sizes):
        res["%s_%d" % (key, j)] = mx.image.imresize(nd, int(w), int(h), interp=interp).asnumpy()


extra = a.get("image_sizes") or [[] for _ in a.get("images", [])]
for i, path in enumerate(a.get("images", [])):
    resize_all("img%d" % i, mx.image.imread(path).asnumpy(), a.get("sizes", []) + extra[i])
for i, (h, w, c, seed) in enumerate(a.get("random", [])):
    src = np.random.RandomState(seed).randint(0, 256, size=(h, w, c)).astype(np.uint8)
    resize_all("rand%d" % i, src, a.get("rsizes", []))
np.savez(os.path.join(ns.out, "resize.npz"), **res)
