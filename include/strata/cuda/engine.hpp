#pragma once
/// strata::cuda::Engine<Net, P>: a declared network on one NVIDIA GPU in precision P (f32, f16,
/// bf16, tf32). Construction does everything — weights folded, converted, laid out and uploaded
/// once (device_weights.hpp); one activation arena from the static memory plan and one shared
/// workspace (executor.hpp); a tactic chosen for every op, by heuristics or by timing, cached on
/// disk (tuner.hpp, tactics/); a CUDA graph captured per listed batch size (exec_plan.hpp).
/// `forward` allocates nothing and replays a graph.
///
/// Header-only host C++ (g++ or clang; link strata::cuda): Strata's own kernels are compiled at
/// run time by NVRTC for the GPU at hand and cached on disk (kernels.hpp, rtc/).
///
/// Storage (storage.hpp): f32 runs NCHW; f16/bf16 and tf32 (f32 values, TF32 tensor cores) run
/// NHWC with channels zero-padded to a multiple of 8, invisibly: the caller's input is f32 in the
/// declared layout (or f16, or 8-bit HWC images with the normalization done on the GPU:
/// InputOptions) and the output f32 (NCHW order). Arithmetic accumulates in f32; softmax runs in f32.
///
/// Three ways in: `forward` (device buffers, the caller's stream), `infer` (any host memory,
/// returns with the result) and `enqueue` (page-locked host memory, returns at once; batch k+1's
/// upload overlaps batch k's compute and batch k−1's download).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <ranges>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "strata/core/dtype.hpp"
#include "strata/core/error.hpp"
#include "strata/cuda/device.hpp"
#include "strata/cuda/device_weights.hpp"
#include "strata/cuda/engine_options.hpp"
#include "strata/cuda/executor.hpp"
#include "strata/cuda/storage.hpp"
#include "strata/cuda/tuner.hpp"
#include "strata/weights/weights.hpp"

namespace strata::cuda {

/// The element type of InputFormat F on the host: float, __half or std::uint8_t.
template <class In>
inline constexpr bool is_input_type_v = std::is_same_v<In, float> || std::is_same_v<In, __half> ||
                                        std::is_same_v<In, std::uint8_t>;
template <class In>
  requires is_input_type_v<In>
[[nodiscard]] constexpr InputFormat input_format_of() {
  return std::is_same_v<In, float> ? InputFormat::f32
         : std::is_same_v<In, __half> ? InputFormat::f16
                                      : InputFormat::u8_hwc;
}

/// A contiguous range of one of the input types (std::vector<float>, std::span<const
/// std::uint8_t>, a PinnedBuffer's span, ...).
template <class R>
concept InputRange = std::ranges::contiguous_range<R> &&
                     is_input_type_v<std::remove_cv_t<std::ranges::range_value_t<R>>>;

/// `r` as a span of const elements.
template <InputRange R>
[[nodiscard]] auto as_span(const R& r) {
  using In = std::remove_cv_t<std::ranges::range_value_t<R>>;
  return std::span<const In>(std::ranges::data(r), std::ranges::size(r));
}

/// A batch handed to Engine::enqueue: done once its output is in the caller's buffer. It holds
/// the engine's I/O-slot event, so it must not be waited on after its engine is destroyed.
class Pending {
 public:
  explicit Pending(cudaEvent_t done) : done_(done) {}
  /// Blocks until the output is in place. (The event is the I/O slot's: once io_slots more
  /// batches have been enqueued, wait() may also wait for the later one to arrive.)
  void wait() const { STRATA_CUDA_CHECK(cudaEventSynchronize(done_)); }
  /// Whether the output is in place, without blocking.
  [[nodiscard]] bool ready() const {
    const cudaError_t e = cudaEventQuery(done_);
    if (e == cudaErrorNotReady) {
      return false;
    }
    STRATA_CUDA_CHECK(e);
    return true;
  }

 private:
  cudaEvent_t done_;
};

/// A network `Net` compiled for one GPU in precision `P`. One Engine is one execution context
/// (its own arena, workspace, stream, library handles and graphs), to be used by one thread at
/// a time; `context()` makes another that shares the device weights and the tactic choices.
template <class Net, DType P>
  requires Network<Net>
class Engine {
 public:
  using Network = std::remove_cvref_t<Net>;
  static constexpr DType precision = P;
  /// Storage layout of activations: NCHW for f32, NHWC (channels padded to 8) for f16, bf16, tf32.
  static constexpr Layout layout = storage_layout(P);
  static constexpr std::int64_t input_numel = Network::input_spec.shape.numel();
  static constexpr std::int64_t output_numel = Network::output_spec.shape.numel();
  static_assert(NetStorage<Net, P>::fits_plan(),
                "cuda::Engine: a tensor's storage exceeds its slot in the memory plan");

