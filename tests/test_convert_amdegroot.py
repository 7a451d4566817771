"""amdegroot/ssd.pytorch SSD300 -> ssd_zoo, against a small reference written in the test
from ssd.pytorch's facts (ssd.py, layers/functions/prior_box.py, detection.py,
layers/box_utils.py, layers/modules/l2norm.py, data/config.py 'voc'); its state_dict has
their exact keys and shapes."""
from itertools import product
from math import sqrt

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ssd_zoo
from converters import convert_amdegroot
from ssd_zoo.convert.amdegroot import NAME, convert_amdegroot_ssd300
from ssd_zoo.convert.gluon import ConversionError
from ssd_zoo.registry import load_state_dict_strict
from tests.test_convert_torchvision import condition

VOC = dict(feature_maps=[38, 19, 10, 5, 3, 1], min_dim=300, steps=[8, 16, 32, 64, 100, 300],
           min_sizes=[30, 60, 111, 162, 213, 264], max_sizes=[60, 111, 162, 213, 264, 315],
           aspect_ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]], variance=[0.1, 0.2])


class RefL2Norm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.full((512,), 20.0))

    def forward(self, x):
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10
        return self.weight.view(1, -1, 1, 1) * torch.div(x, norm)


class RefSSD300(nn.Module):
    """ssd.pytorch's SSD300 ('train' phase outputs: loc (N,P,4), conf (N,P,C))."""

    def __init__(self, num_classes=21):
        super().__init__()
        layers, cin = [], 3
        for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M",
                  512, 512, 512]:
            if v in ("M", "C"):
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=v == "C"))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        layers += [nn.MaxPool2d(3, 1, 1), nn.Conv2d(512, 1024, 3, padding=6, dilation=6),
                   nn.ReLU(inplace=True), nn.Conv2d(1024, 1024, 1), nn.ReLU(inplace=True)]
        self.vgg = nn.ModuleList(layers)
        self.L2Norm = RefL2Norm()
        extras, cin, flag = [], 1024, False
        cfg = [256, "S", 512, 128, "S", 256, 128, 256, 128, 256]
        for k, v in enumerate(cfg):
            if cin != "S":
                if v == "S":
                    extras.append(nn.Conv2d(cin, cfg[k + 1], (1, 3)[flag], 2, 1))
                else:
                    extras.append(nn.Conv2d(cin, v, (1, 3)[flag]))
                flag = not flag
            cin = v
        self.extras = nn.ModuleList(extras)
        chans = [512, 1024] + [e.out_channels for e in extras[1::2]]
        mbox = [4, 6, 6, 6, 4, 4]
        self.loc = nn.ModuleList(nn.Conv2d(c, m * 4, 3, padding=1) for c, m in zip(chans, mbox))
        self.conf = nn.ModuleList(nn.Conv2d(c, m * num_classes, 3, padding=1)
                                  for c, m in zip(chans, mbox))
        self.num_classes = num_classes

    def forward(self, x):
        sources = []
        for k in range(23):
            x = self.vgg[k](x)
        sources.append(self.L2Norm(x))
        for k in range(23, len(self.vgg)):
            x = self.vgg[k](x)
        sources.append(x)
        for k, v in enumerate(self.extras):
            x = F.relu(v(x), inplace=True)
            if k % 2 == 1:
                sources.append(x)
        loc = torch.cat([l(s).permute(0, 2, 3, 1).reshape(s.shape[0], -1)
                         for s, l in zip(sources, self.loc)], 1)
        conf = torch.cat([c(s).permute(0, 2, 3, 1).reshape(s.shape[0], -1)
                          for s, c in zip(sources, self.conf)], 1)
        return loc.view(loc.size(0), -1, 4), conf.view(conf.size(0), -1, self.num_classes)


def ref_priors(cfg=VOC):
    mean = []
    for k, f in enumerate(cfg["feature_maps"]):
        for i, j in product(range(f), repeat=2):
            f_k = cfg["min_dim"] / cfg["steps"][k]
            cx, cy = (j + 0.5) / f_k, (i + 0.5) / f_k
            s_k = cfg["min_sizes"][k] / cfg["min_dim"]
            mean += [cx, cy, s_k, s_k]
            s_k_prime = sqrt(s_k * (cfg["max_sizes"][k] / cfg["min_dim"]))
            mean += [cx, cy, s_k_prime, s_k_prime]
            for ar in cfg["aspect_ratios"][k]:
                mean += [cx, cy, s_k * sqrt(ar), s_k / sqrt(ar)]
                mean += [cx, cy, s_k / sqrt(ar), s_k * sqrt(ar)]
    return torch.Tensor(mean).view(-1, 4).clamp_(max=1, min=0)


def ref_decode(loc, priors, variances=(0.1, 0.2)):
    boxes = torch.cat((priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:],
                       priors[:, 2:] * torch.exp(loc[:, 2:] * variances[1])), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def ref_nms(boxes, scores, overlap=0.45, top_k=200):
    keep = []
    x1, y1, x2, y2 = boxes.unbind(1)
    area = (x2 - x1) * (y2 - y1)
    idx = scores.sort(0)[1][-top_k:]
    while idx.numel() > 0:
        i = idx[-1]
        keep.append(int(i))
        idx = idx[:-1]
        if idx.numel() == 0:
            break
        w = (x2[idx].clamp(max=x2[i]) - x1[idx].clamp(min=x1[i])).clamp(min=0)
        h = (y2[idx].clamp(max=y2[i]) - y1[idx].clamp(min=y1[i])).clamp(min=0)
        inter = w * h
        iou = inter / ((area[idx] - inter) + area[i])
        idx = idx[iou.le(overlap)]
    return torch.tensor(keep, dtype=torch.long)


