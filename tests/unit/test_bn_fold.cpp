// Folding batch_norm into a convolution: the folded conv equals conv followed by batch_norm
// computed separately (independent loops here), and the lowered graph really folds it.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include <strata/strata.hpp>

using namespace strata;

namespace {
using Net = decltype(input<3, 6, 5> | conv<4, 3, ConvOpts{.stride = 1, .padding = 1}> |
                     batch_norm_eps<1e-3f>);
}

TEST_CASE("conv + batch_norm is lowered to one op with the batch_norm folded") {
  static_assert(Net::graph.num_ops == 1);
  static_assert(Net::graph.ops[0].bn == 2);
  CHECK(Net::graph.ops[0].bn_eps == doctest::Approx(1e-3f));
}

TEST_CASE("the folded conv equals conv then batch_norm, computed separately") {
  const auto w = Weights<Net>::random(11);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> x(2 * 3 * 6 * 5);
  for (float& v : x) {
    v = u(rng);
  }
  // Reference: direct convolution, then (y - mean) / sqrt(var + eps) * gamma + beta.
  const auto cw = w["0.weight"];
  const auto cb = w["0.bias"];
  const auto gamma = w["1.weight"];
  const auto beta = w["1.bias"];
  const auto mean = w["1.running_mean"];
  const auto var = w["1.running_var"];
  std::vector<double> ref(2 * 4 * 6 * 5);
  for (int n = 0; n < 2; ++n) {
    for (int o = 0; o < 4; ++o) {
      for (int y = 0; y < 6; ++y) {
        for (int xx = 0; xx < 5; ++xx) {
          double acc = cb[o];
          for (int c = 0; c < 3; ++c) {
            for (int ky = 0; ky < 3; ++ky) {
              for (int kx = 0; kx < 3; ++kx) {
                const int iy = y + ky - 1;
                const int ix = xx + kx - 1;
                if (iy >= 0 && iy < 6 && ix >= 0 && ix < 5) {
                  acc += static_cast<double>(cw[((o * 3 + c) * 3 + ky) * 3 + kx]) *
                         x[((n * 3 + c) * 6 + iy) * 5 + ix];
                }
              }
            }
          }
          const double bn = (acc - mean[o]) / std::sqrt(static_cast<double>(var[o]) + 1e-3) * gamma[o] + beta[o];
          ref[((n * 4 + o) * 6 + y) * 5 + xx] = bn;
        }
      }
    }
  }
  CpuEngine<Net> engine(w, 2);
  std::vector<float> out(ref.size(), std::nanf(""));
  engine.forward(x, out, 2);
  for (std::size_t i = 0; i < ref.size(); ++i) {
    CHECK(out[i] == doctest::Approx(ref[i]).epsilon(1e-5));
  }
}

TEST_CASE("fold_op_params on hand-worked numbers") {
  // One output channel, one 1x1 weight 2, bias 1; BN: gamma 3, beta 0.5, mean 1, var 3, eps 1:
  // scale = 3 / sqrt(4) = 1.5 → w' = 3, b' = (1 - 1) · 1.5 + 0.5 = 0.5.
  Op op{};
  op.kind = OpKind::conv;
  op.layer.out_channels = 1;
  op.weight = 0;
  op.bias = 1;
  op.bn = 2;
  op.bn_eps = 1.0f;
  const std::vector<std::vector<float>> params{{2.0f}, {1.0f}, {3.0f}, {0.5f}, {1.0f}, {3.0f}};
  const OpParams p = fold_op_params(op, params);
  CHECK(p.weight[0] == 3.0f);
  CHECK(p.bias[0] == 0.5f);
}
