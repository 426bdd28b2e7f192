#pragma once
/// Tactic `squeeze_excite`: a squeeze-excite gate — the global average pool and the two 1×1
/// convs of the pooled vector (fold_squeeze_excite: OpDesc::squeeze; 16-bit NHWC) — as one
/// kernel (kernels::squeeze_excite). Each image's map is pooled by a share of the GPU (blocks
/// over its pixels, partial sums in the step's scratch) or, where the batch fills the GPU, by a
/// block an image; the last block of an image to finish adds the sums up and runs both convs
/// from shared memory, writing the gate. Every intermediate is rounded to the storage type as
/// the three-kernel path stores it. Algo 1 splits the pool over at most
/// squeeze_excite_most_splits blocks an image and issues the products' loads together (fc1 four
/// rows a warp at once, fc2 two rows a thread and 64 inputs at once): where both forms split the
/// pool alike, the same sums in the same order, equal to the bit.
///
/// Why: EfficientNet-B0 has sixteen such gates. At batch 1 on an H200 (session 26's profile)
/// each took three launches — the pool 5, fc1 3 and fc2 4 µs — for a few thousand
/// multiply-adds: about 200 of the network's 388 µs. At batch 256 the pool's read of the map is
/// the cost (258 µs in all) and the two convs 50 µs more.
///
/// Measured (H200, session 26, heuristic profiles with the kernel claimed everywhere): correct
/// (GPU tests against the CPU); faster than the three kernels on gates up to 480 channels × 20
/// squeezed whose pool takes at most 98 blocks an image (14x14x240 at batch 1: 12.5 -> 7.8 µs;
/// all sixteen of EfficientNet-B0's at batch 256: 515 -> 500 µs), slower on the 672- and
/// 1,152-channel ones (7x7x1152 at batch 1: about 12 -> 22.4 µs — the last block's two products
/// are a chain of L2 latencies, a warp an output of fc1 and a thread an output of fc2) and on
/// 56x56x96 at batch 1 (12.4 -> 31.4: 264 blocks' partial sums): EfficientNet-B0 at batch 1
/// 388 -> 464 µs. So the heuristic claims it where it won (SqueezeExcite::heuristic: EB0 b1 383.5
/// µs, b256 5,032, session 27) and measured tuning times it everywhere. Algo 1 (session 27, all
/// sixteen gates forced): correct, but about 8 µs slower a gate at batch 256 and no faster on the
/// 1,152-channel gates at batch 1 (23.4 µs) — so those gates are not slow for the products' load
/// latencies; forceable only. `math` G (written after session 27's last GPU run): G blocks an
/// image, each pooling the whole map and running fc1, then a share of fc2's outputs; forceable
/// only until timed. After session 27's last GPU run (not run on a GPU; the same sums in the same
/// order): the pooled vector read 16 bytes a lane (fc1's 8-way bank conflicts), the partial sums
/// loaded 8 or 16 splits at once, fc2's weights chunk-major (SeStep's copy) so that its loads
/// coalesce — docs/cuda_backend.md. Algo 2, math 8 or 16 (written then too, forceable only): a
/// thread-block cluster an image, the pool's sums and fc1's outputs shared through distributed
/// shared memory, each block a share of both convs (kernels::squeeze_excite_cluster).
///
/// Session 28 (H200; the changes above GPU-tested first, ctest -L gpu 14/14): all sixteen gates
/// forced, EfficientNet-B0 f16 b1 / b256 µs — the heuristic's plan 408.0 / 5,054.2, algo 0
/// 455.0 / 5,061.2, math 16 446.0 / 6,889.9, algo 2 math 8 **340.5** / 5,400.7, algo 2 math 16
/// 344.7 / 6,196.7. Algo 2 math 8 took 6.2–8.3 µs a gate at batch 1 (the three kernels 8–14) and
/// won every gate up to 32 images (b32 989.0 -> 907.7), was level at 64 and slower at 128 (eight
/// blocks pooling a large map each image): so the heuristic claims it where batch × 8 ≤ 2 × SMs.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/device.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"
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

/// The largest fc1 (channel slots × outputs) the heuristic claims the kernel for.
inline constexpr std::int64_t squeeze_excite_claim_macs = 480 * 20;

/// Algo 1's most blocks an image (algo 0: as many as fill the GPU twice over, 264 on an H200 at
/// batch 1, whose partial sums the last block then adds 264 deep).
inline constexpr int squeeze_excite_most_splits = 64;

/// The most blocks an image `math` may ask for (each pools the whole map and runs fc1, then its
/// share of fc2's outputs).
inline constexpr int squeeze_excite_most_row_blocks = 64;

