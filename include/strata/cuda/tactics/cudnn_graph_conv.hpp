#pragma once
/// Tactic `cudnn_graph`: a 16-bit NHWC convolution with its bias, residual add and ReLU as one
/// cuDNN operation graph (the backend "graph API"): conv_fprop → + bias → (+ z) → (relu), the
/// intermediates virtual (f32), so cuDNN's runtime-fusion engines may run the whole op as one
/// kernel. Variants: the engine configurations cuDNN's heuristic (mode A) lists for the graph,
/// by position (math 1: the first of engine `claim_engine` in the list at each batch); each becomes an execution plan when the op is prepared (engines that compile
/// kernels do it then). Measured tuning tries it on strided 1×1 convs always, on the others when
/// asked (EngineOptions::cudnn_graph_candidates); untimed, it claims only a strided 1×1 conv at a
/// large batch, on the engine measured fastest there (heuristic()). f32 storage is NCHW,
/// which the fusion engines do not take, so 16-bit only.
#include <cudnn.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/cudnn.hpp"
#include "strata/cuda/cudnn_graph.hpp"
#include "strata/cuda/tactic.hpp"

namespace strata::cuda::tactics {

template <DType P>
class CudnnGraphConv final : public Tactic<P> {
 public:
  /// The most engine configurations timed per op (the heuristic's first ones).
  static constexpr int max_configs = 6;

  [[nodiscard]] std::string_view name() const override { return "cudnn_graph"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    const ConvGeom& cg = op.conv;
    return is_16bit(P) && op.kind == OpKind::conv && cg.packed && cg.groups == 1 &&
           !op.pool && (op.act.kind == Act::none || op.act.kind == Act::relu);
  }
  /// A strided 1×1 conv (ResNet's downsamples) at batch `graph_claim_min_batch` or more on a GPU
  /// of compute capability 9.0 (the one measured), with cuDNN 9.19: the first configuration in cuDNN's list of
  /// engine `claim_engine`, ahead of cuBLASLt over the subsampled input. Nothing else untimed:
  /// cuDNN's own first configuration can be 12x slower than its fifth (ResNet-18's layer2.0
  /// downsample at batch 256: 338 µs against 27.6; heuristic mode B orders them the same — H200,
  /// session 18). Session 45 (H200, cuDNN 9.19, batch 256) named the engines: that downsample's
  /// first six configurations were engines 35, 11, 35, 41, 41, 41 (337.5, 200.1, 359.8, 28.7,
  /// 27.5, 32.1 µs; cuBLASLt 66.7), layer3.0's and layer4.0's all engine 41 (16.6–24.1 and
  /// 13.3–15.7; cuBLASLt 29.3 and 14.8), and ResNet-50's three downsamples within 6% of their
  /// best on any of them. Engine numbers are cuDNN's own and may change between versions, so
  /// the claim is made only on the version measured.
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries& lib) const override {
    if (!strided_1x1(op) || batch < graph_claim_min_batch || lib.cudnn == nullptr ||
        device_arch() != 90 || cudnnGetVersion() / 100 != claim_cudnn) {
      return std::nullopt;
    }
    try {
      if (first_of_engine(build(op, batch, lib.cudnn), max_configs) >= 0) {
        return Claim{{std::string(name()), 0, first_of_engine_math, 0}, rank::special - 1};
      }
    } catch (const Error&) {
      // cuDNN cannot describe this graph here: no claim
    }
    return std::nullopt;
  }
  /// `math` 1: not the configuration at position `algo` but the first of engine `claim_engine`
  /// in the list cuDNN gives at the batch being prepared — anywhere in it: the lists differ from
  /// batch to batch, and the claim (among the first max_configs at the largest batch) holds for
  /// every batch of the engine.
  static constexpr int first_of_engine_math = 1;
  /// The engine (CUDNN_ATTR_ENGINE_GLOBAL_INDEX) heuristic() claims, and the cuDNN version
  /// (cudnnGetVersion() / 100) it was measured with.
  static constexpr std::int64_t claim_engine = 41;
  static constexpr std::size_t claim_cudnn = 919;
  /// The least batch at which heuristic() claims a strided 1×1 conv (below it, cuBLASLt reads
  /// the input in place or subsampled: ResNet-18's downsamples at batch 1 took 3.4–3.9 µs so).
  static constexpr int graph_claim_min_batch = 32;
  /// A strided 1×1 conv (ResNet's downsamples): timed by measured tuning whether or not the
  /// other graph candidates were asked for — on an H200 (session 18, R2 f16 batch 256) the
  /// graph's runtime-fusion engine ran ResNet-18's three in 27.6 / 16.5 / 13.2 µs against
  /// cuBLASLt's (subsampled input) 65.6 / 28.3 / 14.9, for three ops' worth of plans.
  [[nodiscard]] static bool strided_1x1(const OpDesc& op) {
    const ConvGeom& cg = op.conv;
    return op.kind == OpKind::conv && cg.kh == 1 && cg.kw == 1 && (cg.sh > 1 || cg.sw > 1);
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t,
                                                const Libraries& lib) const override {
    std::vector<Variant> out;
    if (!lib.cudnn_graph && !strided_1x1(op)) {
      return out;
    }
    try {
      Graph g = build(op, batch, lib.cudnn);
      const int n = std::min(static_cast<int>(g.configs.size()), max_configs);
      for (int i = 0; i < n; ++i) {
        out.push_back({std::string(name()), i, 0, 0});
      }
    } catch (const Error&) {
      // cuDNN cannot describe this graph here: no candidates
    }
    return out;
  }

