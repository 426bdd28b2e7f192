// The fused-network path (one kernel for the whole network): against the CPU reference in f32,
// f16 and bf16 at batches 1, 3, 17 and the maximum, all on the fused path; against the per-op
// path on the same weights and inputs; which path each batch takes; what does not fit.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "../fused_nets.hpp"
#include "gpu_test.hpp"
#include "strata/models/mnist_cnn.hpp"
#include "strata/models/resnet.hpp"

namespace {

using namespace strata;
using strata_test::cpu_reference;
using strata_test::random_floats;
using strata_test::rel_error;

constexpr int kMax = 20;
const std::vector<int> kBatches{1, 3, 17, kMax};

// A residual network: basic blocks with identity and projection shortcuts, a bottleneck, and an
// add that does not fuse into a conv.
constexpr auto residual_net = input<8, 10, 10> | conv<16, 3, ConvOpts{.padding = 1}> | batch_norm
    | relu | models::basic_block<16, 1, false>() | models::basic_block<24, 2, true>()
    | models::bottleneck<8, 1, true>() | residual<relu>(conv<32, 3, ConvOpts{.padding = 1}> | relu)
    | global_avg_pool | flatten | dense<6> | softmax;
using ResidualNet = std::remove_cv_t<decltype(residual_net)>;

// Awkward: stride 2, dilation, groups whose channels are not multiples of 8, a depthwise conv,
// ceil-mode and padded pools with and without count_include_pad, stand-alone batch_norm and
// activations, several activations, dense layers, log_softmax.
constexpr auto awkward_net = input<3, 13, 11> | conv<6, 3, ConvOpts{.padding = 1}> | batch_norm
    | leaky_relu<0.1f> | conv<6, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 3}> | relu6
    | conv<12, 3, ConvOpts{.padding = 2, .dilation = 2, .groups = 3}> | batch_norm | silu
    | max_pool<3, PoolOpts{.stride = 2, .padding = 1, .ceil_mode = true}>
    | conv<12, 3, ConvOpts{.padding = 1, .groups = 12, .bias = false}> | strata::tanh
    | avg_pool<2, PoolOpts{.ceil_mode = true, .count_include_pad = false}> | batch_norm | gelu
    | flatten | dense<9> | elu<1.0f> | dense<5> | log_softmax;
using AwkwardNet = std::remove_cv_t<decltype(awkward_net)>;

// An inverted-residual block on a 10x10 map: the fused kernel takes the whole network at batch 1,
// while the per-op path joins the 1x1 expansion to the depthwise conv after it (OpDesc::expand) —
// the fused kernel, generated before that fold, still needs the expansion's weights.
constexpr auto expand_net = input<8, 10, 10> | conv<16, 3, ConvOpts{.padding = 1}> | relu
    | residual(conv<48, 1> | batch_norm | relu6 | conv<48, 3, ConvOpts{.padding = 1, .groups = 48}>
               | batch_norm | relu6 | conv<16, 1> | batch_norm)
    | global_avg_pool | flatten | dense<5>;
using ExpandNet = std::remove_cv_t<decltype(expand_net)>;

// Tensor-core convs (16-bit, channels in multiples of 16): with a 2x2 max pool, with a residual,
// with a ceil-mode average pool that does not count padding; a 7x7 pool window (49 positions, a
// phase of its own); a first conv that reads the caller's input itself (3 channels, dilation 2;
// a stride-2 first conv would read the input space-to-depth and not fit).
constexpr auto mma_net = input<3, 19, 17> | conv<16, 3, ConvOpts{.padding = 2, .dilation = 2}>
    | batch_norm | relu | conv<32, 3, ConvOpts{.padding = 1}> | silu | max_pool<2>
    | residual<relu>(conv<32, 3, ConvOpts{.padding = 1}> | batch_norm)
    | conv<24, 1> | avg_pool<2, PoolOpts{.ceil_mode = true, .count_include_pad = false}>
    | conv<16, 1> | relu | max_pool<7, PoolOpts{.stride = 1, .padding = 3}>
    | flatten | dense<12> | relu | dense<4> | softmax;
using MmaNet = std::remove_cv_t<decltype(mma_net)>;