  /// Builds everything for batches up to options.max_batch (see the file comment).
  Engine(const Weights<Net>& weights, EngineOptions options)
      : Engine(weights, std::move(options), BuildStart{}) {}

 private:
  /// When construction began, and NVRTC's tally then (EngineStats::build_ms, programs_compiled:
  /// taken before the executor, whose buffers and first kernels come first).
  struct BuildStart {
    std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now();
    rtc::CompileTally tally = rtc::compile_tally();
  };
  Engine(const Weights<Net>& weights, EngineOptions options, BuildStart started)
      : options_(checked(std::move(options))),
        exec_(std::make_unique<Executor<P>>(NetStorage<Net, P>::describe(), options_.max_batch,
                                            options_.allow_tf32, options_.input,
                                            options_.io_slots, branches(options_))) {
    const auto since = [](std::chrono::steady_clock::time_point t) {
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
    };
    NetDesc net = NetStorage<Net, P>::describe();
    DeviceWeights<P> w(weights, net);
    std::unique_ptr<FusedNetwork> fused;
    if (net.fused_fits && options_.fused_max_batch > 0) {
      fused = std::make_unique<FusedNetwork>(net, options_.fused_hold, options_.fused_cluster,
                                             options_.fused_mbarrier_sync, options_.fused_tiled);
    }
    fold_for_per_op_path(net);  // (the fused kernel, if any, has been generated)
    // (not where two streams run such pairs side by side instead — the executor's branches,
    // which it does not make with PDL —, nor where every batch runs the fused kernel)
    const bool branches = Engine::branches(options_);
    const bool all_fused = fused != nullptr && options_.fused_max_batch >= options_.max_batch;
    fold_for_max_batch(net, options_, branches, all_fused);
    const auto tuning = std::chrono::steady_clock::now();
    const std::vector<std::optional<Variant>> forced_v = forced_variants<P>(net, options_.force);
    auto variants = choose_variants<P>(net, w, *exec_, options_, forced_v, exec_->stats());
    // EngineOptions::plan_check: the heuristic's choices, to time its whole plan against these
    std::vector<Variant> heuristic;
    if (options_.plan_check && options_.tuning == Tuning::measured && !branches && !all_fused) {
      EngineOptions h = options_;
      h.tuning = Tuning::heuristic;
      EngineStats unused;
      heuristic = choose_variants<P>(net, w, *exec_, h, forced_v, unused);
    }
    std::vector<bool> forced(forced_v.size());
    std::transform(forced_v.begin(), forced_v.end(), forced.begin(),
                   [](const std::optional<Variant>& f) { return f.has_value(); });
    auto model = std::make_shared<Model<P>>(Model<P>{std::move(net), std::move(w),
                                                     std::move(variants), std::move(fused),
                                                     options_.fused_max_batch, std::move(forced)});
    // How Strata's kernels launch, decided first (Pdl::timed: on measured tuning's or the
    // heuristic's plan), so that the whole-plan check below compares the plans as they will run.
    model->pdl = !all_fused && may_pdl(options_) &&  // (all fused: no per-op plan)
                 (options_.pdl == Pdl::on || time_launches(model));
    if (!heuristic.empty() && heuristic != model->variants) {
      EngineStats& st = exec_->stats();
      try {
        const auto [measured_ms, heuristic_ms] = exec_->time_plans(model, heuristic);
        st.plan_check_measured_us = 1000.0 * measured_ms;
        st.plan_check_heuristic_us = 1000.0 * heuristic_ms;
        // The heuristic's plan only where it wins by more than the timings' noise (1%).
        const bool heuristic_wins = heuristic_ms < 0.99f * measured_ms;
        st.plan_kept = heuristic_wins ? "heuristic" : "measured";
        if (heuristic_wins) {
          model->variants = std::move(heuristic);
        }
      } catch (const std::exception& e) {  // (the check must not fail a build that works)
        (void)cudaGetLastError();
        st.plan_kept = "measured";
        st.plan_check_error = e.what();
      }
    }
    exec_->stats().tuning_ms = since(tuning);
    model_ = std::move(model);
    exec_->build(model_, options_.capture_batches);
    EngineStats& st = exec_->stats();
    st.build_ms = since(started.at);
    const rtc::CompileTally now = rtc::compile_tally();
    st.programs_compiled = now.programs - started.tally.programs;
    st.programs_compile_ms = now.ms - started.tally.ms;
  }

