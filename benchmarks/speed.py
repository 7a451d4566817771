#!/usr/bin/env python
"""Inference speed of ssd_zoo SSDs vs Gluon-CV, torchvision and the machine (issue 8).

    .venv/bin/python benchmarks/speed.py [--models ssd_300_vgg16_atrous_voc] \
        [--batches 1 8] [--repeats 3] [--iters 3] [--threads 2]

Everything is measured in ONE run, in interleaved rounds (each round times every variant
once, so machine load hits all sides alike); each number is the median time per call of a
round, reported as the median and min/max over rounds; ratios are taken per round.
Same weights on both sides: the gluoncv net is built with well-conditioned random weights
and saved to .params by tests/ref/ssd_ref.py (cached, as for the parity tests), and ours
are converted from that file.  Inputs: real images (/work/shared/assets/images) through
the validation transform.  Gluon-CV runs hybridized in .venv-ref (benchmarks/gluon_worker.py)
as a persistent subprocess that sleeps between its turns.

Variants: ours default fp32 (Gluon-exact), fast fp32 (optimize_for_inference: channels_last,
Winograd F(4x4,3x3) / F(6x6,3x3) on the 3x3 convs, pre-filtered NMS; parity-tested),
fast fp32 direct (the same without Winograd), get_model(precision='bf16'), fast bf16;
torchvision ssd300_vgg16(num_classes=21) end to end (its own transform and
post-processing); forward only (backbone + predictors, with and without Winograd) vs the
machine's fp32 matmul rate (the faster of oneDNN's and MKL's on a 2048^3 product; the
direct-conv FLOPs are counted for both forwards, so Winograd can exceed 1.0); decode + NMS
vs mxnet's box_nms.  Writes results/bench/speed-<model>-<cpu capability>.json (atomic).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
#: OpenMP threads sleep instead of spinning when idle, in this process and the Gluon worker:
#: with spinning, whichever side ran last keeps ~40 % of a core busy during the other's
#: turn (seen with the mxnet worker), which skews interleaved timings.
IDLE_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
for _k, _v in IDLE_ENV.items():
    os.environ.setdefault(_k, _v)   # before torch is imported (in main)

FLOPS = {"ssd_300_vgg16_atrous": 62.75e9}   # per image at 21 classes (FIELD_NOTES §4)
GOALS = {  # ratio name -> (goal, "<=" or ">=")
    "fp32 e2e / gluoncv": (1.0, "<="),
    "fp32 e2e / torchvision": (0.6, "<="),
    "fp32 forward / matmul rate": (0.9, ">="),
    "decode+NMS / mxnet box_nms": (0.5, "<="),
    "bf16 e2e / gluoncv fp32": (0.55, "<="),
    "bf16 agreement": (0.95, ">="),
}


def timed(fn, iters):
    fn()
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


class GluonWorker:
    """The persistent .venv-ref subprocess (benchmarks/gluon_worker.py)."""

    def __init__(self, ref_python, name, params, inputs, threads):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MXNET_CPU_WORKER_NTHREADS="1",
                   PYTHONWARNINGS="ignore", **IDLE_ENV)
        self.proc = subprocess.Popen(
            [str(ref_python), str(ROOT / "benchmarks" / "gluon_worker.py"), "--name", name,
             "--params", str(params), "--inputs", str(inputs)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def ask(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("gluon worker died:\n" + self.proc.stderr.read()[-3000:])
        return statistics.median(json.loads(line)["seconds"])

    def close(self):
        try:
            self.ask(op="quit")
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.proc.wait(timeout=30)


def matmul_rate(n=2048, iters=5):
    """GFLOP/s of an n^3 fp32 matmul: the faster of oneDNN (mkldnn_linear) and MKL
    (torch.mm); on AMD CPUs without AVX-512 oneDNN's is the slower one by ~2x."""
    import torch
    a = torch.randn(n, n)
    w = torch.randn(n, n)
    am, wm = a.to_mkldnn(), w.to_mkldnn()
    t = min(timed(lambda: torch._C._nn.mkldnn_linear(am, wm, None), iters),
            timed(lambda: torch.mm(a, w), iters))
    return 2 * n ** 3 / t / 1e9


def prepare(name, ref_python):
    """(structural .params path, square.npz path) for `name` via tests/ref/ssd_ref.py."""
    from tests.refrun import run_ref
    import ssd_zoo
    entry = ssd_zoo.registry.get_entry(name)
    images = sorted((ROOT / ".." / "shared" / "assets" / "images").resolve().glob("*.*"))
    size = entry.preset.base_size
    lt = [str(p) for p in images if p.name in ("000001.jpg", "astronaut.png")]
    args = {"name": name, "seed": 0, "size": size, "images": [str(p) for p in images],
            "load_test_images": lt, "short": size}   # same args as the parity test: cached
    out = run_ref(ref_python, "ssd_ref.py", args)
    return out / "structural.params", out / "square.npz"