// The cases around them: an NHWC input read by the first conv; a tensor-core conv with an
// average pool that counts its padding and one with a ceil-mode max pool (partial windows); a
// 3x3 average pool (9 positions: 16 lanes, no tensor cores); a softmax that is not the last op
// (computed with its dense layer, stored for the next one); a final log_softmax.
constexpr auto edge_net = input<3, 12, 10, Layout::nhwc> | conv<16, 3, ConvOpts{.padding = 1}>
    | relu | conv<16, 3, ConvOpts{.padding = 1}> | batch_norm
    | avg_pool<2, PoolOpts{.padding = 1}> | conv<32, 1> | gelu
    | max_pool<2, PoolOpts{.ceil_mode = true}> | conv<16, 3, ConvOpts{.padding = 1}>
    | avg_pool<3, PoolOpts{.stride = 1, .padding = 1, .count_include_pad = false}>
    | flatten | dense<20> | softmax | dense<3> | log_softmax;
using EdgeNet = std::remove_cv_t<decltype(edge_net)>;

// Larger phases: a 16-channel input (an input phase: the first conv is on tensor cores, stride 2,
// its 320 KB input read from global memory, not staged), a dilated tensor-core conv with a
// residual, a 5x5 ceil-mode pool (25 positions: 32 lanes, 4 items per thread, many rounds), a
// dense layer of 20000 inputs with its softmax (4 warps per output) in one phase.
constexpr auto wide_net = input<16, 100, 100> | conv<16, 3, ConvOpts{.stride = 2, .padding = 1}>
    | relu | residual<relu>(conv<16, 3, ConvOpts{.padding = 2, .dilation = 2}> | batch_norm)
    | conv<32, 3, ConvOpts{.padding = 1}>
    | max_pool<5, PoolOpts{.stride = 2, .padding = 2, .ceil_mode = true}>
    | flatten | dense<8> | softmax;
using WideNet = std::remove_cv_t<decltype(wide_net)>;

using strata_test::TiledNet;  // (tests/fused_nets.hpp)

static_assert(cuda::NetStorage<models::MnistCnn, DType::f16>::fused_fit().fits);
static_assert(cuda::NetStorage<TiledNet, DType::f16>::fused_fit().fits);
static_assert(cuda::NetStorage<EdgeNet, DType::f16>::fused_fit().fits);
static_assert(cuda::NetStorage<WideNet, DType::f16>::fused_fit().fits);
static_assert(cuda::NetStorage<MmaNet, DType::bf16>::fused_fit().fits);
static_assert(cuda::NetStorage<ResidualNet, DType::f16>::fused_fit().fits);
static_assert(cuda::NetStorage<AwkwardNet, DType::bf16>::fused_fit().fits);
static_assert(!cuda::NetStorage<models::ResNet18, DType::f16>::fused_fit().fits);

/// Whether this GPU has thread-block clusters (compute capability 9.0 on), which the fused
/// kernel's cluster sizes other than the default and its tiled form need.
bool has_clusters() {
  int device = 0;
  int major = 0;
  STRATA_CUDA_CHECK(cudaGetDevice(&device));
  STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return major >= 9;
}

