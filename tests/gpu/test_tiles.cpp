// Strata's tiled tensor-core convs (tile_conv: ResNet's stem and others; every form, forced),
// the stem reading the caller's input, strided 1x1 convs on cuBLASLt, global average pooling a
// block per image, and programmatic dependent launches — on the GPU against the CPU reference
// or an independent path. (Split from test_layers.cpp: two units build side by side.)
#include <cuda_fp16.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <limits>
#include <random>
#include <span>
#include <sstream>
#include <type_traits>

#include "forced.hpp"
#include "gpu_test.hpp"
#include "strata/models/densenet.hpp"
#include "strata/models/efficientnet.hpp"
#include "strata/models/mnist_cnn.hpp"
#include "strata/models/resnet.hpp"

using namespace strata;
using namespace strata_test;  // check_all_precisions, check_forced, kLayerBatches, kLayerMax
using strata_test::nets::MmaLayerNet;

namespace {
/// How many times `what` occurs in `text`.
std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

// Convs for the tiled tensor-core kernel (tactics/tile_conv.hpp): a 7x7/2 stem read
// space-to-depth with a 3x3/2 max pool (ResNet's, on an odd-sized image: partial tiles), 20
// output channels (3 n-tiles, the last loaded alone), 128 channels (two groups of 64 a warp)
// with an average pool counting its padding, a 1x1 conv and a ReLU6 with a ceil-mode max pool,
// a 1x1 max pool of stride 2 (a window of one position that still subsamples). Max pools over a
// ReLU (the stem) and a ReLU6 take the activation after the max (tile::post_activation).
constexpr auto tile_net = input<3, 45, 38>
    | conv<20, 7, ConvOpts{.stride = 2, .padding = 3, .bias = false}> | batch_norm | relu
    | max_pool<3, PoolOpts{.stride = 2, .padding = 1}>
    | conv<128, 3, ConvOpts{.padding = 1}> | gelu | avg_pool<2, PoolOpts{.padding = 1}>
    | conv<16, 1> | relu6 | max_pool<2, PoolOpts{.ceil_mode = true}>
    | conv<8, 3, ConvOpts{.padding = 1}> | max_pool<1, PoolOpts{.stride = 2}> | flatten | dense<5>;
using TileNet = std::remove_cv_t<decltype(tile_net)>;
}  // namespace

TEST_CASE("tiled tensor-core convs (tile_conv) with their pools or not, forced through the tuning cache") {
  static_assert(cuda::NetStorage<TileNet, DType::f16>::s2d_op() == 0);
  // Heuristic tuning runs the space-to-depth stem and its pool with it at every batch (f32:
  // cuDNN): where the batch gives the GPU tiles enough (tile::claim_tiles) on wgmma when the
  // device has it, below that (batch 2) on mma.sync reading the caller's input itself.
  check_all_precisions<TileNet>(kLayerMax, kLayerBatches, "tile_conv stem", 50);
  const auto w = Weights<TileNet>::random(1);
  const cuda::NetDesc net = cuda::NetStorage<TileNet, DType::f16>::describe();
  const long long tiles = cuda::tactics::tile::choose(net.ops.front(), true).tiles;
  const int big = static_cast<int>((cuda::tactics::tile::claim_tiles + tiles - 1) / tiles);
  const std::string runs = cuda::Engine<TileNet, DType::f16>(w, {.max_batch = big}).describe(big);
  INFO(runs);
  CHECK(runs.find("conv0+bn1+relu2+max_pool3: strata tiled tensor-core conv 7x7/2 3->20 (space-to-depth: "
                  "4x4 12->20) + max_pool 3x3 " +
                  std::string(cuda::tactics::mma::wgmma_device() ? "(wgmma" : "(mma.sync") +
                  ", tiles of ") != std::string::npos);
  const std::string small = cuda::Engine<TileNet, DType::f16>(w, {.max_batch = 2}).describe(2);
  INFO(small);
  const std::size_t at = small.find("conv0+bn1+relu2+max_pool3: ");
  REQUIRE(at != std::string::npos);
  const std::string stem = small.substr(at, small.find('\n', at) - at);
  CHECK(stem.find("tiled tensor-core conv") != std::string::npos);
  CHECK(stem.find("(mma.sync, tiles of ") != std::string::npos);
  CHECK(stem.find("reads the caller's input") != std::string::npos);
  CHECK(small.rfind("input: ", 0) != 0);  // no input step (describe's first line otherwise)
  CHECK(small.find("\ninput: ") == std::string::npos);
  const cuda::Variant pooled{"tile_conv", 0, 0, 1};
  const cuda::Variant plain{"tile_conv"};
  for (const cuda::Variant& v : {pooled, plain}) {
    check_forced<TileNet, DType::f16>("tile", 51, v, "strata tiled tensor-core conv");
    check_forced<TileNet, DType::bf16>("tile", 52, v, "strata tiled tensor-core conv");
    check_forced<MmaLayerNet, DType::f16>("tile mma layers", 53, v, "strata tiled tensor-core conv");
    check_forced<models::MnistCnn, DType::bf16>("tile mnist", 54, v, "strata tiled tensor-core conv");
  }
  // The double-buffered variants (algo 1): the next tile's patch is copied during this GEMM.
  for (const cuda::Variant& v : {cuda::Variant{"tile_conv", 1, 0, 1}, cuda::Variant{"tile_conv", 1, 0, 0}}) {
    check_forced<TileNet, DType::f16>("tile db", 57, v, "patch double-buffered");
    check_forced<TileNet, DType::bf16>("tile db", 58, v, "patch double-buffered");
    check_forced<MmaLayerNet, DType::f16>("tile db mma layers", 59, v, "patch double-buffered");
  }
}

TEST_CASE("tiled tensor-core convs on wgmma (tile_conv algos 3-5), forced through the tuning cache") {
  if (!cuda::tactics::mma::wgmma_device()) {
    MESSAGE("SKIPPED: tile_conv's wgmma form needs a GPU of compute capability 9.0 (sm_90a)");
    return;
  }
  // Algo 3 forced on every conv the form runs (also those tuning does not time it on), with
  // its pool (fuse 1) or without (fuse 0, the pool then a kernel of its own). TileNet: the space-to-depth stem
  // (partial tiles, 20 channels: wgmma's N = 24), 128 channels (two groups of 64), pools of
  // every kind; MmaLayerNet: 24 channel slots (k-steps across two taps).
  for (const int fuse : {1, 0}) {
    const cuda::Variant v{"tile_conv", 3, 0, fuse};
    const auto force = [fuse](const cuda::OpDesc& op) {
      return fuse == 1 ? op.pool.has_value() && cuda::tactics::tile::fits(op, true)
                       : cuda::tactics::tile::fits(op, false);
    };
    check_forced<TileNet, DType::f16>("tile wgmma", 71, v, "(wgmma, tiles of", nullptr, force);
    check_forced<TileNet, DType::bf16>("tile wgmma", 72, v, "(wgmma, tiles of", nullptr, force);
    check_forced<MmaLayerNet, DType::f16>("tile wgmma mma layers", 73, v, "(wgmma, tiles of",
                                          nullptr, force);
    check_forced<models::MnistCnn, DType::bf16>("tile wgmma mnist", 74, v, "(wgmma, tiles of",
                                                nullptr, force);
  }
  // Algo 4 reads the caller's input (the space-to-depth stem only), algo 5 double-buffers the
  // patch: forced where tuning offers them, never the mma.sync form.
  for (const int fuse : {1, 0}) {
    const cuda::Variant raw{"tile_conv", 4, 0, fuse};
    check_forced<TileNet, DType::f16>("tile wgmma raw", 75, raw, "reads the caller's input", "mma.sync");
    check_forced<TileNet, DType::bf16>("tile wgmma raw", 76, raw, "reads the caller's input", "mma.sync");
    const cuda::Variant db{"tile_conv", 5, 0, fuse};
    check_forced<TileNet, DType::f16>("tile wgmma db", 77, db, "patch double-buffered", "mma.sync");
    check_forced<MmaLayerNet, DType::bf16>("tile wgmma db mma layers", 78, db, "patch double-buffered",
                                           "mma.sync");
  }
}

namespace {
// DenseNet's stem: the pooled map is the first dense block's input, which stays in place as
// channels 0..15 of the block's concat (24 channels, so a pixel is 24 slots apart).
constexpr auto dense_stem_net = input<3, 29, 34>
    | conv<16, 7, ConvOpts{.stride = 2, .padding = 3, .bias = false}> | batch_norm | relu
    | max_pool<3, PoolOpts{.stride = 2, .padding = 1}>
    | concat(identity, batch_norm | relu | conv<8, 3, ConvOpts{.padding = 1}>)
    | batch_norm | relu | conv<8, 1> | flatten | dense<5>;
using DenseStemNet = std::remove_cv_t<decltype(dense_stem_net)>;
}  // namespace

