#pragma once
/// The executable plan of a network at one batch size: its steps in order — the input
/// conversion (unless every op that reads the input reads the caller's input itself), one
/// prepared Step per op, the output conversion when the last op does not write the caller's
/// output itself — and the CUDA graph they were captured into.
#include <nvtx3/nvToolsExt.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/cudnn.hpp"
#include "strata/cuda/engine_options.hpp"
#include "strata/cuda/graph_capture.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"

namespace strata::cuda {

/// An NVTX range for the lifetime of the object (header-only NVTX 3: no library to link; a no-op
/// unless a tool such as Nsight Systems is attached).
class NvtxRange {
 public:
  explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

/// One step of a plan under the name a user reads: "input", an op's label, "output".
struct PlannedStep {
  std::string label;
  std::unique_ptr<Step> step;
  std::string note{};  ///< what describe() adds after the step's own description, if anything
  /// Runs on the plan's side stream beside the next step (runs_beside_next), with the side
  /// workspace; the step after those two waits for both.
  bool beside_next = false;
};

/// What a plan's steps that run beside the next one use (EngineOptions::concurrent_branches):
/// a second stream, the fork and join events (recorded anew at each fork: inside a graph capture
/// each record is its own dependency), a workspace of their own, and a cuDNN handle bound to
/// that stream (such steps are prepared with it: cuDNN's calls go to the handle's stream).
struct Branch {
  Stream stream = Stream::create();
  Event fork = Event::create(false);
  Event join = Event::create(false);
  DeviceBuffer workspace;
  CudnnHandle cudnn;
};

/// The steps of one batch size and their graph.
class ExecPlan {
 public:
  std::vector<PlannedStep> steps;
  GraphExec graph;  ///< empty until captured
  /// infer()'s graph for a batch that fits one staging piece: the upload from the pinned staging,
  /// the steps, the download into the pinned output (one launch instead of three calls); or, on
  /// the fused-network path, `host_step` alone, which reads the staging and writes the pinned
  /// output itself. Empty until first used.
  GraphExec host_graph;
  std::unique_ptr<Step> host_step;  ///< the fused kernel on the pinned buffers, when it has one
  bool pdl = false;  ///< Strata's kernels as programmatic dependent launches (EngineOptions::pdl)
  /// The side stream and workspace of steps that run beside the next one (not owned), or null.
  const Branch* branch = nullptr;

