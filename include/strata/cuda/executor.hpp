#pragma once
/// One execution context of an engine: its stream, library handles, activation arena, shared
/// workspace, device and pinned I/O buffers, and an executable plan (with its CUDA graph) per
/// batch size. Everything it runs is described by a `Model`: the network in storage terms, its
/// device weights and the chosen variant of every op, shared by all contexts of one engine.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "strata/core/error.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/cublaslt.hpp"
#include "strata/cuda/cudnn.hpp"
#include "strata/cuda/device_weights.hpp"
#include "strata/cuda/engine_options.hpp"
#include "strata/cuda/exec_plan.hpp"
#include "strata/cuda/fused_network.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/registry.hpp"
#include "strata/cuda/tuner.hpp"

namespace strata::cuda {

/// What every execution context of one engine shares; immutable once built.
template <DType P>
struct Model {
  NetDesc net;
  DeviceWeights<P> weights;
  std::vector<Variant> variants;  ///< per op of net.ops (in order), chosen at the largest batch
  std::unique_ptr<FusedNetwork> fused;  ///< the whole network as one kernel, when it fits
  int fused_max_batch = 0;              ///< batches up to this run `fused`
};

/// One execution context (see the file comment). Move-only; to be used by one thread at a time.
template <DType P>
class Executor {
 public:
  /// Creates the stream and handles and allocates every buffer for batches up to `max_batch`
  /// of `net`; no plan yet (see build).
  Executor(const NetDesc& net, int max_batch, bool tf32 = false)
      : max_batch_(max_batch), tf32_(tf32 && net.precision == DType::f32) {
    int count = 0;
    STRATA_CUDA_CHECK(cudaGetDeviceCount(&count));
    STRATA_CHECK(count > 0, "cuda::Engine: no CUDA device");
    const rtc::BuildInfo& k = kernels::library<storage_t<P>>().info();  // compiled or cached
    stats_.kernels_compile_ms = k.compile_ms;
    stats_.kernels_load_ms = k.load_ms;
    stats_.kernels_from_disk = k.from_disk;
    stream_ = Stream::create();
    cudnn_ = CudnnHandle::create();
    cudnn_.set_stream(stream_.get());
    lt_ = LtHandle::create();
    const auto mb = static_cast<std::size_t>(max_batch);
    arena_ = DeviceBuffer(static_cast<std::size_t>(net.arena_per_image) * mb);
    staging_offset_ = net.staging_offset;
    // Zeroed once so that channel padding never holds NaN bits.
    STRATA_CUDA_CHECK(cudaMemset(arena_.get(), 0, arena_.bytes()));
    d_in_ = DeviceBuffer(static_cast<std::size_t>(net.in_shape.numel()) * mb * sizeof(float));
    d_out_ = DeviceBuffer(static_cast<std::size_t>(net.out_shape.numel()) * mb * sizeof(float));
    STRATA_CUDA_CHECK(cudaMemset(d_in_.get(), 0, d_in_.bytes()));
    pinned_in_ = PinnedBuffer(d_in_.bytes());
    pinned_out_ = PinnedBuffer(d_out_.bytes());
    stats_.arena_bytes = arena_.bytes();
  }
  Executor(Executor&&) noexcept = default;
  Executor& operator=(Executor&&) noexcept = default;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  ~Executor() {
    if (stream_.get() != nullptr) {
      (void)cudaStreamSynchronize(stream_.get());
    }
  }

  /// Plans the largest batch and `capture_batches` (the workspace covers all of them), then
  /// captures the listed batches' graphs.
  void build(std::shared_ptr<const Model<P>> model, const std::vector<int>& capture_batches) {
    model_ = std::move(model);
    std::vector<int> batches = capture_batches;
    batches.push_back(max_batch_);
    std::sort(batches.begin(), batches.end());
    batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
    std::size_t ws = 0;
    for (int b : batches) {
      ExecPlan p = make_plan(b, 0);
      ws = std::max(ws, p.workspace_bytes());
      plans_.emplace(b, std::move(p));
    }
    workspace_ = DeviceBuffer(ws);
    stats_.workspace_bytes = ws;
    stats_.weight_bytes = model_->weights.bytes();
    if (model_->fused) {
      stats_.fused_network = true;
      stats_.fused_compile_ms = model_->fused->info().compile_ms;
      stats_.fused_from_disk = model_->fused->info().from_disk;
    }
    for (int b : capture_batches) {
      capture(b);
    }
    const ExecPlan& top = plans_.at(max_batch_);
    for (const PlannedStep& s : top.steps) {
      stats_.convs_fused += s.step->library_fused();
    }
  }

  /// The plan for `batch` with its graph, capturing it first if needed (after `user_stream`'s
  /// pending work, which may still read the output buffer).
  ExecPlan& plan_for(int batch, cudaStream_t user_stream) {
    auto it = plans_.find(batch);
    if (it != plans_.end() && it->second.graph) {
      return it->second;
    }
    STRATA_CUDA_CHECK(cudaStreamSynchronize(user_stream));
    capture(batch);
    return plans_.at(batch);
  }

