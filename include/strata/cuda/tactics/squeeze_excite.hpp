#pragma once
/// Tactic `squeeze_excite`: a squeeze-excite gate — the global average pool and the two 1×1
/// convs of the pooled vector (fold_squeeze_excite: OpDesc::squeeze; 16-bit NHWC) — as one
/// kernel (kernels::squeeze_excite). Each image's map is pooled by a share of the GPU (blocks
/// over its pixels, partial sums in the step's scratch) or, where the batch fills the GPU, by a
/// block an image; the last block of an image to finish adds the sums up and runs both convs
/// from shared memory, writing the gate. Every intermediate is rounded to the storage type as
/// the three-kernel path stores it.
///
/// Why: EfficientNet-B0 has sixteen such gates. At batch 1 on an H200 (session 26's profile)
/// each took three launches — the pool 5, fc1 3 and fc2 4 µs — for a few thousand
/// multiply-adds: about 200 of the network's 388 µs. At batch 256 the pool's read of the map is
/// the cost (258 µs in all) and the two convs 50 µs more.
#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "strata/cuda/check.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"

namespace strata::cuda::tactics {

/// Whether the kernel runs `op`: a 1×1 conv of a 1×1 map with a folded squeeze-excite gate
/// whose slots fit its shared memory (fold_squeeze_excite checks the same).
[[nodiscard]] inline bool squeeze_excite_fits(const OpDesc& op) {
  if (!op.squeeze || !op.squeeze->gap || !pixel_conv1x1_runs(op) ||
      !pixel_conv1x1_runs(*op.squeeze)) {
    return false;
  }
  const OpDesc& q = *op.squeeze;
  return q.gap->in_cp % 8 == 0 && q.gap->in_cp <= squeeze_excite_max_channels &&
         q.conv.cp == q.gap->in_cp && q.conv.kp % 8 == 0 &&
         q.conv.kp <= squeeze_excite_max_squeezed && op.conv.cp == q.conv.kp &&
         op.conv.kp % 8 == 0;
}

template <DType P>
class SqueezeExcite final : public Tactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "squeeze_excite"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && squeeze_excite_fits(op);
  }
  [[nodiscard]] bool reads_input_act() const override { return true; }
  [[nodiscard]] bool fuses_squeeze(const Variant&) const override { return true; }
  /// Claimed wherever it runs: one launch where the unfused path has three, the same reads of
  /// the map and the weights.
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int, std::size_t,
                                               const Libraries&) const override {
    if (!applicable(op)) {
      return std::nullopt;
    }
    return Claim{{std::string(name())}, rank::joins};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    STRATA_CHECK(applicable(op), "cuda::Engine: layer '"
                                     << op.label << "': squeeze_excite runs a 16-bit 1x1 conv of "
                                                    "a 1x1 map with a folded squeeze-excite gate "
                                                    "(at most "
                                     << squeeze_excite_max_channels << " channels squeezed to "
                                     << squeeze_excite_max_squeezed << ")");
    STRATA_CHECK(v.algo == 0 && v.math == 0 && v.fuse == 0,
                 "cuda::Engine: layer '" << op.label
                                         << "': squeeze_excite has algo, math and fuse 0; not "
                                         << to_string(v));
    STRATA_CHECK(io.squeeze_x != nullptr && io.squeeze_weights != nullptr,
                 "cuda::Engine: layer '" << op.label
                                         << "': squeeze_excite without the map or fc1's weights");
    return std::make_unique<SeStep>(op, batch, w, *io.squeeze_weights,
                                    static_cast<const T*>(io.squeeze_x), static_cast<T*>(io.y));
  }

 private:
  /// The kernel's launch, with the step's own scratch (partial sums, and counters the kernel
  /// leaves zeroed) made here, at preparation. Two launches of one step must not overlap (they
  /// would share the scratch): every plan owns its steps and runs them on one stream.
  class SeStep final : public Step {
   public:
    SeStep(const OpDesc& op, int n, const OpWeights& w2, const OpWeights& w1, const T* x, T* y)
        : x_(x), y_(y), w1_(&w1), w2_(&w2), n_(n) {
      const OpDesc& q = *op.squeeze;
      cp_ = q.gap->in_cp;
      hw_ = q.gap->in_shape.h * q.gap->in_shape.w;
      k1_ = q.conv.k;
      k1p_ = q.conv.kp;
      k2_ = op.conv.k;
      k2p_ = op.conv.kp;
      act1_ = q.act;
      in_act2_ = op.in_act;
      act2_ = op.act;
      int device = 0;
      int sms = 0;
      STRATA_CUDA_CHECK(cudaGetDevice(&device));
      STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
      splits_ = kernels::squeeze_excite_splits(n, hw_, sms);
      if (splits_ > 1) {
        partial_ = DeviceBuffer(static_cast<std::size_t>(n) * splits_ * cp_ * sizeof(float));
        counters_ = zeroed_device_buffer(static_cast<std::size_t>(n) * sizeof(unsigned));
      }
      std::ostringstream what;
      what << "strata squeeze_excite (pool " << q.gap->in_shape.h << "x" << q.gap->in_shape.w
           << "x" << cp_ << ", 1x1 " << cp_ << "->" << k1_ << ", 1x1 " << k1p_ << "->" << k2_
           << " as one kernel"
           << (splits_ > 1 ? ", " + std::to_string(splits_) + " blocks an image" : "") << ")";
      what_ = what.str();
    }
    [[nodiscard]] std::string describe() const override { return what_; }
    void launch(cudaStream_t s, void*, std::size_t) override {
      kernels::squeeze_excite<T>(x_, w1_->weight.template as<const T>(),
                                 w1_->bias_f32.template as<const float>(),
                                 w2_->weight.template as<const T>(),
                                 w2_->bias_f32.template as<const float>(), y_, n_, cp_, hw_, k1_,
                                 k1p_, k2_, k2p_, act1_, in_act2_, act2_, splits_,
                                 partial_.as<float>(), counters_.as<unsigned>(), s);
    }

   private:
    const T* x_;
    T* y_;
    const OpWeights* w1_;
    const OpWeights* w2_;
    int n_ = 0, cp_ = 0, hw_ = 0, k1_ = 0, k1p_ = 0, k2_ = 0, k2p_ = 0;
    ActDesc act1_{}, in_act2_{}, act2_{};
    int splits_ = 1;
    DeviceBuffer partial_;
    DeviceBuffer counters_;
    std::string what_;
  };
};

}  // namespace strata::cuda::tactics
