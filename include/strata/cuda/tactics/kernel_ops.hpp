#pragma once
/// Tactics for the ops Strata always runs with its own kernels, one launch each:
/// `pointwise` (a stand-alone batch_norm, activation or residual add), `pool` (max/avg pooling
/// with PyTorch's window rules, global average pooling), `softmax` (softmax/log_softmax in
/// f32; a final one writes the caller's f32 output itself), `upsample`, `adaptive_pool`,
/// `channel_gate` (multiply: x times a per-channel gate) and `copy` (a concat's branch that
/// writes nothing of its own). The last four write a concat's channel slice in place.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"

namespace strata::cuda::tactics {

/// A step that is one call of a Strata kernel launcher, described by `what`; `writes_output`:
/// the kernel writes the caller's f32 output itself (Step::writes_network_output); `reads_input`:
/// it reads the caller's input itself (Step::reads_network_input).
template <class Launch>
class KernelStep final : public Step {
 public:
  KernelStep(std::string what, Launch launch, bool writes_output, bool reads_input)
      : what_(std::move(what)), launch_(std::move(launch)), writes_output_(writes_output),
        reads_input_(reads_input) {}
  [[nodiscard]] std::string describe() const override { return what_; }
  void launch(cudaStream_t s, void*, std::size_t) override { launch_(s); }
  [[nodiscard]] bool writes_network_output() const override { return writes_output_; }
  [[nodiscard]] bool reads_network_input() const override { return reads_input_; }

 private:
  std::string what_;
  Launch launch_;
  bool writes_output_ = false;
  bool reads_input_ = false;
};

template <class Launch>
[[nodiscard]] std::unique_ptr<Step> kernel_step(std::string what, Launch launch,
                                                bool writes_output = false, bool reads_input = false) {
  return std::make_unique<KernelStep<Launch>>(std::move(what), std::move(launch), writes_output, reads_input);
}

/// Dense strides of a stored tensor with `cp` channel slots and `hw` pixels in precision P.
template <DType P>
[[nodiscard]] kernels::Strides dense_strides(int cp, int hw) {
  return storage_layout(P) == Layout::nhwc ? kernels::nhwc_strides(cp, hw)
                                           : kernels::nchw_strides(cp, hw);
}

/// How an op writes its result: the strides and the channel slots written per pixel — its own
/// dense tensor (out_cp slots), or its concat slice (OpDesc::slice).
struct OutView {
  kernels::Strides strides;
  int write = 0;
};
template <DType P>
[[nodiscard]] OutView out_view(const OpDesc& op) {
  if (op.slice) {
    const ElemStrides& s = op.slice->strides;
    return {{s.image, s.pixel, s.channel}, op.slice->write};
  }
  return {dense_strides<P>(op.out_cp, op.out_shape.h * op.out_shape.w), op.out_cp};
}

/// A strided copy of a dense result (`shape`, `cp` slots per pixel) at `src` into the concat
/// slice `slice` at `dst`: the copy op's step, and the second half of a staged slice write.
template <DType P>
[[nodiscard]] std::unique_ptr<Step> slice_copy_step(Shape shape, int cp, const OutSlice& slice,
                                                    const void* src, void* dst, int batch) {
  using T = storage_t<P>;
  const int hw = shape.h * shape.w;
  const kernels::Strides ss = dense_strides<P>(cp, hw);
  const kernels::Strides ds{slice.strides.image, slice.strides.pixel, slice.strides.channel};
  const bool nhwc_order = storage_layout(P) == Layout::nhwc && !slice.flatten;
  const T* s = static_cast<const T*>(src);
  T* d = static_cast<T*>(dst);
  const int c = shape.c;
  const int write = slice.write;
  return kernel_step("strata copy into the concat's channels " + std::to_string(slice.c0) + ".." +
                         std::to_string(slice.c0 + c - 1),
                     [=](cudaStream_t st) {
                       kernels::convert<T, T>(s, ss, d, ds, batch, c, write, hw, nhwc_order, st);
                     });
}

/// The producer's deferred activation (OpDesc::in_act) applied to `op`'s input in place — the
/// input's only reader is `op` (defer_activations) — for a tactic that does not apply it itself.
template <DType P>
[[nodiscard]] std::unique_ptr<Step> deferred_act_step(const OpDesc& op, int batch, const OpIo& io) {
  using T = storage_t<P>;
  T* x = static_cast<T*>(const_cast<void*>(io.x));
  const ActDesc act = op.in_act;
  const Shape is = op.in_shape;
  const int cp = op.in_cp;
  const std::int64_t total = static_cast<std::int64_t>(batch) * cp * is.h * is.w;
  const bool nhwc = storage_layout(P) == Layout::nhwc;
  return kernel_step("strata pointwise (the producer's activation, in place)",
                     [=](cudaStream_t s) {
                       kernels::pointwise<T>(x, nullptr, x, nullptr, nullptr, act, total, cp,
                                             is.h * is.w, is.c, nhwc, s);
                     });
}

/// The shared shape of the single-kernel tactics: the one way to run their ops.
template <DType P>
class KernelTactic : public Tactic<P> {
 public:
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc&, int, std::size_t,
                                               const Libraries&) const override {
    return Claim{{std::string(this->name())}, rank::only};
  }
};

