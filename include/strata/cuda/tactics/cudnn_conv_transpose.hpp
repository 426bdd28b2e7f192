#pragma once
/// Tactic `cudnn_conv_transpose`: nn.ConvTranspose2d as cuDNN's backward-data convolution — the
/// transposed convolution of input x with PyTorch's weight (C, O/g, kh, kw) is the gradient,
/// with respect to its input, of the forward convolution (cross-correlation) whose filter that
/// weight is (K = C output channels, O/g input channels a group), so cudnnConvolutionBackwardData
/// with dy = x computes it on cuDNN's kernels (tensor cores in 16-bit and TF32); then Strata's
/// pointwise epilogue adds the bias (a folded batch norm's too) and the residual, applies the
/// activation and writes the padding slots as 0. Variants: algo 0, cuDNN's own first choice
/// among those that fit the workspace (as its heuristic ranks them at prepare); algo a ≥ 1,
/// cudnnConvolutionBwdDataAlgo_t a − 1; math, cuDNN's math type (f32 uses FMA math unless the
/// context allows TF32, as cudnn_conv).
///
/// Where it applies: a transposed conv whose output size the forward convolution maps back onto
/// the input's (output_padding < stride in each dimension: cuDNN derives the sizes from the
/// forward direction); in NHWC (16-bit, TF32) one whose channels fill their slots, or of one
/// group: cuDNN lists no algorithm for NHWC tensors whose channel stride exceeds their channels
/// (as cudnn_conv found for forward convs), so the tensors are described with their padded slots
/// as channels and the filter padded with zeros — the input's padding slots hold 0, as every
/// producer writes them, and the output's come out 0. An output that is a concat's slice is
/// written to the staging area and copied (prepare_step; conv_transpose_direct writes slices
/// itself). Its filter is a copy of the op's weights made at prepare, laid out as the forward
/// convolution's ((C, kh, kw, O/g) NHWC, (C, O/g, kh, kw) NCHW in f32).
///
/// Why: conv_transpose_direct gathers with one thread an output element, in f32 FMAs, reading
/// its input channels one by one — correct for every option, slow for a U-Net's large up-convs.
/// Written in session 47; claimed by the heuristic wherever it applies since session 48 (measured
/// on an H100: see heuristic()), offered to measured tuning and forceable. The
/// filter copy is per prepared step (each plan's, each tuning candidate's): for a U-Net's
/// up-convs tens of kilobytes to a few megabytes, not counted in the engine's weight bytes.
#include <cudnn.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/cudnn.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/layers/layer.hpp"

namespace strata::cuda::tactics {

/// Whether the forward convolution of a conv_transpose's output (padding, stride, dilation as
/// declared) has the transposed conv's input size in both dimensions — what cuDNN's
/// backward-data descriptors must satisfy (PyTorch: output_padding < stride).
[[nodiscard]] inline bool conv_transpose_inverts(const OpDesc& op) {
  if (op.kind != OpKind::conv_transpose) {
    return false;
  }
  const LayerDesc& d = op.layer;
  return window_out(op.out_shape.h, d.kernel.h, d.stride.h, d.padding.h, d.dilation.h, false) ==
             op.in_shape.h &&
         window_out(op.out_shape.w, d.kernel.w, d.stride.w, d.padding.w, d.dilation.w, false) ==
             op.in_shape.w;
}

template <DType P>
class CudnnConvTranspose final : public Tactic<P> {
  using T = storage_t<P>;
  static constexpr bool nhwc = storage_layout(P) == Layout::nhwc;

