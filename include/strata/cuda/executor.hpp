#pragma once
/// One execution context of an engine: its stream, library handles, activation arena, shared
/// workspace, device and pinned I/O buffers, and an executable plan (with its CUDA graph) per
/// batch size. Everything it runs is described by a `Model`: the network in storage terms, its
/// device weights and the chosen variant of every op, shared by all contexts of one engine.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
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
#include "strata/cuda/graph_capture.hpp"
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
  /// Per op: its variant was named by EngineOptions::force — where it cannot run, that is an
  /// error rather than a fall-back to the heuristic's choice.
  std::vector<bool> forced{};
  /// The per-op path launches Strata's kernels as programmatic dependent launches
  /// (EngineOptions::pdl, as the engine that chose the variants decided; its contexts too).
  bool pdl = false;
};

/// One pair of device input/output buffers and the events that order their use by enqueue():
/// the upload into `in` waits for `computed` (the last graph that read it has finished), the
/// graph waits for `uploaded` and for `downloaded` (the last download from `out`).
struct IoSlot {
  DeviceBuffer in;
  DeviceBuffer out;
  Event uploaded;
  Event computed;
  Event downloaded;
};

/// GPU milliseconds per replay of graphs `a` and `b` on `s`, timed in turns (time_graph each),
/// three rounds: the median of each's three.
[[nodiscard]] inline std::pair<float, float> time_in_turns(const GraphExec& a, const GraphExec& b,
                                                           cudaStream_t s) {
  std::array<float, 3> ta{};
  std::array<float, 3> tb{};
  for (std::size_t round = 0; round < ta.size(); ++round) {
    ta[round] = time_graph(a, s);
    tb[round] = time_graph(b, s);
  }
  STRATA_CUDA_CHECK(cudaStreamSynchronize(s));
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  return {ta[1], tb[1]};
}

/// Sets `slot` to `other` for a scope, then back (an executor's model while another is timed).
template <class M>
class ModelSwap {
 public:
  ModelSwap(std::shared_ptr<const M>& slot, std::type_identity_t<std::shared_ptr<const M>> other)
      : slot_(slot), own_(std::exchange(slot, std::move(other))) {}
  ModelSwap(const ModelSwap&) = delete;
  ModelSwap& operator=(const ModelSwap&) = delete;
  ~ModelSwap() { slot_ = std::move(own_); }

 private:
  std::shared_ptr<const M>& slot_;
  std::shared_ptr<const M> own_;
};