  /// The op's graph with engine configuration `v.algo` (math 1: the first of `claim_engine`)
  /// made into an execution plan. Throws when
  /// cuDNN cannot build that plan (the tuner then skips the variant).
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries& lib) const override {
    auto s = std::make_unique<GraphStep>();
    s->graph = build(op, batch, lib.cudnn);
    STRATA_CHECK(v.math == 0 || v.math == first_of_engine_math,
                 "cudnn_graph: layer '" << op.label << "': no math " << v.math << " (0: the configuration at "
                                           "position algo; 1: the first of engine " << claim_engine << ")");
    const int config = v.math == first_of_engine_math
                           ? first_of_engine(s->graph, static_cast<int>(s->graph.configs.size()))
                           : v.algo;
    STRATA_CHECK(v.math == 0 || config >= 0,
                 "cudnn_graph: layer '" << op.label << "': none of cuDNN's "
                                        << s->graph.configs.size() << " engine configurations at batch "
                                        << batch << " is engine " << claim_engine);
    STRATA_CHECK(config >= 0 && config < static_cast<int>(s->graph.configs.size()),
                 "cudnn_graph: layer '" << op.label << "': engine configuration " << config
                                        << " of " << s->graph.configs.size());
    s->plan = BackendDesc::create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    s->plan.set_handle(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, lib.cudnn)
        .set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                  s->graph.configs[static_cast<std::size_t>(config)]);
    const cudnnStatus_t st = s->plan.try_finalize();
    if (st != CUDNN_STATUS_SUCCESS) {
      char cleared[256];
      cudnnGetLastErrorString(cleared, sizeof(cleared));
      detail::throw_call_error("cuDNN", "cudnnBackendFinalize(execution plan)", STRATA_HERE,
                               static_cast<long>(st), detail::cudnn_message(st));
    }
    s->workspace = static_cast<std::size_t>(s->plan.get_int(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE));
    s->handle = lib.cudnn;
    s->config = config;
    s->engine = engine_index(s->graph.configs[static_cast<std::size_t>(config)]);
    // The variant pack's pointers (all but the workspace, known at launch).
    s->uids.push_back(uid_x);
    s->ptrs.push_back(const_cast<void*>(io.x));
    s->uids.push_back(uid_w);
    s->ptrs.push_back(w.weight.get());
    if (op.has_bias) {
      s->uids.push_back(uid_b);
      s->ptrs.push_back(w.bias.get());
    }
    if (op.has_residual) {
      s->uids.push_back(uid_z);
      s->ptrs.push_back(const_cast<void*>(io.z));
    }
    s->uids.push_back(uid_y);
    s->ptrs.push_back(io.y);
    return s;
  }

 private:
  static constexpr std::int64_t uid_x = 1, uid_w = 2, uid_b = 3, uid_z = 4, uid_y = 5;

  /// The operation graph of one op at one batch size and the heuristic's configurations for it.
  struct Graph {
    std::vector<BackendDesc> parts;  // tensors, ops: cuDNN's descriptors refer to them
    BackendDesc graph;
    BackendDesc heur;
    std::vector<BackendDesc> configs;
    std::string what;  // "conv+bias+add+relu"
  };

  struct GraphStep final : Step {
    [[nodiscard]] std::size_t workspace_bytes() const override { return workspace; }
    [[nodiscard]] std::string describe() const override {
      std::ostringstream os;
      os << "cuDNN graph " << graph.what << " (engine " << engine << ", configuration " << config
         << " of " << graph.configs.size() << ")";
      return os.str();
    }
    [[nodiscard]] std::string tuning_note() const override {
      return "engine " + std::to_string(engine);
    }
    void launch(cudaStream_t, void* ws, std::size_t) override {
      // (the handle the step was prepared with is bound to the stream it runs on: the execution
      // context's, or a branch's side stream — as for the legacy calls)
      BackendDesc pack = BackendDesc::create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
      pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
               static_cast<std::int64_t>(uids.size()), uids.data())
          .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
               static_cast<std::int64_t>(ptrs.size()), ptrs.data())
          .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws)
          .finalize();
      STRATA_CUDNN_CHECK(cudnnBackendExecute(handle, plan.get(), pack.get()));
    }

    Graph graph;
    BackendDesc plan;
    cudnnHandle_t handle = nullptr;
    std::vector<std::int64_t> uids;
    std::vector<void*> ptrs;
    std::size_t workspace = 0;
    int config = 0;
    std::int64_t engine = -1;
  };

  /// A tensor descriptor with dims (n, c, h, w) in NHWC order, `slots` elements a pixel (the
  /// filter's (k, c, r, s) too: c innermost).
  static BackendDesc tensor(std::int64_t uid, cudnnDataType_t type, std::int64_t n,
                            std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t slots,
                            bool is_virtual = false) {
    BackendDesc t = BackendDesc::create(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    t.set_type(CUDNN_ATTR_TENSOR_DATA_TYPE, type)
        .set_ints(CUDNN_ATTR_TENSOR_DIMENSIONS, {n, c, h, w})
        .set_ints(CUDNN_ATTR_TENSOR_STRIDES, {h * w * slots, 1, w * slots, slots})
        .set_int(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid)
        .set_int(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16)
        .set_bool(CUDNN_ATTR_TENSOR_IS_VIRTUAL, is_virtual)
        .finalize();
    return t;
  }

  /// A pointwise operation y = mode(x, b) (b null for a unary mode), computed in f32.
  static void pointwise(Graph& g, cudnnPointwiseMode_t mode, const BackendDesc& x,
                        const BackendDesc* b, const BackendDesc& y) {
    BackendDesc pw = BackendDesc::create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode)
        .set_type(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_DATA_FLOAT)
        .finalize();
    BackendDesc op = BackendDesc::create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw)
        .set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
    if (b != nullptr) {
      op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b);
    }
    op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y).finalize();
    g.parts.push_back(std::move(pw));
    g.parts.push_back(std::move(op));
  }

  static Graph build(const OpDesc& op, int batch, cudnnHandle_t handle) {
    const ConvGeom& cg = op.conv;
    const cudnnDataType_t t = cudnn_type(P);
    Graph g;
    const bool bias = op.has_bias;
    const bool add = op.has_residual;
    const bool relu = op.act.kind == Act::relu;
    const std::int64_t n = batch;
    // The conv's result is the output itself when nothing follows it, else virtual (f32).
    const bool conv_last = !bias && !add && !relu;
    std::int64_t next_virtual = 100;
    auto result = [&](bool last) {
      return last ? tensor(uid_y, t, n, cg.kd, cg.oh, cg.ow, cg.kp)
                  : tensor(next_virtual++, CUDNN_DATA_FLOAT, n, cg.kd, cg.oh, cg.ow, cg.kp, true);
    };
    BackendDesc x = tensor(uid_x, t, n, cg.xc, cg.h, cg.w, cg.cp);
    BackendDesc w = tensor(uid_w, t, cg.kd, cg.fcg, cg.kh, cg.kw, cg.fcg);  // (Kd, kh, kw, C)
    BackendDesc y = result(conv_last);

    BackendDesc conv = BackendDesc::create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    conv.set_int(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 2)
        .set_type(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_DATA_FLOAT)
        .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode)
        .set_ints(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, {cg.ph, cg.pw})
        .set_ints(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, {cg.ph, cg.pw})
        .set_ints(CUDNN_ATTR_CONVOLUTION_DILATIONS, {cg.dh, cg.dw})
        .set_ints(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, {cg.sh, cg.sw})
        .finalize();
    const float one = 1.0f;
    const float zero = 0.0f;
    BackendDesc fprop = BackendDesc::create(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
    fprop.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, y)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &one)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &zero)
        .finalize();
    std::vector<cudnnBackendDescriptor_t> ops{fprop.get()};
    g.what = "conv";
    // The pointwise tail: each op's output is the next one's input; the last one is the output.
    BackendDesc cur = std::move(y);
    const int tail = (bias ? 1 : 0) + (add ? 1 : 0) + (relu ? 1 : 0);
    int done = 0;
    std::vector<BackendDesc> operands;
    auto step = [&](cudnnPointwiseMode_t m, BackendDesc* b, const char* label) {
      ++done;
      BackendDesc out = result(done == tail);
      pointwise(g, m, cur, b, out);
      ops.push_back(g.parts.back().get());
      g.parts.push_back(std::move(cur));
      cur = std::move(out);
      g.what += label;
    };
    if (bias) {
      operands.push_back(tensor(uid_b, t, 1, cg.kd, 1, 1, cg.kd));  // per channel
      step(CUDNN_POINTWISE_ADD, &operands.back(), "+bias");
    }
    if (add) {
      operands.push_back(tensor(uid_z, t, n, cg.kd, cg.oh, cg.ow, cg.kp));
      step(CUDNN_POINTWISE_ADD, &operands.back(), "+add");
    }
    if (relu) {
      step(CUDNN_POINTWISE_RELU_FWD, nullptr, "+relu");
    }
    g.parts.push_back(std::move(cur));
    for (BackendDesc& d : operands) {
      g.parts.push_back(std::move(d));
    }
    g.parts.push_back(std::move(x));
    g.parts.push_back(std::move(w));
    g.parts.push_back(std::move(conv));
    g.parts.push_back(std::move(fprop));

    g.graph = BackendDesc::create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    g.graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                static_cast<std::int64_t>(ops.size()), ops.data())
        .set_handle(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, handle)
        .finalize();
    g.heur = BackendDesc::create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    const cudnnBackendHeurMode_t heur_mode = CUDNN_HEUR_MODE_A;
    g.heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, g.graph)
        .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &heur_mode)
        .finalize();
    std::int64_t count = 0;
    STRATA_CUDNN_CHECK(cudnnBackendGetAttribute(g.heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                                nullptr));
    std::vector<cudnnBackendDescriptor_t> raw;
    for (std::int64_t i = 0; i < count; ++i) {
      g.configs.push_back(BackendDesc::create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      raw.push_back(g.configs.back().get());
    }
    if (count > 0) {
      std::int64_t got = 0;
      STRATA_CUDNN_CHECK(cudnnBackendGetAttribute(g.heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                                  raw.data()));
      g.configs.resize(static_cast<std::size_t>(got));
    }
    return g;
  }

  /// The position of the first configuration among the first `within` of `g` whose engine is
  /// `claim_engine`, or -1.
  static int first_of_engine(const Graph& g, int within) {
    const int n = std::min(static_cast<int>(g.configs.size()), within);
    for (int i = 0; i < n; ++i) {
      if (engine_index(g.configs[static_cast<std::size_t>(i)]) == claim_engine) {
        return i;
      }
    }
    return -1;
  }

  /// The global index of a configuration's engine (for describe()), or -1.
  static std::int64_t engine_index(const BackendDesc& config) {
    BackendDesc engine = BackendDesc::create(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    cudnnBackendDescriptor_t e = engine.get();
    std::int64_t n = 0;
    if (cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &e) != CUDNN_STATUS_SUCCESS) {
      return -1;
    }
    std::int64_t index = -1;
    if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n,
                                 &index) != CUDNN_STATUS_SUCCESS) {
      return -1;
    }
    return index;
  }
};

}  // namespace strata::cuda::tactics
