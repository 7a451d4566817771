"""Reference VOC reader: build a tiny VOCdevkit tree in OUT, read it with gluoncv.

Runs in .venv-ref.  Writes OUT/VOCdevkit/{VOC2007,VOC2012}/... (real JPEGs + XML) and
OUT/gluoncv.npz with, per dataset index i, ``label_i`` and ``image_i`` from
gluoncv.data.VOCDetection(splits=((2007, 'test'), (2012, 'val'))).
Args: {"seed": int}.
"""
import argparse
import json
import os

import numpy as np
from PIL import Image

XML = """<annotation><folder>{year}</folder><filename>{name}.jpg</filename>
<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objects}
</annotation>"""
OBJ = """<object><name>{cls}</name><pose>Unspecified</pose><truncated>0</truncated>
<difficult>{diff}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>
<ymax>{y2}</ymax></bndbox></object>"""

CLASSES = ['aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
           'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
           'sheep', 'sofa', 'train', 'tvmonitor']


def build(root, rng):
    specs = {2007: ("test", 4), 2012: ("val", 3)}
    for year, (split, n) in specs.items():
        base = os.path.join(root, "VOC%d" % year)
        for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        names = []
        for i in range(n):
            name = "%04d_%06d" % (year, i + 1)
            names.append(name)
            w, h = int(rng.randint(40, 90)), int(rng.randint(40, 90))
            img = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
            Image.fromarray(img).save(os.path.join(base, "JPEGImages", name + ".jpg"),
                                      quality=90)
            objs = []
            k = 0 if i == 1 else int(rng.randint(1, 5))   # image 1: no object
            for _ in range(k):
                x1, y1 = int(rng.randint(1, w // 2)), int(rng.randint(1, h // 2))
                x2, y2 = int(rng.randint(x1 + 1, w + 1)), int(rng.randint(y1 + 1, h + 1))
                cls = CLASSES[rng.randint(len(CLASSES))]
                if rng.rand() < 0.3:
                    cls = " " + cls.upper() + " "            # case / white space
                objs.append(OBJ.format(cls=cls, diff=int(rng.rand() < 0.3),
                                       x1=x1, y1=y1, x2=x2, y2=y2))
            if i == 2:  # partly outside the image: gluoncv warns and drops it
                objs.append(OBJ.format(cls="dog", diff=0, x1=5, y1=5, x2=w + 10, y2=h // 2))
            with open(os.path.join(base, "Annotations", name + ".xml"), "w") as f:
                f.write(XML.format(year=year, name=name, w=w, h=h, objects="".join(objs)))
        with open(os.path.join(base, "ImageSets", "Main", split + ".txt"), "w") as f:
            f.write("\n".join(names) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--args", required=True)
    a = ap.parse_args()
    args = json.loads(a.args)
    root = os.path.join(a.out, "VOCdevkit")
    build(root, np.random.RandomState(args["seed"]))
    from gluoncv.data import VOCDetection
    ds = VOCDetection(root=root, splits=((2007, "test"), (2012, "val")))
    out = {}
    for i in range(len(ds)):
        img, label = ds[i]
        out["image_%d" % i] = img.asnumpy()
        out["label_%d" % i] = np.asarray(label, np.float64).reshape(-1, 6)
    out["n"] = np.array(len(ds))
    np.savez(os.path.join(a.out, "gluoncv.npz"), **out)


if __name__ == "__main__":
    main()
