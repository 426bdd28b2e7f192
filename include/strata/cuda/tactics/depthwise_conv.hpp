#pragma once
/// Tactic `depthwise_conv`: Strata's depthwise kernels for 16-bit NHWC storage (storage.hpp's
/// depthwise_runs says which convs): the producer's deferred activation (defer_activations)
/// applied to the staged input, bias, residual and any activation fused — one pass.
/// Variants: algo 0, a block per 8×8 output tile (kernels::depthwise), claimed up to 2^21
/// output values (a few blocks' worth of work, where cuDNN's kernels and a separate activation
/// pass cost launches and tails); algo 1, persistent blocks over 8×16 tiles with the next
/// tile's patch copied during this one's compute (kernels::depthwise_tiled); algo 2, no staged
/// patch: a thread computes 8 channels of a strip of 4 (stride 1) or 2 (stride 2) output rows
/// from the input rows it loads (kernels::depthwise_rows; 3×3, dilation 1); algo 3, a thread
/// computes 2 channels of a strip of output rows, sliding over 8 output columns with its input
/// window and filters in registers (kernels::depthwise_pairs; 3×3, dilation 1).
/// On an H200 at batch 256 (measured tuning's trials, session 22) algo 3 beat algo 2, the
/// other kernels and cuDNN on every 3×3 stride-1 layer of MobileNetV2 (ReLU6 on load; 1.30-1.76x:
/// 112² × 32 314.9 µs against 410.1, 56² × 144 353.4 against 582.7, 7² × 960 40.9 against cuDNN's
/// 72.0) and EfficientNet-B0 (SiLU on load; 1.40-1.56x: 473.4 against 663.1), and 3 of MobileNetV2's 4
/// stride-2 ones (the 4th, 56² × 144, lost 220.5 to 216.0); with SiLU on load at stride 2 it lost
/// both (787.1 against 765.7, 154.5 against 130.1), and at 5×5 (178-192 registers) it lost to
/// cuDNN on all six of EfficientNet-B0's distinct ones by 1.4-2.5x. The heuristic claims it for 3×3
/// at stride 1, and at stride 2 with none, ReLU or clip on load (3 of 4 won; MobileNetV2's
/// features.4 lost by 2%).
/// Above 2^21 outputs the heuristic took algo 2 (before algo 3, which now takes most of these
/// layers — see above) where the activation applied on load is none,
/// ReLU, clip (ReLU6) or SiLU (hardswish and hardsigmoid on load are compiled in but not yet
/// measured at large sizes: measured tuning offers them): on an H200 at batch 256 it beat
/// the best of cuDNN (with its activation passes), algos 0 and 1 on 9 of MobileNetV2's 10
/// distinct such layers (ReLU6 on load), by 1.04-1.58x (the 10th, a 7x7 map, lost by 5%), and
/// on 5 of EfficientNet-B0's 6 (SiLU on load, through the fast exponential), by 1.07-1.83x (the
/// 6th lost by 4%). Elsewhere algo 1 on input maps of 112x112 or more (it beat cuDNN with its
/// activation pass there), cuDNN on smaller ones (algo 0 measured 2-3x slower than cuDNN at
/// batch 256, algo 1 up to 1.7x slower on 7x7 maps).
/// Measured tuning times all of them against cuDNN. Since session 23 the 5×5 convs, and since
/// session 24 the 3×3 ones with none, ReLU, ReLU6 or SiLU on load, go to the `depthwise_band`
/// tactic (tactics/band_depthwise.hpp), whose claim wins the tie at every batch: these claims
/// stand for the other activations on load, and where the band kernel does not fit.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"

