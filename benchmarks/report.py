#!/usr/bin/env python3
"""Merges the benchmark's JSON lines into docs/benchmarks/results.json, the results section of
docs/benchmarks.md (tables, ceilings, targets) and docs/benchmarks/chart.png; prints the main
table last.

Inputs (JSON lines): strata_bench's ceilings and cases, pytorch_bench.py's checks and sides.
A Strata time is shown only for a case whose output passed pytorch_bench.py's check; a case
that failed shows FAILED, one never checked shows "unchecked".

Roofline floor of a case (in its precision): max(FLOPs / GEMM ceiling, bytes / copy ceiling),
with FLOPs = the network's cost model per image x batch (2 per multiply-add), bytes = parameters
x element size + batch x (input + output) x 4 (f32 in and out, each moved once), the GEMM
ceiling of the same element type (f16, bf16, or f32 without TF32) and the copy ceiling counting
bytes read plus written. "Of floor" = floor / Strata's time: 100% would be at the roofline.

Usage: report.py --work DIR [--doc docs/benchmarks.md] [--out-dir docs/benchmarks]
                 [--command "scripts/bench.sh"] [--print-only]
"""

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- results:begin (written by benchmarks/report.py) -->"
END = "<!-- results:end -->"
ELEM = {"f32": 4, "f16": 2, "bf16": 2}
SIDES = [("pytorch_eager", "eager"), ("pytorch_graph", "CUDA graph"),
         ("pytorch_compile", "torch.compile")]

# BENCHMARKS.md's targets: (case, precision, batch, what, test on a row). A test returns True
# (met), False (not met) or None (a number it needs was not measured).
def _le(field, bound):
    return lambda r: None if r["strata"] is None or r["strata"].get(field) is None \
        else r["strata"][field] <= bound


def _ratio(side, bound):
    def test(r):
        if r["strata"] is None:
            return None
        if side == "best":
            t = (r["best_pytorch"] or {}).get("median_us")
        else:
            v = r["pytorch"].get(side) or {}
            t = v.get("median_us") if v.get("status") == "ok" else None
        return None if t is None else t / r["strata"]["median_us"] >= bound
    return test


TARGETS = [
    ("M1", "f32", 1, "GPU time <= 8 us per forward", _le("median_us", 8.0)),
    ("M1", "f32", 1, "host wall <= 20 us", _le("host_wall_us", 20.0)),
    ("M1", "f32", 1, ">= 5x the best PyTorch side", _ratio("best", 5.0)),
    ("M1", "f16", 1, "GPU time <= 8 us per forward", _le("median_us", 8.0)),
    ("M1", "f16", 1, "host wall <= 20 us", _le("host_wall_us", 20.0)),
    ("M1", "f16", 1, ">= 5x the best PyTorch side", _ratio("best", 5.0)),
    ("M2", "f16", 4096, "<= 150 us per batch of 4096", _le("median_us", 150.0)),
    ("M2", "f16", 4096, ">= 4x torch.compile", _ratio("pytorch_compile", 4.0)),
    ("R1", "f16", 1, "<= 120 us per forward", _le("median_us", 120.0)),
    ("R2", "f16", 256, "<= 2.0 ms per batch of 256 (>= 128k images/s)", _le("median_us", 2000.0)),
    ("R2", "f16", 256, ">= 1.75x torch.compile", _ratio("pytorch_compile", 1.75)),
    ("R3", "f16", 256, "<= 5 ms per batch of 256 (>= 51k images/s)", _le("median_us", 5000.0)),
    ("R3", "f16", 256, ">= 2.1x torch.compile", _ratio("pytorch_compile", 2.1)),
    ("R2", "f32+tf32", 256, "not slower than the best PyTorch side (TF32 on both sides)",
     _ratio("best", 1.0)),
] + [(case, "f16", b, ">= 2x the best PyTorch side", _ratio("best", 2.0))
     for case in ("MV2", "EB0", "D121") for b in (1, 256)]


def read_jsonl(path):
    if not path or not Path(path).exists():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def precision_label(j):
    """The precision as reported: "f32+tf32" for an f32 case run with TF32 allowed."""
    return j.get("precision") + ("+tf32" if j.get("tf32") else "")


def key_of(j):
    return (j.get("case"), precision_label(j), int(j.get("batch") or 0))


