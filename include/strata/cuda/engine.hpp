#pragma once
/// strata::cuda::Engine<Net, P>: a declared network on one NVIDIA GPU in precision P (f32, f16,
/// bf16). Construction does everything — weights folded, converted, laid out and uploaded once
/// (device_weights.hpp); one activation arena from the static memory plan and one shared
/// workspace (executor.hpp); a tactic chosen for every op, by heuristics or by timing, cached on
/// disk (tuner.hpp, tactics/); a CUDA graph captured per listed batch size (exec_plan.hpp).
/// `forward` allocates nothing and replays a graph.
///
/// Header-only host C++ (g++ or clang; link strata::cuda): Strata's own kernels are compiled at
/// run time by NVRTC for the GPU at hand and cached on disk (kernels.hpp, rtc/).
///
/// Storage (storage.hpp): f32 runs NCHW; f16/bf16 run NHWC with channels zero-padded to a
/// multiple of 8 (tensor cores), invisibly: the caller's input is always f32 in the declared
/// layout and the output f32 (NCHW order). Arithmetic accumulates in f32; softmax runs in f32.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "strata/core/dtype.hpp"
#include "strata/core/error.hpp"
#include "strata/cuda/device_weights.hpp"
#include "strata/cuda/engine_options.hpp"
#include "strata/cuda/executor.hpp"
#include "strata/cuda/storage.hpp"
#include "strata/cuda/tuner.hpp"
#include "strata/weights/weights.hpp"

namespace strata::cuda {

/// A network `Net` compiled for one GPU in precision `P`. One Engine is one execution context
/// (its own arena, workspace, stream, library handles and graphs), to be used by one thread at
/// a time; `context()` makes another that shares the device weights and the tactic choices.
template <class Net, DType P>
  requires Network<Net>
class Engine {
 public:
  using Network = std::remove_cvref_t<Net>;
  static constexpr DType precision = P;
  /// Storage layout of activations: NCHW for f32, NHWC (channels padded to 8) for 16-bit.
  static constexpr Layout layout = storage_layout(P);
  static constexpr std::int64_t input_numel = Network::input_spec.shape.numel();
  static constexpr std::int64_t output_numel = Network::output_spec.shape.numel();
  static_assert(NetStorage<Net, P>::fits_plan(),
                "cuda::Engine: a tensor's storage exceeds its slot in the memory plan");

  /// Builds everything for batches up to options.max_batch (see the file comment).
  Engine(const Weights<Net>& weights, EngineOptions options)
      : options_(checked(std::move(options))),
        exec_(std::make_unique<Executor<P>>(NetStorage<Net, P>::describe(), options_.max_batch,
                                            options_.allow_tf32)) {
    NetDesc net = NetStorage<Net, P>::describe();
    DeviceWeights<P> w(weights, net);
    std::unique_ptr<FusedNetwork> fused;
    if (net.fused_fits && options_.fused_max_batch > 0) {
      fused = std::make_unique<FusedNetwork>(net);
    }
    auto variants = choose_variants<P>(net, w, *exec_, options_, exec_->stats());
    model_ = std::make_shared<const Model<P>>(Model<P>{std::move(net), std::move(w),
                                                       std::move(variants), std::move(fused),
                                                       options_.fused_max_batch});
    exec_->build(model_, options_.capture_batches);
  }

  /// Loads the weights file (every problem reported before any GPU work) and builds.
  [[nodiscard]] static Engine from_file(const std::filesystem::path& path, EngineOptions options) {
    const Weights<Net> w = Weights<Net>::load(path);
    return Engine(w, std::move(options));
  }

  /// Another execution context on the same device weights and tactic choices (for another
  /// thread): its own arena, workspace, stream, handles and graphs.
  [[nodiscard]] Engine context() const { return Engine(model_, options_); }

  Engine(Engine&&) noexcept = default;
  Engine& operator=(Engine&&) noexcept = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine() = default;

  /// Runs `batch` images on `stream`: `d_in` holds batch × input floats (device, f32, the
  /// declared layout), `d_out` receives batch × output floats (device, f32). Replays the
  /// batch's CUDA graph (captured on first use of a batch size not captured at construction:
  /// that first call synchronizes and prepares the batch, but allocates no device memory of
  /// Strata's). Passing input_buffer()/output_buffer() avoids the two device copies.
  void forward(const float* d_in, float* d_out, int batch, cudaStream_t stream) {
    check_batch(batch, "forward");
    ExecPlan& plan = exec_->plan_for(batch, stream);
    if (d_in != input_buffer()) {
      STRATA_CUDA_CHECK(cudaMemcpyAsync(input_buffer(), d_in, in_bytes(batch),
                                        cudaMemcpyDeviceToDevice, stream));
    }
    plan.graph.launch(stream);
    if (d_out != output_buffer()) {
      STRATA_CUDA_CHECK(cudaMemcpyAsync(d_out, output_buffer(), out_bytes(batch),
                                        cudaMemcpyDeviceToDevice, stream));
    }
  }

