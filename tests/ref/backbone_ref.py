"""Reference run (in .venv-ref): a gluoncv SSD's feature extractor on real image inputs.

Args (JSON): model (gluoncv SSD name), seed, image (path), sizes ([[H, W], ...]).
Writes into --out:
  structural.params  net.save_parameters (structural names)
  prefixed.params    net.collect_params().save (prefixed names)
  features.npz       x{i}: the (1,3,H,W) input; f{i}_{j}: net.features(x{i})[j]
  info.json          shapes and per-map magnitudes
Weights are random but well-conditioned: He-normal convs, BN gamma in [0.5, 1.5] (never
1, so fix_gamma mistakes show), beta/mean in [-0.2, 0.2], var in [0.5, 2]; the last layer
of every branch entering a residual add is damped x0.25 (found in the symbol graph) so
that 36-block stages stay within a few orders of magnitude.
"""
import argparse
import json
import os
import warnings

warnings.filterwarnings("ignore")
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from gluoncv import model_zoo  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def randomize(net, rng):
    for name, p in net.collect_params().items():
        shape = p.shape
        if "anchor" in name:
            continue
        if name.endswith("weight") and len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            val = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
        elif name.endswith("bias"):
            val = rng.uniform(-0.1, 0.1, shape)
        elif name.endswith("gamma"):
            val = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("beta", "_mean")):
            val = rng.uniform(-0.2, 0.2, shape)
        elif name.endswith("_var"):
            val = rng.uniform(0.5, 2.0, shape)
        else:
            raise RuntimeError(f"unexpected parameter {name} {shape}")
        p.set_data(mx.nd.array(val.astype(np.float32)))


def damp_residual_branches(net, factor=0.25):
    """Scale the last conv weight / BN gamma of every branch entering an elementwise add
    (residual body and shortcut), so deep residual stacks neither explode nor vanish."""
    sym = net.features(mx.sym.var("data"))
    if isinstance(sym, (list, tuple)):
        sym = mx.sym.Group(list(sym))
    nodes = json.loads(sym.tojson())["nodes"]
    params = net.collect_params()
    scaled = []
    for node in nodes:
        if node["op"] not in ("elemwise_add", "_plus", "broadcast_add", "_Plus"):
            continue
        for src, _, _ in node["inputs"]:
            prod = nodes[src]
            if prod["op"] not in ("Convolution", "BatchNorm"):
                continue
            arg = nodes[prod["inputs"][1][0]]["name"]  # weight or gamma
            p = params[arg]
            p.set_data(p.data() * factor)
            scaled.append(arg)
    return scaled


def load_input(path, h, w):
    img = mx.image.imread(path)  # RGB uint8
    img = mx.image.imresize(img, w, h, interp=1).asnumpy().astype(np.float32)
    x = (img / 255.0 - MEAN) / STD
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--args", required=True)
    a = json.loads(ap.parse_args().args)
    out = ap.parse_args().out
    mx.random.seed(a["seed"])
    rng = np.random.RandomState(a["seed"])
    net = model_zoo.get_model(a["model"], pretrained=False, pretrained_base=False)
    net.initialize()
    h0, w0 = a["sizes"][0]
    net(mx.nd.zeros((1, 3, h0, w0)))  # finish deferred initialization
    randomize(net, rng)
    scaled = damp_residual_branches(net)
    net.save_parameters(os.path.join(out, "structural.params"))
    net.collect_params().save(os.path.join(out, "prefixed.params"))
    arrays, info = {}, []
    for i, (h, w) in enumerate(a["sizes"]):
        x = load_input(a["image"], h, w)
        feats = net.features(mx.nd.array(x))
        arrays[f"x{i}"] = x
        for j, f in enumerate(feats):
            arrays[f"f{i}_{j}"] = f.asnumpy()
        info.append([[list(f.shape), float(np.abs(f.asnumpy()).max())] for f in feats])
    np.savez(os.path.join(out, "features.npz"), **arrays)
    with open(os.path.join(out, "info.json"), "w") as fh:
        json.dump({"maps": info, "damped": len(scaled)}, fh)


if __name__ == "__main__":
    main()