  /// Device pointers of `op` at `batch`.
  [[nodiscard]] OpIo io(const OpDesc& op, int batch) const {
    std::uint8_t* a = arena_.as<std::uint8_t>();
    OpIo io;
    // A concat's slice starts elem_offset elements into its output's first image.
    const std::int64_t slice =
        op.slice ? op.slice->elem_offset * static_cast<std::int64_t>(sizeof(storage_t<P>)) : 0;
    io.x = a + op.in_offset * batch;
    io.z = op.z_offset >= 0 ? a + op.z_offset * batch : nullptr;
    io.y = a + op.out_offset * batch + (op.pool ? 0 : slice);
    io.pooled = op.pool ? a + op.pool->out_offset * batch + slice : nullptr;
    io.user_out = d_out_.as<float>();
    io.staging = a + staging_offset_ * batch;
    return io;
  }

  [[nodiscard]] Libraries libraries() const { return {cudnn_.get(), lt_.get(), tf32_}; }
  [[nodiscard]] cudaStream_t stream() const { return stream_.get(); }
  [[nodiscard]] const DeviceBuffer& workspace() const { return workspace_; }
  [[nodiscard]] float* input_buffer() const { return d_in_.as<float>(); }
  [[nodiscard]] float* output_buffer() const { return d_out_.as<float>(); }
  [[nodiscard]] float* pinned_input() const { return pinned_in_.as<float>(); }
  [[nodiscard]] float* pinned_output() const { return pinned_out_.as<float>(); }
  [[nodiscard]] EngineStats& stats() { return stats_; }
  [[nodiscard]] const EngineStats& stats() const { return stats_; }

  /// Whether `batch` runs as the fused-network kernel ("fused network") or op by op ("per-op").
  [[nodiscard]] const char* path(int batch) const {
    return model_->fused && batch <= model_->fused_max_batch ? "fused network" : "per-op";
  }

  /// One line per step at `batch` (planned if it was not): its label and what runs it.
  [[nodiscard]] std::string describe(int batch) {
    auto it = plans_.find(batch);
    if (it == plans_.end()) {
      it = plans_.emplace(batch, make_plan(batch, workspace_.bytes())).first;
    }
    std::ostringstream os;
    for (const PlannedStep& s : it->second.steps) {
      os << s.label << ": " << s.step->describe() << "\n";
    }
    return os.str();
  }

 private:
  /// The steps of `batch`. Each op runs its chosen variant; where that variant cannot run at
  /// this batch (or needs more than `ws_limit` workspace bytes, 0 = any), the heuristic choice
  /// at this batch within the limit does.
  [[nodiscard]] ExecPlan make_plan(int batch, std::size_t ws_limit) const {
    const Model<P>& m = *model_;
    const Libraries lib = libraries();
    ExecPlan plan;
    if (m.fused && batch <= m.fused_max_batch) {  // the whole network, one launch
      plan.steps.push_back({"network", std::make_unique<FusedNetworkStep<P>>(
                                           *m.fused, m.net, m.weights, d_in_.as<float>(),
                                           d_out_.as<float>(), arena_.get(), batch)});
      return plan;
    }
    plan.steps.push_back({"input", input_step<P>(m.net, d_in_.as<float>(), arena_.get(), batch)});
    for (std::size_t i = 0; i < m.net.ops.size(); ++i) {
      const OpDesc& op = m.net.ops[i];
      const LayerScope scope(op.label);
      const OpWeights& w = m.weights.op(op.index);
      std::unique_ptr<Step> step;
      if (const Tactic<P>* t = find_tactic<P>(m.variants[i].tactic); t != nullptr) {
        try {
          step = prepare_step(*t, op, m.variants[i], batch, w, io(op, batch), lib);
        } catch (const Error&) {
          step.reset();
        }
      }
      if (!step || (ws_limit > 0 && step->workspace_bytes() > ws_limit)) {
        const Variant h =
            heuristic_variant<P>(op, batch, ws_limit > 0 ? ws_limit : std::size_t{1} << 30, lib);
        step = prepare_step(*find_tactic<P>(h.tactic), op, h, batch, w, io(op, batch), lib);
      }
      plan.steps.push_back({op.label, std::move(step)});
    }
    if (m.net.needs_output_step) {
      plan.steps.push_back(
          {"output", output_step<P>(m.net, arena_.get(), d_out_.as<float>(), batch)});
    }
    return plan;
  }

  void capture(int batch) {
    auto it = plans_.find(batch);
    if (it == plans_.end()) {
      it = plans_.emplace(batch, make_plan(batch, workspace_.bytes())).first;
    }
    it->second.capture(stream_.get(), workspace_);
    ++stats_.graphs_captured;
  }

  int max_batch_ = 1;
  bool tf32_ = false;
  std::int64_t staging_offset_ = 0;  ///< per image (NetDesc::staging_offset)
  std::shared_ptr<const Model<P>> model_;
  EngineStats stats_{};
  Stream stream_;
  CudnnHandle cudnn_;
  LtHandle lt_;
  DeviceBuffer arena_;
  DeviceBuffer workspace_;
  DeviceBuffer d_in_;
  DeviceBuffer d_out_;
  PinnedBuffer pinned_in_;
  PinnedBuffer pinned_out_;
  std::map<int, ExecPlan> plans_;
};

}  // namespace strata::cuda
