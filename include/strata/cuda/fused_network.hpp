#pragma once
/// The fused-network path: a whole small network as one kernel, its CUDA source generated from
/// the network's description (every shape, stride, padding, activation and arena offset a
/// literal) and compiled by NVRTC like Strata's other kernels. One image is worked on by one
/// cluster of thread blocks (Hopper): the ops run in order, each spread over all the cluster's
/// threads, with a hardware cluster barrier between them; tensors live in the engine's arena in
/// the per-op path's storage layout, image-major (each image its own slice of the plan's
/// per-image size), weights are read through L1/L2. Several images run on several clusters. The input conversion and the
/// output (or the final softmax) happen inside the kernel: a forward is one launch.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/core/error.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/device_weights.hpp"
#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/rtc/compiler.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/storage.hpp"
#include "strata/cuda/tactic.hpp"

namespace strata::cuda {

/// Threads per block of the fused kernel, and the thread blocks per cluster (one image per
/// cluster): 16 where the GPU allows that non-portable size (Hopper), else 8.
inline constexpr int fused_threads = 1024;
inline constexpr int fused_cluster_large = 16;
inline constexpr int fused_cluster_portable = 8;
/// Shared memory per block a tensor-core conv may stage its input and filter in (Hopper offers
/// 227 KiB to a block that opts in).
inline constexpr std::int64_t fused_staged_max = 160 << 10;
/// Shared memory per block the fused kernel may use in all: the staged convs, then the weights
/// it copies in once at its start (Hopper opts a block into 227 KiB).
inline constexpr std::int64_t fused_shared_max = 200 << 10;
/// Shared memory per block the fused kernel may give to tensors it holds there between phases
/// (FusedWriter::plan_held), out of fused_shared_max: first, then the staged convs and weights.
inline constexpr std::int64_t fused_held_max = 64 << 10;

/// The fused kernel's parameters: the caller's f32 input and output, the arena, the batch, and
/// each op's parameters (indexed as the network's ops).
struct FusedParams {
  const float* in = nullptr;
  float* out = nullptr;
  unsigned char* arena = nullptr;
  int batch = 0;
  const void* w[fused_max_ops] = {};
  const void* b[fused_max_ops] = {};
  const float* bf[fused_max_ops] = {};
  const float* sc[fused_max_ops] = {};
  const float* sh[fused_max_ops] = {};
  /// When set: thread 0 of the first block writes the SM clock as image 0 enters each phase
  /// (fused_trace_slots of them at most), and after them the global timer as image 0 enters its
  /// first phase and as it leaves its last.
  unsigned long long* trace = nullptr;
  /// When set (infer()'s host path): each cluster first copies its image's f32 input from here,
  /// page-locked host memory read by the kernel over the bus, into `in` (the engine's device
  /// input buffer), with one 16-byte load per thread where the image is a multiple of 4 floats
  /// (scalar loads otherwise), then runs as usual.
  /// Saves the upload's copy node; pays one bus round trip per image. (The tiled form copies the
  /// image into each block's shared memory instead, where it fits, and leaves `in` as it is.)
  const float* stage = nullptr;
};

/// Phases the fused kernel can stamp (the input, each op, a stand-alone pool, the output, the end).
inline constexpr int fused_trace_slots = 2 * fused_max_ops + 3;

namespace detail {

/// Writes the generated source, one op at a time.
class FusedWriter {
 public:
  /// `shared_max`: the dynamic shared memory a block may have (prefetched weights stop there);
  /// `hold`: tensors between phases may be held in shared memory (plan_held).
  /// `tiled`: the tiled form where the network fits it (tiled(), tiled_misfit()).
  FusedWriter(const NetDesc& net, int cluster, std::int64_t shared_max = fused_shared_max,
              bool hold = false, bool mbarrier_sync = false, bool tiled = false)
      : net_(net), shared_max_(shared_max), hold_(hold), mbar_(mbarrier_sync), cluster_(cluster),
        nhwc_(net.layout == Layout::nhwc),
        t_(!is_16bit(net.precision)      ? "float"
           : net.precision == DType::f16 ? "strata_rtc::f16"
                                         : "strata_rtc::bf16") {
    if (tiled) {
      plan_ = tiled_plan();
    }
  }
  /// Whether source() writes the tiled form (asked for, and the network fits it).
  [[nodiscard]] bool tiled() const { return plan_.has_value() && plan_->why.empty(); }
  /// Why the network does not fit the tiled form at this cluster size, or "" when it does.
  [[nodiscard]] std::string tiled_misfit() const { return plan_ ? plan_->why : tiled_plan().why; }

  [[nodiscard]] std::string source() {
    if (tiled()) {
      return tiled_source(*plan_);
    }
    if (!dry_ && hold_) {  // which tensors stay in shared memory: from a first pass that records them
      FusedWriter first(net_, cluster_, shared_max_);
      first.dry_ = true;
      (void)first.source();
      plan_held(first);
    }
    prelude();
    open_kernel("", 32);
    os_ << R"(  __shared__ float red[32];  // a dense layer's partial sums, one per warp
  extern __shared__ __align__(16) unsigned char staged[];  // staged conv inputs and filters, then prefetched weights
)";
    if (mbar_) {
      os_ << R"(  __shared__ __align__(8) unsigned long long phase_bars[2];
  if (threadIdx.x == 0) {
    for (int i = 0; i < 2; ++i) {
      asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;"
                   :: "r"(static_cast<unsigned>(__cvta_generic_to_shared(phase_bars + i))), "r"(kCluster) : "memory");
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");  // waited for at the first phase_sync
  PhaseSync sync{phase_bars, 0u, true};
)";
    }
    prefetches();
    if (!held_.empty()) {  // every block started before any stores into another's shared memory
      os_ << (mbar_ ? "  asm volatile(\"barrier.cluster.wait.acquire.aligned;\" ::: \"memory\");\n"
                      "  sync.first = false;\n"
                    : "  cluster_sync();\n");
    }
    os_ << "  for (int img = blockIdx.x / " << cluster_ << "; img < p.batch; img += clusters) {\n";
    stage();
    input_reader_ = direct_input_reader();
    if (input_reader_ < 0) {
      phase("input");
      input();
    }
    const OpDesc* merged = nullptr;  // a softmax computed with the dense layer before it
    for (const OpDesc& op : net_.ops) {
      if (&op == merged) {
        continue;
      }
      if (op.index != input_reader_) {  // the first phase reads only the caller's input
        sync();
      }
      if (const OpDesc* sm = softmax_after(op)) {
        phase(op.label + "+" + sm->label);
        os_ << "    {  // ops " << op.index << ", " << sm->index << ": " << op.label << ", "
            << sm->label << "\n";
        dense_softmax(op, *sm);
        os_ << "    }\n";
        merged = sm;
        continue;
      }
      std::string name = op.label;  // a conv's label names its fused pool too
      if (const std::string tail = op.pool ? "+" + op.pool->label : std::string();
          op.pool && pool_lanes(op) == 0 && name.size() > tail.size() &&
          name.compare(name.size() - tail.size(), tail.size(), tail) == 0) {
        name.resize(name.size() - tail.size());  // the pool is a phase of its own
      }
      phase(name);
      os_ << "    {  // op " << op.index << ": " << op.label << "\n";
      switch (op.kind) {
        case OpKind::conv: conv(op); break;
        case OpKind::dense: dense(op); break;
        case OpKind::batch_norm:
        case OpKind::activation:
        case OpKind::add: pointwise(op); break;
        case OpKind::max_pool:
        case OpKind::avg_pool: pool(op); break;
        case OpKind::global_avg_pool: global_avg_pool(op); break;
        case OpKind::softmax:
        case OpKind::log_softmax: softmax(op); break;
        default: break;  // other kinds never get here: NetStorage::fused_fit refuses them
      }
      os_ << "    }\n";
      if (op.pool && pool_lanes(op) == 0) {  // a pool window over 32: its own phase
        const OpDesc p = pool_op(op);
        sync();
        phase(p.label);
        os_ << "    {  // op " << p.index << ": " << p.label << "\n";
        pool(p);
        os_ << "    }\n";
      }
    }
    if (net_.needs_output_step) {
      sync();
      phase("output");
      output();
    }
    // Each image has its own slice of every tensor, so the next image needs no barrier first.
    os_ << "    stamp(p, " << phases_.size() << ", img, 1);\n";
    if (!held_.empty()) {  // the next image's phases write what this one's last phase may read
      os_ << "    if (img + clusters < p.batch) " << (mbar_ ? "phase_sync(sync);\n" : "cluster_sync();\n");
    }
    os_ << "  }\n";
    if (!prefetch_.empty()) {  // no copy left in flight, whatever ran (a block with no image)
      os_ << "  asm volatile(\"cp.async.wait_all;\" ::: \"memory\");\n";
    }
    if (mbar_) {  // the start's cluster barrier waited for where no phase_sync did (one phase)
      os_ << "  if (sync.first) asm volatile(\"barrier.cluster.wait.acquire.aligned;\" ::: \"memory\");\n";
    }
    os_ << "}\n";
    return os_.str();
  }
  /// Dynamic shared memory per block the kernel needs: the largest staged conv, then the
  /// prefetched weights (valid after source()).
  [[nodiscard]] std::int64_t shared_bytes() const { return shared_; }
  /// The phases source() wrote, in order (the input conversion, each op, the output conversion).
  [[nodiscard]] const std::vector<std::string>& phases() const { return phases_; }

 private:
  /// The kernel's signature and its first lines (after `comment`): `tid` numbers the cluster's
  /// threads for work spread over all of them, dealt to the blocks in chunks of `g` (a multiple
  /// of 32: chunk c to block c % cluster, so work smaller than the cluster still spreads over
  /// every SM), `nthreads` of them; `clusters` in the grid.
  void open_kernel(const char* comment, int g) {
    os_ << "\n" << comment << R"(extern "C" __global__ void __cluster_dims__()" << cluster_ << R"(, 1, 1) __launch_bounds__()"
        << fused_threads << R"(, 1) strata_network(strata_net::Params p) {
  using namespace strata_net;
  strata_rtc::pdl_entry();
  const int tid = ((static_cast<int>(threadIdx.x) / )" << g << ") * " << cluster_
        << " + static_cast<int>(cluster_rank())) * " << g << " + static_cast<int>(threadIdx.x) % " << g << R"(;
  const int nthreads = )" << cluster_ * fused_threads << R"(;
  const int clusters = gridDim.x / )" << cluster_ << R"(;
)";
  }