namespace {
// Stems on input widths that stage the caller's rows in words of each size (tile::raw_stage):
// f32 C×H×W rows of 37 floats (148 bytes: 4-byte words), 44 (176: 16); f16 rows of 38 (76: 4);
// 8-bit H×W×C rows of 40 pixels (120 bytes: 8-byte words), 44 (132: 4), 37 (111: none, element
// by element); five channels (24 slots a space-to-depth pixel) in rows of 60: f16 120 bytes (8),
// f32 240 (16); four channels of 8-bit rows of 37 (148: 4).
template <int C, int H, int W>
constexpr auto raw_stem_net = input<C, H, W>
    | conv<16, 7, ConvOpts{.stride = 2, .padding = 3, .bias = false}> | batch_norm | relu
    | max_pool<3, PoolOpts{.stride = 2, .padding = 1}> | flatten | dense<5>;

/// An engine of Net (P, f16 unless told, per-op path) whose stem runs on tile_conv `algo` (with
/// `math`) with its pool, on the caller's input in format `in_opt`.
template <class Net, DType P = DType::f16>
cuda::Engine<Net, P> stem_engine(const Weights<Net>& w, int algo, const cuda::InputOptions& in_opt,
                                 int batch, const std::filesystem::path& cache, int math = 0) {
  std::filesystem::remove(cache);
  {
    cuda::TuningCache c(cache);
    const cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
    c.put(cuda::tuning_key(net.ops.front(), batch, P, cuda::device_name(0)),
          cuda::Variant{"tile_conv", algo, math, 1});
    c.save();
  }
  cuda::EngineOptions o = strata_test::from_cache(batch, cache);
  o.input = in_opt;
  o.fused_max_batch = 0;
  cuda::Engine<Net, P> e(w, o);
  std::filesystem::remove(cache);
  return e;
}

/// The stem of Net on tile_conv `algo` (2, 4, 7 or 9: reading the caller's input, format `f`) against
/// the same kernel's form with an input step (algo 0, 3, 6 or 8) on the same input: the same sums in
/// the same order, so the same output bit for bit. `staged`: what describe() must say of how the
/// caller's rows are read.
template <class Net, DType P = DType::f16>
void check_raw_stem(int algo, cuda::InputFormat f, const char* staged, std::uint64_t seed, int math = 0) {
  using N = std::remove_cvref_t<Net>;
  static_assert(cuda::NetStorage<Net, P>::s2d_op() == 0);
  constexpr int kB = 8;  // (224 × 224: more tiles than blocks, so blocks run several)
  const bool u8 = f == cuda::InputFormat::u8_hwc;
  cuda::InputOptions in_opt{.format = f};
  if (u8 || f == cuda::InputFormat::f16) {  // normalized on the GPU
    in_opt.scale = u8 ? 1.0f / 255.0f : 1.0f;
    in_opt.mean.assign(N::input_spec.shape.c, 0.45f);
    in_opt.stddev.assign(N::input_spec.shape.c, 0.225f);
  }
  const auto w = Weights<Net>::random(seed);
  const auto tmp = std::filesystem::temp_directory_path();
  auto e = stem_engine<Net, P>(w, algo, in_opt, kB, tmp / ("strata_raw_stem_" + std::to_string(seed)), math);
  const int same_with_input_step = algo == 2 ? 0 : algo == 4 ? 3 : algo == 9 ? 8 : 6;
  auto ref = stem_engine<Net, P>(w, same_with_input_step, in_opt, kB,
                                 tmp / ("strata_raw_stem_ref_" + std::to_string(seed)), math);
  const std::string runs = e.describe(kB);
  INFO(runs);
  CHECK(runs.find(std::string("reads the caller's input ") + staged) != std::string::npos);
  CHECK(runs.find("input: ") == std::string::npos);
  REQUIRE(ref.describe(kB).find("input: ") != std::string::npos);
  const std::size_t n_in = static_cast<std::size_t>(kB * N::input_spec.shape.numel());
  std::vector<float> got(kB * 5, std::numeric_limits<float>::quiet_NaN());
  std::vector<float> want(kB * 5, std::numeric_limits<float>::quiet_NaN());
  const auto vals = strata_test::random_floats(n_in, seed);
  if (u8) {
    std::vector<std::uint8_t> bytes(n_in);
    std::mt19937_64 rng(seed);
    for (std::uint8_t& b : bytes) {
      b = static_cast<std::uint8_t>(rng() & 0xffu);
    }
    e.infer(std::span<const std::uint8_t>(bytes), got, kB);
    ref.infer(std::span<const std::uint8_t>(bytes), want, kB);
  } else if (f == cuda::InputFormat::f16) {
    std::vector<__half> h(n_in);
    for (std::size_t i = 0; i < n_in; ++i) {
      h[i] = __float2half(vals[i]);
    }
    e.infer(h, got, kB);
    ref.infer(h, want, kB);
  } else {
    e.infer(vals, got, kB);
    ref.infer(vals, want, kB);
  }
  MESSAGE("raw stem " << N::input_spec.shape.c << "x" << N::input_spec.shape.h << "x"
                      << N::input_spec.shape.w << ", " << cuda::input_format_name(f) << ", "
                      << dtype_name(P) << ", algo " << algo << " math " << math
                      << " vs the input step: rel. error "
                      << strata_test::rel_error(got, want, got.size()));
  CHECK(got == want);
}
}  // namespace

TEST_CASE("the tiled tensor-core stem reads the caller's input itself (no input step), forced") {
  const cuda::Variant raw{"tile_conv", 2, 0, 1};
  check_forced<TileNet, DType::f16>("tile raw", 61, raw, "reads the caller's input");
  check_forced<TileNet, DType::bf16>("tile raw", 62, raw, "reads the caller's input");
  // 8-bit HWC input normalized on the GPU: the stem converting it itself, against the same
  // kernel reading the map of an input step that converts it (algo 0), on the same bytes.
  constexpr int kB = 4;
  const cuda::InputOptions u8{.format = cuda::InputFormat::u8_hwc, .scale = 1.0f / 255.0f,
                              .mean = {0.485f, 0.456f, 0.406f}, .stddev = {0.229f, 0.224f, 0.225f}};
  const auto w = Weights<TileNet>::random(63);
  auto e = stem_engine<TileNet>(w, raw.algo, u8, kB, std::filesystem::temp_directory_path() / "strata_tile_raw_u8");
  const std::string runs = e.describe(kB);
  INFO(runs);
  CHECK(runs.find("reads the caller's input") != std::string::npos);
  CHECK(runs.find("input: ") == std::string::npos);  // no input step
  auto plain = stem_engine<TileNet>(w, 0, u8, kB, std::filesystem::temp_directory_path() / "strata_tile_plain_u8");
  CHECK(plain.describe(kB).find("input: ") != std::string::npos);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(kB) * 3 * 45 * 38);
  std::mt19937_64 rng(64);
  for (std::uint8_t& b : bytes) {
    b = static_cast<std::uint8_t>(rng() & 0xffu);
  }
  std::vector<float> got(kB * 5, std::numeric_limits<float>::quiet_NaN());
  std::vector<float> want(kB * 5, std::numeric_limits<float>::quiet_NaN());
  e.infer(std::span<const std::uint8_t>(bytes), got, kB);
  plain.infer(std::span<const std::uint8_t>(bytes), want, kB);
  const double err = strata_test::rel_error(got, want, got.size());
  MESSAGE("tile raw u8 f16 vs the input step: rel. error " << err);
  CHECK(err < 1e-2);
}

TEST_CASE("the tiled stem stages the caller's rows in 16-, 8- and 4-byte words, or reads them element by element") {
  std::vector<int> algos{2};
  if (cuda::tactics::mma::wgmma_device()) {
    algos.push_back(4);
  }
  using F = cuda::InputFormat;
  for (const int a : algos) {
    check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 29, 37>)>>(a, F::f32, "(staged in 4-byte words)", 81);
    check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 27, 44>)>>(a, F::f32, "(staged in 16-byte words)", 82);
    check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 30, 40>)>>(a, F::u8_hwc, "(staged in 8-byte words)", 83);
    check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 27, 44>)>>(a, F::u8_hwc, "(staged in 4-byte words)", 84);
    check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 29, 37>)>>(a, F::u8_hwc, "(element by element)", 85);
    check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 31, 38>)>>(a, F::f16, "(staged in 4-byte words)", 86);
    check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<5, 64, 60>)>>(a, F::f16, "(staged in 8-byte words)", 87);
    check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<5, 64, 60>)>>(a, F::f32, "(staged in 16-byte words)", 88);
    check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<4, 33, 37>)>>(a, F::u8_hwc, "(staged in 4-byte words)", 89);
  }
}

TEST_CASE("tiled tensor-core convs with padded patch rows (tile_conv math 1), forced") {
  // Not offered to tuning yet: every conv the form runs, pooled, on mma.sync (algo 0), and on
  // wgmma (3, and the 12-slot patch 6) where the GPU has it.
  const auto fits = [](const cuda::OpDesc& op) { return op.pool.has_value() && cuda::tactics::tile::fits(op, true); };
  const cuda::Variant sync{"tile_conv", 0, 1, 1};
  check_forced<TileNet, DType::f16>("tile pitch", 121, sync, "pixels apart", nullptr, fits);
  check_forced<MmaLayerNet, DType::bf16>("tile pitch mma layers", 122, sync, "pixels apart", nullptr, fits);
  if (cuda::tactics::mma::wgmma_device()) {
    check_forced<TileNet, DType::f16>("tile pitch wgmma", 123, cuda::Variant{"tile_conv", 3, 1, 1}, "pixels apart",
                                      "mma.sync", fits);
    check_forced<TileNet, DType::bf16>("tile pitch wgmma db", 124, cuda::Variant{"tile_conv", 5, 1, 1},
                                       "pixels apart", "mma.sync", fits);
    const auto d12 = [](const cuda::OpDesc& op) { return cuda::tactics::tile::dense12_fits(op); };
    check_forced<TileNet, DType::f16>("tile pitch d12", 125, cuda::Variant{"tile_conv", 6, 1, 1}, "pixels apart",
                                      "mma.sync", d12);
    check_forced<TileNet, DType::f16>("tile pitch d12 raw", 126, cuda::Variant{"tile_conv", 7, 1, 1},
                                      "pixels apart", "mma.sync", d12);
  }
}

