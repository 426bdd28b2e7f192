#!/usr/bin/env python3
"""PyTorch's side of R2-stream (BENCHMARKS.md): batches of 8-bit HWC images in pinned host
memory to host results, torchvision ResNet-18, f16 channels_last, ImageNet normalization on the
GPU. Images/s host to host, median over repeats, next to the GPU-only throughput of the same
captured graph in the same run. Two ways of writing the loop:

  pytorch_stream_simple      one stream: non_blocking upload, normalize, model (eager,
                             cudnn.benchmark), non_blocking download — what most serving code does
  pytorch_stream_overlapped  the normalization and model captured in a CUDA graph per I/O slot
                             (2 slots); uploads on a copy stream, downloads on another, ordered by
                             events, so batch k+1's upload overlaps batch k's compute — the same
                             scheme as Strata's Engine::enqueue

Usage: pytorch_stream.py [--batch 256] [--precision f16] [--repeats 9] [--target-ms 200]
                         [--out-json F]
"""

import argparse
import json
import statistics
import sys
import time

import torch

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DTYPE = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--precision", default="f16", choices=sorted(DTYPE))
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--target-ms", type=float, default=200.0, help="time per repeat, about")
    p.add_argument("--distinct", type=int, default=4, help="distinct pinned batches cycled through")
    p.add_argument("--out-json", default="")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("SKIPPED: no CUDA device")
        sys.exit(77)
    import torchvision

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    dt = DTYPE[args.precision]
    fmt = torch.contiguous_format if args.precision == "f32" else torch.channels_last
    b = args.batch
    model = torchvision.models.resnet18(weights=None).eval().to(dev, dt, memory_format=fmt)
    scale = (1.0 / (255.0 * torch.tensor(STD))).view(1, 3, 1, 1).to(dev, torch.float32)
    shift = (-torch.tensor(MEAN) / torch.tensor(STD)).view(1, 3, 1, 1).to(dev, torch.float32)

    def normalize(x_u8):  # (N, H, W, C) bytes -> (N, C, H, W) in dt, channels_last strides
        x = x_u8.permute(0, 3, 1, 2).float() * scale + shift
        return x.to(dt).contiguous(memory_format=fmt)

    gen = torch.Generator().manual_seed(7)
    pinned_in = [torch.randint(0, 256, (b, 224, 224, 3), dtype=torch.uint8, generator=gen).pin_memory()
                 for _ in range(args.distinct)]
    pinned_out = [torch.empty((b, 1000), dtype=torch.float32).pin_memory()
                  for _ in range(args.distinct)]
    base = {"kind": "stream", "case": "R2-stream", "network": "resnet18",
            "precision": args.precision, "batch": b, "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(), "cudnn": torch.backends.cudnn.version()}

    def emit(**fields):
        line = json.dumps({**base, **fields})
        print(line, flush=True)
        if args.out_json:
            with open(args.out_json, "a") as f:
                f.write(line + "\n")

    with torch.inference_mode():
        # One CUDA graph of normalize + model per I/O slot (the second shares the first's pool).
        slots = 2
        static_in = [torch.empty((b, 224, 224, 3), dtype=torch.uint8, device=dev) for _ in range(slots)]
        for s in range(slots):
            static_in[s].copy_(pinned_in[s])
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                model(normalize(static_in[0]))
        torch.cuda.current_stream().wait_stream(side)
        graphs, static_out = [], []
        for s in range(slots):
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=graphs[0].pool() if graphs else None):
                static_out.append(model(normalize(static_in[s])).float())
            graphs.append(g)

        # GPU only: graph replays on resident input.
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def gpu_ms(n):
            start.record()
            for _ in range(n):
                graphs[0].replay()
            stop.record()
            stop.synchronize()
            return start.elapsed_time(stop) / n

        gpu_ms(10)
        per_batch_ms = statistics.median(gpu_ms(20) for _ in range(args.repeats))
        gpu_rate = b * 1e3 / per_batch_ms
        count = max(8, int(args.target_ms / per_batch_ms))

        def rate(loop):
            loop(2 * args.distinct)
            torch.cuda.synchronize()
            rates = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                loop(count)
                torch.cuda.synchronize()
                rates.append(count * b / (time.perf_counter() - t0))
            rates.sort()
            return rates

        def simple(n):
            for k in range(n):
                d = k % args.distinct
                x = pinned_in[d].to(dev, non_blocking=True)
                pinned_out[d].copy_(model(normalize(x)).float(), non_blocking=True)

        comp = torch.cuda.current_stream()
        up, down = torch.cuda.Stream(), torch.cuda.Stream()
        ev_up = [torch.cuda.Event() for _ in range(slots)]
        ev_comp = [torch.cuda.Event() for _ in range(slots)]
        ev_down = [torch.cuda.Event() for _ in range(slots)]
        for s in range(slots):  # recorded once so that every wait below has an event to wait on
            for e in (ev_up[s], ev_comp[s], ev_down[s]):
                e.record(comp)

        def overlapped(n):
            for k in range(n):
                s, d = k % slots, k % args.distinct
                up.wait_event(ev_comp[s])
                with torch.cuda.stream(up):
                    static_in[s].copy_(pinned_in[d], non_blocking=True)
                ev_up[s].record(up)
                comp.wait_event(ev_up[s])
                comp.wait_event(ev_down[s])
                graphs[s].replay()
                ev_comp[s].record(comp)
                down.wait_event(ev_comp[s])
                with torch.cuda.stream(down):
                    pinned_out[d].copy_(static_out[s], non_blocking=True)
                ev_down[s].record(down)

        # The overlapped loop's output of batch 0 against a direct call.
        overlapped(1)
        torch.cuda.synchronize()
        ref = model(normalize(pinned_in[0].to(dev))).float().cpu()
        err = float(torch.linalg.vector_norm((pinned_out[0] - ref).double()) /
                    torch.linalg.vector_norm(ref.double()))

        for side_name, loop in [("pytorch_stream_simple", simple),
                                ("pytorch_stream_overlapped", overlapped)]:
            rates = rate(loop)
            emit(side=side_name, status="ok", stream_images_per_s=statistics.median(rates),
                 stream_images_per_s_min=rates[0], stream_images_per_s_max=rates[-1],
                 gpu_only_images_per_s=gpu_rate,
                 stream_vs_gpu_only=statistics.median(rates) / gpu_rate,
                 batches_per_repeat=count, repeats=args.repeats,
                 overlapped_vs_direct_rel_error=err)


if __name__ == "__main__":
    main()