def build_variants(name, params, x_all):
    """{variant: callable(x)} of our models, plus the nets for agreement checks."""
    import ssd_zoo
    from ssd_zoo.convert.gluon import convert_gluon_params
    from ssd_zoo.fast import optimize_for_inference
    from ssd_zoo.registry import load_state_dict_strict
    nets = {}
    for prec in ("fp32", "bf16"):
        net = ssd_zoo.get_model(name, precision=prec)
        load_state_dict_strict(net, convert_gluon_params(params, net)[0])
        nets[prec] = net
    fp32 = nets["fp32"]
    fast = {"fast fp32": optimize_for_inference(fp32, "fp32"),
            "fast fp32 direct": optimize_for_inference(fp32, "fp32", winograd=False),
            "fast bf16": optimize_for_inference(fp32, "bf16")}
    variants = {"default fp32": fp32, **fast, "get_model bf16": nets["bf16"]}
    return variants, fast


def agreement(variants, x):
    """({variant: (reproduced, total)}, {variant: miss breakdown}) vs default fp32."""
    import torch
    from ssd_zoo.metrics.agreement import agreement_misses, detection_agreement
    keys = ("get_model bf16", "fast bf16", "fast fp32", "fast fp32 direct")
    with torch.no_grad():
        ref = variants["default fp32"](x)
        outs = {k: variants[k](x) for k in keys}
    return ({k: detection_agreement(ref, o) for k, o in outs.items()},
            {k: agreement_misses(ref, o) for k, o in outs.items()})


def print_agreement(agree, misses):
    print("  agreement with default fp32 top-100 (same class, score +-0.01, box +-1 px): "
          + ", ".join(f"{k} {h}/{n} = {h / n:.1%}" for k, (h, n) in agree.items()))
    print("  misses by cause (score: box matches, score off; box: off by 1-4 px; absent: "
          "NMS kept another overlapping candidate or rank > 100): "
          + ", ".join(f"{k} {m}" for k, m in misses.items() if sum(m.values())))


def arch_of(name):
    """'ssd_300_vgg16_atrous_voc' -> 'ssd_300_vgg16_atrous' (the key of FLOPS)."""
    return name.rsplit("_", 1)[0]


def record_path(args, name, torch):
    """results/bench/speed-<model>-<cpu capability>.json"""
    return Path(args.out) / f"speed-{name}-{torch.backends.cpu.get_cpu_capability().lower()}.json"


def agreement_only(name, args, ref_python, np, torch):
    """--agreement-only: no timing; updates the agreement of an existing record."""
    params, inputs = prepare(name, ref_python)
    x_all = torch.from_numpy(np.load(inputs)["x"])
    variants, _ = build_variants(name, params, x_all)
    agree, misses = agreement(variants, x_all)
    print(f"\n== {name}")
    print_agreement(agree, misses)
    path = record_path(args, name, torch)
    if path.exists():
        rec = json.loads(path.read_text())
        rec.update(agreement=agree, agreement_misses=misses)
        rec["ratios"] = ratios(rec["rounds"], FLOPS.get(arch_of(name)), agree)
        write_json(path, rec)


