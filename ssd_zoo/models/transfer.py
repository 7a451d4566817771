"""Class-wise weight transfer between SSDs of the same architecture (Gluon's reset_class)."""
from __future__ import annotations

import torch


@torch.no_grad()
def transfer_classes(src, dst) -> dict:
    """Copy all weights of ``src`` into ``dst``; class-predictor rows are copied for the
    background and for every class whose name appears in both, the rest keep ``dst``'s
    fresh initialization.  Returns {dst class index: src class index}.
    """
    mapping = {i: src.classes.index(c) for i, c in enumerate(dst.classes) if c in src.classes}
    own = dst.state_dict()
    for k, v in src.state_dict().items():
        if not k.startswith("class_predictors.") and k in own:
            own[k].copy_(v)
    c_src, c_dst = len(src.classes) + 1, len(dst.classes) + 1
    for ps, pd in zip(src.class_predictors, dst.class_predictors):
        a = pd.out_channels // c_dst
        for attr in ("weight", "bias"):
            ws = getattr(ps, attr).reshape(a, c_src, *getattr(ps, attr).shape[1:])
            wd = getattr(pd, attr).view(a, c_dst, *getattr(pd, attr).shape[1:])
            wd[:, 0] = ws[:, 0]
            for i, j in mapping.items():
                wd[:, i + 1] = ws[:, j + 1]
    return mapping
