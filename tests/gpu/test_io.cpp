// The ways into an engine: input formats (f32, f16, 8-bit HWC images) with the normalization
// done on the GPU, infer()'s staged upload, and enqueue()'s overlapped batches from page-locked
// memory — each checked against the CPU reference on the same (normalized) values.
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <random>

#include "gpu_test.hpp"
#include "strata/core/dtype.hpp"
#include "strata/models/mnist_cnn.hpp"

namespace {
using namespace strata;
using strata_test::cpu_reference;
using strata_test::rel_error;
using strata_test::to_half;
using strata_test::tolerance;
using Mnist = models::MnistCnn;

// A 3-channel net whose first conv has stride 2: 16-bit engines read its input space-to-depth.
constexpr auto stem_net = input<3, 30, 34> |
                          conv<16, 7, ConvOpts{.stride = 2, .padding = 3, .bias = false}> |
                          batch_norm | relu | max_pool<3, PoolOpts{.stride = 2, .padding = 1}> |
                          conv<24, 3, ConvOpts{.padding = 1}> | relu | global_avg_pool | flatten |
                          dense<10>;
using Stem = std::remove_cv_t<decltype(stem_net)>;

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<std::uint8_t> v(n);
  for (auto& x : v) {
    x = static_cast<std::uint8_t>(d(rng));
  }
  return v;
}

/// What the engine should compute from 8-bit HWC images: (x·scale − mean[c]) / stddev[c], NCHW.
template <class Net>
std::vector<float> normalized_nchw(const std::vector<std::uint8_t>& hwc, int batch,
                                   const cuda::InputOptions& o) {
  constexpr Shape s = std::remove_cvref_t<Net>::input_spec.shape;
  std::vector<float> x(static_cast<std::size_t>(batch) * s.numel());
  for (int n = 0; n < batch; ++n) {
    for (int c = 0; c < s.c; ++c) {
      const float mean = o.mean.empty() ? 0.0f : o.mean[static_cast<std::size_t>(c)];
      const float sd = o.stddev.empty() ? 1.0f : o.stddev[static_cast<std::size_t>(c)];
      for (int p = 0; p < s.h * s.w; ++p) {
        const std::uint8_t v = hwc[(static_cast<std::size_t>(n) * s.h * s.w + p) * s.c + c];
        x[(static_cast<std::size_t>(n) * s.c + c) * s.h * s.w + p] =
            (static_cast<float>(v) * o.scale - mean) / sd;
      }
    }
  }
  return x;
}

cuda::InputOptions imagenet_u8() {
  return {.format = cuda::InputFormat::u8_hwc,
          .scale = 1.0f / 255.0f,
          .mean = {0.485f, 0.456f, 0.406f},
          .stddev = {0.229f, 0.224f, 0.225f}};
}

template <class Net, DType P>
void check_u8(const cuda::InputOptions& io, const char* name) {
  using N = std::remove_cvref_t<Net>;
  constexpr int max_batch = 17;
  const auto w = Weights<Net>::random(7);
  const auto bytes = random_bytes(static_cast<std::size_t>(max_batch * N::input_spec.shape.numel()), 9);
  const auto ref = cpu_reference<Net>(w, normalized_nchw<Net>(bytes, max_batch, io), max_batch);
  cuda::Engine<Net, P> gpu(w, {.max_batch = max_batch, .input = io});
  for (int b : {1, 3, 17}) {
    std::vector<float> out(static_cast<std::size_t>(b * N::output_spec.shape.numel()),
                           std::numeric_limits<float>::quiet_NaN());
    gpu.infer(bytes, out, b);
    const double err = rel_error(out, ref, out.size());
    MESSAGE(std::string(name) << " " << dtype_name(P) << " u8 HWC batch " << b << ": rel. error " << err);
    CHECK(err < tolerance(P));
  }
}

}  // namespace