  /// Host in, host out: pinned staging, asynchronous copies and a graph replay on the
  /// engine's stream; returns when `out` holds the result.
  void infer(std::span<const float> in, std::span<float> out, int batch) {
    check_batch(batch, "infer");
    const std::size_t in_n = static_cast<std::size_t>(batch * input_numel);
    const std::size_t out_n = static_cast<std::size_t>(batch * output_numel);
    STRATA_CHECK(in.size() >= in_n, "Engine::infer: input holds " << in.size() << " floats, batch "
                                                                   << batch << " needs " << in_n);
    STRATA_CHECK(out.size() >= out_n, "Engine::infer: output holds " << out.size()
                                                                     << " floats, batch " << batch
                                                                     << " needs " << out_n);
    const cudaStream_t s = stream();
    ExecPlan& plan = exec_->plan_for(batch, s);
    std::memcpy(exec_->pinned_input(), in.data(), in_bytes(batch));
    STRATA_CUDA_CHECK(cudaMemcpyAsync(input_buffer(), exec_->pinned_input(), in_bytes(batch),
                                      cudaMemcpyHostToDevice, s));
    plan.graph.launch(s);
    STRATA_CUDA_CHECK(cudaMemcpyAsync(exec_->pinned_output(), output_buffer(), out_bytes(batch),
                                      cudaMemcpyDeviceToHost, s));
    STRATA_CUDA_CHECK(cudaStreamSynchronize(s));
    std::memcpy(out.data(), exec_->pinned_output(), out_bytes(batch));
  }

  /// The engine's own device input (max_batch × input floats) and output buffers.
  [[nodiscard]] float* input_buffer() const { return exec_->input_buffer(); }
  [[nodiscard]] float* output_buffer() const { return exec_->output_buffer(); }
  [[nodiscard]] cudaStream_t stream() const { return exec_->stream(); }
  [[nodiscard]] int max_batch() const { return options_.max_batch; }
  [[nodiscard]] const EngineStats& stats() const { return exec_->stats(); }

  /// GPU time per step at `batch` (µs per replay, median, of a graph holding that step alone:
  /// "input", each op's label, "output"). For reports: it captures graphs and creates events.
  [[nodiscard]] std::vector<std::pair<std::string, float>> profile(int batch, int iters = 50) {
    check_batch(batch, "profile");
    const ExecPlan& plan = exec_->plan_for(batch, stream());
    return plan.profile(stream(), exec_->workspace(), iters);
  }

  /// The path `batch` takes: "fused network" (one kernel) or "per-op".
  [[nodiscard]] std::string path(int batch) const {
    check_batch(batch, "path");
    return exec_->path(batch);
  }
  /// Whether the network fits the fused-network kernel, and why (not).
  static constexpr FusedFit fused_fit = NetStorage<Net, P>::fused_fit();

  /// One line per step at `batch`: its label and what runs it (library call or Strata kernel).
  [[nodiscard]] std::string describe(int batch) {
    check_batch(batch, "describe");
    return exec_->describe(batch);
  }

 private:
  // A context sharing `model`.
  Engine(std::shared_ptr<const Model<P>> model, EngineOptions options)
      : options_(std::move(options)),
        model_(std::move(model)),
        exec_(std::make_unique<Executor<P>>(model_->net, options_.max_batch,
                                            options_.allow_tf32)) {
    exec_->build(model_, options_.capture_batches);
  }

  static EngineOptions checked(EngineOptions o) {
    STRATA_CHECK(o.max_batch >= 1, "cuda::Engine: max_batch must be at least 1, got " << o.max_batch);
    STRATA_CHECK(o.fused_max_batch >= 0,
                 "cuda::Engine: fused_max_batch must be 0 or more, got " << o.fused_max_batch);
    for (int b : o.capture_batches) {
      STRATA_CHECK(b >= 1 && b <= o.max_batch, "cuda::Engine: capture batch "
                                                   << b << " is outside [1, " << o.max_batch
                                                   << "] (max_batch)");
    }
    return o;
  }
  void check_batch(int batch, const char* what) const {
    STRATA_CHECK(batch >= 1 && batch <= options_.max_batch,
                 "cuda::Engine::" << what << ": batch " << batch << " is outside [1, "
                                  << options_.max_batch
                                  << "], the maximum this engine was built for");
  }
  static std::size_t in_bytes(int batch) {
    return static_cast<std::size_t>(batch * input_numel) * sizeof(float);
  }
  static std::size_t out_bytes(int batch) {
    return static_cast<std::size_t>(batch * output_numel) * sizeof(float);
  }

  EngineOptions options_;
  std::shared_ptr<const Model<P>> model_;
  std::unique_ptr<Executor<P>> exec_;
};

}  // namespace strata::cuda
