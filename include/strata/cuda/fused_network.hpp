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
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "strata/core/error.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/device_weights.hpp"
#include "strata/cuda/kernel_source.hpp"
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
};

namespace detail {

/// Writes the generated source, one op at a time.
class FusedWriter {
 public:
  FusedWriter(const NetDesc& net, int cluster)
      : net_(net), cluster_(cluster), nhwc_(net.layout == Layout::nhwc),
        t_(net.precision == DType::f32   ? "float"
           : net.precision == DType::f16 ? "strata_rtc::f16"
                                         : "strata_rtc::bf16") {}

  [[nodiscard]] std::string source() {
    os_ << kernels::kernel_prelude << R"(
namespace strata_net {
using namespace strata_rtc;
using T = )" << t_ << R"(;
constexpr int kMaxOps = )" << fused_max_ops << R"(;
struct Params {
  const float* in; float* out; unsigned char* arena; int batch;
  const void* w[kMaxOps]; const void* b[kMaxOps]; const float* bf[kMaxOps];
  const float* sc[kMaxOps]; const float* sh[kMaxOps];
};
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
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
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
}  // namespace strata_net

extern "C" __global__ void __cluster_dims__()"
        << cluster_ << R"(, 1, 1) __launch_bounds__()" << fused_threads
        << R"(, 1) strata_network(strata_net::Params p) {
  using namespace strata_net;
  const int tid = static_cast<int>(cluster_rank()) * blockDim.x + threadIdx.x;
  const int nthreads = )" << cluster_ * fused_threads << R"(;
  const int clusters = gridDim.x / )" << cluster_ << R"(;
  for (int img = blockIdx.x / )" << cluster_ << R"(; img < p.batch; img += clusters) {
)";
    input();
    for (const OpDesc& op : net_.ops) {
      os_ << "    cluster_sync();\n    {  // op " << op.index << ": " << op.label << "\n";
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
      if (op.pool) {  // the conv's fused pool: its own phase here
        const OpDesc p = pool_op(op);
        os_ << "    cluster_sync();\n    {  // op " << p.index << ": " << p.label << "\n";
        pool(p);
        os_ << "    }\n";
      }
    }
    if (net_.needs_output_step) {
      os_ << "    cluster_sync();\n";
      output();
    }
    // Each image has its own slice of every tensor, so the next image needs no barrier first.
    os_ << "  }\n}\n";
    return os_.str();
  }

