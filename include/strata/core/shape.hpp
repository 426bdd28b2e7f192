#pragma once
/// Shapes of one image's activations, and the tensor type (shape + layout + dtype) per stage.
#include <cstdint>

#include "strata/core/dtype.hpp"

namespace strata {

/// A pair of sizes (height, width); a plain integer means both. Used for kernel, stride,
/// padding and dilation, as PyTorch's `int or (int, int)` arguments.
struct HW {
  int h = 0;
  int w = 0;
  constexpr HW() = default;
  constexpr HW(int both) : h(both), w(both) {}  // NOLINT: implicit, as PyTorch's int argument
  constexpr HW(int height, int width) : h(height), w(width) {}
  friend constexpr bool operator==(HW, HW) = default;
};

/// One image's activation shape, batch excluded. rank 3 is (C,H,W); rank 1 is a flat feature
/// vector of `c` features (h = w = 1), what flatten produces and dense consumes.
struct Shape {
  int c = 0;
  int h = 1;
  int w = 1;
  int rank = 3;
  [[nodiscard]] constexpr std::int64_t numel() const {
    return static_cast<std::int64_t>(c) * h * w;
  }
  [[nodiscard]] constexpr bool flat() const { return rank == 1; }
  friend constexpr bool operator==(const Shape&, const Shape&) = default;
};

/// A (C,H,W) shape.
[[nodiscard]] constexpr Shape chw(int c, int h, int w) { return Shape{c, h, w, 3}; }
/// A flat shape of `n` features.
[[nodiscard]] constexpr Shape features(int n) { return Shape{n, 1, 1, 1}; }

/// The type of one stage's activation tensor: shape per image, memory layout and element type.
struct TensorSpec {
  Shape shape{};
  Layout layout = Layout::nchw;
  DType dtype = DType::f32;
  friend constexpr bool operator==(const TensorSpec&, const TensorSpec&) = default;
};

}  // namespace strata