def ceilings_of(lines):
    c = {}
    for j in lines:
        if j.get("kind") == "ceiling" and j.get("status", "ok") == "ok":
            c[j["name"]] = j.get("gb_per_s") or j.get("tflop_per_s")
    return c


def launch_floor_line(lines):
    """The launch floor (strata_bench --launch-floor) as one line, or '' when not measured."""
    f = {j["name"]: j for j in lines
         if j.get("kind") == "launch_floor" and j.get("status", "ok") == "ok" and j.get("name")}
    if not f:
        return ""
    parts = []
    for name, what in [("one_block", "one block"), ("cluster", "the fused kernel's cluster"),
                       ("cluster_4_barriers", "with 4 cluster barriers"),
                       ("cluster_4_barriers_shared", "and its shared memory")]:
        j = f.get(name)
        if j and j.get("median_us") is not None:
            parts.append(f"{what} {j['median_us']:.1f} µs GPU / {j.get('host_wall_us', 0):.1f} µs host wall")
    return "; ".join(parts)


def roofline(s, precision, ceil):
    """(floor in us, bound, ceiling names) of a Strata timing line, or None without ceilings.
    A case run with TF32 (f32+tf32) is held to the TF32 GEMM ceiling where one was measured."""
    gemm = ((s.get("tf32") and ceil.get("gemm_tf32")) or ceil.get("gemm_" + precision)
            or ceil.get("gemm_f16"))
    copy = ceil.get("copy_d2d")
    if not gemm or not copy or s.get("flops_per_image") is None:
        return None
    b = int(s["batch"])
    flops = s["flops_per_image"] * b
    nbytes = s["param_count"] * ELEM[precision] + b * (s["input_numel"] + s["output_numel"]) * 4
    t_flops = flops / (gemm * 1e12) * 1e6
    t_bytes = nbytes / (copy * 1e9) * 1e6
    return {"floor_us": max(t_flops, t_bytes), "bound": "compute" if t_flops >= t_bytes
            else "memory", "flops": flops, "bytes": nbytes,
            "gemm_tflop_per_s": gemm, "copy_gb_per_s": copy}


def merge(strata_lines, pytorch_lines):
    """One row per Strata case, in strata_bench's order, with its check and PyTorch sides."""
    ceil = ceilings_of(strata_lines)
    checks = {key_of(j): j for j in pytorch_lines if j.get("kind") == "check"}
    sides = {}
    for j in pytorch_lines:
        if j.get("kind") == "timing":
            sides.setdefault(key_of(j), {})[j["side"]] = j
    rows = []
    for s in strata_lines:
        if s.get("kind") != "timing" or s.get("side") != "strata":
            continue
        k = key_of(s)
        chk = checks.get(k)
        if s.get("status") != "ok":
            status = s.get("status") or "ERROR"  # ERROR, NONFINITE
        elif chk is None:
            status = "unchecked"
        else:
            status = chk["status"]
        py = {}
        for side, _ in SIDES:
            j = sides.get(k, {}).get(side)
            if j is None:
                continue
            py[side] = {f: j.get(f) for f in ("status", "median_us", "min_us", "max_us",
                                                "host_wall_us", "images_per_s", "rel_err_vs_f32",
                                                "compile_s", "reason", "error", "iters")}
        timed = [(v["median_us"], side) for side, v in py.items()
                 if v.get("status") == "ok" and v.get("median_us")]
        best = min(timed) if timed else None
        ok = status == "ok"
        strata = {f: s.get(f) for f in ("median_us", "min_us", "max_us", "host_wall_us",
                                         "images_per_s", "iters", "repeats", "build_s")} \
            if ok else None
        roof = roofline(s, s["precision"], ceil)
        if roof and strata:
            roof["fraction_of_floor"] = roof["floor_us"] / strata["median_us"]
        rows.append({
            "case": s.get("case"), "network": s.get("network"), "precision": precision_label(s),
            "batch": int(s.get("batch") or 0), "status": status, "strata": strata,
            "check": {f: (chk or {}).get(f) for f in ("status", "rel_err", "tolerance", "error")},
            "strata_error": s.get("error"),
            "pytorch": py,
            "best_pytorch": {"side": best[1], "median_us": best[0]} if best else None,
            "ratio": best[0] / strata["median_us"] if best and strata else None,
            "roofline": roof,
        })
    return rows, ceil


