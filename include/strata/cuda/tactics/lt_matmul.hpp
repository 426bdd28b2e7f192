#pragma once
/// Tactics on cuBLASLt: `lt_dense` (a dense layer), `lt_conv1x1` (a 1×1 convolution over NHWC
/// pixels — 16-bit or tf32 —, which is a GEMM; strided ones subsample first) and `lt_im2col` (any 16-bit
/// conv of one group as Strata's im2col, then one GEMM: for small maps, where cuDNN's kernels get
/// a few blocks and cuBLASLt may split the long reduction). All compute, column-major
/// with features as rows, D (mp × cols) = Wᵀ-stored (kin × mp)ᵀ · X (kin × cols) + bias (per
/// row) [+ C, the residual], relu in the epilogue and other activations as a Strata kernel after.
#include <cublasLt.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/cublaslt.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"

namespace strata::cuda::tactics {

/// cuBLASLt's workspace for one matmul.
inline constexpr std::size_t lt_workspace = std::size_t{4} << 20;

/// A strided 1×1 conv read in place, as `count` matmuls (one a row of output pixels: the image's
/// rows are sh input rows apart, and images follow on when H = sh·OH): the input columns `ld`
/// elements apart (sw pixels), each matmul's `stride_b` after the last (sh rows); the outputs
/// dense, `stride_d` apart.
struct StridedColumns {
  int count = 0;  ///< 0: one matmul over dense columns
  std::int64_t ld = 0;
  std::int64_t stride_b = 0;
  std::int64_t stride_d = 0;
};

/// How a conv's GEMM operand is gathered into the scratch before the matmul: a strided conv's
/// input subsampled, a conv's im2col matrix, or (gate) a 1×1 conv's weights scaled per image by
/// its folded channel gate (OpDesc::gate), the matmul then batched over the images.
enum class Gather { subsample, im2col, gate };

/// The alignments (bytes, up to 256) of a matmul's A, B, C and D operands as LtMatmulStep
/// passes them, for cuBLASLt's heuristic (which otherwise assumes 256 and may pick an algorithm
/// that needs it): the memory plan places tensors at offsets of 16 bytes' alignment times the
/// batch, and a concat's slice or the later matrices of a strided or batched matmul may sit at
/// less. `elem`: bytes an element; `weights`, `x`, `z` (null: none), `y`: the pointers;
/// `scratch_b`: B is a scratch past cuBLASLt's workspace (a prologue's, a subsample's or an
/// im2col's: 256, as the workspace is allocated); `gate`: A is the per-image scaled weights in
/// that scratch and the matmul is batched over images (A kin·mp, B cols·kin, D cols·mp elements
/// apart); `strided`: a matmul a row (B stride_b, D stride_d elements apart). A batch's matrices
/// count at the alignment of their stride.
struct LtAlignments {
  std::uint32_t a = 256, b = 256, c = 256, d = 256;
};
[[nodiscard]] inline LtAlignments lt_alignments(std::size_t elem, const void* weights, const void* x, const void* z,
                                                const void* y, bool scratch_b, bool gate, const StridedColumns& strided,
                                                int kin, int mp, std::int64_t cols) {
  const auto stride = [elem](std::int64_t elements) {
    return pointer_alignment(reinterpret_cast<const void*>(static_cast<std::uintptr_t>(elements) * elem));
  };
  LtAlignments r;
  r.a = gate ? 256u : pointer_alignment(weights);
  r.b = scratch_b ? 256u : pointer_alignment(x);
  r.d = pointer_alignment(y);
  r.c = z != nullptr ? pointer_alignment(z) : r.d;
  if (strided.count > 0) {
    r.b = std::min(r.b, stride(strided.stride_b));
    r.d = std::min(r.d, stride(strided.stride_d));
    r.c = std::min(r.c, stride(strided.stride_d));
  }
  if (gate) {
    r.a = std::min(r.a, stride(std::int64_t{kin} * mp));
    r.b = std::min(r.b, stride(cols * kin));
    r.d = std::min(r.d, stride(cols * mp));
    r.c = std::min(r.c, stride(cols * mp));
  }
  return r;
}


/// A kernel run before the matmul that writes its input (B, kin × cols, dense) into the step's
/// scratch: `launch(stream, scratch)`; `describe` names it in the step's description.
struct LtPrologue {
  std::function<void(cudaStream_t, void*)> launch;
  std::string describe;
};

/// One matmul planned for one batch: layouts, epilogue, cuBLASLt's heuristic algorithm (the
/// `algo_index`-th of its list). With a prologue, the matmul
/// reads what the prologue wrote in the scratch; `ldd` (0: mp) spaces D's columns, for a result
/// that is a concat's slice (OpDesc::slice: `ldd` its pixel stride).
template <DType P>
class LtMatmulStep final : public Step {
  using T = storage_t<P>;
  static constexpr bool nhwc = storage_layout(P) == Layout::nhwc;

