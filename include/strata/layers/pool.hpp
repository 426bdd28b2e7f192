#pragma once
/// Pooling: max_pool and avg_pool (nn.MaxPool2d / nn.AvgPool2d: kernel, stride, padding,
/// ceil_mode, count_include_pad), global_avg_pool (nn.AdaptiveAvgPool2d(1)) and
/// adaptive_avg_pool<H, W> (nn.AdaptiveAvgPool2d((H, W))).
#include "strata/layers/layer.hpp"

namespace strata {

/// Options of the windowed pools; stride 0 means "equal to the kernel", as PyTorch's default.
struct PoolOpts {
  HW stride{0};
  HW padding{0};
  bool ceil_mode = false;
  bool count_include_pad = true;  ///< avg_pool only
};

/// A windowed pool of kind `K` (max_pool or avg_pool).
template <LayerKind K, HW Kernel, PoolOpts O>
struct Pool : NodeBase {
  static constexpr HW stride{O.stride.h == 0 ? Kernel.h : O.stride.h,
                             O.stride.w == 0 ? Kernel.w : O.stride.w};
  static_assert(Kernel.h > 0 && Kernel.w > 0, "pool: the window size must be positive");
  static_assert(stride.h > 0 && stride.w > 0, "pool: the stride must be positive");
  static_assert(O.padding.h >= 0 && O.padding.w >= 0 && 2 * O.padding.h <= Kernel.h &&
                    2 * O.padding.w <= Kernel.w,
                "pool: the padding must be at most half the window (PyTorch's rule)");

  static constexpr LayerDesc desc{.kind = K, .kernel = Kernel, .stride = stride,
                                  .padding = O.padding, .ceil_mode = O.ceil_mode,
                                  .count_include_pad = O.count_include_pad};

  static constexpr Problem check(TensorSpec in) {
    if (in.shape.flat()) {
      return Problem::needs_chw_input;
    }
    if (window_out(in.shape.h, Kernel.h, stride.h, O.padding.h, 1, O.ceil_mode) <= 0 ||
        window_out(in.shape.w, Kernel.w, stride.w, O.padding.w, 1, O.ceil_mode) <= 0) {
      return Problem::window_larger_than_input;
    }
    return Problem::none;
  }
  static constexpr TensorSpec out(TensorSpec in) {
    in.shape = chw(in.shape.c, window_out(in.shape.h, Kernel.h, stride.h, O.padding.h, 1, O.ceil_mode),
                   window_out(in.shape.w, Kernel.w, stride.w, O.padding.w, 1, O.ceil_mode));
    return in;
  }
  static constexpr ParamList params(TensorSpec) { return ParamList{}; }
  static constexpr std::int64_t flops(TensorSpec in) {
    return out(in).shape.numel() * Kernel.h * Kernel.w;
  }
};

/// `max_pool<2>`, `max_pool<3, PoolOpts{.stride = 2, .padding = 1}>`, as nn.MaxPool2d.
template <HW Kernel, PoolOpts O = PoolOpts{}>
inline constexpr Pool<LayerKind::max_pool, Kernel, O> max_pool{};
/// `avg_pool<2>`, as nn.AvgPool2d (count_include_pad on by default, as PyTorch).
template <HW Kernel, PoolOpts O = PoolOpts{}>
inline constexpr Pool<LayerKind::avg_pool, Kernel, O> avg_pool{};

/// Mean over H and W: (C,H,W) → (C,1,1), as nn.AdaptiveAvgPool2d(1).
struct GlobalAvgPool : NodeBase {
  static constexpr LayerDesc desc{.kind = LayerKind::global_avg_pool};
  static constexpr Problem check(TensorSpec in) {
    return in.shape.flat() ? Problem::needs_chw_input : Problem::none;
  }
  static constexpr TensorSpec out(TensorSpec in) {
    in.shape = chw(in.shape.c, 1, 1);
    return in;
  }
  static constexpr ParamList params(TensorSpec) { return ParamList{}; }
  static constexpr std::int64_t flops(TensorSpec in) { return in.shape.numel(); }
};
inline constexpr GlobalAvgPool global_avg_pool{};

/// The window of output row (or column) `o` of an adaptive pool from `in` to `out` rows:
/// [⌊o·in/out⌋, ⌈(o+1)·in/out⌉), PyTorch's start and end indices.
[[nodiscard]] constexpr HW adaptive_window(int o, int in, int out) {
  return HW{o * in / out, ((o + 1) * in + out - 1) / out};
}

/// Mean over windows chosen so the output is (C, Out.h, Out.w) whatever the input's H and W, as
/// nn.AdaptiveAvgPool2d((h, w)); windows may overlap (and repeat pixels when the output is larger).
template <HW Out>
struct AdaptiveAvgPool : NodeBase {
  static_assert(Out.h > 0 && Out.w > 0, "adaptive_avg_pool: the output size must be positive");
  static constexpr LayerDesc desc{.kind = LayerKind::adaptive_avg_pool, .out_size = Out};
  static constexpr Problem check(TensorSpec in) {
    return in.shape.flat() ? Problem::needs_chw_input : Problem::none;
  }
  static constexpr TensorSpec out(TensorSpec in) {
    in.shape = chw(in.shape.c, Out.h, Out.w);
    return in;
  }
  static constexpr ParamList params(TensorSpec) { return ParamList{}; }
  /// One addition per input pixel of each window.
  static constexpr std::int64_t flops(TensorSpec in) {
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    for (int o = 0; o < Out.h; ++o) {
      rows += adaptive_window(o, in.shape.h, Out.h).w - adaptive_window(o, in.shape.h, Out.h).h;
    }
    for (int o = 0; o < Out.w; ++o) {
      cols += adaptive_window(o, in.shape.w, Out.w).w - adaptive_window(o, in.shape.w, Out.w).h;
    }
    return in.shape.c * rows * cols;
  }
};
/// `adaptive_avg_pool<7>`, `adaptive_avg_pool<3, 2>`, as nn.AdaptiveAvgPool2d(7) / ((3, 2)).
/// `adaptive_avg_pool<1>` runs as global_avg_pool.
template <int H, int W = H>
inline constexpr AdaptiveAvgPool<HW{H, W}> adaptive_avg_pool{};

}  // namespace strata
