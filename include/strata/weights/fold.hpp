#pragma once
/// Load-time folding: a conv's batch_norm becomes part of the conv's weights and bias,
/// w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β, computed in double; a stand-alone
/// batch_norm becomes a per-channel scale and shift.
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "strata/core/error.hpp"
#include "strata/pipeline/graph.hpp"

namespace strata {

/// The arrays one op computes with, in f32 and PyTorch's order: conv (O, C/g, kh, kw),
/// conv_transpose (C, O/g, kh, kw) and dense (out, in) weights with a bias of O entries (zeros when the layer has none, BN folded
/// in); batch_norm: weight = scale, bias = shift. Empty for ops without parameters.
struct OpParams {
  std::vector<float> weight;
  std::vector<float> bias;
};

/// Folds batch_norm (running_mean, running_var, weight γ, bias β, eps) into per-channel
/// scale and shift.
inline void batch_norm_scale_shift(std::span<const float> gamma, std::span<const float> beta,
                                   std::span<const float> mean, std::span<const float> var,
                                   float eps, std::vector<double>& scale,
                                   std::vector<double>& shift) {
  const std::size_t c = gamma.size();
  STRATA_CHECK(beta.size() == c && mean.size() == c && var.size() == c,
               "batch_norm: parameter sizes differ (" << c << ", " << beta.size() << ", "
                                                      << mean.size() << ", " << var.size() << ")");
  scale.assign(c, 0.0);
  shift.assign(c, 0.0);
  for (std::size_t i = 0; i < c; ++i) {
    scale[i] = static_cast<double>(gamma[i]) / std::sqrt(static_cast<double>(var[i]) + static_cast<double>(eps));
    shift[i] = static_cast<double>(beta[i]) - static_cast<double>(mean[i]) * scale[i];
  }
}

/// The parameters `op` computes with, from the network's loaded parameters `params` (indexed as
/// the graph's parameter list).
[[nodiscard]] inline OpParams fold_op_params(const Op& op,
                                             std::span<const std::vector<float>> params) {
  OpParams r;
  std::vector<double> scale;
  std::vector<double> shift;
  if (op.bn >= 0) {
    batch_norm_scale_shift(params[op.bn], params[op.bn + 1], params[op.bn + 2],
                           params[op.bn + 3], op.bn_eps, scale, shift);
  }
  if (op.kind == OpKind::batch_norm) {
    r.weight.assign(scale.begin(), scale.end());
    r.bias.assign(shift.begin(), shift.end());
    return r;
  }
  if (op.kind != OpKind::conv && op.kind != OpKind::dense && op.kind != OpKind::conv_transpose) {
    return r;
  }
  const std::vector<float>& w = params[op.weight];
  const std::size_t out = static_cast<std::size_t>(op.layer.out_channels);
  if (op.kind == OpKind::conv_transpose) {
    // Output channel o = g·(O/g) + j is dim 1 of the weights of input channels of group g.
    const std::size_t in = static_cast<std::size_t>(op.in_spec.shape.c);
    const std::size_t groups = static_cast<std::size_t>(op.layer.groups);
    const std::size_t opg = out / groups;
    const std::size_t taps = w.size() / (in * opg);
    r.weight.resize(w.size());
    r.bias.assign(out, 0.0f);
    for (std::size_t ci = 0; ci < in; ++ci) {
      for (std::size_t j = 0; j < opg; ++j) {
        const std::size_t o = ci / (in / groups) * opg + j;
        const double s = op.bn >= 0 ? scale[o] : 1.0;
        for (std::size_t t = 0; t < taps; ++t) {
          const std::size_t i = (ci * opg + j) * taps + t;
          r.weight[i] = static_cast<float>(static_cast<double>(w[i]) * s);
        }
      }
    }
    for (std::size_t o = 0; o < out; ++o) {
      const double b = op.bias >= 0 ? static_cast<double>(params[op.bias][o]) : 0.0;
      r.bias[o] = static_cast<float>(op.bn >= 0 ? b * scale[o] + shift[o] : b);
    }
    return r;
  }
  const std::size_t per_out = w.size() / out;
  r.weight.resize(w.size());
  r.bias.assign(out, 0.0f);
  for (std::size_t o = 0; o < out; ++o) {
    const double b = op.bias >= 0 ? static_cast<double>(params[op.bias][o]) : 0.0;
    const double s = op.bn >= 0 ? scale[o] : 1.0;
    for (std::size_t i = 0; i < per_out; ++i) {
      r.weight[o * per_out + i] = static_cast<float>(static_cast<double>(w[o * per_out + i]) * s);
    }
    r.bias[o] = static_cast<float>(op.bn >= 0 ? b * s + shift[o] : b);
  }
  return r;
}

}  // namespace strata