TEST_CASE("8-bit HWC images, normalized on the GPU, give the CPU's output on the normalized input") {
  // The MNIST CNN: one channel, scale only (MNIST's usual 1/255 and mean/std).
  const cuda::InputOptions mnist{.format = cuda::InputFormat::u8_hwc,
                                 .scale = 1.0f / 255.0f,
                                 .mean = {0.1307f},
                                 .stddev = {0.3081f}};
  check_u8<Mnist, DType::f32>(mnist, "mnist");
  check_u8<Mnist, DType::f16>(mnist, "mnist");
  check_u8<Mnist, DType::bf16>(mnist, "mnist");
  // Three channels, ImageNet's normalization; 16-bit engines read it space-to-depth.
  REQUIRE(cuda::NetStorage<Stem, DType::f16>::describe().s2d_op >= 0);
  check_u8<Stem, DType::f32>(imagenet_u8(), "stem");
  check_u8<Stem, DType::f16>(imagenet_u8(), "stem");
  check_u8<Stem, DType::bf16>(imagenet_u8(), "stem");
  // Bytes with no normalization at all: the values 0..255 themselves.
  check_u8<Stem, DType::f16>({.format = cuda::InputFormat::u8_hwc}, "stem (raw bytes)");
}

TEST_CASE("f16 input gives the CPU's output on the same half values") {
  const auto w = Weights<Stem>::random(3);
  const auto [h, vals] = to_half(strata_test::random_floats(5 * 3 * 30 * 34, 4));
  const auto ref = cpu_reference<Stem>(w, vals, 5);
  const cuda::InputOptions f16{.format = cuda::InputFormat::f16};
  cuda::Engine<Stem, DType::f16> a(w, {.max_batch = 5, .input = f16});
  cuda::Engine<Stem, DType::f32> b(w, {.max_batch = 5, .input = f16});
  std::vector<float> out(50, std::numeric_limits<float>::quiet_NaN());
  a.infer(h, out, 5);
  CHECK(rel_error(out, ref, out.size()) < tolerance(DType::f16));
  std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
  b.infer(h, out, 5);
  CHECK(rel_error(out, ref, out.size()) < tolerance(DType::f32));
  // forward() from the engine's own device buffer, of the input's type.
  STRATA_CUDA_CHECK(cudaMemcpy(b.input_buffer<__half>(), h.data(), h.size() * sizeof(__half),
                               cudaMemcpyHostToDevice));
  b.forward(b.input_buffer<__half>(), b.output_buffer(), 5, b.stream());
  std::vector<float> dev(50);
  STRATA_CUDA_CHECK(cudaStreamSynchronize(b.stream()));
  STRATA_CUDA_CHECK(cudaMemcpy(dev.data(), b.output_buffer(), 50 * sizeof(float),
                               cudaMemcpyDeviceToHost));
  CHECK(rel_error(dev, ref, dev.size()) < tolerance(DType::f32));
}

namespace {
// First convs that Strata's generated kernel runs (fewer input channels than slots): the input
// read by two of them (a strided conv and its 1x1 shortcut), and an NHWC-declared input.
using TwoReaders = strata_test::nets::TwoFirstConvs;
constexpr auto nhwc_in_net = input<3, 12, 10, Layout::nhwc> | conv<16, 3, ConvOpts{.padding = 1}>
    | relu | max_pool<2> | flatten | dense<4>;
using NhwcIn = std::remove_cv_t<decltype(nhwc_in_net)>;

/// Runs Net in P from `in` (given in `opts`' format) at batches 1, 3, 17 against `ref`; the
/// plan must have no input step (the first convs read the caller's input).
template <class Net, DType P, class In>
void check_no_input_step(const std::vector<In>& in, const std::vector<float>& ref,
                         const cuda::InputOptions& opts, std::uint64_t seed, const char* name) {
  using N = std::remove_cvref_t<Net>;
  // (fused_max_batch 0: batch 1 would otherwise run the fused-network kernel for f32 input)
  cuda::Engine<Net, P> e(Weights<Net>::random(seed),
                         {.max_batch = 17, .fused_max_batch = 0, .input = opts});
  for (int b : {1, 3, 17}) {
    const std::string runs = e.describe(b);
    INFO(name << " batch " << b << ":\n" << runs);
    CHECK(runs.find("input: ") == std::string::npos);
    CHECK(runs.find("reads the caller's input") != std::string::npos);
    std::vector<float> out(static_cast<std::size_t>(b * N::output_spec.shape.numel()),
                           std::numeric_limits<float>::quiet_NaN());
    e.infer(in, out, b);
    const double err = rel_error(out, ref, out.size());
    MESSAGE(name << " " << dtype_name(P) << " batch " << b << ": rel. error " << err);
    CHECK(err < tolerance(P));
  }
}
}  // namespace