/// One engine per path (fused for every batch, per-op for every batch) on the same weights and
/// inputs: each against the CPU reference, and the two against each other.
template <class Net, DType P>
void check_fused(const Weights<Net>& w, const std::vector<float>& in,
                 const std::vector<float>& ref, const char* name, double tol) {
  using N = std::remove_cvref_t<Net>;
  const std::size_t out_n = static_cast<std::size_t>(N::output_spec.shape.numel());
  cuda::Engine<Net, P> fused(w, {.max_batch = kMax, .capture_batches = {1}, .fused_max_batch = kMax});
  cuda::Engine<Net, P> per_op(w, {.max_batch = kMax, .fused_max_batch = 0});
  // The fused kernel with its tensors held in shared memory between phases (16-bit), not in the
  // arena: the same values stored, so the same outputs to the bit.
  cuda::Engine<Net, P> held(w, {.max_batch = kMax, .fused_max_batch = kMax, .fused_hold = true});
  CHECK(fused.stats().fused_network);
  CHECK_FALSE(per_op.stats().fused_network);
  for (int b : strata_test::test_batches(kBatches)) {
    CHECK(fused.path(b) == "fused network");
    CHECK(per_op.path(b) == "per-op");
    std::vector<float> a(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> c(a.size(), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> h(a.size(), std::numeric_limits<float>::quiet_NaN());
    fused.infer(in, a, b);
    per_op.infer(in, c, b);
    held.infer(in, h, b);
    CHECK(std::equal(a.begin(), a.end(), h.begin()));
    const double err = rel_error(a, ref, a.size());
    const double agree = rel_error(a, c, a.size());
    MESSAGE(std::string(name) << " " << dtype_name(P) << " batch " << b << ": fused vs CPU " << err
                 << ", fused vs per-op " << agree);
    CHECK(err < tol);
    CHECK(agree < tol);
  }
  CHECK(fused.describe(1).find("fused network kernel") != std::string::npos);
  // infer() at batch 1 on image after image: its host path has the kernel copy the pinned input
  // into the device buffer itself, so an image must never be read from the one before it.
  const std::size_t in_n = static_cast<std::size_t>(N::input_spec.shape.numel());
  for (std::size_t i = 0; i < 5; ++i) {
    std::vector<float> one(in.begin() + static_cast<std::ptrdiff_t>(i * in_n),
                           in.begin() + static_cast<std::ptrdiff_t>((i + 1) * in_n));
    std::vector<float> a(out_n, std::numeric_limits<float>::quiet_NaN());
    fused.infer(one, a, 1);
    const std::vector<float> r(ref.begin() + static_cast<std::ptrdiff_t>(i * out_n),
                               ref.begin() + static_cast<std::ptrdiff_t>((i + 1) * out_n));
    const double err = rel_error(a, r, out_n);
    if (!(err < tol)) {
      MESSAGE(std::string(name) << " " << dtype_name(P) << " image " << i << " alone: " << err);
    }
    CHECK(err < tol);
  }
}

template <class Net>
void check_fused_all(const char* name, std::uint64_t seed, double bf16_tol = 1e-2) {
  using N = std::remove_cvref_t<Net>;
  const auto w = Weights<Net>::random(seed);
  const auto in = random_floats(static_cast<std::size_t>(kMax * N::input_spec.shape.numel()), seed + 7);
  const auto ref = cpu_reference<Net>(w, in, kMax);
  check_fused<Net, DType::f32>(w, in, ref, name, 1e-4);
  check_fused<Net, DType::f16>(w, in, ref, name, 1e-2);
  check_fused<Net, DType::bf16>(w, in, ref, name, bf16_tol);
}

}  // namespace

TEST_CASE("fused network: the MNIST CNN") { check_fused_all<models::MnistCnn>("mnist_cnn", 31); }
TEST_CASE("fused network: a residual network") { check_fused_all<ResidualNet>("residual", 32); }
TEST_CASE("fused network: an inverted-residual block whose expansion the per-op path joins to its depthwise conv") {
  cuda::NetDesc n = cuda::NetStorage<ExpandNet, DType::f16>::describe();
  REQUIRE(n.fused_fits);
  cuda::fold_for_per_op_path(n);
  CHECK(std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.expand != nullptr; }) == 1);
  check_fused_all<ExpandNet>("expand", 37);
}
TEST_CASE("fused network: tensor-core convs with pools and a residual; the input read by the first conv") {
  check_fused_all<MmaNet>("mma", 34, 3e-2);
}

TEST_CASE("fused network: NHWC input, padded and ceil-mode pools on tensor cores, a softmax before a dense layer") {
  check_fused_all<EdgeNet>("edges", 35, 3e-2);
}

TEST_CASE("fused network: infer() without copy nodes where each image has a cluster and fits its loads") {
  const auto w = Weights<models::MnistCnn>::random(5);
  cuda::Engine<models::MnistCnn, DType::f16> mnist(w, {.max_batch = kMax, .fused_max_batch = kMax});
  CHECK(mnist.infer_without_copies(1));   // 784 floats; one cluster
  CHECK_FALSE(mnist.infer_without_copies(17));  // more images than clusters on any GPU of today
  cuda::Engine<models::MnistCnn, DType::f16> per_op(w, {.max_batch = 1, .fused_max_batch = 0});
  CHECK_FALSE(per_op.infer_without_copies(1));
  // 160,000 input floats: more than 4 a thread of a cluster (at most 16 x 1024 threads).
  cuda::Engine<WideNet, DType::f16> wide(Weights<WideNet>::random(6), {.max_batch = 1, .fused_max_batch = 1});
  CHECK_FALSE(wide.infer_without_copies(1));
}

TEST_CASE("fused network: an input phase, a tensor-core conv reading global memory, a 32-lane pool, a wide dense+softmax") {
  check_fused_all<WideNet>("wide", 36, 3e-2);
}

