#pragma once
/// strata::cuda::Engine<Net, P>: a declared network on one NVIDIA GPU in precision P (f32, f16,
/// bf16). Construction does everything — weights folded, converted, laid out and uploaded once;
/// one activation arena from the static memory plan; one shared workspace; algorithms chosen
/// (cuDNN heuristics, or measured and cached on disk); a CUDA graph captured per listed batch
/// size. `forward` allocates nothing and replays a graph.
///
/// Host C++ (compile with g++/clang or nvcc); the kernels it launches are compiled once, by
/// nvcc, in strata/cuda/kernels.cu, which a program using the Engine adds to its sources.
///
/// Storage: f32 runs NCHW; f16/bf16 run NHWC with channels zero-padded to a multiple of 8
/// (tensor cores), invisibly: the caller's input is always f32 in the declared layout and the
/// output f32 (NCHW order). Arithmetic accumulates in f32; softmax/log_softmax run in f32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "strata/core/dtype.hpp"
#include "strata/core/error.hpp"
#include "strata/cuda/algo_cache.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/cublaslt.hpp"
#include "strata/cuda/cudnn.hpp"
#include "strata/cuda/device.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/weights/fold.hpp"
#include "strata/weights/weights.hpp"

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

/// How convolution algorithms are chosen: cuDNN's heuristics (instant), or by timing every
/// candidate once at construction (results kept in EngineOptions::algo_cache).
enum class Tuning { heuristic, measured };

/// What an Engine is built for.
struct EngineOptions {
  int max_batch = 1;                       ///< largest batch forward() accepts
  Tuning tuning = Tuning::heuristic;
  std::filesystem::path algo_cache{};      ///< measured choices, read and written (optional)
  std::vector<int> capture_batches{};      ///< graphs captured at construction; others on first use
};

/// What construction did, for tests and reports.
struct EngineStats {
  int convs_timed = 0;        ///< convolutions whose algorithms were timed by this construction
  int convs_from_cache = 0;   ///< convolutions whose measured choice came from the cache file
  int convs_fused = 0;        ///< convolutions run as one cuDNN conv+bias+(add)+relu call
  int graphs_captured = 0;
  std::size_t arena_bytes = 0;
  std::size_t workspace_bytes = 0;
  std::size_t weight_bytes = 0;
};

/// The device element type of a DType.
template <DType P>
struct StorageOf;
template <>
struct StorageOf<DType::f32> { using type = float; };
template <>
struct StorageOf<DType::f16> { using type = __half; };
template <>
struct StorageOf<DType::bf16> { using type = __nv_bfloat16; };

namespace detail {

/// Host f32 values converted to P's bits (little-endian element array).
template <DType P>
std::vector<std::uint8_t> to_device_bits(const std::vector<float>& v) {
  std::vector<std::uint8_t> out(v.size() * static_cast<std::size_t>(dtype_size(P)));
  if constexpr (P == DType::f32) {
    std::memcpy(out.data(), v.data(), out.size());
  } else {
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::uint16_t b = P == DType::f16 ? float_to_half(v[i]) : float_to_bf16(v[i]);
      std::memcpy(out.data() + 2 * i, &b, 2);
    }
  }
  return out;
}

inline DeviceBuffer upload(const void* data, std::size_t bytes) {
  DeviceBuffer b(bytes);
  if (bytes > 0) {
    STRATA_CUDA_CHECK(cudaMemcpy(b.get(), data, bytes, cudaMemcpyHostToDevice));
  }
  return b;
}

inline std::string device_name(int device) {
  cudaDeviceProp prop{};
  STRATA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

}  // namespace detail

/// A network `Net` compiled for one GPU in precision `P`. One Engine is one execution context
/// (its own arena, workspace, stream, cuDNN/cuBLASLt handles and graphs), to be used by one
/// thread at a time; `context()` makes another that shares the device weights and the
/// algorithm choices, for another thread.
template <class Net, DType P>
  requires Network<Net>
class Engine {
 public:
  using Network = std::remove_cvref_t<Net>;
  static constexpr DType precision = P;
  using T = typename StorageOf<P>::type;
  /// Storage layout of activations: NCHW for f32, NHWC (channels padded to 8) for 16-bit.
  static constexpr Layout layout = P == DType::f32 ? Layout::nchw : Layout::nhwc;
  static constexpr std::int64_t input_numel = Network::input_spec.shape.numel();
  static constexpr std::int64_t output_numel = Network::output_spec.shape.numel();

  /// Builds everything for batches up to options.max_batch (see the file comment).
  Engine(const Weights<Net>& weights, EngineOptions options) : options_(std::move(options)) {
    check_options();
    init_context();
    auto shared = std::make_shared<Shared>();
    build_weights(weights, *shared);
    shared_ = shared;
    allocate_buffers();
    choose_algorithms(*shared);
    finish_construction();
  }

  /// Loads the weights file (every problem reported before any GPU work) and builds.
  [[nodiscard]] static Engine from_file(const std::filesystem::path& path, EngineOptions options) {
    const Weights<Net> w = Weights<Net>::load(path);
    return Engine(w, std::move(options));
  }

  /// Another execution context on the same device weights and algorithm choices (for another
  /// thread): its own arena, workspace, stream, handles and graphs.
  [[nodiscard]] Engine context() const { return Engine(shared_, options_); }

  Engine(Engine&&) noexcept = default;
  Engine& operator=(Engine&&) noexcept = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine() {
    if (stream_.get() != nullptr) {
      (void)cudaStreamSynchronize(stream_.get());
    }
  }