def evaluate_targets(rows):
    by_key = {(r["case"], r["precision"], r["batch"]): r for r in rows}
    out = []
    for case, prec, batch, what, test in TARGETS:
        r = by_key.get((case, prec, batch))
        if r is None:
            state = "not measured"
        elif r["status"] == "unchecked":
            state = "not known (Strata's output was not checked)"
        elif r["status"] != "ok":
            state = f"not met (Strata {r['status']})"
        else:
            v = test(r)
            state = "not measured" if v is None else ("met" if v else "not met")
            compiled = (r["pytorch"].get("pytorch_compile") or {}).get("status") == "ok"
            if v is not None and "best PyTorch" in what and not compiled:
                state += " (best of the sides run: torch.compile was not)"
        out.append({"case": case, "precision": prec, "batch": batch, "target": what,
                    "state": state})
    return out


# --- formatting ------------------------------------------------------------------------------

def us(v):
    if v is None:
        return "–"
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def side_cell(v):
    if v is None:
        return "–"
    if v.get("status") == "ok":
        return us(v["median_us"])
    return v.get("status", "?").lower()


def main_table(rows):
    head = ("| case | network | precision | batch | Strata µs (median [min–max]) | Strata host "
            "wall µs | best PyTorch µs (side) | PyTorch ÷ Strata | Strata images/s | roofline "
            "floor µs (bound) | of floor | check (rel. err.) |")
    lines = [head, "|" + "---|" * 12]
    names = dict(SIDES)
    for r in rows:
        s = r["strata"]
        bp = r["best_pytorch"]
        roof = r["roofline"]
        chk = r["check"]
        err = chk.get("rel_err")
        check = (f"{r['status']} ({err:.1e})" if err is not None else r["status"])
        lines.append("| " + " | ".join([
            r["case"], r["network"] or "", r["precision"], str(r["batch"]),
            f"{us(s['median_us'])} [{us(s['min_us'])}–{us(s['max_us'])}]" if s
            else f"**{r['status']}**",
            us(s["host_wall_us"]) if s else "–",
            f"{us(bp['median_us'])} ({names[bp['side']]})" if bp else "–",
            f"{r['ratio']:.2f}×" if r["ratio"] else "–",
            f"{s['images_per_s']:,.0f}" if s else "–",
            f"{us(roof['floor_us'])} ({roof['bound']})" if roof else "–",
            f"{100 * roof['fraction_of_floor']:.1f}%" if roof and "fraction_of_floor" in roof
            else "–",
            check]) + " |")
    return "\n".join(lines)


def sides_table(rows):
    lines = ["| case | precision | batch | eager µs | CUDA graph µs | torch.compile µs "
             "(compile s) | host wall µs, graph side |", "|" + "---|" * 7]
    for r in rows:
        py = r["pytorch"]
        comp = py.get("pytorch_compile")
        comp_cell = side_cell(comp)
        if comp and comp.get("status") == "ok" and comp.get("compile_s"):
            comp_cell += f" ({comp['compile_s']:.0f} s)"
        elif comp and comp.get("reason"):
            comp_cell += f" ({comp['reason']})"
        graph = py.get("pytorch_graph") or {}
        lines.append("| " + " | ".join([
            r["case"], r["precision"], str(r["batch"]), side_cell(py.get("pytorch_eager")),
            side_cell(py.get("pytorch_graph")), comp_cell,
            us(graph.get("host_wall_us")) if graph.get("status") == "ok" else "–"]) + " |")
    return "\n".join(lines)


def targets_list(targets):
    return "\n".join(f"- {t['case']} {t['precision']} batch {t['batch']}: {t['target']} — "
                     f"**{t['state']}**" for t in targets)