 private:
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
  void ptr(const char* name, bool is_const, const char* type, std::int64_t offset,
           std::int64_t n) {
    os_ << "      " << (is_const ? "const " : "") << type << "* " << name << " = tensor<"
        << (is_const ? "const " : "") << type << ">(p, " << offset << ", " << n << ", img);\n";
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

  void conv(const OpDesc& op) {
    const ConvGeom& g = op.conv;
    const int cpg = g.c / g.groups;    // real input channels per group
    const int kpg = g.k / g.groups;    // output channels per group
    const int oslots = nhwc_ ? g.kp : g.k;
    const Shape os{oslots, op.out_shape.h, op.out_shape.w, 3};
    ptr("X", true, "T", op.in_offset, numel(op.in_cp, op.in_shape));
    ptr("Y", false, "T", op.out_offset, numel(oslots, op.out_shape));
    if (op.has_residual) {
      ptr("Z", true, "T", op.z_offset, numel(oslots, op.out_shape));
    }
    os_ << "      const T* w = static_cast<const T*>(p.w[" << op.index << "]);\n"
        << "      const float* bias = p.bf[" << op.index << "];\n"
        << "      for (int e = tid; e < " << os.numel() << "; e += nthreads) {\n";
    decode(oslots, g.oh, g.ow);
    os_ << "        const int k = c; const int oy = y; const int ox = x;\n"
        << "        float acc = 0.0f;\n"
        << "        if (k < " << g.k << ") {\n"
        << "          const int grp = k / " << kpg << ";\n"
        << "          acc = bias[k];\n"
        << "          #pragma unroll\n"
        << "          for (int ky = 0; ky < " << g.kh << "; ++ky) {\n"
        << "            const int iy = oy * " << g.sh << " - " << g.ph << " + ky * " << g.dh << ";\n"
        << "            if (iy < 0 || iy >= " << g.h << ") continue;\n"
        << "            #pragma unroll\n"
        << "            for (int kx = 0; kx < " << g.kw << "; ++kx) {\n"
        << "              const int ix = ox * " << g.sw << " - " << g.pw << " + kx * " << g.dw << ";\n"
        << "              if (ix < 0 || ix >= " << g.w << ") continue;\n";
    // Filters: OIHW (f32) or (Kd, kh, kw, fcg) (16-bit), fcg weights per tap.
    const std::string wrow = nhwc_ ? "w + ((k * " + std::to_string(g.kh) + " + ky) * " +
                                         std::to_string(g.kw) + " + kx) * " + std::to_string(g.fcg)
                                   : "";
    const bool vec = nhwc_ && cpg % 8 == 0 && op.in_cp % 8 == 0 && g.fcg % 8 == 0;
    if (nhwc_) {
      os_ << "              const T* xp = X + (iy * " << g.w << " + ix) * " << op.in_cp
          << " + grp * " << cpg << ";\n"
          << "              const T* wp = " << wrow << ";\n";
      if (vec) {
        os_ << "              #pragma unroll\n"
            << "              for (int ci = 0; ci < " << cpg << "; ci += 8) {\n"
            << "                float xv[8], wv[8];\n"
            << "                load8(xp + ci, xv);\n"
            << "                load8(wp + ci, wv);\n"
            << "                #pragma unroll\n"
            << "                for (int j = 0; j < 8; ++j) acc += xv[j] * wv[j];\n"
            << "              }\n";
      } else {
        os_ << "              #pragma unroll\n"
            << "              for (int ci = 0; ci < " << cpg << "; ++ci) acc += load(xp + ci) * load(wp + ci);\n";
      }
    } else {
      os_ << "              for (int ci = 0; ci < " << cpg << "; ++ci) {\n"
          << "                acc += load(X + ((grp * " << cpg << " + ci) * " << g.h
          << " + iy) * " << g.w << " + ix) * load(w + ((k * " << g.fcg << " + ci) * " << g.kh
          << " + ky) * " << g.kw << " + kx);\n"
          << "              }\n";
    }
    os_ << "            }\n          }\n";
    if (op.has_residual) {
      os_ << "          acc += load(Z + e);\n";
    }
    os_ << "          acc = activate(" << act(op.act) << ", acc);\n"
        << "        }\n"
        << "        store(Y + e, acc);\n"
        << "      }\n";
  }

  void dense(const OpDesc& op) {
    const int m = op.layer.out_channels;
    const int mp = channel_slots(m, net_.precision);
    ptr("X", true, "T", op.in_offset, numel(op.in_cp, op.in_shape));
    ptr("Y", false, "T", op.out_offset, mp);
    os_ << "      const T* w = static_cast<const T*>(p.w[" << op.index << "]);\n"
        << "      const T* bias = static_cast<const T*>(p.b[" << op.index << "]);\n"
        << "      const int lane = tid & 31;\n"
        << "      for (int o = tid >> 5; o < " << mp << "; o += nthreads >> 5) {\n"
        << "        float acc = 0.0f;\n"
        << "        if (o < " << m << ") {\n"
        << "          const T* wr = w + static_cast<long long>(o) * " << op.dense_kin << ";\n";
    if (nhwc_ && op.dense_kin % 256 == 0) {  // 16-byte loads of 8 values per lane
      os_ << "          for (int j = lane * 8; j < " << op.dense_kin << "; j += 256) {\n"
          << "            float xv[8], wv[8];\n"
          << "            load8(X + j, xv);\n"
          << "            load8(wr + j, wv);\n"
          << "            #pragma unroll\n"
          << "            for (int q = 0; q < 8; ++q) acc += xv[q] * wv[q];\n"
          << "          }\n";
    } else {
      os_ << "          for (int j = lane; j < " << op.dense_kin << "; j += 32) acc += load(X + j) * load(wr + j);\n";
    }
    os_ << "          acc = warp_sum(acc);\n"
        << "          acc = activate(" << act(op.act) << ", acc + load(bias + o));\n"
        << "        }\n"
        << "        if (lane == 0) store(Y + o, acc);\n"
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
      os_ << "        T* Y = tensor<T>(p, " << op.out_offset << ", " << numel(ocp, op.out_shape) << ", img);\n"
          << "        for (int c = lane; c < " << ocp << "; c += 32) {\n"
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

  const NetDesc& net_;
  int cluster_;
  bool nhwc_;
  const char* t_;
  std::ostringstream os_;
};

}  // namespace detail

/// The CUDA source of the fused kernel for `net` (which must fit: NetDesc::fused_fits), for
/// clusters of `cluster` thread blocks.
[[nodiscard]] inline std::string fused_network_source(const NetDesc& net, int cluster) {
  STRATA_CHECK(net.fused_fits, "fused network: " << net.fused_reason);
  return detail::FusedWriter(net, cluster).source();
}

/// The compiled fused kernel of one network on the current GPU (compiled or read from the disk
/// cache on construction).
class FusedNetwork {
 public:
  explicit FusedNetwork(const NetDesc& net) {
    int device = 0;
    STRATA_CUDA_CHECK(cudaGetDevice(&device));
    STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, device));
    const std::vector<std::string> names{"strata_network"};
    cluster_ = fused_cluster_large;
    lib_ = std::make_unique<rtc::Library>(
        rtc::compile(fused_network_source(net, cluster_), "strata_network", names,
                     rtc::current_arch()),
        names);
    // 16 blocks per cluster is a non-portable size: allowed per kernel, where the GPU has it.
    if (cudaKernelSetAttributeForDevice(lib_->kernel("strata_network"),
                                        cudaFuncAttributeNonPortableClusterSizeAllowed, 1,
                                        device) != cudaSuccess) {
      (void)cudaGetLastError();
      cluster_ = fused_cluster_portable;
      lib_ = std::make_unique<rtc::Library>(
          rtc::compile(fused_network_source(net, cluster_), "strata_network", names,
                       rtc::current_arch()),
          names);
    }
  }
  [[nodiscard]] const rtc::BuildInfo& info() const { return lib_->info(); }
  [[nodiscard]] cudaKernel_t kernel() const { return lib_->kernel("strata_network"); }
  [[nodiscard]] int cluster() const { return cluster_; }
  /// Clusters to launch for `batch` images: one per image, up to as many as the GPU holds.
  [[nodiscard]] int clusters(int batch) const {
    return std::max(1, std::min(batch, sms_ / cluster_));
  }