TEST_CASE("tiled stems with tiles for a small batch (tile_conv math 2), forced") {
  // (Written in session 28, passed on an H200 in session 29.) Tiles for one image on this GPU's SMs
  // (tile::choose_for) instead of the fewest rounds an image — TileNet's 7x7/2 stem with its
  // pool (partial tiles), from the input step's map on mma.sync and on wgmma where the GPU has
  // it, against the CPU at batches 1 and 5 (MobileNetV2's unpooled stem: test_deploy_layers.cpp).
  const auto stem = [](const cuda::OpDesc& op) { return op.conv.s2d; };
  const char* small = "(sized for a small batch)";
  check_forced<TileNet, DType::f16>("tile small", 127, cuda::Variant{"tile_conv", 0, 2, 1}, small, nullptr, stem);
  if (cuda::tactics::mma::wgmma_device()) {
    check_forced<TileNet, DType::bf16>("tile small wgmma", 129, cuda::Variant{"tile_conv", 3, 2, 1}, small,
                                       "mma.sync", stem);
  }
}

TEST_CASE("the tiled stem's 12-slot patch on wgmma (tile_conv algos 6 and 7), forced") {
  if (!cuda::tactics::mma::wgmma_device()) {
    MESSAGE("SKIPPED: tile_conv's wgmma forms need a GPU of compute capability 9.0 (sm_90a)");
    return;
  }
  // Not offered to tuning yet. A 3-channel stem read space-to-depth: 12 real slots of 16, k in
  // 12 k-steps instead of 16 (TileNet: partial tiles, 20 output channels).
  const auto d12 = [](const cuda::OpDesc& op) { return cuda::tactics::tile::dense12_fits(op); };
  for (const int fuse : {1, 0}) {
    const cuda::Variant v{"tile_conv", 6, 0, fuse};
    check_forced<TileNet, DType::f16>("tile d12", 111, v, "12-slot patch", "mma.sync", d12);
    check_forced<TileNet, DType::bf16>("tile d12", 112, v, "12-slot patch", "mma.sync", d12);
    const cuda::Variant raw{"tile_conv", 7, 0, fuse};
    check_forced<TileNet, DType::f16>("tile d12 raw", 113, raw, "12-slot patch", "mma.sync", d12);
  }
  // Reading the caller's input (algo 7) against the same kernel with an input step (algo 6):
  // bit for bit, f32 / f16 / 8-bit HWC rows of every word size.
  using F = cuda::InputFormat;
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 29, 37>)>>(7, F::f32, "(staged in 4-byte words)", 114);
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 27, 44>)>>(7, F::f32, "(staged in 16-byte words)", 115);
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 30, 40>)>>(7, F::u8_hwc, "(staged in 8-byte words)", 116);
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 31, 38>)>>(7, F::f16, "(staged in 4-byte words)", 117);
  // ResNet's image size: tiles enough that blocks run several (the patch refilled, tiles away
  // from the image's origin), against the CPU too.
  using Big = std::remove_cv_t<decltype(raw_stem_net<3, 224, 224>)>;
  check_raw_stem<Big>(7, F::f32, "(staged in 16-byte words)", 118);
  check_raw_stem<Big>(7, F::u8_hwc, "(staged in 16-byte words)", 119);
  check_forced<Big, DType::f16>("big stem d12", 120, cuda::Variant{"tile_conv", 6, 0, 1}, "12-slot patch",
                                "mma.sync", d12);
  check_forced<Big, DType::bf16>("big stem d12 padded", 127, cuda::Variant{"tile_conv", 6, 1, 1},
                                 "pixels apart", "mma.sync", d12);
  check_forced<Big, DType::f16>("big stem padded", 128, cuda::Variant{"tile_conv", 3, 1, 1}, "pixels apart",
                                "mma.sync", d12);
  check_forced<Big, DType::f16>("big stem padded sync", 129, cuda::Variant{"tile_conv", 0, 1, 1},
                                "pixels apart", nullptr, d12);
  // bf16 (written in session 34, passed on an H100 in session 54): algo 7 had been withdrawn
  // from bf16 after a relative error of 0.043 against the CPU on DenseStemNet (math 1, session
  // 33) where f16 passed. Against algo 6 bit for bit — the same GEMM on the input step's map —
  // these showed the rearranged rows right; the 0.043 is every stem form's on that net (the
  // concat-slice case below), so algo 7 is offered and claimed in bf16 again.
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 29, 37>)>, DType::bf16>(7, F::f32, "(staged in 4-byte words)", 130);
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 29, 37>)>, DType::bf16>(7, F::f32, "(staged in 4-byte words)", 131, 1);
  check_raw_stem<DenseStemNet, DType::bf16>(7, F::f32, "(staged in 8-byte words)", 132, 1);
  check_raw_stem<DenseStemNet, DType::f16>(7, F::f32, "(staged in 8-byte words)", 133, 1);
}

TEST_CASE("the tiled stem with pixels as wgmma's N (tile_conv algos 8 and 9), forced") {
  if (!cuda::tactics::mma::wgmma_device()) {
    MESSAGE("SKIPPED: tile_conv's wgmma forms need a GPU of compute capability 9.0 (sm_90a)");
    return;
  }
  // A 3-channel 7x7/2 stem read space-to-depth, the channels as wgmma's M and the tile's conv
  // outputs (in the patch's grid) as its N, both operands by descriptor (tile::swap_of).
  // TileNet: partial tiles, 20 output channels (the M rows past 24 slots staged as zeros, not
  // stored), with its pool and without; against the CPU.
  for (const int fuse : {1, 0}) {
    const auto swaps = [fuse](const cuda::OpDesc& op) {
      return cuda::tactics::tile::choose_swap(op, fuse == 1).py > 0;
    };
    const cuda::Variant v{"tile_conv", 8, 0, fuse};
    check_forced<TileNet, DType::f16>("tile swap", 141, v, "pixels as wgmma's N", "mma.sync", swaps);
    check_forced<TileNet, DType::bf16>("tile swap", 142, v, "pixels as wgmma's N", "mma.sync", swaps);
    const cuda::Variant raw{"tile_conv", 9, 0, fuse};
    // (the swapped form reading the input: a fallback to the map would not say so)
    check_forced<TileNet, DType::f16>("tile swap raw", 143, raw, "a warpgroup), shapes compiled in; reads the caller's input",
                                      "mma.sync", swaps);
  }
  // Reading the caller's input (algo 9) against the same kernel with an input step (algo 8):
  // bit for bit, f32 / f16 / 8-bit HWC rows of every word size; DenseNet's stem writing its
  // concat slice; ResNet's image size, where blocks run several tiles.
  using F = cuda::InputFormat;
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 29, 37>)>>(9, F::f32, "(staged in 4-byte words)", 144);
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 27, 44>)>>(9, F::f32, "(staged in 16-byte words)", 145);
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 30, 40>)>>(9, F::u8_hwc, "(staged in 8-byte words)", 146);
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 31, 38>)>>(9, F::f16, "(staged in 4-byte words)", 147);
  check_raw_stem<DenseStemNet>(9, F::f32, "(staged in 8-byte words)", 148);
  // bf16 (not yet GPU-run; until it is, algo 9 is not offered in bf16)
  check_raw_stem<std::remove_cv_t<decltype(raw_stem_net<3, 29, 37>)>, DType::bf16>(9, F::f32, "(staged in 4-byte words)", 160);
  check_raw_stem<DenseStemNet, DType::bf16>(9, F::f32, "(staged in 8-byte words)", 161);
  using Big = std::remove_cv_t<decltype(raw_stem_net<3, 224, 224>)>;
  check_raw_stem<Big>(9, F::f32, "(staged in 16-byte words)", 149);
  const auto swaps = [](const cuda::OpDesc& op) { return cuda::tactics::tile::choose_swap(op, true).py > 0; };
  check_forced<Big, DType::f16>("big stem swap", 150, cuda::Variant{"tile_conv", 8, 0, 1}, "pixels as wgmma's N",
                                "mma.sync", swaps);
  check_forced<DenseStemNet, DType::f16>("dense stem swap", 151, cuda::Variant{"tile_conv", 9, 0, 1},
                                         "a warpgroup), shapes compiled in; reads the caller's input", "mma.sync", swaps);
  // Pipelined (math 4, session 54, not yet GPU-run): the next tile's patch converted and the
  // previous tile pooled while this tile's MMAs run — the same sums, conv outputs and pool, so
  // equal to algo 9 math 0 to the bit: TileNet (partial tiles) and DenseNet's stem writing its
  // slice at batch 8 (a tile or none a block: the prologue and the epilogue), ResNet's image size
  // at batch 24 (1,344 tiles: several a block on any GPU of up to 224 SMs — the steady state,
  // the plane buffers and the staged rows reused).
  {
    const auto tmp = std::filesystem::temp_directory_path();
    auto same = [&](auto tag, const char* what, int kB) {
      using Net = typename decltype(tag)::type;
      const auto w = Weights<Net>::random(162);
      auto piped = stem_engine<Net>(w, 9, {}, kB, tmp / "strata_swap_pipe_a", cuda::tactics::tile::math_pipelined);
      auto plain = stem_engine<Net>(w, 9, {}, kB, tmp / "strata_swap_pipe_b", 0);
      const std::string d = piped.describe(kB);
      INFO(d);
      CHECK(d.find("pixels as wgmma's N") != std::string::npos);
      CHECK(d.find(", pipelined, shapes compiled in; reads the caller's input") != std::string::npos);
      const auto vals = strata_test::random_floats(static_cast<std::size_t>(kB) * Net::input_spec.shape.numel(), 162);
      std::vector<float> got(kB * 5, std::numeric_limits<float>::quiet_NaN());
      std::vector<float> want(kB * 5, std::numeric_limits<float>::quiet_NaN());
      piped.infer(vals, got, kB);
      plain.infer(vals, want, kB);
      MESSAGE(what << ": algo 9 pipelined against unpipelined: rel. error " << strata_test::rel_error(got, want, got.size()));
      CHECK(got == want);
    };
    same(std::type_identity<TileNet>{}, "TileNet", 8);
    same(std::type_identity<DenseStemNet>{}, "DenseStemNet", 8);
    same(std::type_identity<Big>{}, "224x224", 24);
  }
  // Against algo 7 (the 12-slot patch through ldmatrix) on ResNet's image size, f32 input, 8
  // images: the same products summed in another order — within f16's rounding of the stem.
  {
    constexpr int kB = 8;
    const auto w = Weights<Big>::random(152);
    const auto tmp = std::filesystem::temp_directory_path();
    auto swapped = stem_engine<Big>(w, 9, {}, kB, tmp / "strata_swap_vs_7_a");
    auto plain = stem_engine<Big>(w, 7, {}, kB, tmp / "strata_swap_vs_7_b");
    const auto vals = strata_test::random_floats(static_cast<std::size_t>(kB) * 3 * 224 * 224, 152);
    std::vector<float> got(kB * 5, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> want(kB * 5, std::numeric_limits<float>::quiet_NaN());
    swapped.infer(vals, got, kB);
    plain.infer(vals, want, kB);
    const double err = strata_test::rel_error(got, want, got.size());
    MESSAGE("224x224 stem, algo 9 against algo 7: rel. error " << err);
    CHECK(err < 2e-3);
  }
}