def chart(rows, path):
    """Grouped bars, log scale: Strata and each PyTorch side per case."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib not installed; no chart", file=sys.stderr)
        return False
    labels = [f"{r['case']} {r['precision']}\nb={r['batch']}" for r in rows]
    series = [("Strata", [r["strata"]["median_us"] if r["strata"] else None for r in rows])]
    for side, name in SIDES:
        series.append((name, [(r["pytorch"].get(side) or {}).get("median_us")
                              if (r["pytorch"].get(side) or {}).get("status") == "ok" else None
                              for r in rows]))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(rows) + 2), 4.8))
    width = 0.8 / len(series)
    for i, (name, vals) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j, v in enumerate(vals) if v]
        ax.bar(xs, [v for v in vals if v], width, label=name, color=colors[i])
    for j, r in enumerate(rows):
        if r["strata"] is None:  # no Strata time: say why where its bar would be
            ax.annotate(r["status"], (j - 0.3, 0.02), xycoords=("data", "axes fraction"),
                        rotation=90, fontsize=7, color="tab:red")
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("GPU time per forward, µs (log scale; lower is better)")
    gpu = next((r.get("gpu") for r in rows if r.get("gpu")), "")
    ax.set_title(f"Strata vs PyTorch {gpu}".strip())
    from matplotlib.patches import Patch  # explicit handles: an empty series still gets one
    ax.legend(handles=[Patch(color=c, label=n) for c, (n, _) in zip(colors, series)], fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def stream_rows(lines, rows):
    """R2-stream lines (strata_bench and pytorch_stream.py), with the R2 f16 row's GPU-only
    images/s of the same run for BENCHMARKS.md's target."""
    r2 = next((r for r in rows if (r["case"], r["precision"], r["batch"]) == ("R2", "f16", 256)
               and r["strata"]), None)
    out = []
    for j in lines:
        if j.get("kind") != "stream":
            continue
        out.append({"side": j.get("side"), "precision": j.get("precision"),
                    "batch": j.get("batch"), "status": j.get("status"),
                    "images_per_s": j.get("stream_images_per_s"),
                    "gpu_only_images_per_s": j.get("gpu_only_images_per_s"),
                    "vs_own_gpu_only": j.get("stream_vs_gpu_only"),
                    "vs_r2_gpu_only": (j["stream_images_per_s"] / r2["strata"]["images_per_s"])
                    if r2 and j.get("stream_images_per_s") else None})
    return out


def stream_table(srows):
    if not srows:
        return ""
    lines = ["| R2-stream side | precision | batch | images/s host to host | GPU-only images/s "
             "(same run) | stream ÷ GPU-only | stream ÷ Strata R2 GPU-only |", "|" + "---|" * 7]
    for r in srows:
        f = (lambda v: "–" if v is None else f"{v:,.0f}")
        g = (lambda v: "–" if v is None else f"{v:.2f}")
        lines.append(f"| {r['side']} | {r['precision']} | {r['batch']} | {f(r['images_per_s'])} | "
                     f"{f(r['gpu_only_images_per_s'])} | {g(r['vs_own_gpu_only'])} | "
                     f"{g(r['vs_r2_gpu_only'])} |")
    return "\n".join(lines)


def stream_target(srows):
    s = next((r for r in srows if r["side"] == "strata" and r["status"] == "ok"), None)
    if s is None:
        return {"case": "R2-stream", "precision": "f16", "batch": 256,
                "target": ">= 80% of the R2 GPU-only throughput", "state": "not measured"}
    ratio = s["vs_r2_gpu_only"] or s["vs_own_gpu_only"]
    return {"case": "R2-stream", "precision": s["precision"], "batch": s["batch"],
            "target": ">= 80% of the R2 GPU-only throughput",
            "state": ("met" if ratio >= 0.8 else "not met") + f" ({ratio:.2f})"}