TEST_CASE("fused network: the kernel times its phases (a conv and its pool are one, a dense and its softmax too)") {
  const auto w = Weights<models::MnistCnn>::random(6);
  cuda::Engine<models::MnistCnn, DType::f16> e(w, {.max_batch = 20, .fused_max_batch = 20});
  cuda::Engine<models::MnistCnn, DType::f16> per_op(w, {.max_batch = 4, .fused_max_batch = 0});
  std::vector<float> sums;
  for (int b : {1, 4, 20}) {
    const auto ph = e.fused_phases(b, 5);
    REQUIRE(ph.size() == 4);  // conv+pool, conv+pool, dense, dense+softmax: no input phase
    CHECK(ph[0].first == "conv0+bn1+relu2+max_pool3");
    CHECK(ph[3].first == "dense11+softmax12");
    float sum = 0.0f;
    for (const auto& [name, us] : ph) {
      INFO(name);
      CHECK(us > 0.0f);
      sum += us;
    }
    MESSAGE("fused MNIST f16 batch " << b << ": phases sum to " << sum << " us");
    CHECK(sum < 1000.0f);
    sums.push_back(sum);
  }
  // The phases are image 0's, however many images its cluster runs after it (20 images: 3 for
  // the first cluster of 8); a clock scaled by the whole loop would read about 3x longer.
  CHECK(sums[2] < 2.0f * sums[0]);
  CHECK(per_op.fused_phases(1).empty());
}
TEST_CASE("fused network: stride, dilation, groups, ceil-mode pools, many activations") {
  // bf16 compounds rounding through 9 ops with 8-bit mantissas; measured per-op bf16 errors on
  // such nets reach ~1.6e-2 (the fusion-edge test), so the same 3e-2 bound as there.
  check_fused_all<AwkwardNet>("awkward", 33, 3e-2);
}

TEST_CASE("fused network: by default batch 1 runs it where the network fits, the input is f32 and the GPU has clusters") {
  const auto w = Weights<models::MnistCnn>::random(8);
  const bool clusters = has_clusters();
  cuda::Engine<models::MnistCnn, DType::f16> e(w, {.max_batch = 4});
  CHECK(e.path(1) == (clusters ? "fused network" : "per-op"));
  CHECK(e.path(2) == "per-op");
  CHECK(e.stats().fused_network == clusters);
  cuda::Engine<models::MnistCnn, DType::f16> u8(w, {.max_batch = 2, .input = {.format = cuda::InputFormat::u8_hwc}});
  CHECK(u8.path(1) == "per-op");  // the fused kernel reads f32 input
  CHECK_FALSE(u8.stats().fused_network);
  cuda::Engine<models::MnistCnn, DType::f32> off(w, {.max_batch = 2, .fused_max_batch = 0});
  CHECK(off.path(1) == "per-op");
  CHECK_THROWS_AS((cuda::Engine<models::MnistCnn, DType::f32>(w, {.fused_max_batch = -2})), Error);
}

TEST_CASE("fused network: the batch threshold picks the path; big networks do not fit") {
  const auto w = Weights<models::MnistCnn>::random(5);
  cuda::Engine<models::MnistCnn, DType::f16> e(w, {.max_batch = 8, .fused_max_batch = 2});
  CHECK(e.path(1) == "fused network");
  CHECK(e.path(2) == "fused network");
  CHECK(e.path(3) == "per-op");
  CHECK(e.describe(3).find("fused network kernel") == std::string::npos);
  constexpr auto fit = cuda::Engine<models::ResNet18, DType::f16>::fused_fit;
  static_assert(!fit.fits);
  CHECK(std::string(fit.reason).find("MFLOP") != std::string::npos);
}