namespace strata::cuda::tactics {

template <DType P>
class DepthwiseConv final : public Tactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "depthwise_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && depthwise_runs(op);
  }
  [[nodiscard]] bool reads_input_act() const override { return true; }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    const ConvGeom& cg = op.conv;
    const bool small =
        static_cast<std::int64_t>(batch) * cg.oh * cg.ow * cg.kp <= (std::int64_t{1} << 21);
    if (small) {
      return Claim{{std::string(name())}, rank::tailored};
    }
    // Large: the strip kernel where the activation on load is one it was measured with (none,
    // ReLU, clip, SiLU); else the tiled kernel where it beat cuDNN (+ the activation pass), input
    // maps of 112x112 and more; cuDNN elsewhere (docs/cuda_backend.md, "Depthwise convs at
    // batch 256").
    const Act on_load = op.in_act.kind;
    const bool packed = on_load == Act::none || on_load == Act::relu || on_load == Act::clip;
    // The channel-pair kernel for 3x3 taps at stride 1, and at stride 2 where the activation on
    // load runs on the stored pairs; the strip kernel for the other 3x3 stride-2 ones (see the
    // file comment for the measurements).
    if (cg.kh == 3 && (cg.sh == 1 ? packed || on_load == Act::silu : packed) &&
        kernels::depthwise_pairs_fits(shape(op, batch), on_load)) {
      return Claim{{std::string(name()), 3}, rank::tailored};
    }
    if ((packed || on_load == Act::silu) &&
        kernels::depthwise_rows_fits(shape(op, batch), on_load)) {
      return Claim{{std::string(name()), 2}, rank::tailored};
    }
    return tiled_fits(op) && static_cast<std::int64_t>(cg.h) * cg.w >= tiled_claim_pixels
               ? Claim{{std::string(name()), 1}, rank::tailored}
               : Claim{{std::string(name())}, rank::fallback};
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int, std::size_t,
                                                const Libraries&) const override {
    std::vector<Variant> v{{std::string(name())}};
    if (tiled_fits(op)) {
      v.push_back({std::string(name()), 1});
    }
    if (kernels::depthwise_rows_fits(shape(op, 1), op.in_act.kind)) {
      v.push_back({std::string(name()), 2});
    }
    if (kernels::depthwise_pairs_fits(shape(op, 1), op.in_act.kind)) {
      v.push_back({std::string(name()), 3});
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    return std::make_unique<DepthwiseStep>(op, w, io, batch, v.algo);
  }

 private:
  /// Input pixels from which the heuristic takes the tiled kernel over cuDNN at large sizes.
  static constexpr std::int64_t tiled_claim_pixels = 112 * 112;
  /// The kernels' shape of conv `op` at batch `batch`.
  [[nodiscard]] static kernels::ConvShape shape(const OpDesc& op, int batch) {
    const ConvGeom& cg = op.conv;
    return {batch, cg.cp, cg.h,  cg.w,  cg.k,  cg.kd, cg.kp,     cg.oh,  cg.ow, cg.kh,
            cg.kw, cg.sh, cg.sw, cg.ph, cg.pw, cg.dh, cg.dw, cg.groups, cg.fcg, 1};
  }
  /// The tiled kernel's two patches and filters within 96 KiB (two blocks an SM) and within what
  /// the current device lets a block have (assumed where no device answers).
  [[nodiscard]] static bool tiled_fits(const OpDesc& op) {
    const std::size_t shared = kernels::depthwise_tiled_shared(shape(op, 1));
    const std::optional<int> optin = kernels::device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
    return shared <= (96u << 10) && (!optin || shared <= static_cast<std::size_t>(*optin));
  }

  class DepthwiseStep final : public Step {
   public:
    DepthwiseStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int batch, int algo)
        : in_act_(op.in_act), act_(op.act), w_(w), io_(io), shape_(shape(op, batch)),
          algo_(algo >= 1 && algo <= 3 ? algo : 0) {
      const ConvGeom& cg = op.conv;
      // The kernel resolved here, outside any graph capture (the first one compiles or reads the
      // depthwise library).
      if (algo_ == 3) {
        pairs_launch_ = kernels::depthwise_pairs_launch<T>(shape_, in_act_.kind);
      } else if (algo_ == 2) {
        rows_launch_ = kernels::depthwise_rows_launch<T>(shape_, in_act_.kind);
      } else if (algo_ == 1) {
        // As many blocks as are resident at once, a multiple of the channel chunks (a block
        // keeps one chunk: blockIdx % chunks).
        kernel_ = kernels::depthwise_tiled_kernel<T>(shape_);
        const std::int64_t chunks = kernels::depthwise_tiled_chunks(shape_);
        launch_ = generated::persistent_launch(kernel_, generated::device_sms(), 256,
                                               kernels::depthwise_tiled_shared(shape_),
                                               kernels::depthwise_tiled_tiles(shape_) * chunks);
        launch_.grid = static_cast<unsigned>(std::max<std::int64_t>(launch_.grid / chunks, 1) * chunks);
      } else {
        kernel_ = kernels::depthwise_kernel<T>(shape_);
      }
      describe_ = "strata depthwise " + std::to_string(cg.kh) + "x" + std::to_string(cg.kw) +
                  (cg.sh > 1 ? " stride " + std::to_string(cg.sh) : std::string()) + " (" +
                  (op.in_act.kind != Act::none ? "the producer's activation on load, " : "") +
                  "bias" + (op.has_residual ? ", add" : "") + ", act fused" +
                  (algo_ == 1 ? "; persistent blocks, tiles of 8x16 pixels, the next one's input "
                                "copied during this one"
                              : "") +
                  (algo_ == 2 ? "; strips of " + std::to_string(kernels::depthwise_rows_strip(shape_)) +
                                    " output rows a thread, read straight from memory"
                              : std::string()) +
                  (algo_ == 3 ? "; channel pairs, strips of " +
                                    std::to_string(kernels::depthwise_pairs_strip(shape_)) +
                                    " output rows a thread sliding over 8 columns, window and "
                                    "filters in registers"
                              : std::string()) +
                  ")";
    }
    [[nodiscard]] std::string describe() const override { return describe_; }
    void launch(cudaStream_t s, void*, std::size_t) override {
      const T* x = static_cast<const T*>(io_.x);
      const T* z = static_cast<const T*>(io_.z);
      T* y = static_cast<T*>(io_.y);
      const T* wt = w_.weight.template as<const T>();
      const float* bias = w_.bias_f32.template as<const float>();
      if (algo_ == 3) {
        kernels::depthwise_pairs<T>(pairs_launch_, x, wt, bias, z, y, shape_, in_act_, act_, s);
      } else if (algo_ == 2) {
        kernels::depthwise_rows<T>(rows_launch_, x, wt, bias, z, y, shape_, in_act_, act_, s);
      } else if (algo_ == 1) {
        kernels::depthwise_tiled<T>(kernel_, launch_.grid, launch_.shared, x, wt, bias, z, y,
                                    shape_, in_act_, act_, s);
      } else {
        kernels::depthwise<T>(kernel_, x, wt, bias, z, y, shape_, in_act_, act_, s);
      }
    }

   private:
    ActDesc in_act_;
    ActDesc act_;
    const OpWeights& w_;
    OpIo io_;
    kernels::ConvShape shape_{};
    int algo_ = 0;  ///< 0 block per tile, 1 tiled persistent, 2 strips of rows, 3 channel pairs
    cudaKernel_t kernel_ = nullptr;      ///< algo 0's or 1's kernel
    generated::Launch launch_{};         ///< algo 1's launch
    kernels::RowsLaunch rows_launch_{};  ///< algo 2's kernel and launch
    kernels::PairsLaunch pairs_launch_{};  ///< algo 3's kernel and launch
    std::string describe_;
  };
};

}  // namespace strata::cuda::tactics
