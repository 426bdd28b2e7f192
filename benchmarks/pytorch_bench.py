#!/usr/bin/env python3
"""PyTorch's side of the benchmark cases (BENCHMARKS.md), on Strata's weights and inputs.

Reads the JSON lines strata_bench wrote (one per case: case, network, precision, batch and the
safetensors files of its weights, input and output), and for each case:

  1. checks Strata's output against PyTorch's f32 output of the same weights and inputs
     (TF32 off): relative error |a - b| / |b| below 1e-4 for f32, 1e-2 for f16, 3e-2 for bf16
     (BENCHMARKS.md sets no bf16 bound; bf16 rounds 8x coarser than f16), 1e-2 for an f32 case
     Strata ran with TF32 allowed ("tf32": true). A case that fails is written as FAILED, and
     its Strata time is never reported;
  2. times PyTorch in the case's precision, each side in torch.inference_mode():
       pytorch_eager    cudnn.benchmark on; channels_last and .half()/.bfloat16() for 16-bit
       pytorch_graph    the same model captured once in a torch.cuda.CUDAGraph, replayed
       pytorch_compile  torch.compile(mode="reduce-overhead"), within a total compile budget
     with TF32 allowed in PyTorch too (cudnn.allow_tf32, matmul.allow_tf32) for a TF32 case;
     Timing as strata_bench: warm-up (>= 200 ms of GPU work), then `repeats` runs of `iters`
     back-to-back calls between two CUDA events; median, min and max of time per call. The
     inputs sit on the device, in the side's dtype and layout, before timing starts (as
     Strata's sit in its engine's input buffer). Host wall latency: host f32 input to host
     f32 output, synchronised, median over many calls; pageable host memory at both ends, as
     strata_bench gives Strata's Engine::infer.

Writes one JSON line per check and per side to --out-json. `--device cpu --iters 2` is a dry
run on the CPU (eager only, wall-clock timer) for testing this script without a GPU.

Usage: pytorch_bench.py --strata strata.jsonl --out-json pytorch.jsonl [--quick]
                        [--compile-budget-s 240] [--repeats 9] [--device cuda|cpu] [--iters N]
"""

import argparse
import json
import math
import statistics
import struct
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

TOLERANCE = {"f32": 1e-4, "f16": 1e-2, "bf16": 3e-2, "tf32": 1e-2}
DTYPE = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
# torch.compile's budget goes first to the cases BENCHMARKS.md compares with torch.compile.
COMPILE_PRIORITY = [("M2", "f16", 4096, False), ("R2", "f16", 256, False),
                    ("R3", "f16", 256, False), ("M1", "f16", 1, False), ("M1", "f32", 1, False),
                    ("R1", "f16", 1, False), ("R3", "f16", 1, False), ("R2", "f32", 256, True),
                    ("MV2", "f16", 256, False), ("EB0", "f16", 256, False),
                    ("D121", "f16", 256, False), ("MV2", "f16", 1, False),
                    ("EB0", "f16", 1, False), ("D121", "f16", 1, False), ("UN", "f16", 256, False),
                    ("UN", "f16", 1, False)]


# --- files -----------------------------------------------------------------------------------

_ST_DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
              "F64": (torch.float64, 8), "I64": (torch.int64, 8), "I32": (torch.int32, 4)}


def load_safetensors(path):
    """A safetensors file as {name: CPU tensor}: safetensors.torch when installed, else a
    minimal reader of the format (8-byte little-endian header length, JSON header, data)."""
    try:
        from safetensors.torch import load_file
        return load_file(str(path))
    except ImportError:
        pass
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        dtype, size = _ST_DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        raw = bytearray(data[8 + n + begin:8 + n + end])
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# --- models ----------------------------------------------------------------------------------

def mnist_cnn():
    """The canonical MNIST CNN as the flat nn.Sequential of examples/mnist/train.py."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))


def unet_module():
    """tests/torchvision/unet.py's UNet class (imported once)."""
    path = str(Path(__file__).resolve().parent.parent / "tests" / "torchvision")
    if path not in sys.path:
        sys.path.insert(0, path)
    from unet import UNet
    return UNet