namespace {
// Strided 1x1 convs (ResNet's downsample): 20x22 -> 10x11 with a relu, then 10x11 -> 5x6 (the
// last input column unused).
constexpr auto down_net = input<16, 20, 22> | conv<32, 1, ConvOpts{.stride = 2}> | batch_norm | relu
    | conv<24, 1, ConvOpts{.stride = 2}> | flatten | dense<5>;
using DownNet = std::remove_cv_t<decltype(down_net)>;
}  // namespace

TEST_CASE("strided 1x1 convs read in place by cuBLASLt, a matmul a row (lt_conv1x1 algo 1), forced") {
  const cuda::Variant v{"lt_conv1x1", 1};
  const auto strided = [](const cuda::OpDesc& op) { return op.kind == OpKind::conv && op.conv.sh == 2; };
  check_forced<DownNet, DType::f16>("lt in place", 91, v, "strided input read in place", nullptr, strided);
  check_forced<DownNet, DType::bf16>("lt in place", 92, v, "strided input read in place", nullptr, strided);
}

namespace {
// Convs for im2col + one cuBLASLt GEMM (lt_im2col): 3x3 with padding and its BN and relu (the
// RELU_BIAS epilogue), a residual block's conv + BN + add + relu (the residual as the GEMM's C),
// a strided dilated 3x3 with a gelu (a pointwise kernel after), a 5x5 without bias, a 1x3.
constexpr auto im2col_net = input<8, 13, 11> | conv<24, 3, ConvOpts{.padding = 1}> | batch_norm | relu
    | residual<relu>(conv<24, 3, ConvOpts{.padding = 1}> | batch_norm)
    | conv<16, 3, ConvOpts{.stride = 2, .padding = 2, .dilation = 2}> | gelu
    | conv<8, 5, ConvOpts{.padding = 2, .bias = false}> | relu
    | conv<16, HW{1, 3}, ConvOpts{.padding = HW{0, 1}}> | max_pool<2> | flatten | dense<5>;
using Im2colNet = std::remove_cv_t<decltype(im2col_net)>;
}  // namespace

TEST_CASE("convs as im2col + one cuBLASLt GEMM (lt_im2col), forced") {
  const auto conv = [](const cuda::OpDesc& op) { return op.kind == OpKind::conv; };
  check_forced<Im2colNet, DType::f16>("lt im2col", 93, cuda::Variant{"lt_im2col"}, "strata im2col + cublasLtMatmul",
                                      nullptr, conv);
  check_forced<Im2colNet, DType::bf16>("lt im2col", 94, cuda::Variant{"lt_im2col"}, "strata im2col + cublasLtMatmul",
                                       nullptr, conv);
  check_forced<Im2colNet, DType::f16>("lt im2col algo 1", 95, cuda::Variant{"lt_im2col", 1},
                                      "heuristic's algorithm 1", nullptr, conv);
  check_forced<models::MnistCnn, DType::f16>("lt im2col mnist", 96, cuda::Variant{"lt_im2col"},
                                             "strata im2col + cublasLtMatmul", nullptr, conv);
}

namespace {
// A residual block on a 7x7 map of 256 channels (ResNet's layer3/layer4 shape): 49 pixels an
// image and a reduction of 2,304, so splitk_conv splits it (36 slices of 2 k-steps at batch 1,
// 15 of 5 at batch 5 on 132 SMs).
constexpr auto small_map_net = input<256, 7, 7> | conv<256, 3, ConvOpts{.padding = 1}> | batch_norm | relu
    | residual<relu>(conv<256, 3, ConvOpts{.padding = 1}> | batch_norm) | global_avg_pool | flatten | dense<5>;
using SmallMapNet = std::remove_cv_t<decltype(small_map_net)>;
}  // namespace

TEST_CASE("split-K convs (splitk_conv), forced: against the CPU, and the same output replay after replay") {
  const auto conv = [](const cuda::OpDesc& op) { return op.kind == OpKind::conv; };
  check_forced<SmallMapNet, DType::f16>("splitk", 131, cuda::Variant{"splitk_conv"}, "strata split-K conv",
                                        nullptr, conv);
  check_forced<SmallMapNet, DType::bf16>("splitk", 132, cuda::Variant{"splitk_conv"}, "slices of",
                                         nullptr, conv);
  check_forced<Im2colNet, DType::f16>("splitk im2col net", 133, cuda::Variant{"splitk_conv"},
                                      "strata split-K conv", nullptr, conv);
  check_forced<models::MnistCnn, DType::bf16>("splitk mnist", 134, cuda::Variant{"splitk_conv"},
                                              "strata split-K conv", nullptr, conv);
  // The slices of a tile as one cluster's blocks (compute capability 9.0 on): a portable and a
  // non-portable size, bf16, and MNIST's convs at 16 slices, most of them with no k-step at all.
  if (cuda::device_arch() >= 90) {
    for (const int cs : {2, 8, 16}) {
      check_forced<SmallMapNet, DType::f16>(("splitk cluster " + std::to_string(cs)).c_str(),
                                            140 + static_cast<std::uint64_t>(cs),
                                            cuda::Variant{"splitk_conv", cs}, "in a cluster", nullptr, conv);
    }
    check_forced<SmallMapNet, DType::bf16>("splitk cluster bf16", 160, cuda::Variant{"splitk_conv", 4},
                                           "in a cluster", nullptr, conv);
    // 8 staged k-steps (math 1, dynamic shared memory): slices of 9 k-steps wrap the buffers.
    check_forced<SmallMapNet, DType::f16>("splitk cluster deep", 163, cuda::Variant{"splitk_conv", 8, 1},
                                          "8 staged k-steps", nullptr, conv);
    check_forced<SmallMapNet, DType::bf16>("splitk cluster deep bf16", 164, cuda::Variant{"splitk_conv", 16, 1},
                                           "8 staged k-steps", nullptr, conv);
    check_forced<Im2colNet, DType::f16>("splitk cluster im2col net", 161, cuda::Variant{"splitk_conv", 8},
                                        "in a cluster", nullptr, conv);
    check_forced<models::MnistCnn, DType::f16>("splitk cluster mnist", 162, cuda::Variant{"splitk_conv", 16},
                                               "in a cluster", nullptr, conv);
  } else {
    MESSAGE("splitk_conv's clusters skipped: compute capability below 9.0");
  }
  // The tiles' counters go back to 0 after each launch: replays give the same bits.
  const auto w = Weights<SmallMapNet>::random(135);
  cuda::EngineOptions opt{.max_batch = 3, .fused_max_batch = 0};
  for (const cuda::OpDesc& op : cuda::NetStorage<SmallMapNet, DType::f16>::describe().ops) {
    if (op.kind == OpKind::conv) {
      opt.force[op.label] = cuda::Variant{"splitk_conv"};
    }
  }
  cuda::Engine<SmallMapNet, DType::f16> e(w, opt);
  INFO(e.describe(1));
  // Two inputs in turn (A, B, A, B, ...): a counter left unreset would leave a tile unwritten,
  // and the previous run's output in its place would then not match this input's reference.
  const std::vector<float> in[2] = {strata_test::random_floats(3 * 256 * 49, 136),
                                    strata_test::random_floats(3 * 256 * 49, 137)};
  const std::vector<float> ref[2] = {strata_test::cpu_reference<SmallMapNet>(w, in[0], 3),
                                     strata_test::cpu_reference<SmallMapNet>(w, in[1], 3)};
  for (const int b : {1, 3}) {
    const std::size_t n_in = static_cast<std::size_t>(b) * 256 * 49;
    std::vector<float> first[2];
    for (int r = 0; r < 6; ++r) {
      const int which = r % 2;
      std::vector<float> out(static_cast<std::size_t>(b) * 5, std::numeric_limits<float>::quiet_NaN());
      e.infer(std::span<const float>(in[which].data(), n_in), out, b);
      INFO("batch " << b << ", run " << r);
      CHECK(strata_test::rel_error(out, ref[which], out.size()) < 1e-2);
      if (r < 2) {
        first[which] = out;
      } else {
        CHECK(out == first[which]);  // the same bits, replay after replay
      }
    }
  }
}