def summarize(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def cuda_section(name, params, x_all, iters):
    """The CUDA path (AMP, pinned memory, non_blocking copies); skipped without a GPU."""
    import torch
    if not torch.cuda.is_available():
        print("CUDA: no CUDA device available: CUDA benchmarks skipped")
        return {"skipped": "no CUDA device"}
    import ssd_zoo
    from ssd_zoo.convert.gluon import convert_gluon_params
    from ssd_zoo.registry import load_state_dict_strict
    out = {}
    net = ssd_zoo.get_model(name)
    load_state_dict_strict(net, convert_gluon_params(params, net)[0])
    net = net.cuda().to(memory_format=torch.channels_last)
    for batch in (1, 8):
        host = x_all[:batch].contiguous().pin_memory()
        for prec, dtype in (("fp32", None), ("amp fp16", torch.float16),
                            ("amp bf16", torch.bfloat16)):
            def run():
                x = host.to("cuda", non_blocking=True).contiguous(
                    memory_format=torch.channels_last)
                with torch.no_grad(), torch.autocast("cuda", dtype=dtype or torch.float16,
                                                     enabled=dtype is not None):
                    res = net(x)
                torch.cuda.synchronize()
                return res
            out[f"{prec} b{batch}"] = timed(run, iters)
            print(f"CUDA {prec:9s} batch {batch}: {out[f'{prec} b{batch}'] * 1e3:8.1f} ms")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["ssd_300_vgg16_atrous_voc"])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (>= 3)")
    p.add_argument("--iters", type=int, default=3, help="timed calls per variant per round")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-gluon", action="store_true")
    p.add_argument("--no-torchvision", action="store_true")
    p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                   help="time the bf16 variants (auto: only where bf16 is native; emulated "
                   "bf16 is ~8x slower than fp32 and would dominate the run)")
    p.add_argument("--agreement-only", action="store_true",
                   help="only the bf16/fp32 detection agreement (no timing); updates the "
                   "agreement of an existing results/bench record of the same CPU kind")
    p.add_argument("--out", default=str(ROOT / "results" / "bench"))
    args = p.parse_args(argv)
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    ref_python = ROOT / ".venv-ref" / "bin" / "python"
    if not ref_python.exists() and not args.no_gluon:
        print(f"error: {ref_python} missing (make setup-ref), or pass --no-gluon",
              file=sys.stderr)
        return 2
    from ssd_zoo.fast import bf16_is_native
    print(f"torch {torch.__version__}, {args.threads} threads, "
          f"loadavg at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, CPU "
          f"capability {torch.backends.cpu.get_cpu_capability()}, native bf16: "
          f"{'yes' if bf16_is_native() else 'NO (AVX512-BF16/AMX missing: bf16 is emulated)'}")
    args.time_bf16 = args.bf16 == "on" or (args.bf16 == "auto" and bf16_is_native())
    if not args.time_bf16:
        print("bf16 variants: agreement measured, timing skipped (--bf16 on to force)")
    for name in args.models:
        (agreement_only if args.agreement_only else run_model)(name, args, ref_python, np,
                                                                torch)
    return 0


def run_model(name, args, ref_python, np, torch):
    from ssd_zoo.fast import FastPostProcessor, bf16_is_native
    params, inputs = prepare(name, ref_python)
    data = np.load(inputs)
    x_all = torch.from_numpy(data["x"])
    raw = [torch.from_numpy(data[k][:1]) for k in ("cls", "box")] + \
        [torch.from_numpy(data["anchors"])]
    variants, fast = build_variants(name, params, x_all)
    post = FastPostProcessor.like(variants["default fp32"])
    default_post = variants["default fp32"]
    arch = arch_of(name)
    flops = FLOPS.get(arch)
    tv = None
    if not args.no_torchvision and arch == "ssd_300_vgg16_atrous":
        from torchvision.models.detection import ssd300_vgg16
        from ssd_zoo.convert.to_torchvision import gluon_vgg300_to_torchvision
        tv = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21).eval()
        # the same weights as ours (random ones would let every class pass torchvision's
        # 0.01 score threshold and inflate its NMS time)
        tv.load_state_dict(gluon_vgg300_to_torchvision(variants["default fp32"].state_dict())[0])
    gluon = None if args.no_gluon else GluonWorker(ref_python, name, params, inputs,
                                                   args.threads)
    xs = {b: torch.cat([x_all] * -(-b // len(x_all)))[:b].contiguous() for b in args.batches}
    # the same images for torchvision: undo Gluon's normalization -> RGB in [0, 1]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    tv_in = {b: list((xs[b] * std + mean).clamp(0, 1)) for b in args.batches}
    rounds = []
    print(f"\n== {name}: {args.repeats} interleaved rounds x {args.iters} calls")
    for r in range(args.repeats):
        t = {"loadavg": os.getloadavg()[0]}
        with torch.no_grad():
            t["matmul GFLOP/s"] = matmul_rate()
            for b in args.batches:
                for k, m in variants.items():
                    if b > 1 and k in ("fast fp32 direct", "get_model bf16"):
                        continue  # keep batch-8 rounds short on a shared machine
                    if "bf16" in k and not args.time_bf16:
                        continue
                    t[f"{k} b{b}"] = timed(lambda: m(xs[b]), args.iters)
                if gluon:
                    t[f"gluoncv b{b}"] = gluon.ask(op="e2e", batch=b, iters=args.iters)
                if tv is not None:
                    t[f"torchvision b{b}"] = timed(lambda: tv(tv_in[b]), args.iters)
            for k, key in (("fast fp32", "forward fp32 b1"),
                           ("fast fp32 direct", "forward fp32 direct b1")):
                heads = fast[k].heads
                x_cl = xs[1].contiguous(memory_format=torch.channels_last)
                t[key] = timed(lambda: heads(x_cl), args.iters)
            it = max(args.iters, 10)
            t["decode+NMS ours"] = timed(lambda: post(*raw), it)
            t["decode+NMS default"] = timed(lambda: default_post.postprocessor(
                raw[0], default_post.box_coder.decode(raw[1], raw[2])), it)
            if gluon:
                t["box_nms mxnet"] = gluon.ask(op="box_nms", iters=it)
                t["decode+NMS mxnet"] = gluon.ask(op="post", iters=it)
        rounds.append(t)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v * 1e3:.0f}ms" if "GFLOP" not in k
                                               and k != "loadavg" else f"{k} {v:.1f}"
                                               for k, v in t.items()))
    if gluon:
        gluon.close()
    agree, misses = agreement(variants, x_all)
    report(name, args, rounds, agree, misses, flops)
    report_cuda = cuda_section(name, params, x_all, args.iters)
    write_json(record_path(args, name, torch),
               {"model": name, "threads": args.threads, "iters": args.iters,
                "rounds": rounds, "agreement": agree, "agreement_misses": misses,
                "cuda": report_cuda,
                "cpu": {"capability": torch.backends.cpu.get_cpu_capability(),
                        "native_bf16": bf16_is_native()},
                "ratios": ratios(rounds, flops, agree), "torch": torch.__version__})


