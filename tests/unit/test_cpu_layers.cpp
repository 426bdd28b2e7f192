// The CPU reference's layers on hand-worked values: hardswish, hardsigmoid, mish, upsample,
// adaptive average pooling, concat, channel gates and conv_transpose.
#include <doctest/doctest.h>

#include <algorithm>
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

TEST_CASE("upsample nearest repeats each pixel by the scale factors") {
  using Net = decltype(input<1, 2, 2> | upsample<HW{2, 3}> | flatten);
  static_assert(Net::output_spec.shape == features(24));
  check_near(run<Net>({1, 2, 3, 4}), {1, 1, 1, 2, 2, 2,  //
                                      1, 1, 1, 2, 2, 2,  //
                                      3, 3, 3, 4, 4, 4,  //
                                      3, 3, 3, 4, 4, 4});
}

TEST_CASE("upsample bilinear, align_corners false: half-pixel centres, clamped at the edges") {
  // 1-D from (a, b) by 2: sources −0.25→0, 0.25, 0.75, 1.25→ b: a, ¾a+¼b, ¼a+¾b, b. On the plane
  // 2y + x (values 0, 1, 2, 3) that is 2·(0, .25, .75, 1)ᵧ + (0, .25, .75, 1)ₓ.
  using Net = decltype(input<1, 2, 2> | upsample<2, UpsampleOpts{.mode = Interp::bilinear}> | flatten);
  check_near(run<Net>({0, 1, 2, 3}), {0.0, 0.25, 0.75, 1.0,   //
                                      0.5, 0.75, 1.25, 1.5,   //
                                      1.5, 1.75, 2.25, 2.5,   //
                                      2.0, 2.25, 2.75, 3.0});
}

TEST_CASE("upsample bilinear, align_corners true: corners coincide, scale (in-1)/(out-1)") {
  // Rows 2 → 4: sources 0, 1/3, 2/3, 1; columns 3 → 6: sources 0, 0.4, 0.8, 1.2, 1.6, 2.
  // On the plane 10y + x every output is 10·row source + column source.
  using Net = decltype(input<1, 2, 3> |
                       upsample<2, UpsampleOpts{.mode = Interp::bilinear, .align_corners = true}> |
                       flatten);
  const auto out = run<Net>({0, 1, 2, 10, 11, 12});
  std::vector<double> want;
  for (double y : {0.0, 1.0 / 3, 2.0 / 3, 1.0}) {
    for (double x : {0.0, 0.4, 0.8, 1.2, 1.6, 2.0}) {
      want.push_back(10 * y + x);
    }
  }
  check_near(out, want);
  CHECK(out[6 + 1] == doctest::Approx(10.0 / 3 + 0.4));  // row 1, column 1, by hand
}

TEST_CASE("adaptive_avg_pool: PyTorch's start and end indices, overlapping windows") {
  // 5 rows → 3: [0, 2), [1, 4), [3, 5); 5 columns → 2: [0, 3), [2, 5). On the plane 5y + x the
  // mean is 5·(0.5, 2, 3.5)ᵧ + (1, 3)ₓ.
  using Net = decltype(input<1, 5, 5> | adaptive_avg_pool<3, 2> | flatten);
  std::vector<float> x(25);
  for (int i = 0; i < 25; ++i) {
    x[static_cast<std::size_t>(i)] = static_cast<float>(i);
  }
  check_near(run<Net>(x), {3.5, 5.5, 11, 13, 18.5, 20.5});
  // An output larger than the input repeats pixels: 2 → 3 takes [0, 1), [0, 2), [1, 2).
  using Up = decltype(input<1, 1, 2> | adaptive_avg_pool<1, 3> | flatten);
  check_near(run<Up>({2, 4}), {2, 3, 4});
  // To 1x1 it is global average pooling.
  using One = decltype(input<2, 3, 3> | adaptive_avg_pool<1>);
  static_assert(One::graph.ops[0].kind == OpKind::global_avg_pool);
  static_assert(Net::graph.ops[0].kind == OpKind::adaptive_avg_pool);
}