def ref_detect(loc, conf, priors, top_k=200, conf_thresh=0.01, nms_thresh=0.45):
    """Detect.forward: (N, num_classes, top_k, 5) [score, x1, y1, x2, y2] relative."""
    num, c = loc.shape[0], conf.shape[-1]
    output = torch.zeros(num, c, top_k, 5)
    for i in range(num):
        boxes_all = ref_decode(loc[i], priors)
        for cl in range(1, c):
            mask = conf[i, :, cl] > conf_thresh
            scores, boxes = conf[i, mask, cl], boxes_all[mask]
            if scores.numel() == 0:
                continue
            ids = ref_nms(boxes, scores, nms_thresh, top_k)
            output[i, cl, :len(ids)] = torch.cat((scores[ids, None], boxes[ids]), 1)
    return output


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    ref = RefSSD300().eval()
    condition(ref, seed=3)
    state, key_map = convert_amdegroot_ssd300(ref.state_dict())
    net = ssd_zoo.get_model(NAME)
    load_state_dict_strict(net, state)
    return ref, net.eval(), key_map


def test_key_map(pair):
    ref, net, key_map = pair
    assert set(key_map) == set(ref.state_dict())
    assert sorted(key_map.values()) == sorted(net.state_dict())
    assert key_map["vgg.31.weight"] == "backbone.fc.8.weight"          # fc6
    assert key_map["extras.7.bias"] == "backbone.extras.3.2.bias"      # conv11_2
    assert key_map["L2Norm.weight"] == "backbone.norm.weight"


def test_raw_outputs_priors_boxes_and_detections_match(pair):
    ref, net, _ = pair
    g = torch.Generator().manual_seed(4)
    rgb = torch.rand(1, 3, 300, 300, generator=g) * 255
    x = rgb - torch.tensor([123.0, 117.0, 104.0]).view(1, 3, 1, 1)   # their input
    x_ours = (rgb / 255 - torch.tensor(net.preset.mean).view(1, 3, 1, 1)) \
        / torch.tensor(net.preset.std).view(1, 3, 1, 1)
    assert (x_ours - x).abs().max() < 1e-4   # the preset's normalization is theirs
    with torch.no_grad():
        loc, conf = ref(x)
        cls, box, anchors = net.head_outputs(x)
        ids, scores, bboxes = net(x)
    assert (cls - conf).abs().max() <= 1e-4 and (box - loc).abs().max() <= 1e-4
    priors = ref_priors()
    assert (anchors / 300 - priors).abs().max() <= 1e-6
    decoded = net.box_coder.decode(box, anchors)[0] / 300
    assert (decoded - ref_decode(loc[0], priors)).abs().max() <= 1e-5
    probs = torch.softmax(conf, -1)
    assert probs[..., 1:].max(-1).values.median() < 0.9, "random weights too degenerate"
    out = ref_detect(loc, probs, priors)
    total = 0
    for cl in range(1, 21):
        ref_rows = out[0, cl][out[0, cl, :, 0] > 0]
        mine = ids[0, :, 0] == cl - 1
        assert mine.sum() == len(ref_rows), cl
        total += len(ref_rows)
        assert (scores[0, mine, 0] - ref_rows[:, 0]).abs().max() <= 1e-6
        assert (bboxes[0, mine] / 300 - ref_rows[:, 1:]).abs().max() <= 1e-5
    assert total > 500 and (ids[0, :total, 0] >= 0).all() and (ids[0, total:, 0] == -1).all()


def test_base_network_file(pair):
    """vgg16_reducedfc.pth holds ``ssd_net.vgg``'s state_dict: keys '0.weight' ..."""
    ref, net, _ = pair
    state, key_map = convert_amdegroot_ssd300(ref.vgg.state_dict())
    assert key_map["33.weight"] == "backbone.fc.10.weight"
    full = net.state_dict()
    assert set(state) == {k for k in full if k.startswith(("backbone.body", "backbone.fc"))}
    for k, v in state.items():
        assert torch.equal(v, full[k]), k


def test_bad_checkpoints_and_cli(pair, tmp_path, capsys):
    ref, net, _ = pair
    state = ref.state_dict()
    with pytest.raises(ConversionError, match="missing.*backbone.extras.3.2.weight"):
        convert_amdegroot_ssd300({k: v for k, v in state.items() if k != "extras.7.weight"})
    with pytest.raises(ConversionError, match="unmapped.*extras.8.weight"):
        convert_amdegroot_ssd300(dict(state, **{"extras.8.weight": torch.zeros(1)}))
    with pytest.raises(ConversionError, match="shape"):
        convert_amdegroot_ssd300(dict(state, **{"L2Norm.weight": torch.zeros(256)}))
    with pytest.raises(ConversionError, match="not an ssd.pytorch"):
        convert_amdegroot_ssd300({"model.weight": torch.zeros(1)})
    src, out = tmp_path / "ssd300_mAP_77.43_v2.pth", tmp_path / "o.safetensors"
    torch.save({"module." + k: v for k, v in state.items()}, src)   # DataParallel-saved
    assert convert_amdegroot.main(["--checkpoint", str(src), "--output", str(out)]) == 0
    loaded = ssd_zoo.get_model(NAME, weights=str(out))
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    capsys.readouterr()
    bad = tmp_path / "trunc.pth"
    bad.write_bytes(src.read_bytes()[:500])
    assert convert_amdegroot.main(["--checkpoint", str(bad), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