/// `pointwise`: y = act(x·scale + shift + z) per channel slot.
template <DType P>
class Pointwise final : public KernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "pointwise"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::batch_norm || op.kind == OpKind::activation ||
           op.kind == OpKind::add;
  }
  [[nodiscard]] bool reads_slice(const OpDesc&) const override { return true; }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const int hw = op.out_shape.h * op.out_shape.w;
    const std::int64_t total = static_cast<std::int64_t>(batch) * op.out_cp * hw;
    const bool nhwc = storage_layout(P) == Layout::nhwc;
    std::optional<kernels::Strides> xs;
    std::string what = "strata pointwise";
    if (op.in_slice) {
      const ElemStrides& e = op.in_slice->strides;
      xs = kernels::Strides{e.image, e.pixel, e.channel};
      what += " (reads channels " + std::to_string(op.in_slice->c0) + ".." +
              std::to_string(op.in_slice->c0 + op.in_shape.c - 1) + " of the concat in place)";
    }
    return kernel_step(std::move(what), [=, &w](cudaStream_t s) {
      kernels::pointwise<T>(static_cast<const T*>(io.x), static_cast<const T*>(io.z),
                            static_cast<T*>(io.y), w.scale_f32.template as<const float>(),
                            w.shift_f32.template as<const float>(), op.act, total, op.out_cp, hw,
                            op.out_shape.c, nhwc, s, xs);
    });
  }
};