  /// Runs `batch` images on `stream`: `d_in` holds batch × input floats (device, f32, the
  /// declared layout), `d_out` receives batch × output floats (device, f32). Replays the
  /// batch's CUDA graph (captured on first use of a batch size not captured at construction:
  /// that first call synchronizes and builds descriptors, but allocates no device memory of
  /// Strata's). Passing input_buffer()/output_buffer() avoids the two device copies.
  void forward(const float* d_in, float* d_out, int batch, cudaStream_t stream) {
    check_batch(batch, "forward");
    BatchPlan& bp = graph_for(batch, stream);
    const std::size_t in_bytes = static_cast<std::size_t>(batch * input_numel) * sizeof(float);
    const std::size_t out_bytes = static_cast<std::size_t>(batch * output_numel) * sizeof(float);
    if (d_in != d_in_.as<float>()) {
      STRATA_CUDA_CHECK(cudaMemcpyAsync(d_in_.get(), d_in, in_bytes, cudaMemcpyDeviceToDevice, stream));
    }
    bp.exec.launch(stream);
    if (d_out != d_out_.as<float>()) {
      STRATA_CUDA_CHECK(cudaMemcpyAsync(d_out, d_out_.get(), out_bytes, cudaMemcpyDeviceToDevice, stream));
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
    BatchPlan& bp = graph_for(batch, stream_.get());
    std::memcpy(pinned_in_.get(), in.data(), in_n * sizeof(float));
    STRATA_CUDA_CHECK(cudaMemcpyAsync(d_in_.get(), pinned_in_.get(), in_n * sizeof(float),
                                      cudaMemcpyHostToDevice, stream_.get()));
    bp.exec.launch(stream_.get());
    STRATA_CUDA_CHECK(cudaMemcpyAsync(pinned_out_.get(), d_out_.get(), out_n * sizeof(float),
                                      cudaMemcpyDeviceToHost, stream_.get()));
    stream_.synchronize();
    std::memcpy(out.data(), pinned_out_.get(), out_n * sizeof(float));
  }

  /// The engine's own device input (max_batch × input floats) and output buffers.
  [[nodiscard]] float* input_buffer() const { return d_in_.as<float>(); }
  [[nodiscard]] float* output_buffer() const { return d_out_.as<float>(); }
  [[nodiscard]] cudaStream_t stream() const { return stream_.get(); }
  [[nodiscard]] int max_batch() const { return options_.max_batch; }
  [[nodiscard]] const EngineStats& stats() const { return stats_; }
  /// GPU time per step at `batch` (µs per replay, median of 5 × `iters` replays of a graph
  /// holding that step alone: "input", each op's label, "output"). For reports: it captures
  /// graphs and creates events.
  [[nodiscard]] std::vector<std::pair<std::string, float>> profile(int batch, int iters = 50) {
    check_batch(batch, "profile");
    BatchPlan& bp = graph_for(batch, stream_.get());
    const auto& g = Network::graph;
    const Event a = Event::create();
    const Event b = Event::create();
    std::vector<std::pair<std::string, float>> out;
    for (int k = -1; k <= g.num_ops; ++k) {
      if (k == g.num_ops && !needs_output_step()) {
        break;
      }
      const std::string name = k < 0              ? std::string("input")
                               : k < g.num_ops ? std::string(g.ops[k].label.view())
                                               : std::string("output");
      const NvtxRange range(name.c_str());  // one range per step, for Nsight Systems
      STRATA_CUDA_CHECK(cudaStreamBeginCapture(stream_.get(), cudaStreamCaptureModeThreadLocal));
      try {
        run_step(bp, batch, stream_.get(), k);
      } catch (...) {
        cudaGraph_t dropped = nullptr;
        (void)cudaStreamEndCapture(stream_.get(), &dropped);
        if (dropped != nullptr) {
          (void)cudaGraphDestroy(dropped);
        }
        throw;
      }
      cudaGraph_t raw = nullptr;
      STRATA_CUDA_CHECK(cudaStreamEndCapture(stream_.get(), &raw));
      const Graph graph(raw);
      const GraphExec exec = GraphExec::instantiate(graph);
      exec.launch(stream_.get());
      std::vector<float> runs;
      for (int r = 0; r < 5; ++r) {
        a.record(stream_.get());
        for (int it = 0; it < iters; ++it) {
          exec.launch(stream_.get());
        }
        b.record(stream_.get());
        b.synchronize();
        runs.push_back(b.elapsed_ms_since(a) * 1000.0f / static_cast<float>(iters));
      }
      std::sort(runs.begin(), runs.end());
      out.emplace_back(name, runs[2]);
    }
    return out;
  }

  /// One line per op: label, what runs it (library call or Strata kernel), for batch `batch`
  /// once planned.
  [[nodiscard]] std::string describe(int batch) const {
    std::ostringstream os;
    const auto it = batches_.find(batch);
    const auto& g = Network::graph;
    for (int i = 0; i < g.num_ops; ++i) {
      os << g.ops[i].label.view() << ": ";
      const OpKind k = g.ops[i].kind;
      if (k == OpKind::conv) {
        const bool fused = it != batches_.end() && it->second.ops[i].fused;
        const bool direct = it != batches_.end() && it->second.ops[i].direct;
        const bool gemm = it != batches_.end() && it->second.ops[i].gemm;
        os << (conv_geom(g.ops[i]).s2d ? "[space-to-depth input] " : "")
           << (gemm ? "cublasLtMatmul (1x1 conv as GEMM, bias/add/relu in the epilogue)"
               : direct ? "strata conv_direct (bias, add, act fused)"
                      : fused ? "cudnnConvolutionBiasActivationForward"
                              : "cudnnConvolutionForward + strata pointwise")
           << " algo " << (it != batches_.end() ? static_cast<int>(it->second.ops[i].algo) : -1);
      } else if (k == OpKind::dense) {
        os << "cublasLtMatmul (epilogue " << (g.ops[i].act.kind == Act::relu ? "RELU_BIAS" : "BIAS")
           << (g.ops[i].act.kind == Act::relu || g.ops[i].act.kind == Act::none ? ")" : ") + strata pointwise");
      } else {
        os << "strata kernel";
      }
      os << "\n";
    }
    return os.str();
  }

 private:
  /// Device parameters of one op (empty buffers where the op has none).
  struct OpWeights {
    DeviceBuffer weight;     // P: conv (K,kh,kw,C/g) NHWC or OIHW; dense [Mp, Kin]
    DeviceBuffer bias;       // P, padded (fused conv, cuBLASLt epilogue)
    DeviceBuffer bias_f32;   // f32, padded (unfused conv epilogue)
    DeviceBuffer scale_f32;  // batch_norm
    DeviceBuffer shift_f32;
  };
  /// What all contexts share: immutable once the first Engine is built.
  struct Shared {
    std::vector<OpWeights> ops;
    std::vector<AlgoChoice> algos;  // per op (convolutions), chosen at max_batch
    std::string gpu;
    std::size_t weight_bytes = 0;
  };
  /// Geometry of one conv in storage terms.
  struct ConvGeom {
    int c, cp, h, w, k, kp, oh, ow, groups;
    bool packed;  // channel dims padded (c→cp, k→kp) and packed; else true dims, padded strides
    int xc, kd, fcg;
    int kh, kw, sh, sw, ph, pw, dh, dw;  // as executed (space-to-depth changes them)
    bool s2d;     // the input was stored space-to-depth (see is_s2d)
  };
  /// Descriptors and choices of one op at one batch size.
  struct OpPlan {
    TensorDesc x, y, bias;
    FilterDesc w;
    ConvDesc conv;
    ActivationDesc act;
    cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    std::size_t workspace = 0;
    bool fused = false;
    bool direct = false;  // Strata's direct convolution kernel (algo -1)
    bool gemm = false;    // a 1×1 convolution on cuBLASLt (algo -2)
    MatmulDesc mm;
    MatrixLayout a, b, d;
    cublasLtMatmulAlgo_t lt_algo{};
    bool act_after = false;  // an activation run as a Strata kernel after the library call
  };
  struct BatchPlan {
    std::vector<OpPlan> ops;
    GraphExec exec;
  };

  static constexpr int pad(int c) { return layout == Layout::nhwc ? (c + 7) / 8 * 8 : c; }
  static constexpr std::size_t lt_workspace = std::size_t{4} << 20;

  /// Whether conv `op` reads the network input stored space-to-depth: a 16-bit first layer with
  /// stride 2 and fewer than 8 input channels (ResNet's 7×7 stem) becomes a stride-1 conv with
  /// ⌈k/2⌉ taps over 4·C channels of 2×2 pixel blocks — the same sums, 4× the channels per tap,
  /// which suits tensor cores far better than C padded to 8.
  static bool is_s2d(const Op& op) {
    const auto& g = Network::graph;
    if (P == DType::f32 || op.kind != OpKind::conv || op.in != g.input ||
        g.tensors[g.input].uses != 1 || Network::input_spec.layout != Layout::nchw) {
      return false;
    }
    const LayerDesc& d = op.layer;
    const Shape is = Network::input_spec.shape;
    if (d.stride.h != 2 || d.stride.w != 2 || d.dilation.h != 1 || d.dilation.w != 1 ||
        d.groups != 1 || is.c >= 8 || d.kernel.h < 2 || d.kernel.w < 2) {
      return false;
    }
    const Shape s = s2d_shape(op);
    const auto& plan = Network::template plan_for<P, layout>;
    return static_cast<std::int64_t>(pad(s.c)) * s.h * s.w * dtype_size(P) <=
           plan.tensors[g.input].bytes;
  }
  /// The space-to-depth input of a stride-2 conv: 4·C channels ((c, dy, dx) order), blocks of
  /// the zero-padded input, as many as the ⌈k/2⌉-tap stride-1 conv needs.
  static Shape s2d_shape(const Op& op) {
    const Shape is = Network::input_spec.shape;
    const int oh = op.out_spec.shape.h;
    const int ow = op.out_spec.shape.w;
    return chw(4 * is.c, oh - 1 + (op.layer.kernel.h + 1) / 2, ow - 1 + (op.layer.kernel.w + 1) / 2);
  }
  /// The op that reads the input space-to-depth, or -1.
  static int s2d_op() {
    const auto& g = Network::graph;
    for (int i = 0; i < g.num_ops; ++i) {
      if (is_s2d(g.ops[i])) {
        return i;
      }
    }
    return -1;
  }

  /// The storage shape of tensor t: its producer's output (before any flatten), or the input.
  static Shape storage_shape(int t) {
    const auto& g = Network::graph;
    const int p = g.tensors[t].producer;
    if (p < 0) {
      const int k = s2d_op();
      return k >= 0 ? s2d_shape(g.ops[k]) : Network::input_spec.shape;
    }
    return g.ops[p].out_spec.shape;
  }
  static std::int64_t storage_bytes(int t) {
    const Shape s = storage_shape(t);
    return static_cast<std::int64_t>(pad(s.c)) * s.h * s.w * dtype_size(P);
  }
  static ConvGeom conv_geom(const Op& op) {
    ConvGeom g{};
    const Shape is = storage_shape(op.in);
    g.c = is.c;
    g.cp = pad(is.c);
    g.h = is.h;
    g.w = is.w;
    g.k = op.layer.out_channels;
    g.kp = pad(g.k);
    g.oh = op.out_spec.shape.h;
    g.ow = op.out_spec.shape.w;
    g.groups = op.layer.groups;
    g.s2d = is_s2d(op);
    const LayerDesc& d = op.layer;
    g.kh = g.s2d ? (d.kernel.h + 1) / 2 : d.kernel.h;
    g.kw = g.s2d ? (d.kernel.w + 1) / 2 : d.kernel.w;
    g.sh = g.s2d ? 1 : d.stride.h;
    g.sw = g.s2d ? 1 : d.stride.w;
    g.ph = g.s2d ? 0 : d.padding.h;
    g.pw = g.s2d ? 0 : d.padding.w;
    g.dh = d.dilation.h;
    g.dw = d.dilation.w;
    g.packed = g.groups == 1 || (g.c == g.cp && g.k == g.kp);
    g.xc = g.packed ? g.cp : g.c;
    g.kd = g.packed ? g.kp : g.k;
    g.fcg = g.xc / g.groups;
    return g;
  }
  static kernels::ConvShape direct_shape(const ConvGeom& cg, int batch) {
    const int creal = cg.groups == 1 ? cg.c : cg.fcg;
    return {batch, cg.cp, cg.h, cg.w, cg.k, cg.kd, cg.kp, cg.oh, cg.ow, cg.kh, cg.kw,
            cg.sh, cg.sw, cg.ph, cg.pw, cg.dh, cg.dw, cg.groups, cg.fcg, creal};
  }
  static int dense_kin(const Op& op) {
    const Shape s = storage_shape(op.in);
    return pad(s.c) * s.h * s.w;
  }

  // Private: a context sharing `shared`.
  Engine(std::shared_ptr<const Shared> shared, EngineOptions options)
      : options_(std::move(options)), shared_(std::move(shared)) {
    init_context();
    allocate_buffers();
    finish_construction();
  }

  void check_options() const {
    STRATA_CHECK(options_.max_batch >= 1,
                 "cuda::Engine: max_batch must be at least 1, got " << options_.max_batch);
    for (int b : options_.capture_batches) {
      STRATA_CHECK(b >= 1 && b <= options_.max_batch,
                   "cuda::Engine: capture batch " << b << " is outside [1, " << options_.max_batch
                                                  << "] (max_batch)");
    }
  }
  void check_batch(int batch, const char* what) const {
    STRATA_CHECK(batch >= 1 && batch <= options_.max_batch,
                 "cuda::Engine::" << what << ": batch " << batch << " is outside [1, "
                                  << options_.max_batch
                                  << "], the maximum this engine was built for");
  }

  void init_context() {
    int count = 0;
    STRATA_CUDA_CHECK(cudaGetDeviceCount(&count));
    STRATA_CHECK(count > 0, "cuda::Engine: no CUDA device");
    stream_ = Stream::create();
    cudnn_ = CudnnHandle::create();
    cudnn_.set_stream(stream_.get());
    lt_ = LtHandle::create();
    // Every tensor's storage must fit the plan's slot (the plan pads exactly as we store).
    const auto& plan = Network::template plan_for<P, layout>;
    for (int t = 0; t < Network::graph.num_tensors; ++t) {
      STRATA_CHECK(storage_bytes(t) <= plan.tensors[t].bytes,
                   "cuda::Engine: tensor " << t << " needs " << storage_bytes(t)
                                           << " bytes per image, the plan gives "
                                           << plan.tensors[t].bytes);
    }
  }

  void build_weights(const Weights<Net>& weights, Shared& sh) {
    int device = 0;
    STRATA_CUDA_CHECK(cudaGetDevice(&device));
    sh.gpu = detail::device_name(device);
    const auto& g = Network::graph;
    sh.ops.resize(static_cast<std::size_t>(g.num_ops));
    sh.algos.resize(static_cast<std::size_t>(g.num_ops));
    for (int i = 0; i < g.num_ops; ++i) {
      const Op& op = g.ops[i];
      const LayerScope scope(op.label.view());
      const OpParams p = fold_op_params(op, weights.all());
      OpWeights& ow = sh.ops[static_cast<std::size_t>(i)];
      auto put = [&](DeviceBuffer& dst, const std::vector<float>& v, bool as_p) {
        if (as_p) {
          const auto bits = detail::to_device_bits<P>(v);
          dst = detail::upload(bits.data(), bits.size());
        } else {
          dst = detail::upload(v.data(), v.size() * sizeof(float));
        }
        sh.weight_bytes += dst.bytes();
      };
      if (op.kind == OpKind::conv) {
        const ConvGeom cg = conv_geom(op);
        const int kh = op.layer.kernel.h;  // as declared
        const int kw = op.layer.kernel.w;
        const int cpg = (cg.s2d ? cg.c / 4 : cg.c) / cg.groups;  // true input channels per group
        std::vector<float> w(static_cast<std::size_t>(cg.kd) * cg.kh * cg.kw * cg.fcg, 0.0f);
        for (int o = 0; o < cg.k; ++o) {
          for (int ci = 0; ci < cpg; ++ci) {
            for (int y = 0; y < kh; ++y) {
              for (int x = 0; x < kw; ++x) {
                const float v = p.weight[((static_cast<std::size_t>(o) * cpg + ci) * kh + y) * kw + x];
                // Space-to-depth: tap (y, x) of channel ci is tap (y/2, x/2) of channel
                // (ci, y%2, x%2).
                const int ty = cg.s2d ? y / 2 : y;
                const int tx = cg.s2d ? x / 2 : x;
                const int tc = cg.s2d ? (ci * 2 + y % 2) * 2 + x % 2 : ci;
                const std::size_t dst =
                    layout == Layout::nchw
                        ? ((static_cast<std::size_t>(o) * cg.fcg + tc) * cg.kh + ty) * cg.kw + tx
                        : ((static_cast<std::size_t>(o) * cg.kh + ty) * cg.kw + tx) * cg.fcg + tc;
                w[dst] = v;
              }
            }
          }
        }
        std::vector<float> b(static_cast<std::size_t>(cg.kp), 0.0f);
        std::copy(p.bias.begin(), p.bias.end(), b.begin());
        put(ow.weight, w, true);
        put(ow.bias, b, true);
        put(ow.bias_f32, b, false);
      } else if (op.kind == OpKind::dense) {
        const Shape s = storage_shape(op.in);
        const int hw = s.h * s.w;
        const int cinp = pad(s.c);
        const int kin = cinp * hw;
        const int m = op.layer.out_channels;
        const int mp = pad(m);
        const std::size_t in_features = static_cast<std::size_t>(s.c) * hw;
        std::vector<float> w(static_cast<std::size_t>(mp) * kin, 0.0f);
        for (int o = 0; o < m; ++o) {
          for (std::size_t j = 0; j < in_features; ++j) {
            // PyTorch's flatten order is (c, h, w); NHWC storage holds (h, w, c): permute the
            // columns here so that flatten moves no data.
            const std::size_t c = j / static_cast<std::size_t>(hw);
            const std::size_t px = j % static_cast<std::size_t>(hw);
            const std::size_t col = layout == Layout::nchw ? j : px * cinp + c;
            w[static_cast<std::size_t>(o) * kin + col] = p.weight[o * in_features + j];
          }
        }
        std::vector<float> b(static_cast<std::size_t>(mp), 0.0f);
        std::copy(p.bias.begin(), p.bias.end(), b.begin());
        put(ow.weight, w, true);
        put(ow.bias, b, true);
      } else if (op.kind == OpKind::batch_norm) {
        const int cp = pad(storage_shape(op.in).c);
        std::vector<float> sc(static_cast<std::size_t>(cp), 0.0f);
        std::vector<float> sf(static_cast<std::size_t>(cp), 0.0f);
        std::copy(p.weight.begin(), p.weight.end(), sc.begin());
        std::copy(p.bias.begin(), p.bias.end(), sf.begin());
        put(ow.scale_f32, sc, false);
        put(ow.shift_f32, sf, false);
      }
    }
  }

  void allocate_buffers() {
    const auto& plan = Network::template plan_for<P, layout>;
    const int mb = options_.max_batch;
    arena_ = DeviceBuffer(static_cast<std::size_t>(plan.arena_bytes(mb)));
    // Zeroed once so that channel padding never holds NaN bits.
    STRATA_CUDA_CHECK(cudaMemset(arena_.get(), 0, arena_.bytes()));
    d_in_ = DeviceBuffer(static_cast<std::size_t>(mb * input_numel) * sizeof(float));
    d_out_ = DeviceBuffer(static_cast<std::size_t>(mb * output_numel) * sizeof(float));
    pinned_in_ = PinnedBuffer(d_in_.bytes());
    pinned_out_ = PinnedBuffer(d_out_.bytes());
    STRATA_CUDA_CHECK(cudaMemset(d_in_.get(), 0, d_in_.bytes()));
    stats_.arena_bytes = arena_.bytes();
  }

  T* tensor(int t, int batch) const {
    const auto& plan = Network::template plan_for<P, layout>;
    return reinterpret_cast<T*>(arena_.as<std::uint8_t>() + plan.offset(t, batch));
  }

  std::string algo_key(const Op& op, int batch) const {
    const ConvGeom cg = conv_geom(op);
    std::ostringstream os;
    os << shared_->gpu << "|cudnn" << cudnnGetVersion() << "|" << dtype_name(P) << "|n" << batch
       << ",c" << cg.xc << ",h" << cg.h << ",w" << cg.w << ",k" << cg.kd << ",r"
       << cg.kh << "x" << cg.kw << ",s" << cg.sh << "x" << cg.sw << ",p" << cg.ph << "x" << cg.pw
       << ",d" << cg.dh << "x" << cg.dw << ",g" << cg.groups
       << (cg.packed ? ",packed" : ",strided");
    return os.str();
  }

  /// Descriptors of conv `op` at `batch` into `pl` (no algorithm yet).
  void describe_conv(const Op& op, int batch, OpPlan& pl, cudnnMathType_t math) const {
    const ConvGeom cg = conv_geom(op);
    pl.x = TensorDesc::create();
    pl.y = TensorDesc::create();
    pl.bias = TensorDesc::create();
    pl.w = FilterDesc::create();
    pl.conv = ConvDesc::create();
    pl.act = ActivationDesc::create();
    const int kh = cg.kh;
    const int kw = cg.kw;
    if (layout == Layout::nchw) {
      pl.x.set(P, batch, cg.c, cg.h, cg.w, cg.c * cg.h * cg.w, cg.h * cg.w, cg.w, 1);
      pl.y.set(P, batch, cg.k, cg.oh, cg.ow, cg.k * cg.oh * cg.ow, cg.oh * cg.ow, cg.ow, 1);
      pl.w.set(P, CUDNN_TENSOR_NCHW, cg.k, cg.c / cg.groups, kh, kw);
    } else {
      pl.x.set(P, batch, cg.xc, cg.h, cg.w, cg.cp * cg.h * cg.w, 1, cg.w * cg.cp, cg.cp);
      pl.y.set(P, batch, cg.kd, cg.oh, cg.ow, cg.kp * cg.oh * cg.ow, 1, cg.ow * cg.kp, cg.kp);
      pl.w.set(P, CUDNN_TENSOR_NHWC, cg.kd, cg.fcg, kh, kw);
    }
    pl.bias.set(P, 1, cg.kd, 1, 1, cg.kd, 1, 1, 1);
    pl.conv.set(cg.ph, cg.pw, cg.sh, cg.sw, cg.dh, cg.dw, cg.groups, math);
    pl.act.set(CUDNN_ACTIVATION_RELU);
    pl.fused = cg.packed && op.act.kind == Act::relu;
  }

  /// Whether a perf result may be used: f32 must be real f32 (no TF32 tensor-op math).
  static bool math_ok(cudnnMathType_t m) {
    return P != DType::f32 || m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
  }
  static cudnnMathType_t math_for(int chosen) {
    return P == DType::f32 ? CUDNN_FMA_MATH : static_cast<cudnnMathType_t>(chosen);
  }

  /// Heuristic choice for `pl`'s descriptors within `limit` workspace bytes.
  AlgoChoice heuristic_choice(const OpPlan& pl, std::size_t limit) const {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    STRATA_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
        cudnn_.get(), pl.x.get(), pl.w.get(), pl.conv.get(), pl.y.get(),
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    for (int i = 0; i < n; ++i) {
      if (perf[i].status == CUDNN_STATUS_SUCCESS && math_ok(perf[i].mathType) &&
          perf[i].memory <= limit) {
        return {static_cast<int>(perf[i].algo), static_cast<int>(perf[i].mathType), perf[i].memory, 1};
      }
    }
    // 16-bit: Strata's direct convolution kernel (algo -1); f32 NCHW always has an algorithm.
    STRATA_CHECK(P != DType::f32, "cuDNN's heuristics offer no convolution algorithm within "
                                      << limit << " workspace bytes for layer '"
                                      << detail::current_layer << "'");
    return {-1, 0, 0, 0};
  }

  /// Chooses every convolution's algorithm at max_batch (heuristics, cache, or timing).
  void choose_algorithms(Shared& sh) {
    const auto& g = Network::graph;
    const int mb = options_.max_batch;
    std::unique_ptr<AlgoCache> cache;
    DeviceBuffer find_ws;
    if (options_.tuning == Tuning::measured) {
      cache = std::make_unique<AlgoCache>(options_.algo_cache);
    }
    for (int i = 0; i < g.num_ops; ++i) {
      const Op& op = g.ops[i];
      if (op.kind != OpKind::conv) {
        continue;
      }
      const LayerScope scope(op.label.view());
      OpPlan pl;
      describe_conv(op, mb, pl, P == DType::f32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH);
      AlgoChoice choice;
      const ConvGeom cg = conv_geom(op);
      const int window = cg.kh * cg.kw * cg.fcg;
      if (options_.tuning == Tuning::heuristic) {
        // A first layer with few input channels (padded to 8) is a small dot product per output:
        // Strata's direct kernel beats cuDNN's implicit GEMM on the padded channels there.
        const bool tiny_first = P != DType::f32 && cg.groups == 1 && cg.c < cg.cp && window <= 72;
        choice = tiny_first ? AlgoChoice{-1, 0, 0, 0}
                 : gemm_ok(cg) ? AlgoChoice{-2, 0, 0, 0}
                               : heuristic_choice(pl, std::size_t{1} << 30);
      } else {
        const std::string key = algo_key(op, mb);
        if (auto c = cache->find(key)) {
          choice = *c;
          ++stats_.convs_from_cache;
        } else {
          if (find_ws.get() == nullptr) {
            std::size_t free_b = 0;
            std::size_t total_b = 0;
            STRATA_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
            find_ws = DeviceBuffer(std::min<std::size_t>(std::size_t{256} << 20, free_b / 4));
          }
          cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
          int n = 0;
          const cudnnStatus_t st = cudnnFindConvolutionForwardAlgorithmEx(
              cudnn_.get(), pl.x.get(), tensor(op.in, mb), pl.w.get(),
              shared_->ops[static_cast<std::size_t>(i)].weight.get(), pl.conv.get(), pl.y.get(),
              tensor(op.out, mb), CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, find_ws.get(),
              find_ws.bytes());
          if (st != CUDNN_STATUS_SUCCESS) {
            n = 0;  // nothing cuDNN can run: the heuristics (or the direct kernel) decide
          }
          // Time every workable candidate as it will run: cuDNN's algorithms fused
          // (conv+bias+add+relu in one call, where allowed) and unfused (conv, then Strata's
          // epilogue), and for 16-bit Strata's direct kernel; keep the fastest.
          float best_ms = 1e30f;
          bool found = false;
          for (int j = 0; j < n; ++j) {
            if (perf[j].status != CUDNN_STATUS_SUCCESS || !math_ok(perf[j].mathType) ||
                perf[j].memory > find_ws.bytes()) {
              continue;
            }
            pl.algo = perf[j].algo;
            pl.conv.set_math(math_for(static_cast<int>(perf[j].mathType)));
            for (int fuse = pl.fused ? 1 : 0; fuse >= 0; --fuse) {
              const float ms = time_conv(op, i, pl, fuse == 1, mb, find_ws);
              if (ms < best_ms) {
                best_ms = ms;
                choice = {static_cast<int>(perf[j].algo), static_cast<int>(perf[j].mathType),
                          perf[j].memory, fuse};
                found = true;
              }
            }
          }
          if (!found) {
            choice = heuristic_choice(pl, find_ws.bytes());
          }
          if (P != DType::f32 && window <= 576) {
            const float ms = time_direct(op, i, mb);
            if (choice.algo < 0 || ms < best_ms) {
              choice = {-1, 0, 0, 0};
              best_ms = ms;
            }
          }
          if (gemm_ok(cg) && time_gemm(op, i, mb, find_ws) < best_ms) {
            choice = {-2, 0, 0, 0};
          }
          cache->put(key, choice);
          ++stats_.convs_timed;
        }
      }
      sh.algos[static_cast<std::size_t>(i)] = choice;
    }
    if (cache) {
      cache->save();
    }
  }

  /// Milliseconds per run of `call(stream)` — which enqueues one run and returns false when the
  /// library declines — timed as the engine will run it: captured into a CUDA graph and replayed
  /// back to back, median of 5 timings. Timing single eager launches instead counts the host's
  /// launch cost, which a graph removes, and misranks candidates at small batches. 1e30 when the
  /// call declines or cannot be captured.
  template <class Call>
  float time_captured(Call&& call) {
    const cudaStream_t s = stream_.get();
    if (!call(s)) {  // an eager run first: the library may decline, or set itself up lazily
      return 1e30f;
    }
    STRATA_CUDA_CHECK(cudaStreamSynchronize(s));
    if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
      (void)cudaGetLastError();
      return 1e30f;
    }
    bool ok = false;
    try {
      ok = call(s);
    } catch (...) {
      ok = false;
    }
    cudaGraph_t raw = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(s, &raw);
    if (!ok || ended != cudaSuccess || raw == nullptr) {
      if (raw != nullptr) {
        (void)cudaGraphDestroy(raw);
      }
      (void)cudaGetLastError();
      return 1e30f;
    }
    const Graph graph(raw);
    const GraphExec exec = GraphExec::instantiate(graph);
    const Event a = Event::create();
    const Event b = Event::create();
    exec.launch(s);  // warm-up, and a first estimate of the run's length
    a.record(s);
    exec.launch(s);
    b.record(s);
    b.synchronize();
    const int iters = b.elapsed_ms_since(a) > 0.5f ? 2 : 10;
    std::vector<float> runs;
    for (int r = 0; r < 5; ++r) {
      a.record(s);
      for (int it = 0; it < iters; ++it) {
        exec.launch(s);
      }
      b.record(s);
      b.synchronize();
      runs.push_back(b.elapsed_ms_since(a) / static_cast<float>(iters));
    }
    std::sort(runs.begin(), runs.end());
    return runs[2];
  }

