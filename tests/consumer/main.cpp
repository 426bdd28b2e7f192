// Declares and runs a small network against an installed Strata.
#include <strata/strata.hpp>

#include <cmath>
#include <iostream>
#include <vector>

using namespace strata;

constexpr auto net = input<1, 8, 8> | conv<4, 3, ConvOpts{.padding = 1}> | batch_norm | relu |
                     max_pool<2> | flatten | dense<3> | softmax;
using Net = decltype(net);
static_assert(Net::output_spec.shape == features(3));

int main() {
  CpuEngine<Net> engine(Weights<Net>::random(1), 2);
  std::vector<float> in(2 * 64, 0.5f);
  std::vector<float> out(6, 0.0f);
  engine.forward(in, out, 2);
  const float sum = out[0] + out[1] + out[2];
  std::cout << "consumer: softmax sums to " << sum << "\n";
  return std::fabs(sum - 1.0f) < 1e-5f ? 0 : 1;
}