/// One execution context (see the file comment). Move-only; to be used by one thread at a time.
template <DType P>
class Executor {
 public:
  /// Creates the streams and handles and allocates every buffer for batches up to `max_batch`
  /// of `net` (input in `input`'s form, `io_slots` input/output buffer pairs); no plan yet (see
  /// build).
  /// `branches`: an op that may run beside the next one does, on a second stream
  /// (EngineOptions::concurrent_branches, where the caller makes no programmatic dependent
  /// launches). Whether the per-op plans launch Strata's kernels as programmatic dependent
  /// launches is the model's (Model::pdl).
  Executor(const NetDesc& net, int max_batch, bool tf32 = false, const InputOptions& input = {},
           int io_slots = 1, bool branches = false)
      : max_batch_(max_batch),
        tf32_((tf32 && net.precision == DType::f32) || net.precision == DType::tf32),
        format_(input.format),
        input_id_(net.input_id), in_shape_(net.in_shape),
        input_hwc_(input_is_hwc(input.format, net.in_layout)) {
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
    STRATA_CUDA_CHECK(cudaMemsetAsync(arena_.get(), 0, arena_.bytes(), stream_.get()));
    const std::size_t in_bytes = static_cast<std::size_t>(net.in_shape.numel()) * mb *
                                 static_cast<std::size_t>(input_format_size(input.format));
    const std::size_t out_bytes = static_cast<std::size_t>(net.out_shape.numel()) * mb * sizeof(float);
    for (int i = 0; i < std::max(io_slots, 1); ++i) {
      IoSlot& slot = slots_.emplace_back(IoSlot{DeviceBuffer(in_bytes), DeviceBuffer(out_bytes),
                                                Event::create(false), Event::create(false),
                                                Event::create(false)});
      STRATA_CUDA_CHECK(cudaMemsetAsync(slot.in.get(), 0, slot.in.bytes(), stream_.get()));
    }
    if (input.normalizes()) {
      const std::vector<float> ab = input_affine(input, static_cast<int>(net.in_shape.c));
      affine_ = DeviceBuffer(ab.size() * sizeof(float));
      STRATA_CUDA_CHECK(
          cudaMemcpy(affine_.get(), ab.data(), affine_.bytes(), cudaMemcpyHostToDevice));
    }
    pinned_in_ = PinnedBuffer(in_bytes);
    pinned_out_ = PinnedBuffer(out_bytes);
    upload_ = Stream::create();
    download_ = Stream::create();
    if (branches) {
      branch_ = std::make_unique<Branch>();
      branch_->cudnn = CudnnHandle::create();
      branch_->cudnn.set_stream(branch_->stream.get());
    }
    stats_.arena_bytes = arena_.bytes();
    stream_.synchronize();  // the zeroing, before anything reads these buffers
  }
  Executor(Executor&&) noexcept = default;
  // Not move-assignable: the target's in-flight work would need the destructor's waits first.
  Executor& operator=(Executor&&) = delete;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  ~Executor() {
    for (const Stream* s : {&stream_, &upload_, &download_}) {
      if (s->get() != nullptr) {
        (void)cudaStreamSynchronize(s->get());
      }
    }
    if (branch_ != nullptr) {
      (void)cudaStreamSynchronize(branch_->stream.get());
    }
  }

  /// Plans the largest batch and `capture_batches` (the workspace covers all of them), then
  /// captures the listed batches' graphs.
  void build(std::shared_ptr<const Model<P>> model, const std::vector<int>& capture_batches) {
    model_ = std::move(model);
    stats_.pdl = model_->pdl;
    std::vector<int> batches = capture_batches;
    batches.push_back(max_batch_);
    std::sort(batches.begin(), batches.end());
    batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
    precompile_chosen();
    std::size_t ws = 0;
    std::size_t side_ws = 0;
    for (int b : batches) {
      ExecPlan p = make_plan(b, 0, any_workspace);
      ws = std::max(ws, p.workspace_bytes());
      side_ws = std::max(side_ws, p.workspace_bytes(true));
      plans_.emplace(std::pair{b, 0}, std::move(p));
    }
    workspace_ = DeviceBuffer(ws);
    if (branch_ != nullptr) {
      branch_->workspace = DeviceBuffer(side_ws);
    }
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
    const ExecPlan& top = plans_.at({max_batch_, 0});
    for (const PlannedStep& s : top.steps) {
      stats_.convs_fused += s.step->library_fused();
    }
  }

  /// GPU milliseconds per replay at the largest batch of `model`'s plan and of the same model
  /// with `other` variants (EngineOptions::plan_check, before build): both plans made (their
  /// generated kernels compiled side by side first) and captured, then timed in turns — three
  /// rounds, the median of each — and dropped. `model`'s variants are as given on return, also
  /// when it throws; the executor's model is restored. Not with a second stream
  /// (concurrent_branches). The arena's contents after it are whatever the plans left.
  [[nodiscard]] std::pair<float, float> time_plans(const std::shared_ptr<Model<P>>& model,
                                                   std::vector<Variant> other) {
    STRATA_CHECK(branch_ == nullptr, "cuda::Engine: a whole plan is timed on one stream (not "
                                     "with concurrent_branches)");
    synchronize();  // (nothing enqueued may still use the arena or slot 0)
    const ModelSwap restore(model_, model);
    precompile_chosen();
    ExecPlan a = make_plan(max_batch_, 0, any_workspace);
    std::swap(model->variants, other);
    struct Unswap {
      std::vector<Variant>& x;
      std::vector<Variant>& y;
      ~Unswap() { std::swap(x, y); }
    } unswap{model->variants, other};
    precompile_chosen();
    ExecPlan b = make_plan(max_batch_, 0, any_workspace);
    const DeviceBuffer ws(std::max(a.workspace_bytes(), b.workspace_bytes()));
    a.capture(stream_.get(), ws);
    b.capture(stream_.get(), ws);
    return time_in_turns(a.graph, b.graph, stream_.get());
  }