/// The cluster's blocks an image where the heuristic claims algo 2.
inline constexpr int squeeze_excite_claim_cluster = 8;

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
  /// Claimed as algo 2 math 8 (a cluster of 8 blocks an image) on compute capability 9.0 on where
  /// the clusters fill the GPU at most twice over (batch × 8 ≤ 2 × SMs: 33 images on an H200),
  /// where it beat both other plans on every gate (H200, session 28: EfficientNet-B0 b1 408.0 ->
  /// 340.5 µs, b32 989.0 -> 907.7; b64 level, b128 slower). Otherwise as algo 0 where that was
  /// measured faster than the pool and the two 1x1 kernels (H200, session 26: EfficientNet-B0's
  /// sixteen gates at batches 1 and 256, see the file comment): fc1 of at most
  /// squeeze_excite_claim_macs multiply-adds an image (480 channel slots × 20) and the pool over
  /// at most about a hundred blocks an image — a map of at most 28×28, or three images or more
  /// (squeeze_excite_splits on 132 SMs).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    if (!applicable(op)) {
      return std::nullopt;
    }
    if (clusters_fit(batch)) {
      return Claim{Variant{std::string(name()), 2, squeeze_excite_claim_cluster, 0}, rank::joins};
    }
    const OpDesc& q = *op.squeeze;
    const bool small = std::int64_t{q.gap->in_cp} * q.conv.k <= squeeze_excite_claim_macs;
    const bool few_blocks = q.gap->in_shape.h * q.gap->in_shape.w <= 28 * 28 || batch >= 3;
    if (!small || !few_blocks) {
      return std::nullopt;
    }
    return Claim{{std::string(name())}, rank::joins};
  }
  /// Algo 0 offered to measured tuning wherever it runs, and algo 2 math 8 and 16 on compute
  /// capability 9.0 on up to twice the batch the heuristic claims it for; algo 1 (its loads
  /// issued together, at most squeeze_excite_most_splits blocks an image: slower or level on an
  /// H200, session 27) and math G (16: slower than algo 2 at batch 1 and than algo 0 at batch 256,
  /// session 28) only where forced.
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t,
                                                const Libraries&) const override {
    if (!applicable(op)) {
      return {};
    }
    std::vector<Variant> out{Variant{std::string(name())}};
    if (clusters_fit(batch / 2)) {
      out.push_back(Variant{std::string(name()), 2, 8, 0});
      out.push_back(Variant{std::string(name()), 2, 16, 0});
    }
    return out;
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
    const bool blocks = (v.algo == 0 || v.algo == 1) && v.math >= 0 &&
                        v.math <= squeeze_excite_most_row_blocks;
    const bool cluster = v.algo == 2 && (v.math == 8 || v.math == 16);
    STRATA_CHECK((blocks || cluster) && v.fuse == 0,
                 "cuda::Engine: layer '"
                     << op.label << "': squeeze_excite has algos 0 and 1, math 0 (the pool split "
                                    "over blocks) or 1 to "
                     << squeeze_excite_most_row_blocks
                     << " (blocks an image, each pooling the whole map), and algo 2, math 8 or 16 "
                        "(a thread-block cluster an image); fuse 0; not "
                     << to_string(v));
    STRATA_CHECK(!cluster || device_arch() >= 90,
                 "cuda::Engine: layer '" << op.label
                                         << "': squeeze_excite algo 2 runs thread-block clusters "
                                            "(compute capability 9.0 on)");
    STRATA_CHECK(io.squeeze_x != nullptr && io.squeeze_weights != nullptr,
                 "cuda::Engine: layer '" << op.label
                                         << "': squeeze_excite without the map or fc1's weights");
    return std::make_unique<SeStep>(op, batch, w, *io.squeeze_weights,
                                    static_cast<const T*>(io.squeeze_x), static_cast<T*>(io.y),
                                    v.algo, v.math);
  }

 private:
  /// Whether `batch` images' clusters of squeeze_excite_claim_cluster blocks fill the GPU at most
  /// twice over, on a GPU that runs clusters (none without a device: no claim).
  [[nodiscard]] static bool clusters_fit(int batch) {
    return device_arch() >= 90 &&
           std::int64_t{batch} * squeeze_excite_claim_cluster <= 2 * generated::device_sms().sms;
  }

  /// The kernel's launch, with the step's own scratch (partial sums, and counters the kernel
  /// leaves zeroed) made here, at preparation. Two launches of one step must not overlap (they
  /// would share the scratch): every plan owns its steps and runs them on one stream.
  class SeStep final : public Step {
   public:
    SeStep(const OpDesc& op, int n, const OpWeights& w2, const OpWeights& w1, const T* x, T* y,
           int form, int row_blocks)
        : x_(x), y_(y), w1_(&w1), w2_(&w2), n_(n), form_(form) {
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
      // (algo 2: `row_blocks` is the cluster's blocks; no scratch)
      cluster_ = form == 2 ? row_blocks : 0;
      splits_ = row_blocks > 0
                    ? 1
                    : kernels::squeeze_excite_splits(n, hw_, generated::device_sms().sms,
                                                     form == 1 ? squeeze_excite_most_splits : 1 << 30);
      row_blocks_ = cluster_ > 0 ? 1 : std::max(row_blocks, 1);
      if (cluster_ > 0) {  // the kernel, looked up once, allowed its clusters' size
        cluster_kernel_ = kernels::squeeze_excite_cluster_kernel<T>(cluster_);
        generated::allow_cluster(cluster_kernel_, generated::device_sms().device, cluster_,
                                 op.label, "squeeze_excite");
      }
      if (splits_ > 1) {
        partial_ = DeviceBuffer(static_cast<std::size_t>(n) * splits_ * cp_ * sizeof(float));
        counters_ = zeroed_device_buffer(static_cast<std::size_t>(n) * sizeof(unsigned));
      }
      // fc2's weights chunk-major, (k1p / 8, k2p, 8), as the kernel reads them (a thread an output
      // row, a warp's 16-byte loads consecutive): its k2 rows of k1p (op.conv.kd rows stored,
      // k2 or more), a column of 16-byte chunks a copy; the padding rows, never read, as 0.
      STRATA_CHECK(op.conv.kd >= k2_ && op.conv.fcg == k1p_ && op.conv.kh == 1 && op.conv.kw == 1,
                   "cuda::Engine: layer '" << op.label << "': squeeze_excite: fc2's weights are "
                                           << op.conv.kd << " rows of " << op.conv.fcg
                                           << ", not " << k2_ << " of " << k1p_);
      const std::size_t chunk = 8 * sizeof(T);
      w2t_ = zeroed_device_buffer(static_cast<std::size_t>(k2p_) * k1p_ * sizeof(T));
      const auto* from = static_cast<const unsigned char*>(w2.weight.get());
      auto* to = static_cast<unsigned char*>(w2t_.get());
      for (int v = 0; v < k1p_ / 8; ++v) {
        STRATA_CUDA_CHECK(cudaMemcpy2D(to + static_cast<std::size_t>(v) * k2p_ * chunk, chunk,
                                       from + static_cast<std::size_t>(v) * chunk,
                                       static_cast<std::size_t>(k1p_) * sizeof(T), chunk,
                                       static_cast<std::size_t>(k2_), cudaMemcpyDeviceToDevice));
      }
      STRATA_CUDA_CHECK(cudaStreamSynchronize(nullptr));  // (the engine's stream may not wait)
      std::ostringstream what;
      what << "strata squeeze_excite (pool " << q.gap->in_shape.h << "x" << q.gap->in_shape.w
           << "x" << cp_ << ", 1x1 " << cp_ << "->" << k1_ << ", 1x1 " << k1p_ << "->" << k2_
           << " as one kernel"
           << (splits_ > 1 ? ", " + std::to_string(splits_) + " blocks an image" : "")
           << (cluster_ > 0 ? ", a cluster of " + std::to_string(cluster_) +
                                  " blocks an image sharing the pool and both convs"
               : row_blocks > 0 ? ", " + std::to_string(row_blocks) + (row_blocks == 1 ? " block" : " blocks") +
                                    " an image each pooling the whole map, " +
                                    std::to_string((k2p_ + row_blocks - 1) / row_blocks) +
                                    " of fc2's outputs a block"
                              : "")
           << (form == 1 ? ", the products' loads issued together" : "") << ")";
      what_ = what.str();
    }
    [[nodiscard]] std::string describe() const override { return what_; }
    void launch(cudaStream_t s, void*, std::size_t) override {
      if (cluster_ > 0) {
        kernels::squeeze_excite_cluster<T>(cluster_kernel_, x_, w1_->weight.template as<const T>(),
                                           w1_->bias_f32.template as<const float>(),
                                           w2t_.as<const T>(), w2_->bias_f32.template as<const float>(),
                                           y_, n_, cp_, hw_, k1_, k1p_, k2_, k2p_, act1_, in_act2_,
                                           act2_, cluster_, s);
        return;
      }
      kernels::squeeze_excite<T>(x_, w1_->weight.template as<const T>(),
                                 w1_->bias_f32.template as<const float>(),
                                 w2t_.as<const T>(), w2_->bias_f32.template as<const float>(),
                                 y_, n_, cp_, hw_, k1_,
                                 k1p_, k2_, k2p_, act1_, in_act2_, act2_, splits_, row_blocks_,
                                 partial_.as<float>(), counters_.as<unsigned>(), s, form_);
    }

   private:
    const T* x_;
    T* y_;
    const OpWeights* w1_;
    const OpWeights* w2_;
    int n_ = 0, form_ = 0, cp_ = 0, hw_ = 0, k1_ = 0, k1p_ = 0, k2_ = 0, k2p_ = 0;
    ActDesc act1_{}, in_act2_{}, act2_{};
    int splits_ = 1;
    int row_blocks_ = 1;
    int cluster_ = 0;  // algo 2: the cluster's blocks
    cudaKernel_t cluster_kernel_ = nullptr;
    DeviceBuffer partial_;
    DeviceBuffer counters_;
    DeviceBuffer w2t_;  // fc2's weights, chunk-major
    std::string what_;
  };
};

}  // namespace strata::cuda::tactics