  /// Milliseconds per run of conv op `i` through cuDNN with `pl`'s algorithm, fused or not;
  /// 1e30 when cuDNN declines.
  float time_conv(const Op& op, int i, OpPlan& pl, bool fused, int batch, const DeviceBuffer& ws) {
    const OpWeights& w = shared_->ops[static_cast<std::size_t>(i)];
    return time_captured([&](cudaStream_t s) {
      const cudnnStatus_t st = conv_call(op, w, pl, fused, tensor(op.in, batch), nullptr,
                                         tensor(op.out, batch), ws, batch, s);
      if (st != CUDNN_STATUS_SUCCESS) {
        char cleared[256];
        cudnnGetLastErrorString(cleared, sizeof(cleared));
        return false;
      }
      return true;
    });
  }

  /// Milliseconds per run of the direct convolution kernel for op `i` at `batch`.
  float time_direct(const Op& op, int i, int batch) {
    const kernels::ConvShape cs = direct_shape(conv_geom(op), batch);
    const OpWeights& w = shared_->ops[static_cast<std::size_t>(i)];
    return time_captured([&](cudaStream_t s) {
      kernels::conv_direct<T>(tensor(op.in, batch), static_cast<const T*>(w.weight.get()),
                              static_cast<const float*>(w.bias_f32.get()), nullptr,
                              tensor(op.out, batch), cs, op.act, s);
      return cudaPeekAtLastError() == cudaSuccess;
    });
  }