TEST_CASE("concat: branches write their channel slices, the identity is copied, images stay apart") {
  // Channels: x, then conv 1x1 → (2x + 1, −x), then the 3x3 max pool (stride 1, padding 1) of
  // a 2x2 image, which is its maximum everywhere.
  using Net = decltype(input<1, 2, 2> |
                       concat(identity, conv<2, 1>, max_pool<3, PoolOpts{.stride = 1, .padding = 1}>) |
                       flatten);
  static_assert(Net::output_spec.shape == features(16));
  static_assert(Net::graph.find_param("0.1.weight") == 0 && Net::graph.find_param("0.1.bias") == 1);
  // The conv and the pool write into the output; only the identity needs a copy.
  static_assert(Net::graph.num_ops == 3 && Net::graph.ops[2].kind == OpKind::copy);
  static_assert(Net::graph.ops[2].label.view() == "0.copy0");
  const auto w = weights_of<Net>({{"0.1.weight", {2, 1, 1, 1}, {2.0f, -1.0f}},
                                  {"0.1.bias", {2}, {1.0f, 0.0f}}});
  CpuEngine<Net> engine(w, 2);
  std::vector<float> out(32, std::nanf(""));
  engine.forward(std::vector<float>{1, 2, 3, 4, -1, -2, -3, -4}, out, 2);
  check_near(std::vector<float>(out.begin(), out.begin() + 16),
             {1, 2, 3, 4, 3, 5, 7, 9, -1, -2, -3, -4, 4, 4, 4, 4});
  check_near(std::vector<float>(out.begin() + 16, out.end()),
             {-1, -2, -3, -4, -1, -3, -5, -7, 1, 2, 3, 4, -1, -1, -1, -1});
}

TEST_CASE("a dense block: each layer's input stays in place as the first channels of its output") {
  // DenseNet's pattern: concat(identity, layer) twice. Neither identity is copied: the first
  // conv writes channels 0..7 of the final 24-channel tensor, each layer its 8, and each layer
  // reads the channels before its own where they lie (the plan makes them slices of it).
  using Net = decltype(input<8, 1, 2> | conv<8, 1> | concat(identity, relu | conv<8, 1>) |
                       concat(identity, batch_norm | relu | conv<8, 1>) | flatten);
  constexpr auto& g = Net::graph;
  static_assert(g.num_ops == 5);  // conv, relu, conv, batch_norm+relu, conv: no copy
  static_assert(g.ops[1].kind == OpKind::activation && g.ops[3].kind == OpKind::batch_norm);
  static_assert(g.tensors[g.ops[0].out].view_of == g.tensors[g.ops[4].out].view_of);
  static_assert(g.tensors[g.ops[0].out].channel_offset == 0);
  static_assert(g.tensors[g.ops[2].out].channel_offset == 8);
  static_assert(g.tensors[g.ops[4].out].channel_offset == 16);
  static_assert(g.tensors[g.ops[3].in].view_of >= 0 && g.tensors[g.ops[3].in].spec.shape.c == 16);
  // conv0: identity; layer 1: 2·relu(x) + 1; layer 2: batch norm as the identity (var + eps = 1),
  // then relu, then channel k of its conv adds input channels k and 8 + k:
  // relu(x) + relu(2·relu(x) + 1) = 3·relu(x) + 1.
  std::vector<float> eye(64, 0.0f);
  std::vector<float> two(64, 0.0f);
  std::vector<float> pair(128, 0.0f);
  for (int k = 0; k < 8; ++k) {
    eye[k * 8 + k] = 1.0f;
    two[k * 8 + k] = 2.0f;
    pair[k * 16 + k] = 1.0f;
    pair[k * 16 + 8 + k] = 1.0f;
  }
  const auto w = weights_of<Net>({{"0.weight", {8, 8, 1, 1}, eye},
                                  {"0.bias", {8}, std::vector<float>(8, 0.0f)},
                                  {"1.1.1.weight", {8, 8, 1, 1}, two},
                                  {"1.1.1.bias", {8}, std::vector<float>(8, 1.0f)},
                                  {"2.1.0.weight", {16}, std::vector<float>(16, 1.0f)},
                                  {"2.1.0.bias", {16}, std::vector<float>(16, 0.0f)},
                                  {"2.1.0.running_mean", {16}, std::vector<float>(16, 0.0f)},
                                  {"2.1.0.running_var", {16}, std::vector<float>(16, 1.0f - 1e-5f)},
                                  {"2.1.2.weight", {8, 16, 1, 1}, pair},
                                  {"2.1.2.bias", {8}, std::vector<float>(8, 0.0f)}});
  // Two images of 8 channels × 2 pixels, signs mixed; the second is the first negated.
  std::vector<float> in(32);
  for (int i = 0; i < 16; ++i) {
    in[i] = static_cast<float>(i % 5) - 2.0f + 0.25f * static_cast<float>(i);
    in[16 + i] = -in[i];
  }
  CpuEngine<Net> engine(w, 2);
  std::vector<float> out(96, std::nanf(""));
  engine.forward(in, out, 2);
  std::vector<double> want;
  for (int n = 0; n < 2; ++n) {
    for (const float a : {0.0f, 2.0f, 3.0f}) {  // (x, 2·relu(x) + 1, 3·relu(x) + 1), NCHW order
      for (int i = 0; i < 16; ++i) {
        const float x = in[static_cast<std::size_t>(n * 16 + i)];
        want.push_back(a == 0.0f ? x : a * std::max(x, 0.0f) + 1.0f);
      }
    }
  }
  check_near(out, want);
}