 public:
  /// kin: reduction length; mp: output rows (feature slots); cols: output columns.
  /// act_total/act_hw: elements and pixels per channel slot of the output (for an activation
  /// run after the matmul); scratch: bytes of a strided conv's subsampled input (gather
  /// subsample) or of a conv's im2col matrix (gather im2col).
  LtMatmulStep(const OpDesc& op, const OpWeights& w, const OpIo& io, const Libraries& lib,
               int batch, int kin, int mp, std::int64_t cols, std::int64_t act_total,
               int act_hw, std::size_t scratch, StridedColumns strided = {},
               Gather gather = Gather::subsample, int algo_index = 0, LtPrologue prologue = {},
               std::int64_t ldd = 0)
      : op_(op), w_(w), io_(io), lib_(lib), batch_(batch), act_total_(act_total),
        act_hw_(act_hw), scratch_(scratch), strided_(strided.count > 0), gather_(gather),
        prologue_(std::move(prologue)) {
    STRATA_CHECK(gather != Gather::im2col || sizeof(T) == 2,
                 "cuda::Engine: layer '" << op.label << "': im2col + GEMM runs 16-bit storage only");
    STRATA_CHECK(!prologue_.launch || (scratch > 0 && !strided_ && gather == Gather::subsample),
                 "cuda::Engine: layer '" << op.label << "': a matmul's prologue writes its whole input "
                                            "into a scratch of its own, and is given none");
    STRATA_CHECK(ldd == 0 || (ldd >= mp && !strided_ && gather != Gather::gate && io.z == nullptr),
                 "cuda::Engine: layer '" << op.label << "': a matmul's result spaced " << ldd
                                         << " elements a column holds " << mp << " rows, one matmul, no residual");
    tf32_ = !is_16bit(P) && lib.tf32;  // (f32 with TF32 allowed, and tf32)
    mm_ = MatmulDesc::create(tf32_);
    mm_.set(CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
    mm_.set(CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
    const bool relu = op.act.kind == Act::relu;
    act_after_ = !relu && op.act.kind != Act::none;
    bias_ = w.bias.get() != nullptr;
    mm_.set(CUBLASLT_MATMUL_DESC_EPILOGUE, relu ? (bias_ ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                                                : (bias_ ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT));
    if (bias_) {
      mm_.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, w.bias.get());
      mm_.set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, cublas_type(P));
    }
    a_ = MatrixLayout::create(P, static_cast<std::uint64_t>(kin), static_cast<std::uint64_t>(mp), kin);
    b_ = MatrixLayout::create(P, static_cast<std::uint64_t>(kin), static_cast<std::uint64_t>(cols),
                              strided_ ? strided.ld : kin);
    spaced_ = ldd > 0;
    d_ = MatrixLayout::create(P, static_cast<std::uint64_t>(mp), static_cast<std::uint64_t>(cols), spaced_ ? ldd : mp);
    if (strided_) {
      a_.set_batch(strided.count, 0);
      b_.set_batch(strided.count, strided.stride_b);
      d_.set_batch(strided.count, strided.stride_d);
    }
    if (gather == Gather::gate) {  // a matmul an image, each with its own scaled weights
      STRATA_CHECK(sizeof(T) == 2 && op.gate && !strided_,
                   "cuda::Engine: layer '" << op.label << "': the gate folded into the weights "
                                              "runs a 16-bit 1x1 conv with a folded gate, a "
                                              "matmul an image");
      a_.set_batch(batch, std::int64_t{kin} * mp);
      b_.set_batch(batch, cols * kin);
      d_.set_batch(batch, cols * mp);
    }
    // The operands' alignments as launch() will pass them (lt_alignments), where cuBLASLt's
    // heuristic otherwise assumes 256 bytes and may pick an algorithm that needs it.
    const MatmulPreference pref = MatmulPreference::create();
    pref.set_max_workspace(lt_workspace);
    {
      const LtAlignments al =
          lt_alignments(sizeof(T), w.weight.get(), gather == Gather::gate ? io.gate_x : io.x, io.z, io.y,
                        scratch > 0 && gather != Gather::gate, gather == Gather::gate, strided, kin, mp, cols);
      pref.set_alignments(al.a, al.b, al.c, al.d);
    }
    std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<std::size_t>(algo_index) + 1);
    int count = 0;
    STRATA_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lib.lt, mm_.get(), a_.get(), b_.get(),
                                                       d_.get(), d_.get(), pref.get(),
                                                       algo_index + 1, results.data(), &count));
    STRATA_CHECK(count > algo_index, "cuBLASLt has no algorithm "
                                         << (algo_index > 0 ? "number " + std::to_string(algo_index) + " " : "")
                                         << "for layer '" << op.label << "' with " << cols
                                         << " columns (its heuristic gave " << count << ")");
    algo_ = results[static_cast<std::size_t>(algo_index)].algo;
    algo_index_ = algo_index;
  }

  [[nodiscard]] std::size_t workspace_bytes() const override { return lt_workspace + scratch_; }
  [[nodiscard]] std::string describe() const override {
    const bool im2col = scratch_ > 0 && gather_ == Gather::im2col && !prologue_.launch;
    const bool gate = gather_ == Gather::gate;
    std::string s = prologue_.launch ? prologue_.describe + " + " : std::string();
    s += op_.kind != OpKind::conv ? "cublasLtMatmul (dense"
                    : im2col ? "strata im2col + cublasLtMatmul (" + std::to_string(op_.conv.kh) + "x" +
                                   std::to_string(op_.conv.kw) + " conv as one GEMM"
                    : gate ? "strata gate_weights (the gate folded into the weights, per image) + "
                             "cublasLtMatmul (1x1 conv as a GEMM an image"
                             : "cublasLtMatmul (1x1 conv as GEMM";
    s += im2col || gate || prologue_.launch ? "" : scratch_ > 0 ? ", subsampled input" : strided_ ? ", strided input read in place: a matmul a row" : "";
    if (algo_index_ > 0) {
      s += ", heuristic's algorithm " + std::to_string(algo_index_);
    }
    s += op_.act.kind == Act::relu ? (bias_ ? ", epilogue RELU_BIAS" : ", epilogue RELU")
                                   : (bias_ ? ", epilogue BIAS" : "");
    if (spaced_ && op_.slice) {
      s += ", writing channels " + std::to_string(op_.slice->c0) + ".." +
           std::to_string(op_.slice->c0 + op_.conv.k - 1) + " of a concat";
    }
    s += tf32_ ? ", TF32)" : ")";
    if (act_after_) {
      s += " + strata pointwise";
    }
    return s;
  }

  void launch(cudaStream_t s, void* ws, std::size_t ws_bytes) override {
    STRATA_CHECK(ws_bytes >= workspace_bytes(), "cuda::Engine: layer '" << op_.label << "': its matmul needs a "
                                                    "workspace of " << workspace_bytes() << " bytes, and was given "
                                                    << ws_bytes);
    const T* src = static_cast<const T*>(io_.x);
    const void* weights = w_.weight.get();
    if (prologue_.launch) {  // the matmul's input, written by the prologue
      void* scratch = static_cast<std::uint8_t*>(ws) + lt_workspace;
      prologue_.launch(s, scratch);
      src = static_cast<const T*>(scratch);
    } else if (gather_ == Gather::gate) {  // the weights scaled by each image's gate, then the matmuls
      if constexpr (sizeof(T) == 2) {
        const ConvGeom& cg = op_.conv;
        T* scaled = reinterpret_cast<T*>(static_cast<std::uint8_t*>(ws) + lt_workspace);
        kernels::gate_weights<T>(w_.weight.template as<const T>(), static_cast<const T*>(io_.gate),
                                 scaled, batch_, cg.c, cg.cp, cg.kp, s);
        weights = scaled;
        src = static_cast<const T*>(io_.gate_x);
      }
    } else if (scratch_ > 0) {  // a strided 1×1 conv's input pixels, or a conv's im2col, gathered first
      const ConvGeom& cg = op_.conv;
      T* scratch = reinterpret_cast<T*>(static_cast<std::uint8_t*>(ws) + lt_workspace);
      if (gather_ == Gather::im2col) {
        if constexpr (sizeof(T) == 2) {  // (lt_im2col: 16-bit only)
          kernels::im2col<T>(src, scratch, batch_, cg.h, cg.w, cg.cp, cg.oh, cg.ow, cg.kh, cg.kw,
                             cg.sh, cg.sw, cg.ph, cg.pw, cg.dh, cg.dw, s);
        }
      } else {
        kernels::subsample<T>(src, scratch, batch_, cg.h, cg.w, cg.cp, cg.oh, cg.ow, cg.sh,
                              cg.sw, s);
      }
      src = scratch;
    }
    const float one = 1.0f;
    const float beta = io_.z != nullptr ? 1.0f : 0.0f;
    const void* c = io_.z != nullptr ? io_.z : io_.y;
    STRATA_CUBLAS_CHECK(cublasLtMatmul(lib_.lt, mm_.get(), &one, weights, a_.get(), src,
                                       b_.get(), &beta, c, d_.get(), io_.y, d_.get(), &algo_, ws,
                                       lt_workspace, s));
    if (act_after_) {
      T* y = static_cast<T*>(io_.y);
      kernels::pointwise<T>(y, nullptr, y, nullptr, nullptr, op_.act, act_total_, op_.out_cp,
                            act_hw_, op_.out_shape.c, nhwc, s);
    }
  }

 private:
  OpDesc op_;
  const OpWeights& w_;
  OpIo io_;
  Libraries lib_;
  int batch_;
  std::int64_t act_total_;
  int act_hw_;
  std::size_t scratch_;
  bool strided_ = false;
  Gather gather_ = Gather::subsample;
  int algo_index_ = 0;
  LtPrologue prologue_;
  bool act_after_ = false;
  bool tf32_ = false;
  bool bias_ = true;
  bool spaced_ = false;  ///< D's columns ldd apart (a concat's slice)
  MatmulDesc mm_;
  MatrixLayout a_, b_, d_;
  cublasLtMatmulAlgo_t algo_{};
};