 public:
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

  /// Runs `batch` images on `stream`: `d_in` holds batch × input values (device, in the
  /// engine's input format: float, __half or std::uint8_t — EngineOptions::input), `d_out`
  /// receives batch × output floats (device). Replays the batch's CUDA graph (captured on first
  /// use of a batch size not captured at construction: that first call synchronizes and
  /// prepares the batch, but allocates no device memory of Strata's). Passing
  /// input_buffer()/output_buffer() avoids the two device copies. The work is on `stream`, which
  /// the engine does not track: synchronize it before calling infer(), enqueue() or profile()
  /// (they run on the engine's own streams and share its buffers).
  template <class In>
    requires is_input_type_v<In>
  void forward(const In* d_in, float* d_out, int batch, cudaStream_t stream) {
    check_batch(batch, "forward");
    check_format<In>("forward");
    ExecPlan& plan = exec_->plan_for(batch, stream);
    exec_->finish_enqueued();  // an earlier enqueue() may still use slot 0
    if (static_cast<const void*>(d_in) != exec_->input_buffer()) {
      STRATA_CUDA_CHECK(cudaMemcpyAsync(exec_->input_buffer(), d_in, in_bytes(batch),
                                        cudaMemcpyDeviceToDevice, stream));
    }
    plan.graph.launch(stream);
    if (d_out != output_buffer()) {
      STRATA_CUDA_CHECK(cudaMemcpyAsync(d_out, output_buffer(), out_bytes(batch),
                                        cudaMemcpyDeviceToDevice, stream));
    }
  }

  /// Host in, host out, any host memory: returns when `out` holds the result. An input of up to
  /// 4 MiB is copied into pinned staging, then one graph replays upload, network and download.
  /// A larger one goes through the staging in pieces, so copying piece i+1 into the staging
  /// overlaps piece i's transfer; then the network's graph and the download.
  template <InputRange R>
  void infer(const R& input, std::span<float> out, int batch) {
    const auto in = as_span(input);
    check_io(in, out, batch, "infer");
    const cudaStream_t s = stream();
    const auto* src = reinterpret_cast<const std::uint8_t*>(in.data());
    auto* staging = static_cast<std::uint8_t*>(exec_->pinned_input());
    auto* dst = static_cast<std::uint8_t*>(exec_->input_buffer());
    const std::size_t total = in_bytes(batch);
    constexpr std::size_t piece = std::size_t{4} << 20;
    if (total <= piece) {
      exec_->finish_enqueued();  // an earlier enqueue() may still use slot 0
      ExecPlan& plan = exec_->host_plan_for(batch, total, out_bytes(batch));
      std::memcpy(staging, src, total);
      try {
        plan.host_graph.launch(s);
        STRATA_CUDA_CHECK(cudaStreamSynchronize(s));
      } catch (...) {
        (void)cudaStreamSynchronize(s);  // the graph may still read the staging buffer
        throw;
      }
      std::memcpy(out.data(), exec_->pinned_output(), out_bytes(batch));
      return;
    }
    ExecPlan& plan = exec_->plan_for(batch, s);
    exec_->finish_enqueued();  // an earlier enqueue() may still use slot 0
    try {
      for (std::size_t off = 0; off < total; off += piece) {
        const std::size_t n = std::min(piece, total - off);
        std::memcpy(staging + off, src + off, n);
        STRATA_CUDA_CHECK(
            cudaMemcpyAsync(dst + off, staging + off, n, cudaMemcpyHostToDevice, s));
      }
      plan.graph.launch(s);
      STRATA_CUDA_CHECK(cudaMemcpyAsync(exec_->pinned_output(), output_buffer(),
                                        out_bytes(batch), cudaMemcpyDeviceToHost, s));
      STRATA_CUDA_CHECK(cudaStreamSynchronize(s));
    } catch (...) {
      // Copies already queued may still read the staging buffer: the next call must not write
      // it before they finish.
      (void)cudaStreamSynchronize(s);
      throw;
    }
    std::memcpy(out.data(), exec_->pinned_output(), out_bytes(batch));
  }