  /// The generated source's common part: the kernel prelude, then the fused kernel's helpers
  /// (namespace strata_net).
  void prelude() {
    os_ << kernels::kernel_prelude << R"(
namespace strata_net {
using namespace strata_rtc;
using T = )" << t_ << R"(;
constexpr int kMaxOps = )" << fused_max_ops << R"(;
struct Params {
  const float* in; float* out; unsigned char* arena; int batch;
  const void* w[kMaxOps]; const void* b[kMaxOps]; const float* bf[kMaxOps];
  const float* sc[kMaxOps]; const float* sh[kMaxOps];
  unsigned long long* trace;
  const float* stage;
};
constexpr int kTraceSlots = )" << fused_trace_slots << R"(;
// Phase timing (FusedNetworkStep::phases): the SM clock of one thread as image 0 enters phase i.
__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
// Image 0's first and last stamps also take the global timer (slots kTraceSlots, +1), which
// scales the clock: both cover image 0 alone, however many images its cluster goes on to run.
__device__ __forceinline__ void stamp(const Params& p, int i, int img, int timer_slot = -1) {
  if (p.trace != nullptr && img == 0 && blockIdx.x == 0 && threadIdx.x == 0) {
    p.trace[i] = clock64();
    if (timer_slot >= 0) p.trace[kTraceSlots + timer_slot] = global_ns();
  }
}
// A phase boundary (the prelude's cluster_barrier: a block barrier, one thread's fence at
// cluster scope, a relaxed cluster barrier — session 49's microbenchmark on an H100: 785 against
// 959 ns a boundary with the phase's global stores and loads, against a release arrive in every
// thread).
__device__ __forceinline__ void cluster_sync() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cluster_barrier();
#elif defined(__CUDA_ARCH__)
  __trap();  // (the fused kernel runs in clusters: compute capability 9.0 on)
#endif
}
// The end of the tiled form's kernel: the prelude's cluster_reads_done.
__device__ __forceinline__ void reads_done() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cluster_reads_done();
#elif defined(__CUDA_ARCH__)
  __trap();
#endif
}
__device__ __forceinline__ unsigned cluster_rank() {
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
}
// Image-major: image i owns bytes [i·A, (i+1)·A) of the arena (A = the plan's bytes per image)
// and places its tensors at the plan's per-image offsets. Clusters run ahead of each other, so
// the per-op path's layout (each tensor batch-major at offset × batch) would let one image's
// tensor overlap another image's tensor that the plan put at the same offset.
template <class U>
__device__ __forceinline__ U* tensor(const Params& p, long long offset, long long, int img) {
  return reinterpret_cast<U*>(p.arena + static_cast<long long>(img) * )" << net_.arena_per_image
        << R"( + offset);
}
// Weights copied into shared memory once at the kernel's start, 16 bytes a cp.async (both ends
// 16-byte aligned, `bytes` a multiple of 16), so they arrive while the first phases run.
__device__ __forceinline__ void prefetch(unsigned char* s, const void* g, long long bytes) {
  const unsigned char* src = static_cast<const unsigned char*>(g);
  for (long long i = threadIdx.x * 16LL; i < bytes; i += 16LL * blockDim.x) {
    const unsigned sa = static_cast<unsigned>(__cvta_generic_to_shared(s + i));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(sa), "l"(src + i) : "memory");
  }
}
// Before a phase reads prefetched weights: this thread's copies done, then every thread's.
__device__ __forceinline__ void prefetched() {
  asm volatile("cp.async.wait_all;" ::: "memory");
  __syncthreads();
}
// A tensor held in shared memory (FusedWriter::plan_held): every block of the cluster has its
// own copy at the same offset; a store writes the value into each block's copy (distributed
// shared memory), which the cluster barrier after the phase makes visible to all of them.
constexpr unsigned kCluster = )" << cluster_ << R"(;
// The shared::cluster address of `p` (this block's shared memory) in block `r` of the cluster.
__device__ __forceinline__ unsigned cluster_addr(const void* p, unsigned r) {
  unsigned ra;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(static_cast<unsigned>(__cvta_generic_to_shared(p))), "r"(r));
  return ra;
}
template <class U>
struct Held { U* p; };
template <class U>
__device__ __forceinline__ Held<U> operator+(Held<U> h, long long i) { return Held<U>{h.p + i}; }
template <class U>
__device__ __forceinline__ void store(Held<U> h, float v) {
  U s;
  strata_rtc::store(&s, v);
  #pragma unroll
  for (unsigned r = 0; r < kCluster; ++r) {
    const unsigned ra = cluster_addr(h.p, r);
    if constexpr (is_same<U, float>::value) {
      asm volatile("st.shared::cluster.b32 [%0], %1;" :: "r"(ra), "r"(__float_as_uint(s)) : "memory");
    } else {
      asm volatile("st.shared::cluster.b16 [%0], %1;" :: "r"(ra), "h"(s.bits) : "memory");
    }
  }
}
// Phases separated by mbarriers instead of the hardware cluster barrier (EngineOptions::
// fused_mbarrier_sync): after a block barrier, lane r of the first warp arrives on block
// (rank + r)'s mbarrier (release at cluster scope: it covers the block's writes the block barrier
// ordered before it; the lanes in parallel, each block starting at the next rank); every thread
// waits for its own block's (acquire). Two
// mbarriers alternate, phase k on bar[k % 2] with parity (k / 2) % 2: an arrival for phase k + 1
// can then never be counted toward a phase k whose arrivals are still in flight. The first sync
// first waits out the cluster barrier that made the mbarriers' initialization visible.
struct PhaseSync {
  unsigned long long* bar;  // two mbarriers, each expecting one arrival per block
  unsigned k;
  bool first;
};
__device__ __forceinline__ void phase_sync(PhaseSync& s) {
  if (s.first) {
    asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
    s.first = false;
  }
  __syncthreads();
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(s.bar + (s.k & 1u)));
  if (threadIdx.x < kCluster) {
    const unsigned ra = cluster_addr(s.bar + (s.k & 1u), (cluster_rank() + threadIdx.x) % kCluster);
    asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" :: "r"(ra) : "memory");
  }
  const unsigned parity = (s.k >> 1) & 1u;
  unsigned done = 0;
  do {
    asm volatile("{\n\t.reg .pred p;\n\t"
                 "mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n\t"
                 "selp.u32 %0, 1, 0, p;\n\t}"
                 : "=r"(done) : "r"(a), "r"(parity) : "memory");
  } while (done == 0);
  ++s.k;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
}  // namespace strata_net
)";
  }

  static std::int64_t numel(int slots, Shape s) {
    return static_cast<std::int64_t>(slots) * s.h * s.w;
  }
  /// Element (c, y, x) of a stored tensor with `cp` slots, `h`×`w` pixels.
  [[nodiscard]] std::string at(const std::string& c, const std::string& y, const std::string& x,
                               int cp, int h, int w) const {
    std::ostringstream s;
    if (nhwc_) {
      s << "((" << y << ") * " << w << " + (" << x << ")) * " << cp << " + (" << c << ")";
    } else {
      s << "((" << c << ") * " << h << " + (" << y << ")) * " << w << " + (" << x << ")";
    }
    return s.str();
  }
  [[nodiscard]] static std::string act(ActDesc a) {
    std::ostringstream s;
    s << "ActDesc{static_cast<Act>(" << static_cast<int>(a.kind) << "), " << std::hexfloat
      << a.alpha << "f, " << a.beta << "f}";
    return s.str();
  }
  /// Declares `name`, the tensor at arena `offset` of `n` elements of `type`: a pointer into the
  /// arena, or into shared memory where the tensor is held there — for a writer (`is_const`
  /// false) then a Held<T>, whose stores reach every block's copy.
  void ptr(const char* name, bool is_const, const char* type, std::int64_t offset,
           std::int64_t n, const char* indent = "      ") {
    const std::string t = type;
    if (dry_) {
      const std::int64_t bytes = n * (is_16bit(net_.precision) ? 2 : 4);  // (type is "T")
      if (uses_.count(offset) == 0) {
        use_order_.push_back(offset);
      }
      uses_[offset] = std::max(uses_[offset], bytes);
    }
    if (const auto h = held_.find(offset); h != held_.end()) {
      if (is_const) {
        os_ << indent << "const " << t << "* " << name << " = reinterpret_cast<const " << t
            << "*>(staged + " << h->second << ");  // held in shared memory\n";
      } else {
        os_ << indent << "Held<" << t << "> " << name << "{reinterpret_cast<" << t
            << "*>(staged + " << h->second << ")};  // into every block's shared memory\n";
      }
      return;
    }
    os_ << indent << (is_const ? "const " : "") << t << "* " << name << " = tensor<"
        << (is_const ? "const " : "") << t << ">(p, " << offset << ", " << n << ", img);\n";
  }
  [[nodiscard]] bool held(std::int64_t offset) const { return held_.count(offset) != 0; }

  /// The tensors the kernel keeps in shared memory instead of the arena, from the first pass's
  /// record of every tensor it declared (arena offset, bytes): in the order they are first
  /// declared, each while the held tensors stay within fused_held_max, 16-bit precisions only
  /// (as the weight prefetch). A tensor so held is written into every block's copy by its
  /// producer (distributed shared memory) and read from the block's own copy: no round trip
  /// through L2 between phases, and a tensor-core conv no longer stages such an input. Tensors
  /// the plan places at one arena offset share one region (the plan gives them disjoint lives).
  void plan_held(const FusedWriter& first) {
    held_.clear();
    base_ = 0;
    if (!hold_ || !is_16bit(net_.precision)) {
      return;
    }
    std::int64_t staged = 0;  // the most a conv would stage with nothing held
    for (const OpDesc& op : net_.ops) {
      const Staged st = staged_bytes(op);
      staged = std::max(staged, st.x + st.w);
    }
    const std::int64_t limit = std::min(fused_held_max, shared_max_ - staged);
    for (const std::int64_t offset : first.use_order_) {
      const std::int64_t bytes = (first.uses_.at(offset) + 15) / 16 * 16;
      if (offset % 16 != 0 || base_ + bytes > limit) {
        continue;
      }
      held_.emplace(offset, base_);
      base_ += bytes;
    }
  }
  /// Decodes storage index e of a (cp, h, w) tensor into c, y, x.
  void decode(int cp, int h, int w) {
    if (nhwc_) {
      os_ << "        const int c = e % " << cp << "; const int x = (e / " << cp << ") % " << w
          << "; const int y = e / " << cp * w << ";\n";
    } else {
      os_ << "        const int x = e % " << w << "; const int y = (e / " << w << ") % " << h
          << "; const int c = e / " << h * w << ";\n";
    }
  }

  /// Weights a block copies into shared memory once, at the kernel's start (cp.async), so they
  /// arrive while the earlier phases run and are there for every image: a tensor-core conv's
  /// staged filter; a dense layer's rows this block computes (when every output is computed in
  /// one round), or all of them for a dense+softmax (first block only). In op order, each that
  /// still fits the writer's shared-memory limit (one that does not is skipped, later ones may
  /// fit); 16-bit precisions only. One commit group: the first phase that reads any of them waits
  /// for all (so a dense layer's rows overlap the phases before the first such phase only).
  struct Prefetch {
    std::int64_t smem = 0;      ///< offset in the dynamic shared memory
    std::int64_t region = 0;    ///< bytes reserved
    std::int64_t per_rank = 0;  ///< source offset step per block rank (dense rows), else 0
    std::int64_t total = 0;     ///< bytes of the weight the copies may read
    bool first_block = false;   ///< only the cluster's first block copies (dense+softmax)
    std::string label;          ///< the op's, for the source's comment
  };
  void plan_prefetches() {
    std::int64_t staged = base_;  // after the held tensors
    for (const OpDesc& op : net_.ops) {
      const Staged st = staged_bytes(op);
      staged = std::max(staged, base_ + st.x + st.w);
    }
    shared_ = staged;
    // 16-bit only. MNIST CNN b1 on an H200 (run58): f16 11.17 -> 10.92 us, bf16 11.36 -> 11.01;
    // f32 (dense rows only, 105 KB a block) 20.95 -> 21.34: the L1 it takes costs more there.
    if (!is_16bit(net_.precision)) {
      return;
    }
    // Laid out after the largest staged conv (input and filter, as measured; a prefetched
    // filter's staging slot then goes unused — see docs/cuda_backend.md).
    std::int64_t end = (staged + 15) / 16 * 16;
    const int warps_per_block = fused_threads / 32;
    constexpr std::int64_t tsize = 2;  // 16-bit
    for (const OpDesc& op : net_.ops) {
      Prefetch f;
      f.label = op.label;
      if (op.kind == OpKind::conv) {
        const Staged st = staged_bytes(op);
        if (st.w == 0) {
          continue;
        }
        f.region = f.total = st.w;
      } else if (op.kind == OpKind::dense) {
        const std::int64_t row = std::int64_t{op.dense_kin} * tsize;
        const int m = op.layer.out_channels;
        if (row % 16 != 0) {
          continue;
        }
        f.total = m * row;
        if (softmax_after(op) != nullptr) {
          f.region = f.total;
          f.first_block = true;
        } else {
          const int mp = channel_slots(m, net_.precision);
          const int opb = warps_per_block / dense_group_warps(op);  // outputs per block
          if (static_cast<std::int64_t>(opb) * cluster_ < mp) {
            continue;  // more than one round: the rows a block reads change
          }
          f.region = f.per_rank = opb * row;
        }
      } else {
        continue;
      }
      if (end + f.region > shared_max_) {
        continue;
      }
      f.smem = end;
      end += f.region;
      prefetch_.emplace(op.index, f);
    }
    shared_ = prefetch_.empty() ? staged : end;
  }
  void prefetches() {
    plan_prefetches();
    if (prefetch_.empty()) {
      return;
    }
    os_ << "  {  // weights into shared memory once, for every image (waited for before their phase)\n"
        << "    const long long rank = static_cast<long long>(cluster_rank());\n";
    for (const auto& [index, f] : prefetch_) {
      os_ << "    // op " << index << " (" << f.label << "): ";
      if (f.per_rank > 0) {
        os_ << "this block's rows, " << f.per_rank << " bytes\n"
            << "    {\n      const long long a = min(rank * " << f.per_rank << ", " << f.total
            << "LL);\n"
            << "      prefetch(staged + " << f.smem << ", static_cast<const unsigned char*>(p.w["
            << index << "]) + a, min(" << f.region << "LL, " << f.total << "LL - a));\n    }\n";
      } else {
        os_ << (f.first_block ? "every row, first block only" : "the filter") << ", " << f.total
            << " bytes\n    " << (f.first_block ? "if (rank == 0) " : "") << "prefetch(staged + "
            << f.smem << ", p.w[" << index << "], " << f.total << ");\n";
      }
    }
    os_ << "    asm volatile(\"cp.async.commit_group;\" ::: \"memory\");\n  }\n";
  }
  [[nodiscard]] const Prefetch* prefetched(const OpDesc& op) const {
    const auto it = prefetch_.find(op.index);
    return it == prefetch_.end() ? nullptr : &it->second;
  }

  /// The host path's upload (FusedParams::stage): the cluster copies its image into p.in, then
  /// waits at the cluster barrier (the next phase reads what other blocks copied).
  void stage() {
    os_ << "    if (p.stage != nullptr) {  // host path: the image from page-locked host memory\n";
    copy_image("const_cast<float*>(p.in) + static_cast<long long>(img) * " +
                   std::to_string(net_.in_shape.numel()),
               "tid", "nthreads");
    sync();
    os_ << "    }\n";
  }
  /// The host path's copy of image img from page-locked host memory (p.stage) to `dst`, a
  /// pointer expression: elements first, first + step, ... — 16-byte ones where the image is a
  /// multiple of 4 floats (both ends are 16-byte aligned per image then).
  void copy_image(const std::string& dst, const char* first, const std::string& step) {
    const std::int64_t n = net_.in_shape.numel();
    const bool vec = n % 4 == 0;
    const char* type = vec ? "float4" : "float";
    os_ << "      const " << type << "* hs = reinterpret_cast<const " << type
        << "*>(p.stage + static_cast<long long>(img) * " << n << ");\n"
        << "      " << type << "* dd = reinterpret_cast<" << type << "*>(" << dst << ");\n"
        << "      for (int e = " << first << "; e < " << (vec ? n / 4 : n) << "; e += " << step
        << ") dd[e] = hs[e];\n";
  }

  void input() {
    const Shape s = net_.in_shape;
    const int cp = channel_slots(s.c, net_.precision);
    const int hw = s.h * s.w;
    os_ << "    {  // input: f32 (" << (net_.in_layout == Layout::nhwc ? "NHWC" : "NCHW")
        << ") into storage\n";
    os_ << "      const float* src = p.in + static_cast<long long>(img) * " << s.numel() << ";\n";
    ptr("Y", false, "T", net_.input_offset, numel(cp, s));
    os_ << "      for (int e = tid; e < " << numel(cp, s) << "; e += nthreads) {\n";
    decode(cp, s.h, s.w);
    const std::string src = net_.in_layout == Layout::nhwc
                                ? "(y * " + std::to_string(s.w) + " + x) * " + std::to_string(s.c) + " + c"
                                : "c * " + std::to_string(hw) + " + y * " + std::to_string(s.w) + " + x";
    os_ << "        store(Y + e, c < " << s.c << " ? src[" << src << "] : 0.0f);\n      }\n    }\n";
  }

  void output() {
    const Shape s = net_.out_storage;
    const int cp = channel_slots(s.c, net_.precision);
    const int hw = s.h * s.w;
    os_ << "    {  // output: storage into f32 (NCHW order)\n";
    ptr("X", true, "T", net_.output_offset, numel(cp, s));
    os_ << "      float* dst = p.out + static_cast<long long>(img) * " << s.c * hw << ";\n"
        << "      for (int e = tid; e < " << s.c * hw << "; e += nthreads) {\n"
        << "        const int c = e / " << hw << "; const int px = e % " << hw << ";\n"
        << "        dst[e] = load(X + " << at("c", "px / " + std::to_string(s.w), "px % " + std::to_string(s.w), cp, s.h, s.w) << ");\n"
        << "      }\n    }\n";
  }

  /// Lanes that share one pooled output when a conv's pool runs in the conv's phase: the pool
  /// window's positions rounded up to a power of 2 (each lane computes one position's conv value,
  /// shuffles reduce them); 0 when the window has more than 32 positions (two phases then).
  [[nodiscard]] static int pool_lanes(const OpDesc& op) {
    const int l = pool_window_lanes(op);
    return l <= 32 ? l : 0;
  }

  /// The PoolShape literal of conv `op`'s fused pool (kernel_source.hpp's pool_window rules).
  [[nodiscard]] static std::string pool_shape(const OpDesc& op) {
    return kernels::source_literal(kernels::conv_pool_shape(op, 0, op.pool->out_cp));
  }

  /// Conv `op` over the cluster's threads; when `op` reads the caller's input directly, the
  /// image's f32 values at `image` (an expression; by default image img of p.in).
  void conv(const OpDesc& op, const std::string& image = "") {
    const ConvGeom& g = op.conv;
    const int oslots = nhwc_ ? g.kp : g.k;
    if (op.index == input_reader_) {
      os_ << "      const float* src = "
          << (image.empty() ? "p.in + static_cast<long long>(img) * " + std::to_string(net_.in_shape.numel())
                            : image)
          << ";  // read as f32, converted on load\n";
    } else {
      ptr("X", true, "T", op.in_offset, numel(op.in_cp, op.in_shape));
    }
    if (op.has_residual) {
      ptr("Z", true, "T", op.z_offset, numel(oslots, op.out_shape));
    }
    os_ << "      const T* w = static_cast<const T*>(p.w[" << op.index << "]);\n"
        << "      const float* bias = p.bf[" << op.index << "];\n";
    if (mma_fits(op)) {
      conv_mma(op);
      return;
    }
    if (op.pool && pool_lanes(op) > 0) {
      conv_pooled(op);
      return;
    }
    const Shape os{oslots, op.out_shape.h, op.out_shape.w, 3};
    out_decl(op.out_offset, numel(oslots, op.out_shape));
    os_ << "      for (int e = tid; e < " << os.numel() << "; e += nthreads) {\n";
    decode(oslots, g.oh, g.ow);
    os_ << "        const int k = c; const int oy = y; const int ox = x;\n"
        << "        float acc = 0.0f;\n"
        << "        if (k < " << g.k << ") {\n";
    conv_value(op, "          ");
    os_ << "        }\n"
        << "        store(" << out_at("e") << ", acc);\n"
        << "      }\n";
  }

  /// Where a conv (conv(), conv_pooled) writes its output `Y`: the tensor in the arena, or (the
  /// tiled form's first conv, own_) this block's share of it in its own shared memory.
  void out_decl(std::int64_t offset, std::int64_t n) {
    if (own_) {
      os_ << "      T* Y = reinterpret_cast<T*>(staged + " << own_->smem << " + (nimg & 1u) * " << own_->bytes
          << ");  // this block's outputs, in its shared memory\n";
    } else {
      ptr("Y", false, "T", offset, n);
    }
  }
  /// The address output `e` is stored at (out_decl's Y).
  [[nodiscard]] std::string out_at(const std::string& e) const {
    return own_ ? "Y + " + own_->slot(e) : "Y + " + e;
  }

  /// The conv that reads the caller's f32 input itself, converting as it loads (no input phase
  /// then): the input's only reader, a conv not on tensor cores, no space-to-depth stem; or -1.
  [[nodiscard]] int direct_input_reader() const {
    int readers = 0;
    const OpDesc* reader = nullptr;
    for (const OpDesc& op : net_.ops) {
      if (op.z_id == net_.input_id) {
        return -1;  // added as a residual: the stored input is needed
      }
      if (op.in_id == net_.input_id) {
        ++readers;
        reader = &op;
      }
    }
    if (readers != 1 || net_.input_id < 0 || net_.s2d_op >= 0 || reader->kind != OpKind::conv ||
        mma_fits(*reader) || reader->conv.s2d) {
      return -1;
    }
    return reader->index;
  }

  /// Whether conv `op` runs on tensor cores (mma.sync m16n8k16, f32 accumulation): 16-bit NHWC,
  /// one group, packed channels in multiples of 16 (a k16 step never straddles two taps), and no
  /// pool or one of at most 8 window positions (the rows of one pooled pixel then sit in one
  /// half of an accumulator tile, where shuffles reach them).
  [[nodiscard]] bool mma_fits(const OpDesc& op) const {
    const ConvGeom& g = op.conv;
    return nhwc_ && g.packed && !g.s2d && g.groups == 1 && g.cp % 16 == 0 && g.fcg == g.cp &&
           op.in_cp == g.cp && g.kp % 8 == 0 && g.kd == g.kp &&
           (!op.pool || (pool_lanes(op) > 0 && pool_lanes(op) <= 8));
  }

  /// Shared memory a tensor-core conv stages per block: its whole input, and its filter when both
  /// fit fused_staged_max (0: read from global memory).
  /// An input held in shared memory (plan_held) is read where it is: x = 0, `held`.
  struct Staged {
    std::int64_t x = 0;
    std::int64_t w = 0;
    bool held = false;
  };
  [[nodiscard]] Staged staged_bytes(const OpDesc& op) const {
    if (!mma_fits(op)) {
      return {};
    }
    const ConvGeom& g = op.conv;
    const std::int64_t x = numel(g.cp, op.in_shape) * 2;
    const std::int64_t w = std::int64_t{g.kp} * g.kh * g.kw * g.cp * 2;
    if (held(op.in_offset)) {
      return {0, w <= fused_staged_max ? w : 0, true};
    }
    if (x > fused_staged_max || op.in_offset % 16 != 0 || net_.arena_per_image % 16 != 0) {
      return {};
    }
    return {x, x + w <= fused_staged_max ? w : 0};
  }

  /// An implicit-GEMM conv's reduction for one warp's 16×8 tile (conv_mma, tiled_mma): `acc`
  /// over taps × input channels in steps of 16 — A's pairs of channels 32-bit loads from `Xs` at
  /// pixel `pixel` (an expression of iy and ix; zero outside the input), B's from the filter `Ws`.
  void mma_taps(const ConvGeom& g, const std::string& pixel) {
    os_ << "        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};\n"
        << "        const T* wn = Ws + (nt * 8 + (lane >> 2)) * " << g.kh * g.kw * g.cp
        << " + (lane & 3) * 2;\n"
        << "        #pragma unroll\n"
        << "        for (int ky = 0; ky < " << g.kh << "; ++ky) {\n"
        << "          #pragma unroll\n"
        << "          for (int kx = 0; kx < " << g.kw << "; ++kx) {\n"
        << "            const T* xr[2];\n"
        << "            bool in[2];\n"
        << "            #pragma unroll\n"
        << "            for (int h = 0; h < 2; ++h) {\n"
        << "              const int iy = oy[h] * " << g.sh << " - " << g.ph << " + ky * " << g.dh << ";\n"
        << "              const int ix = ox[h] * " << g.sw << " - " << g.pw << " + kx * " << g.dw << ";\n"
        << "              in[h] = ok[h] && iy >= 0 && iy < " << g.h << " && ix >= 0 && ix < " << g.w << ";\n"
        << "              xr[h] = Xs + (in[h] ? (" << pixel << ") * " << g.cp << " : 0) + (lane & 3) * 2;\n"
        << "            }\n"
        << "            const T* wt = wn + (ky * " << g.kw << " + kx) * " << g.cp << ";\n"
        << "            #pragma unroll\n"
        << "            for (int c0 = 0; c0 < " << g.cp << "; c0 += 16) {\n"
        << "              const unsigned a0 = in[0] ? *reinterpret_cast<const unsigned*>(xr[0] + c0) : 0u;\n"
        << "              const unsigned a1 = in[1] ? *reinterpret_cast<const unsigned*>(xr[1] + c0) : 0u;\n"
        << "              const unsigned a2 = in[0] ? *reinterpret_cast<const unsigned*>(xr[0] + c0 + 8) : 0u;\n"
        << "              const unsigned a3 = in[1] ? *reinterpret_cast<const unsigned*>(xr[1] + c0 + 8) : 0u;\n"
        << "              const unsigned b0 = *reinterpret_cast<const unsigned*>(wt + c0);\n"
        << "              const unsigned b1 = *reinterpret_cast<const unsigned*>(wt + c0 + 8);\n"
        << "              mma_16816<T>(acc, a0, a1, a2, a3, b0, b1);\n"
        << "            }\n"
        << "          }\n"
        << "        }\n";
  }

  /// Opens the epilogue of mma_taps' tile (conv_mma, tiled_mma): a loop over the thread's four
  /// accumulators, `v` the value of row h, channel k, the bias added for real channels; the loop
  /// and the `if` left open.
  void open_mma_epilogue(const ConvGeom& g) {
    os_ << "        #pragma unroll\n"
        << "        for (int i = 0; i < 4; ++i) {  // acc[i]: row lane/4 + 8·(i/2), channel 2·(lane%4) + i%2\n"
        << "          const int h = i >> 1;\n"
        << "          const int k = nt * 8 + (lane & 3) * 2 + (i & 1);\n"
        << "          float v = acc[i];\n"
        << "          if (k < " << g.k << ") {\n"
        << "            v += bias[k];\n";
  }

  /// A conv (and its pool) as an implicit GEMM on tensor cores. Rows are output pixels — with a
  /// pool, L rows per pooled pixel, one per window position —, columns output channels, the
  /// reduction runs over taps × input channels in steps of 16. Each warp computes 16×8 tiles:
  /// A's pairs of channels are 32-bit loads straight from the input (zero outside it), B's from
  /// the filter; the epilogue adds bias and residual, applies the activation, reduces each pooled
  /// pixel's rows with shuffles and stores.
  void conv_mma(const OpDesc& op) {
    const ConvGeom& g = op.conv;
    const bool pooled = op.pool.has_value();
    const OpDesc pl = pooled ? pool_op(op) : OpDesc{};
    const LayerDesc& d = pl.layer;
    const int lanes = pooled ? pool_lanes(op) : 1;
    const int pkh = pooled ? d.kernel.h : 1;
    const int pkw = pooled ? d.kernel.w : 1;
    const int psh = pooled ? d.stride.h : 1;
    const int psw = pooled ? d.stride.w : 1;
    const int pph = pooled ? d.padding.h : 0;
    const int ppw = pooled ? d.padding.w : 0;
    const Shape ys = pooled ? pl.out_shape : Shape{g.k, g.oh, g.ow, 3};
    const int ycp = pooled ? pl.out_cp : g.kp;
    const bool is_max = pooled && pl.kind == OpKind::max_pool;
    const int pixels = ys.h * ys.w;
    const int mtiles = (pixels * lanes + 15) / 16;
    const int ntiles = g.kp / 8;
    ptr("Y", false, "T", pooled ? pl.out_offset : op.out_offset, numel(ycp, ys));
    const Staged st = staged_bytes(op);
    // Every block copies the input (unless held in shared memory) and the filter with 16-byte
    // loads, all in flight, from base_ on (after the held tensors).
    if (st.x > 0 || st.held) {
      os_ << "      {\n";
      if (st.x > 0) {
        os_ << "        const uint4* xg = reinterpret_cast<const uint4*>(X);\n"
            << "        uint4* xs = reinterpret_cast<uint4*>(staged + " << base_ << ");\n"
            << "        #pragma unroll\n"
            << "        for (int i = threadIdx.x; i < " << st.x / 16 << "; i += " << fused_threads
            << ") xs[i] = xg[i];\n";
      }
      const Prefetch* pf = prefetched(op);
      if (pf != nullptr) {
        os_ << "        asm volatile(\"cp.async.wait_all;\" ::: \"memory\");  // the filter, prefetched\n";
      } else if (st.w > 0) {
        os_ << "        const uint4* wg = reinterpret_cast<const uint4*>(w);\n"
            << "        uint4* ws = reinterpret_cast<uint4*>(staged + " << base_ + st.x << ");\n"
            << "        #pragma unroll\n"
            << "        for (int i = threadIdx.x; i < " << st.w / 16 << "; i += " << fused_threads
            << ") ws[i] = wg[i];\n";
      }
      os_ << "        __syncthreads();\n"
          << "      }\n"
          << "      const T* Xs = "
          << (st.held ? std::string("X")
                      : "reinterpret_cast<const T*>(staged + " + std::to_string(base_) + ")")
          << ";\n"
          << "      const T* Ws = "
          << (pf != nullptr ? "reinterpret_cast<const T*>(staged + " + std::to_string(pf->smem) + ")"
              : st.w > 0    ? "reinterpret_cast<const T*>(staged + " + std::to_string(base_ + st.x) + ")"
                            : std::string("w"))
          << ";\n";
    } else {
      os_ << "      const T* Xs = X;\n"
          << "      const T* Ws = w;\n";
    }
    if (pooled) {
      os_ << "      constexpr PoolShape pool = " << pool_shape(op) << ";\n";
    }
    os_ << "      const int lane = tid & 31;\n"
        << "      // tensor cores: " << mtiles << " x " << ntiles << " tiles of 16 rows (" << lanes
        << " per " << (pooled ? "pooled " : "") << "pixel) x 8 channels, k = " << g.kh << "x"
        << g.kw << " taps x " << g.cp << " channels\n"
        << "      for (int u = tid >> 5; u < " << mtiles * ntiles << "; u += nthreads >> 5) {\n"
        << "        const int mt = u / " << ntiles << "; const int nt = u % " << ntiles << ";\n"
        << "        int oy[2], ox[2]; bool ok[2];\n"
        << "        #pragma unroll\n"
        << "        for (int h = 0; h < 2; ++h) {  // this lane's two rows: lane/4 and lane/4 + 8\n"
        << "          const int r = mt * 16 + (lane >> 2) + 8 * h;\n"
        << "          const int pix = r / " << lanes << "; const int q = r % " << lanes << ";\n"
        << "          const int py = pix / " << ys.w << "; const int px = pix % " << ys.w << ";\n"
        << "          const int y0 = py * " << psh << " - " << pph << "; const int x0 = px * " << psw
        << " - " << ppw << ";\n"
        << "          oy[h] = y0 + q / " << pkw << "; ox[h] = x0 + q % " << pkw << ";\n"
        << "          ok[h] = pix < " << pixels << " && q < " << pkh * pkw << " && oy[h] >= 0 && oy[h] < "
        << g.oh << " && ox[h] >= 0 && ox[h] < " << g.ow << ";\n"
        << "        }\n";
    mma_taps(g, "iy * " + std::to_string(g.w) + " + ix");
    open_mma_epilogue(g);
    if (op.has_residual) {
      os_ << "            if (ok[h]) v += load(Z + " << at("k", "oy[h]", "ox[h]", g.kp, g.oh, g.ow)
          << ");\n";
    }
    os_ << "            v = activate(" << act(op.act) << ", v);\n"
        << "          }\n";
    if (pooled) {
      os_ << "          if (!ok[h]) v = pool_start(pool);\n";
      for (int o = 4; o < 4 * lanes; o *= 2) {  // rows r, r^1, ... of one pooled pixel: lanes 4 apart
        os_ << "          v = pool_add(pool, v, __shfl_xor_sync(0xffffffffu, v, " << o << "));\n";
      }
    }
    os_ << "          const int r = mt * 16 + (lane >> 2) + 8 * h;\n"
        << "          const int pix = r / " << lanes << ";\n"
        << "          if (r % " << lanes << " == 0 && pix < " << pixels << ") {\n"
        << "            const int py = pix / " << ys.w << "; const int px = pix % " << ys.w << ";\n";
    if (pooled && !is_max) {
      os_ << "            v /= pool_window(pool, py, px).divisor;\n";
    }
    os_ << "            store(Y + " << at("k", "py", "px", ycp, ys.h, ys.w) << ", k < " << g.k
        << " ? v : 0.0f);\n"
        << "          }\n"
        << "        }\n"
        << "      }\n";
  }

  /// conv_pooled's items: `lanes` a pooled output, whole warps.
  [[nodiscard]] std::int64_t pooled_work(const OpDesc& op) const {
    const OpDesc pl = pool_op(op);
    return (numel(pl.out_cp, pl.out_shape) * pool_lanes(op) + 31) / 32 * 32;
  }

  /// A conv and its pool in one phase: `L` lanes of a warp per pooled output, lane q computing
  /// the conv (bias, residual, activation) at window position q, shuffles taking the max or sum.
  /// The unpooled map is never stored.
  void conv_pooled(const OpDesc& op) {
    const ConvGeom& g = op.conv;
    const OpDesc pl = pool_op(op);
    const LayerDesc& d = pl.layer;
    const Shape ps = pl.out_shape;
    const int cp = pl.out_cp;
    const int lanes = pool_lanes(op);
    const bool is_max = pl.kind == OpKind::max_pool;
    const std::int64_t outputs = numel(cp, ps);
    const std::int64_t work = pooled_work(op);
    const std::int64_t threads = std::int64_t{cluster_} * fused_threads;
    // Items per thread and round: a thread computes up to 4 conv values before it reduces and
    // stores any, so their loads are in flight together (one round trip, not one per item).
    const int per = static_cast<int>(std::min<std::int64_t>(4, (work + threads - 1) / threads));
    out_decl(pl.out_offset, outputs);
    os_ << "      // " << lanes << " lanes per pooled output (" << pl.label << "), " << per
        << " per thread and round\n"
        << "      constexpr PoolShape pool = " << pool_shape(op) << ";\n"
        << "      auto lane_value = [&](int t) -> float {\n"
        << "        const int e = t / " << lanes << "; const int q = t % " << lanes << ";\n";
    decode(cp, ps.h, ps.w);
    os_ << "        const PoolWindow win = pool_window(pool, y, x);\n"
        << "        const int k = c;\n"
        << "        const int oy = y * " << d.stride.h << " - " << d.padding.h << " + q / "
        << d.kernel.w << ";\n"
        << "        const int ox = x * " << d.stride.w << " - " << d.padding.w << " + q % "
        << d.kernel.w << ";\n"
        << "        if (!(e < " << outputs << " && k < " << g.k << " && q < " << d.kernel.h * d.kernel.w
        << " && oy >= win.y0 && oy < win.y1 && ox >= win.x0 && ox < win.x1)) {\n"
        << "          return pool_start(pool);\n"
        << "        }\n"
        << "        float acc;\n";
    conv_value(op, "        ");
    os_ << "        return acc;\n"
        << "      };\n"
        << "      for (int t0 = tid; t0 < " << work << "; t0 += " << per << " * nthreads) {\n"
        << "        float vs[" << per << "];\n"
        << "        #pragma unroll\n"
        << "        for (int r = 0; r < " << per << "; ++r) {\n"
        << "          const int t = t0 + r * nthreads;\n"
        << "          vs[r] = t < " << work << " ? lane_value(t) : pool_start(pool);\n"
        << "        }\n"
        << "        #pragma unroll\n"
        << "        for (int r = 0; r < " << per << "; ++r) {\n"
        << "          const int t = t0 + r * nthreads;  // (warp-uniform: work is whole warps)\n"
        << "          float v = vs[r];\n";
    for (int o = lanes / 2; o > 0; o /= 2) {
      os_ << "          v = pool_add(pool, v, __shfl_xor_sync(0xffffffffu, v, " << o << "));\n";
    }
    os_ << "          const int e = t / " << lanes << ";\n"
        << "          if (t < " << work << " && t % " << lanes << " == 0 && e < " << outputs << ") {\n";
    os_ << "  ";
    decode(cp, ps.h, ps.w);
    if (is_max) {
      os_ << "            (void)x; (void)y;\n";
    } else {
      os_ << "            v /= pool_window(pool, y, x).divisor;\n";
    }
    os_ << "            store(" << out_at("e") << ", c < " << g.k << " ? v : 0.0f);\n"
        << "          }\n"
        << "        }\n"
        << "      }\n";
  }

  /// Opens a direct conv's loops over its taps at indentation `ind` (conv_value):
  /// iy and ix of output pixel (oy, ox), taps outside the input skipped (zero padding). Two
  /// braces left open.
  void open_taps(const ConvGeom& g, const std::string& ind) {
    os_ << ind << "#pragma unroll\n"
        << ind << "for (int ky = 0; ky < " << g.kh << "; ++ky) {\n"
        << ind << "  const int iy = oy * " << g.sh << " - " << g.ph << " + ky * " << g.dh << ";\n"
        << ind << "  if (iy < 0 || iy >= " << g.h << ") continue;\n"
        << ind << "  #pragma unroll\n"
        << ind << "  for (int kx = 0; kx < " << g.kw << "; ++kx) {\n"
        << ind << "    const int ix = ox * " << g.sw << " - " << g.pw << " + kx * " << g.dw << ";\n"
        << ind << "    if (ix < 0 || ix >= " << g.w << ") continue;\n";
  }

  /// The conv's value at output channel k (< K), pixel (oy, ox) into `acc`: bias, the dot
  /// product, the residual, the activation.
  void conv_value(const OpDesc& op, const std::string& ind) {
    const ConvGeom& g = op.conv;
    const int cpg = g.c / g.groups;    // real input channels per group
    const int kpg = g.k / g.groups;    // output channels per group
    const int oslots = nhwc_ ? g.kp : g.k;
    os_ << ind << "const int grp = k / " << kpg << ";\n"
        << ind << "acc = bias[k];\n";
    open_taps(g, ind);
    // Filters: OIHW (f32) or (Kd, kh, kw, fcg) (16-bit), fcg weights per tap.
    const std::string wrow = nhwc_ ? "w + ((k * " + std::to_string(g.kh) + " + ky) * " +
                                         std::to_string(g.kw) + " + kx) * " + std::to_string(g.fcg)
                                   : "";
    const bool from_input = op.index == input_reader_;
    const bool vec = nhwc_ && !from_input && cpg % 8 == 0 && op.in_cp % 8 == 0 && g.fcg % 8 == 0;
    if (from_input) {  // the caller's f32 input, real channels only, rounded as stored
      const std::string c = "grp * " + std::to_string(cpg) + " + ci";
      const std::string src =
          net_.in_layout == Layout::nhwc
              ? "src[(iy * " + std::to_string(g.w) + " + ix) * " + std::to_string(g.c) + " + " + c + "]"
              : "src[((" + c + ") * " + std::to_string(g.h) + " + iy) * " + std::to_string(g.w) +
                    " + ix]";
      const std::string wv =
          nhwc_ ? "load(" + wrow + " + ci)"
                : "load(w + ((k * " + std::to_string(g.fcg) + " + ci) * " + std::to_string(g.kh) +
                      " + ky) * " + std::to_string(g.kw) + " + kx)";
      os_ << ind << "    #pragma unroll\n"
          << ind << "    for (int ci = 0; ci < " << cpg << "; ++ci) acc += as_stored<T>(" << src
          << ") * " << wv << ";\n";
    } else if (nhwc_) {
      os_ << ind << "    const T* xp = X + (iy * " << g.w << " + ix) * " << op.in_cp
          << " + grp * " << cpg << ";\n"
          << ind << "    const T* wp = " << wrow << ";\n";
      if (vec) {
        os_ << ind << "    #pragma unroll\n"
            << ind << "    for (int ci = 0; ci < " << cpg << "; ci += 8) {\n"
            << ind << "      float xv[8], wv[8];\n"
            << ind << "      load8(xp + ci, xv);\n"
            << ind << "      load8(wp + ci, wv);\n"
            << ind << "      #pragma unroll\n"
            << ind << "      for (int j = 0; j < 8; ++j) acc += xv[j] * wv[j];\n"
            << ind << "    }\n";
      } else {
        os_ << ind << "    #pragma unroll\n"
            << ind << "    for (int ci = 0; ci < " << cpg
            << "; ++ci) acc += load(xp + ci) * load(wp + ci);\n";
      }
    } else {
      os_ << ind << "    for (int ci = 0; ci < " << cpg << "; ++ci) {\n"
          << ind << "      acc += load(X + ((grp * " << cpg << " + ci) * " << g.h << " + iy) * "
          << g.w << " + ix) * load(w + ((k * " << g.fcg << " + ci) * " << g.kh << " + ky) * "
          << g.kw << " + kx);\n"
          << ind << "    }\n";
    }
    os_ << ind << "  }\n" << ind << "}\n";
    if (op.has_residual) {
      os_ << ind << "acc += load(Z + " << at("k", "oy", "ox", oslots, g.oh, g.ow) << ");\n";
    }
    os_ << ind << "acc = activate(" << act(op.act) << ", acc);\n";
  }

  /// The softmax (or log_softmax) that alone reads dense layer `op`'s output, when one block can
  /// do both: at most 32 outputs. Null otherwise.
  [[nodiscard]] const OpDesc* softmax_after(const OpDesc& op) const {
    if (op.kind != OpKind::dense || op.layer.out_channels > 32 || op.writes_user_output) {
      return nullptr;
    }
    const OpDesc* sm = nullptr;
    int readers = 0;
    for (const OpDesc& o : net_.ops) {
      readers += (o.in_id == op.out_id ? 1 : 0) + (o.z_id == op.out_id ? 1 : 0);
      if (o.in_id == op.out_id) {
        sm = &o;
      }
    }
    if (readers != 1 || sm == nullptr ||  // (the one reader may read it as a residual)
        (sm->kind != OpKind::softmax && sm->kind != OpKind::log_softmax) ||
        sm->in_shape.h != 1 || sm->in_shape.w != 1 || sm->out_cp > 32) {
      return nullptr;
    }
    return sm;
  }

  /// Warps that share one output of dense layer `op`: the largest power of 2 up to `most` that
  /// leaves every lane at least one 8-value chunk (one value without 16-byte loads) of the input.
  [[nodiscard]] int dense_warps(const OpDesc& op, std::int64_t most) const {
    const int per_lane = nhwc_ && op.dense_kin % 8 == 0 ? 8 : 1;
    int gw = 1;
    while (gw * 2 <= most && std::int64_t{gw} * 2 * 32 * per_lane <= op.dense_kin) {
      gw *= 2;
    }
    return gw;
  }

  /// A dense layer's partial dot product for output row `wr` (the lane's share when `gw` warps
  /// share the row: warp `part` of them) into `acc`, at indentation `ind`.
  void dense_dot(const OpDesc& op, int gw, const std::string& ind) {
    const int kin = op.dense_kin;
    if (nhwc_ && kin % 8 == 0) {  // a constant trip count, unrolled: every load issued up front
      const int step = gw * 256;
      os_ << ind << "#pragma unroll\n"
          << ind << "for (int it = 0; it < " << (kin + step - 1) / step << "; ++it) {\n"
          << ind << "  const int j = (part * 32 + lane) * 8 + it * " << step << ";\n"
          << ind << "  if (j < " << kin << ") {\n"
          << ind << "    float xv[8], wv[8];\n"
          << ind << "    load8(X + j, xv);\n"
          << ind << "    load8(wr + j, wv);\n"
          << ind << "    #pragma unroll\n"
          << ind << "    for (int q = 0; q < 8; ++q) acc += xv[q] * wv[q];\n"
          << ind << "  }\n"
          << ind << "}\n";
    } else {
      os_ << ind << "#pragma unroll 4\n"
          << ind << "for (int j = part * 32 + lane; j < " << kin << "; j += " << gw * 32
          << ") acc += load(X + j) * load(wr + j);\n";
    }
  }

  /// A dense layer of at most 32 outputs and the softmax after it, in the first block of the
  /// cluster only (no cluster barrier between them): G warps per output, the dense output rounded
  /// to the storage type as the two-phase path stores it, then one warp's softmax over it.
  void dense_softmax(const OpDesc& op, const OpDesc& sm) {
    const int m = op.layer.out_channels;
    const int kin = op.dense_kin;
    const int gw = dense_warps(op, 32 / m);  // every output's warps in the first block
    const bool log = sm.kind == OpKind::log_softmax;
    os_ << "      if (cluster_rank() == 0) {\n";
    if (prefetched(op) != nullptr) {
      os_ << "      prefetched();\n";
    }
    ptr("X", true, "T", op.in_offset, numel(op.in_cp, op.in_shape));
    os_ << "      const T* w = static_cast<const T*>(p.w[" << op.index << "]);\n"
        << "      const T* bias = static_cast<const T*>(p.b[" << op.index << "]);\n"
        << "      const int lane = threadIdx.x & 31;\n"
        << "      const int wib = threadIdx.x >> 5;\n"
        << "      const int o = wib / " << gw << "; const int part = wib % " << gw << ";  // " << gw
        << " warps per output\n"
        << "      float acc = 0.0f;\n"
        << "      if (o < " << m << ") {\n";
    if (const Prefetch* pf = prefetched(op)) {
      os_ << "        const T* wr = reinterpret_cast<const T*>(staged + " << pf->smem
          << ") + o * " << kin << ";  // prefetched\n";
    } else {
      os_ << "        const T* wr = w + static_cast<long long>(o) * " << kin << ";\n";
    }
    dense_dot(op, gw, "        ");
    os_ << "        acc = warp_sum(acc);\n"
        << "      }\n"
        << "      __syncthreads();  // red[] free again\n"
        << "      if (lane == 0) red[wib] = acc;\n"
        << "      __syncthreads();\n"
        << "      if (wib == 0) {\n"
        << "        float z = -__int_as_float(0x7f800000);\n"
        << "        if (lane < " << m << ") {\n"
        << "          float a = 0.0f;\n"
        << "          #pragma unroll\n"
        << "          for (int i = 0; i < " << gw << "; ++i) a += red[lane * " << gw << " + i];\n"
        << "          z = as_stored<T>(activate(" << act(op.act)
        << ", a + load(bias + lane)));  // as stored between the two ops\n"
        << "        }\n"
        << "        const float mx = warp_max(z);\n"
        << "        const float ez = lane < " << m << " ? expf(z - mx) : 0.0f;\n"
        << "        const float sum = warp_sum(ez);\n"
        << "        const float v = " << (log ? "z - mx - logf(sum)" : "ez / sum") << ";\n";
    if (sm.writes_user_output) {
      os_ << "        if (lane < " << m << ") p.out[static_cast<long long>(img) * " << m
          << " + lane] = v;\n";
    } else {
      ptr("Y", false, "T", sm.out_offset, sm.out_cp, "        ");
      os_ << "        if (lane < " << sm.out_cp << ") store(Y + lane, lane < " << m
          << " ? v : 0.0f);\n";
    }
    os_ << "      }\n"
        << "      }\n";
  }

  /// A dense layer: `G` warps of one block per output (as many as the cluster's warps allow, up to
  /// a block's 32 and one 8-value chunk per lane), 16-byte loads of weights and input where the
  /// input length is a multiple of 8 (16-bit storage), a warp sum then a sum over the G warps in
  /// shared memory. All loads of a lane are independent, so they are in flight together.
  /// A dense layer's warps per output in dense(): within one block, and every output in one
  /// round where the cluster allows.
  [[nodiscard]] int dense_group_warps(const OpDesc& op) const {
    const int mp = channel_slots(op.layer.out_channels, net_.precision);
    const int warps_per_block = fused_threads / 32;
    return dense_warps(op, std::min<std::int64_t>(warps_per_block, cluster_ * warps_per_block / mp));
  }

  void dense(const OpDesc& op) {
    const int m = op.layer.out_channels;
    const int mp = channel_slots(m, net_.precision);
    const int kin = op.dense_kin;
    const int warps_per_block = fused_threads / 32;
    const int warps = cluster_ * warps_per_block;
    const int gw = dense_group_warps(op);
    const int groups = warps / gw;  // outputs per round, over the cluster
    const Prefetch* pf = prefetched(op);
    if (pf != nullptr) {
      os_ << "      prefetched();\n";
    }
    ptr("X", true, "T", op.in_offset, numel(op.in_cp, op.in_shape));
    ptr("Y", false, "T", op.out_offset, mp);
    os_ << "      const T* w = static_cast<const T*>(p.w[" << op.index << "]);\n"
        << "      const T* bias = static_cast<const T*>(p.b[" << op.index << "]);\n"
        << "      const int lane = threadIdx.x & 31;\n"
        << "      const int wib = threadIdx.x >> 5;  // warp in block\n"
        << "      const int part = wib % " << gw << ";  // " << gw << " warps per output\n"
        << "      for (int base = 0; base < " << mp << "; base += " << groups << ") {\n"
        << "        const int o = base + (static_cast<int>(cluster_rank()) * " << warps_per_block
        << " + wib) / " << gw << ";\n"
        << "        float acc = 0.0f;\n"
        << "        if (o < " << m << ") {\n";
    if (pf != nullptr) {  // this block's rows, from its first
      os_ << "          const T* wr = reinterpret_cast<const T*>(staged + " << pf->smem
          << ") + (o - static_cast<int>(cluster_rank()) * " << warps_per_block / gw << ") * "
          << kin << ";  // prefetched\n";
    } else {
      os_ << "          const T* wr = w + static_cast<long long>(o) * " << kin << ";\n";
    }
    dense_dot(op, gw, "          ");
    os_ << "          acc = warp_sum(acc);\n"
        << "        }\n";
    if (gw > 1) {
      os_ << "        __syncthreads();  // red[] free again\n"
          << "        if (lane == 0) red[wib] = acc;\n"
          << "        __syncthreads();\n"
          << "        if (part == 0) {\n"
          << "          acc = 0.0f;\n"
          << "          #pragma unroll\n"
          << "          for (int i = 0; i < " << gw << "; ++i) acc += red[wib + i];\n"
          << "        }\n";
    }
    os_ << "        if (o < " << mp << " && part == 0 && lane == 0) {\n"
        << "          store(Y + o, o < " << m << " ? activate(" << act(op.act)
        << ", acc + load(bias + o)) : 0.0f);\n"
        << "        }\n"
        << "      }\n";
  }

  void pointwise(const OpDesc& op) {
    const int cp = op.out_cp;
    const int hw = op.out_shape.h * op.out_shape.w;
    const std::int64_t n = numel(cp, op.out_shape);
    ptr("X", true, "T", op.in_offset, n);
    ptr("Y", false, "T", op.out_offset, n);
    if (op.has_residual) {
      ptr("Z", true, "T", op.z_offset, n);
    }
    os_ << "      for (int e = tid; e < " << n << "; e += nthreads) {\n"
        << "        const int ch = " << (nhwc_ ? "e % " + std::to_string(cp) : "(e / " + std::to_string(hw) + ") % " + std::to_string(cp)) << ";\n"
        << "        float v = load(X + e);\n";
    if (op.kind == OpKind::batch_norm) {
      os_ << "        v = v * p.sc[" << op.index << "][ch] + p.sh[" << op.index << "][ch];\n";
    }
    if (op.has_residual) {
      os_ << "        v += load(Z + e);\n";
    }
    os_ << "        store(Y + e, ch < " << op.out_shape.c << " ? activate(" << act(op.act)
        << ", v) : 0.0f);\n      }\n";
  }

  void pool(const OpDesc& op) {
    const LayerDesc& d = op.layer;
    const Shape is = op.in_shape;
    const Shape os = op.out_shape;
    const int cp = op.in_cp;
    const bool is_max = op.kind == OpKind::max_pool;
    ptr("X", true, "T", op.in_offset, numel(cp, is));
    ptr("Y", false, "T", op.out_offset, numel(cp, os));
    os_ << "      for (int e = tid; e < " << numel(cp, os) << "; e += nthreads) {\n";
    decode(cp, os.h, os.w);
    os_ << "        int y0 = y * " << d.stride.h << " - " << d.padding.h << ";\n"
        << "        int x0 = x * " << d.stride.w << " - " << d.padding.w << ";\n"
        << "        int y1 = min(y0 + " << d.kernel.h << ", " << is.h + d.padding.h << ");\n"
        << "        int x1 = min(x0 + " << d.kernel.w << ", " << is.w + d.padding.w << ");\n"
        << "        const int padded_count = (y1 - y0) * (x1 - x0);\n"
        << "        y0 = max(y0, 0); x0 = max(x0, 0); y1 = min(y1, " << is.h << "); x1 = min(x1, " << is.w << ");\n"
        << "        float acc = " << (is_max ? "-__int_as_float(0x7f800000)" : "0.0f") << ";\n"
        << "        for (int yy = y0; yy < y1; ++yy) {\n"
        << "          for (int xx = x0; xx < x1; ++xx) {\n"
        << "            const float v = load(X + " << at("c", "yy", "xx", cp, is.h, is.w) << ");\n"
        << "            acc = " << (is_max ? "fmaxf(acc, v)" : "acc + v") << ";\n"
        << "          }\n        }\n";
    if (!is_max) {
      os_ << "        acc /= static_cast<float>(" << (d.count_include_pad ? "padded_count" : "(y1 - y0) * (x1 - x0)") << ");\n";
    }
    os_ << "        store(Y + e, acc);\n      }\n";
  }

  void global_avg_pool(const OpDesc& op) {
    const Shape is = op.in_shape;
    const int cp = op.in_cp;
    const int hw = is.h * is.w;
    ptr("X", true, "T", op.in_offset, numel(cp, is));
    ptr("Y", false, "T", op.out_offset, cp);
    os_ << "      for (int c = tid; c < " << cp << "; c += nthreads) {\n"
        << "        float acc = 0.0f;\n"
        << "        for (int px = 0; px < " << hw << "; ++px) acc += load(X + "
        << at("c", "px / " + std::to_string(is.w), "px % " + std::to_string(is.w), cp, is.h, is.w) << ");\n"
        << "        store(Y + c, acc / " << hw << ".0f);\n      }\n";
  }

  void softmax(const OpDesc& op) {
    const Shape is = op.in_shape;
    const int cp = op.in_cp;
    const int hw = is.h * is.w;
    const bool log = op.kind == OpKind::log_softmax;
    ptr("X", true, "T", op.in_offset, numel(cp, is));
    os_ << "      const int lane = tid & 31;\n"
        << "      for (int r = tid >> 5; r < " << hw << "; r += nthreads >> 5) {\n"
        << "        const int ry = r / " << is.w << "; const int rx = r % " << is.w << ";\n"
        << "        float mx = -__int_as_float(0x7f800000);\n"
        << "        for (int c = lane; c < " << is.c << "; c += 32) mx = fmaxf(mx, load(X + " << at("c", "ry", "rx", cp, is.h, is.w) << "));\n"
        << "        mx = warp_max(mx);\n"
        << "        float sum = 0.0f;\n"
        << "        for (int c = lane; c < " << is.c << "; c += 32) sum += expf(load(X + " << at("c", "ry", "rx", cp, is.h, is.w) << ") - mx);\n"
        << "        sum = warp_sum(sum);\n"
        << "        const float log_sum = logf(sum);\n";
    if (op.writes_user_output) {
      os_ << "        float* yr = p.out + static_cast<long long>(img) * " << is.c * hw << " + r;\n"
          << "        for (int c = lane; c < " << is.c << "; c += 32) {\n"
          << "          const float zc = load(X + " << at("c", "ry", "rx", cp, is.h, is.w) << ") - mx;\n"
          << "          yr[c * " << hw << "] = " << (log ? "zc - log_sum" : "expf(zc) / sum") << ";\n"
          << "        }\n";
    } else {
      const int ocp = op.out_cp;
      ptr("Y", false, "T", op.out_offset, numel(ocp, op.out_shape), "        ");
      os_ << "        for (int c = lane; c < " << ocp << "; c += 32) {\n"
          << "          float v = 0.0f;\n"
          << "          if (c < " << is.c << ") {\n"
          << "            const float zc = load(X + " << at("c", "ry", "rx", cp, is.h, is.w) << ") - mx;\n"
          << "            v = " << (log ? "zc - log_sum" : "expf(zc) / sum") << ";\n"
          << "          }\n"
          << "          store(Y + " << at("c", "ry", "rx", ocp, is.h, is.w) << ", v);\n"
          << "        }\n";
    }
    os_ << "      }\n";
  }

  // ---- The tiled form (EngineOptions::fused_tiled) -------------------------------------------
  // A network that is a stack of convs (each with its pool, if any) and then dense layers runs
  // with one cluster barrier an image: the first conv (and its pool) runs as in the phase kernel,
  // its map spread over every thread of the cluster, each block's outputs kept in its own shared
  // memory (Own); after the barrier the last conv's (pooled) map is cut into one rectangle per
  // block, each block reads the region of the first conv's map its rectangle depends on from the
  // blocks that computed it into its shared memory and computes there
  // every value of every later conv that the rectangle needs — the overlap between neighbouring
  // rectangles computed twice. The first dense layer then runs split by its input: each block
  // multiplies its rectangle's values by the matching columns of the weights (copied into its
  // shared memory) and sends its partial sums to the first block (st.async into that block's
  // shared memory, counted by an mbarrier: no cluster barrier, no memory fence), which adds them
  // up and runs the remaining dense layers and the softmax. Session 49 recomputed the first conv
  // too, over each block's region (no barrier at all): the largest regions took 3.3 times a
  // 16th of the map, and the first block waited for them (13.8 µs against the phase kernel's
  // 11.3 on the MNIST CNN, H100).

  /// The tiled form's first conv: its items dealt to the cluster's blocks in chunks of G (G = 32,
  /// or 8 pooled outputs' lanes where that is more: chunk c to block c % cluster, as the phase
  /// kernel deals warps, so a partial last round spreads over every block), each block's outputs
  /// kept in its own shared memory: output e, computed by block (e / B) % cluster, at slot
  /// (e / E)·B + e % B of a buffer of `bytes` (two, alternating by image), B = G / lanes outputs
  /// a chunk (a multiple of 8: a 16-byte load never straddles two blocks), E = B · cluster.
  struct Own {
    std::int64_t smem = 0, bytes = 0;
    int g = 32, b = 0, e = 0;
    [[nodiscard]] std::string slot(const std::string& x) const {
      return "((" + x + ") / " + std::to_string(e) + ") * " + std::to_string(b) + " + (" + x + ") % " +
             std::to_string(b);
    }
    [[nodiscard]] std::string owner(const std::string& x) const {
      return "((" + x + ") / " + std::to_string(b) + ") % " + std::to_string(e / b);
    }
  };
  /// A region of a map: rows [y0, y1), columns [x0, x1).
  struct Reg {
    int y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  };
  /// One conv of the stack, with its pool.
  struct TStage {
    const OpDesc* op = nullptr;
    bool mma = false;
    int lanes = 1;                                       ///< rows (or lanes) per pooled pixel
    int pkh = 1, pkw = 1, psh = 1, psw = 1, pph = 0, ppw = 0;
    Shape ys{};                                          ///< the stage's (pooled) output
    int ycp = 0;                                         ///< its channel slots
    bool is_max = true;
    int oh = 0, ow = 0;                                  ///< the largest output region of a block
    std::int64_t tile = 0;                               ///< its shared-memory offset
    std::int64_t filter = -1;                            ///< an mma stage's prefetched filter
  };
  struct TPlan {
    std::vector<TStage> st;
    std::vector<const OpDesc*> dense;
    const OpDesc* softmax = nullptr;
    int ty = 1, tx = 1;           ///< the last map's rectangles: ty rows of tx
    Own own;                      ///< the first conv's map, each block's share of it
    std::int64_t in_stage = -1;   ///< the host path's image in shared memory, where it fits
    std::int64_t cols = 0, part = 0, vec = 0, bytes = 0;
    std::vector<std::int64_t> dw;    ///< later dense layers' weights in the first block, or -1
    int vec_n = 0;                ///< floats per vector in the first block
    std::string why;              ///< empty: the network fits
    /// The most pixels of a block's rectangle of the last map.
    [[nodiscard]] int np() const { return st.back().oh * st.back().ow; }
  };
  /// The output region conv stage `s` computes before its pool, for a pooled region `r`.
  [[nodiscard]] static Reg prepool(const TStage& s, Reg r) {
    const ConvGeom& g = s.op->conv;
    return {std::max(r.y0 * s.psh - s.pph, 0), std::min((r.y1 - 1) * s.psh - s.pph + s.pkh, g.oh),
            std::max(r.x0 * s.psw - s.ppw, 0), std::min((r.x1 - 1) * s.psw - s.ppw + s.pkw, g.ow)};
  }
  /// The input region conv stage `s` reads for its (pooled) output region `r`.
  [[nodiscard]] static Reg input_of(const TStage& s, Reg r) {
    const ConvGeom& g = s.op->conv;
    const Reg a = prepool(s, r);
    return {std::max(a.y0 * g.sh - g.ph, 0), std::min((a.y1 - 1) * g.sh - g.ph + (g.kh - 1) * g.dh + 1, g.h),
            std::max(a.x0 * g.sw - g.pw, 0), std::min((a.x1 - 1) * g.sw - g.pw + (g.kw - 1) * g.dw + 1, g.w)};
  }
  /// Block `rank`'s rectangle of the last map.
  [[nodiscard]] static Reg rect(const TPlan& t, int rank) {
    const Shape& f = t.st.back().ys;
    const int y = rank / t.tx;
    const int x = rank % t.tx;
    return {y * f.h / t.ty, (y + 1) * f.h / t.ty, x * f.w / t.tx, (x + 1) * f.w / t.tx};
  }
  /// Every stage's output region for block `rank` (index s): the last stage's its rectangle,
  /// each one before it what the next reads.
  [[nodiscard]] static std::vector<Reg> regions(const TPlan& t, int rank) {
    const std::size_t n = t.st.size();
    std::vector<Reg> r(n);
    r[n - 1] = rect(t, rank);
    for (std::size_t s = n - 1; s > 0; --s) {
      r[s - 1] = input_of(t.st[s], r[s]);
    }
    return r;
  }

  /// The tiled plan of the network (TPlan::why says why not).
  [[nodiscard]] TPlan tiled_plan() const {
    TPlan t;
    const auto no = [&t](std::string why) {
      t.why = std::move(why);
      return t;
    };
    if (!is_16bit(net_.precision) || !nhwc_) {
      return no("16-bit NHWC engines only");
    }
    if (cluster_ < 2) {  // (st.async into a block's own shared memory: compute-sanitizer refuses it)
      return no("a cluster of at least 2 blocks");
    }
    if (net_.ops.empty() || net_.s2d_op >= 0) {
      return no("not a stack of convs then dense layers");
    }
    std::int64_t result = -1;  // the arena offset of the previous op's result
    for (const OpDesc& op : net_.ops) {
      if (op.in_act.kind != Act::none || op.has_residual) {
        return no(op.label + ": a residual or a deferred activation");
      }
      if (op.kind == OpKind::conv) {
        if (!t.dense.empty()) {
          return no(op.label + ": a conv after a dense layer");
        }
        TStage s;
        s.op = &op;
        const ConvGeom& g = op.conv;
        if (t.st.empty()) {
          if (direct_input_reader() != op.index) {
            return no(op.label + ": the first conv does not read the input alone, directly");
          }
        } else {
          if (!mma_fits(op) || op.in_offset != result || g.cp != t.st.back().ycp) {
            return no(op.label + ": a conv that is not on tensor cores or does not read the conv before it");
          }
          s.mma = true;
        }
        if (op.pool) {
          const OpDesc pl = pool_op(op);
          s.lanes = pool_lanes(op);
          if (s.lanes == 0) {
            return no(op.label + ": a pool window of more than 32 positions");
          }
          s.pkh = pl.layer.kernel.h;
          s.pkw = pl.layer.kernel.w;
          s.psh = pl.layer.stride.h;
          s.psw = pl.layer.stride.w;
          s.pph = pl.layer.padding.h;
          s.ppw = pl.layer.padding.w;
          s.ys = pl.out_shape;
          s.ycp = pl.out_cp;
          s.is_max = pl.kind == OpKind::max_pool;
          result = pl.out_offset;
        } else {
          s.ys = Shape{g.k, g.oh, g.ow, 3};
          s.ycp = g.kp;
          result = op.out_offset;
        }
        t.st.push_back(s);
      } else if (op.kind == OpKind::dense) {
        if (t.st.empty() || op.in_offset != result || op.dense_kin % 8 != 0) {
          return no(op.label + ": a dense layer that does not read the layer before it");
        }
        if (t.dense.empty()) {
          const TStage& l = t.st.back();
          if (op.dense_kin != l.ys.h * l.ys.w * l.ycp || l.ycp % 8 != 0) {
            return no(op.label + ": the first dense layer's input is not the last conv's map");
          }
        } else if (op.dense_kin != channel_slots(t.dense.back()->layer.out_channels, net_.precision)) {
          return no(op.label + ": a dense layer's input is not the dense layer before it");
        }
        t.dense.push_back(&op);
        result = op.out_offset;
      } else if ((op.kind == OpKind::softmax || op.kind == OpKind::log_softmax) && !t.dense.empty() &&
                 &op == &net_.ops.back() && op.in_offset == result &&
                 t.dense.back()->layer.out_channels <= 32) {
        t.softmax = &op;
      } else {
        return no(op.label + ": not a conv, a dense layer or a final softmax");
      }
    }
    if (t.dense.empty()) {
      return no("no dense layer after the convs");
    }
    // The rectangles: as even as the last map allows, the fewest pixels in the largest, then the
    // smallest region of the first conv's map a block reads.
    const Shape f = t.st.back().ys;
    int best_px = 0;
    int best_in = 0;
    for (int ty = 1; ty <= std::min(cluster_, f.h); ++ty) {
      const int tx = std::min(cluster_ / ty, f.w);
      TPlan c = t;
      c.ty = ty;
      c.tx = tx;
      int px = 0;
      int in = 0;
      for (int r = 0; r < ty * tx; ++r) {
        const std::vector<Reg> rg = regions(c, r);
        const Reg last = rg[t.st.size() - 1];
        const Reg first = rg[0];
        px = std::max(px, (last.y1 - last.y0) * (last.x1 - last.x0));
        in = std::max(in, (first.y1 - first.y0) * (first.x1 - first.x0));
      }
      if (best_px == 0 || px < best_px || (px == best_px && in < best_in)) {
        best_px = px;
        best_in = in;
        t.ty = ty;
        t.tx = tx;
      }
    }
    // Region sizes and the shared memory: each stage's tile (the first conv's: the region of its
    // map the block reads), the filters, the first dense layer's columns, the partial sums, two
    // vectors.
    for (int r = 0; r < t.ty * t.tx; ++r) {
      const std::vector<Reg> rg = regions(t, r);
      for (std::size_t s = 0; s < t.st.size(); ++s) {
        t.st[s].oh = std::max(t.st[s].oh, rg[s].y1 - rg[s].y0);
        t.st[s].ow = std::max(t.st[s].ow, rg[s].x1 - rg[s].x0);
      }
    }
    const auto up16 = [](std::int64_t b) { return (b + 15) / 16 * 16; };
    std::int64_t at = 0;
    {  // the first conv's outputs this block computes, by image parity (Own)
      const TStage& s0 = t.st.front();
      const std::int64_t work = s0.op->pool ? pooled_work(*s0.op) : numel(s0.ycp, s0.ys);  // (conv())
      const std::int64_t threads = std::int64_t{cluster_} * fused_threads;
      t.own.g = std::max(32, 8 * s0.lanes);
      t.own.b = t.own.g / s0.lanes;
      t.own.e = t.own.b * cluster_;
      t.own.bytes = up16((work + threads - 1) / threads * (fused_threads / s0.lanes) * 2);
      t.own.smem = at;
      at += 2 * t.own.bytes;
    }
    for (TStage& s : t.st) {
      s.tile = at;
      at += up16(std::int64_t{s.oh} * s.ow * s.ycp * 2);
    }
    for (TStage& s : t.st) {
      if (s.mma) {
        const ConvGeom& g = s.op->conv;
        s.filter = at;
        at += up16(std::int64_t{g.kp} * g.kh * g.kw * g.cp * 2);
      }
    }
    const TStage& l = t.st.back();
    const int m = t.dense.front()->layer.out_channels;
    const std::int64_t cols = up16(std::int64_t{m} * t.np() * l.ycp * 2);
    t.part = at;
    at += up16(std::int64_t{t.ty} * t.tx * m * 4);
    for (const OpDesc* d : t.dense) {
      t.vec_n = std::max({t.vec_n, d->dense_kin, channel_slots(d->layer.out_channels, net_.precision)});
    }
    t.vec = at;
    at += up16(std::int64_t{t.vec_n} * 2 * 4);
    for (std::size_t i = 1; i < t.dense.size(); ++i) {  // (the first block's, where they fit)
      const std::int64_t b = std::int64_t{t.dense[i]->layer.out_channels} * t.dense[i]->dense_kin * 2;
      t.dw.push_back(at + b <= shared_max_ - cols ? at : -1);
      at += t.dw.back() >= 0 ? up16(b) : 0;
    }
    // The first dense layer's columns in shared memory where they fit, else read from global
    // memory (L2) as the partial sums need them (cols -1: few blocks, many columns each).
    t.cols = at + cols <= shared_max_ ? at : -1;
    at += t.cols >= 0 ? cols : 0;
    // The host path's image (page-locked host memory, read over the bus) copied into each block's
    // shared memory once, where it fits, so that the first conv's taps do not read it again and
    // again across the bus (else they do).
    const std::int64_t ib = up16(net_.in_shape.numel() * 4);
    t.in_stage = at + ib <= shared_max_ ? at : -1;
    at += t.in_stage >= 0 ? ib : 0;
    t.bytes = at;
    if (t.bytes > shared_max_) {
      return no("its tiles and weights need " + std::to_string(t.bytes) +
                " bytes of shared memory a block, over " + std::to_string(shared_max_));
    }
    return t;
  }

  /// The name of stage `s`'s region variables in the source ("r<s>": r<s>y0, r<s>y1, ...).
  [[nodiscard]] static std::string region_name(std::size_t s) {
    std::string r = "r";
    r += std::to_string(s);  // (not "r" + to_string(): g++ 12 warns -Wrestrict on it)
    return r;
  }
  /// The region variables of every stage (r<s>y0 ...), for `rank`: the last stage's its
  /// rectangle, each one before it the region the next stage reads.
  void tiled_regions(const TPlan& t) {
    const Shape f = t.st.back().ys;
    const std::size_t n = t.st.size();
    os_ << "  const int ty = static_cast<int>(rank) / " << t.tx << ";\n"
        << "  const int tx = static_cast<int>(rank) % " << t.tx << ";\n"
        << "  const bool active = rank < " << t.ty * t.tx << "u;  // a block with a rectangle\n"
        << "  const int r" << n - 1 << "y0 = ty * " << f.h << " / " << t.ty << ", r" << n - 1
        << "y1 = (ty + 1) * " << f.h << " / " << t.ty << ";\n"
        << "  const int r" << n - 1 << "x0 = tx * " << f.w << " / " << t.tx << ", r" << n - 1
        << "x1 = (tx + 1) * " << f.w << " / " << t.tx << ";\n";
    for (std::size_t s = n; s-- > 1;) {
      const TStage& st = t.st[s];
      const ConvGeom& g = st.op->conv;
      const std::string o = region_name(s);
      const std::string i = region_name(s - 1);
      os_ << "  // " << st.op->label << ": its input region from its output region\n";
      for (const char* d : {"y", "x"}) {
        const bool y = d[0] == 'y';
        const int ps = y ? st.psh : st.psw, pp = y ? st.pph : st.ppw, pk = y ? st.pkh : st.pkw;
        const int cs = y ? g.sh : g.sw, cpd = y ? g.ph : g.pw, ck = y ? g.kh : g.kw, cd = y ? g.dh : g.dw;
        const int om = y ? g.oh : g.ow, im = y ? g.h : g.w;
        os_ << "  const int " << i << d << "0 = max(max(" << o << d << "0 * " << ps << " - " << pp
            << ", 0) * " << cs << " - " << cpd << ", 0);\n"
            << "  const int " << i << d << "1 = min((min((" << o << d << "1 - 1) * " << ps << " - " << pp
            << " + " << pk << ", " << om << ") - 1) * " << cs << " - " << cpd << " + "
            << (ck - 1) * cd + 1 << ", " << im << ");\n";
      }
    }
  }

  /// Conv stage `si` (on tensor cores) from the tile of the stage before it into its own.
  void tiled_mma(const TPlan& t, std::size_t si) {
    const TStage& s = t.st[si];
    const TStage& prev = t.st[si - 1];
    const OpDesc& op = *s.op;
    const ConvGeom& g = op.conv;
    const int ntiles = g.kp / 8;
    const std::string o = region_name(si);
    const std::string i = region_name(si - 1);
    os_ << "      const T* Xs = reinterpret_cast<const T*>(staged + " << prev.tile << ");\n"
        << "      const T* Ws = reinterpret_cast<const T*>(staged + " << s.filter << ");  // prefetched\n"
        << "      const float* bias = p.bf[" << op.index << "];\n"
        << "      T* Yt = reinterpret_cast<T*>(staged + " << s.tile << ");\n"
        << "      const int rw = " << o << "x1 - " << o << "x0;\n"
        << "      const int pixels = (" << o << "y1 - " << o << "y0) * rw;\n"
        << "      const int units = (pixels * " << s.lanes << " + 15) / 16 * " << ntiles << ";\n"
        << "      constexpr PoolShape pool = " << pool_shape_of(op) << ";\n"
        << "      const int lane = threadIdx.x & 31;\n"
        << "      for (int u = threadIdx.x >> 5; u < units; u += " << fused_threads / 32 << ") {\n"
        << "        const int mt = u / " << ntiles << "; const int nt = u % " << ntiles << ";\n"
        << "        int oy[2], ox[2]; bool ok[2];\n"
        << "        #pragma unroll\n"
        << "        for (int h = 0; h < 2; ++h) {\n"
        << "          const int r = mt * 16 + (lane >> 2) + 8 * h;\n"
        << "          const int pix = r / " << s.lanes << "; const int q = r % " << s.lanes << ";\n"
        << "          const int py = " << o << "y0 + pix / rw; const int px = " << o << "x0 + pix % rw;\n"
        << "          oy[h] = py * " << s.psh << " - " << s.pph << " + q / " << s.pkw << ";\n"
        << "          ox[h] = px * " << s.psw << " - " << s.ppw << " + q % " << s.pkw << ";\n"
        << "          ok[h] = pix < pixels && q < " << s.pkh * s.pkw << " && oy[h] >= 0 && oy[h] < "
        << g.oh << " && ox[h] >= 0 && ox[h] < " << g.ow << ";\n"
        << "        }\n";
    mma_taps(g, "(iy - " + i + "y0) * " + std::to_string(prev.ow) + " + (ix - " + i + "x0)");
    open_mma_epilogue(g);
    os_ << "            v = activate(" << act(op.act) << ", v);\n"
        << "          }\n"
        << "          if (!ok[h]) v = pool_start(pool);\n";
    for (int sh = 4; sh < 4 * s.lanes; sh *= 2) {
      os_ << "          v = pool_add(pool, v, __shfl_xor_sync(0xffffffffu, v, " << sh << "));\n";
    }
    os_ << "          const int r = mt * 16 + (lane >> 2) + 8 * h;\n"
        << "          const int pix = r / " << s.lanes << ";\n"
        << "          if (r % " << s.lanes << " == 0 && pix < pixels) {\n";
    if (!s.is_max) {
      os_ << "            v /= pool_window(pool, " << o << "y0 + pix / rw, " << o << "x0 + pix % rw).divisor;\n";
    }
    os_ << "            store(Yt + ((pix / rw) * " << s.ow << " + pix % rw) * " << s.ycp << " + k, k < "
        << g.k << " ? v : 0.0f);\n"
        << "          }\n"
        << "        }\n"
        << "      }\n";
  }

  /// conv_pool_shape's literal, with a 1×1 window where the conv has no pool.
  [[nodiscard]] static std::string pool_shape_of(const OpDesc& op) {
    return kernels::source_literal(
        kernels::conv_pool_shape(op, 0, op.pool ? op.pool->out_cp : op.conv.kp));
  }

  [[nodiscard]] std::string tiled_source(const TPlan& t) {
    shared_ = t.bytes;
    prelude();
    const std::size_t n = t.st.size();
    const TStage& f = t.st.front();
    const TStage& l = t.st.back();
    const OpDesc& d0 = *t.dense.front();
    const int m0 = d0.layer.out_channels;
    const int active = t.ty * t.tx;
    input_reader_ = f.op->index;  // (tiled_plan: the first conv reads the caller's input directly)
    open_kernel("// The tiled form: one cluster barrier an image, after the first conv, whose outputs each block\n"
                "// keeps in its own shared memory and the others read from there; the first dense layer's partial\n"
                "// sums go to the first block by st.async, counted by its mbarrier (complete_tx).\n",
                t.own.g);
    os_ << R"(  const unsigned rank = cluster_rank();
  extern __shared__ __align__(16) unsigned char staged[];
  __shared__ __align__(8) unsigned long long gather;  // the first block's: the partial sums' bytes
  if (rank == 0 && threadIdx.x == 0) {  // (made visible by the first conv's cluster barrier)
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(static_cast<unsigned>(__cvta_generic_to_shared(&gather))) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
)";
    tiled_regions(t);
    // The weights into shared memory, once (the first image): the tensor-core convs' filters
    // (group 0) after the first conv's work (their address arithmetic and traffic would
    // otherwise come before it) and before its cluster barrier; this block's columns of the first
    // dense layer and, in the first block, the later dense layers' weights (group 1) once the
    // block's region of the first conv's map has been asked for (their traffic behind it).
    std::ostringstream pf0;
    if (n > 1) {  // (stages after the first are on tensor cores)
      pf0 << "    if (nimg == 0 && active) {  // the filters, once\n";
      for (const TStage& s : t.st) {
        if (s.mma) {
          const ConvGeom& g = s.op->conv;
          pf0 << "      prefetch(staged + " << s.filter << ", p.w[" << s.op->index << "], "
              << std::int64_t{g.kp} * g.kh * g.kw * g.cp * 2 << ");  // " << s.op->label << "\n";
        }
      }
      pf0 << "      asm volatile(\"cp.async.commit_group;\" ::: \"memory\");\n"
          << "    }\n";
    }
    const std::string ln = std::to_string(n - 1);
    std::ostringstream pf1;
    pf1 << "        if (nimg == 0) {  // the dense layers' weights, once\n";
    if (t.cols >= 0) {
      pf1 << "          {  // " << d0.label << ": the columns of this block's pixels, every row\n"
          << "            const int rw = r" << ln << "x1 - r" << ln << "x0;\n"
          << "            const int np = (r" << ln << "y1 - r" << ln << "y0) * rw;\n"
          << "            const unsigned char* wg = static_cast<const unsigned char*>(p.w[" << d0.index << "]);\n"
          << "            for (int i = threadIdx.x; i < " << m0 << " * np * " << l.ycp / 8 << "; i += "
          << fused_threads << ") {\n"
          << "              const int c8 = i % " << l.ycp / 8 << "; const int pix = (i / " << l.ycp / 8
          << ") % np; const int o = i / (" << l.ycp / 8 << " * np);\n"
          << "              const int py = r" << ln << "y0 + pix / rw; const int px = r" << ln << "x0 + pix % rw;\n"
          << "              const long long j = " << at("c8 * 8", "py", "px", l.ycp, l.ys.h, l.ys.w) << ";\n"
          << "              const unsigned sa = static_cast<unsigned>(__cvta_generic_to_shared(staged + " << t.cols
          << " + ((o * " << t.np() << " + pix) * " << l.ycp << " + c8 * 8) * 2));\n"
          << "              asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16;\" :: \"r\"(sa), \"l\"(wg + (o * "
          << d0.dense_kin << "LL + j) * 2) : \"memory\");\n"
          << "            }\n"
          << "          }\n";
    }
    for (std::size_t i = 1; i < t.dense.size(); ++i) {
      if (t.dw[i - 1] >= 0) {
        const OpDesc& d = *t.dense[i];
        pf1 << "          if (rank == 0) prefetch(staged + " << t.dw[i - 1] << ", p.w[" << d.index << "], "
            << std::int64_t{d.layer.out_channels} * d.dense_kin * 2 << ");  // " << d.label << "\n";
      }
    }
    pf1 << "          asm volatile(\"cp.async.commit_group;\" ::: \"memory\");\n"
        << "        }\n";
    os_ << "  unsigned nimg = 0;  // images this cluster has run\n"
        << "  for (int img = blockIdx.x / " << cluster_ << "; img < p.batch; img += clusters, ++nimg) {\n"
        << "    if (rank == 0 && threadIdx.x == 0) {  // this image's partial sums, expected\n"
        << "      asm volatile(\"mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\" :: \"r\"(static_cast<unsigned>(__cvta_generic_to_shared(&gather))), \"r\"("
        << (active - 1) * m0 * 4 << ") : \"memory\");  // (the other blocks': its own are plain stores)\n"
        << "    }\n";
    // The first conv: the whole map over the cluster, each block's share into its own shared
    // memory.
    phase(f.op->label);
    const std::int64_t in_n = net_.in_shape.numel();
    std::string image = "p.in + static_cast<long long>(img) * " + std::to_string(in_n);
    if (t.in_stage >= 0) {  // the host path's image copied into this block's shared memory once
      os_ << "    const float* image = " << image << ";\n"
          << "    if (p.stage != nullptr) {  // host path: the image from page-locked host memory, read once\n";
      copy_image("staged + " + std::to_string(t.in_stage), "static_cast<int>(threadIdx.x)",
                 std::to_string(fused_threads));
      os_ << "      __syncthreads();\n"
          << "      image = reinterpret_cast<const float*>(staged + " << t.in_stage << ");\n"
          << "    }\n";
      image = "image";
    } else {  // (read across the bus by every tap: an image too large to copy)
      image = "(p.stage != nullptr ? p.stage : p.in) + static_cast<long long>(img) * " + std::to_string(in_n);
    }
    os_ << "    {  // op " << f.op->index << ": " << f.op->label << ", the whole map over the cluster\n";
    own_ = t.own;
    conv(*f.op, image);
    own_.reset();
    os_ << "    }\n" << pf0.str() << "    cluster_sync();\n";
    // Each block's region of it into its tile, then the later convs over their regions.
    for (std::size_t s = 0; s < n; ++s) {
      const TStage& st = t.st[s];
      if (s > 0) {
        phase(st.op->label);
      }
      os_ << "    if (active) {  // op " << st.op->index << ": " << st.op->label << ", this block's region\n";
      if (s == 0) {
        const int c8 = st.ycp / 8;
        const int nr = static_cast<int>((std::int64_t{st.oh} * st.ow * c8 + fused_threads - 1) / fused_threads);
        const std::string e = "((r0y0 + pix / rw) * " + std::to_string(st.ys.w) + " + r0x0 + pix % rw) * " +
                              std::to_string(st.ycp) + " + c * 8";
        os_ << "      {  // the region of the first conv's map this block reads, 16 bytes a load from the\n"
            << "         // shared memory of the block that computed them\n"
            << "        const unsigned char* own = staged + " << t.own.smem << " + (nimg & 1u) * " << t.own.bytes << ";\n"
            << "        uint4* dst = reinterpret_cast<uint4*>(staged + " << st.tile << ");\n"
            << "        const int rw = r0x1 - r0x0;\n"
            << "        const int total = (r0y1 - r0y0) * rw * " << c8 << ";\n"
            << "        uint4 v[" << nr << "];\n"
            << "        #pragma unroll\n"
            << "        for (int r = 0; r < " << nr << "; ++r) {\n"
            << "          const int i = threadIdx.x + r * " << fused_threads << ";\n"
            << "          const int c = i % " << c8 << "; const int pix = i / " << c8 << ";\n"
            << "          if (i < total) {\n"
            << "            const int e = " << e << ";\n"
            << "            const unsigned ra = cluster_addr(own + (" << t.own.slot("e") << ") * 2, " << t.own.owner("e") << ");\n"
            << "            asm volatile(\"ld.shared::cluster.v4.u32 {%0, %1, %2, %3}, [%4];\" : \"=r\"(v[r].x), \"=r\"(v[r].y), \"=r\"(v[r].z), \"=r\"(v[r].w) : \"r\"(ra) : \"memory\");\n"
            << "          }\n"
            << "        }\n"
            << pf1.str()
            << "        #pragma unroll\n"
            << "        for (int r = 0; r < " << nr << "; ++r) {\n"
            << "          const int i = threadIdx.x + r * " << fused_threads << ";\n"
            << "          const int c = i % " << c8 << "; const int pix = i / " << c8 << ";\n"
            << "          if (i < total) dst[((pix / rw) * " << st.ow << " + pix % rw) * " << c8 << " + c] = v[r];\n"
            << "        }\n"
            << "      }\n";
      } else {
        if (s == 1) {
          os_ << "      asm volatile(\"cp.async.wait_group 1;\" ::: \"memory\");  // the filters\n";
        }
        os_ << "      __syncthreads();\n";
        tiled_mma(t, s);
      }
      os_ << "      __syncthreads();\n"
          << "    }\n";
    }

    // The first dense layer's partial sums.
    int g = 1;  // threads per output
    while (g < 32 && std::int64_t{g} * 2 * m0 <= fused_threads) {
      g *= 2;
    }
    const int per_round = fused_threads / g;
    phase(d0.label + " (partial sums)");
    os_ << "    if (active) {  // op " << d0.index << ": " << d0.label << ", this block's pixels: " << g
        << " threads an output\n"
        << "      asm volatile(\"cp.async.wait_all;\" ::: \"memory\");  // the columns\n"
        << "      __syncthreads();\n"
        << "      const T* Xt = reinterpret_cast<const T*>(staged + " << l.tile << ");\n"
        << "      const T* Wc = " << (t.cols >= 0 ? "reinterpret_cast<const T*>(staged + " + std::to_string(t.cols) + ")" : std::string("static_cast<const T*>(p.w[") + std::to_string(d0.index) + "])") << ";\n"
        << "      const int rw = r" << ln << "x1 - r" << ln << "x0;\n"
        << "      const int np = (r" << ln << "y1 - r" << ln << "y0) * rw;\n"
        << "      const unsigned to = cluster_addr(staged + " << t.part << " + rank * " << m0 * 4 << ", 0);\n"
        << "      const unsigned bar = cluster_addr(&gather, 0);\n"
        << "      #pragma unroll\n"
        << "      for (int o0 = 0; o0 < " << m0 << "; o0 += " << per_round << ") {\n"
        << "        const int o = o0 + static_cast<int>(threadIdx.x) / " << g << ";\n"
        << "        const int part = threadIdx.x % " << g << ";\n"
        << "        float acc = 0.0f;\n"
        << "        if (o < " << m0 << ") {\n"
        << "          for (int e = part * 8; e < np * " << l.ycp << "; e += " << g * 8 << ") {\n"
        << "            const int pix = e / " << l.ycp << "; const int c = e % " << l.ycp << ";\n"
        << "            float xv[8], wv[8];\n"
        << "            load8(Xt + ((pix / rw) * " << l.ow << " + pix % rw) * " << l.ycp << " + c, xv);\n"
        << "            load8(Wc + " << (t.cols >= 0 ? "(o * " + std::to_string(t.np()) + " + pix) * " + std::to_string(l.ycp) + " + c"
                                          : "o * " + std::to_string(d0.dense_kin) + "LL + " +
                                                at("c", "r" + ln + "y0 + pix / rw", "r" + ln + "x0 + pix % rw", l.ycp, l.ys.h, l.ys.w))
        << ", wv);\n"
        << "            #pragma unroll\n"
        << "            for (int q = 0; q < 8; ++q) acc += xv[q] * wv[q];\n"
        << "          }\n"
        << "        }\n";
    for (int sh = g / 2; sh > 0; sh /= 2) {
      os_ << "        acc += __shfl_xor_sync(0xffffffffu, acc, " << sh << ");\n";
    }
    os_ << "        if (o < " << m0 << " && part == 0) {\n"
        << "          if (rank == 0) {  // the first block's own: a plain store (read after a block barrier)\n"
        << "            reinterpret_cast<float*>(staged + " << t.part << ")[o] = acc;\n"
        << "          } else {\n"
        << "            asm volatile(\"st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [%0], %1, [%2];\" :: \"r\"(to + o * 4), \"r\"(__float_as_uint(acc)), \"r\"(bar) : \"memory\");\n"
        << "          }\n"
        << "        }\n"
        << "      }\n"
        << "    }\n";
    // The first block: the sums, the remaining dense layers, the softmax, the output.
    std::string rest = d0.label + " (gathered)";
    for (std::size_t i = 1; i < t.dense.size(); ++i) {
      rest += "+" + t.dense[i]->label;
    }
    if (t.softmax != nullptr) {
      rest += "+" + t.softmax->label;
    }
    phase(rest);
    os_ << "    if (rank == 0) {\n"
        << "      {  // every block's partial sums arrived\n"
        << "        const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(&gather));\n"
        << "        unsigned done = 0;\n"
        << "        do {\n"
        << "          asm volatile(\"{\\n\\t.reg .pred p;\\n\\tmbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\\n\\tselp.u32 %0, 1, 0, p;\\n\\t}\" : \"=r\"(done) : \"r\"(a), \"r\"(nimg & 1u) : \"memory\");\n"
        << "        } while (done == 0);  // (acquire at cluster scope: the other blocks' st.async release there)\n"
        << "        __syncthreads();  // and this block's own partial sums stored\n"
        << "      }\n"
        << "      const float* part = reinterpret_cast<const float*>(staged + " << t.part << ");\n"
        << "      float* va = reinterpret_cast<float*>(staged + " << t.vec << ");\n"
        << "      float* vb = va + " << t.vec_n << ";\n"
        << "      const int lane = threadIdx.x & 31;\n"
        << "      const int wib = threadIdx.x >> 5;\n"
        << "      (void)lane; (void)wib; (void)vb;\n"
        << "      {  // op " << d0.index << ": " << d0.label << ", the sum of the blocks' partial sums\n"
        << "        const T* bias = static_cast<const T*>(p.b[" << d0.index << "]);\n"
        << "        for (int o = threadIdx.x; o < " << channel_slots(m0, net_.precision) << "; o += "
        << fused_threads << ") {\n"
        << "          float v = 0.0f;\n"
        << "          if (o < " << m0 << ") {\n"
        << "            float a = 0.0f;\n"
        << "            #pragma unroll\n"
        << "            for (int r = 0; r < " << active << "; ++r) a += part[r * " << m0 << " + o];\n"
        << "            v = as_stored<T>(activate(" << act(d0.act) << ", a + load(bias + o)));\n"
        << "          }\n"
        << "          va[o] = v;\n"
        << "        }\n"
        << "      }\n";
    const char* in = "va";
    const char* out = "vb";
    for (std::size_t i = 1; i < t.dense.size(); ++i) {
      const OpDesc& d = *t.dense[i];
      const int m = d.layer.out_channels;
      os_ << "      __syncthreads();\n"
          << "      {  // op " << d.index << ": " << d.label << ", a warp an output\n"
          << "        const T* w = " << (t.dw[i - 1] >= 0 ? "reinterpret_cast<const T*>(staged + " + std::to_string(t.dw[i - 1]) + ");  // prefetched"
                                                 : "static_cast<const T*>(p.w[" + std::to_string(d.index) + "]);") << "\n"
          << "        const T* bias = static_cast<const T*>(p.b[" << d.index << "]);\n"
          << "        for (int o = wib; o < " << channel_slots(m, net_.precision) << "; o += "
          << fused_threads / 32 << ") {\n"
          << "          float acc = 0.0f;\n"
          << "          if (o < " << m << ") {\n"
          << "            for (int j = lane; j < " << d.dense_kin << "; j += 32) acc += " << in
          << "[j] * load(w + static_cast<long long>(o) * " << d.dense_kin << " + j);\n"
          << "          }\n"
          << "          acc = warp_sum(acc);\n"
          << "          if (lane == 0) " << out << "[o] = o < " << m << " ? as_stored<T>(activate("
          << act(d.act) << ", acc + load(bias + o))) : 0.0f;\n"
          << "        }\n"
          << "      }\n";
      std::swap(in, out);
    }
    const int m = t.dense.back()->layer.out_channels;
    os_ << "      __syncthreads();\n";
    if (t.softmax != nullptr) {
      const bool log = t.softmax->kind == OpKind::log_softmax;
      os_ << "      if (wib == 0) {  // op " << t.softmax->index << ": " << t.softmax->label << "\n"
          << "        const float z = lane < " << m << " ? " << in << "[lane] : -__int_as_float(0x7f800000);\n"
          << "        const float mx = warp_max(z);\n"
          << "        const float ez = lane < " << m << " ? expf(z - mx) : 0.0f;\n"
          << "        const float sum = warp_sum(ez);\n"
          << "        const float v = " << (log ? "z - mx - logf(sum)" : "ez / sum") << ";\n"
          << "        if (lane < " << m << ") p.out[static_cast<long long>(img) * " << m << " + lane] = "
          << (t.softmax->writes_user_output ? "v" : "as_stored<T>(v)") << ";\n"
          << "      }\n";
    } else {
      os_ << "      for (int o = threadIdx.x; o < " << m << "; o += " << fused_threads
          << ") p.out[static_cast<long long>(img) * " << m << " + o] = " << in << "[o];\n";
    }
    os_ << "    }\n"
        << "    stamp(p, " << phases_.size() << ", img, 1);\n"
        << "    // (The next image's partial sums are sent after its first conv's cluster barrier, which\n"
        << "    // the first block reaches once it has read these; its first conv writes the other\n"
        << "    // buffer of the blocks' outputs.)\n"
        << "  }\n"
        << "  reads_done();  // no block leaves while another may still read its outputs\n"
        << "  asm volatile(\"cp.async.wait_all;\" ::: \"memory\");\n"
        << "}\n";
    return os_.str();
  }

  /// Between phases: every block's writes visible to every block (the cluster barrier, or
  /// phase_sync in the mbarrier mode).
  void sync() { os_ << (mbar_ ? "    phase_sync(sync);\n" : "    cluster_sync();\n"); }

  /// Starts phase `name`: its stamp is the SM clock as image 0 enters it.
  void phase(std::string name) {
    os_ << "    stamp(p, " << phases_.size() << ", img" << (phases_.empty() ? ", 0" : "")
        << ");  // phase: " << name << "\n";
    phases_.push_back(std::move(name));
  }

  const NetDesc& net_;
  std::int64_t shared_max_;
  bool hold_;
  bool mbar_;  ///< phases separated by mbarriers (phase_sync) instead of the cluster barrier
  std::optional<Own> own_;
  std::optional<TPlan> plan_;  ///< the tiled form's plan, where it was asked for (tiled())
  std::vector<std::string> phases_;
  std::map<int, Prefetch> prefetch_;  ///< by op index, set by source()
  bool dry_ = false;  ///< the first pass: records the tensors declared (uses_), held_ empty
  std::map<std::int64_t, std::int64_t> uses_;  ///< first pass: arena offset -> most bytes declared
  std::vector<std::int64_t> use_order_;        ///< first pass: arena offsets, first declared first
  std::map<std::int64_t, std::int64_t> held_;  ///< arena offset -> offset in shared memory
  std::int64_t base_ = 0;  ///< shared memory the held tensors take (staging starts there)
  std::int64_t shared_ = 0;           ///< dynamic shared memory per block, set by source()
  int input_reader_ = -1;  ///< direct_input_reader(), set by source()
  int cluster_;
  bool nhwc_;
  const char* t_;
  std::ostringstream os_;
};

}  // namespace detail