/// `lt_dense`: every dense layer.
template <DType P>
class LtDense final : public Tactic<P> {
 public:
  [[nodiscard]] std::string_view name() const override { return "lt_dense"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::dense;
  }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int, std::size_t,
                                               const Libraries&) const override {
    // (with a folded global average pool: two kernels, the pool's and the GEMM — so at a
    // library's rank, below any tailored kernel that would run the op as one)
    return Claim{{std::string(name())}, op.gap ? rank::library : rank::only};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries& lib) const override {
    return std::make_unique<LtMatmulStep<P>>(op, w, io, lib, batch, op.dense_kin, op.out_cp, batch,
                                             static_cast<std::int64_t>(batch) * op.out_cp, 1, 0);
  }
};

/// `lt_conv1x1`: a 1×1 convolution over NHWC storage (16-bit, and tf32 on TF32 tensor cores)
/// with no padding and one group, packed channels.
template <DType P>
class LtConv1x1 final : public Tactic<P> {
 public:
  [[nodiscard]] std::string_view name() const override { return "lt_conv1x1"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    const ConvGeom& cg = op.conv;
    return storage_layout(P) == Layout::nhwc && op.kind == OpKind::conv && cg.kh == 1 &&
           cg.kw == 1 && cg.ph == 0 && cg.pw == 0 && cg.groups == 1 && !cg.s2d && cg.packed;
  }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t ws_limit,
                                               const Libraries&) const override {
    // A strided one at batch 1 reads its input in place (algo 1): ResNet-18's three stride-2
    // downsamples at batch 1 took 3.4-3.9 µs so against 4.7-5.2 subsampled first (H200,
    // session 20, measured tuning's trials).
    // A folded channel gate (OpDesc::gate) goes into the weights, per image (algo 2), where an
    // image's scaled weights are no larger than its product (output slots ≤ pixels): the
    // product, written and read by the multiply, is then never stored, and the scaled weights
    // fit the workspace: on an H200 at batch 256 (session 24) EfficientNet-B0's eleven such
    // projections with their multiplies took 1,166 µs as two steps, 695 as one.
    // Where the subsampled input does not fit the workspace left (a smaller batch of an engine
    // whose plan at its largest batch gave the op to another tactic), in place when it can be.
    const bool gated = gate_pays(op) && lt_workspace + gate_scratch(op.conv, batch) <= ws_limit;
    const bool subsampled_fits = lt_workspace + scratch(op.conv, batch) <= ws_limit;
    Claim c;
    c.rank = rank::special;
    c.variant.tactic = std::string(name());
    c.variant.algo = gated ? 2 : (batch == 1 || !subsampled_fits) && in_place(op.conv) ? 1 : 0;
    return c;
  }
  /// algo 2 runs the op's folded gate itself.
  [[nodiscard]] bool fuses_gate(const Variant& v) const override { return v.algo == 2; }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t ws_limit,
                                                const Libraries&) const override {
    // algo 0: one matmul (a strided conv's input subsampled first); algo 1 (strided, H = sh·OH):
    // a matmul a row of output pixels reading the input in place.
    // algo 2 (a folded gate): the weights scaled per image, a matmul an image.
    // (math m: the m-th of cuBLASLt's heuristic's algorithms for algo 0's matmul, m < lt_algos)
    std::vector<Variant> v;
    if (lt_workspace + scratch(op.conv, batch) <= ws_limit) {
      for (int m = 0; m < lt_algos; ++m) {
        v.push_back(Variant{std::string(name()), 0, m});
      }
    }
    if (in_place(op.conv) && lt_workspace <= ws_limit) {
      v.push_back(Variant{std::string(name()), 1});
    }
    if (gate_runs(op) && lt_workspace + gate_scratch(op.conv, batch) <= ws_limit) {
      v.push_back(Variant{std::string(name()), 2});
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries& lib) const override {
    const ConvGeom& cg = op.conv;
    STRATA_CHECK(v.algo >= 0 && v.algo <= 2,
                 "cuda::Engine: layer '" << op.label << "': lt_conv1x1 has no algo " << v.algo << " (0-2)");
    STRATA_CHECK(v.math >= 0 && v.math < lt_algos && (v.math == 0 || v.algo == 0),
                 "cuda::Engine: layer '" << op.label << "': lt_conv1x1 has no math " << v.math
                                         << (v.algo == 0 ? "" : " with algo " + std::to_string(v.algo))
                                         << " (algo 0: 0-" << lt_algos - 1 << ", cuBLASLt's heuristic's "
                                            "algorithms in its order; otherwise 0)");
    const std::int64_t pixels = static_cast<std::int64_t>(batch) * cg.oh * cg.ow;
    if (v.algo == 2) {
      STRATA_CHECK(gate_runs(op), "cuda::Engine: layer '"
                                      << op.label
                                      << "': lt_conv1x1 algo 2 folds a channel gate into a 16-bit "
                                         "1x1 conv of stride 1, and this op has none");
      return std::make_unique<LtMatmulStep<P>>(op, w, io, lib, batch, cg.cp, cg.kp,
                                               std::int64_t{cg.oh} * cg.ow, pixels * cg.kp,
                                               cg.oh * cg.ow, gate_scratch(cg, batch),
                                               StridedColumns{}, Gather::gate);
    }
    STRATA_CHECK(v.algo == 0 || in_place(cg),
                 "cuda::Engine: layer '" << op.label << "': lt_conv1x1 algo 1 reads a strided conv's "
                                            "input in place, and this conv is not one whose input "
                                            "rows are its stride apart (H = stride x output rows)");
    if (v.algo == 1) {
      const StridedColumns sc{batch * cg.oh, std::int64_t{cg.sw} * cg.cp,
                              std::int64_t{cg.sh} * cg.w * cg.cp, std::int64_t{cg.ow} * cg.kp};
      return std::make_unique<LtMatmulStep<P>>(op, w, io, lib, batch, cg.cp, cg.kp, cg.ow,
                                               pixels * cg.kp, cg.oh * cg.ow, 0, sc);
    }
    return std::make_unique<LtMatmulStep<P>>(op, w, io, lib, batch, cg.cp, cg.kp, pixels,
                                             pixels * cg.kp, cg.oh * cg.ow, scratch(cg, batch),
                                             StridedColumns{}, Gather::subsample, v.math);
  }
  /// How many of cuBLASLt's heuristic's algorithms measured tuning times for algo 0's matmul
  /// (math 0 to lt_algos - 1; the heuristic takes the first). cuBLASLt's first is not always its
  /// fastest: ResNet-50's layer2.0.conv1 (a 1×1 conv, 256 → 128 slots at 56×56) at batch 256 took
  /// 214 µs on it, cuDNN's implicit GEMM 172 (H200, session 45).
  static constexpr int lt_algos = 4;

 private:
  /// Bytes of the subsampled input of a strided 1×1 conv at `batch` (0 when not strided).
  static std::size_t scratch(const ConvGeom& cg, int batch) {
    if (cg.sh == 1 && cg.sw == 1) {
      return 0;
    }
    return static_cast<std::size_t>(batch) * cg.oh * cg.ow * cg.cp * sizeof(storage_t<P>);
  }
  /// Whether algo 2 runs it: a 16-bit conv with a folded gate (fold_gated_convs: 16-bit NHWC,
  /// stride 1, channel slots in 8s).
  static bool gate_runs(const OpDesc& op) { return is_16bit(P) && op.gate.has_value(); }
  /// Whether the heuristic takes algo 2: an image's scaled weights (kp × cp) no larger than the
  /// product the multiply would write and the GEMM read (pixels × cp).
  static bool gate_pays(const OpDesc& op) {
    return gate_runs(op) && op.conv.kp <= op.conv.oh * op.conv.ow;
  }
  /// Bytes of the per-image scaled weights of algo 2 at `batch`.
  static std::size_t gate_scratch(const ConvGeom& cg, int batch) {
    return static_cast<std::size_t>(batch) * cg.kp * cg.cp * sizeof(storage_t<P>);
  }
  /// Whether algo 1 runs it: strided, its output rows sh input rows apart across images too.
  static bool in_place(const ConvGeom& cg) {
    return (cg.sh > 1 || cg.sw > 1) && cg.h == cg.sh * cg.oh && cg.w >= (cg.ow - 1) * cg.sw + 1;
  }
};