TEST_CASE("fused network: phases separated by mbarriers give the cluster barrier's outputs to the bit") {
  // EngineOptions::fused_mbarrier_sync: the same kernel but for how its phases wait for each
  // other, so the same values; at batches 1, 3, 17 and 20 (a cluster running several images
  // alternates its two mbarriers across them), through forward() and through infer()'s host
  // path (the upload waited for by a phase_sync too), and several times in a row.
  const auto run = [](auto tag, std::uint64_t seed, const char* name) {
    using Net = typename decltype(tag)::type;
    using N = std::remove_cvref_t<Net>;
    const auto w = Weights<Net>::random(seed);
    const auto in = random_floats(static_cast<std::size_t>(kMax * N::input_spec.shape.numel()), seed + 3);
    const std::size_t out_n = static_cast<std::size_t>(N::output_spec.shape.numel());
    cuda::Engine<Net, DType::f16> bar(w, {.max_batch = kMax, .fused_max_batch = kMax});
    cuda::Engine<Net, DType::f16> mb(w, {.max_batch = kMax, .fused_max_batch = kMax, .fused_mbarrier_sync = true});
    // and with the tensors held in shared memory, written across the cluster between the syncs
    cuda::Engine<Net, DType::f16> mbh(w, {.max_batch = kMax, .fused_max_batch = kMax, .fused_hold = true,
                                          .fused_mbarrier_sync = true});
    for (int round = 0; round < 4; ++round) {  // (a rare race would need many runs to show)
      for (int b : {1, 3, 17, kMax}) {
        std::vector<float> x(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
        std::vector<float> y(x.size(), std::numeric_limits<float>::quiet_NaN());
        std::vector<float> z(x.size(), std::numeric_limits<float>::quiet_NaN());
        bar.infer(in, x, b);
        mb.infer(in, y, b);
        mbh.infer(in, z, b);
        INFO(name << " batch " << b << " round " << round);
        CHECK(std::equal(x.begin(), x.end(), y.begin()));
        CHECK(std::equal(x.begin(), x.end(), z.begin()));
        CHECK(std::all_of(y.begin(), y.end(), [](float v) { return std::isfinite(v); }));
      }
    }
  };
  run(std::type_identity<models::MnistCnn>{}, 41, "mnist");
  run(std::type_identity<ResidualNet>{}, 42, "residual");
  run(std::type_identity<AwkwardNet>{}, 43, "awkward");
}

TEST_CASE("fused network: the cluster size an engine asks for (EngineOptions::fused_cluster)") {
  // Clusters of 1, 2, 4 and 8 blocks (16 is the default where the GPU allows it): each against
  // the CPU reference at batches 1, 3 and 20 (20 images on fewer clusters than images where the
  // cluster is large); the engine says which size it runs; a size the kernel does not take is
  // refused by name.
  const auto w = Weights<models::MnistCnn>::random(12);
  const auto in = random_floats(static_cast<std::size_t>(kMax * 784), 19);
  const auto ref = cpu_reference<models::MnistCnn>(w, in, kMax);
  if (!has_clusters()) {
    MESSAGE("no thread-block clusters on this GPU: skipped");
    return;
  }
  for (const int c : {1, 2, 4, 8}) {
    cuda::Engine<models::MnistCnn, DType::f16> e(
        w, {.max_batch = kMax, .fused_max_batch = kMax, .fused_cluster = c});
    CHECK(e.describe(1).find(" clusters of " + std::to_string(c) + " blocks") != std::string::npos);
    for (const int b : {1, 3, kMax}) {
      std::vector<float> a(static_cast<std::size_t>(b) * 10, std::numeric_limits<float>::quiet_NaN());
      e.infer(in, a, b);
      const double err = rel_error(a, ref, a.size());
      MESSAGE("MNIST f16, clusters of " << c << ", batch " << b << ": fused vs CPU " << err);
      CHECK(err < 1e-2);
    }
  }
  const auto w32 = Weights<models::MnistCnn>::random(13);
  try {
    cuda::Engine<models::MnistCnn, DType::f16> bad(w32, {.fused_cluster = 3});
    FAIL("a cluster of 3 blocks was accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("fused_cluster must be 0 (automatic), 1, 2, 4, 8 or 16, got 3") !=
          std::string::npos);
  }
}

TEST_CASE("fused network, tiled: each block its rectangle of the convs, the dense layer's partial sums gathered") {
  // EngineOptions::fused_tiled against the CPU reference and against the phase kernel (the same
  // arithmetic but for the order of the first dense layer's sums) at batches 1, 3, 17 and 20, in
  // f16 and bf16, four rounds (the partial sums' mbarrier alternates its parity image by image);
  // MNIST also at clusters of 2, 4 and 8 blocks, a one-conv network at 16 and 2; infer() (its
  // host path: the image copied from page-locked memory) and forward() on the device buffers
  // equal to the bit; a network the form does not take keeps the phase kernel, and so does a
  // cluster of 1 block.
  if (!has_clusters()) {
    MESSAGE("no thread-block clusters on this GPU: skipped");
    return;
  }
  const auto run = [](auto tag, auto ptag, std::uint64_t seed, const char* name, double tol,
                      const std::vector<int>& clusters) {
    using Net = typename decltype(tag)::type;
    constexpr DType P = decltype(ptag)::value;
    using N = std::remove_cvref_t<Net>;
    const auto w = Weights<Net>::random(seed);
    const auto in = random_floats(static_cast<std::size_t>(kMax * N::input_spec.shape.numel()), seed + 3);
    const auto ref = cpu_reference<Net>(w, in, kMax);
    const std::size_t out_n = static_cast<std::size_t>(N::output_spec.shape.numel());
    cuda::Engine<Net, P> phases(w, {.max_batch = kMax, .fused_max_batch = kMax});
    CHECK(phases.describe(1).find("tiled") == std::string::npos);
    for (const int c : clusters) {
      cuda::Engine<Net, P> tiled(w, {.max_batch = kMax, .fused_max_batch = kMax, .fused_cluster = c,
                                     .fused_tiled = true});
      CHECK(tiled.describe(1).find("fused network kernel (tiled; ") != std::string::npos);
      for (int round = 0; round < 4; ++round) {
        for (int b : kBatches) {
          std::vector<float> a(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
          std::vector<float> x(a.size(), std::numeric_limits<float>::quiet_NaN());
          tiled.infer(in, a, b);
          phases.infer(in, x, b);
          const double err = rel_error(a, ref, a.size());
          const double agree = rel_error(a, x, a.size());
          if (round == 0) {
            MESSAGE(std::string(name) << " " << dtype_name(P) << " cluster " << c << " batch " << b
                         << ": tiled vs CPU " << err << ", vs the phase kernel " << agree);
          }
          INFO(std::string(name) << " cluster " << c << " batch " << b << " round " << round);
          CHECK(err < tol);
          CHECK(agree < tol);
          if (round == 0) {  // forward() on the engine's device buffers (the kernel reads p.in, not
                             // infer()'s page-locked copy): the same values
            const std::size_t in_n = static_cast<std::size_t>(b * N::input_spec.shape.numel());
            REQUIRE(cudaMemcpy(tiled.input_buffer(), in.data(), in_n * sizeof(float), cudaMemcpyHostToDevice) ==
                    cudaSuccess);
            tiled.forward(tiled.input_buffer(), tiled.output_buffer(), b, tiled.stream());
            std::vector<float> f(a.size(), std::numeric_limits<float>::quiet_NaN());
            REQUIRE(cudaStreamSynchronize(tiled.stream()) == cudaSuccess);
            REQUIRE(cudaMemcpy(f.data(), tiled.output_buffer(), f.size() * sizeof(float), cudaMemcpyDeviceToHost) ==
                    cudaSuccess);
            CHECK(std::equal(a.begin(), a.end(), f.begin()));
          }
        }
      }
    }
  };
  using F16 = std::integral_constant<DType, DType::f16>;
  using BF16 = std::integral_constant<DType, DType::bf16>;
  run(std::type_identity<models::MnistCnn>{}, F16{}, 51, "mnist", 1e-2, {0, 2, 4, 8});
  run(std::type_identity<models::MnistCnn>{}, BF16{}, 52, "mnist", 3e-2, {0});
  run(std::type_identity<TiledNet>{}, F16{}, 53, "tiled", 1e-2, {0, 4});
  run(std::type_identity<TiledNet>{}, BF16{}, 54, "tiled", 3e-2, {0});
  run(std::type_identity<strata_test::TiledOneConvNet>{}, F16{}, 57, "one conv", 1e-2, {0, 2});
  // Not a conv stack then dense layers (a residual): the phase kernel, as without the option.
  const auto w = Weights<ResidualNet>::random(55);
  cuda::Engine<ResidualNet, DType::f16> e(w, {.max_batch = 1, .fused_max_batch = 1, .fused_tiled = true});
  CHECK(e.describe(1).find("fused network kernel (") != std::string::npos);
  CHECK(e.describe(1).find("tiled") == std::string::npos);
  const auto wm = Weights<models::MnistCnn>::random(56);
  cuda::Engine<models::MnistCnn, DType::f16> one(wm, {.max_batch = 1, .fused_max_batch = 1, .fused_cluster = 1,
                                                      .fused_tiled = true});
  CHECK(one.describe(1).find("fused network kernel (1 clusters of 1 blocks") != std::string::npos);
}