/// The compiled fused kernel of one network on the current GPU (compiled or read from the disk
/// cache on construction).
class FusedNetwork {
 public:
  /// `hold`: EngineOptions::fused_hold; `cluster`: EngineOptions::fused_cluster (0: 16 where
  /// the GPU allows it, else 8); `mbarrier_sync`: EngineOptions::fused_mbarrier_sync.
  explicit FusedNetwork(const NetDesc& net, bool hold = false, int cluster = 0,
                        bool mbarrier_sync = false, bool tiled = false) {
    int device = 0;
    STRATA_CUDA_CHECK(cudaGetDevice(&device));
    STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, device));
    const std::vector<std::string> names{"strata_network"};
    STRATA_CHECK(net.fused_fits, "fused network: " << net.fused_reason);
    // The source, its phases and its shared memory depend on the cluster size.
    int optin = 0;  // what a block may opt into, less the kernel's static shared memory
    STRATA_CUDA_CHECK(
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    const std::int64_t shared_max = std::min<std::int64_t>(fused_shared_max, optin - 1024);
    const auto build = [&](int blocks) {
      cluster_ = blocks;
      detail::FusedWriter writer(net, cluster_, shared_max, hold, mbarrier_sync, tiled);
      tiled_ = writer.tiled();
      const std::string src = writer.source();
      phases_ = writer.phases();
      shared_ = static_cast<std::size_t>(writer.shared_bytes());
      lib_ = std::make_unique<rtc::Library>(
          rtc::compile(src, "strata_network", names, rtc::current_arch()), names);
    };
    build(cluster > 0 ? cluster : fused_cluster_large);
    // 16 blocks per cluster is a non-portable size: allowed per kernel, where the GPU has it.
    if (cluster_ > fused_cluster_portable &&
        cudaKernelSetAttributeForDevice(lib_->kernel("strata_network"),
                                        cudaFuncAttributeNonPortableClusterSizeAllowed, 1,
                                        device) != cudaSuccess) {
      (void)cudaGetLastError();
      STRATA_CHECK(cluster == 0, "fused network: this GPU does not allow clusters of "
                                     << cluster << " blocks (EngineOptions::fused_cluster)");
      build(fused_cluster_portable);
    }
    if (shared_ > (48u << 10)) {  // over the default: the kernel opts in
      STRATA_CUDA_CHECK(cudaKernelSetAttributeForDevice(
          lib_->kernel("strata_network"), cudaFuncAttributeMaxDynamicSharedMemorySize,
          static_cast<int>(shared_), device));
    }
  }
  [[nodiscard]] const rtc::BuildInfo& info() const { return lib_->info(); }
  /// Dynamic shared memory per block (tensor-core convs staging their input and filter, then the
  /// weights copied in at the kernel's start).
  [[nodiscard]] std::size_t shared_bytes() const { return shared_; }
  [[nodiscard]] cudaKernel_t kernel() const { return lib_->kernel("strata_network"); }
  [[nodiscard]] int cluster() const { return cluster_; }
  /// Whether the kernel is the tiled form (EngineOptions::fused_tiled, where the network fits).
  [[nodiscard]] bool tiled() const { return tiled_; }
  /// The kernel's phases in order ("input", "conv0+bn1+relu2+max_pool3", ...).
  [[nodiscard]] const std::vector<std::string>& phases() const { return phases_; }
  /// Clusters to launch for `batch` images: one per image, up to as many as the GPU holds.
  [[nodiscard]] int clusters(int batch) const {
    return std::max(1, std::min(batch, sms_ / cluster_));
  }

 private:
  std::unique_ptr<rtc::Library> lib_;
  std::vector<std::string> phases_;
  std::size_t shared_ = 0;
  int sms_ = 0;
  int cluster_ = fused_cluster_portable;
  bool tiled_ = false;
};

