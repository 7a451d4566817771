"""The backbone contract shared by every SSD feature extractor."""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn


class Backbone(nn.Module):
    """Multi-scale feature extractor.

    ``forward(x)``: x (N,3,H,W) float, RGB normalized Gluon-style ((x/255-mean)/std)
    -> list of feature maps, one per SSD head, largest first.

    Attributes:
        out_channels: channels of each returned feature map.

    ``gluon_key_map()`` gives, for every state_dict key of this module (relative to it),
    the Gluon names the same tensor carries inside an SSD ``.params`` file, after any
    leading ``ssd<N>_`` prefix is removed: the structural name written by
    ``save_parameters`` (``features.stages.0.0.weight``) and the prefixed name written by
    ``collect_params().save`` (``vggatrousextractor0_conv0_weight``).  Subclasses fill
    ``self._gluon_names`` ({key: (name, ...)}) while building their layers.
    """

    out_channels: Tuple[int, ...] = ()

    def __init__(self):
        super().__init__()
        self._gluon_names: Dict[str, Tuple[str, ...]] = {}

    def register_gluon(self, module_path: str, names: Dict[str, str],
                       structural_prefix: str = "features.") -> None:
        """Record Gluon names for the tensors of the sub-module at ``module_path``.

        Args:
            module_path: dotted path of the sub-module inside this backbone.
            names: {tensor attr ('weight', 'running_mean', ...): gluon flat name}.
            structural_prefix: prepended to form the structural name (SymbolBlock-based
                extractors store 'features.<flat name>').  Use ``register_alias``
                where the structural name is not prefix + flat name.
        """
        for attr, flat in names.items():
            key = f"{module_path}.{attr}" if module_path else attr
            self._gluon_names[key] = (structural_prefix + flat, flat)

    def register_alias(self, key: str, *names: str) -> None:
        """Record explicit Gluon names for one state_dict key."""
        self._gluon_names[key] = tuple(names)

    def gluon_key_map(self) -> Dict[str, Tuple[str, ...]]:
        keys = set(self.state_dict().keys())
        keys = {k for k in keys if not k.endswith("num_batches_tracked")}
        missing = keys - set(self._gluon_names)
        extra = set(self._gluon_names) - keys
        if missing or extra:
            raise RuntimeError(f"{type(self).__name__}: gluon names missing for "
                               f"{sorted(missing)[:5]}, unknown keys {sorted(extra)[:5]}")
        return dict(self._gluon_names)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:  # pragma: no cover
        raise NotImplementedError