namespace {
template <int C>
constexpr auto gap_net = input<3, 7, 9> | conv<C, 1> | relu | global_avg_pool | flatten | dense<5>;

/// Net in f16 at batch 70 (global average pooling a block per image: kernels::global_avg_pool
/// from 64 images) and 3 (blocks of 32 channels), against the CPU.
template <class Net>
void check_gap(std::uint64_t seed) {
  using N = std::remove_cvref_t<Net>;
  constexpr int kB = 70;
  const auto w = Weights<Net>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(kB * N::input_spec.shape.numel()), seed + 1);
  const auto ref = strata_test::cpu_reference<Net>(w, in, kB);
  for (const DType p : {DType::f16, DType::bf16}) {
    for (const int b : {kB, 3}) {
      std::vector<float> out(static_cast<std::size_t>(b) * 5, std::numeric_limits<float>::quiet_NaN());
      if (p == DType::f16) {
        cuda::Engine<Net, DType::f16>(w, {.max_batch = kB, .fused_max_batch = 0}).infer(in, out, b);
      } else {
        cuda::Engine<Net, DType::bf16>(w, {.max_batch = kB, .fused_max_batch = 0}).infer(in, out, b);
      }
      const double err = strata_test::rel_error(out, ref, out.size());
      MESSAGE("global_avg_pool over " << N::input_spec.shape.c << "->" << cuda::NetStorage<Net, DType::f16>::describe().ops[0].conv.kp
                                      << " slots, " << dtype_name(p) << " batch " << b << ": rel. error " << err);
      CHECK(err < (p == DType::f16 ? 1e-2 : 3e-2));
    }
  }
}
}  // namespace

TEST_CASE("global average pooling, a block per image from 64 images: channel counts that do and do not divide 256 threads") {
  check_gap<std::remove_cv_t<decltype(gap_net<40>)>>(101);    // 5 groups of 8: 51 lanes a group
  check_gap<std::remove_cv_t<decltype(gap_net<96>)>>(102);    // 12 groups: 21 lanes
  check_gap<std::remove_cv_t<decltype(gap_net<1152>)>>(103);  // 144 groups: one lane, 112 idle
  check_gap<std::remove_cv_t<decltype(gap_net<2080>)>>(104);  // 260 groups: two rounds, the second of 4
}

namespace {
/// Net at `batch` on an engine with option `set` applied and on a plain one: the same kernels,
/// so the same output bit for bit, replay after replay — or, with `tol` > 0, within that relative
/// error (where the plain engine computes something in another order); `more` checks the pair
/// further.
template <class Net, DType P>
void check_same_output(int batch, std::uint64_t seed, const std::function<void(cuda::EngineOptions&)>& set,
                       const std::function<void(cuda::Engine<Net, P>&, cuda::Engine<Net, P>&,
                                                const std::vector<float>&, const std::vector<float>&)>& more,
                       double tol = 0.0) {
  using N = std::remove_cvref_t<Net>;
  const auto w = Weights<Net>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(batch * N::input_spec.shape.numel()), seed + 1);
  const std::size_t n_out = static_cast<std::size_t>(batch * N::output_spec.shape.numel());
  cuda::Engine<Net, P> plain(w, {.max_batch = batch, .fused_max_batch = 0, .pdl = cuda::Pdl::off});
  cuda::EngineOptions o{.max_batch = batch, .fused_max_batch = 0, .pdl = cuda::Pdl::off};
  set(o);
  cuda::Engine<Net, P> other(w, o);
  std::vector<float> want(n_out, std::numeric_limits<float>::quiet_NaN());
  plain.infer(in, want, batch);
  for (int replay = 0; replay < 3; ++replay) {
    std::vector<float> got(n_out, std::numeric_limits<float>::quiet_NaN());
    other.infer(in, got, batch);
    if (tol > 0.0) {
      CHECK(strata_test::rel_error(got, want, n_out) < tol);
    } else {
      CHECK(got == want);
    }
  }
  more(plain, other, in, want);
}

/// Strata's kernels as programmatic dependent launches (EngineOptions::pdl) and without: the
/// same steps (a kernel that read its input before its predecessor finished would differ). Then
/// the default, Pdl::timed: both ways timed at construction, the faster kept (over 1%), the
/// output the same, and a context launching as its engine does.
template <class Net, DType P>
void check_pdl(int batch, std::uint64_t seed) {
  check_same_output<Net, P>(
      batch, seed, [](cuda::EngineOptions& o) { o.pdl = cuda::Pdl::on; },
      [&](cuda::Engine<Net, P>& plain, cuda::Engine<Net, P>& pdl, const std::vector<float>& in,
          const std::vector<float>& want) {
        CHECK(pdl.describe(batch) == plain.describe(batch));
        CHECK_FALSE(plain.stats().pdl);
        CHECK(pdl.stats().pdl);
        CHECK(plain.stats().pdl_check_on_us == 0.0);
        CHECK(pdl.stats().pdl_check_on_us == 0.0);
        const auto w = Weights<Net>::random(seed);  // (check_same_output's weights)
        cuda::Engine<Net, P> timed(w, {.max_batch = batch, .fused_max_batch = 0});
        const cuda::EngineStats& st = timed.stats();
        CHECK(st.pdl_check_error.empty());
        CHECK(st.pdl_check_off_us > 0.0);
        CHECK(st.pdl_check_on_us > 0.0);
        CHECK(st.pdl == (st.pdl_check_on_us < 0.99 * st.pdl_check_off_us));
        MESSAGE("Pdl::timed at batch " << batch << ": " << st.pdl_check_off_us << " us ordinary, "
                                       << st.pdl_check_on_us << " us programmatic; kept "
                                       << std::string(st.pdl ? "programmatic" : "ordinary"));
        std::ostringstream sum;
        timed.summary(sum);
        CHECK(sum.str().find(st.pdl ? "(EngineOptions::pdl, timed): Strata's kernels as programmatic"
                                    : "(EngineOptions::pdl, timed): Strata's kernels as ordinary") !=
              std::string::npos);
        std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
        timed.infer(in, got, batch);
        CHECK(got == want);
        cuda::Engine<Net, P> ctx = timed.context();
        CHECK(ctx.stats().pdl == st.pdl);
        std::fill(got.begin(), got.end(), std::numeric_limits<float>::quiet_NaN());
        ctx.infer(in, got, batch);
        CHECK(got == want);
      });
}
}  // namespace

TEST_CASE("programmatic dependent launches (EngineOptions::pdl) change no output") {
  if (cuda::device_arch() < 90) {
    MESSAGE("SKIPPED: programmatic dependent launches need compute capability 9.0");
    return;
  }
  check_pdl<TileNet, DType::f16>(5, 141);
  check_pdl<MmaLayerNet, DType::bf16>(5, 142);
  check_pdl<DownNet, DType::f16>(5, 143);
  check_pdl<std::remove_cv_t<decltype(gap_net<96>)>, DType::f16>(70, 144);
  check_pdl<models::MnistCnn, DType::f32>(9, 145);
  // The split-K conv copies its filter's first k-steps before its wait (pdl_launch first, then
  // pdl_wait): a 7x7 map of 256 channels at batch 1 (clusters of 16), and DenseNet-121 at batch 1
  // (106 split-K launches, 48 of them applying the batch norm as staged; each 3x3 conv's input
  // the 1x1 conv's output just before it, each 1x1 conv's the concat that earlier kernels wrote).
  check_pdl<SmallMapNet, DType::f16>(1, 146);
  check_pdl<models::DenseNet121, DType::f16>(1, 147);
  // normed_conv's ring forms (DenseNet-121 at batch 1: algo 2 math 3 on 10 layers, above) and
  // expand_depthwise copy weights before the wait too: EfficientNet-B0 at batch 1 (its
  // expansions and depthwise convs, squeeze-excite clusters, gated projections).
  check_pdl<models::EfficientNetB0, DType::f16>(1, 148);
}

