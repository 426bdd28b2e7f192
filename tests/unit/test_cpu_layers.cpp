// The CPU reference's layers on hand-worked values: hardswish, hardsigmoid, mish, upsample,
// adaptive average pooling, concat, channel gates and conv_transpose.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <strata/strata.hpp>

using namespace strata;

namespace {

/// Weights for Net from (name, shape, values) triples, through a safetensors file in memory.
struct Tensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};
template <class Net>
Weights<Net> weights_of(const std::vector<Tensor>& tensors) {
  std::vector<TensorToWrite> t;
  for (const Tensor& x : tensors) {
    std::vector<std::byte> bytes(x.values.size() * sizeof(float));
    std::memcpy(bytes.data(), x.values.data(), bytes.size());
    t.push_back({x.name, StDType::f32, x.shape, std::move(bytes)});
  }
  return Weights<Net>::from(SafetensorsFile::from_bytes(encode_safetensors(t), "hand-worked"));
}

/// Runs Net on one image `in` with `w` and returns its output.
template <class Net>
std::vector<float> run(const Weights<Net>& w, const std::vector<float>& in) {
  CpuEngine<Net> engine(w, 1);
  std::vector<float> out(static_cast<std::size_t>(Net::output_spec.shape.numel()), std::nanf(""));
  engine.forward(in, out, 1);
  return out;
}
template <class Net>
std::vector<float> run(const std::vector<float>& in) {
  return run<Net>(Weights<Net>::random(0), in);
}

void check_near(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
  }
}

}  // namespace

TEST_CASE("hardswish, hardsigmoid and mish at their corners") {
  const std::vector<float> x = {-4.0f, -3.0f, -1.0f, 0.0f, 1.0f, 3.0f, 5.0f, -20.0f, 50.0f};
  using Swish = decltype(input<9, 1, 1> | hardswish);
  using Sig = decltype(input<9, 1, 1> | hardsigmoid);
  using Mish = decltype(input<9, 1, 1> | mish);
  // x·relu6(x+3)/6: 0 up to −3, x from 3 on.
  check_near(run<Swish>(x), {0, 0, -1.0 / 3, 0, 2.0 / 3, 3, 5, 0, 50});
  // relu6(x+3)/6.
  check_near(run<Sig>(x), {0, 0, 1.0 / 3, 0.5, 2.0 / 3, 1, 1, 0, 1});
  // x·tanh(ln(1+eˣ)).
  check_near(run<Mish>(x), {-0.0725917408, -0.1456474613, -0.3034014614, 0, 0.8650983883,
                            2.9865350050, 4.9995520775, -4.122307241e-08, 50});
}

TEST_CASE("an activation after a conv fuses into it, whichever function it is") {
  using Net = decltype(input<1, 2, 2> | conv<1, 1> | hardswish | flatten);
  static_assert(Net::graph.num_ops == 1 && Net::graph.ops[0].act.kind == Act::hardswish);
  static_assert(Net::graph.ops[0].label.view() == "conv0+hardswish1");
  // conv 1x1: 2x − 1 on (−1, 0, 1, 2) → (−3, −1, 1, 3) → hardswish (0, −1/3, 2/3, 3).
  const auto w = weights_of<Net>({{"0.weight", {1, 1, 1, 1}, {2.0f}}, {"0.bias", {1}, {-1.0f}}});
  check_near(run<Net>(w, {-1, 0, 1, 2}), {0, -1.0 / 3, 2.0 / 3, 3});
}
