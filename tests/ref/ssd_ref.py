"""Reference run of a gluoncv SSD (executed in .venv-ref; never imports torch).

Builds the named gluoncv SSD with well-conditioned random weights, saves them in both
Gluon naming schemes, and records raw head outputs and final detections on real images,
(a) at the square data shape through gluoncv's validation transform (batched) and
(b) through gluoncv's load_test (non-square, one image at a time).
"""
import argparse
import json
import os

import numpy as np
import mxnet as mx
from mxnet import gluon
import gluoncv
from gluoncv.data.transforms.presets.ssd import SSDDefaultValTransform, load_test

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--args", required=True)
a = json.loads(p.parse_args().args)
out = p.parse_args().out
name, seed = a["name"], a.get("seed", 0)
rng = np.random.RandomState(seed)
mx.random.seed(seed)

kw = {"classes": a["classes"]} if a.get("classes") else {}
net = gluoncv.model_zoo.get_model(name, pretrained=False, pretrained_base=False, **kw)
net.initialize()
size = a["size"]
net(mx.nd.zeros((1, 3, size, size)))  # materialize deferred shapes

# 1) well-conditioned random weights: He-normal convs, non-trivial BN (gamma != 1 so a
#    fix_gamma mistake shows), small biases.  Constants (anchors, init_scale) untouched.
params = net.collect_params()
for pname, prm in params.items():
    if prm.grad_req == "null" and ("anchor" in pname or "init_scale" in pname):
        continue
    shape = prm.shape
    if pname.endswith("weight") and len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        val = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
    elif pname.endswith("gamma"):
        val = rng.uniform(0.5, 1.5, shape)
    elif pname.endswith(("beta", "bias")):
        val = rng.normal(0, 0.1, shape)
    elif pname.endswith(("running_mean", "moving_mean")):
        val = rng.normal(0, 0.1, shape)
    elif pname.endswith(("running_var", "moving_var")):
        val = rng.uniform(0.5, 2.0, shape)
    elif "normalize_scale" in pname:
        val = rng.uniform(10, 30, shape)
    else:
        raise SystemExit("unhandled parameter %s %s" % (pname, shape))
    prm.set_data(mx.nd.array(val.astype(np.float32)))


def val_input(path):
    img = mx.image.imread(path)
    x, _ = SSDDefaultValTransform(size, size)(img, np.zeros((1, 6), np.float32))
    return x.expand_dims(0)


images = a["images"]
square = mx.nd.concat(*[val_input(f) for f in images], dim=0)

# 2) calibrate the predictors on the real features so softmax scores are spread (not
#    saturated, not uniform) and box offsets moderate: exercises thresholds and NMS.
feats = net.features(square)
for feat, cp, bp in zip(feats, net.class_predictors, net.box_predictors):
    rms = float(mx.nd.sqrt(mx.nd.mean(feat * feat)).asscalar()) + 1e-12
    for pred, target in ((cp.predictor, a.get("cls_std", 2.0)), (bp.predictor, 0.5)):
        w = pred.weight.data()
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        std = target / (rms * np.sqrt(fan_in))
        pred.weight.set_data(mx.nd.array(rng.normal(0, std, w.shape).astype(np.float32)))
        pred.bias.set_data(mx.nd.array(rng.normal(0, 0.1 * target, pred.bias.shape)
                                       .astype(np.float32)))

net.save_parameters(os.path.join(out, "structural.params"))
net.collect_params().save(os.path.join(out, "prefixed.params"))


def raw(x):
    """The head outputs of SSD.hybrid_forward before decoding (same ops as gluoncv)."""
    F = mx.nd
    feats = net.features(x)
    cls = [F.flatten(F.transpose(cp(f), (0, 2, 3, 1))) for f, cp in zip(feats, net.class_predictors)]
    box = [F.flatten(F.transpose(bp(f), (0, 2, 3, 1))) for f, bp in zip(feats, net.box_predictors)]
    anc = [F.reshape(ag(f), shape=(1, -1)) for f, ag in zip(feats, net.anchor_generators)]
    cls = F.concat(*cls, dim=1).reshape((0, -1, net.num_classes + 1))
    box = F.concat(*box, dim=1).reshape((0, -1, 4))
    anc = F.concat(*anc, dim=1).reshape((-1, 4))
    return cls.asnumpy(), box.asnumpy(), anc.asnumpy()


def record(x, path, **extra):
    cls, box, anc = raw(x)
    ids, scores, bboxes = net(x)
    np.savez(path, x=x.asnumpy(), cls=cls, box=box, anchors=anc, ids=ids.asnumpy(),
             scores=scores.asnumpy(), bboxes=bboxes.asnumpy(), **extra)


net.hybridize(static_alloc=False)  # the deployed (symbolic) path, as users run it
record(square, os.path.join(out, "square.npz"))
for i, f in enumerate(a.get("load_test_images", [])):
    x, img = load_test(f, short=a.get("short", size))
    record(x, os.path.join(out, "load_test_%d.npz" % i), img=img)
with open(os.path.join(out, "meta.json"), "w") as fh:
    json.dump({"gluoncv": gluoncv.__version__, "mxnet": mx.__version__,
               "classes": list(net.classes)}, fh)