  /// GPU milliseconds per replay at the largest batch of `model`'s plan with Strata's kernels
  /// launched as usual and as programmatic dependent launches (EngineOptions::pdl's Pdl::timed,
  /// before build; the caller checks the GPU has them): one plan made, captured both ways, timed
  /// in turns — three rounds, the median of each — and dropped. The executor's model is
  /// restored. Not with a second stream (concurrent_branches).
  [[nodiscard]] std::pair<float, float> time_pdl(const std::shared_ptr<const Model<P>>& model) {
    STRATA_CHECK(branch_ == nullptr, "cuda::Engine: launches are timed on one stream (not with "
                                     "concurrent_branches)");
    synchronize();  // (nothing enqueued may still use the arena or slot 0)
    const ModelSwap restore(model_, model);
    precompile_chosen();
    ExecPlan plan = make_plan(max_batch_, 0, any_workspace);
    const DeviceBuffer ws(plan.workspace_bytes());
    plan.pdl = false;
    plan.capture(stream_.get(), ws);
    GraphExec plain = std::move(plan.graph);
    plan.pdl = true;
    plan.capture(stream_.get(), ws);
    return time_in_turns(plain, plan.graph, stream_.get());
  }

  /// The plan for `batch` reading and writing I/O slot `slot`, with its graph, capturing it
  /// first if needed (after `user_stream`'s pending work, which may still read the output
  /// buffer, and after every enqueued batch).
  ExecPlan& plan_for(int batch, cudaStream_t user_stream, int slot = 0) {
    auto it = plans_.find({batch, slot});
    if (it != plans_.end() && it->second.graph) {
      return it->second;
    }
    STRATA_CUDA_CHECK(cudaStreamSynchronize(user_stream));
    synchronize();
    capture(batch, slot);
    return plans_.at({batch, slot});
  }

  /// plan_for(batch) on I/O slot 0 with its host graph captured: `in_bytes` uploaded from the
  /// pinned input staging, the steps, `out_bytes` downloaded into the pinned output.
  /// On the fused-network path, where each image has a cluster of its own and at most 4 floats
  /// per thread of it (one 16-byte load each where the image is a multiple of 4 floats, else up
  /// to 4 scalar loads), the graph is the fused kernel alone, reading the pinned input and writing
  /// the pinned output itself (no copy nodes: on an H200, a 3-node graph of 3 KB upload, kernel
  /// and 40 B download took ~15 µs more host wall time than the kernel; the kernel alone ~4 µs).
  ExecPlan& host_plan_for(int batch, std::size_t in_bytes, std::size_t out_bytes) {
    ExecPlan& plan = plan_for(batch, stream_.get(), 0);
    if (!plan.host_graph) {
      const IoSlot& s = slots_.front();
      if (auto step = fused_host_step(batch)) {
        plan.host_step = std::move(step);
        plan.host_graph = capture_graph(stream_.get(), [&](cudaStream_t cs) {
          plan.host_step->launch(cs, workspace_.get(), workspace_.bytes());
        });
        return plan;
      }
      plan.host_graph = capture_graph(stream_.get(), [&](cudaStream_t cs) {
        STRATA_CUDA_CHECK(cudaMemcpyAsync(s.in.get(), pinned_in_.get(), in_bytes,
                                          cudaMemcpyHostToDevice, cs));
        plan.run(cs, workspace_);
        STRATA_CUDA_CHECK(cudaMemcpyAsync(pinned_out_.get(), s.out.get(), out_bytes,
                                          cudaMemcpyDeviceToHost, cs));
      });
    }
    return plan;
  }