 private:
  std::unique_ptr<rtc::Library> lib_;
  int sms_ = 0;
  int cluster_ = fused_cluster_portable;
};

/// The step that runs a whole network with its fused kernel at one batch size.
template <DType P>
class FusedNetworkStep final : public Step {
 public:
  FusedNetworkStep(const FusedNetwork& fn, const NetDesc& net, const DeviceWeights<P>& w,
                   const float* in, float* out, void* arena, int batch)
      : fn_(fn), batch_(batch) {
    p_.in = in;
    p_.out = out;
    p_.arena = static_cast<unsigned char*>(arena);
    p_.batch = batch;
    for (const OpDesc& op : net.ops) {
      const OpWeights& ow = w.op(op.index);
      const auto i = static_cast<std::size_t>(op.index);
      p_.w[i] = ow.weight.get();
      p_.b[i] = ow.bias.get();
      p_.bf[i] = ow.bias_f32.template as<const float>();
      p_.sc[i] = ow.scale_f32.template as<const float>();
      p_.sh[i] = ow.shift_f32.template as<const float>();
    }
  }
  [[nodiscard]] std::string describe() const override {
    std::ostringstream os;
    os << "strata fused network kernel (" << fn_.clusters(batch_) << " clusters of "
       << fn_.cluster() << " blocks of " << fused_threads << " threads)";
    return os.str();
  }
  void launch(cudaStream_t s, void*, std::size_t) override {
    rtc::launch(fn_.kernel(), static_cast<unsigned>(fn_.clusters(batch_) * fn_.cluster()),
                fused_threads, s, p_);
  }

 private:
  const FusedNetwork& fn_;
  int batch_;
  FusedParams p_;
};

}  // namespace strata::cuda
