#pragma once
/// Tactic `cudnn_conv`: a convolution through cuDNN's (legacy) convolution API, either fused —
/// conv + bias + residual + relu as one cudnnConvolutionBiasActivationForward call, where the
/// channels are packed and the activation is relu or none — or the convolution alone followed
/// by Strata's pointwise epilogue (bias, residual, any activation). Variants: cuDNN's
/// algorithm, its math type, fused or not. f32 uses FMA math only, unless the context allows
/// TF32 (EngineOptions::allow_tf32, and always in a tf32 engine, over NHWC).
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
#include "strata/cuda/tactic.hpp"

namespace strata::cuda::tactics {

template <DType P>
class CudnnConv final : public Tactic<P> {
  using T = storage_t<P>;
  static constexpr bool nhwc = storage_layout(P) == Layout::nhwc;

 public:
  [[nodiscard]] std::string_view name() const override { return "cudnn_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::conv;
  }

  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t ws_limit,
                                               const Libraries& lib) const override {
    for (const auto& perf : ranked(op, batch, lib, ws_limit)) {
      return Claim{{std::string(name()), static_cast<int>(perf.algo),
                    static_cast<int>(perf.mathType), fusable(op) ? 1 : 0},
                   rank::library};
    }
    return std::nullopt;
  }