def build_model(network, weights_path):
    """The network in eval mode, f32, on the CPU, with Strata's weights (strict load)."""
    if network == "mnist_cnn":
        model = mnist_cnn()
    elif network == "unet":  # the nn.Module strata::models::unet is declared after
        model = unet_module()(classes=2, width=16)
    else:
        import torchvision
        model = getattr(torchvision.models, network)(weights=None)
    state = load_safetensors(weights_path)
    model.load_state_dict(state, strict=True)
    return model.eval()


def memory_format(precision, tf32=False):
    """NCHW for f32 (PyTorch's default), channels_last for 16-bit and for f32 with TF32 on (tensor
    cores; cuDNN's TF32 kernels are NHWC ones, as Strata's tf32 engine stores its tensors)."""
    return torch.contiguous_format if precision == "f32" and not tf32 else torch.channels_last


def as_side(model, x, precision, device, tf32=False):
    """Model and input on `device` in the precision's dtype and memory format."""
    fmt = memory_format(precision, tf32)
    m = model.to(device=device, dtype=DTYPE[precision], memory_format=fmt)
    return m, x.to(device=device, dtype=DTYPE[precision]).contiguous(memory_format=fmt)


def rel_err(a, b):
    a = a.detach().double().reshape(-1).cpu()
    b = b.detach().double().reshape(-1).cpu()
    if a.numel() != b.numel():
        return float("inf")
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


# --- timing ----------------------------------------------------------------------------------

def time_calls(call, args, device):
    """Median, min and max time per call(), in microseconds, as strata_bench measures it."""
    def run(n):
        if device == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            stop = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(n):
                call()
            stop.record()
            stop.synchronize()
            return start.elapsed_time(stop)
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - t0) * 1e3

    warm_ms, warm_calls, n, per_call = 0.0, 0, 1, 0.0
    warmup_ms = args.warmup_ms if args.iters == 0 else 0.0
    while True:
        ms = run(n)
        warm_ms += ms
        warm_calls += n
        per_call = ms / n
        if (warm_ms >= warmup_ms and warm_calls >= 10) or (args.iters and warm_calls >= 2):
            break
        n = min(n * 2, 1 << 14)
    iters = args.iters or int(min(max(math.ceil(args.target_ms / max(per_call, 1e-6)), 3), 100000))
    us = sorted(run(iters) * 1e3 / iters for _ in range(args.repeats))
    return {"median_us": statistics.median(us), "min_us": us[0], "max_us": us[-1],
            "iters": iters, "repeats": args.repeats}


def host_wall(call, device, budget_s=0.3, min_calls=10, max_calls=2000):
    """Median wall-clock microseconds of call() (host input to host output, synchronised)."""
    for _ in range(3):
        call()
    walls = []
    total = 0.0
    while len(walls) < min_calls or (len(walls) < max_calls and total < budget_s):
        t0 = time.perf_counter()
        call()
        if device == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - t0)
        total += walls[-1]
    return statistics.median(walls) * 1e6


# --- the sides: each returns (timing, host wall us or None, its f32 output on the host) ----

def to_device_input(x_host, like):
    """A host f32 batch as `like`'s device, dtype and memory format (part of host wall time)."""
    fmt = torch.channels_last if like.dim() == 4 and not like.is_contiguous() \
        else torch.contiguous_format
    return x_host.to(like.device, non_blocking=True).to(like.dtype).contiguous(memory_format=fmt)


def side_eager(model, x_dev, x_host, args):
    def wall():
        return model(to_device_input(x_host, x_dev)).float().cpu()

    timing = time_calls(lambda: model(x_dev), args, args.device)
    return timing, host_wall(wall, args.device) if args.wall else None, model(x_dev).float().cpu()