def results_section(meta, rows, ceil, targets, has_chart, chart_rel, srows=(), floor=""):
    c = ceil
    ceil_line = ", ".join(f"{name} {c[name]:,.0f} {unit}" for name, unit in
                          [("copy_d2d", "GB/s"), ("gemm_f16", "TFLOP/s"),
                           ("gemm_bf16", "TFLOP/s"), ("gemm_f32", "TFLOP/s"),
                           ("gemm_tf32", "TFLOP/s")] if c.get(name))
    parts = [
        BEGIN,
        "## Latest results",
        "",
    ]
    if meta.get("synthetic"):
        parts += ["**SYNTHETIC TEST DATA — not a measurement; do not commit.**", ""]
    parts += [
        f"- GPU: {meta['gpu']}",
        f"- Date: {meta['date']}",
        f"- Command: `{meta['command']}`",
        f"- Strata commit: {meta['commit']}",
        f"- PyTorch: {meta['torch']}; cuDNN {meta['cudnn']}",
        f"- Measured ceilings: {ceil_line or 'not measured'}",
    ]
    if floor:
        parts += [f"- Launch floor (a graph of one empty kernel, timed as a case is): {floor}"]
    parts += [
        "",
        main_table(rows),
        "",
        "Times are GPU time per forward (CUDA events, median of the repeats). PyTorch ÷ Strata "
        "above 1 means Strata is faster. Roofline floor = max(FLOPs ÷ the GEMM ceiling of the "
        "precision, bytes ÷ the copy ceiling), bytes = parameters × element size + batch × "
        "(input + output) × 4; \"of floor\" = floor ÷ Strata's time. A case whose output failed "
        "the check shows no Strata time.",
        "",
        "PyTorch's sides (µs per forward, median):",
        "",
        sides_table(rows),
        "",
    ]
    if srows:
        parts += [
            "R2-stream: batches of 256 8-bit HWC images from page-locked host memory to host "
            "results, ImageNet normalization on the GPU (Strata: Engine::enqueue with 2 I/O "
            "slots; PyTorch: benchmarks/pytorch_stream.py), median images/s over the repeats:",
            "",
            stream_table(srows),
            "",
        ]
    parts += [
        "### Targets (BENCHMARKS.md)",
        "",
        targets_list(targets),
        "",
    ]
    if has_chart:
        parts += [f"![Strata vs PyTorch]({chart_rel})", ""]
    parts.append(END)
    return "\n".join(parts)


def write_doc(doc, section):
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, help="folder with strata.jsonl, ceilings.jsonl, "
                   "pytorch.jsonl")
    p.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"))
    p.add_argument("--out-dir", default=str(ROOT / "docs" / "benchmarks"))
    p.add_argument("--command", default="scripts/bench.sh")
    p.add_argument("--date", default="")
    p.add_argument("--print-only", action="store_true", help="write nothing, print the table")
    args = p.parse_args()
    work = Path(args.work)
    strata_lines = read_jsonl(work / "ceilings.jsonl") + read_jsonl(work / "strata.jsonl")
    pytorch_lines = read_jsonl(work / "pytorch.jsonl")
    rows, ceil = merge(strata_lines, pytorch_lines)
    if not rows:
        sys.exit(f"report.py: no Strata results in {work}/strata.jsonl")
    targets = evaluate_targets(rows)
    srows = stream_rows(read_jsonl(work / "stream.jsonl"), rows)
    if srows:
        targets.append(stream_target(srows))
    first = next((j for j in strata_lines if j.get("gpu")), {})
    torch_line = next((j for j in pytorch_lines if j.get("torch")), {})
    for r in rows:
        r["gpu"] = first.get("gpu")
    meta = {
        "gpu": first.get("gpu", "unknown"),
        "date": args.date or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": args.command,
        "commit": next((j["commit"] for j in strata_lines if j.get("commit")), "unknown"),
        "torch": torch_line.get("torch", "not run"),
        "cudnn": torch_line.get("cudnn", "?"),
        "synthetic": any(j.get("synthetic") for j in strata_lines + pytorch_lines),
    }
    table = main_table(rows)
    if not args.print_only:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        results = {"meta": meta, "ceilings": ceil, "rows": rows, "targets": targets,
                   "stream": srows,
                   "roofline": "floor = max(FLOPs / GEMM ceiling of the precision, bytes / copy "
                               "ceiling); bytes = params x element size + batch x (input + "
                               "output) x 4; fraction_of_floor = floor / Strata median"}
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
        has_chart = chart(rows, out / "chart.png")
        doc = Path(args.doc)
        rel = Path(out / "chart.png").resolve().relative_to(doc.resolve().parent) \
            if (out / "chart.png").resolve().is_relative_to(doc.resolve().parent) \
            else (out / "chart.png")
        write_doc(doc, results_section(meta, rows, ceil, targets, has_chart, rel.as_posix(),
                                       srows, launch_floor_line(strata_lines)))
    print()
    if meta["synthetic"]:
        print("SYNTHETIC TEST DATA - not a measurement")
    print(f"GPU: {meta['gpu']}   date: {meta['date']}   commit: {meta['commit']}")
    print(sides_table(rows))
    print()
    print(targets_list(targets))
    print()
    if srows:
        print(stream_table(srows))
        print()
    print(table)


if __name__ == "__main__":
    main()