/// `pool`: max/avg pooling and global average pooling.
template <DType P>
class Pool final : public KernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "pool"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::max_pool || op.kind == OpKind::avg_pool ||
           op.kind == OpKind::global_avg_pool;
  }
  /// (The global average pool applies an activation deferred into its read; defer_activations
  /// defers none into the other pools.)
  [[nodiscard]] bool reads_input_act() const override { return true; }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights&, const OpIo& io,
                                              const Libraries&) const override {
    const bool nhwc = storage_layout(P) == Layout::nhwc;
    const T* x = static_cast<const T*>(io.x);
    T* y = static_cast<T*>(io.y);
    const Shape is = op.in_shape;
    if (op.kind == OpKind::global_avg_pool) {
      return std::make_unique<GlobalPoolStep>(x, y, batch, op.in_cp, is.h * is.w, nhwc, op.in_act);
    }
    STRATA_CHECK(op.in_act.kind == Act::none, "cuda::Engine: layer '" << op.label
                                                  << "': the pool kernel applies no activation deferred into its read");
    const LayerDesc& d = op.layer;
    const kernels::PoolShape ps{batch, op.in_cp, is.h, is.w, op.out_shape.h, op.out_shape.w,
                                d.kernel.h, d.kernel.w, d.stride.h, d.stride.w, d.padding.h,
                                d.padding.w, op.kind == OpKind::max_pool, d.count_include_pad};
    return kernel_step("strata pool", [=](cudaStream_t s) { kernels::pool<T>(x, y, ps, nhwc, s); });
  }

 private:
  /// Global average pooling; at small batches (NHWC) each image's channels split over blocks
  /// along the pixels, with the step's own scratch (partial sums, and counters the kernel leaves
  /// zeroed) made here, at preparation. Two launches of one step must not overlap (they would
  /// share the scratch): every plan owns its steps and runs them on one stream.
  class GlobalPoolStep final : public Step {
   public:
    GlobalPoolStep(const T* x, T* y, int n, int c, int hw, bool nhwc, ActDesc in_act)
        : x_(x), y_(y), n_(n), c_(c), hw_(hw), nhwc_(nhwc), in_act_(in_act) {
      if (nhwc) {
        int device = 0;
        int sms = 0;
        STRATA_CUDA_CHECK(cudaGetDevice(&device));
        STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
        splits_ = kernels::global_pool_splits(n, c, hw, sms);
      }
      if (splits_ > 1) {
        const std::size_t units = static_cast<std::size_t>(n) * ((c + 31) / 32);
        partial_ = DeviceBuffer(units * splits_ * 32 * sizeof(float));
        counters_ = zeroed_device_buffer(units * sizeof(unsigned));
      }
    }
    [[nodiscard]] std::string describe() const override {
      std::string what = "strata global_avg_pool";
      if (splits_ > 1) {
        what += " (" + std::to_string(splits_) + " blocks per image and 32 channels)";
      }
      if (in_act_.kind != Act::none) {
        what += " (the producer's activation applied as it reads)";
      }
      return what;
    }
    void launch(cudaStream_t s, void*, std::size_t) override {
      kernels::global_avg_pool<T>(x_, y_, n_, c_, hw_, nhwc_, s, splits_,
                                  partial_.as<float>(), counters_.as<unsigned>(), in_act_);
    }

   private:
    const T* x_;
    T* y_;
    int n_, c_, hw_;
    bool nhwc_;
    ActDesc in_act_;
    int splits_ = 1;
    DeviceBuffer partial_;
    DeviceBuffer counters_;
  };
};

/// `softmax`: softmax/log_softmax over channels, f32 arithmetic.
template <DType P>
class Softmax final : public KernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "softmax"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::softmax || op.kind == OpKind::log_softmax;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights&, const OpIo& io,
                                              const Libraries&) const override {
    const Shape is = op.in_shape;
    const int hw = is.h * is.w;
    const kernels::Strides xs = dense_strides<P>(op.in_cp, hw);
    const bool log = op.kind == OpKind::log_softmax;
    const T* x = static_cast<const T*>(io.x);
    if (op.writes_user_output) {
      float* out = io.user_out;
      return kernel_step("strata softmax (f32, into the output)", [=](cudaStream_t s) {
        kernels::softmax<T, float>(x, xs, out, kernels::nchw_strides(is.c, hw), batch, is.c, is.c,
                                   hw, log, s);
      });
    }
    const int ocp = op.out_cp;
    const kernels::Strides ys = dense_strides<P>(ocp, hw);
    T* y = static_cast<T*>(io.y);
    return kernel_step("strata softmax", [=](cudaStream_t s) {
      kernels::softmax<T, T>(x, xs, y, ys, batch, is.c, ocp, hw, log, s);
    });
  }
};

/// `upsample` (nearest or bilinear, integer factors) and `adaptive_pool` (adaptive average
/// pooling to any size but 1×1, which runs as global_avg_pool): one thread per output element.
template <DType P>
class Resize final : public KernelTactic<P> {
  using T = storage_t<P>;