/// `lt_im2col`: a 16-bit conv of one group over packed channels, its filter rows the
/// reduction's order (K, kh, kw, C slots), run as Strata's im2col into the scratch and one
/// cuBLASLt GEMM: D (kp × pixels) = W · im2col + bias [+ residual], relu in the epilogue. For
/// small maps (ResNet's layer3/layer4 at batch 1: 196 and 49 pixels), where cuDNN's kernels get a
/// few blocks for a reduction of 2,304–4,608; the variants are cuBLASLt's heuristic algorithms
/// by position (algo 0–3), which may split that reduction. Offered to measured tuning only, up
/// to `max_pixels` output pixels; the heuristic does not claim it.
template <DType P>
class LtIm2col final : public Tactic<P> {
 public:
  /// The most output pixels (batch × OH × OW) it is offered for.
  static constexpr std::int64_t max_pixels = 4096;
  /// cuBLASLt heuristic algorithms offered (by position).
  static constexpr int max_algos = 4;

  [[nodiscard]] std::string_view name() const override { return "lt_im2col"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && gemm_conv(op) && op.conv.kh * op.conv.kw > 1 && !op.conv.s2d;
  }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc&, int, std::size_t,
                                               const Libraries&) const override {
    return std::nullopt;  // timed only, until measured
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t ws_limit,
                                                const Libraries&) const override {
    std::vector<Variant> v;
    if (pixels(op.conv, batch) <= max_pixels && lt_workspace + scratch(op.conv, batch) <= ws_limit) {
      for (int a = 0; a < max_algos; ++a) {
        v.push_back(Variant{std::string(name()), a});
      }
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries& lib) const override {
    const ConvGeom& cg = op.conv;
    STRATA_CHECK(applicable(op), "cuda::Engine: layer '" << op.label << "': lt_im2col runs a 16-bit "
                                                            "conv of one group over packed channels");
    STRATA_CHECK(v.algo >= 0 && v.algo < max_algos,
                 "cuda::Engine: layer '" << op.label << "': lt_im2col has no algo " << v.algo
                                         << " (0 to " << max_algos - 1 << ")");
    const std::int64_t px = pixels(cg, batch);
    return std::make_unique<LtMatmulStep<P>>(op, w, io, lib, batch, cg.kh * cg.kw * cg.cp, cg.kp, px,
                                             px * cg.kp, cg.oh * cg.ow, scratch(cg, batch),
                                             StridedColumns{}, Gather::im2col, v.algo);
  }

 private:
  static std::int64_t pixels(const ConvGeom& cg, int batch) {
    return static_cast<std::int64_t>(batch) * cg.oh * cg.ow;
  }
  /// Bytes of the im2col matrix at `batch`.
  static std::size_t scratch(const ConvGeom& cg, int batch) {
    return static_cast<std::size_t>(pixels(cg, batch)) * cg.kh * cg.kw * cg.cp * sizeof(storage_t<P>);
  }
};

}  // namespace strata::cuda::tactics