TEST_CASE("concat: nested, of flat features, and as a residual's main branch") {
  // A nested concat's slices move into the outer output: (x, (x, 3x)) with conv 1x1 weight 3.
  using Nested = decltype(input<1, 1, 2> | concat(identity, concat(identity, conv<1, 1>)) | flatten);
  const auto wn = weights_of<Nested>({{"0.1.1.weight", {1, 1, 1, 1}, {3.0f}}, {"0.1.1.bias", {1}, {0.0f}}});
  check_near(run<Nested>(wn, {1, 2}), {1, 2, 1, 2, 3, 6});
  // Flat features: (dense(x), x).
  using Flat = decltype(input<2, 1, 1> | flatten | concat(dense<1>, identity));
  const auto wf = weights_of<Flat>({{"1.0.weight", {1, 2}, {1.0f, 10.0f}}, {"1.0.bias", {1}, {0.5f}}});
  check_near(run<Flat>(wf, {2, 3}), {32.5, 2, 3});
  // A concat as a residual's main branch: the add reads the assembled output.
  using Res = decltype(input<1, 1, 2> | conv<2, 1> |
                       residual<relu>(concat(conv<1, 1>, conv<1, 1>)) | flatten);
  const auto wr = weights_of<Res>({{"0.weight", {2, 1, 1, 1}, {1.0f, 1.0f}},
                                   {"0.bias", {2}, {0.0f, 0.0f}},
                                   {"1.0.weight", {1, 2, 1, 1}, {1.0f, 0.0f}},
                                   {"1.0.bias", {1}, {0.0f}},
                                   {"1.1.weight", {1, 2, 1, 1}, {-2.0f, 0.0f}},
                                   {"1.1.bias", {1}, {0.0f}}});
  // y = (x, x); main = (x, −2x); out = relu(main + y) = (relu(2x), relu(−x)).
  check_near(run<Res>(wr, {1, -3}), {2, 0, 0, 3});
}

TEST_CASE("multiply: a (C,1,1) gate scales each channel") {
  // Gate = conv 1x1 (2 → 2) of the per-channel means; x = channel 0 (1, 3), channel 1 (2, 6):
  // means (2, 4); gate = (0.5·2, 1·4 − 1) = (1, 3) → out (1, 3, 6, 18).
  using Net = decltype(input<2, 1, 2> | multiply(global_avg_pool | conv<2, 1>) | flatten);
  static_assert(Net::graph.find_param("0.1.weight") == 0);
  static_assert(Net::graph.ops[Net::graph.num_ops - 1].kind == OpKind::multiply);
  static_assert(Net::graph.ops[Net::graph.num_ops - 1].label.view() == "multiply0+mul");
  const auto w = weights_of<Net>({{"0.1.weight", {2, 2, 1, 1}, {0.5f, 0.0f, 0.0f, 1.0f}},
                                  {"0.1.bias", {2}, {0.0f, -1.0f}}});
  check_near(run<Net>(w, {1, 3, 2, 6}), {1, 3, 6, 18});
}

