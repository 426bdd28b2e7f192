#pragma once
/// What every layer shares: the value description of a leaf layer (LayerDesc), the problems a
/// layer can find with its input (Problem), parameter specs, and the LeafLayer concept.
#include <cstdint>
#include <concepts>
#include <string_view>
#include <type_traits>

#include "strata/core/shape.hpp"

namespace strata {

/// The kinds of leaf layer.
enum class LayerKind : std::uint8_t {
  conv, batch_norm, activation, max_pool, avg_pool, global_avg_pool,
  flatten, dense, softmax, log_softmax, dropout, upsample, adaptive_avg_pool, conv_transpose
};

/// The kinds of executed op after lowering (declared here, before the layer constants that
/// share these names). New kinds go at the end.
enum class OpKind : std::uint8_t {
  conv, dense, batch_norm, activation, max_pool, avg_pool, global_avg_pool, softmax, log_softmax, add,
  upsample, adaptive_avg_pool,
  copy,     ///< a tensor copied into its channel slice of a concat's output
  multiply,  ///< x (C,H,W) times a gate (C,1,1), per channel
  conv_transpose
};

/// How upsample computes a new pixel: the nearest source pixel, or bilinear interpolation.
enum class Interp : std::uint8_t { nearest, bilinear };

/// Pointwise activation functions; `clip` covers relu6 (0, 6) and hardtanh. New functions go at
/// the end: the CUDA backend's kernels mirror this list (cuda/kernel_source.hpp's Act and
/// activate(), checked by a static_assert in cuda/kernels.hpp).
enum class Act : std::uint8_t {
  none, relu, leaky_relu, clip, sigmoid, tanh, elu, gelu, gelu_tanh, silu,
  hardswish, hardsigmoid, mish
};

/// An activation with its constants: leaky_relu slope = alpha; clip [alpha, beta]; elu alpha.
struct ActDesc {
  Act kind = Act::none;
  float alpha = 0.0f;
  float beta = 0.0f;
  friend constexpr bool operator==(const ActDesc&, const ActDesc&) = default;
};

/// Everything that defines one leaf layer, as a value (what lowering, the cost model and the
/// backends read). Fields a kind does not use stay at their defaults.
struct LayerDesc {
  LayerKind kind = LayerKind::activation;
  int out_channels = 0;  ///< conv: output channels; dense: output features
  HW kernel{1};          ///< conv and pools
  HW stride{1};
  HW padding{0};
  HW dilation{1};
  int groups = 1;
  bool bias = false;               ///< conv and dense
  bool ceil_mode = false;          ///< pools
  bool count_include_pad = true;   ///< avg_pool
  float eps = 1e-5f;               ///< batch_norm
  int in_features = 0;             ///< dense: the declared input features (0: inferred)
  ActDesc act{};                   ///< activation
  HW scale{1};                     ///< upsample: the integer scale factor (h, w)
  Interp interp = Interp::nearest; ///< upsample
  bool align_corners = false;      ///< upsample (bilinear)
  HW out_size{1};                  ///< adaptive_avg_pool: the output's (H, W)
  HW output_padding{0};            ///< conv_transpose
};

/// Why a layer rejects its input. `none` means it accepts it.
enum class Problem : std::uint8_t {
  none,
  needs_chw_input,            ///< conv, pools, batch_norm fed a flat vector
  groups_do_not_divide_input, ///< conv: input channels % groups != 0
  window_larger_than_input,   ///< conv or pool: the (dilated) window does not fit the padded input
  needs_flat_input,           ///< dense fed a (C,H,W) tensor: flatten first
  in_features_mismatch,       ///< dense: declared in_features differ from the input's
  branches_disagree,          ///< residual: main and shortcut outputs differ
  concat_branches_disagree,   ///< concat: branch outputs differ in H×W (or flat and not)
  gate_shape_mismatch,        ///< multiply: the gate is not (C,1,1) for a (C,H,W) input
  transpose_groups_do_not_divide_input,  ///< conv_transpose: input channels % groups != 0
  transpose_no_output,        ///< conv_transpose: the padding leaves an output of size <= 0
};

/// One parameter tensor of a layer: the name's last part ("weight"), its dims, whether it is a
/// learnable parameter (counted in the parameter total) or a buffer, and whether the weight file
/// may omit it (BatchNorm's num_batches_tracked).
struct ParamSpec {
  std::string_view suffix{};
  std::int64_t dims[4]{};
  int rank = 0;
  bool learnable = true;
  bool optional = false;
  bool integer = false;  ///< an integer buffer (int64 num_batches_tracked), never read
  [[nodiscard]] constexpr std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank; ++i) {
      n *= dims[i];
    }
    return n;
  }
};

/// Up to five parameters per leaf layer (batch_norm has the most).
struct ParamList {
  ParamSpec items[5]{};
  int count = 0;
  constexpr void add(ParamSpec p) { items[count++] = p; }
};

/// Base of every Strata node type; the hidden-friend `operator|` lives in pipeline/.
struct NodeBase {};

/// A leaf layer: an empty type with consteval shape rules and a parameter list.
template <class L>
concept LeafLayer = std::is_empty_v<L> && requires(TensorSpec in) {
  { L::desc } -> std::convertible_to<LayerDesc>;
  { L::check(in) } -> std::same_as<Problem>;
  { L::out(in) } -> std::same_as<TensorSpec>;
  { L::params(in) } -> std::same_as<ParamList>;
  { L::flops(in) } -> std::convertible_to<std::int64_t>;
};

/// Output size of a sliding window along one dimension, exactly as PyTorch computes it
/// (floor, or ceil with the rule that the last window must start inside the input or left
/// padding). Returns <= 0 when the window does not fit.
[[nodiscard]] constexpr int window_out(int in, int k, int s, int p, int d, bool ceil_mode) {
  if (k <= 0 || s <= 0 || d <= 0) {
    return 1;  // a bad layer parameter, already reported by the layer's own static_assert
  }
  const int span = d * (k - 1) + 1;
  // As PyTorch: ceil mode rounds up before the fit is judged, and then drops a last window that
  // would start in the right padding.
  const int num = in + 2 * p - span + (ceil_mode ? s - 1 : 0);
  if (num < 0) {
    return 0;
  }
  int out = num / s + 1;
  if (ceil_mode && (out - 1) * s >= in + p) {
    --out;
  }
  return out;
}

}  // namespace strata