namespace {
// Two residual blocks with downsamples (ResNet's basic block at stride 2): each block's
// downsample may run beside its first conv.
constexpr auto branch_net = input<16, 16, 16> | models::basic_block<32, 2, true>()
    | models::basic_block<64, 2, true>() | global_avg_pool | flatten | dense<10>;
using BranchNet = std::remove_cv_t<decltype(branch_net)>;

/// Net at `batch` with ops run beside the next one (EngineOptions::concurrent_branches) and
/// without (check_same_output): `pairs` ops marked, the CPU's output, and the per-step profile —
/// a step beside the next one timed on its own stream — leaves the output as it was.
template <class Net, DType P>
void check_branches(int batch, std::uint64_t seed, int pairs) {
  // At batch 1 the plain engine computes a 16-bit downsample in its block's first conv's launch
  // (fold_side_convs, splitk_conv fuse 1: the same sums in another order), the branched one on
  // its own stream: close, not bit-equal.
  const double tol = batch <= cuda::side_conv_max_batch && is_16bit(P) ? 2e-3 : 0.0;
  check_same_output<Net, P>(
      batch, seed, [](cuda::EngineOptions& o) { o.concurrent_branches = true; },
      [&](cuda::Engine<Net, P>& plain, cuda::Engine<Net, P>& branched, const std::vector<float>& in,
          const std::vector<float>& want) {
        const std::string runs = branched.describe(batch);
        INFO(runs);
        CHECK(occurrences(runs, "runs beside") == static_cast<std::size_t>(pairs));
        const auto w = Weights<Net>::random(seed);
        const auto ref = strata_test::cpu_reference<Net>(w, in, batch);
        CHECK(strata_test::rel_error(want, ref, want.size()) < 3e-2);
        // (at batch 1 the plain engine joins a 16-bit downsample that does not read the
        // network's input to its block's first conv as one step — fold_side_convs —, which the
        // branched one leaves apart)
        cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
        cuda::fold_for_per_op_path(net);
        const std::size_t ops = net.ops.size();
        if (batch <= cuda::side_conv_max_batch) {
          cuda::fold_side_convs(net);
        }
        const auto steps = branched.profile(batch, 5);
        CHECK(steps.size() == plain.profile(batch, 5).size() + (ops - net.ops.size()));
        for (const auto& [label, us] : steps) {
          INFO(label);
          CHECK(us > 0.0f);
        }
        std::vector<float> after(want.size(), std::numeric_limits<float>::quiet_NaN());
        branched.infer(in, after, batch);
        if (tol > 0.0) {
          CHECK(strata_test::rel_error(after, want, want.size()) < tol);
        } else {
          CHECK(after == want);
        }
      },
      tol);
}
}  // namespace

TEST_CASE("an op beside the next one on a second stream (EngineOptions::concurrent_branches) changes no output") {
  check_branches<BranchNet, DType::f16>(1, 151, 2);
  check_branches<BranchNet, DType::f16>(6, 152, 2);
  check_branches<BranchNet, DType::bf16>(3, 153, 2);
  // f32: every conv on cuDNN — the downsample's prepared with the side stream's handle (a conv
  // and Strata's bias epilogue: both on the side stream).
  check_branches<BranchNet, DType::f32>(2, 154, 2);
  check_branches<models::MnistCnn, DType::f16>(4, 155, 0);  // a chain: nothing beside anything
}

namespace {
// Downsampling blocks after a stem (a pair reading the network's input is not joined) whose
// input channel slots are multiples of 32 (so splitk_conv can take the centre tap's k-steps as
// the downsample's): a basic block's 3×3/2 conv with a 1×1/2 downsample, twice, and a
// bottleneck's 1×1 conv with a 1×1 downsample (ResNet-50's layer1.0); and one of 16 slots.
constexpr auto side_net = input<16, 14, 14> | conv<32, 3, ConvOpts{.padding = 1}> | relu
    | models::basic_block<64, 2, true>() | models::basic_block<128, 2, true>() | global_avg_pool
    | flatten | dense<10>;
using SideNet = std::remove_cv_t<decltype(side_net)>;
constexpr auto side_net_1x1 = input<16, 8, 8> | conv<64, 3, ConvOpts{.padding = 1}> | relu
    | models::bottleneck<16, 1, true>() | global_avg_pool | flatten | dense<5>;
using SideNet1x1 = std::remove_cv_t<decltype(side_net_1x1)>;
constexpr auto side_net_16 = input<8, 16, 16> | conv<16, 3, ConvOpts{.padding = 1}> | relu
    | models::basic_block<32, 2, true>() | global_avg_pool | flatten | dense<10>;
using SideNet16 = std::remove_cv_t<decltype(side_net_16)>;

/// Net at batch 1 with every joined conv & downsample (fold_side_convs) forced onto splitk_conv
/// fuse 1 in clusters of `cs`: `joins` such ops, the CPU's output, close to the engine's own.
template <class Net, DType P>
void check_side(int cs, std::uint64_t seed, int joins) {
  cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(net);
  cuda::fold_side_convs(net);
  cuda::EngineOptions opt{.max_batch = 1, .fused_max_batch = 0};
  int found = 0;
  for (const cuda::OpDesc& op : net.ops) {
    if (op.side) {
      opt.force[op.label] = cuda::Variant{"splitk_conv", cs, 0, 1};
      ++found;
    }
  }
  REQUIRE(found == joins);
  const auto w = Weights<Net>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(Net::input_spec.shape.numel()), seed + 1);
  const auto ref = strata_test::cpu_reference<Net>(w, in, 1);
  cuda::Engine<Net, P> plain(w, {.max_batch = 1, .fused_max_batch = 0});
  cuda::Engine<Net, P> e(w, opt);
  const std::string runs = e.describe(1);
  INFO(runs);
  CHECK(occurrences(runs, "the side conv's tiles after the conv's") == static_cast<std::size_t>(joins));
  CHECK(runs.find(" & ") != std::string::npos);
  const std::size_t n_out = static_cast<std::size_t>(Net::output_spec.shape.numel());
  std::vector<float> a(n_out, std::numeric_limits<float>::quiet_NaN());
  std::vector<float> b(n_out, std::numeric_limits<float>::quiet_NaN());
  for (int replay = 0; replay < 2; ++replay) {
    e.infer(in, a, 1);
    plain.infer(in, b, 1);
    const double err = strata_test::rel_error(a, ref, n_out);
    MESSAGE("side conv " << dtype_name(P) << " cluster " << cs << ": rel. error " << err
                         << " (the plain engine's " << strata_test::rel_error(b, ref, n_out) << ")");
    CHECK(err < (P == DType::f16 ? 1e-2 : 3e-2));
  }
}
}  // namespace

TEST_CASE("a downsample computed by its block's first conv (splitk_conv fuse 1), forced and claimed") {
  if (cuda::device_arch() < 90) {
    MESSAGE("SKIPPED: splitk_conv's clusters need compute capability 9.0");
    return;
  }
  check_side<SideNet, DType::f16>(8, 171, 2);
  check_side<SideNet, DType::bf16>(4, 172, 2);
  check_side<SideNet, DType::f16>(16, 173, 2);
  check_side<SideNet1x1, DType::f16>(2, 174, 1);
  // Unforced, the heuristic claims both of SideNet's joins for fuse 1 (clusters of 2 and 4).
  {
    const auto w = Weights<SideNet>::random(176);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(SideNet::input_spec.shape.numel()), 177);
    const auto ref = strata_test::cpu_reference<SideNet>(w, in, 1);
    cuda::Engine<SideNet, DType::f16> e(w, {.max_batch = 1, .fused_max_batch = 0});
    const std::string runs = e.describe(1);
    INFO(runs);
    CHECK(occurrences(runs, "the side conv's tiles after the conv's") == 2);
    std::vector<float> out(static_cast<std::size_t>(SideNet::output_spec.shape.numel()));
    e.infer(in, out, 1);
    const double err = strata_test::rel_error(out, ref, out.size());
    MESSAGE("side conv f16, heuristic: rel. error " << err);
    CHECK(err < 1e-2);
  }
  // Not where the input's slots are not a whole number of k-steps: an error naming the layer.
  cuda::NetDesc net = cuda::NetStorage<SideNet16, DType::f16>::describe();
  cuda::fold_for_per_op_path(net);
  cuda::fold_side_convs(net);
  const auto first = std::find_if(net.ops.begin(), net.ops.end(), [](const cuda::OpDesc& op) { return op.side != nullptr; });
  REQUIRE(first != net.ops.end());
  REQUIRE(first->conv.cp == 16);
  const std::string label = first->label;
  cuda::EngineOptions opt{.max_batch = 1, .fused_max_batch = 0};
  opt.force[label] = cuda::Variant{"splitk_conv", 8, 0, 1};
  try {
    cuda::Engine<SideNet16, DType::f16> e(Weights<SideNet16>::random(175), opt);
    FAIL("splitk_conv fuse 1 ran a side conv over 16 input slots");
  } catch (const strata::Error& err) {
    CHECK(std::string(err.what()).find(label) != std::string::npos);
    CHECK(std::string(err.what()).find("multiple of 32") != std::string::npos);
  }
}