  /// Host to host without waiting: `in` and `out` must be page-locked host memory
  /// (PinnedBuffer, cudaHostAlloc, cudaHostRegister) or device memory, and stay untouched until
  /// the returned Pending is done. Batches run in order on the engine's stream; with
  /// EngineOptions::io_slots = 2 batch k+1's upload overlaps batch k's compute and batch k−1's
  /// download, so a stream of batches runs at the speed of the slowest of the three.
  template <InputRange R>
  [[nodiscard]] Pending enqueue(const R& input, std::span<float> out, int batch) {
    const auto in = as_span(input);
    check_io(in, out, batch, "enqueue");
    check_not_pageable(in.data(), "input");
    check_not_pageable(out.data(), "output");
    return Pending(exec_->enqueue(in.data(), in_bytes(batch), out.data(), out_bytes(batch), batch));
  }

  /// Waits for everything this engine context has enqueued.
  void synchronize() const { exec_->synchronize(); }

  /// The engine's own device input (max_batch × input values, of the input format's type In)
  /// and output buffers.
  template <class In = float>
    requires is_input_type_v<In>
  [[nodiscard]] In* input_buffer() const {
    check_format<In>("input_buffer");
    return static_cast<In*>(exec_->input_buffer());
  }
  /// The device output forward() writes. infer() does not always pass through it: on the
  /// copy-free host path (infer_without_copies) the kernel writes the pinned output directly.
  [[nodiscard]] float* output_buffer() const { return exec_->output_buffer(); }
  [[nodiscard]] InputFormat input_format() const { return options_.input.format; }
  [[nodiscard]] cudaStream_t stream() const { return exec_->stream(); }
  [[nodiscard]] int max_batch() const { return options_.max_batch; }
  [[nodiscard]] const EngineStats& stats() const { return exec_->stats(); }

  /// GPU time per step at `batch` (µs per replay, median, of a graph holding that step alone:
  /// "input", each op's label, "output"). For reports: it captures graphs and creates events.
  [[nodiscard]] std::vector<std::pair<std::string, float>> profile(int batch, int iters = 50) {
    check_batch(batch, "profile");
    exec_->finish_enqueued();  // the steps write slot 0, which an enqueued batch may still use
    const ExecPlan& plan = exec_->plan_for(batch, stream());
    return plan.profile(stream(), exec_->workspace(), iters);
  }

  /// Where the fused-network kernel's time goes at `batch` (µs per phase, median of `iters`
  /// launches, measured inside the kernel: "input", each op — a conv with its pool as one —,
  /// "output"); empty when `batch` takes the per-op path.
  [[nodiscard]] std::vector<std::pair<std::string, float>> fused_phases(int batch,
                                                                        int iters = 21) {
    check_batch(batch, "fused_phases");
    exec_->finish_enqueued();
    const ExecPlan& plan = exec_->plan_for(batch, stream());
    for (const PlannedStep& p : plan.steps) {
      if (auto ph = p.step->phases(stream(), iters); !ph.empty()) {
        return ph;
      }
    }
    return {};
  }