/// The step that runs a whole network with its fused kernel at one batch size.
template <DType P>
class FusedNetworkStep final : public Step {
 public:
  /// `stage`: infer()'s page-locked input as the device sees it (FusedParams::stage), copied
  /// into `in` by the kernel; null where `in` already holds the input.
  FusedNetworkStep(const FusedNetwork& fn, const NetDesc& net, const DeviceWeights<P>& w,
                   const float* in, float* out, void* arena, int batch,
                   const float* stage = nullptr)
      : fn_(fn), batch_(batch) {
    p_.in = in;
    p_.out = out;
    p_.stage = stage;
    p_.arena = static_cast<unsigned char*>(arena);
    p_.batch = batch;
    // (every op of the network's, also one the per-op path joined to another: OpDesc::side,
    // OpDesc::expand, OpDesc::squeeze, OpDesc::excite, OpDesc::tail, OpDesc::project — the fused kernel was generated before those folds)
    const auto weights_of = [&](const OpDesc& op) {
      const OpWeights& ow = w.op(op.index);
      const auto i = static_cast<std::size_t>(op.index);
      p_.w[i] = ow.weight.get();
      p_.b[i] = ow.bias.get();
      p_.bf[i] = ow.bias_f32.template as<const float>();
      p_.sc[i] = ow.scale_f32.template as<const float>();
      p_.sh[i] = ow.shift_f32.template as<const float>();
    };
    for (const OpDesc& op : net.ops) {
      weights_of(op);
      if (op.side) {
        weights_of(*op.side);
      }
      if (op.expand) {
        weights_of(*op.expand);
      }
      if (op.squeeze) {
        weights_of(*op.squeeze);
      }
      if (op.excite) {
        weights_of(*op.excite);
        weights_of(*op.excite->squeeze);
      }
      if (op.tail) {
        weights_of(*op.tail);
        weights_of(*op.tail->squeeze);
      }
      if (op.norm) {
        weights_of(*op.norm);
      }
      if (op.bottleneck) {
        weights_of(*op.bottleneck);
        weights_of(*op.bottleneck->norm);
      }
      if (op.project) {
        weights_of(*op.project);
      }
    }
  }
  [[nodiscard]] std::string describe() const override {
    std::ostringstream os;
    os << "strata fused network kernel (" << (fn_.tiled() ? "tiled; " : "") << fn_.clusters(batch_) << " clusters of "
       << fn_.cluster() << " blocks of " << fused_threads << " threads"
       << (p_.stage != nullptr ? "; reads page-locked host input, writes host output" : "") << ")";
    return os.str();
  }
  void launch(cudaStream_t s, void*, std::size_t) override { run(s, p_); }
  /// Time per phase, µs, median of `iters` launches: the SM clock of one thread of the first
  /// cluster as image 0 enters each phase (the wait at the barrier before a phase counts to the
  /// phase before it), scaled to the global timer's span of the whole kernel.
  [[nodiscard]] std::vector<std::pair<std::string, float>> phases(cudaStream_t s,
                                                                  int iters) override {
    const std::vector<std::string>& names = fn_.phases();
    const std::size_t slots = static_cast<std::size_t>(fused_trace_slots) + 2;
    DeviceBuffer buf(slots * sizeof(unsigned long long));
    FusedParams p = p_;
    p.trace = static_cast<unsigned long long*>(buf.get());
    std::vector<std::vector<float>> us(names.size());
    std::vector<unsigned long long> t(slots);
    for (int it = 0; it < std::max(1, iters); ++it) {
      STRATA_CUDA_CHECK(cudaMemsetAsync(buf.get(), 0, slots * sizeof(unsigned long long), s));
      run(s, p);
      STRATA_CUDA_CHECK(cudaMemcpyAsync(t.data(), buf.get(), slots * sizeof(unsigned long long),
                                        cudaMemcpyDeviceToHost, s));
      STRATA_CUDA_CHECK(cudaStreamSynchronize(s));
      const double cycles = static_cast<double>(t[names.size()] - t[0]);
      const double ns = static_cast<double>(t[slots - 1] - t[slots - 2]);
      const double us_per_cycle = cycles > 0 ? ns / cycles / 1000.0 : 0.0;
      for (std::size_t i = 0; i < names.size(); ++i) {
        us[i].push_back(static_cast<float>(static_cast<double>(t[i + 1] - t[i]) * us_per_cycle));
      }
    }
    std::vector<std::pair<std::string, float>> out;
    for (std::size_t i = 0; i < names.size(); ++i) {
      std::sort(us[i].begin(), us[i].end());
      out.emplace_back(names[i], us[i][us[i].size() / 2]);
    }
    return out;
  }

 private:
  /// The kernel over the batch's clusters with parameters `p`.
  void run(cudaStream_t s, const FusedParams& p) const {
    rtc::launch_shared(fn_.kernel(), static_cast<unsigned>(fn_.clusters(batch_) * fn_.cluster()),
                       fused_threads, fn_.shared_bytes(), s, p);
  }

  const FusedNetwork& fn_;
  int batch_;
  FusedParams p_;
};

}  // namespace strata::cuda