TEST_CASE("the tiled tensor-core conv writes a concat's slice itself (DenseNet's stem), forced") {
  static_assert(cuda::NetStorage<DenseStemNet, DType::f16>::s2d_op() == 0);
  const cuda::NetDesc net = cuda::NetStorage<DenseStemNet, DType::f16>::describe();
  REQUIRE(net.ops.front().slice.has_value());
  CHECK(net.ops.front().slice->strides.pixel == 24);
  const cuda::Variant pooled{"tile_conv", 0, 0, 1};
  check_forced<DenseStemNet, DType::f16>("tile dense stem", 55, pooled,
                                         "strata tiled tensor-core conv", "copy into");
  check_forced<DenseStemNet, DType::bf16>("tile dense stem", 56, pooled,
                                          "strata tiled tensor-core conv", "copy into");
  check_forced<DenseStemNet, DType::f16>("tile dense stem db", 60, cuda::Variant{"tile_conv", 1, 0, 1},
                                         "patch double-buffered", "copy into");
  // The forms the heuristic claims for such a stem (session 33): reading the caller's input, on
  // mma.sync (small batches) and, on a GPU of compute capability 9.0, the 12-slot patch on wgmma
  // with padded rows (large ones).
  check_forced<DenseStemNet, DType::f16>("tile dense stem raw", 61, cuda::Variant{"tile_conv", 2, 0, 1},
                                         "reads the caller's input", "copy into");
  // (Algo 7 in bf16 gave a relative error of 0.043 here on an H200 in session 33, f16 7.5e-4,
  // and was withdrawn from bf16 until session 54. Session 54 (H100): forms 0, 2, 3, 6 and 8 forced in bf16 all give this
  // net 0.042693 against the CPU at batch 1 (0.0093 at 5), and the net with the stem alone
  // 0.0050 — the stem's forms agree, and bf16's error on the rest of this net at batch 1 is over
  // check_forced's 1e-2 with those weights (seed 63; the mma.sync check above, seed 56, passes).
  // So in bf16 the wgmma form is checked against the CPU with seed 56's weights, and against the
  // mma.sync form with seed 63's.)
  if (cuda::tactics::mma::wgmma_device()) {
    const cuda::Variant d12{"tile_conv", 7, 1, 1};
    check_forced<DenseStemNet, DType::f16>("tile dense stem d12", 62, d12, "strata tiled tensor-core conv",
                                           "copy into");
    check_forced<DenseStemNet, DType::bf16>("tile dense stem wgmma", 56, cuda::Variant{"tile_conv", 3, 0, 1},
                                            "(wgmma, tiles of", "copy into");
    const auto w = Weights<DenseStemNet>::random(63);
    const auto in = strata_test::random_floats(5 * 3 * 29 * 34, 163);
    const auto stem = [](const cuda::OpDesc& op) { return op.conv.s2d; };
    for (const int b : {1, 5}) {
      const auto wg = forced_output<DenseStemNet, DType::bf16>(w, in, 5, b, stem, 1, cuda::Variant{"tile_conv", 3, 0, 1},
                                                               "(wgmma, tiles of");
      const auto sync = forced_output<DenseStemNet, DType::bf16>(w, in, 5, b, stem, 1, cuda::Variant{"tile_conv", 0, 0, 1},
                                                                 "(mma.sync, tiles of");
      const double err = strata_test::rel_error(wg, sync, wg.size());
      MESSAGE("dense stem bf16, batch " << b << ": wgmma (algo 3) against mma.sync (algo 0): rel. error " << err);
      CHECK(err < 1e-3);
    }
  }
}


namespace {
// Convs for plane_conv (size-keeping convs into 64 slots, the output channels as wgmma's M and
// the tile's pixels as its N): one from 16 input slots, a residual block's two (bias + relu;
// bias + add + relu), a 5x5 from 32 slots into 60 channels (slots 60-63 written as zeros) with a
// gelu, a 3x3 from those 64 slots; a 19x23 map (tiles whose last rows lie past the map).
constexpr auto plane_net = input<16, 19, 23> | conv<64, 3, ConvOpts{.padding = 1}> | batch_norm | relu
    | residual<relu>(conv<64, 3, ConvOpts{.padding = 1}> | batch_norm | relu
                     | conv<64, 3, ConvOpts{.padding = 1}> | batch_norm)
    | conv<32, 1> | relu | conv<60, 5, ConvOpts{.padding = 2}> | gelu
    | conv<64, 3, ConvOpts{.padding = 1}> | relu | global_avg_pool | flatten | dense<7>;
using PlaneNet = std::remove_cv_t<decltype(plane_net)>;
// A 7x7 map (9 patch columns a row: the second warpgroup's first column inside a row, the last
// row's last outputs its) and a 1x3 conv (one tap row).
constexpr auto plane_odd_net = input<64, 7, 7> | conv<64, 3, ConvOpts{.padding = 1}> | batch_norm | relu
    | conv<64, HW{1, 3}, ConvOpts{.padding = HW{0, 1}}> | relu | flatten | dense<5>;
using PlaneOddNet = std::remove_cv_t<decltype(plane_odd_net)>;
// Several tiles a block: 8x8 maps (a tile an image) at batch 300, over 132 SMs.
constexpr auto plane_small_net = input<64, 8, 8> | conv<64, 3, ConvOpts{.padding = 1}> | batch_norm | relu
    | residual<relu>(conv<64, 3, ConvOpts{.padding = 1}> | batch_norm) | flatten | dense<5>;
using PlaneSmallNet = std::remove_cv_t<decltype(plane_small_net)>;
}  // namespace

TEST_CASE("size-keeping convs into 64 slots with the pixels as wgmma's N (plane_conv), forced") {
  if (cuda::device_arch() != 90) {
    MESSAGE("plane_conv not checked: this GPU is not of compute capability 9.0 (sm_90a)");
    return;
  }
  const cuda::Variant v{"plane_conv"};
  const auto fits = [](const cuda::OpDesc& op) { return cuda::tactics::plane::shape_fits(op); };
  const char* shows = "strata plane conv (wgmma";
  check_forced<PlaneNet, DType::f16>("plane", 240, v, shows, nullptr, fits);
  check_forced<PlaneNet, DType::bf16>("plane", 241, v, shows, nullptr, fits);
  check_forced<PlaneOddNet, DType::f16>("plane odd", 251, v, shows, nullptr, fits);
  check_forced<PlaneOddNet, DType::bf16>("plane odd", 252, v, shows, nullptr, fits);
  check_forced<PlaneOddNet, DType::f16>("plane odd serial", 253, cuda::Variant{"plane_conv", 0, 1}, shows, nullptr, fits);
  // ResNet-18's layer1 (its four 3x3 64 -> 64 convs: 56x56 maps in tiles of 8 rows, 232 columns a
  // warpgroup), the add of the second conv of each block fused
  check_forced<models::ResNet18, DType::f16>("plane resnet18", 242, v, shows, nullptr, fits);
  check_forced<models::ResNet18, DType::bf16>("plane resnet18", 243, v, shows, nullptr, fits);
  // The serial form (math 1: two buffers, the tile's phases in turn; 8-row tiles on ResNet's maps)
  const cuda::Variant serial{"plane_conv", 0, cuda::tactics::plane::serial_math};
  check_forced<PlaneNet, DType::f16>("plane serial", 245, serial, "the phases in turn", nullptr, fits);
  check_forced<PlaneNet, DType::bf16>("plane serial", 246, serial, "the phases in turn", nullptr, fits);
  check_forced<models::ResNet18, DType::f16>("plane serial resnet18", 247, serial, "the phases in turn", nullptr, fits);
  // The serial form with the residual's rows staged with the patch (math 2; convs with a residual).
  const cuda::Variant staged{"plane_conv", 0, cuda::tactics::plane::staged_math};
  const auto with_z = [&](const cuda::OpDesc& op) { return fits(op) && op.has_residual; };
  const char* zshows = "the residual's rows copied in with the patch";
  check_forced<PlaneNet, DType::f16>("plane staged", 248, staged, zshows, nullptr, with_z);
  check_forced<PlaneNet, DType::bf16>("plane staged", 249, staged, zshows, nullptr, with_z);
  check_forced<models::ResNet18, DType::f16>("plane staged resnet18", 250, staged, zshows, nullptr, with_z);
  // The warp-specialized form (math 3: a producer warpgroup, two consumers each on tiles of its
  // own, taking turns at the MMAs).
  const cuda::Variant special{"plane_conv", 0, cuda::tactics::plane::specialized_math};
  const char* sshows = "warp-specialized";
  check_forced<PlaneNet, DType::f16>("plane specialized", 254, special, sshows, nullptr, fits);
  check_forced<PlaneNet, DType::bf16>("plane specialized", 255, special, sshows, nullptr, fits);
  check_forced<PlaneOddNet, DType::f16>("plane odd specialized", 256, special, sshows, nullptr, fits);
  check_forced<models::ResNet18, DType::f16>("plane specialized resnet18", 257, special, sshows, nullptr, fits);
  check_forced<models::ResNet18, DType::bf16>("plane specialized resnet18", 259, special, sshows, nullptr, fits);
  // ... over four buffers (algo 1: 3-row tiles on ResNet's maps)
  const cuda::Variant special4{"plane_conv", 1, cuda::tactics::plane::specialized_math};
  check_forced<PlaneNet, DType::f16>("plane specialized4", 260, special4, "copying into 4 buffers", nullptr, fits);
  check_forced<models::ResNet18, DType::f16>("plane specialized4 resnet18", 261, special4, "copying into 4 buffers", nullptr, fits);
  {
    // Many tiles a block, both consumers at work and every buffer reused: ResNet-18 at batch 48
    // (672 tiles of layer1's four convs, 5 or 6 a block) equal to the serial form's output to the
    // bit (the same k-steps in the same order into each accumulator, the same epilogue).
    using Net = models::ResNet18;
    constexpr int kB = 48;
    const auto w = Weights<Net>::random(258);
    const auto in = random_floats(static_cast<std::size_t>(kB * Net::input_spec.shape.numel()), 358);
    const auto a = strata_test::forced_output<Net, DType::f16>(w, in, kB, kB, fits, 4, special, sshows);
    const auto b = strata_test::forced_output<Net, DType::f16>(w, in, kB, kB, fits, 4, serial, "the phases in turn");
    const auto c = strata_test::forced_output<Net, DType::f16>(w, in, kB, kB, fits, 4, special4, "copying into 4 buffers");
    REQUIRE(a.size() == b.size());
    REQUIRE(c.size() == b.size());
    std::size_t differ = 0;
    std::size_t differ4 = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      differ += a[i] == b[i] ? 0 : 1;
      differ4 += c[i] == b[i] ? 0 : 1;
    }
    MESSAGE("plane_conv math 3 against math 1, ResNet-18 f16 at batch 48: " << differ << " of " << a.size()
            << " outputs differ (over 4 buffers: " << differ4 << ")");
    CHECK(differ == 0);
    CHECK(differ4 == 0);
  }
  // Several tiles a block: the patch buffers reused, the next tiles' patches in flight.
  for (const cuda::Variant& form : {v, serial, special}) {
    using Net = PlaneSmallNet;
    constexpr int kB = 300;
    const auto w = Weights<Net>::random(244);
    const auto in = random_floats(static_cast<std::size_t>(kB * Net::input_spec.shape.numel()), 344);
    const auto ref = cpu_reference<Net>(w, in, kB);
    cuda::NetDesc net = cuda::NetStorage<Net, DType::f16>::describe();
    cuda::fold_for_per_op_path(net);
    cuda::EngineOptions opt{.max_batch = kB, .fused_max_batch = 0};
    for (const cuda::OpDesc& op : net.ops) {
      if (fits(op)) {
        opt.force[op.label] = form;
      }
    }
    REQUIRE(opt.force.size() == 2);
    cuda::Engine<Net, DType::f16> e(w, opt);
    const std::string runs = e.describe(kB);
    INFO(runs);
    CHECK(occurrences(runs, shows) == 2);
    CHECK(cuda::tactics::plane::tiles(*std::find_if(net.ops.begin(), net.ops.end(), fits), kB) == kB);
    std::vector<float> out(static_cast<std::size_t>(kB) * 5, std::numeric_limits<float>::quiet_NaN());
    e.infer(in, out, kB);
    const double err = rel_error(out, ref, out.size());
    MESSAGE("plane_conv math " << form.math << ", 8x8 maps at batch 300 (several tiles a block): rel. error " << err);
    CHECK(err < 1e-2);
  }
}