def side_graph(model, x_dev, x_host, args):
    static_in = x_dev.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture (cuDNN's choices, allocations)
        for _ in range(3):
            model(static_in)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = model(static_in)
    out_host = torch.empty(static_out.shape, dtype=torch.float32)  # pageable, as Strata's

    def wall():
        static_in.copy_(x_host, non_blocking=True)
        graph.replay()
        out_host.copy_(static_out, non_blocking=True)

    timing = time_calls(graph.replay, args, args.device)
    wall_us = host_wall(wall, args.device) if args.wall else None
    static_in.copy_(x_dev)
    graph.replay()
    return timing, wall_us, static_out.float().cpu()


def side_compile(model, x_dev, x_host, args):
    """torch.compile(mode="reduce-overhead"); also returns the seconds its first calls took."""
    torch._dynamo.reset()
    compiled = torch.compile(model, mode="reduce-overhead", dynamic=False)
    t0 = time.perf_counter()
    for _ in range(3):  # compile, record the CUDA graph, replay once
        out = compiled(x_dev)
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - t0
    out = out.float().cpu()

    def wall():
        return compiled(to_device_input(x_host, x_dev)).float().cpu()

    timing = time_calls(lambda: compiled(x_dev), args, args.device)
    return timing, host_wall(wall, args.device) if args.wall else None, out, compile_s


# --- driver ----------------------------------------------------------------------------------

class Writer:
    def __init__(self, path, base):
        self.path = path
        self.base = base
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, **fields):
        line = json.dumps({**self.base, **fields})
        print(line, flush=True)
        if self.path:
            with open(self.path, "a") as f:
                f.write(line + "\n")


def case_key(c):
    return (c["case"], c["precision"], int(c["batch"]), bool(c.get("tf32")))


def case_fields(c):
    return dict(case=c["case"], network=c.get("network"), precision=c["precision"],
                batch=c["batch"], tf32=bool(c.get("tf32")))


def set_tf32(on):
    """TF32 tensor-core math for f32 convolutions and matmuls: on only for the timing of a case
    Strata ran with TF32 allowed (--tf32); references are always computed with it off."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def prepare(c, device):
    """The case's model (f32, CPU), its host input, and PyTorch's f32 reference output."""
    set_tf32(False)
    model = build_model(c["network"], c["weights"])
    x = load_safetensors(c["input"])["input"].float()
    with torch.inference_mode():
        ref_model, x_ref = as_side(model, x, "f32", device)
        ref = ref_model(x_ref).float().cpu()
    return model, x, ref


def timing_line(emit, c, side, timing, wall, out, ref, **extra):
    emit(kind="timing", side=side, status="ok", **case_fields(c), **timing, host_wall_us=wall,
         images_per_s=c["batch"] * 1e6 / timing["median_us"], rel_err_vs_f32=rel_err(out, ref),
         **extra)


def check_and_time(c, args, emit):
    """Pass 1 for one case: the accuracy check, then the eager and CUDA graph sides.
    Returns True when Strata's output passed the check."""
    device = args.device
    has_output = c.get("status") != "ERROR" and c.get("output") and Path(c["output"]).exists()
    if not has_output:
        emit(kind="check", status="ERROR", **case_fields(c),
             error="strata_bench gave no output: " + str(c.get("error", c.get("status"))))
    if not all(c.get(k) and Path(c[k]).exists() for k in ("weights", "input")):
        return False
    model, x, ref = prepare(c, device)
    strata_ok = False
    if has_output:
        strata_out = load_safetensors(c["output"])["output"].float()
        err = rel_err(strata_out, ref)
        tol = TOLERANCE["tf32" if c.get("tf32") else c["precision"]]
        strata_ok = err < tol  # a NaN fails too
        emit(kind="check", status="ok" if strata_ok else "FAILED", **case_fields(c), rel_err=err,
             tolerance=tol, reference="pytorch f32 eager, TF32 off",
             nonfinite_outputs=int((~torch.isfinite(strata_out)).sum()))
    set_tf32(bool(c.get("tf32")))
    model, x_dev = as_side(model, x, c["precision"], device, bool(c.get("tf32")))
    x_host = x  # pageable host memory, as strata_bench gives Engine::infer (a std::vector)
    timer = "cuda events" if device == "cuda" else "wall clock (cpu dry run)"
    for side, run in [("eager", side_eager)] + ([("graph", side_graph)] if device == "cuda" else []):
        try:
            with torch.inference_mode():
                timing, wall, out = run(model, x_dev, x_host, args)
            timing_line(emit, c, "pytorch_" + side, timing, wall, out, ref, timer=timer)
        except Exception as e:  # noqa: BLE001 - one side failing must not stop the others
            emit(kind="timing", side="pytorch_" + side, status="ERROR", **case_fields(c),
                 error=f"{type(e).__name__}: {e}")
    return strata_ok