  /// The workspace every step fits in; `side`: of the steps that run beside the next one.
  [[nodiscard]] std::size_t workspace_bytes(bool side = false) const {
    std::size_t ws = 0;
    for (const PlannedStep& p : steps) {
      ws = !side || p.beside_next ? std::max(ws, p.step->workspace_bytes()) : ws;
    }
    return ws;
  }
  /// Enqueues every step on `s` (each failure names its step's label): a step marked
  /// beside_next on the side stream — which waits for what `s` has so far — and the next one
  /// on `s`, then `s` waits for the side stream.
  void run(cudaStream_t s, const DeviceBuffer& ws) const {
    const rtc::PdlScope programmatic(pdl);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const PlannedStep& p = steps[i];
      const LayerScope scope(p.label);
      if (p.beside_next && branch != nullptr && i + 1 < steps.size()) {
        const cudaStream_t side = branch->stream.get();
        branch->fork.record(s);
        STRATA_CUDA_CHECK(cudaStreamWaitEvent(side, branch->fork.get(), 0));
        p.step->launch(side, branch->workspace.get(), branch->workspace.bytes());
        branch->join.record(side);
        try {
          const LayerScope next(steps[i + 1].label);
          steps[i + 1].step->launch(s, ws.get(), ws.bytes());
        } catch (...) {
          (void)cudaStreamWaitEvent(s, branch->join.get(), 0);  // (a capture must end joined)
          throw;
        }
        STRATA_CUDA_CHECK(cudaStreamWaitEvent(s, branch->join.get(), 0));
        ++i;
        continue;
      }
      p.step->launch(s, ws.get(), ws.bytes());
    }
  }
  /// Runs once eagerly (library set-up stays out of the graph, and a step whose library declines
  /// a variant falls back here), then captures the graph.
  void capture(cudaStream_t s, const DeviceBuffer& ws) {
    run(s, ws);
    STRATA_CUDA_CHECK(cudaStreamSynchronize(s));
    graph = capture_graph(s, [&](cudaStream_t cs) { run(cs, ws); });
  }
  /// GPU time per step (µs per replay, median, of a graph holding that step alone), with an
  /// NVTX range per step. A step that runs beside the next one is captured and timed on the side
  /// stream, with the side workspace, as it runs (it was prepared for that stream).
  [[nodiscard]] std::vector<std::pair<std::string, float>> profile(cudaStream_t s,
                                                                   const DeviceBuffer& ws,
                                                                   int iters) const {
    std::vector<std::pair<std::string, float>> out;
    for (const PlannedStep& p : steps) {
      const NvtxRange range(p.label.c_str());
      const LayerScope scope(p.label);
      const bool side = p.beside_next && branch != nullptr;
      const cudaStream_t on = side ? branch->stream.get() : s;
      const DeviceBuffer& w = side ? branch->workspace : ws;
      if (side) {
        STRATA_CUDA_CHECK(cudaStreamSynchronize(s));  // (what came before, done)
      }
      const GraphExec exec =
          capture_graph(on, [&](cudaStream_t cs) { p.step->launch(cs, w.get(), w.bytes()); });
      out.emplace_back(p.label, time_graph(exec, on, iters) * 1000.0f);
      if (side) {
        STRATA_CUDA_CHECK(cudaStreamSynchronize(on));
      }
    }
    return out;
  }
};

/// Where the caller's input is and in what form: `data` on the device, `format`, and the
/// per-channel normalization as 2 floats per channel (x·a + b) on the device, or null.
struct InputSource {
  const void* data = nullptr;
  InputFormat format = InputFormat::f32;
  const float* affine = nullptr;
};

/// The input conversion: the caller's input (its format and layout) into the arena in the
/// storage type and layout (space-to-depth when an op reads it so), normalized on the way.
template <DType P>
[[nodiscard]] std::unique_ptr<Step> input_step(const NetDesc& net, InputSource in, void* arena,
                                               int batch) {
  using T = storage_t<P>;
  T* dst = reinterpret_cast<T*>(static_cast<std::uint8_t*>(arena) + net.input_offset * batch);
  const Shape is = net.in_shape;
  const int hw = is.h * is.w;
  const bool hwc = input_is_hwc(in.format, net.in_layout);
  const kernels::Strides ss = hwc ? kernels::nhwc_strides(is.c, hw) : kernels::nchw_strides(is.c, hw);
  const std::string what = std::string(input_format_name(in.format)) + " in" +
                           (in.affine != nullptr ? ", normalized" : "");
  // The launch for source element type S.
  auto with_source = [&]<class S>(const S* src) -> std::unique_ptr<Step> {
    const float* affine = in.affine;
    if (net.s2d_op >= 0) {
      const OpDesc& op = net.op_at(net.s2d_op);
      const Shape sd = net.s2d_shape;
      const int scp = channel_slots(sd.c, P);
      const HW pad = op.layer.padding;
      return tactics::kernel_step("strata space_to_depth (" + what + ")", [=](cudaStream_t s) {
        kernels::space_to_depth<S, T>(src, ss, dst, batch, is.c, is.h, is.w, sd.h, sd.w, scp,
                                      pad.h, pad.w, affine, s);
      });
    }
    const int cp = channel_slots(is.c, P);
    const bool nhwc = net.layout == Layout::nhwc;
    const kernels::Strides ds = tactics::dense_strides<P>(cp, hw);
    return tactics::kernel_step("strata convert (" + what + ")", [=](cudaStream_t s) {
      kernels::convert<S, T>(src, ss, dst, ds, batch, is.c, cp, hw, nhwc, s, affine);
    });
  };
  switch (in.format) {
    case InputFormat::f16: return with_source(static_cast<const __half*>(in.data));
    case InputFormat::u8_hwc: return with_source(static_cast<const std::uint8_t*>(in.data));
    case InputFormat::f32: break;
  }
  return with_source(static_cast<const float*>(in.data));
}

/// The output conversion: the stored output tensor into the caller's f32 output (NCHW order,
/// which is also PyTorch's flatten order).
template <DType P>
[[nodiscard]] std::unique_ptr<Step> output_step(const NetDesc& net, const void* arena, float* out,
                                                int batch) {
  using T = storage_t<P>;
  const T* src =
      reinterpret_cast<const T*>(static_cast<const std::uint8_t*>(arena) + net.output_offset * batch);
  const Shape os = net.out_storage;
  const int hw = os.h * os.w;
  const int cp = channel_slots(os.c, P);
  const kernels::Strides ss = tactics::dense_strides<P>(cp, hw);
  return tactics::kernel_step("strata convert (f32 out)", [=](cudaStream_t s) {
    kernels::convert<T, float>(src, ss, out, kernels::nchw_strides(os.c, hw), batch, os.c, os.c,
                               hw, false, s);
  });
}

}  // namespace strata::cuda