  /// Whether infer() at `batch` runs the fused kernel alone, reading the pinned input staging
  /// and writing the pinned output itself (no copy nodes in its graph): on the fused path, one
  /// image per thread-block cluster, at most 4 input floats per thread of the cluster.
  [[nodiscard]] bool infer_without_copies(int batch) const {
    check_batch(batch, "infer_without_copies");
    return exec_->fused_host_step(batch) != nullptr;
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

  /// The network's summary (Net::summary: layers, shapes, parameters, fused ops), then what this
  /// engine made of it: precision and storage, the input form, whether the network fits the
  /// fused-network kernel (and why not) and which path `batch` takes, what runs each step at
  /// `batch` (0: max_batch), and the device memory it holds.
  void summary(std::ostream& os, int batch = 0) {
    const int b = batch == 0 ? options_.max_batch : batch;
    check_batch(b, "summary");
    Network::summary(os);
    const InputOptions& in = options_.input;
    const EngineStats& st = stats();
    os << "CUDA engine: " << dtype_name(P) << ", activations stored " << layout_name(layout)
       << (layout == Layout::nhwc ? " (channels padded to multiples of 8)" : "")
       << (options_.allow_tf32 && P == DType::f32 ? ", TF32 allowed" : "")
       << (P == DType::tf32 ? ", f32 values; convolutions and matmuls may use TF32 tensor cores"
                            : "")
       << "; batches 1.."
       << options_.max_batch << "; input " << input_format_name(in.format)
       << (in.normalizes() ? ", normalized on the GPU" : "") << "\n";
    os << "Fused-network kernel: "
       << (fused_fit.fits ? std::string("the network fits") : "does not fit: " + std::string(fused_fit.reason));
    if (fused_fit.fits) {
      os << (options_.fused_max_batch > 0
                 ? "; batches up to " + std::to_string(options_.fused_max_batch) + " run it"
                 : std::string("; not used (EngineOptions::fused_max_batch resolved to 0)"));
    }
    os << "\nPath at batch " << b << ": " << path(b);
    if (!st.plan_kept.empty()) {
      os << "\nWhole-plan check at batch " << options_.max_batch << " (EngineOptions::plan_check): "
         << "measured tuning's choices " << st.plan_check_measured_us << " µs, the heuristic's "
         << st.plan_check_heuristic_us << " µs; kept "
         << (st.plan_kept == "measured" ? "measured tuning's" : "the heuristic's")
         << (st.plan_check_error.empty() ? "" : " (the check failed: " + st.plan_check_error + ")");
    }
    os << "\nLaunches (EngineOptions::pdl, " << pdl_name(options_.pdl) << "): Strata's kernels "
       << (st.pdl ? "as programmatic dependent launches" : "as ordinary launches");
    if (st.pdl_check_on_us > 0.0) {
      os << " (timed at batch " << options_.max_batch << ": " << st.pdl_check_off_us
         << " µs ordinary, " << st.pdl_check_on_us << " µs programmatic)";
    } else if (!st.pdl_check_error.empty()) {
      os << " (the timing failed: " << st.pdl_check_error << ")";
    }
    os << "\nSteps at batch " << b << ":\n";
    std::istringstream steps(describe(b));
    for (std::string line; std::getline(steps, line);) {
      os << "  " << line << "\n";
    }
    os << "Device memory: arena " << st.arena_bytes << " B, workspace " << st.workspace_bytes
       << " B, weights " << st.weight_bytes << " B, " << options_.io_slots
       << " input/output buffer pair(s)\n";
  }

 private:
  // A context sharing `model`.
  Engine(std::shared_ptr<const Model<P>> model, EngineOptions options)
      : options_(std::move(options)),
        model_(std::move(model)),
        exec_(std::make_unique<Executor<P>>(model_->net, options_.max_batch,
                                            options_.allow_tf32, options_.input,
                                            options_.io_slots, branches(options_))) {
    exec_->build(model_, options_.capture_batches);
  }

  /// Whether the per-op path may launch Strata's kernels as programmatic dependent launches:
  /// the GPU has them (Hopper on) and EngineOptions::pdl asks for them (Pdl::on) or for the
  /// timing (Pdl::timed, not beside concurrent_branches, which then has its two streams).
  static bool may_pdl(const EngineOptions& o) {
    return device_arch() >= 90 &&
           (o.pdl == Pdl::on || (o.pdl == Pdl::timed && !o.concurrent_branches));
  }
  /// Whether the per-op path runs ops beside the next on a second stream (concurrent_branches,
  /// where no programmatic dependent launch may be made).
  static bool branches(const EngineOptions& o) { return o.concurrent_branches && !may_pdl(o); }

  /// Pdl::timed: the plan at max_batch timed with ordinary and with programmatic dependent
  /// launches; whether PDL is over 1% faster (the timings' noise, as the whole-plan check has
  /// it; EngineStats::pdl_check_*). A failed timing answers no and says why; it does not fail the
  /// build.
  [[nodiscard]] bool time_launches(const std::shared_ptr<Model<P>>& model) {
    EngineStats& st = exec_->stats();
    try {
      const auto [off_ms, on_ms] = exec_->time_pdl(model);
      st.pdl_check_off_us = 1000.0 * off_ms;
      st.pdl_check_on_us = 1000.0 * on_ms;
      return on_ms < 0.99f * off_ms;
    } catch (const std::exception& e) {
      (void)cudaGetLastError();
      st.pdl_check_error = e.what();
      return false;
    }
  }
  static EngineOptions checked(EngineOptions o) {
    STRATA_CHECK(o.max_batch >= 1, "cuda::Engine: max_batch must be at least 1, got " << o.max_batch);
    STRATA_CHECK(o.fused_max_batch >= 0 || o.fused_max_batch == fused_auto,
                 "cuda::Engine: fused_max_batch must be 0 or more (or fused_auto), got "
                     << o.fused_max_batch);
    STRATA_CHECK(o.io_slots >= 1, "cuda::Engine: io_slots must be at least 1, got " << o.io_slots);
    STRATA_CHECK(o.fused_cluster == 0 || o.fused_cluster == 1 || o.fused_cluster == 2 ||
                     o.fused_cluster == 4 || o.fused_cluster == 8 || o.fused_cluster == 16,
                 "cuda::Engine: fused_cluster must be 0 (automatic), 1, 2, 4, 8 or 16, got "
                     << o.fused_cluster);
    const InputOptions& in = o.input;
    constexpr auto channels = static_cast<std::size_t>(Network::input_spec.shape.c);
    STRATA_CHECK(in.mean.empty() || in.mean.size() == channels,
                 "cuda::Engine: input.mean holds " << in.mean.size() << " values; the input has "
                                                   << channels << " channels");
    STRATA_CHECK(in.stddev.empty() || in.stddev.size() == channels,
                 "cuda::Engine: input.stddev holds " << in.stddev.size()
                                                     << " values; the input has " << channels
                                                     << " channels");
    for (std::size_t c = 0; c < in.stddev.size(); ++c) {
      STRATA_CHECK(in.stddev[c] != 0.0f && std::isfinite(in.stddev[c]),
                   "cuda::Engine: input.stddev[" << c << "] is " << in.stddev[c]
                                                 << "; it must be finite and not 0");
    }
    STRATA_CHECK(std::isfinite(in.scale) && in.scale != 0.0f,
                 "cuda::Engine: input.scale is " << in.scale << "; it must be finite and not 0");
    if (o.fused_max_batch == fused_auto) {  // the engine decides
      int device = 0;
      int major = 0;
      STRATA_CUDA_CHECK(cudaGetDevice(&device));
      STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
      o.fused_max_batch = resolved_fused_max_batch(o.fused_max_batch, o.max_batch,
                                                   NetStorage<Net, P>::fused_fit().fits, in, major);
    }
    STRATA_CHECK(o.fused_max_batch == 0 || (in.format == InputFormat::f32 && !in.normalizes()),
                 "cuda::Engine: the fused-network path (fused_max_batch "
                     << o.fused_max_batch << ") reads f32 input without normalization; input is "
                     << input_format_name(in.format) << (in.normalizes() ? ", normalized" : ""));
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
  template <class In>
  void check_format(const char* what) const {
    STRATA_CHECK(input_format_of<In>() == options_.input.format,
                 "cuda::Engine::" << what << ": the input is "
                                  << input_format_name(input_format_of<In>())
                                  << " but this engine was built for "
                                  << input_format_name(options_.input.format)
                                  << " input (EngineOptions::input.format)");
  }
  template <class In>
  void check_io(std::span<const In> in, std::span<float> out, int batch, const char* what) const {
    check_batch(batch, what);
    check_format<In>(what);
    const std::size_t in_n = static_cast<std::size_t>(batch * input_numel);
    const std::size_t out_n = static_cast<std::size_t>(batch * output_numel);
    STRATA_CHECK(in.size() >= in_n, "cuda::Engine::" << what << ": the input holds " << in.size()
                                                     << " values, batch " << batch << " needs "
                                                     << in_n);
    STRATA_CHECK(out.size() >= out_n, "cuda::Engine::" << what << ": the output holds "
                                                       << out.size() << " floats, batch " << batch
                                                       << " needs " << out_n);
  }
  static void check_not_pageable(const void* p, const char* which) {
    cudaPointerAttributes a{};
    STRATA_CUDA_CHECK(cudaPointerGetAttributes(&a, p));
    STRATA_CHECK(a.type != cudaMemoryTypeUnregistered,
                 "cuda::Engine::enqueue: the "
                     << which
                     << " is pageable host memory; enqueue needs page-locked memory "
                        "(strata::cuda::PinnedBuffer, cudaHostAlloc or cudaHostRegister) or "
                        "device memory to overlap transfers with compute; infer() takes any "
                        "host memory");
  }
  std::size_t in_bytes(int batch) const {
    return static_cast<std::size_t>(batch * input_numel) *
           static_cast<std::size_t>(input_format_size(options_.input.format));
  }
  static std::size_t out_bytes(int batch) {
    return static_cast<std::size_t>(batch * output_numel) * sizeof(float);
  }

  EngineOptions options_;
  std::shared_ptr<const Model<P>> model_;
  std::unique_ptr<Executor<P>> exec_;
};

}  // namespace strata::cuda