  /// Enqueues one batch, host to host (or device to device): `in` (in_bytes, page-locked host
  /// or device memory) is uploaded into the next I/O slot on the upload stream, the batch's
  /// graph runs on the engine's stream, and the result is downloaded into `out` (out_bytes) on
  /// the download stream. Returns the event recorded after the download. Nothing here blocks
  /// the host unless the slot's graph has not been captured yet.
  cudaEvent_t enqueue(const void* in, std::size_t in_bytes, float* out, std::size_t out_bytes,
                      int batch) {
    enqueued_ = true;
    const int k = next_slot_;
    IoSlot& slot = slots_[static_cast<std::size_t>(k)];
    ExecPlan& plan = plan_for(batch, stream_.get(), k);
    next_slot_ = (next_slot_ + 1) % static_cast<int>(slots_.size());
    // Upload once the last graph that read this slot has finished.
    STRATA_CUDA_CHECK(cudaStreamWaitEvent(upload_.get(), slot.computed.get(), 0));
    STRATA_CUDA_CHECK(cudaMemcpyAsync(slot.in.get(), in, in_bytes, cudaMemcpyDefault, upload_.get()));
    slot.uploaded.record(upload_.get());
    // Compute once uploaded and once the last download from this slot's output is done.
    STRATA_CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), slot.uploaded.get(), 0));
    STRATA_CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), slot.downloaded.get(), 0));
    plan.graph.launch(stream_.get());
    slot.computed.record(stream_.get());
    // Download once computed.
    STRATA_CUDA_CHECK(cudaStreamWaitEvent(download_.get(), slot.computed.get(), 0));
    STRATA_CUDA_CHECK(
        cudaMemcpyAsync(out, slot.out.get(), out_bytes, cudaMemcpyDefault, download_.get()));
    slot.downloaded.record(download_.get());
    return slot.downloaded.get();
  }

  /// Waits for the batches enqueue() has handed out, if any since the last wait (forward and
  /// infer use I/O slot 0 on the engine's stream; an enqueued batch may still be using it).
  void finish_enqueued() {
    if (enqueued_) {
      synchronize();
      enqueued_ = false;
    }
  }

  /// Waits for everything enqueued on the context's three streams.
  void synchronize() const {
    stream_.synchronize();
    upload_.synchronize();
    download_.synchronize();
  }

  /// Device pointers of `op` at `batch`, writing the output of I/O slot `slot` (a side conv's
  /// weights once the model is built: the tuner sets them before).
  [[nodiscard]] OpIo io(const OpDesc& op, int batch, int slot = 0) const {
    std::uint8_t* a = arena_.as<std::uint8_t>();
    OpIo io;
    // A concat's slice (the result's, or the input's when it is one) starts elem_offset elements
    // into its output's first image.
    const auto bytes_into = [](const std::optional<OutSlice>& s) -> std::int64_t {
      return s ? s->elem_offset * static_cast<std::int64_t>(sizeof(storage_t<P>)) : 0;
    };
    const std::int64_t slice = bytes_into(op.slice);
    io.x = a + op.in_offset * batch + bytes_into(op.in_slice);
    io.z = op.z_offset >= 0 ? a + op.z_offset * batch : nullptr;
    io.y = a + op.out_offset * batch + (op.pool ? 0 : slice);
    io.pooled = op.pool ? a + op.pool->out_offset * batch + slice : nullptr;
    io.gap_in = op.gap ? a + op.gap->in_offset * batch : nullptr;
    io.gate_x = op.gate ? a + op.gate->x_offset * batch : nullptr;
    io.gate = op.gate ? a + op.gate->gate_offset * batch : nullptr;
    if (op.side) {
      io.side_y = a + op.side->out_offset * batch;
      io.side_weights = model_ != nullptr ? &model_->weights.op(op.side->index) : nullptr;
    }
    if (op.expand) {
      io.expand_x = a + op.expand->in_offset * batch;
      io.expand_weights = model_ != nullptr ? &model_->weights.op(op.expand->index) : nullptr;
    }
    if (op.squeeze) {
      io.squeeze_x = a + op.squeeze->gap->in_offset * batch;
      io.squeeze_pooled = a + op.squeeze->in_offset * batch;
      io.squeeze_weights = model_ != nullptr ? &model_->weights.op(op.squeeze->index) : nullptr;
    }
    const auto excite_io = [&](const OpDesc& q) {  // a joined squeeze-excite op's buffers
      OpIo::Excite e;
      e.squeezed = a + q.in_offset * batch;
      e.pooled = a + q.squeeze->in_offset * batch;
      e.weights = model_ != nullptr ? &model_->weights.op(q.index) : nullptr;
      e.squeeze_weights = model_ != nullptr ? &model_->weights.op(q.squeeze->index) : nullptr;
      return e;
    };
    if (op.excite) {
      io.excite = excite_io(*op.excite);
    }
    if (op.tail) {
      io.tail = excite_io(*op.tail);
      io.tail.gate = a + op.tail->out_offset * batch;
    }
    if (op.project) {
      const OpDesc& q = *op.project;
      io.project.y = a + q.out_offset * batch;
      io.project.z = q.z_offset >= 0 ? a + q.z_offset * batch : nullptr;
      io.project.weights = model_ != nullptr ? &model_->weights.op(q.index) : nullptr;
    }
    if (op.norm) {
      io.norm_x = a + op.norm->in_offset * batch + bytes_into(op.norm->in_slice);
      io.norm_weights = model_ != nullptr ? &model_->weights.op(op.norm->index) : nullptr;
    }
    if (op.bottleneck) {
      const OpDesc& b = *op.bottleneck;
      io.bottleneck_x = a + b.in_offset * batch;
      io.bottleneck_norm_x = a + b.norm->in_offset * batch + bytes_into(b.norm->in_slice);
      io.bottleneck_weights = model_ != nullptr ? &model_->weights.op(b.index) : nullptr;
      io.bottleneck_norm_weights = model_ != nullptr ? &model_->weights.op(b.norm->index) : nullptr;
    }
    io.user_out = slots_[static_cast<std::size_t>(slot)].out.as<float>();
    io.staging = a + staging_offset_ * batch;
    // The caller's input, as it was given (also for a conv that reads it space-to-depth: a
    // tactic that converts it itself does that rearrangement too, or reads io.x as stored).
    if (reads_network_input(op, input_id_)) {  // (also through a folded stem: fold_stem_depthwise)
      io.net_input = slots_[static_cast<std::size_t>(slot)].in.get();
      io.net_input_format = format_;
      io.net_input_hwc = input_hwc_;
      io.net_input_affine = affine_.as<float>();
      io.net_input_shape = in_shape_;
    }
    return io;
  }

  /// The input step of `net` at `batch` from I/O slot `slot`'s input (the plans' first step;
  /// measured tuning also times it: see choose_variants).
  [[nodiscard]] std::unique_ptr<Step> input_step_at(const NetDesc& net, int batch, int slot = 0) const {
    const IoSlot& s = slots_[static_cast<std::size_t>(slot)];
    return input_step<P>(net, {s.in.get(), format_, affine_.as<float>()}, arena_.get(), batch);
  }

  /// The output step of `net` at `batch` into I/O slot `slot`'s output (the plans' last step
  /// unless the last op's step writes the output itself; measured tuning also times it).
  [[nodiscard]] std::unique_ptr<Step> output_step_at(const NetDesc& net, int batch, int slot = 0) const {
    return output_step<P>(net, arena_.get(), slots_[static_cast<std::size_t>(slot)].out.as<float>(),
                          batch);
  }

  [[nodiscard]] Libraries libraries() const { return {cudnn_.get(), lt_.get(), tf32_}; }
  [[nodiscard]] cudaStream_t stream() const { return stream_.get(); }
  [[nodiscard]] const DeviceBuffer& workspace() const { return workspace_; }
  /// I/O slot 0's device buffers (forward and infer use slot 0) and the pinned staging of infer.
  [[nodiscard]] void* input_buffer() const { return slots_.front().in.get(); }
  [[nodiscard]] float* output_buffer() const { return slots_.front().out.as<float>(); }
  [[nodiscard]] void* pinned_input() const { return pinned_in_.get(); }
  [[nodiscard]] float* pinned_output() const { return pinned_out_.as<float>(); }
  [[nodiscard]] EngineStats& stats() { return stats_; }
  [[nodiscard]] const EngineStats& stats() const { return stats_; }

  /// Whether `batch` runs as the fused-network kernel.
  [[nodiscard]] bool runs_fused(int batch) const {
    return model_->fused && batch <= model_->fused_max_batch;
  }
  /// Whether `batch` runs as the fused-network kernel ("fused network") or op by op ("per-op").
  [[nodiscard]] const char* path(int batch) const {
    return runs_fused(batch) ? "fused network" : "per-op";
  }

  /// The fused kernel at `batch` on infer()'s pinned buffers (FusedParams::stage), where that
  /// path applies: the batch runs fused, one image per cluster, each image's f32 input at most
  /// 4 floats per thread of its cluster, and the pinned buffers mapped into the device's address
  /// space. Null otherwise.
  [[nodiscard]] std::unique_ptr<Step> fused_host_step(int batch) const {
    const Model<P>& m = *model_;
    if (!runs_fused(batch) || m.fused->clusters(batch) < batch ||  // (fused: f32 input)
        m.net.in_shape.numel() > 4LL * m.fused->cluster() * fused_threads) {
      return nullptr;
    }
    void* in = nullptr;
    void* out = nullptr;
    if (cudaHostGetDevicePointer(&in, pinned_in_.get(), 0) != cudaSuccess ||
        cudaHostGetDevicePointer(&out, pinned_out_.get(), 0) != cudaSuccess) {
      (void)cudaGetLastError();  // not mapped (no unified addressing): the copy nodes then
      return nullptr;
    }
    const IoSlot& s = slots_.front();
    return std::make_unique<FusedNetworkStep<P>>(*m.fused, m.net, m.weights, s.in.as<float>(),
                                                 static_cast<float*>(out), arena_.get(), batch,
                                                 static_cast<const float*>(in));
  }

  /// One line per step at `batch` (planned if it was not): its label and what runs it.
  [[nodiscard]] std::string describe(int batch) {
    auto it = plans_.find({batch, 0});
    if (it == plans_.end()) {
      it = plans_.emplace(std::pair{batch, 0}, make_plan(batch, 0, workspace_.bytes())).first;
    }
    std::ostringstream os;
    for (const PlannedStep& s : it->second.steps) {
      os << s.label << ": " << s.step->describe() << (s.note.empty() ? "" : "; " + s.note) << "\n";
    }
    return os.str();
  }

 private:
  /// The steps of `batch` on I/O slot `slot`. Each op runs its chosen variant; where that
  /// variant cannot run at this batch (or needs more than `ws_limit` workspace bytes; the
  /// context's workspace once it exists, possibly 0; any_workspace while it is being sized),
  /// the heuristic choice at this batch within the limit does.
  static constexpr std::size_t any_workspace = static_cast<std::size_t>(-1);
  [[nodiscard]] ExecPlan make_plan(int batch, int slot, std::size_t ws_limit) const {
    const Model<P>& m = *model_;
    const Libraries lib = libraries();
    const IoSlot& s = slots_[static_cast<std::size_t>(slot)];
    ExecPlan plan;
    if (runs_fused(batch)) {  // the whole network, one launch (f32 input)
      plan.steps.push_back({"network", std::make_unique<FusedNetworkStep<P>>(
                                           *m.fused, m.net, m.weights, s.in.as<float>(),
                                           s.out.as<float>(), arena_.get(), batch)});
      return plan;
    }
    bool input_read_converted = false;  // by some op: the plan starts with the input step
    bool output_written = false;  // by the last op's step itself: the plan has no output step
    // An op that may run beside the next one (runs_beside_next; not two pairs in a row) is
    // prepared with the side stream's cuDNN handle (cuDNN's calls go to the handle's stream, not
    // the one launch is given) and runs there, where the side workspace fits it (planned at
    // build, it is made to); otherwise it is prepared again for the compute stream.
    bool partner = false;  // op i runs beside op i - 1
    for (std::size_t i = 0; i < m.net.ops.size(); ++i) {
      const OpDesc& op = m.net.ops[i];
      const LayerScope scope(op.label);
      const OpWeights& w = m.weights.op(op.index);
      std::string note;  // why the chosen variant does not run, where it does not
      const auto prepare = [&](const Libraries& l) {
        std::unique_ptr<Step> step;
        note.clear();
        if (const Tactic<P>* t = find_tactic<P>(m.variants[i].tactic); t == nullptr) {
          note = "the chosen tactic '" + m.variants[i].tactic + "' is not in this build";
        } else {
          try {
            step = prepare_step(*t, op, m.variants[i], batch, w, io(op, batch, slot), l);
          } catch (const Error& e) {
            step.reset();
            note = "the chosen " + to_string(m.variants[i]) + " could not run: " + e.what();
          }
        }
        if (!step || (ws_limit != any_workspace && step->workspace_bytes() > ws_limit)) {
          if (step) {
            note = "the chosen " + to_string(m.variants[i]) + " needs more workspace than there is";
          }
          // (every note so far begins "the chosen ")
          STRATA_CHECK(i >= m.forced.size() || !m.forced[i],
                       "cuda::Engine: layer '" << op.label << "' at batch " << batch
                                               << ": the forced" << note.substr(10)
                                               << " (EngineOptions::force)");
          const std::size_t limit = ws_limit != any_workspace ? ws_limit : max_tuning_workspace;
          Variant h = heuristic_variant<P>(op, batch, limit, l);
          if (h == m.variants[i]) {  // the heuristic's own choice is the one that did not do
            try {
              h = heuristic_variant<P>(op, batch, limit, l, m.variants[i].tactic);
            } catch (const Error& e) {
              STRATA_CHECK(false, "cuda::Engine: layer '" << op.label << "' at batch " << batch << ": "
                                                          << note << ", and " << e.what());
            }
          }
          step = prepare_step(*find_tactic<P>(h.tactic), op, h, batch, w, io(op, batch, slot), l);
          // (its launch would fail on the workspace there is: said here, with why it was chosen)
          STRATA_CHECK(ws_limit == any_workspace || step->workspace_bytes() <= ws_limit,
                       "cuda::Engine: layer '" << op.label << "' at batch " << batch << ": " << note
                                               << "; the heuristic's " << to_string(h) << " needs "
                                               << step->workspace_bytes() << " workspace bytes, and "
                                               << ws_limit << " were planned");
        }
        return step;
      };
      const bool beside = branch_ != nullptr && !partner && runs_beside_next(m.net, i);
      Libraries side_lib = lib;
      if (beside) {
        side_lib.cudnn = branch_->cudnn.get();
      }
      std::unique_ptr<Step> step = prepare(beside ? side_lib : lib);
      bool marked = beside && (ws_limit == any_workspace ||
                               step->workspace_bytes() <= branch_->workspace.bytes());
      if (beside && !marked) {
        step = prepare(lib);
      }
      partner = marked;
      if (!op.act_applied_by.empty()) {
        note = "its activation applied by " + op.act_applied_by + " as it reads" +
               (note.empty() ? "" : "; " + note);
      }
      if (marked) {
        add_note(note, "runs beside " + m.net.ops[i + 1].label + " (a second stream)");
      }
      // (a step that reads the caller's input itself — a first conv converting it as it stages
      // it — needs no input step; a residual add of the input does)
      input_read_converted |= op.z_id == m.net.input_id ||
                              (reads_network_input(op, m.net.input_id) && !step->reads_network_input());
      output_written |= op.net_output && step->writes_network_output();
      plan.steps.push_back({op.label, std::move(step), std::move(note), marked});
    }
    plan.branch = branch_.get();
    if (input_read_converted) {
      plan.steps.insert(plan.steps.begin(), PlannedStep{"input", input_step_at(m.net, batch, slot)});
    }
    if (m.net.needs_output_step && !output_written) {
      plan.steps.push_back({"output", output_step_at(m.net, batch, slot)});
    }
    plan.pdl = m.pdl;
    return plan;
  }

  /// The generated kernels the model's chosen variants will ask for at the largest batch,
  /// compiled side by side before their steps are prepared (none on the fused-network path).
  void precompile_chosen() const {
    if (runs_fused(max_batch_)) {
      return;
    }
    std::vector<KernelSource> sources;
    for (std::size_t i = 0; i < model_->net.ops.size(); ++i) {
      const OpDesc& op = model_->net.ops[i];
      if (const Tactic<P>* t = find_tactic<P>(model_->variants[i].tactic); t != nullptr) {
        const Variant& v = model_->variants[i];
        for (KernelSource& k :
             t->kernel_sources(op_as_prepared(*t, op, v), v, io(op, max_batch_))) {
          sources.push_back(std::move(k));
        }
      }
    }
    (void)tactics::generated::precompile(sources, rtc::current_arch());
  }

  void capture(int batch, int slot = 0) {
    auto it = plans_.find({batch, slot});
    if (it == plans_.end()) {
      it = plans_.emplace(std::pair{batch, slot}, make_plan(batch, slot, workspace_.bytes())).first;
    }
    it->second.capture(stream_.get(), workspace_);
    ++stats_.graphs_captured;
  }

  int max_batch_ = 1;
  bool tf32_ = false;
  InputFormat format_ = InputFormat::f32;
  int input_id_ = -1;       ///< NetDesc::input_id
  Shape in_shape_{};        ///< the network's input as declared
  bool input_hwc_ = false;  ///< the caller's input is HWC per image
  int next_slot_ = 0;  ///< the I/O slot the next enqueue() uses
  bool enqueued_ = false;  ///< enqueue() was used since the last finish_enqueued()
  std::int64_t staging_offset_ = 0;  ///< per image (NetDesc::staging_offset)
  std::shared_ptr<const Model<P>> model_;
  EngineStats stats_{};
  Stream stream_;
  CudnnHandle cudnn_;
  LtHandle lt_;
  DeviceBuffer arena_;
  DeviceBuffer workspace_;
  DeviceBuffer affine_;  ///< the input normalization (input_affine), empty when there is none
  std::vector<IoSlot> slots_;
  PinnedBuffer pinned_in_;
  PinnedBuffer pinned_out_;
  Stream upload_;
  Stream download_;
  /// The side stream, workspace and cuDNN handle of ops run beside the next one, or null (a
  /// unique_ptr: plans keep its address; declared before the plans, which it outlives — their
  /// cuDNN plans may hold its handle).
  std::unique_ptr<Branch> branch_;
  std::map<std::pair<int, int>, ExecPlan> plans_;  ///< by (batch, I/O slot)
};

}  // namespace strata::cuda
