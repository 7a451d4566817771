"""torch.hub entry points: ``torch.hub.load(<repo>, 'ssd_300_vgg16_atrous_voc', pretrained=True)``.

One callable per name in ``ssd_zoo.list_models()``, generated from the registry, each
forwarding to ``ssd_zoo.get_model(name, pretrained=pretrained, **kwargs)``.  Names such
as ``ssd_512_mobilenet1.0_voc`` are not Python identifiers but work with torch.hub, which
looks entry points up by string.
"""
dependencies = ["torch", "numpy", "requests", "safetensors", "filelock", "tqdm"]

try:
    import ssd_zoo as _ssd_zoo

    _list_models, _get_model = _ssd_zoo.list_models, _ssd_zoo.get_model
except (ImportError, AttributeError) as _exc:  # registry not there: fail loudly, here
    raise ImportError(
        "hubconf.py: the ssd_zoo model registry is unavailable (need ssd_zoo.list_models "
        f"and ssd_zoo.get_model): {_exc}") from _exc


def _entry_point(name: str):
    def entry(pretrained: bool = False, **kwargs):
        return _get_model(name, pretrained=pretrained, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (f"SSD model ``{name}`` from ssd_zoo; ``pretrained=True`` downloads, "
                     "verifies and caches its weights.  Extra keyword arguments go to "
                     "``ssd_zoo.get_model``.")
    return entry


_names = list(_list_models())
if not _names:
    raise ImportError("hubconf.py: ssd_zoo.list_models() returned no models")
for _name in _names:
    globals()[_name] = _entry_point(_name)