namespace {
// Stems for stem_conv (a 7x7/2 conv over 3 channels into 64, its 3x3/2 max pool; the conv's map
// even): 64x80 inputs (conv 32x40, pooled 16x20; 43 patch columns, 88 GEMM columns), rows of 80
// elements (f32 320 bytes, f16 160, 8-bit HWC 240: whole 16-byte units for the bulk copies).
template <int H, int W>
constexpr auto band_stem_net = input<3, H, W>
    | conv<64, 7, ConvOpts{.stride = 2, .padding = 3, .bias = false}> | batch_norm | relu
    | max_pool<3, PoolOpts{.stride = 2, .padding = 1}> | flatten | dense<5>;
using BandStemNet = std::remove_cv_t<decltype(band_stem_net<64, 80>)>;

/// Net's output in precision P at batch `b` (max batch `b`, heuristic tuning, per-op path) with
/// its stem forced onto `v`, from input `vals` in format `in_opt` (8-bit: `bytes`; f16: `vals`
/// rounded) — and the engine's description.
template <class Net, DType P = DType::f16>
std::pair<std::vector<float>, std::string> stem_run(const Weights<Net>& w, const cuda::Variant& v,
                                                    const cuda::InputOptions& in_opt, int b,
                                                    const std::vector<float>& vals,
                                                    const std::vector<std::uint8_t>& bytes) {
  using N = std::remove_cvref_t<Net>;
  cuda::EngineOptions opt{.max_batch = b, .tuning = cuda::Tuning::heuristic, .fused_max_batch = 0};
  opt.input = in_opt;
  cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(net);
  opt.force[net.ops.front().label] = v;
  cuda::Engine<Net, P> e(w, opt);
  std::vector<float> out(static_cast<std::size_t>(b) * static_cast<std::size_t>(N::output_spec.shape.numel()),
                         std::numeric_limits<float>::quiet_NaN());
  if (in_opt.format == cuda::InputFormat::u8_hwc) {
    e.infer(std::span<const std::uint8_t>(bytes.data(), static_cast<std::size_t>(b) * N::input_spec.shape.numel()), out, b);
  } else if (in_opt.format == cuda::InputFormat::f16) {
    std::vector<__half> h(static_cast<std::size_t>(b) * N::input_spec.shape.numel());
    for (std::size_t i = 0; i < h.size(); ++i) {
      h[i] = __float2half(vals[i]);
    }
    e.infer(h, out, b);
  } else {
    e.infer(std::span<const float>(vals.data(), static_cast<std::size_t>(b) * N::input_spec.shape.numel()), out, b);
  }
  return {out, e.describe(b)};
}
}  // namespace

TEST_CASE("the stem as warp-specialized bands of conv rows (stem_conv), forced") {
  if (cuda::device_arch() != 90) {
    MESSAGE("stem_conv not checked: this GPU is not of compute capability 9.0 (sm_90a)");
    return;
  }
  using F = cuda::InputFormat;
  const cuda::Variant band{"stem_conv", 0, 0, 1};
  const cuda::Variant band4{"stem_conv", 1, 0, 1};
  const char* shows = "strata stem conv (wgmma";
  {
    // Against the CPU, f32 input: batch 1 (16 bands of one pooled row, each but the first from
    // the tile above it), 5, 40 (bands of 3 rows and one of 1: the two consumers of a block with
    // different tile counts), 300 (bands of 4 rows, several units a consumer).
    using Net = BandStemNet;
    constexpr int kMax = 300;
    const auto w = Weights<Net>::random(270);
    const auto vals = random_floats(static_cast<std::size_t>(kMax * Net::input_spec.shape.numel()), 370);
    for (const int b : {1, 5, 40, 300}) {
      const std::vector<float> in(vals.begin(), vals.begin() + static_cast<std::ptrdiff_t>(b * Net::input_spec.shape.numel()));
      const auto ref = cpu_reference<Net>(w, in, b);
      for (const cuda::Variant& v : {band, band4}) {
        const auto [out, d] = stem_run<Net>(w, v, {}, b, vals, {});
        INFO(d);
        CHECK(d.find(shows) != std::string::npos);
        CHECK(d.find("input: ") == std::string::npos);  // (no input step: the stem reads the caller's input)
        const double err = rel_error(out, ref, out.size());
        MESSAGE("stem_conv algo " << v.algo << ", 64x80 stem, f16, batch " << b << ": rel. error " << err);
        CHECK(err < 1e-2);
      }
      if (b == 40) {  // bf16
        const auto [out, d] = stem_run<Net, DType::bf16>(w, band, {}, b, vals, {});
        const double err = rel_error(out, ref, out.size());
        MESSAGE("stem_conv, 64x80 stem, bf16, batch 40: rel. error " << err);
        CHECK(err < 2e-2);
      }
    }
    // Every input format, normalized on the GPU, against tile_conv's swapped form from the input
    // step's map (algo 8: the same k-steps in the same order, the same pool): equal to the bit.
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(kMax * Net::input_spec.shape.numel()));
    std::mt19937_64 rng(371);
    for (std::uint8_t& x : bytes) {
      x = static_cast<std::uint8_t>(rng() & 0xffu);
    }
    for (const F f : {F::f32, F::f16, F::u8_hwc}) {
      cuda::InputOptions in_opt{.format = f, .scale = f == F::u8_hwc ? 1.0f / 255.0f : 1.0f,
                                .mean = {0.485f, 0.456f, 0.406f}, .stddev = {0.229f, 0.224f, 0.225f}};
      for (const int b : {3, 40}) {
        const auto [got, d] = stem_run<Net>(w, band, in_opt, b, vals, bytes);
        const auto [want, dr] = stem_run<Net>(w, cuda::Variant{"tile_conv", 8, 0, 1}, in_opt, b, vals, bytes);
        INFO(d);
        INFO(dr);
        CHECK(d.find(shows) != std::string::npos);
        std::size_t differ = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
          differ += got[i] == want[i] ? 0 : 1;
        }
        MESSAGE("stem_conv against tile_conv algo 8, " << std::string(cuda::input_format_name(f)) << " input, batch " << b
                << ": rel. error " << rel_error(got, want, got.size()) << ", " << differ << " of " << got.size()
                << " outputs differ");
        CHECK(differ == 0);  // (observed on an H100, session 57)
      }
    }
  }
  // ResNet-18 (224x224: 56 tiles an image, 232 GEMM columns) against the CPU, f16 and bf16 (f32
  // input: algo 1's four buffers do not fit beside its rows); and at batch 48 (5 bands of 12 rows)
  // against tile_conv algo 9, the heuristic's stem.
  const auto fits = [](const cuda::OpDesc& op) { return cuda::tactics::stem::shape_fits(op); };
  check_forced<models::ResNet18, DType::f16>("stem resnet18", 272, band, shows, nullptr, fits);
  check_forced<models::ResNet18, DType::bf16>("stem resnet18", 273, band, shows, nullptr, fits);
  {
    using Net = models::ResNet18;
    constexpr int kB = 48;
    const auto w = Weights<Net>::random(275);
    const auto in = random_floats(static_cast<std::size_t>(kB * Net::input_spec.shape.numel()), 375);
    const auto a = forced_output<Net, DType::f16>(w, in, kB, kB, fits, 1, band, shows);
    const auto b = forced_output<Net, DType::f16>(w, in, kB, kB, fits, 1, cuda::Variant{"tile_conv", 9, 0, 1},
                                                  "pixels as wgmma's N");
    std::size_t differ = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      differ += a[i] == b[i] ? 0 : 1;
    }
    MESSAGE("stem_conv against tile_conv algo 9, ResNet-18 f16 at batch 48: rel. error "
            << rel_error(a, b, a.size()) << ", " << differ << " of " << a.size() << " outputs differ");
    CHECK(differ == 0);  // (the same sums in the same order; equal at batch 256 in R2 on an H100)
  }
}