TEST_CASE("a generated first conv reads the caller's input itself: the plan has no input step") {
  // MNIST: f32 NCHW, and 8-bit HWC with normalization, in f16 and bf16.
  {
    const auto w = Weights<Mnist>::random(61);
    const auto x = strata_test::random_floats(17 * 784, 62);
    const auto ref = cpu_reference<Mnist>(w, x, 17);
    check_no_input_step<Mnist, DType::f16>(x, ref, {}, 61, "mnist f32 in");
    check_no_input_step<Mnist, DType::bf16>(x, ref, {}, 61, "mnist f32 in");
    const cuda::InputOptions u8{.format = cuda::InputFormat::u8_hwc, .scale = 1.0f / 255.0f,
                                .mean = {0.1307f}, .stddev = {0.3081f}};
    const auto bytes = random_bytes(17 * 784, 63);
    const auto ref8 = cpu_reference<Mnist>(w, normalized_nchw<Mnist>(bytes, 17, u8), 17);
    check_no_input_step<Mnist, DType::f16>(bytes, ref8, u8, 61, "mnist u8 in");
  }
  // The input read by two generated convs; f16 input (NCHW).
  {
    const auto w = Weights<TwoReaders>::random(64);
    const auto [h, vals] = to_half(strata_test::random_floats(17 * 3 * 15 * 13, 65));
    const auto ref = cpu_reference<TwoReaders>(w, vals, 17);
    check_no_input_step<TwoReaders, DType::f16>(h, ref, {.format = cuda::InputFormat::f16}, 64,
                                                "two readers f16 in");
    const auto bytes = random_bytes(17 * 3 * 15 * 13, 68);
    const auto ref8 =
        cpu_reference<TwoReaders>(w, normalized_nchw<TwoReaders>(bytes, 17, imagenet_u8()), 17);
    check_no_input_step<TwoReaders, DType::bf16>(bytes, ref8, imagenet_u8(), 64,
                                                 "two readers u8 in");
  }
  // An NHWC-declared f32 input.
  {
    const auto w = Weights<NhwcIn>::random(66);
    const auto x = strata_test::random_floats(17 * 3 * 12 * 10, 67);
    const auto ref = cpu_reference<NhwcIn>(w, x, 17);
    check_no_input_step<NhwcIn, DType::bf16>(x, ref, {}, 66, "nhwc f32 in");
  }
  // f32 engines keep the input step (cuDNN reads the converted input).
  cuda::Engine<Mnist, DType::f32> f32(Weights<Mnist>::random(1), {.max_batch = 4});
  CHECK(f32.describe(4).find("input: ") != std::string::npos);
}