 public:
  [[nodiscard]] std::string_view name() const override { return "cudnn_conv_transpose"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return conv_transpose_inverts(op) && (!nhwc || op.layer.groups == 1 || packed(op));
  }
  /// Claimed where it applies, as cuDNN's own first choice at prepare (algo 0): on an H100
  /// (session 48) the U-Net case's three transposed convs took 27–49 µs at batch 256 where
  /// conv_transpose_direct took 2,150–2,221 each (the network 7,242 → 903 µs), and 9.5–15.2
  /// against 12.4–20.9 at batch 1 (131.8 → 113.3). conv_transpose_direct keeps the others.
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc&, int, std::size_t,
                                               const Libraries&) const override {
    return Claim{{std::string(name()), 0, 0, 0}, rank::library};
  }
  /// Every algorithm cuDNN's heuristic lists as runnable within the limit (none where cuDNN
  /// refuses the descriptors: measured tuning then times the direct kernel alone).
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t ws_limit,
                                                const Libraries& lib) const override {
    std::vector<Variant> out;
    for (const auto& perf : ranked(op, batch, lib, ws_limit)) {
      out.push_back({std::string(name()), static_cast<int>(perf.algo) + 1,
                     static_cast<int>(perf.mathType), 0});
    }
    return out;
  }

  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries& lib) const override {
    auto s = std::make_unique<DeconvStep>(op, w, io, lib, batch);
    if (v.algo <= 0) {  // cuDNN's own first choice
      // (no plan's workspace limit here, as cudnn_conv's forced variants have none)
      const auto r = ranked(op, batch, lib, std::size_t{1} << 30);
      STRATA_CHECK(!r.empty(), "cudnn_conv_transpose: cuDNN lists no backward-data algorithm for '"
                                   << op.label << "' at batch " << batch);
      s->algo = r.front().algo;
      s->math = cudnn_math_for(P, static_cast<int>(r.front().mathType), lib.tf32);
    } else {
      s->algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(v.algo - 1);
      s->math = cudnn_math_for(P, v.math, lib.tf32);
    }
    s->d = describe(op, batch, s->math);
    STRATA_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        lib.cudnn, s->d.w.get(), s->d.dy.get(), s->d.conv.get(), s->d.dx.get(), s->algo,
        &s->workspace));
    s->filter = forward_filter(op, w);
    return s;
  }

 private:
  /// cuDNN's descriptors: dy is the transposed conv's input, dx its output.
  struct Descs {
    TensorDesc dy, dx;
    FilterDesc w;
    ConvDesc conv;
  };

  struct DeconvStep final : Step {
    DeconvStep(const OpDesc& op, const OpWeights& w, const OpIo& io, const Libraries& lib,
               int batch)
        : op_(op), w_(w), io_(io), lib_(lib), batch_(batch) {}

    [[nodiscard]] std::size_t workspace_bytes() const override { return workspace; }
    [[nodiscard]] std::string describe() const override {
      std::ostringstream os;  // (cuDNN's own number: the variant's algo is one more)
      os << "cudnnConvolutionBackwardData, cuDNN algorithm " << static_cast<int>(algo)
         << (needs_epilogue() ? " + strata pointwise (bias, act)" : "");
      if (!is_16bit(P) && math != CUDNN_FMA_MATH) {
        os << " (TF32 allowed)";
      }
      return os.str();
    }
    void launch(cudaStream_t s, void* ws, std::size_t ws_bytes) override {
      const float one = 1.0f;
      const float zero = 0.0f;
      T* y = static_cast<T*>(io_.y);
      const cudnnStatus_t st = cudnnConvolutionBackwardData(
          lib_.cudnn, &one, d.w.get(), filter.get(), d.dy.get(), io_.x, d.conv.get(), algo, ws,
          ws_bytes, &zero, d.dx.get(), y);
      if (st != CUDNN_STATUS_SUCCESS) {
        detail::throw_call_error("cuDNN", "cudnnConvolutionBackwardData", STRATA_HERE,
                                 static_cast<long>(st), detail::cudnn_message(st));
      }
      if (needs_epilogue()) {
        const Shape os = op_.out_shape;
        const std::int64_t total = static_cast<std::int64_t>(batch_) * op_.out_cp * os.h * os.w;
        kernels::pointwise<T>(y, static_cast<const T*>(io_.z), y, nullptr,
                              w_.bias_f32.template as<const float>(), op_.act, total, op_.out_cp,
                              os.h * os.w, os.c, nhwc, s);
      }
    }
    /// A bias, a residual, an activation, or padding slots cuDNN does not write.
    [[nodiscard]] bool needs_epilogue() const {
      return op_.has_bias || io_.z != nullptr || op_.act.kind != Act::none ||
             op_.out_shape.c != op_.out_cp;
    }

    OpDesc op_;
    const OpWeights& w_;
    OpIo io_;
    Libraries lib_;
    int batch_;
    Descs d;
    DeviceBuffer filter;  ///< the forward convolution's filter (forward_filter)
    cudnnConvolutionBwdDataAlgo_t algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
    std::size_t workspace = 0;
  };

  /// Whether the op's channels fill their slots (NHWC: multiples of 8; NCHW: always).
  static bool packed(const OpDesc& op) {
    return op.in_cp == op.in_shape.c && op.out_cp == op.out_shape.c;
  }
  /// The channels the descriptors give the input and output: the real ones where they fill
  /// their slots (or in NCHW), else (NHWC, one group) the slots, the filter padded to match.
  static int dy_channels(const OpDesc& op) {
    return nhwc && !packed(op) ? op.in_cp : op.in_shape.c;
  }
  static int dx_channels(const OpDesc& op) {
    return nhwc && !packed(op) ? op.out_cp : op.out_shape.c;
  }

  static Descs describe(const OpDesc& op, int batch, cudnnMathType_t math) {
    const Shape is = op.in_shape;
    const Shape os = op.out_shape;
    const LayerDesc& l = op.layer;
    Descs s;
    s.dy = TensorDesc::create();
    s.dx = TensorDesc::create();
    s.w = FilterDesc::create();
    s.conv = ConvDesc::create();
    const int yc = dy_channels(op);
    const int xc = dx_channels(op);
    if (nhwc) {  // packed: the slots as channels (dy_channels)
      s.dy.set(P, batch, yc, is.h, is.w, op.in_cp * is.h * is.w, 1, is.w * op.in_cp, op.in_cp);
      s.dx.set(P, batch, xc, os.h, os.w, op.out_cp * os.h * os.w, 1, os.w * op.out_cp,
               op.out_cp);
      s.w.set(P, CUDNN_TENSOR_NHWC, yc, xc / l.groups, l.kernel.h, l.kernel.w);
    } else {
      s.dy.set(P, batch, is.c, is.h, is.w, op.in_cp * is.h * is.w, is.h * is.w, is.w, 1);
      s.dx.set(P, batch, os.c, os.h, os.w, op.out_cp * os.h * os.w, os.h * os.w, os.w, 1);
      s.w.set(P, CUDNN_TENSOR_NCHW, is.c, os.c / l.groups, l.kernel.h, l.kernel.w);
    }
    s.conv.set(l.padding.h, l.padding.w, l.stride.h, l.stride.w, l.dilation.h, l.dilation.w,
               l.groups, math);
    return s;
  }

  /// cuDNN's heuristic list for op at batch, keeping what may run here within ws_limit.
  static std::vector<cudnnConvolutionBwdDataAlgoPerf_t> ranked(const OpDesc& op, int batch,
                                                               const Libraries& lib,
                                                               std::size_t ws_limit) {
    const Descs s = describe(op, batch, cudnn_math_for(P, CUDNN_TENSOR_OP_MATH, lib.tf32));
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> out;
    if (cudnnGetConvolutionBackwardDataAlgorithm_v7(
            lib.cudnn, s.w.get(), s.dy.get(), s.conv.get(), s.dx.get(),
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf) != CUDNN_STATUS_SUCCESS) {
      char cleared[256];  // (the refusal, not kept for a later call's message)
      cudnnGetLastErrorString(cleared, sizeof(cleared));
      return out;
    }
    for (int i = 0; i < n; ++i) {
      if (perf[i].status == CUDNN_STATUS_SUCCESS &&
          cudnn_math_ok(P, perf[i].mathType, lib.tf32) && perf[i].memory <= ws_limit) {
        out.push_back(perf[i]);
      }
    }
    return out;
  }

  /// The op's weights as the forward convolution's filter, on the device: read back from the
  /// layout conv_transpose_direct uses ((O, kh, kw, C/g), conv_transpose_weights_stored) and
  /// rearranged element for element (no rounding: the same values in another order), into
  /// (dy_channels, kh, kw, dx_channels / g) NHWC — zeros for padding slots — or
  /// (C, O/g, kh, kw) NCHW.
  static DeviceBuffer forward_filter(const OpDesc& op, const OpWeights& w) {
    const int c = op.in_shape.c;
    const int g = op.layer.groups;
    const int cpg = c / g;
    const int opg = op.out_shape.c / g;
    const int kf = dy_channels(op);           // the filter's rows (K)
    const int cf = dx_channels(op) / g;       // its channels a row (C), the padded opg
    const std::size_t taps = static_cast<std::size_t>(op.layer.kernel.h) * op.layer.kernel.w;
    const std::size_t n = static_cast<std::size_t>(c) * opg * taps;
    STRATA_CHECK(w.weight.bytes() == n * sizeof(T),
                 "cudnn_conv_transpose: '" << op.label << "' has " << w.weight.bytes()
                                           << " bytes of weights, its shape needs "
                                           << n * sizeof(T));
    std::vector<T> stored(n);
    STRATA_CUDA_CHECK(
        cudaMemcpy(stored.data(), w.weight.get(), n * sizeof(T), cudaMemcpyDeviceToHost));
    const std::size_t nf = static_cast<std::size_t>(kf) * cf * taps;
    std::vector<T> f(nf, T{});  // (the padding's zeros: +0.0 in every storage type)
    for (int ci = 0; ci < c; ++ci) {
      const int group = ci / cpg;
      for (int j = 0; j < opg; ++j) {
        const std::size_t o = static_cast<std::size_t>(group) * opg + j;
        for (std::size_t t = 0; t < taps; ++t) {
          const T v = stored[(o * taps + t) * cpg + static_cast<std::size_t>(ci % cpg)];
          f[nhwc ? (static_cast<std::size_t>(ci) * taps + t) * cf + j
                 : (static_cast<std::size_t>(ci) * cf + j) * taps + t] = v;
        }
      }
    }
    return detail::upload(f.data(), nf * sizeof(T));
  }
};

}  // namespace strata::cuda::tactics
