"""Reference run (in .venv-ref): parameter names and shapes of gluoncv ImageNet classifiers
as written by ``save_parameters`` (the ``pretrained_base=True`` files).

Args (JSON): models (gluoncv classifier names), save (the subset to also save as
``{model}.params`` -- the small ones).  Writes names.json: {model: {name: shape}}.
"""
import argparse
import json
import os
import warnings

warnings.filterwarnings("ignore")
import mxnet as mx  # noqa: E402
from gluoncv import model_zoo  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--args", required=True)
    ns = ap.parse_args()
    out = {}
    for name in json.loads(ns.args)["models"]:
        net = model_zoo.get_model(name, pretrained=False)
        net.initialize()
        net(mx.nd.zeros((1, 3, 64, 64)))
        params = net._collect_params_with_prefix()  # the names save_parameters writes
        out[name] = {k: list(v.shape) for k, v in params.items()}
        if name in json.loads(ns.args).get("save", []):
            net.save_parameters(os.path.join(ns.out, name + ".params"))
    with open(os.path.join(ns.out, "names.json"), "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main()
