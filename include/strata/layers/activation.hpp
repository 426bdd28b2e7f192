#pragma once
/// Pointwise activations: relu, leaky_relu<slope>, relu6, clip<lo, hi>, sigmoid, tanh,
/// elu<alpha>, gelu (erf form), gelu_tanh, silu, hardswish, hardsigmoid, mish. Shape-preserving,
/// no parameters.
#include "strata/layers/layer.hpp"

namespace strata {

/// A pointwise activation described by `A`.
template <ActDesc A>
struct Activation : NodeBase {
  static_assert(A.kind != Act::none, "activation: no function given");
  static_assert(A.kind != Act::clip || A.alpha < A.beta,
                "clip: the lower bound must be below the upper bound");
  static constexpr LayerDesc desc{.kind = LayerKind::activation, .act = A};
  static constexpr Problem check(TensorSpec) { return Problem::none; }
  static constexpr TensorSpec out(TensorSpec in) { return in; }
  static constexpr ParamList params(TensorSpec) { return ParamList{}; }
  static constexpr std::int64_t flops(TensorSpec in) { return in.shape.numel(); }
};

inline constexpr Activation<ActDesc{Act::relu}> relu{};
template <float Slope>
inline constexpr Activation<ActDesc{Act::leaky_relu, Slope}> leaky_relu{};
inline constexpr Activation<ActDesc{Act::clip, 0.0f, 6.0f}> relu6{};
/// nn.Hardtanh(lo, hi): min(max(x, lo), hi).
template <float Lo, float Hi>
inline constexpr Activation<ActDesc{Act::clip, Lo, Hi}> clip{};
inline constexpr Activation<ActDesc{Act::sigmoid}> sigmoid{};
/// nn.Tanh. Unlike the other layers, `tanh` is a function returning the layer: with
/// `using namespace strata;` and <cmath>, a constant named tanh would clash with ::tanh, while a
/// function joins ::tanh's overload set. `| tanh` and `named<"...">(tanh)` pick this overload
/// (operator| and named take its pointer type), and `tanh(0.5)` still calls the C library's.
using Tanh = Activation<ActDesc{Act::tanh}>;
namespace detail {
struct TanhTag {};
}  // namespace detail
[[nodiscard]] constexpr Tanh tanh(detail::TanhTag = {}) { return {}; }
/// The type of `tanh` named without calling it.
using TanhFunction = Tanh (*)(detail::TanhTag);
template <float Alpha = 1.0f>
inline constexpr Activation<ActDesc{Act::elu, Alpha}> elu{};
/// nn.GELU() — the exact (erf) form.
inline constexpr Activation<ActDesc{Act::gelu}> gelu{};
/// nn.GELU(approximate="tanh").
inline constexpr Activation<ActDesc{Act::gelu_tanh}> gelu_tanh{};
inline constexpr Activation<ActDesc{Act::silu}> silu{};
/// nn.Hardswish: x · relu6(x + 3) / 6 (MobileNetV3).
inline constexpr Activation<ActDesc{Act::hardswish}> hardswish{};
/// nn.Hardsigmoid: relu6(x + 3) / 6 (MobileNetV3's squeeze-excite gate).
inline constexpr Activation<ActDesc{Act::hardsigmoid}> hardsigmoid{};
/// nn.Mish: x · tanh(softplus(x)) (YOLOv4).
inline constexpr Activation<ActDesc{Act::mish}> mish{};

}  // namespace strata