 public:
  explicit Resize(OpKind kind) : kind_(kind) {}
  [[nodiscard]] std::string_view name() const override {
    return kind_ == OpKind::upsample ? "upsample" : "adaptive_pool";
  }
  [[nodiscard]] bool applicable(const OpDesc& op) const override { return op.kind == kind_; }
  [[nodiscard]] bool writes_slice(const OpDesc&) const override { return true; }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights&, const OpIo& io,
                                              const Libraries&) const override {
    const bool nhwc = storage_layout(P) == Layout::nhwc;
    const Shape is = op.in_shape;
    const Shape os = op.out_shape;
    const LayerDesc& d = op.layer;
    const kernels::ResizeShape rs{batch, is.c, is.h, is.w, os.h, os.w, d.scale.h, d.scale.w,
                                  d.interp == Interp::bilinear, d.align_corners};
    const kernels::Strides xs = dense_strides<P>(op.in_cp, is.h * is.w);
    const OutView out = out_view<P>(op);
    const T* x = static_cast<const T*>(io.x);
    T* y = static_cast<T*>(io.y);
    const bool up = kind_ == OpKind::upsample;
    return kernel_step(!up ? "strata adaptive_avg_pool"
                       : rs.bilinear ? "strata upsample (bilinear)"
                                     : "strata upsample (nearest)",
                       [=](cudaStream_t s) {
                         kernels::resize<T>(up, x, xs, y, out.strides, rs, out.write, nhwc, s);
                       });
  }

 private:
  OpKind kind_;
};

/// `channel_gate`: multiply, y = x · gate with the gate (C,1,1) — the result of the gate branch,
/// its activation already applied by the op that produced it — broadcast over H×W. 16-bit NHWC
/// uses 16-byte accesses (8 channels per thread) unless the output is an unaligned concat slice.
template <DType P>
class ChannelGate final : public KernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "channel_gate"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::multiply;
  }
  [[nodiscard]] bool writes_slice(const OpDesc&) const override { return true; }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights&, const OpIo& io,
                                              const Libraries&) const override {
    const bool nhwc = storage_layout(P) == Layout::nhwc;
    const Shape is = op.in_shape;
    const int hw = is.h * is.w;
    const int cp = op.in_cp;
    const kernels::Strides xs = dense_strides<P>(cp, hw);
    const OutView out = out_view<P>(op);
    // The gate (C,1,1) has one pixel of `cp` slots (NHWC) or C values (NCHW) per image.
    const std::int64_t gate_image = cp;
    const bool vec8 = nhwc && is_16bit(P) && cp % 8 == 0 &&
                      (!op.slice || (op.slice->aligned && !op.slice->flatten && out.write == cp));
    const T* x = static_cast<const T*>(io.x);
    const T* gate = static_cast<const T*>(io.z);
    T* y = static_cast<T*>(io.y);
    const int c = is.c;
    const ActDesc act = op.act;
    return kernel_step(vec8 ? "strata channel_gate (8 channels per thread)" : "strata channel_gate",
                       [=](cudaStream_t s) {
                         kernels::channel_gate<T>(x, xs, gate, gate_image, y, out.strides, batch,
                                                  c, cp, hw, out.write, act, nhwc, vec8, s);
                       });
  }
};

/// `copy`: a concat's branch that writes nothing of its own (the identity, a lone flatten or
/// dropout), copied into its channel slice.
template <DType P>
class Copy final : public KernelTactic<P> {
 public:
  [[nodiscard]] std::string_view name() const override { return "copy"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::copy;
  }
  [[nodiscard]] bool writes_slice(const OpDesc&) const override { return true; }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights&, const OpIo& io,
                                              const Libraries&) const override {
    STRATA_CHECK(op.slice.has_value(),
                 "cuda::Engine: copy op '" << op.label << "' writes no concat slice");
    return slice_copy_step<P>(op.in_shape, op.in_cp, *op.slice, io.x, io.y, batch);
  }
};

}  // namespace strata::cuda::tactics
