// strata_bench: Strata's side of one benchmark case (BENCHMARKS.md's M1, M2, R1, R2, R3,
// R2-stream; issue 12's MV2, EB0, D121; the U-Net UN) in one precision and batch, or the GPU's
// two ceilings (--ceilings). Appends one JSON line per measurement to --out-json and prints it.
// docs/benchmarks.md says how the numbers are used.
//
//   strata_bench --case R2 --precision f16 [--batch 256] [--weights F | --save-weights F]
//                [--input F | --save-input F] [--dump-output F] [--out-json F] [--commit SHA]
//                [--tuning heuristic|measured] [--tuning-cache F] [--repeats 9] [--iters N]
//   strata_bench --case R2-stream --precision f16   (8-bit images from pinned memory, enqueue)
//   strata_bench --case R2-stream --gpus 2          (the same through an EnginePool of 1, then 2)
//   strata_bench --ceilings [--out-json F]
//   strata_bench --launch-floor [--out-json F]   (an empty kernel's graph: the floor of M1's figures)
//
// Timing: warm-up (at least 200 ms of GPU work), then `repeats` runs of `iters` back-to-back
// forward() calls between two CUDA events; reported: median, min and max of time per forward.
// Exit codes: 0 done, 1 error (also written as a JSON line with "status": "ERROR"), 2 bad
// arguments, 77 no CUDA device.
#include <cuda_runtime.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "bench.hpp"

using namespace strata_bench;

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  const CaseInfo* c = nullptr;
  for (const CaseInfo& ci : cases) {
    c = ci.id == a.case_id ? &ci : c;
  }
  const bool no_case = a.ceilings || a.launch_floor;
  if (!no_case && c == nullptr) {
    usage("unknown case '" + a.case_id + "' (M1, M2, R1, R2, R3, R2-stream, MV2, EB0, D121 or UN)");
  }
  const int batch = no_case ? 0 : (a.batch > 0 ? a.batch : c->batch);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device\n");
    return 77;
  }
  try {
    if (a.launch_floor) {
      return run_launch_floor(a);
    }
    if (a.ceilings) {
      return run_ceilings(a);
    }
    const bool deployable = c->network == "mobilenet_v2" || c->network == "efficientnet_b0" ||
                            c->network == "densenet121" || c->network == "unet";
    if (deployable && a.precision != "f16") {
      usage("case " + a.case_id + " runs in f16 only");
    }
    if (a.precision == "tf32") {  // (the ResNets: TF32 is BENCHMARKS.md's R2 f32+tf32 case)
      if (c->id.ends_with("-stream")) {
        usage("case " + a.case_id + " runs f32, f16 or bf16");
      }
      if (c->network == "mnist_cnn") {
        usage("--precision tf32 runs the ResNet cases (R1, R2, R3)");
      }
      return run_tf32(a, *c, batch);
    }
    if (a.precision == "f32") {
      return run_f32(a, *c, batch);
    }
    return a.precision == "f16" ? run_f16(a, *c, batch) : run_bf16(a, *c, batch);
  } catch (const std::exception& e) {
    std::cerr << "strata_bench: " << e.what() << "\n";
    try {
      Json j{{"kind", a.ceilings ? "ceiling" : a.launch_floor ? "launch_floor" : "timing"},
             {"side", "strata"},
             {"case", no_case ? "" : std::string(c->id)},
             // (as the timing line writes them: tf32 as f32 with "tf32": true)
             {"precision", a.precision == "tf32" ? std::string("f32") : a.precision},
             {"engine_precision", a.precision},
             {"tf32", a.tf32 || a.precision == "tf32"},
             {"batch", batch},
             {"status", "ERROR"},
             {"error", e.what()},
             {"commit", a.commit}};
      emit(a, j);
    } catch (const std::exception&) {
      // The error is already on stderr.
    }
    return 1;
  }
}