def ratios(rounds, flops, agree):
    def per_round(fn):
        vals = []
        for t in rounds:
            try:
                vals.append(fn(t))
            except KeyError:
                pass
        return summarize(vals)
    out = {
        "fp32 e2e / gluoncv": per_round(lambda t: t["fast fp32 b1"] / t["gluoncv b1"]),
        "fp32 default e2e / gluoncv": per_round(
            lambda t: t["default fp32 b1"] / t["gluoncv b1"]),
        "fp32 direct (no Winograd) e2e / gluoncv": per_round(
            lambda t: t["fast fp32 direct b1"] / t["gluoncv b1"]),
        "fp32 direct (no Winograd) e2e / torchvision": per_round(
            lambda t: t["fast fp32 direct b1"] / t["torchvision b1"]),
        "fp32 e2e / torchvision": per_round(lambda t: t["fast fp32 b1"] / t["torchvision b1"]),
        "decode+NMS / mxnet box_nms": per_round(
            lambda t: t["decode+NMS ours"] / t["box_nms mxnet"]),
        "decode+NMS / mxnet decode+box_nms": per_round(
            lambda t: t["decode+NMS ours"] / t["decode+NMS mxnet"]),
        "bf16 e2e / gluoncv fp32": per_round(lambda t: t["fast bf16 b1"] / t["gluoncv b1"]),
        "get_model bf16 e2e / gluoncv fp32": per_round(
            lambda t: t["get_model bf16 b1"] / t["gluoncv b1"]),
        "bf16 agreement": summarize([agree["get_model bf16"][0] / agree["get_model bf16"][1],
                                     agree["fast bf16"][0] / agree["fast bf16"][1]]),
    }
    if flops:
        out["fp32 forward / matmul rate"] = per_round(
            lambda t: flops / t["forward fp32 b1"] / 1e9 / t["matmul GFLOP/s"])
        out["fp32 forward direct conv / matmul rate"] = per_round(
            lambda t: flops / t["forward fp32 direct b1"] / 1e9 / t["matmul GFLOP/s"])
    for b in (8,):
        out[f"fp32 e2e / gluoncv (batch {b})"] = per_round(
            lambda t: t[f"fast fp32 b{b}"] / t[f"gluoncv b{b}"])
        out[f"bf16 e2e / gluoncv fp32 (batch {b})"] = per_round(
            lambda t: t[f"fast bf16 b{b}"] / t[f"gluoncv b{b}"])
    return out


def report(name, args, rounds, agree, misses, flops):
    keys = [k for k in rounds[0] if k not in ("loadavg",)]
    print(f"\n{name}: per-call times over {len(rounds)} rounds (median [min, max]); "
          f"loadavg {[round(t['loadavg'], 1) for t in rounds]}")
    for k in keys:
        s = summarize([t.get(k) for t in rounds])
        if s is None:
            continue
        unit, f = ("GFLOP/s", 1.0) if "GFLOP" in k else ("ms", 1e3)
        print(f"  {k:34s} {s['median'] * f:9.1f} [{s['min'] * f:.1f}, {s['max'] * f:.1f}] {unit}")
    print_agreement(agree, misses)
    print(f"\n{name}: ratios vs the goals of issue 8 (median [min, max] over rounds)")
    for k, s in ratios(rounds, flops, agree).items():
        if s is None:
            continue
        goal = GOALS.get(k)
        status = ""
        if goal:
            ok = s["median"] <= goal[0] if goal[1] == "<=" else s["median"] >= goal[0]
            status = f"goal {goal[1]} {goal[0]:<5} {'MET' if ok else 'NOT MET'}"
        print(f"  {k:40s} {s['median']:6.3f} [{s['min']:.3f}, {s['max']:.3f}]  {status}")


def write_json(path: Path, obj) -> None:
    from ssd_zoo.atomic import atomic_write_json
    atomic_write_json(path, obj, default=str)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