  /// Every algorithm cuDNN can run within the limit, fused (where allowed) and not.
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t ws_limit,
                                                const Libraries& lib) const override {
    std::vector<Variant> out;
    for (const auto& perf : ranked(op, batch, lib, ws_limit)) {
      for (int fuse = fusable(op) ? 1 : 0; fuse >= 0; --fuse) {
        out.push_back({std::string(name()), static_cast<int>(perf.algo),
                       static_cast<int>(perf.mathType), fuse});
      }
    }
    return out;
  }

  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries& lib) const override {
    auto s = std::make_unique<ConvStep>(op, w, io, lib, batch);
    s->math = cudnn_math_for(P, v.math, lib.tf32);
    s->d = describe_conv(op, batch, s->math);
    s->algo = static_cast<cudnnConvolutionFwdAlgo_t>(v.algo);
    s->fused = v.fuse != 0 && fusable(op);
    STRATA_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
        lib.cudnn, s->d.x.get(), s->d.w.get(), s->d.conv.get(), s->d.y.get(), s->algo,
        &s->workspace));
    return s;
  }

 private:
  /// cuDNN's descriptors of one convolution at one batch size.
  struct Descs {
    TensorDesc x, y, bias;
    FilterDesc w;
    ConvDesc conv;
    ActivationDesc act;
  };

  /// The descriptors and the choice for one op at one batch size.
  struct ConvStep final : Step {
    ConvStep(const OpDesc& op, const OpWeights& w, const OpIo& io, const Libraries& lib,
             int batch)
        : op_(op), w_(w), io_(io), lib_(lib), batch_(batch) {}

    [[nodiscard]] std::size_t workspace_bytes() const override { return workspace; }
    [[nodiscard]] bool fell_back() const override { return declined; }
    [[nodiscard]] bool library_fused() const override { return fused; }
    [[nodiscard]] std::string describe() const override {
      std::ostringstream os;
      os << (fused           ? "cudnnConvolutionBiasActivationForward"
             : needs_epilogue() ? "cudnnConvolutionForward + strata pointwise"
                                : "cudnnConvolutionForward")
         << " algo " << static_cast<int>(algo);
      if (!is_16bit(P) && math != CUDNN_FMA_MATH) {
        os << " (TF32 allowed)";
      }
      return os.str();
    }

    void launch(cudaStream_t s, void* ws, std::size_t ws_bytes) override {
      cudnnStatus_t st = call(fused, s, ws, ws_bytes);
      if (st != CUDNN_STATUS_SUCCESS && fused) {
        cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
        STRATA_CUDA_CHECK(cudaStreamIsCapturing(s, &cs));
        if (st != CUDNN_STATUS_NOT_SUPPORTED || cs != cudaStreamCaptureStatusNone) {
          detail::throw_call_error("cuDNN", "cudnnConvolutionBiasActivationForward", STRATA_HERE,
                                   static_cast<long>(st), detail::cudnn_message(st));
        }
        char cleared[256];
        cudnnGetLastErrorString(cleared, sizeof(cleared));
        fused = false;  // cuDNN declined this configuration: conv + Strata's epilogue
        declined = true;
        st = call(false, s, ws, ws_bytes);
      }
      if (st != CUDNN_STATUS_SUCCESS) {
        detail::throw_call_error(
            "cuDNN", fused ? "cudnnConvolutionBiasActivationForward" : "cudnnConvolutionForward",
            STRATA_HERE, static_cast<long>(st), detail::cudnn_message(st));
      }
    }

    /// Fused: conv + bias + z + relu in one call; else conv, then Strata's epilogue (bias + z +
    /// activation). Returns cuDNN's status (launch errors of the epilogue throw).
    cudnnStatus_t call(bool as_fused, cudaStream_t s, void* ws, std::size_t ws_bytes) const {
      const float one = 1.0f;
      const float zero = 0.0f;
      const T* xp = static_cast<const T*>(io_.x);
      const T* zp = static_cast<const T*>(io_.z);
      T* yp = static_cast<T*>(io_.y);
      if (as_fused) {
        const float alpha2 = zp != nullptr ? 1.0f : 0.0f;
        return cudnnConvolutionBiasActivationForward(
            lib_.cudnn, &one, d.x.get(), xp, d.w.get(), w_.weight.get(), d.conv.get(), algo, ws,
            ws_bytes, &alpha2, d.y.get(),
            zp != nullptr ? static_cast<const void*>(zp) : static_cast<const void*>(yp),
            d.bias.get(), w_.bias.get(), d.act.get(), d.y.get(), yp);
      }
      const cudnnStatus_t st =
          cudnnConvolutionForward(lib_.cudnn, &one, d.x.get(), xp, d.w.get(), w_.weight.get(),
                                  d.conv.get(), algo, ws, ws_bytes, &zero, d.y.get(), yp);
      if (st != CUDNN_STATUS_SUCCESS || !needs_epilogue()) {
        return st;
      }
      const ConvGeom& cg = op_.conv;
      const std::int64_t total = static_cast<std::int64_t>(batch_) * cg.kp * cg.oh * cg.ow;
      kernels::pointwise<T>(yp, zp, yp, nullptr, w_.bias_f32.template as<const float>(), op_.act,
                            total, cg.kp, cg.oh * cg.ow, cg.k, nhwc, s);
      return CUDNN_STATUS_SUCCESS;
    }

    /// Whether the unfused form needs Strata's epilogue: a bias, a residual, an activation, or
    /// padding slots cuDNN does not write (k not a whole number of slots).
    [[nodiscard]] bool needs_epilogue() const {
      return op_.has_bias || io_.z != nullptr || op_.act.kind != Act::none || op_.conv.kd != op_.conv.kp;
    }

    OpDesc op_;
    const OpWeights& w_;
    OpIo io_;
    Libraries lib_;
    int batch_;
    Descs d;
    cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
    std::size_t workspace = 0;
    bool fused = false;
    bool declined = false;
  };

  /// Whether cuDNN's fused call can run op: packed channels, and relu (or no activation —
  /// identity is not offered by the legacy call, so relu only).
  static bool fusable(const OpDesc& op) { return op.conv.packed && op.act.kind == Act::relu; }

  static Descs describe_conv(const OpDesc& op, int batch, cudnnMathType_t math) {
    const ConvGeom& cg = op.conv;
    Descs s;
    s.x = TensorDesc::create();
    s.y = TensorDesc::create();
    s.bias = TensorDesc::create();
    s.w = FilterDesc::create();
    s.conv = ConvDesc::create();
    s.act = ActivationDesc::create();
    if (!nhwc) {
      s.x.set(P, batch, cg.c, cg.h, cg.w, cg.c * cg.h * cg.w, cg.h * cg.w, cg.w, 1);
      s.y.set(P, batch, cg.k, cg.oh, cg.ow, cg.k * cg.oh * cg.ow, cg.oh * cg.ow, cg.ow, 1);
      s.w.set(P, CUDNN_TENSOR_NCHW, cg.k, cg.c / cg.groups, cg.kh, cg.kw);
    } else {
      s.x.set(P, batch, cg.xc, cg.h, cg.w, cg.cp * cg.h * cg.w, 1, cg.w * cg.cp, cg.cp);
      // (A concat slice's strides here, to let cuDNN write the slice itself, left its heuristic
      // with no algorithm for a DenseNet layer's 3x3 conv: measured on the H200, 2026-11-30.)
      s.y.set(P, batch, cg.kd, cg.oh, cg.ow, cg.kp * cg.oh * cg.ow, 1, cg.ow * cg.kp, cg.kp);
      s.w.set(P, CUDNN_TENSOR_NHWC, cg.kd, cg.fcg, cg.kh, cg.kw);
    }
    s.bias.set(P, 1, cg.kd, 1, 1, cg.kd, 1, 1, 1);
    s.conv.set(cg.ph, cg.pw, cg.sh, cg.sw, cg.dh, cg.dw, cg.groups, math);
    s.act.set(CUDNN_ACTIVATION_RELU);
    return s;
  }

  /// cuDNN's heuristic list for op at batch, keeping what may run here within ws_limit.
  static std::vector<cudnnConvolutionFwdAlgoPerf_t> ranked(const OpDesc& op, int batch,
                                                           const Libraries& lib,
                                                           std::size_t ws_limit) {
    const Descs s = describe_conv(op, batch, cudnn_math_for(P, CUDNN_TENSOR_OP_MATH, lib.tf32));
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    STRATA_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
        lib.cudnn, s.x.get(), s.w.get(), s.conv.get(), s.y.get(),
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    std::vector<cudnnConvolutionFwdAlgoPerf_t> out;
    for (int i = 0; i < n; ++i) {
      if (perf[i].status == CUDNN_STATUS_SUCCESS &&
          cudnn_math_ok(P, perf[i].mathType, lib.tf32) && perf[i].memory <= ws_limit) {
        out.push_back(perf[i]);
      }
    }
    return out;
  }
};

}  // namespace strata::cuda::tactics