TEST_CASE("squeeze_excite: torchvision's SqueezeExcitation, with hardsigmoid as in MobileNetV3") {
  using Net = decltype(input<2, 1, 2> | named<"">(squeeze_excite<2, 1, relu, hardsigmoid>) | flatten);
  static_assert(Net::graph.num_params == 4);
  static_assert(Net::graph.find_param("fc1.weight") == 0 && Net::graph.find_param("fc1.bias") == 1);
  static_assert(Net::graph.find_param("fc2.weight") == 2 && Net::graph.find_param("fc2.bias") == 3);
  // means (2, 4); fc1 = relu(2 + 4 − 3) = 3; fc2 = (1·3 − 3, 2·3 − 3) = (0, 3);
  // hardsigmoid → (0.5, 1); out = (0.5, 1.5, 2, 6).
  const auto w = weights_of<Net>({{"fc1.weight", {1, 2, 1, 1}, {1.0f, 1.0f}},
                                  {"fc1.bias", {1}, {-3.0f}},
                                  {"fc2.weight", {2, 1, 1, 1}, {1.0f, 2.0f}},
                                  {"fc2.bias", {2}, {-3.0f, -3.0f}}});
  check_near(run<Net>(w, {1, 3, 2, 6}), {0.5, 1.5, 2, 6});
}

TEST_CASE("conv_transpose: stride, padding and output_padding by hand") {
  // Kernel 2, stride 2: each input pixel stamps x·w into its own 2x2 block.
  using Up = decltype(input<1, 2, 2> | conv_transpose<1, 2, ConvTransposeOpts{.stride = 2}> | flatten);
  static_assert(Up::graph.params[0].spec.dims[0] == 1 && Up::graph.params[0].spec.dims[1] == 1);
  const auto wu = weights_of<Up>({{"0.weight", {1, 1, 2, 2}, {1, 10, 100, 1000}}, {"0.bias", {1}, {0}}});
  check_near(run<Up>(wu, {1, 2, 3, 4}), {1, 10, 2, 20, 100, 1000, 200, 2000,  //
                                         3, 30, 4, 40, 300, 3000, 400, 4000});
  // Kernel 3 of ones, stride 2, padding 1, output_padding 1: (2 − 1)·2 − 2 + 2 + 1 + 1 = 4. Output
  // row oy gathers input rows iy with 2·iy − 1 + ky = oy: row 0 ← {0}, 1 ← {0, 1}, 2, 3 ← {1}.
  using Pad = decltype(input<1, 2, 2> |
                       conv_transpose<1, 3, ConvTransposeOpts{.stride = 2, .padding = 1, .output_padding = 1,
                                                              .bias = false}> |
                       flatten);
  static_assert(Pad::output_spec.shape == features(16));
  const auto wp = weights_of<Pad>({{"0.weight", {1, 1, 3, 3}, std::vector<float>(9, 1.0f)}});
  check_near(run<Pad>(wp, {1, 2, 3, 4}), {1, 3, 2, 2, 4, 10, 6, 6, 3, 7, 4, 4, 3, 7, 4, 4});
}

TEST_CASE("conv_transpose: groups, and batch_norm folded into it") {
  // 2 groups, 2 → 4 channels, 1x1: weight (2, 2, 1, 1) = ci0 → (1, 2), ci1 → (3, 4). On x = (1, 2):
  // (1, 2, 6, 8); batch_norm (mean 1, 0, 0, 0; var 4, 1, 1, 1; γ 1, 2, 1, 1; β 0, 0, 0, 0.5)
  // → (0, 4, 6, 8.5).
  using Net = decltype(input<2, 1, 1> | conv_transpose<4, 1, ConvTransposeOpts{.groups = 2, .bias = false}> |
                       batch_norm | flatten);
  static_assert(Net::graph.num_ops == 1 && Net::graph.ops[0].bn >= 0);
  static_assert(Net::graph.ops[0].label.view() == "conv_transpose0+bn1");
  const float e = 1e-5f;
  const auto w = weights_of<Net>({{"0.weight", {2, 2, 1, 1}, {1, 2, 3, 4}},
                                  {"1.weight", {4}, {1, 2, 1, 1}},
                                  {"1.bias", {4}, {0, 0, 0, 0.5f}},
                                  {"1.running_mean", {4}, {1, 0, 0, 0}},
                                  {"1.running_var", {4}, {4 - e, 1 - e, 1 - e, 1 - e}}});
  check_near(run<Net>(w, {1, 2}), {0, 4, 6, 8.5});
}