  /// cuBLASLt plan for D (mp × cols) = W (mp × kin, stored row-major) · X (kin × cols), all
  /// column-major with features as rows, + bias (per row) + activation (relu in the epilogue,
  /// others as a Strata kernel after), + C (= D's layout) when beta = 1.
  void lt_plan(OpPlan& pl, int kin, int mp, std::int64_t cols, const void* bias, ActDesc act) const {
    pl.mm = MatmulDesc::create();
    pl.mm.set(CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
    pl.mm.set(CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
    const bool relu = act.kind == Act::relu;
    pl.act_after = !relu && act.kind != Act::none;
    pl.mm.set(CUBLASLT_MATMUL_DESC_EPILOGUE, relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS);
    pl.mm.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
    const cudaDataType_t bias_type = cublas_type(P);
    pl.mm.set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type);
    // Column-major view: D (mp × n) = Wᵀ-stored (kin × mp)ᵀ · X (kin × n): features are rows.
    pl.a = MatrixLayout::create(P, static_cast<std::uint64_t>(kin), static_cast<std::uint64_t>(mp), kin);
    pl.b = MatrixLayout::create(P, static_cast<std::uint64_t>(kin), static_cast<std::uint64_t>(cols), kin);
    pl.d = MatrixLayout::create(P, static_cast<std::uint64_t>(mp), static_cast<std::uint64_t>(cols), mp);
    const MatmulPreference pref = MatmulPreference::create();
    pref.set_max_workspace(lt_workspace);
    cublasLtMatmulHeuristicResult_t result{};
    int count = 0;
    STRATA_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt_.get(), pl.mm.get(), pl.a.get(),
                                                       pl.b.get(), pl.d.get(), pl.d.get(),
                                                       pref.get(), 1, &result, &count));
    STRATA_CHECK(count > 0, "cuBLASLt has no algorithm for layer '" << detail::current_layer
                                                                     << "' with " << cols
                                                                     << " columns");
    pl.lt_algo = result.algo;
  }

  /// Whether a conv is a plain GEMM over pixels (16-bit NHWC, 1×1, no padding, one group):
  /// then it runs on cuBLASLt (strided: after a Strata subsampling copy).
  static bool gemm_ok(const ConvGeom& cg) {
    return P != DType::f32 && cg.kh == 1 && cg.kw == 1 && cg.ph == 0 && cg.pw == 0 &&
           cg.groups == 1 && !cg.s2d && cg.packed;
  }
  /// Scratch bytes the GEMM path needs at `batch` (the subsampled input), after Lt's workspace.
  static std::size_t gemm_scratch(const ConvGeom& cg, int batch) {
    if (cg.sh == 1 && cg.sw == 1) {
      return 0;
    }
    return static_cast<std::size_t>(batch) * cg.oh * cg.ow * cg.cp * sizeof(T);
  }
  void plan_gemm(const Op& op, int i, int batch, OpPlan& pl) const {
    const ConvGeom cg = conv_geom(op);
    pl.gemm = true;
    pl.fused = false;
    lt_plan(pl, cg.cp, cg.kp, static_cast<std::int64_t>(batch) * cg.oh * cg.ow,
            shared_->ops[static_cast<std::size_t>(i)].bias.get(), op.act);
    pl.workspace = lt_workspace + gemm_scratch(cg, batch);
  }
  /// A 1×1 convolution as a GEMM: [subsample], D = W·X + bias (+ z, beta = 1), relu in the
  /// epilogue, other activations after.
  void gemm_call(const Op& op, const OpWeights& w, const OpPlan& pl, const T* x, const T* z, T* y,
                 const DeviceBuffer& ws, int batch, cudaStream_t s) const {
    const ConvGeom cg = conv_geom(op);
    const T* src = x;
    if (gemm_scratch(cg, batch) > 0) {
      T* scratch = reinterpret_cast<T*>(ws.as<std::uint8_t>() + lt_workspace);
      kernels::subsample<T>(x, scratch, batch, cg.h, cg.w, cg.cp, cg.oh, cg.ow, cg.sh, cg.sw, s);
      src = scratch;
    }
    const float one = 1.0f;
    const float beta = z != nullptr ? 1.0f : 0.0f;
    const void* c = z != nullptr ? static_cast<const void*>(z) : static_cast<const void*>(y);
    STRATA_CUBLAS_CHECK(cublasLtMatmul(lt_.get(), pl.mm.get(), &one, w.weight.get(), pl.a.get(),
                                       src, pl.b.get(), &beta, c, pl.d.get(), y, pl.d.get(),
                                       &pl.lt_algo, ws.get(), lt_workspace, s));
    if (pl.act_after) {
      const std::int64_t total = static_cast<std::int64_t>(batch) * cg.kp * cg.oh * cg.ow;
      kernels::pointwise<T>(y, nullptr, y, nullptr, nullptr, op.act, total, cg.kp, cg.oh * cg.ow,
                            cg.k, true, s);
    }
  }
  /// Milliseconds per run of the GEMM path for op `i` at `batch`, 1e30 if the scratch does not
  /// fit `ws`.
  float time_gemm(const Op& op, int i, int batch, const DeviceBuffer& ws) {
    const ConvGeom cg = conv_geom(op);
    if (lt_workspace + gemm_scratch(cg, batch) > ws.bytes()) {
      return 1e30f;
    }
    OpPlan pl;
    plan_gemm(op, i, batch, pl);
    const OpWeights& w = shared_->ops[static_cast<std::size_t>(i)];
    return time_captured([&](cudaStream_t s) {
      gemm_call(op, w, pl, tensor(op.in, batch), nullptr, tensor(op.out, batch), ws, batch, s);
      return true;
    });
  }

  /// Descriptors and choices for all ops at `batch`; `ws_limit` = 0 means "no workspace yet"
  /// (construction: any size the shared choice needs).
  BatchPlan make_plan(int batch, std::size_t ws_limit) const {
    const auto& g = Network::graph;
    BatchPlan bp;
    bp.ops.resize(static_cast<std::size_t>(g.num_ops));
    for (int i = 0; i < g.num_ops; ++i) {
      const Op& op = g.ops[i];
      const LayerScope scope(op.label.view());
      OpPlan& pl = bp.ops[static_cast<std::size_t>(i)];
      if (op.kind == OpKind::conv) {
        const AlgoChoice& c = shared_->algos[static_cast<std::size_t>(i)];
        describe_conv(op, batch, pl, math_for(c.math));
        pl.fused = pl.fused && c.fuse != 0;
        if (c.algo == -2 && gemm_ok(conv_geom(op))) {
          plan_gemm(op, i, batch, pl);
          continue;
        }
        if (c.algo < 0) {
          pl.direct = true;
          pl.fused = false;
          continue;
        }
        pl.algo = static_cast<cudnnConvolutionFwdAlgo_t>(c.algo);
        std::size_t ws = 0;
        const cudnnStatus_t st = cudnnGetConvolutionForwardWorkspaceSize(
            cudnn_.get(), pl.x.get(), pl.w.get(), pl.conv.get(), pl.y.get(), pl.algo, &ws);
        if (st != CUDNN_STATUS_SUCCESS || (ws_limit > 0 && ws > ws_limit)) {
          const AlgoChoice h = heuristic_choice(pl, ws_limit > 0 ? ws_limit : std::size_t{1} << 30);
          if (h.algo < 0) {
            pl.direct = true;
            pl.fused = false;
            continue;
          }
          pl.algo = static_cast<cudnnConvolutionFwdAlgo_t>(h.algo);
          pl.conv.set_math(math_for(h.math));
          STRATA_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
              cudnn_.get(), pl.x.get(), pl.w.get(), pl.conv.get(), pl.y.get(), pl.algo, &ws));
        }
        pl.workspace = ws;
      } else if (op.kind == OpKind::dense) {
        lt_plan(pl, dense_kin(op), pad(op.layer.out_channels), batch,
                shared_->ops[static_cast<std::size_t>(i)].bias.get(), op.act);
        pl.workspace = lt_workspace;
      }
    }
    return bp;
  }

  void finish_construction() {
    // Plan the largest batch and the listed ones first: the workspace covers all of them.
    std::vector<int> batches = options_.capture_batches;
    batches.push_back(options_.max_batch);
    std::sort(batches.begin(), batches.end());
    batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
    std::size_t ws = lt_workspace;
    for (int b : batches) {
      BatchPlan bp = make_plan(b, 0);
      for (const OpPlan& pl : bp.ops) {
        ws = std::max(ws, pl.workspace);
      }
      batches_.emplace(b, std::move(bp));
    }
    workspace_ = DeviceBuffer(ws);
    stats_.workspace_bytes = ws;
    stats_.weight_bytes = shared_->weight_bytes;
    for (int b : options_.capture_batches) {
      capture(b);
    }
    const BatchPlan& top = batches_.at(options_.max_batch);
    for (int i = 0; i < Network::graph.num_ops; ++i) {
      stats_.convs_fused += Network::graph.ops[i].kind == OpKind::conv && top.ops[static_cast<std::size_t>(i)].fused;
    }
  }

  /// The captured graph for `batch`, capturing it first if needed (after `user_stream`'s
  /// pending work, which may still read the output buffer).
  BatchPlan& graph_for(int batch, cudaStream_t user_stream) {
    auto it = batches_.find(batch);
    if (it != batches_.end() && it->second.exec) {
      return it->second;
    }
    STRATA_CUDA_CHECK(cudaStreamSynchronize(user_stream));
    capture(batch);
    return batches_.at(batch);
  }

  void capture(int batch) {
    auto it = batches_.find(batch);
    if (it == batches_.end()) {
      it = batches_.emplace(batch, make_plan(batch, workspace_.bytes())).first;
    }
    BatchPlan& bp = it->second;
    // One eager run first: library initialisation stays out of the capture, and a fused conv
    // that cuDNN turns down falls back to conv + Strata epilogue here.
    run_all(bp, batch, stream_.get());
    stream_.synchronize();
    STRATA_CUDA_CHECK(cudaStreamBeginCapture(stream_.get(), cudaStreamCaptureModeThreadLocal));
    try {
      run_all(bp, batch, stream_.get());
    } catch (...) {
      cudaGraph_t g = nullptr;
      (void)cudaStreamEndCapture(stream_.get(), &g);
      if (g != nullptr) {
        (void)cudaGraphDestroy(g);
      }
      throw;
    }
    cudaGraph_t g = nullptr;
    STRATA_CUDA_CHECK(cudaStreamEndCapture(stream_.get(), &g));
    const Graph graph(g);
    bp.exec = GraphExec::instantiate(graph);
    ++stats_.graphs_captured;
  }

  /// The whole network on `s`: input conversion, every op, output conversion.
  /// Whether op i writes the user's output directly (a final softmax/log_softmax, in f32).
  static bool writes_user_output(int i) {
    const Op& op = Network::graph.ops[i];
    return op.out == Network::graph.output &&
           (op.kind == OpKind::softmax || op.kind == OpKind::log_softmax);
  }
  /// Whether an output conversion step follows the ops.
  static bool needs_output_step() {
    const auto& g = Network::graph;
    return g.num_ops == 0 || !writes_user_output(g.num_ops - 1);
  }

  /// Step k of the network on `s`: -1 the input conversion, 0..num_ops-1 the ops, num_ops the
  /// output conversion (when needed).
  void run_step(BatchPlan& bp, int batch, cudaStream_t s, int k) {
    const auto& g = Network::graph;
    if (k < 0) {
      const LayerScope scope("input");
      const Shape is = Network::input_spec.shape;
      if (const int so = s2d_op(); so >= 0) {
        const Op& op = g.ops[so];
        const Shape ss = s2d_shape(op);
        kernels::space_to_depth<T>(static_cast<const float*>(d_in_.as<float>()), tensor(g.input, batch),
                                   batch, is.c, is.h, is.w, ss.h, ss.w, pad(ss.c),
                                   op.layer.padding.h, op.layer.padding.w, s);
        return;
      }
      const int hw = is.h * is.w;
      const kernels::Strides ss = Network::input_spec.layout == Layout::nhwc
                                      ? kernels::nhwc_strides(is.c, hw)
                                      : kernels::nchw_strides(is.c, hw);
      const int cp = pad(is.c);
      const kernels::Strides ds = layout == Layout::nhwc ? kernels::nhwc_strides(cp, hw)
                                                         : kernels::nchw_strides(cp, hw);
      kernels::convert<float, T>(static_cast<const float*>(d_in_.as<float>()), ss,
                                 tensor(g.input, batch), ds, batch, is.c, cp, hw,
                                 layout == Layout::nhwc, s);
    } else if (k < g.num_ops) {
      run_op(k, bp.ops[static_cast<std::size_t>(k)], batch, s, writes_user_output(k));
    } else if (needs_output_step()) {
      const LayerScope scope("output");
      const Shape os = storage_shape(g.output);
      const int hw = os.h * os.w;
      const int cp = pad(os.c);
      const kernels::Strides ss = layout == Layout::nhwc ? kernels::nhwc_strides(cp, hw)
                                                         : kernels::nchw_strides(cp, hw);
      kernels::convert<T, float>(static_cast<const T*>(tensor(g.output, batch)), ss,
                                 d_out_.as<float>(), kernels::nchw_strides(os.c, hw), batch, os.c,
                                 os.c, hw, false, s);
    }
  }

  /// The whole network on `s`: input conversion, every op, output conversion.
  void run_all(BatchPlan& bp, int batch, cudaStream_t s) {
    for (int k = -1; k <= Network::graph.num_ops; ++k) {
      run_step(bp, batch, s, k);
    }
  }

  /// One convolution through cuDNN: fused (conv + bias + z + relu in one call) or conv then
  /// Strata's epilogue (bias + z + activation). Returns cuDNN's status (launch errors of the
  /// epilogue throw).
  cudnnStatus_t conv_call(const Op& op, const OpWeights& w, const OpPlan& pl, bool fused,
                          const T* x, const T* z, T* y, const DeviceBuffer& ws, int batch,
                          cudaStream_t s) const {
    const float one = 1.0f;
    const float zero = 0.0f;
    if (fused) {
      const float alpha2 = z != nullptr ? 1.0f : 0.0f;
      return cudnnConvolutionBiasActivationForward(
          cudnn_.get(), &one, pl.x.get(), x, pl.w.get(), w.weight.get(), pl.conv.get(), pl.algo,
          ws.get(), ws.bytes(), &alpha2, pl.y.get(),
          z != nullptr ? static_cast<const void*>(z) : static_cast<const void*>(y), pl.bias.get(),
          w.bias.get(), pl.act.get(), pl.y.get(), y);
    }
    const cudnnStatus_t st =
        cudnnConvolutionForward(cudnn_.get(), &one, pl.x.get(), x, pl.w.get(), w.weight.get(),
                                pl.conv.get(), pl.algo, ws.get(), ws.bytes(), &zero, pl.y.get(), y);
    if (st != CUDNN_STATUS_SUCCESS) {
      return st;
    }
    const ConvGeom cg = conv_geom(op);
    const std::int64_t total = static_cast<std::int64_t>(batch) * cg.kp * cg.oh * cg.ow;
    kernels::pointwise<T>(y, z, y, nullptr, static_cast<const float*>(w.bias_f32.get()), op.act,
                          total, cg.kp, cg.oh * cg.ow, cg.k, layout == Layout::nhwc, s);
    return CUDNN_STATUS_SUCCESS;
  }

  void run_op(int i, OpPlan& pl, int batch, cudaStream_t s, bool to_user_out) {
    const Op& op = Network::graph.ops[i];
    const LayerScope scope(op.label.view());
    const OpWeights& w = shared_->ops[static_cast<std::size_t>(i)];
    const T* x = tensor(op.in, batch);
    const T* z = op.in2 >= 0 ? tensor(op.in2, batch) : nullptr;
    T* y = tensor(op.out, batch);
    const Shape is = storage_shape(op.in);
    const Shape os = op.out_spec.shape;
    const bool nhwc = layout == Layout::nhwc;
    const int in_cp = pad(is.c);
    const int out_cp = pad(os.c);
    const int out_hw = os.h * os.w;
    const std::int64_t out_total = static_cast<std::int64_t>(batch) * out_cp * out_hw;
    switch (op.kind) {
      case OpKind::conv: {
        const ConvGeom cg = conv_geom(op);
        if (pl.gemm) {
          gemm_call(op, w, pl, x, z, y, workspace_, batch, s);
          return;
        }
        if (pl.direct) {
          const kernels::ConvShape cs = direct_shape(cg, batch);
          kernels::conv_direct<T>(x, static_cast<const T*>(w.weight.get()),
                                  static_cast<const float*>(w.bias_f32.get()), z, y, cs, op.act, s);
          return;
        }
        cudnnStatus_t st = conv_call(op, w, pl, pl.fused, x, z, y, workspace_, batch, s);
        if (st != CUDNN_STATUS_SUCCESS && pl.fused) {
          cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
          STRATA_CUDA_CHECK(cudaStreamIsCapturing(s, &cs));
          if (st != CUDNN_STATUS_NOT_SUPPORTED || cs != cudaStreamCaptureStatusNone) {
            detail::throw_call_error("cuDNN", "cudnnConvolutionBiasActivationForward", STRATA_HERE,
                                     static_cast<long>(st), detail::cudnn_message(st));
          }
          char cleared[256];
          cudnnGetLastErrorString(cleared, sizeof(cleared));
          pl.fused = false;  // cuDNN declined this configuration: conv + Strata epilogue
          st = conv_call(op, w, pl, false, x, z, y, workspace_, batch, s);
        }
        if (st != CUDNN_STATUS_SUCCESS) {
          detail::throw_call_error(
              "cuDNN", pl.fused ? "cudnnConvolutionBiasActivationForward" : "cudnnConvolutionForward",
              STRATA_HERE, static_cast<long>(st), detail::cudnn_message(st));
        }
        return;
      }
      case OpKind::dense: {
        const float one = 1.0f;
        const float zero = 0.0f;
        STRATA_CUBLAS_CHECK(cublasLtMatmul(lt_.get(), pl.mm.get(), &one, w.weight.get(), pl.a.get(),
                                           x, pl.b.get(), &zero, y, pl.d.get(), y, pl.d.get(),
                                           &pl.lt_algo, workspace_.get(), lt_workspace, s));
        if (pl.act_after) {
          kernels::pointwise<T>(y, nullptr, y, nullptr, nullptr, op.act, out_total, out_cp, 1,
                                os.c, nhwc, s);
        }
        return;
      }
      case OpKind::batch_norm:
      case OpKind::activation:
      case OpKind::add:
        kernels::pointwise<T>(x, z, y, static_cast<const float*>(w.scale_f32.get()),
                              static_cast<const float*>(w.shift_f32.get()), op.act, out_total,
                              out_cp, out_hw, os.c, nhwc, s);
        return;
      case OpKind::max_pool:
      case OpKind::avg_pool: {
        const LayerDesc& d = op.layer;
        const kernels::PoolShape ps{batch, in_cp, is.h, is.w, os.h, os.w, d.kernel.h, d.kernel.w,
                                    d.stride.h, d.stride.w, d.padding.h, d.padding.w,
                                    op.kind == OpKind::max_pool, d.count_include_pad};
        kernels::pool<T>(x, y, ps, nhwc, s);
        return;
      }
      case OpKind::global_avg_pool: {
        kernels::global_avg_pool<T>(x, y, batch, in_cp, is.h * is.w, nhwc, s);
        return;
      }
      case OpKind::softmax:
      case OpKind::log_softmax: {
        const int hw = is.h * is.w;
        const kernels::Strides xs = nhwc ? kernels::nhwc_strides(in_cp, hw) : kernels::nchw_strides(in_cp, hw);
        const bool log = op.kind == OpKind::log_softmax;
        if (to_user_out) {
          kernels::softmax<T, float>(x, xs, d_out_.as<float>(), kernels::nchw_strides(is.c, hw),
                                     batch, is.c, is.c, hw, log, s);
        } else {
          const kernels::Strides ys = nhwc ? kernels::nhwc_strides(out_cp, hw) : kernels::nchw_strides(out_cp, hw);
          kernels::softmax<T, T>(x, xs, y, ys, batch, is.c, out_cp, hw, log, s);
        }
        return;
      }
    }
  }

  EngineOptions options_;
  std::shared_ptr<const Shared> shared_;
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
  std::map<int, BatchPlan> batches_;
};

}  // namespace strata::cuda