TEST_CASE("infer() uploads a batch larger than its staging piece in order") {
  // 1500 MNIST images in f32 are 4.7 MB: two 4 MiB pieces through the pinned staging.
  const auto w = Weights<Mnist>::random(5);
  constexpr int batch = 1500;
  const auto in = strata_test::random_floats(static_cast<std::size_t>(batch) * 784, 6);
  cuda::Engine<Mnist, DType::f32> gpu(w, {.max_batch = batch});
  std::vector<float> via_infer(batch * 10, std::numeric_limits<float>::quiet_NaN());
  gpu.infer(in, via_infer, batch);
  STRATA_CUDA_CHECK(cudaMemcpy(gpu.input_buffer(), in.data(), in.size() * sizeof(float),
                               cudaMemcpyHostToDevice));
  gpu.forward(gpu.input_buffer(), gpu.output_buffer(), batch, gpu.stream());
  std::vector<float> via_forward(batch * 10);
  STRATA_CUDA_CHECK(cudaStreamSynchronize(gpu.stream()));
  STRATA_CUDA_CHECK(cudaMemcpy(via_forward.data(), gpu.output_buffer(),
                               via_forward.size() * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK(via_infer == via_forward);
  // And the last images against the CPU (the piece boundary lies inside image 1337).
  const std::vector<float> tail(in.end() - 200 * 784, in.end());
  const auto ref = cpu_reference<Mnist>(w, tail, 200);
  CHECK(rel_error(std::span<const float>(via_infer).last(2000), ref, 2000) < tolerance(DType::f32));
}

TEST_CASE("enqueue(): batches from page-locked memory, overlapped, each with the CPU's output") {
  for (int slots : {2, 1}) {
    const auto w = Weights<Stem>::random(11);
    const cuda::InputOptions io = imagenet_u8();
    cuda::Engine<Stem, DType::f16> gpu(w, {.max_batch = 8, .input = io, .io_slots = slots});
    constexpr std::array<int, 7> batches{8, 3, 8, 1, 5, 8, 2};
    constexpr std::size_t in_n = 3 * 30 * 34;
    cuda::PinnedBuffer in(batches.size() * 8 * in_n);
    cuda::PinnedBuffer out(batches.size() * 8 * 10 * sizeof(float));
    const auto bytes = random_bytes(batches.size() * 8 * in_n, 21);
    std::memcpy(in.get(), bytes.data(), bytes.size());
    std::fill_n(out.as<float>(), batches.size() * 80, std::numeric_limits<float>::quiet_NaN());
    std::vector<cuda::Pending> pending;
    for (std::size_t k = 0; k < batches.size(); ++k) {
      const int b = batches[k];
      pending.push_back(gpu.enqueue(
          std::span<const std::uint8_t>(in.as<std::uint8_t>() + k * 8 * in_n, b * in_n),
          std::span<float>(out.as<float>() + k * 80, static_cast<std::size_t>(b) * 10), b));
    }
    for (std::size_t k = 0; k < batches.size(); ++k) {
      pending[k].wait();
      CHECK(pending[k].ready());
      const int b = batches[k];
      const std::vector<std::uint8_t> imgs(bytes.begin() + static_cast<std::ptrdiff_t>(k * 8 * in_n),
                                           bytes.begin() + static_cast<std::ptrdiff_t>((k * 8 + b) * in_n));
      const auto ref = cpu_reference<Stem>(w, normalized_nchw<Stem>(imgs, b, io), b);
      const double err =
          rel_error(std::span<const float>(out.as<float>() + k * 80, b * 10), ref, b * 10);
      MESSAGE("io_slots " << slots << ", enqueued batch " << k << " (" << b
                          << " images): rel. error " << err);
      CHECK(err < tolerance(DType::f16));
    }
    // infer() after enqueue() on the same engine still answers correctly.
    std::vector<float> again(30, std::numeric_limits<float>::quiet_NaN());
    gpu.infer(std::span<const std::uint8_t>(bytes.data(), 3 * in_n), again, 3);
    const std::vector<std::uint8_t> first3(bytes.begin(), bytes.begin() + 3 * in_n);
    const auto ref3 = cpu_reference<Stem>(w, normalized_nchw<Stem>(first3, 3, io), 3);
    CHECK(rel_error(again, ref3, 30) < tolerance(DType::f16));
  }
}

TEST_CASE("the ways in refuse what they cannot take, naming it") {
  const auto w = Weights<Mnist>::random(1);
  cuda::Engine<Mnist, DType::f16> u8(w, {.max_batch = 2, .input = {.format = cuda::InputFormat::u8_hwc}});
  std::vector<float> floats(2 * 784);
  std::vector<float> out(20);
  try {
    u8.infer(floats, out, 2);
    FAIL("f32 input accepted by a u8 engine");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("f32") != std::string::npos);
    CHECK(m.find("u8 HWC") != std::string::npos);
  }
  std::vector<std::uint8_t> pageable(2 * 784);
  try {
    (void)u8.enqueue(pageable, out, 2);
    FAIL("pageable memory accepted by enqueue");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("pageable") != std::string::npos);
  }
  std::vector<std::uint8_t> short_input(784);
  CHECK_THROWS_AS(u8.infer(short_input, out, 2), Error);
  CHECK_THROWS_AS((cuda::Engine<Mnist, DType::f32>(
                      w, {.input = {.mean = {0.5f, 0.5f}}})),  // 2 means, 1 channel
                  Error);
  CHECK_THROWS_AS((cuda::Engine<Mnist, DType::f32>(w, {.input = {.stddev = {0.0f}}})), Error);
  CHECK_THROWS_AS((cuda::Engine<Mnist, DType::f32>(
                      w, {.fused_max_batch = 1, .input = {.format = cuda::InputFormat::u8_hwc}})),
                  Error);
  CHECK_THROWS_AS((cuda::Engine<Mnist, DType::f32>(w, {.io_slots = 0})), Error);
}
