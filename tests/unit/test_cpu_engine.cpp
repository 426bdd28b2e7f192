// CpuEngine: batch limits, batch independence, the arena laid out by the plan, hand-worked ops.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include <strata/models/mnist_cnn.hpp>
#include <strata/models/resnet.hpp>
#include <strata/strata.hpp>

using namespace strata;

namespace {
std::vector<float> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) {
    x = u(rng);
  }
  return v;
}
}  // namespace

TEST_CASE("a batch outside [1, max_batch] is a clear error") {
  using Net = models::MnistCnn;
  CpuEngine<Net> engine(Weights<Net>::random(1), 4);
  std::vector<float> in(5 * 784, 0.5f);
  std::vector<float> out(5 * 10);
  CHECK_THROWS_WITH_AS(engine.forward(in, out, 5),
                       doctest::Contains("batch 5 is outside [1, 4], the maximum this engine was built for"),
                       Error);
  CHECK_THROWS_AS(engine.forward(in, out, 0), Error);
  CHECK_THROWS_WITH_AS(engine.forward(std::span<const float>(in).first(100), out, 1),
                       doctest::Contains("input holds 100 floats, batch 1 needs 784"), Error);
  CHECK_THROWS_AS(CpuEngine<Net>(Weights<Net>::random(1), 0), Error);
}

TEST_CASE("each image's result is independent of the batch it runs in, and the arena stays put") {
  using Net = decltype(input<16, 8, 8> | models::basic_block<32, 2, true>() | global_avg_pool |
                       flatten | dense<5> | softmax);
  CpuEngine<Net> engine(Weights<Net>::random(2), 3);
  const float* arena = engine.arena().data();
  const auto in = random_vector(3 * 16 * 64, 9);
  std::vector<float> all(3 * 5);
  engine.forward(in, all, 3);
  for (int n = 0; n < 3; ++n) {
    std::vector<float> one(5, std::nanf(""));
    engine.forward(std::span<const float>(in).subspan(static_cast<std::size_t>(n) * 1024, 1024), one, 1);
    for (int k = 0; k < 5; ++k) {
      CHECK(one[static_cast<std::size_t>(k)] == all[static_cast<std::size_t>(n * 5 + k)]);
    }
  }
  CHECK(engine.arena().data() == arena);
  CHECK(engine.arena().size() == static_cast<std::size_t>(Net::plan.arena_bytes(3) / 4));
}

TEST_CASE("hand-worked: 2x2 input, 2x2 conv, ceil-mode average pool, softmax") {
  // conv 1→1, kernel 2x2 of ones, bias 0.5, on [[1, 2], [3, 4]] → 10.5; relu keeps it.
  using Conv = decltype(input<1, 2, 2> | conv<1, 2> | relu | flatten);
  std::vector<TensorToWrite> t(2);
  t[0] = {"0.weight", StDType::f32, {1, 1, 2, 2}, std::vector<std::byte>(16)};
  t[1] = {"0.bias", StDType::f32, {1}, std::vector<std::byte>(4)};
  const float ones[4] = {1, 1, 1, 1};
  const float half = 0.5f;
  std::memcpy(t[0].data.data(), ones, 16);
  std::memcpy(t[1].data.data(), &half, 4);
  CpuEngine<Conv> conv(Weights<Conv>::from(SafetensorsFile::from_bytes(encode_safetensors(t), "t")), 1);
  std::vector<float> out(1);
  conv.forward(std::vector<float>{1, 2, 3, 4}, out, 1);
  CHECK(out[0] == 10.5f);

  // avg_pool 2x2, ceil_mode, on a 3x3 ramp 0..8: windows {0,1,3,4}/4, {2,5}/2, {6,7}/2, {8}/1.
  using Pool = decltype(input<1, 3, 3> | avg_pool<2, PoolOpts{.ceil_mode = true}> | flatten);
  static_assert(Pool::output_spec.shape == features(4));
  CpuEngine<Pool> pool(Weights<Pool>::random(0), 1);
  std::vector<float> p(4);
  pool.forward(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8}, p, 1);
  CHECK(p[0] == 2.0f);
  CHECK(p[1] == 3.5f);
  CHECK(p[2] == 6.5f);
  CHECK(p[3] == 8.0f);

  // softmax of (0, ln 3) = (1/4, 3/4).
  using Soft = decltype(input<2, 1, 1> | flatten | softmax);
  CpuEngine<Soft> soft(Weights<Soft>::random(0), 1);
  std::vector<float> s(2);
  soft.forward(std::vector<float>{0.0f, std::log(3.0f)}, s, 1);
  CHECK(s[0] == doctest::Approx(0.25));
  CHECK(s[1] == doctest::Approx(0.75));
}

TEST_CASE("a residual whose main branch starts with relu adds the un-activated input") {
  // out = relu(y) + y for y = conv(x): negative y must survive through the shortcut.
  using Net = decltype(input<1, 3, 3> | conv<2, 1> | residual(relu));
  const auto w = Weights<Net>::random(4);
  CpuEngine<Net> engine(w, 1);
  const auto x = random_vector(9, 21);
  std::vector<float> out(18);
  engine.forward(x, out, 1);
  int negative = 0;
  for (int o = 0; o < 2; ++o) {
    for (int p = 0; p < 9; ++p) {
      const float y = w["0.weight"][static_cast<std::size_t>(o)] * x[static_cast<std::size_t>(p)] +
                      w["0.bias"][static_cast<std::size_t>(o)];
      negative += y < 0.0f;
      CHECK(out[static_cast<std::size_t>(o * 9 + p)] == doctest::Approx((y > 0 ? y : 0.0f) + y));
    }
  }
  CHECK(negative > 0);  // the case that the wrong fusion got wrong is exercised
}

TEST_CASE("relu keeps NaN, as PyTorch does") {
  CHECK(std::isnan(cpu::activate(ActDesc{Act::relu}, std::nanf(""))));
  CHECK(cpu::activate(ActDesc{Act::relu}, -2.0f) == 0.0f);
}