def compile_case(c, args, emit):
    """Pass 2 for one case: the torch.compile(mode="reduce-overhead") side."""
    model, x, ref = prepare(c, args.device)
    set_tf32(bool(c.get("tf32")))
    model, x_dev = as_side(model, x, c["precision"], args.device, bool(c.get("tf32")))
    with torch.inference_mode():
        timing, wall, out, compile_s = side_compile(model, x_dev, x, args)
    timing_line(emit, c, "pytorch_compile", timing, wall, out, ref, compile_s=compile_s,
                mode="reduce-overhead", timer="cuda events")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strata", required=True, help="strata_bench's JSON lines")
    p.add_argument("--out-json", default="", help="append JSON lines here")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--quick", action="store_true", help="skip torch.compile")
    p.add_argument("--compile-budget-s", type=float, default=240.0,
                   help="stop starting torch.compile sides once this much time went into them")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--iters", type=int, default=0, help="calls per repeat (0: about --target-ms)")
    p.add_argument("--target-ms", type=float, default=50.0)
    p.add_argument("--warmup-ms", type=float, default=200.0)
    p.add_argument("--no-wall", dest="wall", action="store_false", help="skip host wall latency")
    p.add_argument("--cases", default="", help="only these case ids, comma-separated")
    args = p.parse_args()
    if args.repeats < 7:
        sys.exit("pytorch_bench: --repeats must be at least 7 (BENCHMARKS.md)")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("SKIPPED: no CUDA device (use --device cpu for a dry run)")
        sys.exit(77)

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 is f32 on both sides
    torch.backends.cudnn.allow_tf32 = False
    base = {"torch": torch.__version__, "device": args.device}
    if args.device == "cuda":
        base["gpu"] = torch.cuda.get_device_name()
        base["cudnn"] = torch.backends.cudnn.version()
    emit = Writer(args.out_json, base)

    wanted = set(filter(None, args.cases.split(",")))
    cases = [c for c in read_jsonl(args.strata)
             if c.get("kind") == "timing" and c.get("side") == "strata" and c.get("case")
             and (not wanted or c["case"] in wanted)]
    passed = {}
    for c in cases:
        try:
            passed[case_key(c)] = check_and_time(c, args, emit)
        except Exception as e:  # noqa: BLE001 - report and go on with the next case
            emit(kind="check", status="ERROR", **case_fields(c), error=f"{type(e).__name__}: {e}")
            passed[case_key(c)] = False
        if args.device == "cuda":
            torch.cuda.empty_cache()

    order = {k: i for i, k in enumerate(COMPILE_PRIORITY)}
    spent = 0.0
    for c in sorted(cases, key=lambda c: order.get(case_key(c), len(order))):
        reason = ("--quick" if args.quick else
                  "no torch.compile on the cpu dry run" if args.device != "cuda" else
                  "Strata's output failed the check or is missing" if not passed[case_key(c)] else
                  f"compile budget of {args.compile_budget_s:.0f} s spent"
                  if spent >= args.compile_budget_s else None)
        if reason:
            emit(kind="timing", side="pytorch_compile", status="SKIPPED", **case_fields(c),
                 reason=reason)
            continue
        t0 = time.perf_counter()
        try:
            compile_case(c, args, emit)
        except Exception as e:  # noqa: BLE001
            emit(kind="timing", side="pytorch_compile", status="ERROR", **case_fields(c),
                 error=f"{type(e).__name__}: {e}")
        spent += time.perf_counter() - t0
        torch._dynamo.reset()
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
