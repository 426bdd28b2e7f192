// Run-time compilation (strata/cuda/rtc/compiler.hpp) without a GPU: Strata's kernel source
// compiles with NVRTC for every element type, the disk cache returns exactly what was compiled,
// a changed program misses it, a damaged file is recompiled, and a compile error names the
// program and carries NVRTC's log. Also the host-side rules of the tactics that need CUDA's
// headers: where global pooling splits, which tactics may run an op with a deferred activation.
// CTest runs it twice: as the machine answers (none: no GPU), and with a Hopper GPU's answers to
// the device queries preloaded (rtc/sm90_device.cpp; STRATA_RTC_EXPECT_SM90 set), so that every
// check on a tactic's offers and claims is made for both.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <nvrtc.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <strata/cuda/fused_network.hpp>
#include <strata/cuda/kernels.hpp>
#include <strata/cuda/tactics/generated_conv.hpp>
#include <strata/cuda/tactics/registry.hpp>
#include <strata/cuda/tuner.hpp>
#include <strata/layers/conv_transpose.hpp>
#include <strata/models/densenet.hpp>
#include <strata/models/efficientnet.hpp>
#include <strata/models/mnist_cnn.hpp>
#include <strata/models/mobilenet_v2.hpp>
#include <strata/models/resnet.hpp>

#include "../fused_nets.hpp"

using namespace strata;
namespace rtc = strata::cuda::rtc;
namespace kernels = strata::cuda::kernels;

namespace {
/// An empty directory of this process's own (two runs of this binary at once — a developer's
/// and CI's — once shared a cache directory, and one found the other's program in it).
std::filesystem::path fresh_dir(const char* name) {
  const auto d = std::filesystem::temp_directory_path() /
                 (std::string(name) + "." + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d;
}

/// How many times `what` occurs in `src` (overlaps counted).
int count(const std::string& src, const std::string& what) {
  int n = 0;
  for (std::size_t at = src.find(what); at != std::string::npos; at = src.find(what, at + 1)) {
    ++n;
  }
  return n;
}

/// Whether every `return;` of a generated kernel's text (`body`, from its `__global__`) comes
/// after its programmatic dependent launch's wait (`wait`, the kernel's own pdl_wait) or right
/// after a pdl_wait of its own (the line before it): every thread waits before it returns.
bool returns_after_waits(const std::string& body, std::size_t wait) {
  for (std::size_t r = body.find("return;"); r != std::string::npos && r < wait; r = body.find("return;", r + 1)) {
    const std::size_t line = body.rfind('\n', body.rfind('\n', r) - 1);
    if (body.substr(line, r - line).find("pdl_wait();") == std::string::npos) {
      return false;
    }
  }
  return true;
}

/// A generated kernel's text (`body`, from its `__global__`) that works before a programmatic
/// dependent launch's wait: it opens with pdl_launch (no pdl_entry); `weights` (its first read of
/// weights) comes before its own wait, `input` (its first read of what an earlier kernel wrote)
/// after it; every thread waits before it returns. Returns the wait's position.
std::size_t check_early_work(const std::string& body, const std::string& weights, const std::string& input) {
  INFO(weights << " / " << input);
  const std::size_t launch = body.find("pdl_launch();");
  const std::size_t w = body.find(weights);
  const std::size_t wait = body.find("\n  pdl_wait();");
  const std::size_t in = body.find(input);
  REQUIRE(launch != std::string::npos);
  REQUIRE(w != std::string::npos);
  REQUIRE(wait != std::string::npos);
  REQUIRE(in != std::string::npos);
  CHECK(body.find("pdl_entry();") == std::string::npos);
  CHECK(launch < w);
  CHECK(w < wait);
  CHECK(wait < in);
  CHECK(returns_after_waits(body, wait));
  return wait;
}
}  // namespace

TEST_CASE("the device the tactics' checks see: a Hopper GPU's answers where CTest preloads them") {
  const char* expect = std::getenv("STRATA_RTC_EXPECT_SM90");
  if (expect == nullptr) {
    MESSAGE("as this machine answers: compute capability " << cuda::device_arch());
    return;
  }
  // (a runtime linked statically, or a preload that did not take, would leave every check below
  // answered as without a GPU — and passing for the wrong machine)
  CHECK(cuda::device_arch() == 90);
  CHECK(cuda::tactics::mma::wgmma_device());
  CHECK(cuda::tactics::generated::device_sms().sms == 132);
  CHECK(cuda::tactics::tile::device_shared_optin() == 232448);
}

TEST_CASE("Strata's kernels compile for every element type, in parts on several threads, and the cache returns them") {
  if (std::getenv("STRATA_RTC_EXPECT_SM90") != nullptr) {
    // The libraries are compiled for sm_90 whatever the device answers: the run without the
    // preload compiles the same programs (and they are the largest part of this binary's time).
    MESSAGE("skipped with the Hopper answers preloaded: the same programs as the run without them");
    return;
  }
  const auto dir = fresh_dir("strata_rtc_test_cache");
  using kernels::detail::library_instantiations;
  // Each element type's kernels but the depthwise ones, then the 16-bit types' depthwise ones (a
  // library of their own: every depthwise kernel and nothing else in it).
  const std::vector<std::pair<std::string, std::vector<std::string>>> programs{
      {"f32", library_instantiations<float, false>()},
      {"f16", library_instantiations<__half, false>()},
      {"bf16", library_instantiations<__nv_bfloat16, false>()},
      {"f16_depthwise", library_instantiations<__half, true>()},
      {"bf16_depthwise", library_instantiations<__nv_bfloat16, true>()}};
  CHECK(library_instantiations<float, true>().empty());
  for (const auto& [what, names] : programs) {
    INFO(what);
    const bool dw = what.find("depthwise") != std::string::npos;
    CHECK(names.size() == (dw ? 16u : what == "f32" ? 31u : 54u));
    for (const std::string& n : names) {
      CHECK((n.rfind("strata_rtc::depthwise", 0) == 0) == dw);
    }
  }
  // (the split itself; a look-up sent to the wrong library fails only in the GPU tests)
  CHECK(programs[1].second.size() + programs[3].second.size() ==
        kernels::detail::instantiations<__half>().size());
  CHECK(programs[2].second.size() + programs[4].second.size() ==
        kernels::detail::instantiations<__nv_bfloat16>().size());
  const unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  for (const auto& [what, names] : programs) {
    const std::string name = "kernels_" + what;
    const rtc::CompiledParts cold = rtc::compile_parts(kernels::kernel_source(), name, names, 90,
                                                       kernels::library_parts, threads, dir);
    CHECK_FALSE(cold.from_disk);
    REQUIRE(cold.parts.size() == static_cast<std::size_t>(kernels::library_parts));
    std::size_t total = 0;
    for (std::size_t p = 0; p < cold.parts.size(); ++p) {
      const rtc::Compiled& c = cold.parts[p];
      CHECK(c.cubin.size() > 1000);
      REQUIRE(c.lowered.size() == cold.names[p].size());
      for (std::size_t i = 0; i < c.lowered.size(); ++i) {
        CHECK(c.lowered[i].rfind("_Z", 0) == 0);  // a mangled C++ name
        // round robin: part p has names p, p + parts, ...
        CHECK(cold.names[p][i] == names[p + i * cold.parts.size()]);
      }
      total += c.lowered.size();
    }
    CHECK(total == names.size());
    const rtc::CompiledParts warm = rtc::compile_parts(kernels::kernel_source(), name, names, 90,
                                                       kernels::library_parts, threads, dir);
    CHECK(warm.from_disk);
    for (std::size_t p = 0; p < cold.parts.size(); ++p) {
      CHECK(warm.parts[p].cubin == cold.parts[p].cubin);
      CHECK(warm.parts[p].lowered == cold.parts[p].lowered);
    }
    MESSAGE(name << ": " << names.size() << " kernels in " << cold.parts.size() << " parts on "
                 << threads << " threads, compiled in " << cold.ms << " ms, read back in "
                 << warm.ms << " ms");
  }
  // A part that fails to compile fails the whole, with NVRTC's message and the part's name.
  const std::vector<std::string> bad_names{"strata_rtc::softmax_kernel<float, float>",
                                           "strata_rtc::no_such_kernel<float>"};
  try {
    (void)rtc::compile_parts(kernels::kernel_source(), "kernels_bad", bad_names, 90, 2, threads, {});
    FAIL("no error for a part that cannot compile");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("kernels_bad.1") != std::string::npos);  // the part, named
    CHECK(m.find("no_such_kernel") != std::string::npos);
  }
}

TEST_CASE("a generated conv's source compiles, with and without its pool, in f16 and bf16") {
  const auto dir = fresh_dir("strata_rtc_test_generated");
  const cuda::NetDesc net = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  const cuda::OpDesc& conv1 = net.ops.front();
  REQUIRE(conv1.pool.has_value());
  REQUIRE(cuda::tactics::generated::fits(conv1));
  CHECK_FALSE(cuda::tactics::generated::fits(net.ops[1]));  // 32 input channels
  for (const bool pooled : {true, false}) {
    const std::string src = cuda::tactics::generated::source(conv1, pooled);
    CHECK(src.find("constexpr int YH = " + std::to_string(pooled ? 14 : 28) + ";") !=
          std::string::npos);
    for (const char* t : {"strata_rtc::f16", "strata_rtc::bf16"}) {
      const std::vector<std::string> names{std::string("strata_rtc::generated_conv<") + t + ">"};
      const rtc::Compiled c = rtc::compile(src, "generated", names, 90, dir);
      CHECK(c.cubin.size() > 1000);
      const std::string what = std::string("generated conv") + (pooled ? "+pool " : " ") + t;
      MESSAGE(what << ": compiled in " << c.ms << " ms");
    }
  }
  // Reading the caller's input itself, in each input form; the pooled windows lie inside the
  // conv's map, so the input patch stays in registers (with the pool: 4x4 inputs per window).
  namespace g = cuda::tactics::generated;
  CHECK(g::patch(conv1, true).rows == 4);
  CHECK(g::patch(conv1, true).used(conv1.conv));
  CHECK(g::patch(conv1, false).rows == 3);
  for (const auto& [format, hwc] : {std::pair{cuda::InputFormat::f32, false},
                                    std::pair{cuda::InputFormat::f16, true},
                                    std::pair{cuda::InputFormat::u8_hwc, true}}) {
    const std::string src = g::source(conv1, true, {true, format, hwc});
    INFO(cuda::input_format_name(format));
    CHECK(src.find("constexpr bool RAW = true;") != std::string::npos);
    CHECK(src.find("constexpr bool PATCH = true;") != std::string::npos);
    const std::vector<std::string> names{"strata_rtc::generated_conv<strata_rtc::f16>"};
    CHECK(rtc::compile(src, "generated_raw", names, 90, dir).cubin.size() > 1000);
  }
}

TEST_CASE("a generated conv's warp stages the padded input rows its band of output rows reads") {
  // MNIST's conv0 (28x28, padding 1: 30 padded columns, 1 channel) under its 2x2 pool (14 rows).
  const cuda::NetDesc net = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  const cuda::OpDesc& conv = net.ops.front();
  namespace g = cuda::tactics::generated;
  CHECK(g::band_floats(conv, true, 1) == 30 * 30);   // the whole padded image
  CHECK(g::band_floats(conv, true, 2) == 16 * 30);   // 7 pooled rows: 14 conv rows + 2
  CHECK(g::band_floats(conv, true, 14) == 4 * 30);   // 1 pooled row: 2 conv rows + 2
  CHECK(g::band_floats(conv, false, 28) == 3 * 30);  // 1 conv row, no pool: 3 input rows
  // The variant as the tuning report and the cache print it.
  CHECK(cuda::to_string(cuda::Variant{"cudnn_conv", 1, 1, 1}) == "cudnn_conv algo 1 math 1 fuse 1");
  CHECK(cuda::to_string(cuda::Variant{"mma_conv", 0, 0, 1}) == "mma_conv fuse 1");
  CHECK(cuda::to_string(cuda::Variant{"lt_dense"}) == "lt_dense");
}

TEST_CASE("a generated conv's tensor-core form: where it fits, what it is told, and its source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_generated_mma");
  namespace g = cuda::tactics::generated;
  const cuda::NetDesc net = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  const cuda::OpDesc& conv0 = net.ops.front();
  // MNIST's first conv: 9 taps of 1 channel (one k-step, not 9 × 8 slots), 32 outputs (4
  // n-tiles), a 2x2 max pool (4 positions a pooled output) under a relu: pooled before the act.
  const g::MmaShape m = g::mma_shape(conv0, true);
  CHECK(m.window == 4);
  CHECK(m.reduction == 9);
  CHECK(m.ksteps == 1);
  CHECK(m.ntiles == 4);
  CHECK(g::mma_fits(conv0, true));
  CHECK(g::mma_fits(conv0, false));
  CHECK(g::pool_before_act(conv0, true));
  CHECK_FALSE(g::pool_before_act(conv0, false));
  CHECK(g::mma_image_elems(conv0) == 30 * 30 + 4);  // 900 rounded up to 16 bytes
  // Registers: 4 blocks an SM while fragments, accumulators and offsets take at most 32.
  CHECK(g::mma_min_blocks(m) == 4);
  CHECK(g::mma_min_blocks(g::MmaShape{4, 64, 4, 4}) == 2);
  // The heuristic takes it (pooling inside); measured tuning is offered both forms of each.
  const auto* t = cuda::find_tactic<DType::f16>("generated_conv");
  REQUIRE(t != nullptr);
  const auto claim = t->heuristic(conv0, 4096, 0, {});
  REQUIRE(claim.has_value());
  CHECK(claim->variant == cuda::Variant{"generated_conv", 1, 0, 1});
  const auto offered = t->candidates(conv0, 4096, 0, {});
  CHECK(offered == std::vector<cuda::Variant>{{"generated_conv", 1, 0, 1}, {"generated_conv", 0, 0, 1},
                                              {"generated_conv", 1, 0, 0}, {"generated_conv", 0, 0, 0}});
  for (const bool pooled : {true, false}) {
    for (const auto& [format, raw] : {std::pair{cuda::InputFormat::f32, false},
                                      std::pair{cuda::InputFormat::f32, true},
                                      std::pair{cuda::InputFormat::u8_hwc, true}}) {
      const std::string src = g::mma_source(conv0, pooled, {raw, format, raw});
      CHECK(src.find("constexpr bool ALL_VALID = true;") != std::string::npos);  // 196 % 4 == 0
      // Max pool then relu: the window's max and the relu on rounded pairs (not without the
      // pool); 4 blocks of 256 threads an SM (fragments, accumulators, offsets: 28 registers).
      CHECK(src.find(std::string("constexpr bool PACKED_MAX = ") + (pooled ? "true" : "false")) !=
            std::string::npos);
      CHECK(src.find("__launch_bounds__(256, 4)") != std::string::npos);
      CHECK(src.find(std::string("constexpr int QQ = ") + (pooled ? "4" : "1") + ";") !=
            std::string::npos);
      for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
        const std::vector<std::string> names{std::string("strata_rtc::generated_conv_mma<") + ty + ">"};
        const rtc::Compiled c = rtc::compile(src, "generated_mma", names, 90, dir);
        CHECK(c.cubin.size() > 1000);
      }
    }
  }
  // A 3x3 average pool (9 positions) has no tensor-core form with its pool; the conv alone does.
  constexpr auto avg = input<1, 17, 19> | conv<10, 3, ConvOpts{.padding = 2, .dilation = 2}>
      | elu<0.5f> | avg_pool<3, PoolOpts{.stride = 2, .padding = 1, .ceil_mode = true}>
      | flatten | dense<6>;
  using Avg = std::remove_cv_t<decltype(avg)>;
  const cuda::NetDesc avg_net = cuda::NetStorage<Avg, DType::f16>::describe();
  const cuda::OpDesc& first = avg_net.ops.front();
  CHECK_FALSE(g::mma_fits(first, true));
  CHECK(g::mma_fits(first, false));
  CHECK(t->heuristic(first, 8, 0, {})->variant == cuda::Variant{"generated_conv", 0, 0, 1});
  // A 2x2 ceil-mode max pool over an odd map and a gelu: windows cut by the map's edge (not
  // ALL_VALID), the act before the pool; 3 input channels of a 3x3 filter: 27 reductions in
  // 2 k-steps, 12 outputs in 2 n-tiles (slots 12..15 zero).
  constexpr auto rgb = input<3, 13, 11> | conv<12, 3, ConvOpts{.padding = 1}> | gelu
      | max_pool<2, PoolOpts{.ceil_mode = true}> | flatten | dense<4>;
  using Rgb = std::remove_cv_t<decltype(rgb)>;
  const cuda::NetDesc rgb_net = cuda::NetStorage<Rgb, DType::f16>::describe();
  const cuda::OpDesc& c3 = rgb_net.ops.front();
  REQUIRE(g::fits(c3));
  CHECK(g::mma_shape(c3, true).ksteps == 2);
  CHECK(g::mma_shape(c3, true).ntiles == 2);
  CHECK(g::mma_fits(c3, true));
  CHECK_FALSE(g::pool_before_act(c3, true));
  const std::string src = g::mma_source(c3, true, {true, cuda::InputFormat::f32, false});
  CHECK(src.find("constexpr bool ALL_VALID = false;") != std::string::npos);
  CHECK(src.find("constexpr bool POOL_FIRST = false;") != std::string::npos);  // gelu
  CHECK(src.find("constexpr bool PACKED_MAX = false;") != std::string::npos);
  const std::vector<std::string> names{"strata_rtc::generated_conv_mma<strata_rtc::f16>"};
  CHECK(rtc::compile(src, "generated_mma_rgb", names, 90, dir).cubin.size() > 1000);
}

TEST_CASE("a variant the generated and tensor-core convs do not have is refused by name, before any GPU work") {
  const cuda::NetDesc net = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  const cuda::OpWeights w;
  const cuda::OpIo io;
  for (const auto& [name, algo] : {std::pair{"generated_conv", 2}, std::pair{"mma_conv", 3},
                                   std::pair{"tile_conv", 10}}) {
    const auto* t = cuda::find_tactic<DType::f16>(name);
    REQUIRE(t != nullptr);
    INFO(name);
    try {
      (void)t->prepare(net.ops.front(), cuda::Variant{name, algo, 0, 1}, 1, w, io, {});
      FAIL("an algo past the last was accepted");
    } catch (const strata::Error& e) {
      CHECK(std::string(e.what()).find("conv0+bn1+relu2+max_pool3") != std::string::npos);
      CHECK(std::string(e.what()).find("no algo " + std::to_string(algo)) != std::string::npos);
    }
  }
  // mma_conv's wgmma form off a GPU of compute capability 9.0 (here: none at all).
  if (!cuda::tactics::mma::wgmma_device()) {
    const auto* t = cuda::find_tactic<DType::f16>("mma_conv");
    try {
      (void)t->prepare(net.ops[1], cuda::Variant{"mma_conv", 2, 0, 1}, 1, w, io, {});
      FAIL("the wgmma form was accepted without a GPU that runs it");
    } catch (const strata::Error& e) {
      CHECK(std::string(e.what()).find("conv4+bn5+relu6+max_pool7") != std::string::npos);
      CHECK(std::string(e.what()).find("compute capability 9.0") != std::string::npos);
    }
    const auto* tc = cuda::find_tactic<DType::f16>("tile_conv");
    for (const int algo : {3, 4, 5, 6, 7}) {
      INFO("tile_conv algo " << algo);
      try {
        (void)tc->prepare(net.ops.front(), cuda::Variant{"tile_conv", algo, 0, 1}, 1, w, io, {});
        FAIL("tile_conv's wgmma form was accepted without a GPU that runs it");
      } catch (const strata::Error& e) {
        CHECK(std::string(e.what()).find("conv0+bn1+relu2+max_pool3") != std::string::npos);
        CHECK(std::string(e.what()).find("compute capability 9.0") != std::string::npos);
      }
    }
  }
}

TEST_CASE("a generated conv keeps its input patch in registers only where every pooling window lies inside the conv's map") {
  // Padded pool windows and ceil mode (partial windows): the per-tap path with clamped positions.
  constexpr auto padded = input<1, 17, 19> | conv<10, 3, ConvOpts{.padding = 2, .dilation = 2}>
      | elu<0.5f> | avg_pool<3, PoolOpts{.stride = 2, .padding = 1, .ceil_mode = true}>
      | flatten | dense<6>;
  using Padded = std::remove_cv_t<decltype(padded)>;
  const cuda::NetDesc net = cuda::NetStorage<Padded, DType::f16>::describe();
  const cuda::OpDesc& conv = net.ops.front();
  REQUIRE(conv.pool.has_value());
  namespace g = cuda::tactics::generated;
  CHECK_FALSE(g::patch(conv, true).used(conv.conv));
  CHECK(g::source(conv, true).find("constexpr bool PATCH = false;") != std::string::npos);
  // Without the pool, one conv position per thread: a 5x5 patch (3 taps, dilation 2).
  CHECK(g::patch(conv, false).rows == 5);
  CHECK(g::patch(conv, false).cols == 5);
}

TEST_CASE("a changed program misses the cache; a damaged cache file is compiled again") {
  const auto dir = fresh_dir("strata_rtc_test_cache2");
  const std::vector<std::string> names{"k<float>"};
  const std::string a = "template <class T> __global__ void k(T* p) { *p = T(1); }";
  const std::string b = "template <class T> __global__ void k(T* p) { *p = T(2); }";
  const rtc::Compiled first = rtc::compile(a, "tiny", names, 90, dir);
  const rtc::Compiled other = rtc::compile(b, "tiny", names, 90, dir);
  CHECK_FALSE(other.from_disk);
  CHECK(other.file != first.file);
  CHECK(other.cubin != first.cubin);
  // Truncate the first program's file: the next compile must not trust it.
  std::filesystem::resize_file(first.file, 20);
  const rtc::Compiled again = rtc::compile(a, "tiny", names, 90, dir);
  CHECK_FALSE(again.from_disk);
  CHECK(again.cubin == first.cubin);
  CHECK(rtc::compile(a, "tiny", names, 90, dir).from_disk);  // and the file is whole again
  CHECK(rtc::compile(a, "tiny", names, 80, dir).file != first.file);  // another architecture
}

TEST_CASE("a compile error names the program and carries NVRTC's log") {
  const std::string bad = "__global__ void k(float* p) { *p = undeclared_thing; }";
  try {
    (void)rtc::compile(bad, "broken_program", {}, 90, {});
    FAIL("no error for a broken program");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("broken_program") != std::string::npos);
    CHECK(m.find("undeclared_thing") != std::string::npos);
  }
}

TEST_CASE("global average pooling splits an image's pixels over blocks only where the batch is small") {
  // One image, 32 channels, 112x112 (an EfficientNet-B0 gate at batch 1), 132 SMs: 196 blocks of
  // 64 pixels, no more than the pixels allow, no fewer than the ~2 blocks an SM it aims at.
  CHECK(kernels::global_pool_splits(1, 32, 112 * 112, 132) == 196);
  CHECK(kernels::global_pool_splits(1, 32, 56 * 56, 132) == 49);      // capped at hw / 64
  CHECK(kernels::global_pool_splits(1, 1152, 7 * 7, 132) == 1);       // 49 pixels: no split
  CHECK(kernels::global_pool_splits(256, 96, 56 * 56, 132) == 1);     // 768 units fill the GPU
  CHECK(kernels::global_pool_splits(2, 64, 28 * 28, 132) == 12);      // 4 units: 264 / 4 → 66, capped at 12
  for (int n : {1, 3, 17, 64}) {
    for (int c : {8, 40, 1152}) {
      for (int hw : {1, 49, 196, 3136, 12544}) {
        const int s = kernels::global_pool_splits(n, c, hw, 132);
        CHECK(s >= 1);
        CHECK((s == 1 || s <= hw / 64));
      }
    }
  }
}

TEST_CASE("cudnn_conv_transpose: the transposed convs whose output the forward conv maps back onto their input; claimed above the direct kernel") {
  // Hand-worked sizes. First: 5x6 in, stride 2, padding 1, output_padding 1, dilation 2, k 3:
  // out (5-1)*2 - 2 + 2*2 + 1 + 1 = 12 (w: 14); the forward conv of 12 rows gives
  // (12 + 2 - 4 - 1) / 2 + 1 = 5 (w: (14 + 2 - 4 - 1) / 2 + 1 = 6): applies. Second: kernel
  // (2, 3), stride (2, 1): 12x14 -> 24x16, forward (24 - 1 - 1) / 2 + 1 = 12, (16 - 2 - 1) + 1 =
  // 14: applies. Third: stride 1, padding 1, output_padding 1 (below the dilation 2, not below
  // the stride): 24x16 -> 27x19, forward 27 + 2 - 4 - 1 + 1 = 25, not 24: cuDNN cannot describe
  // it, conv_transpose_direct keeps it. In NHWC (16-bit) the first does not apply either: two
  // groups of 2 input channels in 8 slots (cuDNN has no NHWC algorithm with channels short of
  // their stride, and padding the slots as channels works for one group only); the second (6 -> 5
  // channels, one group) runs with its slots as channels, the filter padded (8 x 2 x 3 x 8).
  constexpr auto net = input<4, 5, 6>
      | conv_transpose<6, 3, ConvTransposeOpts{.stride = 2, .padding = 1, .output_padding = 1,
                                               .dilation = 2, .groups = 2}>
      | conv_transpose<5, HW{2, 3}, ConvTransposeOpts{.stride = HW{2, 1}, .bias = false}>
      | conv_transpose<3, 3, ConvTransposeOpts{.padding = 1, .output_padding = 1, .dilation = 2}>;
  using Net = std::remove_cv_t<decltype(net)>;
  const auto check = [](const cuda::NetDesc& d, const auto* t, const auto* direct,
                        const std::vector<bool>& expected) {
    REQUIRE(t != nullptr);
    REQUIRE(direct != nullptr);
    std::vector<bool> applies;
    std::vector<std::pair<int, int>> out;
    for (const cuda::OpDesc& op : d.ops) {
      if (op.kind != strata::OpKind::conv_transpose) {
        continue;
      }
      applies.push_back(t->applicable(op));
      CHECK((!applies.back() || cuda::tactics::conv_transpose_inverts(op)));
      out.emplace_back(op.out_shape.h, op.out_shape.w);
      // Claimed by the heuristic (cuDNN's own first choice) above the direct kernel, which
      // claims every transposed conv (the planner asks only the tactics that apply).
      const auto c = t->heuristic(op, 8, std::size_t{1} << 30, {});
      const auto dc = direct->heuristic(op, 8, std::size_t{1} << 30, {});
      REQUIRE(c.has_value());
      REQUIRE(dc.has_value());
      CHECK(c->variant == cuda::Variant{"cudnn_conv_transpose", 0, 0, 0});
      CHECK(c->rank < dc->rank);
    }
    CHECK(applies == expected);
    CHECK(out == std::vector<std::pair<int, int>>{{12, 14}, {24, 16}, {27, 19}});
  };
  cuda::NetDesc f16 = cuda::NetStorage<Net, DType::f16>::describe();
  cuda::fold_for_per_op_path(f16);
  check(f16, cuda::find_tactic<DType::f16>("cudnn_conv_transpose"),
        cuda::find_tactic<DType::f16>("conv_transpose_direct"), {false, true, false});
  cuda::NetDesc tf32 = cuda::NetStorage<Net, DType::tf32>::describe();
  cuda::fold_for_per_op_path(tf32);
  check(tf32, cuda::find_tactic<DType::tf32>("cudnn_conv_transpose"),
        cuda::find_tactic<DType::tf32>("conv_transpose_direct"), {false, true, false});
  cuda::NetDesc f32 = cuda::NetStorage<Net, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  check(f32, cuda::find_tactic<DType::f32>("cudnn_conv_transpose"),
        cuda::find_tactic<DType::f32>("conv_transpose_direct"), {true, true, false});
  CHECK(cuda::find_tactic<DType::bf16>("cudnn_conv_transpose") != nullptr);
  // The first conv_transpose with channels that fill their slots (16 -> 8, two groups) applies in
  // NHWC too.
  constexpr auto full = input<16, 5, 6> | conv_transpose<8, 3, ConvTransposeOpts{.stride = 2, .groups = 2}>;
  cuda::NetDesc fd = cuda::NetStorage<std::remove_cv_t<decltype(full)>, DType::f16>::describe();
  cuda::fold_for_per_op_path(fd);
  CHECK(cuda::find_tactic<DType::f16>("cudnn_conv_transpose")->applicable(fd.ops.at(0)));
  // A variant names cuDNN's algorithm plus one (0: cuDNN's own first choice at prepare).
  const auto v = cuda::parse_variant("cudnn_conv_transpose algo 2 math 1");
  REQUIRE(v.has_value());
  CHECK(*v == cuda::Variant{"cudnn_conv_transpose", 2, 1, 0});
}

TEST_CASE("a strided 1x1 conv on cuBLASLt: read in place (a matmul a row) where its input rows are its stride apart") {
  constexpr auto down = input<64, 56, 56> | conv<128, 1, ConvOpts{.stride = 2}> | batch_norm
      | conv<8, 1, ConvOpts{.stride = 2}> | conv<8, 1> | flatten | dense<3>;
  // 56 -> 28 (56 = 2 x 28: in place), 28 -> 14 (likewise), then a 1x1 of stride 1 (no scratch,
  // nothing strided); 7 -> 4 below (7 != 2 x 4: subsampled only).
  const cuda::NetDesc net = cuda::NetStorage<std::remove_cv_t<decltype(down)>, DType::f16>::describe();
  const auto* t = cuda::find_tactic<DType::f16>("lt_conv1x1");
  REQUIRE(t != nullptr);
  const std::size_t ws = std::size_t{1} << 30;
  for (int i : {0, 1}) {
    REQUIRE(t->applicable(net.ops[i]));
    const auto v = t->candidates(net.ops[i], 256, ws, {});
    CHECK(std::count(v.begin(), v.end(), cuda::Variant{"lt_conv1x1", 1}) == 1);
    CHECK(std::count(v.begin(), v.end(), cuda::Variant{"lt_conv1x1"}) == 1);
  }
  // The heuristic: in place at batch 1 only (measured faster there), subsampled above; never
  // where the rows are not the stride apart.
  CHECK(t->heuristic(net.ops[0], 1, ws, {})->variant == cuda::Variant{"lt_conv1x1", 1});
  CHECK(t->heuristic(net.ops[0], 2, ws, {})->variant == cuda::Variant{"lt_conv1x1"});
  // ... and in place at any batch where the subsampled input would not fit the workspace left
  // (a batch planned after the engine's workspace was sized).
  CHECK(t->heuristic(net.ops[0], 256, cuda::tactics::lt_workspace, {})->variant == cuda::Variant{"lt_conv1x1", 1});
  CHECK(t->heuristic(net.ops[2], 1, ws, {})->variant == cuda::Variant{"lt_conv1x1"});
  // Measured tuning times the first lt_algos of cuBLASLt's heuristic's algorithms (math 0, 1, ...)
  // for the single matmul; the heuristic takes the first.
  using Lt = cuda::tactics::LtConv1x1<DType::f16>;
  std::vector<cuda::Variant> lt_list;
  for (int m = 0; m < Lt::lt_algos; ++m) {
    lt_list.push_back(cuda::Variant{"lt_conv1x1", 0, m});
  }
  CHECK(Lt::lt_algos >= 2);
  const auto plain = t->candidates(net.ops[2], 256, ws, {});
  CHECK(plain == lt_list);
  // The cuDNN graph tactic claims a strided 1x1 conv only with a handle to ask cuDNN's list
  // (GPU-tested in "cuDNN graph convs", with the batch threshold).
  const auto* g = cuda::find_tactic<DType::f16>("cudnn_graph");
  CHECK(g->applicable(net.ops[0]));
  CHECK(!g->heuristic(net.ops[0], 256, ws, {}).has_value());
  CHECK(cuda::tactics::CudnnGraphConv<DType::f16>::strided_1x1(net.ops[0]));
  CHECK(!cuda::tactics::CudnnGraphConv<DType::f16>::strided_1x1(net.ops[2]));
  constexpr auto odd = input<64, 7, 7> | conv<16, 1, ConvOpts{.stride = 2}> | flatten | dense<3>;
  const cuda::NetDesc odd_net = cuda::NetStorage<std::remove_cv_t<decltype(odd)>, DType::f16>::describe();
  const auto ov = t->candidates(odd_net.ops[0], 256, ws, {});
  CHECK(ov == lt_list);
  CHECK(t->heuristic(odd_net.ops[0], 1, ws, {})->variant == cuda::Variant{"lt_conv1x1"});
  // Forced where it cannot run: an error naming the layer, before any GPU work.
  try {
    (void)t->prepare(odd_net.ops[0], cuda::Variant{"lt_conv1x1", 1}, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
    FAIL("lt_conv1x1 algo 1 was accepted on a conv whose input rows are not its stride apart");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find(odd_net.ops[0].label) != std::string::npos);
    CHECK(std::string(e.what()).find("in place") != std::string::npos);
  }
  // A cuBLASLt algorithm past those timed, or one with the in-place form, is refused by name.
  for (const cuda::Variant& bad : {cuda::Variant{"lt_conv1x1", 0, Lt::lt_algos}, cuda::Variant{"lt_conv1x1", 1, 1}}) {
    try {
      (void)t->prepare(net.ops[0], bad, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
      FAIL("lt_conv1x1 accepted " << std::string(cuda::to_string(bad)));
    } catch (const strata::Error& e) {
      CHECK(std::string(e.what()).find("no math") != std::string::npos);
      CHECK(std::string(e.what()).find(net.ops[0].label) != std::string::npos);
    }
  }
}

TEST_CASE("cuBLASLt is told each operand's alignment as the matmul step passes it (lt_alignments), hand-worked") {
  namespace t = cuda::tactics;
  const auto at = [](std::uintptr_t a) { return reinterpret_cast<const void*>(a); };
  // One matmul: weights 256-aligned, the input at 16 bytes past, the result at 64 (its C the same).
  const t::LtAlignments one = t::lt_alignments(2, at(0x10000), at(0x10010), nullptr, at(0x10040), false, false, {}, 40, 24, 7);
  CHECK(one.a == 256);
  CHECK(one.b == 16);
  CHECK(one.c == 64);
  CHECK(one.d == 64);
  // A residual (C) at 8; the input gathered into the scratch (256); every operand 256: the default.
  const t::LtAlignments res = t::lt_alignments(2, at(0x10000), at(0x10010), at(0x10008), at(0x10100), true, false, {}, 40, 24, 7);
  CHECK(res.b == 256);
  CHECK(res.c == 8);
  CHECK(res.d == 256);
  const t::LtAlignments all = t::lt_alignments(4, at(0x20000), at(0x20100), nullptr, at(0x20200), false, false, {}, 8, 8, 8);
  CHECK((all.a == 256 && all.b == 256 && all.c == 256 && all.d == 256));
  // A matmul a row: the rows' inputs 24 elements of f16 apart (48 bytes: 16), results 64 (128).
  const t::StridedColumns rows{.count = 7, .ld = 16, .stride_b = 24, .stride_d = 64};
  const t::LtAlignments str = t::lt_alignments(2, at(0x10000), at(0x10000), nullptr, at(0x10000), false, false, rows, 8, 8, 7);
  CHECK(str.b == 16);
  CHECK(str.c == 128);
  CHECK(str.d == 128);
  // Batched over images (the gate): A 40 x 24 f16 apart (1,920 bytes: 128), B 49 x 40 (3,920: 16),
  // D 49 x 24 (2,352: 16); the scaled weights in the scratch.
  const t::LtAlignments g = t::lt_alignments(2, at(0x10008), at(0x10000), nullptr, at(0x10000), false, true, {}, 40, 24, 49);
  CHECK(g.a == 128);
  CHECK(g.b == 16);
  CHECK(g.c == 16);
  CHECK(g.d == 16);
}

TEST_CASE("a channel gate folded into a 1x1 conv on cuBLASLt (algo 2): the weights scaled per image where they are smaller than the product") {
  // EfficientNet-B0-like projections: 96 -> 24 channels of a 56x56 map (24 output slots under
  // 3,136 pixels: algo 2 claimed), 672 -> 192 of a 7x7 map (192 over 49: offered, not claimed);
  // 20 channels in 24 slots; a plain 1x1 conv (no gate: no algo 2).
  using Gated = decltype(input<16, 56, 56> | conv<96, 1> | silu |
                         multiply(global_avg_pool | conv<4, 1> | silu | conv<96, 1> | sigmoid) |
                         conv<24, 1> | batch_norm | conv<672, 3, ConvOpts{.stride = 8, .padding = 1}> |
                         multiply(global_avg_pool | conv<28, 1> | silu | conv<672, 1> | sigmoid) |
                         conv<192, 1> | conv<20, 1> |
                         multiply(global_avg_pool | conv<4, 1> | silu | conv<20, 1> | sigmoid) |
                         conv<8, 1> | flatten | dense<3>);
  cuda::NetDesc net = cuda::NetStorage<Gated, DType::f16>::describe();
  cuda::fold_for_per_op_path(net);
  std::vector<cuda::OpDesc> gated;
  const cuda::OpDesc* plain = nullptr;
  for (const cuda::OpDesc& op : net.ops) {
    if (op.gate) {
      gated.push_back(op);
    } else if (op.kind == OpKind::conv && op.conv.kh == 1 && op.conv.k == 20) {
      plain = &op;
    }
  }
  REQUIRE(gated.size() == 3);
  REQUIRE(plain != nullptr);
  const auto* t = cuda::find_tactic<DType::f16>("lt_conv1x1");
  const std::size_t ws = std::size_t{1} << 30;
  const cuda::Variant folds{"lt_conv1x1", 2};
  for (const cuda::OpDesc& op : gated) {
    INFO(op.label);
    REQUIRE(t->applicable(op));
    const auto v = t->candidates(op, 256, ws, {});
    CHECK(std::count(v.begin(), v.end(), folds) == 1);
    CHECK(std::count(v.begin(), v.end(), cuda::Variant{"lt_conv1x1"}) == 1);
    // (the scaled weights in the workspace: 256 images of kp x cp, and cuBLASLt's own)
    const std::size_t scaled = std::size_t{256} * op.conv.kp * op.conv.cp * 2;
    const auto tight = t->candidates(op, 256, scaled + (std::size_t{4} << 20) - 1, {});
    CHECK(std::count(tight.begin(), tight.end(), folds) == 0);
    CHECK(t->fuses_gate(folds));
    CHECK_FALSE(t->fuses_gate(cuda::Variant{"lt_conv1x1"}));
  }
  CHECK(t->heuristic(gated[0], 256, ws, {})->variant == folds);   // 24 slots, 3,136 pixels
  // (not where the scaled weights would not fit the workspace)
  const std::size_t scaled0 = std::size_t{256} * 24 * 96 * 2 + (std::size_t{4} << 20);
  CHECK(t->heuristic(gated[0], 256, scaled0, {})->variant == folds);
  CHECK(t->heuristic(gated[0], 256, scaled0 - 1, {})->variant == cuda::Variant{"lt_conv1x1"});
  CHECK(t->heuristic(gated[0], 1, ws, {})->variant == folds);
  CHECK(t->heuristic(gated[1], 256, ws, {})->variant == cuda::Variant{"lt_conv1x1"});  // 192 > 49
  CHECK(t->heuristic(gated[2], 256, ws, {})->variant == folds);   // 8 slots, 49 pixels
  CHECK(gated[2].conv.cp == 24);
  const auto pv = t->candidates(*plain, 256, ws, {});
  CHECK(std::count(pv.begin(), pv.end(), folds) == 0);
  // Forced on a conv without a gate, or in f32: an error naming the layer, before any GPU work.
  try {
    (void)t->prepare(*plain, folds, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
    FAIL("lt_conv1x1 algo 2 was accepted on a conv without a folded gate");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find(plain->label) != std::string::npos);
    CHECK(std::string(e.what()).find("gate") != std::string::npos);
  }
  // The stand-alone ops a tactic that does not fold the gate prepares: the conv alone.
  const auto* direct = cuda::find_tactic<DType::f16>("direct_conv");
  CHECK(cuda::op_as_prepared(*direct, gated[0], cuda::Variant{"direct_conv"}).label ==
        cuda::gate_conv(gated[0]).label);
  CHECK(cuda::op_as_prepared(*t, gated[0], folds).label == gated[0].label);
  // EngineOptions::force naming the conv or the multiply as declared: an error that names the
  // joined op.
  for (const std::string& old : {cuda::gate_conv(gated[0]).label, gated[0].gate->label}) {
    try {
      (void)cuda::forced_variants<DType::f16>(net, {{old, cuda::Variant{"lt_conv1x1"}}});
      FAIL("forced a folded layer by its own label");
    } catch (const strata::Error& e) {
      CHECK(std::string(e.what()).find("'" + gated[0].label + "' (fold_gated_convs)") != std::string::npos);
    }
  }
  const auto f = cuda::forced_variants<DType::f16>(net, {{gated[0].label, folds}});
  const auto at = std::find_if(net.ops.begin(), net.ops.end(), [&](const cuda::OpDesc& o) {
    return o.label == gated[0].label;
  });
  REQUIRE(at != net.ops.end());
  CHECK(f[static_cast<std::size_t>(at - net.ops.begin())] == folds);
}

TEST_CASE("convs as im2col + one cuBLASLt GEMM (lt_im2col): offered for small maps only, timed only") {
  // ResNet's layer4 conv (7x7 map, 512 channels), a 1x1 (lt_conv1x1's), a grouped 3x3.
  constexpr auto net_v = input<512, 7, 7> | conv<512, 3, ConvOpts{.padding = 1}> | relu
      | conv<64, 1> | conv<64, 3, ConvOpts{.padding = 1, .groups = 2}> | flatten | dense<3>;
  using N = std::remove_cv_t<decltype(net_v)>;
  const cuda::NetDesc net = cuda::NetStorage<N, DType::f16>::describe();
  const auto* t = cuda::find_tactic<DType::f16>("lt_im2col");
  REQUIRE(t != nullptr);
  const std::size_t ws = std::size_t{1} << 30;
  REQUIRE(t->applicable(net.ops[0]));
  CHECK(!t->applicable(net.ops[1]));  // a 1x1: lt_conv1x1
  CHECK(!t->applicable(net.ops[2]));  // two groups
  CHECK(!cuda::find_tactic<DType::f32>("lt_im2col")->applicable(
      cuda::NetStorage<N, DType::f32>::describe().ops[0]));
  // 49 pixels an image: offered up to 4096 pixels (batch 83), cuBLASLt's first four algorithms.
  const auto at1 = t->candidates(net.ops[0], 1, ws, {});
  CHECK(at1.size() == 4);
  CHECK(at1.front() == cuda::Variant{"lt_im2col"});
  CHECK(at1.back() == cuda::Variant{"lt_im2col", 3});
  CHECK(t->candidates(net.ops[0], 83, ws, {}).size() == 4);
  CHECK(t->candidates(net.ops[0], 84, ws, {}).empty());
  // the im2col matrix must fit the workspace limit: 49 x 4608 halves at batch 1 + cuBLASLt's 4 MiB
  CHECK(t->candidates(net.ops[0], 1, (std::size_t{4} << 20) + 49 * 4608 * 2, {}).size() == 4);
  CHECK(t->candidates(net.ops[0], 1, (std::size_t{4} << 20) + 49 * 4608 * 2 - 1, {}).empty());
  CHECK(!t->heuristic(net.ops[0], 1, ws, {}).has_value());
  try {
    (void)t->prepare(net.ops[0], cuda::Variant{"lt_im2col", 4}, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
    FAIL("lt_im2col algo 4 was accepted");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find(net.ops[0].label) != std::string::npos);
    CHECK(std::string(e.what()).find("no algo 4") != std::string::npos);
  }
}

TEST_CASE("split-K convs (splitk_conv): the split, and the source compiles in f16 and bf16") {
  const auto dir = fresh_dir("strata_rtc_test_splitk");
  // ResNet's layer4 and layer3 3x3 convs, a 5x3 with stride 2 and dilation, a 1x1 with a gelu.
  constexpr auto net_v = input<512, 7, 7> | conv<512, 3, ConvOpts{.padding = 1}> | relu
      | conv<256, 3, ConvOpts{.padding = 1}> | conv<24, HW{5, 3}, ConvOpts{.stride = 2, .padding = 2, .dilation = 2}>
      | conv<16, 1> | gelu | flatten | dense<3>;
  using N = std::remove_cv_t<decltype(net_v)>;
  const cuda::NetDesc net = cuda::NetStorage<N, DType::f16>::describe();
  const auto* t = cuda::find_tactic<DType::f16>("splitk_conv");
  REQUIRE(t != nullptr);
  for (int i = 0; i < 4; ++i) {
    CHECK(t->applicable(net.ops[static_cast<std::size_t>(i)]));
    // Claims and candidates are clusters, where a device has them (none without one).
    if (cuda::device_arch() < 90) {
      CHECK(!t->heuristic(net.ops[static_cast<std::size_t>(i)], 1, std::size_t{1} << 30, {}).has_value());
      CHECK(t->candidates(net.ops[static_cast<std::size_t>(i)], 1, std::size_t{1} << 30, {}).empty());
    }
  }
  // Clusters: layer4 (8 tiles, 144 k-steps) at batch 1 on 132 SMs is offered 2 to 16 slices;
  // at batch 256 (196 x 8 tiles) none; the 1x1 over 24 channels (one k-step) none.
  namespace sk = cuda::tactics::splitk;
  for (const int cs : sk::cluster_sizes) {
    INFO("cluster " << cs);
    CHECK(sk::offers_cluster(net.ops[0], 1, 132, cs));
    CHECK(!sk::offers_cluster(net.ops[0], 256, 132, cs));
    CHECK(!sk::offers_cluster(net.ops[3], 1, 132, cs));
    const auto c = sk::cluster_split(net.ops[0], 1, cs);
    CHECK(c.splits == cs);
    CHECK(c.chunk * cs >= 144);
    CHECK(c.chunk * (cs - 1) < 144);
    CHECK(c.blocks() == 8LL * cs);
  }
  // The 512->256 conv: 4 tiles at batch 1 (16 slices: 64 blocks); 14 x 4 = 56 at batch 17
  // (4 slices make 224 blocks, under 2 an SM; 8 would make 448); 17 x 4 = 68 at batch 22, more
  // than half the SMs already: none.
  CHECK(sk::offers_cluster(net.ops[1], 1, 132, 16));
  CHECK(sk::offers_cluster(net.ops[1], 17, 132, 4));
  CHECK(!sk::offers_cluster(net.ops[1], 17, 132, 8));
  CHECK(!sk::offers_cluster(net.ops[1], 22, 132, 2));
  // The heuristic's size: layer4's 3x3 (8 tiles, 144 k-steps) 16 at batch 1 on 132 SMs, 8 on
  // 114 (16 x 8 = 128 blocks would be over one an SM); none at batch 3 (24 tiles, over an eighth
  // of the SMs), none for the 1x1; the 5x3 (one tile, 120 k-steps) 16, 8 on 8 SMs, none on 7.
  CHECK(sk::claimed_cluster(net.ops[0], 1, 132) == 16);
  CHECK(sk::claimed_cluster(net.ops[2], 1, 132) == 16);
  CHECK(sk::claimed_cluster(net.ops[2], 1, 8) == 8);
  CHECK(sk::claimed_cluster(net.ops[2], 1, 7) == 0);
  CHECK(sk::claimed_cluster(net.ops[0], 1, 114) == 8);
  CHECK(sk::claimed_cluster(net.ops[0], 3, 132) == 0);
  CHECK(sk::claimed_cluster(net.ops[3], 1, 132) == 0);
  CHECK(!cuda::find_tactic<DType::f32>("splitk_conv")->applicable(cuda::NetStorage<N, DType::f32>::describe().ops[0]));
  // layer4 at batch 1 on 132 SMs: 1 x 8 tiles, 144 k-steps of 32 -> about 2 blocks an SM.
  const auto s1 = cuda::tactics::splitk::split(net.ops[0], 1, 132);
  CHECK(s1.m_tiles == 1);
  CHECK(s1.n_tiles == 8);
  CHECK(s1.k_steps == 144);
  CHECK(s1.chunk == 5);
  CHECK(s1.splits == 29);
  CHECK(s1.blocks() == 232);
  CHECK(cuda::tactics::splitk::partial_bytes(net.ops[0], 1, s1) == std::size_t{29} * 49 * 512 * 4);
  // Every k-step in exactly one slice, each slice at least 2 of them, at many batches.
  for (int b : {1, 3, 17, 64, 256}) {
    const auto s = cuda::tactics::splitk::split(net.ops[1], b, 132);
    INFO("batch " << b);
    CHECK(s.splits >= 1);
    CHECK(s.chunk >= 2);
    CHECK((s.splits - 1) * s.chunk < s.k_steps);
    CHECK(s.splits * s.chunk >= s.k_steps);
  }
  // Enough tiles already: one slice, and no partial sums.
  const auto big = cuda::tactics::splitk::split(net.ops[1], 256, 132);
  CHECK(big.splits == 1);
  CHECK(cuda::tactics::splitk::partial_bytes(net.ops[1], 256, big) == 0);
  for (int i = 0; i < 4; ++i) {
    const cuda::OpDesc& op = net.ops[static_cast<std::size_t>(i)];
    INFO(op.label);
    const std::string src = cuda::tactics::splitk::source(op);
    CHECK(src.find("constexpr int KP = " + std::to_string(op.conv.kp) + ";") != std::string::npos);
    // (not clustered: no attribute in the generated part; the library's text before it defines
    // STRATA_CLUSTER_DIMS for its own clustered kernels)
    CHECK(src.substr(cuda::kernels::kernel_source().size()).find("__cluster_dims__") == std::string::npos);
    CHECK(src.substr(cuda::kernels::kernel_source().size()).find("STRATA_CLUSTER_DIMS") == std::string::npos);
    for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
      const std::vector<std::string> names{std::string("strata_rtc::splitk_conv<") + ty + ">"};
      CHECK(rtc::compile(src, "splitk", names, 90, dir).cubin.size() > 1000);
    }
    // Clustered: portable and non-portable sizes compile for sm_90, and not for sm_80.
    for (const int cs : {4, 16}) {
      const std::string csrc = cuda::tactics::splitk::source(op, cs);
      CHECK(csrc.find("__cluster_dims__(" + std::to_string(cs) + ", 1, 1)") != std::string::npos);
      const std::vector<std::string> names{"strata_rtc::splitk_conv<strata_rtc::f16>"};
      CHECK(rtc::compile(csrc, "splitk_cluster", names, 90, dir).cubin.size() > 1000);
      if (i == 0) {
        CHECK_THROWS(rtc::compile(csrc, "splitk_cluster80", names, 80, dir));
        // 8 staged k-steps in dynamic shared memory (math 1)
        const std::string deep = cuda::tactics::splitk::source(op, cs, cuda::tactics::splitk::deep_stages);
        CHECK(deep.find("extern __shared__") != std::string::npos);
        CHECK(rtc::compile(deep, "splitk_deep", names, 90, dir).cubin.size() > 1000);
      }
    }
  }
  // Fuse 3 (a folded batch norm applied as the input is staged): DenseNet-121's layers' norm1 +
  // relu1 + conv1 on the per-op path, reading the block's concatenation in place — not the
  // transitions (a pool) nor convs without a batch norm.
  {
    cuda::NetDesc d = cuda::NetStorage<models::DenseNet121, DType::f16>::describe();
    cuda::fold_for_per_op_path(d);
    std::vector<const cuda::OpDesc*> normed;
    for (const cuda::OpDesc& op : d.ops) {
      const bool layer = op.norm != nullptr && !op.pool && op.kind == OpKind::conv;
      CHECK(sk::fuses_norm(op) == layer);
      if (layer) {
        normed.push_back(&op);
      }
    }
    REQUIRE(normed.size() == 58);
    // block 1's first layer (64 slots of a 256-slot concatenation, 56x56) and block 4's last
    // (992 of 1,024, 7x7): the strides are the concatenation's
    const cuda::OpDesc& first = *normed.front();
    const cuda::OpDesc& last = *normed.back();
    CHECK(first.conv.cp == 64);
    CHECK(cuda::tactics::normed::source_of(*first.norm).pixel == 256);
    CHECK(last.conv.cp == 992);
    CHECK(cuda::tactics::normed::source_of(*last.norm).image == 7 * 7 * 1024);
    for (const cuda::OpDesc* op : {&first, &last}) {
      INFO(op->label);
      const std::string src = sk::source(*op, 16, sk::default_stages, false, false, true);
      CHECK(src.find("constexpr long long XPIX = " + std::to_string(cuda::tactics::normed::source_of(*op->norm).pixel)) !=
            std::string::npos);
      for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
        const std::vector<std::string> names{std::string("strata_rtc::splitk_conv<") + ty + ">"};
        CHECK(rtc::compile(src, "splitk_normed", names, 90, dir).cubin.size() > 1000);
      }
      const std::vector<std::string> names{"strata_rtc::splitk_conv<strata_rtc::f16>"};
      CHECK(rtc::compile(sk::source(*op, 0, sk::default_stages, false, false, true), "splitk_normed_ws", names,
                         90, dir).cubin.size() > 1000);
      CHECK(rtc::compile(sk::source(*op, 8, sk::deep_stages, false, false, true), "splitk_normed_deep", names,
                         90, dir).cubin.size() > 1000);
    }
    // Each layer's 3x3 conv writes its 32 channels of the concatenation itself (slice_fits): the
    // slice's strides compiled in. Not the transitions: their slice is the pooled result's, and
    // the kernel writes the unpooled map that Strata's pool step then reads (split-K runs them,
    // with the copy into the slice after the pool).
    std::size_t slices = 0;
    std::size_t pooled = 0;
    for (const cuda::OpDesc& op : d.ops) {
      if (op.slice && op.kind == OpKind::conv && op.conv.kh == 3) {
        ++slices;
        CHECK(sk::slice_fits(op));
        CHECK(t->writes_slice(op));
      }
      if (op.slice && op.pool && t->applicable(op)) {
        INFO(op.label);
        ++pooled;
        CHECK(!sk::slice_fits(op));
        CHECK(!t->writes_slice(op));
        CHECK(sk::source(op, 4).find("YPIX") == std::string::npos);
      }
    }
    CHECK(slices == 58);
    CHECK(pooled == 3);
    const auto conv2 = std::find_if(d.ops.begin(), d.ops.end(), [](const cuda::OpDesc& op) {
      return op.slice && op.kind == OpKind::conv && op.conv.kh == 3 && op.conv.h == 14;
    });
    REQUIRE(conv2 != d.ops.end());
    const std::string ssrc = sk::source(*conv2, 8);
    CHECK(ssrc.find("constexpr long long YPIX = " + std::to_string(conv2->slice->strides.pixel)) != std::string::npos);
    CHECK(rtc::compile(ssrc, "splitk_slice", {"strata_rtc::splitk_conv<strata_rtc::f16>"}, 90, dir).cubin.size() > 1000);
    CHECK(!t->writes_slice(net.ops[0]));  // (no slice)
    // The batch-1 rules on 132 SMs (session 42, from measured tuning on an H200): the 3x3 convs
    // (36 k-steps) of block 1 (49 tiles: more than an eighth of the SMs) in clusters of 4 with
    // every copy in flight, because each writes a slice; of block 2 (13 tiles) in clusters of 8;
    // of blocks 3 and 4 (4 and 1 tiles) of 16. Fuse 3 in clusters of 8 from 16 k-steps (512 input
    // slots) where 8 are offered, of 4 from 8 k-steps; none below (blocks 1 and 2's first layers),
    // where normed_conv's batch-1 claim takes them (normed::claimed_single: 256 slots or fewer).
    std::map<std::pair<int, int>, int> conv2_sizes;  // (map size, cluster) -> layers
    std::map<std::pair<int, int>, int> fuse3_sizes;
    for (const cuda::OpDesc& op : d.ops) {
      if (op.slice && op.kind == OpKind::conv && op.conv.kh == 3) {
        const int cs = sk::claimed_cluster(op, 1, 132);
        CHECK(sk::slice_claimed(op, 1, 132) == (cs == 0));
        CHECK(!sk::slice_claimed(op, 2, 132));
        ++conv2_sizes[{op.conv.h, sk::slice_claimed(op, 1, 132) ? -4 : cs}];
      }
    }
    CHECK(conv2_sizes == std::map<std::pair<int, int>, int>{{{56, -4}, 6}, {{28, 8}, 12}, {{14, 16}, 24}, {{7, 16}, 16}});
    for (const cuda::OpDesc* op : normed) {
      INFO(op->label);
      const int cs = sk::claimed_norm_cluster(*op, 132);
      ++fuse3_sizes[{op->conv.h, cs}];
      CHECK(cs == (op->conv.cp >= 512 && op->conv.h <= 14 ? 8 : op->conv.cp >= 256 && op->conv.h <= 28 ? 4 : 0));
      CHECK(cuda::tactics::normed::claimed_single(*op) == (op->conv.cp <= 256));
    }
    CHECK(fuse3_sizes == std::map<std::pair<int, int>, int>{
                             {{56, 0}, 6}, {{28, 0}, 4}, {{28, 4}, 8}, {{14, 4}, 8}, {{14, 8}, 16}, {{7, 8}, 16}});
    // With the Hopper answers preloaded (132 SMs): the heuristics themselves. Every 3x3 conv
    // claimed by split-K and writing its slice (no copy after any); 48 joined layers claimed in
    // fuse 3, the other 10 by normed_conv (algo 2, math 3), the transitions by normed_conv's pass
    // + cuBLASLt (algo 6, the pool taken first); at batch 2 no fuse 3 claim.
    if (cuda::device_arch() == 90) {
      const auto* nt = cuda::find_tactic<DType::f16>("normed_conv");
      REQUIRE(nt != nullptr);
      std::size_t claimed = 0;
      for (const cuda::OpDesc& op : d.ops) {
        if (op.slice && op.kind == OpKind::conv && op.conv.kh == 3) {
          const auto c = t->heuristic(op, 1, std::size_t{1} << 30, {});
          REQUIRE(c.has_value());
          ++claimed;
          CHECK(c->variant.algo == (op.conv.h == 56 ? 4 : op.conv.h == 28 ? 8 : 16));
          CHECK(c->variant.math == (op.conv.h == 56 ? 1 : 0));
          CHECK(t->writes_slice(op));
        }
        if (op.pool && op.norm && op.kind == OpKind::conv) {
          INFO(op.label);
          const auto c = nt->heuristic(op, 1, std::size_t{1} << 30, {});
          REQUIRE(c.has_value());
          CHECK(c->variant.algo == cuda::tactics::normed::pass_gemm_algo);
          CHECK(c->variant.fuse == 2);
        }
      }
      CHECK(claimed == 58);
      std::size_t fused = 0;
      for (const cuda::OpDesc* op : normed) {
        INFO(op->label);
        const auto c = t->heuristic(*op, 1, std::size_t{1} << 30, {});
        const auto n = nt->heuristic(*op, 1, std::size_t{1} << 30, {});
        if (c) {
          ++fused;
          CHECK(c->variant.fuse == 3);
          CHECK(c->variant.algo == sk::claimed_norm_cluster(*op, 132));
          CHECK(c->rank == cuda::rank::joins);  // (ties normed_conv's; split-K comes first in the registry)
        } else {
          REQUIRE(n.has_value());
          CHECK(n->variant.algo == 2);
          CHECK(n->variant.math == cuda::tactics::normed::folded_narrow_math);
        }
        CHECK(!t->heuristic(*op, 2, std::size_t{1} << 30, {}).has_value());
        const auto offered = t->candidates(*op, 1, std::size_t{1} << 30, {});
        CHECK(std::any_of(offered.begin(), offered.end(), [](const cuda::Variant& v) { return v.fuse == 3; }));
      }
      CHECK(fused == 48);
      const auto& reg = cuda::all_tactics<DType::f16>();
      CHECK(std::find(reg.begin(), reg.end(), t) < std::find(reg.begin(), reg.end(), nt));
    }
    // Under programmatic dependent launches the kernel copies its filter's first k-steps (one
    // cp.async group) before it waits for the kernel before it, and its input only after: it
    // opens with pdl_launch (not pdl_entry, which waits), and the wait comes between the filter's
    // group and the input's copies — in every form (here fuse 3 in clusters, the workspace form,
    // 8 stages, a slice written).
    for (const std::string& src : {sk::source(first, 16, sk::default_stages, false, false, true),
                                   sk::source(cuda::norm_main(last), 0), sk::source(*conv2, 8, sk::deep_stages)}) {
      const std::string body = src.substr(src.rfind("__global__"));  // (the generated kernel, after the library's)
      const std::size_t launch = body.find("pdl_launch();");
      const std::size_t filter = body.find("if (i < steps) stage_b(s0 + i, i);");
      const std::size_t wait = body.find("pdl_wait();");
      const std::size_t input = body.find("if (i < steps) stage_a(s0 + i, i);");
      REQUIRE(launch != std::string::npos);
      REQUIRE(filter != std::string::npos);
      REQUIRE(wait != std::string::npos);
      REQUIRE(input != std::string::npos);
      CHECK(body.find("pdl_entry();") == std::string::npos);
      CHECK(launch < filter);
      CHECK(filter < body.find("cp_async_commit();"));
      CHECK(body.find("cp_async_commit();") < wait);
      CHECK(wait < input);
      // (between the filter's copies and the wait only their commit; the first input, gate and
      // batch norm reads after it)
      const std::string gap = body.substr(filter, wait - filter);
      CHECK(gap.find("stage_a(") == std::string::npos);
      CHECK(gap.find("stage(") == std::string::npos);
      for (const char* first_read : {"g_next = gate_chunk(s0);", "norm_chunk(s0);", "for (int i = 0; i < steps; ++i)"}) {
        INFO(first_read);
        const std::size_t at = body.find(first_read);
        CHECK((at == std::string::npos || at > input));
      }
      CHECK(body.find("for (int i = 0; i < steps; ++i)") != std::string::npos);
    }
    // normed_conv's ring forms (algos 2, 3, 5) copy their filter's first steps before the wait
    // too, then the input's; its other forms wait first thing.
    {
      namespace nm = cuda::tactics::normed;
      for (const std::string& src : {nm::source(first, 2, 2), nm::source(first, 2, nm::folded_narrow_math), nm::source(first, 3, 0)}) {
        const std::string body = src.substr(src.rfind("__global__"));
        const std::size_t wait = check_early_work(body, "    load_filter(s);", "    load_stage(s, false);");
        CHECK(body.find("cp_async_commit();", body.find("    load_filter(s);")) < wait);
        CHECK(body.find("    load_stage(s, false);") < body.find("load_stage(kt + STAGES - 1);"));
        // (before the wait no copy of the input: the only cp.async lambda called is load_filter)
        CHECK(body.substr(0, wait).find("load_stage(s") == std::string::npos);
      }
      {  // (the check itself: a return before the wait without one of its own fails it)
        const std::string bad = "__global__ k() {\n  if (b) {\n    return;\n  }\n  pdl_wait();\n}";
        const std::string good = "__global__ k() {\n  if (b) {\n    pdl_wait();\n    return;\n  }\n  pdl_wait();\n}";
        CHECK_FALSE(returns_after_waits(bad, bad.find("\n  pdl_wait();")));
        CHECK(returns_after_waits(good, good.find("\n  pdl_wait();")));
      }
      const std::string form1 = nm::source(first, 1, 2);
      const std::string body1 = form1.substr(form1.rfind("__global__"));  // (the kernel, after the library's)
      CHECK(body1.find("pdl_entry();") != std::string::npos);
      CHECK(body1.find("pdl_launch();") == std::string::npos);
    }
    // The unfused forms' text is unchanged by the batch norm's: no strides of its input there.
    CHECK(sk::source(cuda::norm_main(first)).find("XPIX") == std::string::npos);
    // fuse 3 on an op without a batch norm names the op
    try {
      (void)t->kernel_sources(net.ops[3], cuda::Variant{"splitk_conv", 0, 0, 3}, cuda::OpIo{});
      (void)t->prepare(net.ops[3], cuda::Variant{"splitk_conv", 0, 0, 3}, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
      FAIL("splitk_conv fuse 3 was accepted without a batch norm");
    } catch (const strata::Error& e) {
      CHECK(std::string(e.what()).find(net.ops[3].label) != std::string::npos);
      CHECK(std::string(e.what()).find("folded batch norm") != std::string::npos);
    }
  }
  try {
    (void)t->kernel_sources(net.ops[0], cuda::Variant{"splitk_conv", 3}, cuda::OpIo{});
    (void)t->prepare(net.ops[0], cuda::Variant{"splitk_conv", 3}, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
    FAIL("splitk_conv algo 3 was accepted");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find(net.ops[0].label) != std::string::npos);
    CHECK(std::string(e.what()).find("algos 2, 4, 8, 16") != std::string::npos);
  }
}

// splitk_conv fuse 2 (session 28): a squeeze-excite gate's multiply folded into the 1x1
// projection after it, applied as the kernel stages its input.
TEST_CASE("a channel gate applied as splitk_conv stages its input (fuse 2): which ops, the source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_gate_sk");
  cuda::NetDesc n = cuda::NetStorage<models::EfficientNetB0, DType::f16>::describe();
  cuda::fold_for_per_op_path(n);
  namespace sk = cuda::tactics::splitk;
  const auto* t = cuda::find_tactic<DType::f16>("splitk_conv");
  REQUIRE(t != nullptr);
  CHECK(t->fuses_gate(cuda::Variant{"splitk_conv", 8, 0, 2}));
  CHECK_FALSE(t->fuses_gate(cuda::Variant{"splitk_conv", 8}));
  CHECK_FALSE(t->fuses_gate(cuda::Variant{"splitk_conv", 8, 0, 1}));
  int gated = 0;
  const cuda::OpDesc* widest = nullptr;  // features.7.0's 1152 -> 320
  const cuda::OpDesc* first = nullptr;   // features.1.0's 32 -> 16 over 112x112
  for (const cuda::OpDesc& op : n.ops) {
    INFO(op.label);
    CHECK(sk::fuses_gate(op) == op.gate.has_value());  // every gated op of EfficientNet-B0: 1x1, stride 1
    if (!op.gate) {
      // refused where there is no gate, naming the layer
      if (t->applicable(op) && op.conv.kh == 1) {
        CHECK(t->kernel_sources(op, cuda::Variant{"splitk_conv", 8, 0, 2}, cuda::OpIo{}).empty());
      }
      continue;
    }
    ++gated;
    CHECK(t->applicable(op));
    first = first == nullptr ? &op : first;
    if (op.conv.cp == 1152 && op.conv.k == 320) {
      widest = &op;
    }
    // fuse 0 on a gated op: the kernel of the conv alone (the multiply a step before it)
    const auto plain = t->kernel_sources(op, cuda::Variant{"splitk_conv", 8}, cuda::OpIo{});
    REQUIRE(plain.size() == 1);
    CHECK(plain[0].source == sk::source(cuda::gate_conv(op), 8));
    const auto fused = t->kernel_sources(op, cuda::Variant{"splitk_conv", 8, 0, 2}, cuda::OpIo{});
    REQUIRE(fused.size() == 1);
    CHECK(fused[0].source == sk::source(op, 8, sk::default_stages, false, true));
    CHECK(fused[0].source.find("constexpr bool GATED = true;") != std::string::npos);
    CHECK(plain[0].source.find("constexpr bool GATED = false;") != std::string::npos);
  }
  CHECK(gated == 16);
  // The heuristic's cluster sizes at batch 1 on 132 SMs (session 28's H200 figures): the
  // workspace form where the reduction is under 4 k-steps (features.1.0, 2.0), else the largest
  // of 16, 8, 4 no longer than the k-steps with two blocks an SM at most.
  std::vector<int> sizes;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.gate) {
      sizes.push_back(sk::claimed_gate_cluster(op, 132));
      CHECK((sizes.back() == 0 || sk::offers_gate(op, 1, 132, sizes.back())));
    }
  }
  CHECK(sizes == std::vector<int>{0, 0, 4, 4, 8, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16, 16});
  REQUIRE(widest != nullptr);
  REQUIRE(first != nullptr);
  for (const cuda::OpDesc* op : {first, widest}) {
    for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
      const std::vector<std::string> names{std::string("strata_rtc::splitk_conv<") + ty + ">"};
      CHECK(rtc::compile(sk::source(*op, 8, sk::default_stages, false, true), "splitk_gate", names, 90, dir)
                .cubin.size() > 1000);
    }
    // the workspace form compiles below Hopper too
    const std::vector<std::string> names{"strata_rtc::splitk_conv<strata_rtc::f16>"};
    CHECK(rtc::compile(sk::source(*op, 0, sk::default_stages, false, true), "splitk_gate80", names, 80, dir)
              .cubin.size() > 1000);
  }
  // measured tuning offers fuse 2 on gated ops (none without a device: no clusters, no offers)
  if (cuda::device_arch() < 90) {
    CHECK(t->candidates(*widest, 1, std::size_t{1} << 30, {}).empty());
  }
}

namespace {
/// The PTX (compute_90) of generated source `src`'s kernel `name` (NVRTC, no device needed); the
/// compiler's log in the failure's message where it does not compile.
std::string ptx_of(const std::string& src, const char* name) {
  nvrtcProgram prog = nullptr;
  REQUIRE(nvrtcCreateProgram(&prog, src.c_str(), "ptx_of.cu", 0, nullptr, nullptr) == NVRTC_SUCCESS);
  const char* opts[] = {"--gpu-architecture=compute_90", "-std=c++17"};
  const bool compiled = nvrtcAddNameExpression(prog, name) == NVRTC_SUCCESS &&
                        nvrtcCompileProgram(prog, 2, opts) == NVRTC_SUCCESS;
  std::string out;
  std::size_t n = 0;
  if (compiled ? nvrtcGetPTXSize(prog, &n) == NVRTC_SUCCESS : nvrtcGetProgramLogSize(prog, &n) == NVRTC_SUCCESS) {
    out.assign(n, '\0');
    (void)(compiled ? nvrtcGetPTX(prog, out.data()) : nvrtcGetProgramLog(prog, out.data()));
  }
  nvrtcDestroyProgram(&prog);
  INFO(out);
  REQUIRE(compiled);
  return out;
}
}  // namespace

// depthwise_band fuse 1 (session 52): at batch 1 the squeeze-excite op of a 112x112 or 56x56
// map joined to the depthwise conv before it (fold_tailed_gates), each block's channel sums, the
// image's last block the pool's mean, fc1 and fc2.

TEST_CASE("a squeeze-excite op computed by the depthwise conv before it (depthwise_band fuse 1): which ops, the claim, the source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_band_tail");
  cuda::NetDesc n = cuda::NetStorage<models::EfficientNetB0, DType::f16>::describe();
  cuda::fold_for_per_op_path(n);
  const std::size_t before = n.ops.size();
  cuda::fold_tailed_gates(n);
  cuda::fold_excited_gates(n);
  CHECK(n.ops.size() == before - 16);  // every gate joined: three before, thirteen after
  namespace band = cuda::tactics::band;
  const auto* t = cuda::find_tactic<DType::f16>("depthwise_band");
  REQUIRE(t != nullptr);
  const cuda::Variant one{"depthwise_band", 0, 0, 1};
  CHECK(t->fuses_tail(one));
  CHECK_FALSE(t->fuses_tail(cuda::Variant{"depthwise_band"}));
  // EngineOptions::force names the joined op: the conv's own label, the squeeze-excite op's and
  // fc1's without its pool are refused, naming it.
  {
    const auto first = std::find_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.tail != nullptr; });
    REQUIRE(first != n.ops.end());
    const cuda::OpDesc& f1 = *first->tail->squeeze;
    for (const std::string& part : {first->tail_conv_label, first->tail->label, f1.label.substr(f1.gap->label.size() + 1)}) {
      INFO(part);
      try {
        (void)cuda::forced_variants<DType::f16>(n, {{part, cuda::Variant{"depthwise_band"}}});
        FAIL("a part of a joined op was forced");
      } catch (const strata::Error& e) {
        CHECK(std::string(e.what()).find("'" + first->label + "' (fold_tailed_gates): force that op") != std::string::npos);
      }
    }
  }
  std::vector<std::string> tailed;
  int compiled = 0;
  for (const cuda::OpDesc& op : n.ops) {
    if (!op.tail) {
      if (op.kind == OpKind::conv && band::fits(op)) {  // fuse 1 refused without a joined op
        CHECK(t->kernel_sources(op, one, cuda::OpIo{}).empty());
      }
      continue;
    }
    INFO(op.label);
    tailed.push_back(op.tail_conv_label);
    REQUIRE(band::fuses_tail(op));
    // Claimed as one launch (the expansions of 2.0 and 2.1 still a step before it), offered.
    const auto claim = t->heuristic(op, 1, std::size_t{1} << 30, {});
    REQUIRE(claim.has_value());
    CHECK(claim->variant == one);
    CHECK(claim->rank == cuda::rank::joins);
    const auto offered = t->candidates(op, 1, std::size_t{1} << 30, {});
    CHECK(std::find(offered.begin(), offered.end(), one) != offered.end());
    // The kernel prepared for fuse 1 is the joined op's; for fuse 0 the conv's alone.
    const cuda::OpDesc p1 = cuda::op_as_prepared(*t, op, one);
    CHECK(p1.tail != nullptr);
    const auto k1 = t->kernel_sources(p1, one, cuda::OpIo{});
    REQUIRE(k1.size() == 1);
    CHECK(k1[0].source == band::source(p1, 0, 1, true));
    CHECK(k1[0].source.find("constexpr int SE_K1 = " + std::to_string(op.tail->squeeze->conv.k)) != std::string::npos);
    CHECK(k1[0].source.find("atomicAdd(&counters[img]") != std::string::npos);
    const cuda::OpDesc p0 = cuda::op_as_prepared(*t, op, cuda::Variant{"depthwise_band"});
    CHECK(p0.tail == nullptr);
    CHECK(p0.expand == nullptr);
    CHECK(p0.label == (op.expand ? cuda::expand_main(cuda::tail_main(op)).label : op.tail_conv_label));
    const auto k0 = t->kernel_sources(p0, cuda::Variant{"depthwise_band"}, cuda::OpIo{});
    REQUIRE(k0.size() == 1);
    CHECK(k0[0].source.find("SE_K1") == std::string::npos);
    // algo 1 does not compute it
    CHECK(t->kernel_sources(p1, cuda::Variant{"depthwise_band", 1, 2, 1}, cuda::OpIo{}).empty());
    if (op.conv.oh == 112 || op.conv.cp == 144) {  // features.1.0 and 2.1, f16 and bf16
      for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
        const std::vector<std::string> names{std::string("strata_rtc::depthwise_band<") + ty + ">"};
        CHECK(rtc::compile(k1[0].source, "band_tail", names, 90, dir).cubin.size() > 1000);
      }
      // The gate's activations (SiLU, sigmoid) fold at compile time: a constexpr ActDesc passed
      // to activate() was kept as a weak global, switched on for every value (session 62's
      // audit); act_constants now writes them const.
      CHECK(ptx_of(k1[0].source, "strata_rtc::depthwise_band<strata_rtc::f16>").find(".weak .global") ==
            std::string::npos);
      ++compiled;
    }
  }
  CHECK(compiled == 2);
  CHECK(tailed == std::vector<std::string>{
                      "features.1.0.block.0.conv0+bn1+silu2",
                      "features.2.0.block.0.conv0+bn1+silu2+features.2.0.block.1.conv0+bn1+silu2",
                      "features.2.1.block.0.conv0+bn1+silu2+features.2.1.block.1.conv0+bn1+silu2"});
}

// depthwise_band fuse 3 at large batches (session 64): an engine of max batch
// cuda::tail_min_batch (32) or more with EngineOptions::tail_sums (the default since session 65)
// joins all sixteen of EfficientNet-B0's gates to the depthwise convs before them, whatever the
// map (without it none); between 2 and 31 none; at 1 the three of 56x56 and more. Claimed at
// batch 256 as fuse 3 (the conv's blocks write their channel sums, a second kernel computes the
// gate) — on algo 2 math 4 (pipelined, 4 images a block) for the seven 5x5 convs of stride 1
// (band::pipelined_claimed), algo 0 for the others —, fuse 1 offered; algo 2 offered with fuse 3
// once GPU-tested (band::pipelined_gpu_tested); algo 2's sources and
// the 1,152-channel gate's (one 7x7 tile an image, fc1 48 outputs a warp each over 1,152
// channels) compile.
TEST_CASE("an engine of max batch 32 or more with tail_sums joins every squeeze-excite op to the depthwise conv before it (fold_for_max_batch)") {
  const auto dir = fresh_dir("strata_rtc_test_band_tail_large");
  namespace band = cuda::tactics::band;
  const auto* t = cuda::find_tactic<DType::f16>("depthwise_band");
  REQUIRE(t != nullptr);
  const cuda::Variant one{"depthwise_band", 0, 0, 1};
  for (const int mb : {1, 2, 31, 32, 256}) {
    INFO("max batch " << mb);
    const auto folded = [&](bool sums) {
      return cuda::per_op_ops<models::EfficientNetB0, DType::f16>(
          cuda::EngineOptions{.max_batch = mb, .block_clusters = false, .tail_sums = sums});
    };
    const auto tails = [](const cuda::NetDesc& n) {
      return std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& op) { return op.tail != nullptr; });
    };
    const int small = mb <= cuda::tail_max_batch ? 3 : 0;
    CHECK(tails(folded(false)) == small);
    CHECK(cuda::EngineOptions{}.tail_sums);  // (the default)
    const cuda::NetDesc n = folded(true);
    CHECK(tails(n) == (mb >= cuda::tail_min_batch ? 16 : small));
    if (mb != 256) {
      continue;
    }
    int compiled = 0;
    int pipelined = 0;
    for (const cuda::OpDesc& op : n.ops) {
      if (!op.tail) {
        continue;
      }
      INFO(op.label);
      REQUIRE(band::fuses_tail(op));
      const cuda::Variant three{"depthwise_band", 0, 0, 3};
      const auto claim = t->heuristic(op, mb, std::size_t{1} << 30, {});
      REQUIRE(claim.has_value());
      const bool five_by_five_s1 = op.conv.kh == 5 && op.conv.sh == 1;
      // (algos 0 and 2 as 3 and 4 on the 14x14 maps, the whole map a block: band::whole_claimed)
      const bool whole = band::whole_claimed(op, mb);
      CHECK(claim->variant == (five_by_five_s1 && band::pipelined_gpu_tested
                                   ? cuda::Variant{"depthwise_band", whole ? 4 : 2, 4, 3}
                                   : cuda::Variant{"depthwise_band", whole ? 3 : 0, 0, 3}));
      pipelined += claim->variant.algo == 2 || claim->variant.algo == 4 ? 1 : 0;
      CHECK(t->heuristic(op, 1, std::size_t{1} << 30, {})->variant == one);
      CHECK(t->fuses_tail(three));
      // Fuses 1 and 3 and algo 2 (pipelined, 2 and 4 images a block, with the sums) offered at
      // batch 256; at 8 neither fuse 3 nor algo 2.
      const auto offered = t->candidates(op, mb, std::size_t{1} << 30, {});
      CHECK(std::find(offered.begin(), offered.end(), one) != offered.end());
      CHECK(std::find(offered.begin(), offered.end(), three) != offered.end());
      for (const int m : {2, 4}) {
        CHECK((std::find(offered.begin(), offered.end(), cuda::Variant{"depthwise_band", 2, m, 3}) != offered.end()) ==
              band::pipelined_gpu_tested);
      }
      const auto few = t->candidates(op, 8, std::size_t{1} << 30, {});
      CHECK(std::none_of(few.begin(), few.end(), [](const cuda::Variant& v) { return v.algo == 2 || v.fuse == 3; }));
      if (op.conv.kh == 5 && op.conv.sh == 2 && op.conv.cp == 144) {  // features.3.0: algo 2 math 4, both fuses
        for (const int fuse : {3, 1, 0}) {
          const cuda::Variant v{"depthwise_band", 2, 4, fuse};
          const cuda::OpDesc pv = cuda::op_as_prepared(*t, op, v);
          const auto kv = t->kernel_sources(pv, v, cuda::OpIo{});
          REQUIRE(kv.size() == (fuse == 3 ? 2U : 1U));  // (fuse 3: the gate kernel too)
          CHECK(kv[0].source.find("constexpr int IMGS = 4;") != std::string::npos);
          CHECK(kv[0].source.find("cp_async16(buf") != std::string::npos);
          CHECK((kv[0].source.find("if (!tl_last) {\n      continue;") != std::string::npos) == (fuse == 1));
          CHECK((kv[0].source.find("the values as stored summed") != std::string::npos) == (fuse == 3));
          CHECK(kv[0].source.find("__launch_bounds__(224, 3) depthwise_band") != std::string::npos);
          const std::vector<std::string> names{"strata_rtc::depthwise_band<strata_rtc::bf16>"};
          CHECK(rtc::compile(kv[0].source, "band_a2_" + std::to_string(fuse), names, 90, dir).cubin.size() > 1000);
        }
      }
      if (op.conv.cp == 1152 && compiled == 0) {
        const cuda::OpDesc p1 = cuda::op_as_prepared(*t, op, one);
        const auto k1 = t->kernel_sources(p1, one, cuda::OpIo{});
        REQUIRE(k1.size() == 1);
        CHECK(k1[0].source.find("constexpr int CP = 1152;") != std::string::npos);
        CHECK(k1[0].source.find("for (int i = 8 * lane; i < CP; i += 256)") != std::string::npos);  // (fc1 a warp an output)
        CHECK(k1[0].source.find("constexpr bool FC1_PRELOAD = false;") != std::string::npos);  // (inside the conv's kernel)
        const std::vector<std::string> names{"strata_rtc::depthwise_band<strata_rtc::f16>"};
        CHECK(rtc::compile(k1[0].source, "band_tail_1152", names, 90, dir).cubin.size() > 1000);
        // fuse 3: the conv without the counter, and the gate kernel (a block an image)
        const cuda::OpDesc p3 = cuda::op_as_prepared(*t, op, three);
        const auto k3 = t->kernel_sources(p3, three, cuda::OpIo{});
        REQUIRE(k3.size() == 2);
        CHECK(k3[0].source.find("atomicAdd(&counters[img]") == std::string::npos);
        CHECK(k3[0].source.find("part[tile * CP + c0 + c] = t;") != std::string::npos);
        CHECK(k3[1].name == "strata_rtc::depthwise_band_gate<strata_rtc::f16>");
        CHECK(k3[1].source.find("constexpr int TILES = 1;") != std::string::npos);
        CHECK(k3[1].source.find("constexpr bool FC1_PRELOAD = true;") != std::string::npos);  // (the gate kernel's loads in flight)
        CHECK(rtc::compile(k3[0].source, "band_sums_1152", names, 90, dir).cubin.size() > 1000);
        CHECK(rtc::compile(k3[1].source, "band_gate_1152", {k3[1].name}, 90, dir).cubin.size() > 1000);
        ++compiled;
      }
    }
    CHECK(compiled == 1);
    CHECK(pipelined == (band::pipelined_gpu_tested ? 7 : 0));  // features.3.1, 5.0-5.2, 6.1-6.3
  }
}

// splitk_conv fuse 4 (session 51): at batch 1 the squeeze-excite op that computes the gate
// (fold_excited_gates) is computed by the projection's clusters too, each block its slice of the
// channels: the pool, fc1's products over the slice, a cluster barrier, fc1 finished and the
// slice's gate from fc2.
TEST_CASE("a squeeze-excite op computed with its gate by splitk_conv's clusters (fuse 4): which ops, the claim, the source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_excite_sk");
  cuda::NetDesc n = cuda::NetStorage<models::EfficientNetB0, DType::f16>::describe();
  cuda::fold_for_per_op_path(n);
  const std::size_t before = n.ops.size();
  cuda::fold_excited_gates(n);
  CHECK(n.ops.size() == before - 16);  // all sixteen gates' squeeze-excite ops joined
  namespace sk = cuda::tactics::splitk;
  const auto* t = cuda::find_tactic<DType::f16>("splitk_conv");
  REQUIRE(t != nullptr);
  const cuda::Variant four{"splitk_conv", 16, 0, 4};
  CHECK(t->fuses_excite(four));
  CHECK(t->fuses_gate(four));
  CHECK_FALSE(t->fuses_excite(cuda::Variant{"splitk_conv", 16, 0, 2}));
  std::vector<int> claimed;  // the heuristic's cluster with fuse 4, or 0
  int compiled = 0;
  for (const cuda::OpDesc& op : n.ops) {
    if (!op.gate) {
      continue;
    }
    INFO(op.label);
    REQUIRE(op.excite != nullptr);
    const int cs = sk::claimed_gate_cluster(op, 132);
    claimed.push_back(cs != 0 && sk::excite_claimed(op, cs) ? cs : 0);
    // The kernel prepared for each variant: fuse 4 the joined op's; fuse 2 the gated conv's
    // (the squeeze-excite op a step before it); fuse 0 the conv's alone.
    const cuda::Variant v4{"splitk_conv", 16, 0, 4};
    const cuda::Variant v2{"splitk_conv", 16, 0, 2};
    CHECK(cuda::op_as_prepared(*t, op, v4).excite != nullptr);
    CHECK(cuda::op_as_prepared(*t, op, v2).label == cuda::excite_main(op).label);
    CHECK(cuda::op_as_prepared(*t, op, cuda::Variant{"splitk_conv", 16}).label == cuda::gate_conv(op).label);
    const auto k2 = t->kernel_sources(cuda::op_as_prepared(*t, op, v2), v2, cuda::OpIo{});
    REQUIRE(k2.size() == 1);
    CHECK(k2[0].source == sk::source(cuda::excite_main(op), 16, sk::default_stages, false, true));
    CHECK(k2[0].source.find("SE_K1") == std::string::npos);
    const auto k4 = t->kernel_sources(op, v4, cuda::OpIo{});
    if (!sk::fuses_excite(op, 16)) {
      CHECK(k4.empty());  // (slices over excite_most_slots, or none: refused)
      continue;
    }
    REQUIRE(k4.size() == 1);
    CHECK(k4[0].source == sk::source(op, 16, sk::default_stages, false, true, false, true));
    const cuda::OpDesc& f1 = *op.excite->squeeze;
    CHECK(k4[0].source.find("constexpr int SE_K1 = " + std::to_string(f1.conv.k) + ", SE_K1P = " +
                            std::to_string(f1.conv.kp) + ";") != std::string::npos);
    CHECK(k4[0].source.find("constexpr int SE_SLOTS = " + std::to_string(sk::excite_slice_slots(op, 16))) !=
          std::string::npos);
    CHECK(k4[0].source.find("const T* const gate = nullptr;") != std::string::npos);
    // fuse 4 on the gated conv alone (no squeeze-excite op): refused
    CHECK(t->kernel_sources(cuda::excite_main(op), v4, cuda::OpIo{}).empty());
    // the widest (features.7.0: 1,152 channels, 96 a block, fc1 48) and a 14x14 one (features.4.0:
    // 240 channels in 16 slices of 32, fc1 10) compiled, f16 and bf16 (and 8 staged k-steps)
    if ((op.conv.cp == 1152 && op.conv.k == 320) || (op.conv.cp == 240 && op.conv.h == 14)) {
      for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
        const std::vector<std::string> names{std::string("strata_rtc::splitk_conv<") + ty + ">"};
        CHECK(rtc::compile(k4[0].source, "splitk_excite", names, 90, dir).cubin.size() > 1000);
      }
      const std::vector<std::string> names{"strata_rtc::splitk_conv<strata_rtc::f16>"};
      CHECK(rtc::compile(sk::source(op, 8, sk::deep_stages, false, true, false, true), "splitk_excite_deep",
                         names, 90, dir).cubin.size() > 1000);
      ++compiled;
    }
  }
  CHECK(compiled == 2);
  // Claimed on the 28x28, 14x14 and 7x7 maps (features.3.0 on: at most 98 KiB of the map a
  // block), in the clusters fuse 2 is claimed with; not on the 56x56 and 112x112 ones (features.2.1
  // in 4: 392 KiB a block; features.1.0 and 2.0: no cluster claimed).
  CHECK(claimed == std::vector<int>{0, 0, 0, 4, 8, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16, 16});
  // Refused: a cluster whose slices are too wide (features.7.0 in 8: 160 slots), the workspace form.
  const auto widest = std::find_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) {
    return o.gate && o.conv.cp == 1152 && o.conv.k == 320;
  });
  REQUIRE(widest != n.ops.end());
  CHECK(t->kernel_sources(*widest, cuda::Variant{"splitk_conv", 8, 0, 4}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(*widest, cuda::Variant{"splitk_conv", 0, 0, 4}, cuda::OpIo{}).empty());
  CHECK_FALSE(sk::fuses_excite(*widest, 8));
  CHECK(sk::fuses_excite(*widest, 16));
  // No device, no clusters: neither claimed nor offered.
  if (cuda::device_arch() < 90) {
    CHECK(!t->heuristic(*widest, 1, std::size_t{1} << 30, {}).has_value());
    CHECK(t->candidates(*widest, 1, std::size_t{1} << 30, {}).empty());
  }
}

TEST_CASE("a downsample joined to its block's first conv: splitk_conv's side source compiles, its key") {
  const auto dir = fresh_dir("strata_rtc_test_side");
  cuda::NetDesc n = cuda::NetStorage<models::ResNet18, DType::f16>::describe();
  cuda::fold_for_per_op_path(n);
  cuda::fold_side_convs(n);
  namespace sk = cuda::tactics::splitk;
  const auto* t = cuda::find_tactic<DType::f16>("splitk_conv");
  REQUIRE(t != nullptr);
  int joined = 0;
  for (const cuda::OpDesc& op : n.ops) {
    if (!op.side) {
      continue;
    }
    ++joined;
    INFO(op.label);
    CHECK(sk::fuses_side(op));
    CHECK(t->fuses_side(cuda::Variant{"splitk_conv", 8, 0, 1}));
    CHECK_FALSE(t->fuses_side(cuda::Variant{"splitk_conv", 8}));
    // Its launch: the downsample's n-tiles after the conv's, the conv's k-steps in each slice.
    const auto c = sk::cluster_split(op, 1, 4);
    const auto js = sk::side_split(op, 1, 4);
    CHECK(js.m_tiles == c.m_tiles);
    CHECK(js.n_tiles == c.n_tiles + (op.side->conv.kp + sk::tile_n - 1) / sk::tile_n);
    CHECK(js.chunk == c.chunk);
    CHECK(js.splits == 4);
    // Offered and claimed on a GPU of 132 SMs only where the joined launch keeps to two blocks
    // an SM; none on a GPU of 8 SMs; none without a side conv.
    CHECK_FALSE(sk::offers_side(op, 1, 8, 2));
    CHECK(sk::claimed_side_cluster(op, 1, 8) == 0);
    CHECK_FALSE(sk::offers_side(cuda::side_main(op), 1, 132, 2));
    CHECK(sk::claimed_side_cluster(cuda::side_main(op), 1, 132) == 0);
    const int claimed = sk::claimed_side_cluster(op, 1, 132);
    CHECK(claimed != 0);
    CHECK(sk::offers_side(op, 1, 132, claimed));
    CHECK(sk::side_split(op, 1, claimed).blocks() <= 264);
    CHECK(sk::side_split(op, 1, claimed).chunk >= 4);
    if (cuda::device_arch() < 90) {  // (no clusters without a device: nothing offered)
      CHECK(t->candidates(op, 1, std::size_t{1} << 30, {}).empty());
      CHECK_FALSE(t->heuristic(op, 1, std::size_t{1} << 30, {}).has_value());
    }
    // Its key is not the plain conv's (every candidate's time includes the side conv).
    CHECK(cuda::tuning_key(op, 1, DType::f16, "gpu") != cuda::tuning_key(cuda::side_main(op), 1, DType::f16, "gpu"));
    CHECK(cuda::tuning_key(op, 1, DType::f16, "gpu").find(",side" + std::to_string(op.side->conv.kp)) != std::string::npos);
    const std::string src = sk::source(op, 8, sk::default_stages, true);
    CHECK(src.find("constexpr int SKP = " + std::to_string(op.side->conv.kp)) != std::string::npos);
    for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
      const std::vector<std::string> names{std::string("strata_rtc::splitk_conv<") + ty + ">"};
      CHECK(rtc::compile(src, "splitk_side", names, 90, dir).cubin.size() > 1000);
    }
    // fuse 0 on the joined op: the kernel of the conv alone, as for the conv before the fold.
    const auto plain = t->kernel_sources(op, cuda::Variant{"splitk_conv", 8}, cuda::OpIo{});
    REQUIRE(plain.size() == 1);
    CHECK(plain[0].source == sk::source(cuda::side_main(op), 8));
    CHECK(t->kernel_sources(op, cuda::Variant{"splitk_conv", 8, 0, 1}, cuda::OpIo{}).size() == 1);
  }
  CHECK(joined == 3);
  // ResNet-18's three at batch 1 on 132 SMs: layer2.0 (13 x (2 + 2) tiles, 18 k-steps) in
  // clusters of 4, layer3.0 (4 x (4 + 4), 36) of 8, layer4.0 (1 x (8 + 8), 72) of 16; not
  // layer2.0 at 8 (416 blocks).
  std::vector<int> sizes;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.side) {
      sizes.push_back(sk::claimed_side_cluster(op, 1, 132));
    }
  }
  CHECK(sizes == std::vector<int>{4, 8, 16});
  const auto l2 = std::find_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.side != nullptr; });
  CHECK_FALSE(sk::offers_side(*l2, 1, 132, 8));
  CHECK(sk::offers_side(*l2, 1, 132, 4));
  // EngineOptions::force names the joined op; a downsample's own label says which that is.
  const auto forced = cuda::forced_variants<DType::f16>(
      n, {{"layer2.0.conv1+bn1+relu & layer2.0.downsample.conv0+bn1", cuda::Variant{"splitk_conv", 8, 0, 1}}});
  CHECK(std::count(forced.begin(), forced.end(), std::optional{cuda::Variant{"splitk_conv", 8, 0, 1}}) == 1);
  try {
    (void)cuda::forced_variants<DType::f16>(n, {{"layer3.0.downsample.conv0+bn1", cuda::Variant{"lt_conv1x1", 1}}});
    FAIL("a joined downsample's own label was forced");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find("'layer3.0.conv1+bn1+relu & layer3.0.downsample.conv0+bn1' (fold_side_convs): force that op") != std::string::npos);
  }
  // fuse 1 where there is no side conv, or not in a cluster: refused, naming the layer.
  const cuda::OpDesc& plain = n.ops[8];
  REQUIRE_FALSE(plain.side);
  CHECK(t->kernel_sources(plain, cuda::Variant{"splitk_conv", 8, 0, 1}, cuda::OpIo{}).empty());
  const auto j = std::find_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.side != nullptr; });
  try {
    (void)t->prepare(*j, cuda::Variant{"splitk_conv", 0, 0, 1}, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
    FAIL("splitk_conv fuse 1 was accepted without a cluster");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find(j->label) != std::string::npos);
    CHECK(std::string(e.what()).find("in a cluster") != std::string::npos);
  }
}

TEST_CASE("a network's last op, its head, as one kernel writing the caller's output (gap_dense): the source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_gap_dense");
  const auto head = [](cuda::NetDesc n) {
    cuda::fold_for_per_op_path(n);
    return n.ops.back();
  };
  namespace gd = cuda::tactics::gap_dense;
  const cuda::OpDesc r18 = head(cuda::NetStorage<models::ResNet18, DType::f16>::describe());
  const cuda::OpDesc r50 = head(cuda::NetStorage<models::ResNet50, DType::bf16>::describe());
  REQUIRE(r18.net_output);
  // (ResNet-18: 512 inputs, 2 loads a lane a row — 8, 16, 32 rows a block fit; ResNet-50: 2,048
  // inputs, 8 loads — 8 and 16)
  CHECK(cuda::find_tactic<DType::f16>("gap_dense")->candidates(r18, 1, 0, {}).size() == 3);
  CHECK(cuda::find_tactic<DType::bf16>("gap_dense")->candidates(r50, 4, 0, {}).size() == 2);
  CHECK(cuda::find_tactic<DType::bf16>("gap_dense")->candidates(r50, 5, 0, {}).empty());
  for (const int rows : {8, 32}) {
    const std::vector<std::string> names{"strata_rtc::gap_dense<strata_rtc::f16>"};
    CHECK(rtc::compile(gd::source(r18, rows), "gap_dense", names, 90, dir).cubin.size() > 1000);
    CHECK(rtc::compile(gd::source(r18, rows), "gap_dense80", names, 80, dir).cubin.size() > 1000);
  }
  const std::vector<std::string> names{"strata_rtc::gap_dense<strata_rtc::bf16>"};
  CHECK(rtc::compile(gd::source(r50, 16), "gap_dense50", names, 90, dir).cubin.size() > 1000);
  // 32 rows of 2,048 inputs would not fit a warp's registers: the kernel says so.
  CHECK_THROWS(rtc::compile(gd::source(r50, 32), "gap_dense50_32", names, 90, dir));

  // Fuse 1: DenseNet-121's head with norm5 and its ReLU folded in (fold_normed_pooled_dense), the
  // map normalized as it is averaged — offered beside fuse 0 for each of the three row counts
  // (1,024 inputs: 4 loads a lane a row), claimed at batch 1; not for a head without a batch norm.
  const cuda::OpDesc d121 = head(cuda::NetStorage<models::DenseNet121, DType::f16>::describe());
  const cuda::OpDesc d121b = head(cuda::NetStorage<models::DenseNet121, DType::bf16>::describe());
  REQUIRE(d121.norm != nullptr);
  CHECK(gd::fuses_norm(d121, 2));
  CHECK_FALSE(gd::fuses_norm(r18, 2));
  const auto* t = cuda::find_tactic<DType::f16>("gap_dense");
  const auto offered = t->candidates(d121, 1, 0, {});
  CHECK(offered.size() == 6);
  CHECK(std::count_if(offered.begin(), offered.end(), [&](const cuda::Variant& v) { return t->fuses_norm(v); }) == 3);
  CHECK(t->candidates(r18, 1, 0, {}).size() == 3);  // (no fuse 1 without a batch norm)
  const auto claim = t->heuristic(d121, 1, 0, {});
  REQUIRE(claim.has_value());
  CHECK(claim->variant == cuda::Variant{"gap_dense", 8, 0, 1});
  CHECK(t->heuristic(r18, 1, 0, {})->variant == cuda::Variant{"gap_dense", 8, 0, 0});
  CHECK_FALSE(t->heuristic(d121, 2, 0, {}).has_value());
  const std::string normed = gd::source(d121, 8, true);
  CHECK(normed.find("normed_stored<T, NA>") != std::string::npos);
  // (the batch norm's input by its own strides — a concat read in place —, not the pool map's)
  CHECK(normed.find("xb + static_cast<long long>(p) * XPIX + col * V") != std::string::npos);
  CHECK(normed.find("x + static_cast<long long>(b) * XIMG;") != std::string::npos);
  // Fuse 0's text as it was before fuse 1 (GPU-run since session 20): no batch norm, the map's
  // own strides.
  const std::string plain = gd::source(d121, 8);
  CHECK(plain.find("normed_stored") == std::string::npos);
  const auto kernel_text = [](const std::string& s) { return s.substr(s.find("// Generated for '")); };
  CHECK(kernel_text(plain).find("const float* __restrict__ scale") == std::string::npos);
  CHECK(kernel_text(normed).find("const float* __restrict__ scale") != std::string::npos);
  CHECK(plain.find("xb + static_cast<long long>(p) * CP + col * V") != std::string::npos);
  CHECK(plain.find("x + static_cast<long long>(b) * HW * CP;") != std::string::npos);
  CHECK(rtc::compile(normed, "gap_dense_norm", {"strata_rtc::gap_dense<strata_rtc::f16>"}, 90, dir).cubin.size() > 1000);
  CHECK(rtc::compile(normed, "gap_dense_norm80", {"strata_rtc::gap_dense<strata_rtc::f16>"}, 80, dir).cubin.size() > 1000);
  CHECK(rtc::compile(gd::source(d121b, 32, true), "gap_dense_norm_bf16", {"strata_rtc::gap_dense<strata_rtc::bf16>"}, 90,
                     dir).cubin.size() > 1000);
  CHECK_THROWS_AS(gd::source(r18, 8, true), strata::Error);
  // MobileNetV2's (EfficientNet-B0's) last conv's ReLU6 (SiLU) deferred into the pool's read
  // (defer_activations): the kernel applies it to each value, rounded as stored, as it sums;
  // the tuning key says so; pooled_dense (the map as stored) does not take such a head.
  cuda::NetDesc mv2n = cuda::NetStorage<models::MobileNetV2, DType::f16>::describe();
  cuda::fold_for_per_op_path(mv2n);
  const cuda::OpDesc mv2 = mv2n.ops.back();
  const cuda::OpDesc eb0 = head(cuda::NetStorage<models::EfficientNetB0, DType::bf16>::describe());
  REQUIRE(mv2.gap.has_value());
  CHECK(mv2.gap->in_act.kind == Act::clip);
  CHECK(mv2.gap->in_act.beta == 6.0f);
  CHECK(mv2.label == "global_avg_pool1+classifier.dense1");
  CHECK(mv2n.ops[mv2n.ops.size() - 2].act.kind == Act::none);  // features.18: stored before its ReLU6
  CHECK(mv2n.ops[mv2n.ops.size() - 2].act_applied_by == mv2.label);
  REQUIRE(eb0.gap.has_value());
  CHECK(eb0.gap->in_act.kind == Act::silu);
  CHECK(r18.gap->in_act.kind == Act::none);  // (ResNet's ReLU: the conv's epilogue applies it)
  const std::string mv2s = gd::source(mv2, 8);
  CHECK(mv2s.find("as_stored<T>(activate_as<GIA>(gap_in_act, load(h + e)))") != std::string::npos);
  CHECK(gd::source(r18, 8).find("gap_in_act") == std::string::npos);
  // The activation's kind folds at compile time: activate() on the constexpr ActDesc left it a
  // weak global that the kernel switched on for every value (MobileNetV2's head at batch 1:
  // 42.5 us on an H100, session 62). The PTX has no such global.
  CHECK(ptx_of(mv2s, "strata_rtc::gap_dense<strata_rtc::f16>").find(".weak .global") == std::string::npos);
  CHECK(t->candidates(mv2, 1, 0, {}).size() == 2);  // (1,280 inputs, 5 loads a lane a row: 8 and 16 rows)
  CHECK(t->heuristic(mv2, 1, 0, {})->variant == cuda::Variant{"gap_dense", 8, 0, 0});
  CHECK(cuda::find_tactic<DType::f16>("pooled_dense")->candidates(mv2, 1, 0, {}).empty());
  cuda::OpDesc unfolded = mv2;
  unfolded.gap->in_act = ActDesc{};
  CHECK(cuda::tuning_key(mv2, 1, DType::f16, "gpu") != cuda::tuning_key(unfolded, 1, DType::f16, "gpu"));
  CHECK(cuda::gap_op(mv2).in_act.kind == Act::clip);  // (the stand-alone pool's, where a tactic does not fold it)
  CHECK(rtc::compile(mv2s, "gap_dense_mv2", {"strata_rtc::gap_dense<strata_rtc::f16>"}, 90, dir).cubin.size() > 1000);
  CHECK(rtc::compile(gd::source(eb0, 16), "gap_dense_eb0", {"strata_rtc::gap_dense<strata_rtc::bf16>"}, 90, dir)
            .cubin.size() > 1000);
  try {
    (void)t->prepare(r18, cuda::Variant{"gap_dense", 8, 0, 1}, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
    FAIL("gap_dense fuse 1 was accepted for a head without a batch norm");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find(r18.label) != std::string::npos);
    CHECK(std::string(e.what()).find("fuse 1 applies a batch norm") != std::string::npos);
  }
}

TEST_CASE("a batch norm and the 1x1 conv after it as one kernel (normed_conv): what it claims, the source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_normed");
  // (NVRTC's output does not depend on the device's answers: the run with the Hopper answers
  // preloaded skips the compiles the plain run makes)
  const bool compiles = std::getenv("STRATA_RTC_EXPECT_SM90") == nullptr;
#define CHECK_COMPILES(...) \
  if (compiles) CHECK(__VA_ARGS__)
  cuda::NetDesc n = cuda::NetStorage<models::DenseNet121, DType::f16>::describe();
  cuda::fold_for_per_op_path(n);
  std::vector<const cuda::OpDesc*> normed;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.norm && op.kind == OpKind::conv) {
      normed.push_back(&op);
    }
  }
  // Every dense layer's norm1+relu1+conv1, and the three transitions' norm+relu+conv+pool (the
  // plan keeps each block's concatenation clear of the next one: norm_folds_into_conv).
  REQUIRE(normed.size() == 61);
  // (and norm5 and its ReLU into the head: fold_normed_pooled_dense; not normed_conv's)
  REQUIRE(n.ops.back().norm != nullptr);
  CHECK(n.ops.back().label == "features.norm5+relu+global_avg_pool2+classifier");
  CHECK_FALSE(cuda::find_tactic<DType::f16>("normed_conv")->runs(n.ops.back()));
  {  // normed_head: the batch norm and the pool as one generated kernel (claimed above batch 1), compiled
    const auto* head = cuda::find_tactic<DType::f16>("normed_head");
    REQUIRE(head != nullptr);
    CHECK(head->runs(n.ops.back()));
    const auto claim = head->heuristic(n.ops.back(), 256, std::size_t{1} << 30, {});
    REQUIRE(claim.has_value());
    CHECK(claim->rank == cuda::rank::tailored);
    CHECK_FALSE(head->heuristic(n.ops.back(), 1, std::size_t{1} << 30, {}).has_value());
    CHECK(head->candidates(n.ops.back(), 256, std::size_t{1} << 30, {}).empty());
    CHECK_FALSE(head->runs(*normed.front()));
    CHECK(head->fuses_norm(cuda::Variant{"normed_head"}));
    CHECK(head->fuses_gap(cuda::Variant{"normed_head"}));
    const auto src = head->kernel_sources(n.ops.back(), cuda::Variant{"normed_head"}, cuda::OpIo{});
    REQUIRE(src.size() == 1);
    CHECK(src.front().name == "strata_rtc::normed_head<strata_rtc::f16>");
    CHECK(src.front().source.find("constexpr long long HW = 49;") != std::string::npos);
    CHECK(src.front().source.find("constexpr long long CI = 1024;") != std::string::npos);
    CHECK_COMPILES(rtc::compile(src.front().source, "normed_head",
                       {"strata_rtc::normed_head<strata_rtc::f16>", "strata_rtc::normed_head<strata_rtc::bf16>"}, 90,
                       dir).cubin.size() > 1000);
    CHECK_FALSE(cuda::find_tactic<DType::f32>("normed_head")->applicable(n.ops.back()));
  }
  CHECK(std::count_if(normed.begin(), normed.end(), [](const cuda::OpDesc* o) { return o->pool.has_value(); }) == 3);
  const bool wgmma = cuda::device_arch() == 90;  // (with the Hopper answers preloaded)
  const cuda::OpDesc& first = *normed.front();  // 64 input slots of a 256-slot concat, 56x56
  const cuda::OpDesc& last = *normed.back();    // 992 of 1,024, 7x7
  CHECK(first.label == "features.denseblock1.denselayer1.norm1+relu1+conv1+norm2+relu2");
  CHECK(cuda::norm_main(first).label == "features.denseblock1.denselayer1.conv1+norm2+relu2");
  CHECK(last.conv.cp == 992);
  CHECK(cuda::tactics::normed::source_of(*first.norm).pixel == 256);
  const cuda::Libraries none{};
  const auto* t = cuda::find_tactic<DType::f16>("normed_conv");
  REQUIRE(t != nullptr);
  for (const cuda::OpDesc* op : normed) {
    INFO(op->label);
    CHECK(t->runs(*op));
    CHECK(t->fuses_norm(cuda::Variant{"normed_conv"}));
    // It claims such an op ahead of the libraries (which would run the batch norm as a pass of
    // its own) where 128-pixel blocks fill the GPU twice over: at batch 256 on maps of 14x14 and
    // more, not on block 4's 7x7 (98 blocks). At batch 1 (normed::claimed_single, session 42;
    // on compute capability 9.0 on, where it was measured — here with the Hopper answers
    // preloaded): the transitions as the pass + cuBLASLt (algo 6), the layers of at most 256
    // input slots in the folded form of 64-slot blocks (algo 2, math 3; splitk_conv's fuse 3,
    // claimed first at the same rank, takes those of 256 where clusters are offered); none of
    // longer reductions.
    const std::optional<cuda::Claim> big = t->heuristic(*op, 256, std::size_t{1} << 30, none);
    const std::optional<cuda::Claim> one = t->heuristic(*op, 1, std::size_t{1} << 30, none);
    CHECK(cuda::tactics::normed::claimed_single(*op) == (op->pool.has_value() || op->conv.cp <= 256));
    REQUIRE(one.has_value() == (wgmma && cuda::tactics::normed::claimed_single(*op)));
    if (one) {
      CHECK(one->rank == cuda::rank::joins);
      CHECK(one->variant == (op->pool ? cuda::Variant{"normed_conv", 6, 0, 2} : cuda::Variant{"normed_conv", 2, 3, 0}));
    }
    // (without the workspace for the pooled map at batch 1: a transition unclaimed)
    CHECK(t->heuristic(*op, 1, 0, none).has_value() == (wgmma && !op->pool && op->conv.cp <= 256));
    REQUIRE(big.has_value() == (op->conv.h >= 14));
    const int fuse = op->pool ? 1 : 0;  // (a transition's 2x2 average pool in the epilogue)
    // (a transition's conv has no activation: its average pool may be taken first, fuse 2)
    CHECK(cuda::tactics::normed::pool_first_fits(*op) == op->pool.has_value());
    if (big) {
      CHECK(big->rank == cuda::rank::joins);
      // (the pipelined form, algo 2, without a pool; with one, the pool taken first in 64-pixel blocks)
      // (and without a pool, the ReLU batch norm's scale folded into the filter: math 2)
      // (the transitions of more than 128 output slots, the pool first as a pass, then cuBLASLt: algo 6)
      const bool pass = op->pool && op->conv.kp > 128;
      CHECK(big->variant == (pass ? cuda::Variant{"normed_conv", 6, 0, 2}
                                  : cuda::Variant{"normed_conv", op->pool ? 1 : 2, 2, op->pool ? 2 : 0}));
      // (without the workspace for the pooled map, form 1 again)
      const std::optional<cuda::Claim> small = t->heuristic(*op, 256, std::size_t{4} << 20, none);
      REQUIRE(small.has_value());
      CHECK(small->variant == cuda::Variant{"normed_conv", op->pool ? 1 : 2, 2, op->pool ? 2 : 0});
    }
    // The pass and cuBLASLt (algo 6) offered for a pooled one where the pooled map fits the workspace.
    const std::vector<cuda::Variant> roomy = t->candidates(*op, 256, std::size_t{1} << 30, none);
    CHECK((std::find(roomy.begin(), roomy.end(), cuda::Variant{"normed_conv", 6, 0, 2}) != roomy.end()) ==
          op->pool.has_value());
    CHECK(t->fuses_pool(cuda::Variant{"normed_conv", 0, 0, fuse}) == op->pool.has_value());
    CHECK(t->fuses_pool(cuda::Variant{"normed_conv", 0, 0, 2}));
    CHECK(t->writes_slice(*op) == op->slice.has_value());
    // 128- and 64-pixel blocks, and the pipelined form (its 3-step ring and 64-pixel blocks
    // are forceable only); on sm_90 the warpgroup form too.
    const std::vector<cuda::Variant> offered = t->candidates(*op, 256, 0, none);
    // (and blocks of 64 slots: every op here has 128 or more; the pool taken first in forms 0 and 1)
    // (and algo 2 with the scale folded, math 2, pooled or not)
    CHECK(offered.size() == (wgmma ? 5U : 3U) + (op->pool ? 5U : 2U));
    CHECK(std::find(offered.begin(), offered.end(), cuda::Variant{"normed_conv", 2, 3, fuse}) != offered.end());
    CHECK(cuda::tactics::normed::fold_fits(*op));  // (a ReLU over every input slot)
    CHECK(std::find(offered.begin(), offered.end(), cuda::Variant{"normed_conv", 2, 2, fuse}) != offered.end());
    CHECK((std::find(offered.begin(), offered.end(), cuda::Variant{"normed_conv", 1, 0, 2}) !=
           offered.end()) == op->pool.has_value());
    CHECK((std::find(offered.begin(), offered.end(), cuda::Variant{"normed_conv", 4, 0, fuse}) !=
           offered.end()) == wgmma);
    CHECK((std::find(offered.begin(), offered.end(), cuda::Variant{"normed_conv", 4, 1, fuse}) !=
           offered.end()) == wgmma);
  }
  // Without its batch norm folded (f32, or the conv alone) the tactic does not apply.
  CHECK_FALSE(t->runs(cuda::norm_main(first)));
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv"}, cuda::OpIo{}).size() == 1);
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 2, 1}, cuda::OpIo{}).size() == 1);
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 3, 1}, cuda::OpIo{}).size() == 1);
  // The warpgroup form (algo 4; math 1, blocks of 64 slots) on sm_90 only.
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 4}, cuda::OpIo{}).size() == (wgmma ? 1U : 0U));
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 4, 1}, cuda::OpIo{}).size() == (wgmma ? 1U : 0U));
  if (wgmma) {
    CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 4}, cuda::OpIo{}).front().arch_specific);
  }
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 4, 2}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 5}, cuda::OpIo{}).empty());
  CHECK_THROWS_WITH(cuda::tactics::normed::source(first, 4, 2), doctest::Contains("no math 2"));
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 1, 1}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 2, 4}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 0, 0, 1}, cuda::OpIo{}).empty());
  CHECK_THROWS_WITH(cuda::tactics::normed::source(first, 6), doctest::Contains("no form 6"));
  CHECK_THROWS_WITH(cuda::tactics::normed::source(first, 5), doctest::Contains("no math 0"));
  CHECK_THROWS_WITH(cuda::tactics::normed::source(first, 0, 1), doctest::Contains("no math 1"));
  // The pipelined form's rings: 4 steps of 32 slots (two blocks an SM), 3 of 64.
  CHECK(cuda::tactics::normed::source(first, 2).find("(pipelined: 4 steps of 32 slots in flight)") != std::string::npos);
  CHECK(cuda::tactics::normed::source(first, 2, 1).find("(pipelined: 3 steps of 64 slots in flight)") != std::string::npos);
  CHECK(cuda::tactics::normed::source(first, 4).find("(a ring of 4 steps of 32 slots, 2 copied ahead)") != std::string::npos);
  // (992 input slots: 31 steps of 32, 16 of 64; 8 bytes a slot for the scale and shift)
  CHECK(cuda::tactics::normed::plan(last, 2).shared == 4 * 256 * 40 * 2 + 992 * 8);
  CHECK(cuda::tactics::normed::plan(last, 2, 1).shared == 3 * 256 * 72 * 2 + 1024 * 8);
  CHECK(cuda::tactics::normed::plan(last, 3).shared == 4 * (64 + 128) * 40 * 2 + 992 * 8);  // 64-pixel blocks
  // (the warpgroup form: the filter slice's rows unpadded, as core matrices)
  CHECK(cuda::tactics::normed::plan(last, 4).shared == 4 * (128 * 40 + 128 * 32) * 2 + 992 * 8);
  CHECK(cuda::tactics::normed::plan(last, 4, 1).shared == 4 * (128 * 40 + 64 * 32) * 2 + 992 * 8);
  CHECK(cuda::tactics::normed::plan(last, 4, 1).n_blocks == 2);
  CHECK(cuda::tactics::normed::source(last, 4).find("(wgmma)") != std::string::npos);
  const cuda::OpDesc& transition = **std::find_if(normed.begin(), normed.end(),
                                                   [](const cuda::OpDesc* o) { return o->pool.has_value(); });
  CHECK(transition.label == "features.transition1.norm+relu+conv+features.transition1.pool");
  CHECK(transition.conv.cp == 256);  // block 1's 256 channels on 56x56
  CHECK(transition.slice.has_value());  // the next block's first channels
  CHECK(t->kernel_sources(transition, cuda::Variant{"normed_conv"}, cuda::OpIo{}).empty());
  // The pool taken first (fuse 2): forms 0 and 1 only, an average pool after a conv without an
  // activation; the kernel's rows are the pooled pixels (blocks a quarter as many).
  CHECK(t->kernel_sources(transition, cuda::Variant{"normed_conv", 0, 0, 2}, cuda::OpIo{}).size() == 1);
  CHECK(t->kernel_sources(transition, cuda::Variant{"normed_conv", 2, 0, 2}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 0, 0, 2}, cuda::OpIo{}).empty());
  CHECK_THROWS_WITH(cuda::tactics::normed::source(transition, 2, 0, true), doctest::Contains("not in form 2"));
  // Algo 5: the pool taken first on the pipelined ring (folded math 2 and fuse 2 only; forceable,
  // not offered): 64 pooled pixels a block, 3 steps of the window's four planes and the filter.
  CHECK(t->kernel_sources(transition, cuda::Variant{"normed_conv", 5, 2, 2}, cuda::OpIo{}).size() == 1);
  CHECK(t->kernel_sources(transition, cuda::Variant{"normed_conv", 5, 2, 1}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(transition, cuda::Variant{"normed_conv", 5, 0, 2}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 5, 2}, cuda::OpIo{}).empty());
  CHECK_THROWS_WITH(cuda::tactics::normed::source(transition, 5, 2), doctest::Contains("form 5 takes the pool first"));
  CHECK(cuda::tactics::normed::plan(transition, 5, 2).bm == 64);
  CHECK(cuda::tactics::normed::plan(transition, 5, 2).shared == 3 * (4 * 64 + 128) * 40 * 2 + 256 * 8);
  {
    const std::string pp = cuda::tactics::normed::source(transition, 5, 2, true);
    CHECK(pp.find("(pipelined: 3 steps of 32 slots in flight) (2x2 average pool, taken on the input)") != std::string::npos);
    CHECK(pp.find("sts16_at(sa + adst[v], fold_vector<T, NA, 4>(q, nh + (k >> 1)));") != std::string::npos);
    // (the pairs staged by other threads, read by the first step's conversion before its barrier:
    // a barrier after staging them — found missing by a review)
    CHECK(pp.find("__syncthreads();  // the scale and shift pairs in") < pp.find("fold_vector<T, NA, 4>(q,"));
    // (under a programmatic dependent launch: the filter's first steps before the wait, the
    // window's input after it, as the other ring forms)
    const std::string body = pp.substr(pp.rfind("__global__"));
    const std::size_t wait = check_early_work(body, "    load_filter(s);", "    load_stage(s, false);");
    CHECK(wait < body.find("fold_vector<T, NA, 4>(q,"));
    CHECK_COMPILES(rtc::compile(pp, "normed_conv_pool_pipe",
                       {"strata_rtc::normed_conv<strata_rtc::f16>", "strata_rtc::normed_conv<strata_rtc::bf16>"}, 90,
                       dir).cubin.size() > 1000);
  }
  // Algo 6: the pool taken first as a pass into the workspace, then cuBLASLt (math 0, fuse 2 only;
  // the pass is the one generated kernel).
  CHECK(cuda::tactics::normed::pass_gemm_fits(transition));
  CHECK_FALSE(cuda::tactics::normed::pass_gemm_fits(first));
  CHECK(t->kernel_sources(transition, cuda::Variant{"normed_conv", 6, 0, 2}, cuda::OpIo{}).size() == 1);
  CHECK(t->kernel_sources(transition, cuda::Variant{"normed_conv", 6, 0, 1}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(transition, cuda::Variant{"normed_conv", 6, 2, 2}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 6}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 6, 0, 2}, cuda::OpIo{}).empty());
  CHECK_THROWS_WITH(cuda::tactics::normed::pool_pass_source(first), doctest::Contains("algo 6 takes a 2x2 average pool"));
  {
    const std::string pass = cuda::tactics::normed::pool_pass_source(transition);
    // (256 channels over 256 slots: a vector's scales and shifts in 16-byte loads; the ReLU fixed)
    CHECK(pass.find("constexpr long long CI = 256;") != std::string::npos);
    CHECK(pass.find("constexpr long long C = 256;") != std::string::npos);
    CHECK(pass.find("normed_stored<T, NA>(norm_act, load(h), sc0, sf0)") != std::string::npos);
    CHECK(pass.find("vector_factors<C, CI>(scale, shift, k, sc, sf);") != std::string::npos);
    CHECK_COMPILES(rtc::compile(pass, "normed_conv_pass",
                       {"strata_rtc::normed_conv<strata_rtc::f16>", "strata_rtc::normed_conv<strata_rtc::bf16>"}, 90,
                       dir).cubin.size() > 1000);
    cuda::OpDesc sliced = transition;  // (pixels not evenly spaced across images: not as one matrix)
    sliced.slice->strides.image += 8;
    CHECK_FALSE(cuda::tactics::normed::pass_gemm_fits(sliced));
    CHECK(t->kernel_sources(sliced, cuda::Variant{"normed_conv", 6, 0, 2}, cuda::OpIo{}).empty());
  }
  {
    cuda::OpDesc activated = transition;  // (an activation after the conv: the pool does not commute)
    activated.act = ActDesc{Act::relu, 0.0f, 0.0f};
    CHECK_FALSE(cuda::tactics::normed::pool_first_fits(activated));
    CHECK(cuda::tactics::normed::pool_fits(activated));
  }
  // The folded form (algo 2, math 2): the sources, the factors.
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 2, 2}, cuda::OpIo{}).size() == 1);
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 0, 2}, cuda::OpIo{}).size() == 1);
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 3, 2}, cuda::OpIo{}).empty());
  CHECK(cuda::tactics::normed::plan(last, 2, 3).bn == 64);
  CHECK(cuda::tactics::normed::plan(last, 2, 3).n_blocks == 2);
  CHECK(cuda::tactics::normed::plan(last, 2, 2).n_blocks == 1);
  CHECK(t->kernel_sources(first, cuda::Variant{"normed_conv", 0, 3}, cuda::OpIo{}).empty());
  CHECK_COMPILES(rtc::compile(cuda::tactics::normed::source(last, 2, 3), "normed_conv_fold64",
                     {"strata_rtc::normed_conv<strata_rtc::f16>", "strata_rtc::normed_conv<strata_rtc::bf16>"}, 90,
                     dir).cubin.size() > 1000);
  for (const cuda::OpDesc* op : {&first, &last}) {
    const std::string folded = cuda::tactics::normed::source(*op, 2, 2);
    CHECK(folded.find("(the batch norm's scale folded into the filter)") != std::string::npos);
    CHECK(folded.find("fold2<T, NA>(af[i][0], lo.x, lo.y)") != std::string::npos);
    // (its copies and ldmatrix by 32-bit shared address, a thread's places worked out once)
    CHECK(folded.find("cp_async16_at(st + adst[v]") != std::string::npos);
    CHECK(folded.find("ldsm4_at(af[i][0]") != std::string::npos);
    CHECK_COMPILES(rtc::compile(folded, "normed_conv_fold",
                       {"strata_rtc::normed_conv<strata_rtc::f16>", "strata_rtc::normed_conv<strata_rtc::bf16>"}, 90,
                       dir).cubin.size() > 1000);
  }
  {
    cuda::OpDesc six = first;  // (a ReLU6 does not fold: its bound would move with the scale)
    auto bn6 = std::make_shared<cuda::OpDesc>(*first.norm);
    bn6->act = ActDesc{Act::clip, 0.0f, 6.0f};
    six.norm = bn6;
    CHECK_FALSE(cuda::tactics::normed::fold_fits(six));
    CHECK_THROWS_WITH(cuda::tactics::normed::source(six, 2, 2), doctest::Contains("folded form"));
  }
  {
    // Two output rows of three channels: scales 0.5, -2, 0 and shifts 1, 3, 4 (a zero scale: the
    // constant through α = |f| / 2^14), then a shift 2^16 times the scale (α = |f| / 2^14).
    namespace nm = cuda::tactics::normed;
    const nm::Folded f = nm::fold_scale({1, 2, 3, 4, 5, 6}, 2, 3, {0.5f, -2.0f, 0.0f}, {1.0f, 3.0f, 4.0f}, 65504.0f, "t");
    CHECK(f.beta == std::vector<float>{1.0f, -1.0f, 0.0f});
    CHECK(f.gamma == std::vector<float>{2.0f, 1.5f, 16384.0f});
    CHECK(f.filter == std::vector<float>{0.5f, 4.0f, 3.0f * 0x1p-12f, 2.0f, 10.0f, 6.0f * 0x1p-12f});
    // relu(x s + f) = α relu(x β + γ) for x = -1, 0.25, 3 on each channel
    const std::vector<float> s{0.5f, -2.0f, 0.0f}, sh{1.0f, 3.0f, 4.0f}, a{0.5f, 2.0f, 0x1p-12f};
    for (int c = 0; c < 3; ++c) {
      for (const float x : {-1.0f, 0.25f, 3.0f}) {
        CHECK(std::max(0.0f, x * s[c] + sh[c]) == doctest::Approx(a[c] * std::max(0.0f, x * f.beta[c] + f.gamma[c])));
      }
    }
    const nm::Folded g = nm::fold_scale({1, 1}, 1, 2, {1e-3f, 1.0f}, {65.536f, 0.0f}, 65504.0f, "t");
    CHECK(g.gamma[0] == 16384.0f);
    CHECK(g.beta[0] == doctest::Approx(0.25f));
    CHECK_THROWS_WITH(nm::fold_scale({1e4f}, 1, 1, {100.0f}, {0.0f}, 65504.0f, "layer x"),
                      doctest::Contains("layer x"));
  }
  // (folded, with the pool taken first: the window's four fma'd and summed in T)
  const std::string folded_first = cuda::tactics::normed::source(transition, 1, 2, true);
  CHECK(folded_first.find("constexpr long long FOLDED = 1;") != std::string::npos);
  CHECK_COMPILES(rtc::compile(folded_first, "normed_conv_fold_pf",
                     {"strata_rtc::normed_conv<strata_rtc::f16>", "strata_rtc::normed_conv<strata_rtc::bf16>"}, 90,
                     dir).cubin.size() > 1000);
  // (and for sm_80: its packed bf16 arithmetic is fma only)
  CHECK_COMPILES(rtc::compile(folded_first, "normed_conv_fold_pf80", {"strata_rtc::normed_conv<strata_rtc::bf16>"}, 80,
                              dir).cubin.size() > 1000);
  const std::string first_pooled = cuda::tactics::normed::source(transition, 0, 0, true);
  CHECK(first_pooled.find("(2x2 average pool, taken on the input)") != std::string::npos);
  CHECK(first_pooled.find("constexpr long long PF = 1;") != std::string::npos);
  CHECK(first_pooled.find("constexpr long long POOL = 0;") != std::string::npos);
  CHECK_COMPILES(rtc::compile(first_pooled, "normed_conv_pf",
                     {"strata_rtc::normed_conv<strata_rtc::f16>", "strata_rtc::normed_conv<strata_rtc::bf16>"}, 90,
                     dir).cubin.size() > 1000);
  // Forms 0 and 2 (the claimed ones) for the three shapes, the others for the first (each
  // NVRTC compile is a second or two of CI's time, and this suite runs twice).
  for (const cuda::OpDesc* op : {&first, &last, &transition}) {
    for (const auto& [algo, math] : {std::pair{0, 0}, {2, 0}, {1, 0}, {2, 1}, {3, 0}, {3, 1}}) {
      if (op != &first && algo != 0 && !(algo == 2 && math == 0)) {
        continue;
      }
      const std::string src = cuda::tactics::normed::source(*op, algo, math);
      const std::vector<std::string> names{"strata_rtc::normed_conv<strata_rtc::f16>",
                                           "strata_rtc::normed_conv<strata_rtc::bf16>"};
      CHECK_COMPILES(rtc::compile(src, "normed_conv", names, 90, dir).cubin.size() > 1000);
    }
    // The warpgroup form, for sm_90a (both types: wgmma's f16 and bf16 statements).
    const std::vector<std::string> names{"strata_rtc::normed_conv<strata_rtc::f16>",
                                         "strata_rtc::normed_conv<strata_rtc::bf16>"};
    CHECK_COMPILES(rtc::compile(cuda::tactics::normed::source(*op, 4), "normed_conv_wg", names, 90, dir, true)
              .cubin.size() > 1000);
    if (op == &last) {  // (blocks of 64 slots: m64n64 MMAs)
      CHECK_COMPILES(rtc::compile(cuda::tactics::normed::source(*op, 4, 1), "normed_conv_wg64", names, 90, dir, true)
                .cubin.size() > 1000);
    }
  }
  for (const int algo : {0, 2}) {
    CHECK_COMPILES(rtc::compile(cuda::tactics::normed::source(first, algo), "normed_conv80",
                       {"strata_rtc::normed_conv<strata_rtc::f16>"}, 80, dir).cubin.size() > 1000);
  }
}
#undef CHECK_COMPILES

TEST_CASE("halo_conv: which convs it runs, the tiles it takes, the source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_halo");
  cuda::NetDesc n = cuda::NetStorage<models::DenseNet121, DType::f16>::describe();
  cuda::fold_for_per_op_path(n);
  const auto* t = cuda::find_tactic<DType::f16>("halo_conv");
  REQUIRE(t != nullptr);
  const cuda::Libraries none{};
  std::vector<const cuda::OpDesc*> three;
  for (const cuda::OpDesc& op : n.ops) {
    INFO(op.label);
    const bool is3 = op.kind == OpKind::conv && op.conv.kh == 3;
    // DenseNet's 58 3x3 convs, each writing its concat slice; not the 7x7/2 stem, the 1x1 convs
    // (a batch norm folded in) or the transitions' (a pool fused).
    CHECK(t->runs(op) == is3);
    if (is3) {
      three.push_back(&op);
      CHECK(t->writes_slice(op));
      // the mma.sync form in 8 warps and in 16 (math 1), by row segments (algo 2); with them the
      // warpgroup form (algo 1) where the GPU is an sm_90
      const auto offered = t->candidates(op, 256, 0, none);
      REQUIRE(offered.size() == (cuda::device_arch() == 90 ? 4u : 3u));
      CHECK(offered[0] == cuda::Variant{"halo_conv"});
      CHECK(offered[1] == cuda::Variant{"halo_conv", 0, 1});
      CHECK(offered[2] == cuda::Variant{"halo_conv", 2});
      CHECK(offered.back().algo == (cuda::device_arch() == 90 ? 1 : 2));
      // Claimed (ahead of cuDNN + the copy into the slice) where the batch gives 128 tiles or
      // more: at batch 256 on the 56x56, 28x28 and 14x14 maps, not on the 7x7 (52 tiles of 5
      // images); not at batch 1.
      const auto claim = t->heuristic(op, 256, std::size_t{1} << 30, none);
      CHECK(claim.has_value() == (op.conv.h >= 14));
      if (claim) {  // (the row-segment form since session 36)
        CHECK(claim->rank == cuda::rank::tailored);
        CHECK(claim->variant == cuda::Variant{"halo_conv", 2});
      }
      CHECK_FALSE(t->heuristic(op, 1, std::size_t{1} << 30, none).has_value());
    }
  }
  REQUIRE(three.size() == 58);
  // Not claimed where the conv writes no concat slice (ResNet-18's layer1 3x3 64 -> 64 convs at
  // batch 256 fit the kernel, and cuDNN's fused conv ran them faster); offered to measured tuning.
  {
    cuda::NetDesc r = cuda::NetStorage<models::ResNet18, DType::f16>::describe();
    cuda::fold_for_per_op_path(r);
    const auto conv = std::find_if(r.ops.begin(), r.ops.end(),
                                   [](const cuda::OpDesc& op) { return op.label == "layer1.0.conv1+bn1+relu"; });
    REQUIRE(conv != r.ops.end());
    CHECK(t->runs(*conv));
    CHECK_FALSE(conv->slice.has_value());
    CHECK_FALSE(t->heuristic(*conv, 256, std::size_t{1} << 30, none).has_value());
    CHECK_FALSE(t->candidates(*conv, 256, 0, none).empty());
  }
  namespace h = cuda::tactics::halo;
  // 56x56: tiles of 8 rows (28 m-tiles, 4 a warp; a halo of 10 x 58 pixels); 28x28: 14 rows;
  // 14x14: 2 whole images; 7x7: 5 whole images. Each within the 227 KiB a block may take.
  const h::Tile t56 = h::choose(*three.front());
  CHECK((t56.g == 1 && t56.tr == 8 && t56.mt == 28 && t56.per_warp == 4 && t56.hr == 10 && t56.hc == 58));
  CHECK(t56.shared == 9 * 32 * 136 * 2 + 3 * 10 * 58 * 40 * 2);
  const h::Tile t7 = h::choose(*three.back());
  CHECK((t7.g == 5 && t7.tr == 7 && t7.hr == 45 && t7.hc == 9));
  for (const cuda::OpDesc* op : three) {
    CHECK(h::choose(*op).shared <= h::max_shared);
    CHECK(h::choose(*op, h::wide_math).shared <= h::max_shared);
  }
  // The 16-warp form (math 1): 56x56 in the same 8-row tiles, 2 m-tiles a warp (28 over 16).
  const h::Tile x56 = h::choose(*three.front(), h::wide_math);
  CHECK((x56.warps == 16 && x56.g == 1 && x56.tr == 8 && x56.mt == 28 && x56.per_warp == 2));
  CHECK(h::threads_of(h::wide_math) == 512);
  CHECK(h::threads_of(0) == 256);
  // The row-segment form (algo 2): units of 8 x 8 outputs, 8-column strips; 56x56 in 8-row tiles
  // (7 strips: 7 units), 28x28 in 14 rows (4 strips x 2 row groups), 14x14 two whole images (2 x 2
  // each), 7x7 seven images (one unit each). A ring stage reaches past the halo where a unit's
  // strips or rows do (the last ones read what lies after it; never written).
  {
    const auto by_side = [&](int side) {
      return h::seg::choose(**std::find_if(three.begin(), three.end(),
                                            [&](const cuda::OpDesc* op) { return op->conv.h == side; }));
    };
    const h::seg::Tile s56 = by_side(56);
    CHECK((s56.g == 1 && s56.tr == 8 && s56.rg == 1 && s56.sw == 7 && s56.units == 7 && s56.per_warp == 1));
    CHECK((s56.hr == 10 && s56.hc == 58 && s56.stage == (10 * 58 * 40 * 2 + 127) / 128 * 128));
    const h::seg::Tile s28 = by_side(28);
    CHECK((s28.g == 1 && s28.tr == 14 && s28.rg == 2 && s28.sw == 4 && s28.units == 8));
    // its last unit reads rows 16 + 1 and columns 32 + 1 of a 16 x 30 halo
    CHECK(s28.stage == ((std::int64_t{17} * 30 + 33) * 40 * 2 + 48 + 16 + 127) / 128 * 128);
    const h::seg::Tile s14 = by_side(14);
    CHECK((s14.g == 2 && s14.tr == 14 && s14.units == 8 && s14.hr == 32 && s14.hc == 16));
    const h::seg::Tile s7 = by_side(7);
    CHECK((s7.g == 7 && s7.tr == 7 && s7.units == 7 && s7.hr == 63 && s7.hc == 9));
    for (const cuda::OpDesc* op : three) {
      CHECK(h::seg::fits(*op));
      CHECK(h::seg::choose(*op).shared <= h::max_shared);
    }
  }
  // The warpgroup form's tiles: 8 x 8 output patches (a last one overlapping where 8 does not
  // divide the side; one reaching past a 7x7 map), a ring of 4 stages of 4 planes of 8 channels,
  // 16 bytes a halo pixel: 56x56 in 8 rows (7 patches), 28x28 in 14 (2 x 4), 14x14 two whole
  // images (2 x 2 each), 7x7 seven images (one each; the last one's patch reads 10 pixels of
  // slack after the halo).
  const h::wg::Tile w56 = h::wg::choose(*three.front());
  CHECK((w56.g == 1 && w56.tr == 8 && w56.patches == 7 && w56.per_wg == 4 && w56.stages == 4));
  CHECK(w56.plane == (10 * 58 * 16 + 127) / 128 * 128);
  CHECK(w56.shared == 9 * 32 * 128 * 2 + 4 * 4 * w56.plane);
  CHECK(h::wg::origins(56) == std::vector<int>{0, 8, 16, 24, 32, 40, 48});
  CHECK(h::wg::origins(28) == std::vector<int>{0, 8, 16, 20});
  CHECK(h::wg::origins(7) == std::vector<int>{0});
  const auto by_side = [&](int side) {
    return h::wg::choose(**std::find_if(three.begin(), three.end(),
                                         [&](const cuda::OpDesc* op) { return op->conv.h == side; }));
  };
  const h::wg::Tile w28 = by_side(28);
  CHECK((w28.g == 1 && w28.tr == 14 && w28.rows == 2 && w28.cols == 4 && w28.patches == 8));
  const h::wg::Tile w14 = by_side(14);
  CHECK((w14.g == 2 && w14.tr == 14 && w14.patches == 8));
  const h::wg::Tile w7 = h::wg::choose(*three.back());
  CHECK((w7.g == 7 && w7.tr == 7 && w7.patches == 7 && w7.hr == 63 && w7.hc == 9));
  CHECK(w7.plane == ((63 * 9 + 9 + 1) * 16 + 127) / 128 * 128);
  for (const cuda::OpDesc* op : three) {
    CHECK(h::wg::fits(*op));
    CHECK(h::wg::choose(*op).shared <= h::max_shared);
  }
  // Its two forms; the warpgroup one only where the GPU is an sm_90; a third is refused.
  CHECK(t->kernel_sources(*three.front(), cuda::Variant{"halo_conv"}, cuda::OpIo{}).size() == 1);
  CHECK(t->kernel_sources(*three.front(), cuda::Variant{"halo_conv", 1}, cuda::OpIo{}).size() ==
        (cuda::device_arch() == 90 ? 1u : 0u));
  CHECK(t->kernel_sources(*three.front(), cuda::Variant{"halo_conv", 0, 1}, cuda::OpIo{}).size() == 1);
  CHECK(t->kernel_sources(*three.front(), cuda::Variant{"halo_conv", 2}, cuda::OpIo{}).size() == 1);
  CHECK(t->kernel_sources(*three.front(), cuda::Variant{"halo_conv", 3}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(*three.front(), cuda::Variant{"halo_conv", 2, 1}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(*three.front(), cuda::Variant{"halo_conv", 0, 2}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(*three.front(), cuda::Variant{"halo_conv", 1, 1}, cuda::OpIo{}).empty());
  // A stride-2 conv, or one whose map shrinks, is not its shape.
  cuda::OpDesc strided = *three.front();
  strided.conv.sh = strided.conv.sw = 2;
  CHECK_FALSE(t->runs(strided));
  cuda::OpDesc unpadded = *three.front();
  unpadded.conv.ph = unpadded.conv.pw = 0;
  CHECK_FALSE(t->runs(unpadded));
  CHECK_THROWS_WITH(h::source(strided), doctest::Contains("is not a stride-1, size-keeping conv"));
  const std::vector<std::string> names{"strata_rtc::halo_conv<strata_rtc::f16>",
                                       "strata_rtc::halo_conv<strata_rtc::bf16>"};
  CHECK(rtc::compile(h::source(*three.front()), "halo_conv", names, 90, dir).cubin.size() > 1000);
  CHECK(rtc::compile(h::source(*three.back()), "halo_conv7", {names[0]}, 80, dir).cubin.size() > 1000);
  {
    // The 16-warp form: blocks of 512 threads, its warps' m-tiles 16 apart.
    const std::string wide = h::source(*three.front(), h::wide_math);
    CHECK(wide.find("__launch_bounds__(512, 1)") != std::string::npos);
    CHECK(wide.find("constexpr long long WARPS = 16;") != std::string::npos);
    CHECK(rtc::compile(wide, "halo_conv_wide", names, 90, dir).cubin.size() > 1000);
  }
  // The row-segment form on each map size (and for sm_80: mma.sync and ldmatrix only).
  for (int side : {56, 28, 14, 7}) {
    const cuda::OpDesc& op = **std::find_if(three.begin(), three.end(),
                                            [&](const cuda::OpDesc* o) { return o->conv.h == side; });
    CHECK(rtc::compile(h::seg::source(op), "halo_seg" + std::to_string(side), names, side == 7 ? 80 : 90, dir)
              .cubin.size() > 1000);
  }
  // The warpgroup form compiles for sm_90a (wgmma), both element types, on each map size.
  for (int side : {56, 28, 14, 7}) {
    const cuda::OpDesc& op = **std::find_if(three.begin(), three.end(),
                                            [&](const cuda::OpDesc* o) { return o->conv.h == side; });
    CHECK(rtc::compile(h::wg::source(op), "halo_conv_wg" + std::to_string(side), names, 90, dir, true)
              .cubin.size() > 1000);
  }
  CHECK_THROWS_WITH(h::wg::source(strided), doctest::Contains("that the warpgroup form runs"));
}

TEST_CASE("plane_conv: which convs it runs, the tiles it takes, the claim, the source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_plane");
  namespace pl = cuda::tactics::plane;
  cuda::NetDesc r = cuda::NetStorage<models::ResNet18, DType::f16>::describe();
  cuda::fold_for_per_op_path(r);
  // Its shape in ResNet-18: layer1's four 3x3 64 -> 64 convs (the second of each block with the
  // residual added); not the stem, the strided convs or those of 128 channels and more.
  std::vector<const cuda::OpDesc*> fit;
  for (const cuda::OpDesc& op : r.ops) {
    if (pl::shape_fits(op)) {
      fit.push_back(&op);
    }
  }
  REQUIRE(fit.size() == 4);
  CHECK(fit[0]->label == "layer1.0.conv1+bn1+relu");
  CHECK(fit[1]->label == "layer1.0.conv2+bn2+add+relu");
  CHECK_FALSE(fit[0]->has_residual);
  CHECK(fit[1]->has_residual);
  // The pipelined form's tile (worked by hand): 2 output rows a warpgroup, 58 + 56 = 114 columns
  // -> 120; a patch of 6 x 58 = 348 pixels, the last column (239) reading up to pixel 239 + 2 x 58
  // + 2 = 357 -> a plane of 361 pixels (1 mod 8); 8 planes x 361 x 16 = 46,208 bytes a buffer
  // (more than its 240 staged outputs x 144); the filter 64 x 36 k-steps x 32 bytes = 73,728;
  // three buffers; 14 tiles an image.
  const pl::Tile p = pl::choose(*fit[0]);
  CHECK((p.rw == 2 && p.tr == 4 && p.ic == 58 && p.pr == 6 && p.nwg == 120 && p.plane == 361 && p.tpi == 14));
  CHECK(p.buffer == 46208);
  CHECK(p.shared == 73728 + 3 * 46208);
  // 3 rows a warpgroup: 176 columns, but three buffers of its patch (8 planes x 473 pixels) would
  // take 255,360 bytes, past the 227 KiB a block may have.
  CHECK(pl::make(fit[0]->conv, 3, 0).nwg == 176);
  CHECK(pl::make(fit[0]->conv, 3, 0).shared == 73728 + 3 * 8 * 473 * 16);
  CHECK(pl::make(fit[0]->conv, 3, 0).shared > pl::max_shared);
  // The serial form's (two buffers): 4 rows a warpgroup, 3 x 58 + 56 = 230 -> 232 columns; 10 x 58
  // pixels, the last column (463) reading up to 463 + 118 = 581 -> 585; 8 x 585 x 16 = 74,880; 7
  // tiles an image. 5 rows would take 288 columns, past wgmma's 256.
  const pl::Tile s = pl::choose(*fit[0], pl::serial_math);
  CHECK((s.rw == 4 && s.tr == 8 && s.nwg == 232 && s.plane == 585 && s.tpi == 7));
  CHECK(s.buffer == 74880);
  CHECK(s.shared == 73728 + 2 * 74880);
  CHECK(pl::make(fit[0]->conv, 5, pl::serial_math).nwg > pl::max_n);
  CHECK(pl::tiles(*fit[0], 256) == 3584);
  CHECK(pl::tiles(*fit[0], 256, pl::serial_math) == 1792);
  // The serial form with the residual staged (math 2): each buffer the patch's planes, then the
  // tile's rows of the residual (4 x 56 pixels x 128 bytes = 28,672) from 46,208 bytes on; two
  // buffers of 4-row tiles fit (223,488 bytes), of 6 rows not (2 x (60,544 + 43,008) + 73,728).
  const pl::Tile z = pl::choose(*fit[1], pl::staged_math);
  CHECK((z.rw == 2 && z.tr == 4 && z.nwg == 120 && z.zoff == 46208 && z.buffer == 46208 + 28672));
  CHECK(z.shared == 73728 + 2 * (46208 + 28672));
  CHECK(pl::make(fit[1]->conv, 3, pl::staged_math).shared == 73728 + 2 * (60544 + 43008));
  // The warp-specialized form (math 3): a warpgroup's own tiles of 4 rows, 3 x 58 + 56 = 230 ->
  // 232 columns; its last column (231) reads up to pixel 231 + 116 + 2 = 349, past the patch's 348
  // -> a plane of 353; 8 x 353 x 16 = 45,184 bytes a buffer; three buffers, then 64 bytes of
  // mbarriers; 14 tiles an image (5 rows would take 288 columns).
  const pl::Tile ws = pl::choose(*fit[1], pl::specialized_math);
  CHECK((ws.rw == 4 && ws.tr == 4 && ws.nwg == 232 && ws.plane == 353 && ws.tpi == 14));
  CHECK(ws.buffer == 45184);
  CHECK(ws.shared == 73728 + 3 * 45184 + 64);
  CHECK(pl::make(fit[1]->conv, 5, pl::specialized_math).nwg > pl::max_n);
  CHECK(pl::tiles(*fit[1], 256, pl::specialized_math) == 3584);
  CHECK(pl::block_threads(pl::specialized_math) == 384);
  CHECK(ws.nb == 3);
  // ... over four buffers (algo 1): 3-row tiles, 2 x 58 + 56 = 172 -> 176 columns, reaching pixel
  // 175 + 118 = 293 of a 290-pixel patch -> a plane of 297; 8 x 297 x 16 = 38,016 bytes; 19 tiles
  // an image (4-row tiles' four buffers would take 254,528 bytes).
  const pl::Tile w4 = pl::choose(*fit[1], pl::specialized_math, 1);
  CHECK((w4.rw == 3 && w4.tr == 3 && w4.nwg == 176 && w4.plane == 297 && w4.tpi == 19 && w4.nb == 4));
  CHECK(w4.shared == 73728 + 4 * 38016 + 64);
  CHECK(pl::make(fit[1]->conv, 4, pl::specialized_math, 1).shared == 73728 + 4 * 45184 + 64);
  CHECK(pl::block_threads(0) == 256);
  // The two warpgroups' columns cover the tile's last stored output at every tile height and map
  // width (a review found the second warpgroup starting inside a row and the last row's last
  // outputs computed by neither): 12x12 in 6-row tiles takes 48 columns a warpgroup, (5 x 14 + 12
  // + 1) / 2 = 41 -> 48, where 3 rows' own, 2 x 14 + 12 = 40, would leave 2 outputs out; each
  // plane holds every pixel the last column reads; the pipelined form stays within 128 columns.
  for (int side : {7, 12, 21, 28, 36, 56}) {
    cuda::ConvGeom g = fit[0]->conv;
    g.h = g.w = g.oh = g.ow = side;
    for (int rw = 1; rw <= 8; ++rw) {
      for (int math : {0, pl::serial_math, pl::specialized_math}) {
        const pl::Tile m = pl::make(g, rw, math);
        const int wgs = math == pl::specialized_math ? 1 : 2;  // warpgroups a tile
        INFO(side << "x" << side << ", " << rw << " rows a warpgroup, math " << math);
        CHECK(m.tr == wgs * rw);
        CHECK(wgs * m.nwg >= (m.tr - 1) * m.ic + g.ow);
        CHECK(m.plane >= wgs * m.nwg + (g.kh - 1) * m.ic + g.kw - 1);
      }
    }
    cuda::OpDesc o = *fit[0];
    o.conv = g;
    CHECK(pl::choose(o).nwg <= pl::pipelined_max_n);
  }
  {
    cuda::ConvGeom g12 = fit[0]->conv;
    g12.h = g12.w = g12.oh = g12.ow = 12;
    CHECK(pl::make(g12, 3, pl::serial_math).nwg == 48);
  }
  // A strided conv, one that shrinks its map, or one into 128 slots is not its shape.
  cuda::OpDesc strided = *fit[0];
  strided.conv.sh = strided.conv.sw = 2;
  CHECK_FALSE(pl::shape_fits(strided));
  cuda::OpDesc unpadded = *fit[0];
  unpadded.conv.ph = unpadded.conv.pw = 0;
  CHECK_FALSE(pl::shape_fits(unpadded));
  cuda::OpDesc wide = *fit[0];
  wide.conv.k = wide.conv.kp = wide.conv.kd = 128;
  CHECK_FALSE(pl::shape_fits(wide));
  CHECK_THROWS_WITH(pl::source(strided), doctest::Contains("is not a stride-1, size-keeping conv of 64 output slots"));
  // Which convs it runs and claims: wgmma, so on a GPU of compute capability 9.0 only. Claimed
  // (the warp-specialized form, ahead of the libraries) on all four at batch 256 (3,584 tiles),
  // not at 128 (1,792); offered in its pipelined, serial and warp-specialized forms; its other
  // variants refused.
  const auto* t = cuda::find_tactic<DType::f16>("plane_conv");
  REQUIRE(t != nullptr);
  const cuda::Libraries none{};
  if (cuda::device_arch() == 90) {
    for (const cuda::OpDesc* op : fit) {
      INFO(op->label);
      CHECK(t->runs(*op));
      CHECK(t->candidates(*op, 256, 0, none) ==
            std::vector<cuda::Variant>{cuda::Variant{"plane_conv"}, cuda::Variant{"plane_conv", 0, pl::serial_math},
                                       cuda::Variant{"plane_conv", 0, pl::specialized_math}});
      const auto claim = t->heuristic(*op, 256, 0, none);
      CHECK(claim.has_value());  // (with the residual add or without)
      if (claim) {
        CHECK(claim->variant == cuda::Variant{"plane_conv", 0, pl::specialized_math});
        CHECK(claim->rank == cuda::rank::tailored);
      }
      CHECK_FALSE(t->heuristic(*op, 128, 0, none).has_value());
      // timed by measured tuning from 512 tiles (batch 37 on 56x56 maps), not at batch 1
      CHECK(t->timed(*op, 37));
      CHECK_FALSE(t->timed(*op, 36));
      CHECK_FALSE(t->timed(*op, 1));
    }
    // ResNet-50's layer1: its three 3x3 convs claimed at batch 256; its 1x1 convs of 64 output
    // channels offered, not claimed (not timed).
    cuda::NetDesc r50 = cuda::NetStorage<models::ResNet50, DType::f16>::describe();
    cuda::fold_for_per_op_path(r50);
    int claimed = 0;
    int offered = 0;
    for (const cuda::OpDesc& op : r50.ops) {
      if (t->runs(op)) {
        ++offered;
        claimed += t->heuristic(op, 256, 0, none).has_value() ? 1 : 0;
        CHECK(t->heuristic(op, 256, 0, none).has_value() == (op.conv.kh == 3));
      }
    }
    CHECK(offered == 6);
    CHECK(claimed == 3);
    CHECK(t->kernel_sources(*fit[0], cuda::Variant{"plane_conv"}, cuda::OpIo{}).size() == 1);
    CHECK(t->kernel_sources(*fit[0], cuda::Variant{"plane_conv", 0, 1}, cuda::OpIo{}).size() == 1);
    CHECK(t->kernel_sources(*fit[1], cuda::Variant{"plane_conv", 0, pl::staged_math}, cuda::OpIo{}).size() == 1);
    CHECK(t->kernel_sources(*fit[1], cuda::Variant{"plane_conv", 0, pl::specialized_math}, cuda::OpIo{}).size() == 1);
    CHECK(t->kernel_sources(*fit[1], cuda::Variant{"plane_conv", 1, pl::specialized_math}, cuda::OpIo{}).size() == 1);
  } else {
    CHECK_FALSE(t->runs(*fit[0]));
    CHECK_FALSE(t->heuristic(*fit[0], 256, 0, none).has_value());
    CHECK(t->kernel_sources(*fit[0], cuda::Variant{"plane_conv"}, cuda::OpIo{}).empty());
  }
  CHECK(t->kernel_sources(*fit[0], cuda::Variant{"plane_conv", 1}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(*fit[0], cuda::Variant{"plane_conv", 0, 4}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(*fit[0], cuda::Variant{"plane_conv", 2, pl::specialized_math}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(*fit[0], cuda::Variant{"plane_conv", 1, pl::serial_math}, cuda::OpIo{}).empty());
  CHECK_THROWS_WITH(pl::source(*fit[0], pl::serial_math, 1), doctest::Contains("is not one of its forms"));
  // Both forms compile for sm_90a, both element types; the residual's form reads z.
  const std::string piped = pl::source(*fit[0]);
  const std::string serial = pl::source(*fit[1], pl::serial_math);
  const std::string staged = pl::source(*fit[1], pl::staged_math);
  const std::string special = pl::source(*fit[1], pl::specialized_math);
  const std::string special_plain = pl::source(*fit[0], pl::specialized_math);
  const std::string special4 = pl::source(*fit[1], pl::specialized_math, 1);
  CHECK(special4.find("constexpr int NB = 4;") != std::string::npos);
  CHECK(special4.find("wgmma.mma_async.sync.aligned.m64n176k16") != std::string::npos);
  CHECK(special.find("constexpr int NB = 3;") != std::string::npos);
  CHECK(special.find("__launch_bounds__(384, 1)") != std::string::npos);
  CHECK(special.find("wgmma.mma_async.sync.aligned.m64n232k16") != std::string::npos);
  CHECK(special.find("constexpr bool HAS_Z = true;") != std::string::npos);
  CHECK(special_plain.find("constexpr bool HAS_Z = false;") != std::string::npos);
  CHECK(special.find("cp.async.mbarrier.arrive.noinc") != std::string::npos);
  CHECK(piped.find("constexpr bool PIPELINED = true;") != std::string::npos);
  CHECK(piped.find("constexpr bool HAS_Z = false;") != std::string::npos);
  CHECK(serial.find("constexpr bool PIPELINED = false;") != std::string::npos);
  CHECK(serial.find("constexpr bool HAS_Z = true;") != std::string::npos);
  CHECK(piped.find("wgmma.mma_async.sync.aligned.m64n120k16") != std::string::npos);
  CHECK(serial.find("wgmma.mma_async.sync.aligned.m64n232k16") != std::string::npos);
  CHECK(serial.find("constexpr bool Z_STAGED = false;") != std::string::npos);
  CHECK(staged.find("constexpr bool Z_STAGED = true;") != std::string::npos);
  CHECK(staged.find("constexpr int ZOFF = 46208;") != std::string::npos);
  // (the staged form only for a conv with a residual)
  CHECK_THROWS_WITH(pl::source(*fit[0], pl::staged_math), doctest::Contains("ops with a residual only"));
  CHECK(t->kernel_sources(*fit[0], cuda::Variant{"plane_conv", 0, pl::staged_math}, cuda::OpIo{}).empty());
  const std::vector<std::string> names{"strata_rtc::plane_conv<strata_rtc::f16>",
                                       "strata_rtc::plane_conv<strata_rtc::bf16>"};
  CHECK(rtc::compile(piped, "plane_conv", names, 90, dir, true).cubin.size() > 1000);
  CHECK(rtc::compile(serial, "plane_conv_serial", names, 90, dir, true).cubin.size() > 1000);
  CHECK(rtc::compile(staged, "plane_conv_staged", names, 90, dir, true).cubin.size() > 1000);
  CHECK(rtc::compile(special, "plane_conv_specialized", names, 90, dir, true).cubin.size() > 1000);
  CHECK(rtc::compile(special_plain, "plane_conv_specialized_plain", names, 90, dir, true).cubin.size() > 1000);
  CHECK(rtc::compile(special4, "plane_conv_specialized4", names, 90, dir, true).cubin.size() > 1000);
}

TEST_CASE("stem_conv: the stem it runs, its sizes and bands, when it is timed, the source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_stem");
  namespace st = cuda::tactics::stem;
  cuda::NetDesc r = cuda::NetStorage<models::ResNet18, DType::f16>::describe();
  cuda::fold_for_per_op_path(r);
  // ResNet-18's stem only (7x7/2 over 3 channels read space-to-depth, 64 channels, its max pool).
  std::vector<const cuda::OpDesc*> fit;
  for (const cuda::OpDesc& op : r.ops) {
    if (st::shape_fits(op)) {
      fit.push_back(&op);
    }
  }
  REQUIRE(fit.size() == 1);
  const cuda::OpDesc& stem = *fit[0];
  CHECK(stem.label == "conv1+bn1+relu+maxpool");
  // Worked by hand: a 115-pixel space-to-depth row (112 + 3), two conv rows 115 + 112 = 227 ->
  // 232 GEMM columns; the last column reads pixel 231 + 3 x 115 + 3 = 579 -> planes of 585
  // pixels (1 mod 8), 2 x 585 x 16 = 18,720 -> 18,816 bytes a buffer; 232 staged outputs of 144
  // bytes + 56 x 8 maxima of 16 bytes = 40,576; f32 rows: 3 channels x 10 rows x 896 = 26,880.
  const st::Input f32{true, cuda::InputFormat::f32, false, r.in_shape};
  const st::Geometry g = st::geometry(stem, f32);
  CHECK((g.ic == 115 && g.nwg == 232 && g.plane == 585 && g.nb == 3 && g.buffer == 18816 && g.stage == 40576 &&
         g.raw == 26880));
  CHECK(g.shared == 64 * 12 * 16 * 2 + 3 * 18816 + 2 * 40576 + 2 * 26880 + 128);
  CHECK(st::input_fits(stem, f32));
  // Four buffers fit with f16 or 8-bit rows, not with f32's (227 KiB a block).
  CHECK_FALSE(st::input_fits(stem, f32, 1));
  CHECK(st::input_fits(stem, st::Input{true, cuda::InputFormat::f16, false, r.in_shape}, 1));
  const st::Input u8{true, cuda::InputFormat::u8_hwc, true, r.in_shape};
  CHECK(st::geometry(stem, u8).raw == (10 * 672 + 127) / 128 * 128);
  CHECK(st::input_fits(stem, u8, 1));
  // A row of an odd number of 8-bit pixels is no whole number of 16-byte units: refused.
  CHECK_FALSE(st::input_fits(stem, st::Input{true, cuda::InputFormat::u8_hwc, true, Shape{3, 224, 221}}));
  CHECK_THROWS_WITH(st::source(stem, f32, 1), doctest::Contains("cannot read the caller's input as given"));
  CHECK_THROWS_WITH(st::source(stem, f32, 2), doctest::Contains("is not one of its forms"));
  // Bands: at batch 256 over 264 consumers (132 SMs) one an image (56 tiles each); at batch 1
  // one pooled row a band (2 tiles each); at 17, 14 bands of 4 rows (238 units, 5 tiles each).
  CHECK(st::bands(56, 256, 264) == 1);
  CHECK(st::bands(56, 1, 264) == 56);
  CHECK(st::bands(56, 17, 264) == 14);
  // Never a band that starts past the last row (the kernel's cursors assume none), at any batch.
  int past = 0;
  for (int batch = 1; batch <= 600; ++batch) {
    for (const long long consumers : {16ll, 132ll, 228ll, 264ll, 288ll}) {
      const int b = st::bands(56, batch, consumers);
      past += (b - 1) * ((56 + b - 1) / b) >= 56 ? 1 : 0;
    }
  }
  CHECK(past == 0);
  // Not ResNet's layer1 convs, nor a stem without its pool or of other widths.
  CHECK_FALSE(st::shape_fits(r.ops[1]));
  cuda::OpDesc unpooled = stem;
  unpooled.pool.reset();
  CHECK_FALSE(st::shape_fits(unpooled));
  cuda::OpDesc narrow = stem;
  narrow.conv.k = narrow.conv.kp = 32;
  CHECK_FALSE(st::shape_fits(narrow));
  const auto* t = cuda::find_tactic<DType::f16>("stem_conv");
  REQUIRE(t != nullptr);
  const cuda::Libraries none{};
  cuda::OpIo io;
  io.net_input = &io;  // (any non-null address: the source names no pointer)
  io.net_input_shape = r.in_shape;
  if (cuda::device_arch() == 90) {
    CHECK(t->runs(stem));
    // Not claimed (slower than tile_conv's swapped form on an H100, session 57): tile_conv keeps
    // the stem; timed by measured tuning from 448 tiles (batch 8), in both forms.
    CHECK_FALSE(t->heuristic(stem, 256, 0, none).has_value());
    CHECK(cuda::find_tactic<DType::f16>("tile_conv")->heuristic(stem, 256, 0, none).has_value());
    CHECK(t->timed(stem, 8));
    CHECK_FALSE(t->timed(stem, 7));
    CHECK(t->candidates(stem, 256, 0, none) ==
          std::vector<cuda::Variant>{cuda::Variant{"stem_conv", 0, 0, 1}, cuda::Variant{"stem_conv", 1, 0, 1}});
    CHECK(t->kernel_sources(stem, cuda::Variant{"stem_conv", 0, 0, 1}, io).size() == 1);
    // (no caller's input given: nothing to compile; prepare() says why)
    CHECK(t->kernel_sources(stem, cuda::Variant{"stem_conv", 0, 0, 1}, cuda::OpIo{}).empty());
  } else {
    CHECK_FALSE(t->timed(stem, 256));
    CHECK(t->candidates(stem, 256, 0, none).empty());
  }
  CHECK(t->kernel_sources(stem, cuda::Variant{"stem_conv", 0, 0, 0}, io).empty());
  CHECK(t->kernel_sources(stem, cuda::Variant{"stem_conv", 0, 1, 1}, io).empty());
  // The source: 384 threads, m64n232k16, bulk copies counted on mbarriers; compiles for sm_90a in
  // both element types, from f32, f16 and 8-bit input.
  const std::string src = st::source(stem, f32);
  CHECK(src.find("__launch_bounds__(384, 1)") != std::string::npos);
  CHECK(src.find("wgmma.mma_async.sync.aligned.m64n232k16") != std::string::npos);
  CHECK(src.find("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes") != std::string::npos);
  CHECK(src.find("constexpr bool POST_ACT = true;") != std::string::npos);
  CHECK(src.find("using Src = float;") != std::string::npos);
  const std::string src8 = st::source(stem, u8, 1);
  CHECK(src8.find("constexpr bool SRC_HWC = true;") != std::string::npos);
  CHECK(src8.find("constexpr int NB = 4;") != std::string::npos);
  const std::vector<std::string> names{"strata_rtc::stem_conv<strata_rtc::f16>", "strata_rtc::stem_conv<strata_rtc::bf16>"};
  CHECK(rtc::compile(src, "stem_conv", names, 90, dir, true).cubin.size() > 1000);
  CHECK(rtc::compile(src8, "stem_conv_u8", names, 90, dir, true).cubin.size() > 1000);
  CHECK(rtc::compile(st::source(stem, st::Input{true, cuda::InputFormat::f16, false, r.in_shape}), "stem_conv_f16", names, 90, dir, true)
            .cubin.size() > 1000);
}

TEST_CASE("a DenseNet layer as one op and one kernel (bottleneck_conv): the fold, labels, the claim, the key, the source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_bottleneck");
  cuda::NetDesc n = cuda::NetStorage<models::DenseNet121, DType::f16>::describe();
  cuda::fold_for_per_op_path(n);
  const std::size_t before = n.ops.size();
  cuda::NetDesc plain = n;
  cuda::fold_bottleneck_convs(n);
  std::vector<const cuda::OpDesc*> joined;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.bottleneck) {
      joined.push_back(&op);
    }
  }
  // Blocks 3 and 4 (14x14 and 7x7 maps: 24 + 16 layers); blocks 1 and 2 (56x56, 28x28) are too large.
  REQUIRE(joined.size() == 40);
  CHECK(n.ops.size() == before - 40);
  const cuda::OpDesc& first = *joined.front();
  const cuda::OpDesc& last = *joined.back();
  CHECK(first.label == "features.denseblock3.denselayer1.norm1+relu1+conv1+norm2+relu2+conv2");
  CHECK(cuda::bottleneck_main(first).label == "features.denseblock3.denselayer1.conv2");
  CHECK(first.bottleneck->label == "features.denseblock3.denselayer1.norm1+relu1+conv1+norm2+relu2");
  CHECK(first.conv.h == 14);
  CHECK(last.conv.h == 7);
  CHECK(first.slice.has_value());
  // Twice: nothing more to join; f32 (NCHW) and the unfolded ops of blocks 1 and 2 untouched.
  cuda::NetDesc again = n;
  cuda::fold_bottleneck_convs(again);
  CHECK(again.ops.size() == n.ops.size());
  cuda::NetDesc f32 = cuda::NetStorage<models::DenseNet121, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  const std::size_t f32_ops = f32.ops.size();
  cuda::fold_bottleneck_convs(f32);
  CHECK(f32.ops.size() == f32_ops);
  CHECK(std::none_of(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) {
    return o.bottleneck && o.conv.h > 14;
  }));
  // A conv that writes over the channels its batch norm reads is not joined.
  {
    cuda::NetDesc clash = plain;
    for (std::size_t i = 0; i + 1 < clash.ops.size(); ++i) {
      cuda::OpDesc& c = clash.ops[i + 1];
      if (clash.ops[i].norm && c.slice && c.conv.h == 14) {
        c.slice->c0 = 0;  // (as if it wrote the concat's first channels)
      }
    }
    cuda::fold_bottleneck_convs(clash);
    CHECK(std::count_if(clash.ops.begin(), clash.ops.end(), [](const cuda::OpDesc& o) { return o.bottleneck != nullptr; }) ==
          16);
  }
  namespace b = cuda::tactics::bneck;
  const cuda::Libraries none{};
  const auto* t = cuda::find_tactic<DType::f16>("bottleneck_conv");
  REQUIRE(t != nullptr);
  for (const cuda::OpDesc* op : joined) {
    INFO(op->label);
    CHECK(t->runs(*op));
    CHECK(t->fuses_bottleneck(cuda::Variant{"bottleneck_conv"}));
    CHECK(t->writes_slice(*op));
    const int g = op->conv.h == 14 ? 1 : 2;
    CHECK(b::choose_g(*op) == g);
    // Claimed at batch 256 where a block stacks images (block 4: 128 blocks of two), not on
    // block 3's 14x14 maps (measured slower there), nor at 64 or 1.
    const auto big = t->heuristic(*op, 256, std::size_t{1} << 30, none);
    REQUIRE(big.has_value() == (g == 2));
    if (big) {
      CHECK(big->rank == cuda::rank::joins);
      CHECK(big->variant == cuda::Variant{"bottleneck_conv", 0, g - 1});
    }
    CHECK_FALSE(t->heuristic(*op, 64, std::size_t{1} << 30, none).has_value());
    CHECK_FALSE(t->heuristic(*op, 1, std::size_t{1} << 30, none).has_value());
    // The key names the bottleneck: a cache entry for the conv alone is not this op's.
    CHECK(cuda::tuning_key(*op, 256, DType::f16, "gpu") !=
          cuda::tuning_key(cuda::bottleneck_main(*op), 256, DType::f16, "gpu"));
    // Other tactics of the conv see the joined op and run the bottleneck first (not fused).
    CHECK_FALSE(cuda::find_tactic<DType::f16>("halo_conv")->fuses_bottleneck(cuda::Variant{"halo_conv"}));
  }
  // Hand-worked plans: a 14x14 image a block (196 rows, 13 m-tiles: 2 warps down x 8 across, 7
  // m-tiles a warp; the 3x3 conv in 4 groups of up to 4 m-tiles x 4 parts of its 72 steps) and
  // two 7x7 images (98 rows, 7 m-tiles: 4 a warp; 2 groups x 8 parts).
  const b::Plan p14 = b::plan(first, 1);
  CHECK(p14.rows == 196);
  CHECK(p14.mt == 13);
  CHECK(p14.wn1 == 8);
  CHECK(p14.mtw1 == 7);
  CHECK(p14.ms == 4);
  CHECK(p14.ks == 4);
  CHECK(p14.mtw2 == 4);
  CHECK(p14.map_bytes == 16 * 16 * 136 * 2);     // the map with its border (> 208 rows of 40 floats)
  // The ring: 5 steps fit beside the map in 227 KiB (> the 3x3 filter: 9 x 32 x 136 x 2).
  CHECK(p14.stages == 5);
  CHECK(p14.ring_bytes == 5 * (224 + 128) * 40 * 2);  // (a stage: 2 x 7 m-tiles of input rows)
  CHECK(p14.shared == p14.map_bytes + p14.ring_bytes + 256 * 4 + 128 * 4 + 32 * 4);
  const b::Plan p7 = b::plan(last, 2);
  CHECK(p7.rows == 98);
  CHECK(p7.mt == 7);
  CHECK(p7.ms == 2);
  CHECK(p7.ks == 8);
  CHECK(p7.stages == 6);
  CHECK(p7.ring_bytes == 6 * (128 + 128) * 40 * 2);  // (2 x 4 m-tiles; > the filter: 9 x 32 x 136 x 2)
  CHECK(b::plan(first, 4).rows == 0);        // (784 rows: 49 m-tiles, 25 a warp)
  // Not a bottleneck conv: the conv alone, or the 1x1 op.
  CHECK_FALSE(t->runs(cuda::bottleneck_main(first)));
  CHECK_FALSE(t->runs(*first.bottleneck));
  CHECK(t->kernel_sources(first, cuda::Variant{"bottleneck_conv", 0, 8}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"bottleneck_conv", 1}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"bottleneck_conv"}, cuda::OpIo{}).size() == 1);
  const std::vector<std::string> names{"strata_rtc::bottleneck_conv<strata_rtc::f16>",
                                       "strata_rtc::bottleneck_conv<strata_rtc::bf16>"};
  CHECK(rtc::compile(b::source(first, 1), "bottleneck14", names, 90, dir).cubin.size() > 1000);
  CHECK(rtc::compile(b::source(last, 2), "bottleneck7", names, 80, dir).cubin.size() > 1000);
  // The cluster form (an image a cluster of 8 or 16 blocks; session 43, not yet GPU-run). Hand-
  // worked plans: block 3's first layer (256 input slots: 8 steps, 2 a k-group) in clusters of
  // 16 in 4 n-groups of 32 slots — 8 warps down x 2 across its 13 m-tiles (2 a warp), pixel
  // groups of 4 rows (the k x k conv: 56 pixels, 4 m-tiles, one a warp x 4 parts), a ring of 2
  // steps; its last layer (992 slots: 31 steps, 8 a k-group) with a ring of 8; block 4's last
  // (7x7: 4 m-tiles; groups of 2 rows, one m-tile x 16 parts).
  const cuda::OpDesc& last3 = *joined[23];
  REQUIRE(last3.conv.h == 14);
  const b::ClusterPlan c1 = b::cluster_plan(first, 16, 4);
  CHECK(c1.cs == 16);
  CHECK(c1.kg == 4);
  CHECK(c1.nw == 32);
  CHECK(c1.wn1 == 2);
  CHECK(c1.wm1 == 8);
  CHECK(c1.mtw1 == 2);
  CHECK(c1.kt == 8);
  CHECK(c1.spb == 2);
  CHECK(c1.stages == 2);
  CHECK(c1.rh == 4);
  CHECK(c1.mt2 == 4);
  CHECK(c1.ms2 == 4);
  CHECK(c1.ks2 == 4);
  CHECK(c1.mtw2 == 1);
  CHECK(c1.ring_bytes == 2 * (208 + 32) * 40 * 2);  // (> the partial sums: 208 x 36 and 4 x 64 x 36 floats)
  CHECK(c1.map_bytes == (4 + 2) * 16 * 40 * 2);      // 6 rows (the halo) x 16 columns (the border)
  CHECK(c1.w2_bytes == 9 * 32 * 40 * 2);
  CHECK(c1.shared == c1.ring_bytes + c1.map_bytes + c1.w2_bytes + 2 * 32 * 4 + 32 * 4 + 32 * 4);
  const b::ClusterPlan c24 = b::cluster_plan(last3, 16, 4);
  CHECK(c24.kt == 31);
  CHECK(c24.spb == 8);
  CHECK(c24.stages == 8);
  CHECK(c24.ring_bytes == 8 * (208 + 32) * 40 * 2);
  const b::ClusterPlan c24b = b::cluster_plan(last3, 16, 2);  // 2 n-groups of 64 slots x 8 k-groups
  CHECK(c24b.kg == 8);
  CHECK(c24b.nw == 64);
  CHECK(c24b.wn1 == 4);
  CHECK(c24b.mtw1 == 4);
  CHECK(c24b.stages == 4);
  CHECK(c24b.rh == 2);
  CHECK(c24b.mt2 == 2);
  CHECK(c24b.ks2 == 8);
  const b::ClusterPlan c7 = b::cluster_plan(last, 16, 4);
  CHECK(c7.mt == 4);
  CHECK(c7.rh == 2);
  CHECK(c7.mt2 == 1);
  CHECK(c7.ms2 == 1);
  CHECK(c7.ks2 == 16);
  CHECK(c7.ring_bytes == 8 * (64 + 32) * 40 * 2);
  for (const cuda::OpDesc* op : joined) {
    for (const auto& [cs, ng] : {std::pair{8, 2}, std::pair{8, 4}, std::pair{16, 2}, std::pair{16, 4}}) {
      const b::ClusterPlan p = b::cluster_plan(*op, cs, ng);
      INFO(op->label << " " << cs << " " << ng);
      CHECK(p.cs == cs);
      CHECK(p.shared <= 227 * 1024);
      CHECK(p.stages >= 2);
    }
  }
  // Sizes and groups it does not take; a 1x1 reduction of fewer steps than k-groups.
  CHECK(b::cluster_plan(first, 4, 2).cs == 0);
  CHECK(b::cluster_plan(first, 16, 3).cs == 0);
  CHECK(b::cluster_plan(first, 16, 16).cs == 0);  // (8-slot groups: not a whole warp's 16)
  {
    cuda::OpDesc few = first;
    auto short_b = std::make_shared<cuda::OpDesc>(*first.bottleneck);
    short_b->conv.cp = 64;  // 2 steps
    few.bottleneck = short_b;
    CHECK(b::cluster_plan(few, 8, 4).cs == 8);   // 2 k-groups
    CHECK(b::cluster_plan(few, 16, 4).cs == 0);  // 4 k-groups
  }
  // Offered at batches up to 8 on compute capability 9.0 on (none without a device); variants
  // outside the form's algos and maths are refused.
  const auto cluster_offers = [&](int batch) {
    const auto v = t->candidates(first, batch, std::size_t{1} << 30, none);
    return std::count_if(v.begin(), v.end(), [](const cuda::Variant& x) { return x.algo != 0; });
  };
  CHECK(cluster_offers(1) == (cuda::device_arch() >= 90 ? 4 : 0));
  CHECK(cluster_offers(8) == (cuda::device_arch() >= 90 ? 4 : 0));
  CHECK(cluster_offers(9) == 0);
  CHECK(t->kernel_sources(first, cuda::Variant{"bottleneck_conv", 16, 3}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"bottleneck_conv", 4, 2}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(first, cuda::Variant{"bottleneck_conv", 16, 4, 1}, cuda::OpIo{}).empty());
  const auto cl = t->kernel_sources(first, cuda::Variant{"bottleneck_conv", 16, 4}, cuda::OpIo{});
  REQUIRE(cl.size() == 1);
  CHECK(cl.front().source.find("__cluster_dims__(16, 1, 1)") != std::string::npos);
  CHECK(cl.front().source.find("constexpr int KG = 4;") != std::string::npos);
  // The filters are copied before the wait for the kernel before, the input after it.
  {
    const std::string& src = cl.front().source;
    // (the kernel, after the library's; a cluster past the batch waits too)
    (void)check_early_work(src.substr(src.rfind("__global__")), "cp_async16(w2s + row * W2PITCH",
                           "if (j < steps) stage_a(j);");
  }
  CHECK(rtc::compile(cl.front().source, "bottleneck_cl14", names, 90, dir).cubin.size() > 1000);
  CHECK(rtc::compile(b::cluster_source(last3, 16, 2), "bottleneck_cl14b", names, 90, dir).cubin.size() > 1000);
  CHECK(rtc::compile(b::cluster_source(last, 8, 4), "bottleneck_cl7", names, 90, dir).cubin.size() > 1000);
  // Bands: block 1's 56x56 maps (joined only for the clusters, up to 1 MB a map) in 4 bands of 14
  // output rows, each with the 3x3 conv's halo: 16 rows of the 1x1 conv (56 m-tiles, 7 a warp),
  // pixel groups of 4 rows (14 m-tiles: 8 warps down x 2 parts), a ring of 2 steps of 928 rows.
  {
    cuda::NetDesc big = plain;
    cuda::fold_bottleneck_convs(big, cuda::bottleneck_cluster_max_map_bytes);
    std::vector<const cuda::OpDesc*> b1;
    for (const cuda::OpDesc& op : big.ops) {
      if (op.bottleneck && op.conv.h == 56) {
        b1.push_back(&op);
      }
    }
    REQUIRE(b1.size() == 6);
    const cuda::OpDesc& l6 = *b1.back();  // (224 input slots: 7 steps)
    CHECK(b::cluster_bands(l6) == std::vector<int>{1, 2, 4, 8});
    CHECK(b::cluster_bands(first) == std::vector<int>{1});
    // The tactic runs these where the cluster form does (compute capability 9.0 on), though the
    // whole-image form does not fit them; likewise block 2's, in up to 4 bands (8 of 28 rows:
    // the last band empty).
    CHECK_FALSE(b::fits(l6));
    CHECK(t->runs(l6) == (cuda::device_arch() >= 90));
    CHECK(t->writes_slice(l6) == (cuda::device_arch() >= 90));
    const auto b2 = std::find_if(big.ops.begin(), big.ops.end(), [](const cuda::OpDesc& o) {
      return o.bottleneck && o.conv.h == 28;
    });
    REQUIRE(b2 != big.ops.end());
    CHECK(b::cluster_bands(*b2) == std::vector<int>{1, 2, 4});
    CHECK(t->runs(*b2) == (cuda::device_arch() >= 90));
    CHECK(b::cluster_plan(l6, 16, 4).cs == 0);  // (one band: 196 m-tiles, 25 a warp)
    const b::ClusterPlan p4 = b::cluster_plan(l6, 16, 4, 4);
    CHECK(p4.cs == 16);
    CHECK(p4.bands == 4);
    CHECK(p4.br == 14);
    CHECK(p4.er == 16);
    CHECK(p4.mt == 56);
    CHECK(p4.mtw1 == 7);
    CHECK(p4.rh == 4);
    CHECK(p4.mt2 == 14);
    CHECK(p4.ms2 == 8);
    CHECK(p4.ks2 == 2);
    CHECK(p4.stages == 2);
    CHECK(p4.ring_bytes == 2 * (896 + 32) * 40 * 2);
    CHECK(p4.map_bytes == (4 + 2) * 58 * 40 * 2);
    CHECK(b::cluster_plan(l6, 16, 4, 3).cs == 0);    // (bands of 19 rows: 21 rows of the 1x1 conv, 74 m-tiles, 10 a warp)
    CHECK(b::cluster_plan(*b1.front(), 16, 4, 4).cs == 0);  // (64 input slots: 2 steps, 4 k-groups)
    CHECK(b::cluster_plan(*b1.front(), 8, 4, 4).cs == 8);
    // No empty band: 7 rows in 8 bands of 1 fit, in 6 of 2 (the last would be empty) not.
    CHECK(b::cluster_plan(last, 8, 4, 7).cs == 8);
    CHECK(b::cluster_plan(last, 8, 4, 6).cs == 0);
    CHECK(t->kernel_sources(l6, cuda::Variant{"bottleneck_conv", 16, 4, 3}, cuda::OpIo{}).empty());  // (fuse: 2, 4, 8)
    const auto banded = t->kernel_sources(l6, cuda::Variant{"bottleneck_conv", 16, 4, 4}, cuda::OpIo{});
    REQUIRE(banded.size() == 1);
    CHECK(banded.front().source.find("constexpr int BANDS = 4;") != std::string::npos);
    CHECK(banded.front().source.find("constexpr int BR = 14;") != std::string::npos);
    CHECK(rtc::compile(banded.front().source, "bottleneck_cl56", names, 90, dir).cubin.size() > 1000);
    const auto offered = t->candidates(l6, 1, std::size_t{1} << 30, none);
    CHECK(std::count_if(offered.begin(), offered.end(), [](const cuda::Variant& x) { return x.fuse == 4; }) ==
          (cuda::device_arch() >= 90 ? 2 : 0));  // (4 bands: 8 x 4 and 16 x 4; in 2 n-groups the partial sums do not fit)
  }
  // The engine joins the layers at small batches only where asked, on compute capability 9.0 on.
  {
    cuda::EngineOptions o;
    o.max_batch = 1;
    CHECK_FALSE(cuda::joins_bottlenecks(o));
    o.bottleneck_clusters = true;
    CHECK(cuda::joins_bottlenecks(o) == (cuda::device_arch() >= 90));
    o.max_batch = 9;
    CHECK_FALSE(cuda::joins_bottlenecks(o));
    o.max_batch = 32;
    o.bottleneck_clusters = false;
    CHECK(cuda::joins_bottlenecks(o));
    // Joined as the engine joins them: at batch 32 blocks 3-4 (40 layers); at batch 2 with the
    // clusters asked for, blocks 1 and 2 too (58: the cluster form holds a pixel group's rows a
    // block, and takes large maps in bands), none without.
    const auto joins = [&](int max_batch, bool clusters) {
      cuda::EngineOptions e;
      e.max_batch = max_batch;
      e.bottleneck_clusters = clusters;
      cuda::NetDesc d = plain;
      cuda::join_bottlenecks(d, e);
      return std::count_if(d.ops.begin(), d.ops.end(), [](const cuda::OpDesc& x) { return x.bottleneck != nullptr; });
    };
    CHECK(joins(32, false) == 40);
    CHECK(joins(2, false) == 0);
    CHECK(joins(2, true) == (cuda::device_arch() >= 90 ? 58 : 0));
    CHECK(joins(9, true) == 0);
  }
  // Forcing a joined op's part by its own label names the joined op.
  cuda::EngineOptions opt;
  opt.force["features.denseblock3.denselayer1.conv2"] = cuda::Variant{"halo_conv"};
  CHECK_THROWS_WITH((void)cuda::forced_variants<DType::f16>(n, opt.force),
                    doctest::Contains("features.denseblock3.denselayer1.norm1+relu1+conv1+norm2+relu2+conv2"));
}

TEST_CASE("a network's head as one kernel (pooled_dense): the fold's op, its key, the source compiles") {
  const auto dir = fresh_dir("strata_rtc_test_pooled_dense");
  const auto* t = cuda::find_tactic<DType::f16>("pooled_dense");
  REQUIRE(t != nullptr);
  const auto head = [](cuda::NetDesc n) {
    cuda::fold_for_per_op_path(n);
    return n.ops.back();
  };
  const cuda::OpDesc r18 = head(cuda::NetStorage<models::ResNet18, DType::f16>::describe());
  const cuda::OpDesc r50 = head(cuda::NetStorage<models::ResNet50, DType::f16>::describe());
  REQUIRE(r18.gap.has_value());
  REQUIRE(r50.gap.has_value());
  CHECK(r18.label == "avgpool+fc");
  CHECK(cuda::tuning_key(r18, 1, DType::f16, "gpu").find(",gap7x7") != std::string::npos);
  CHECK(t->applicable(r18));
  CHECK(t->applicable(r50));
  // Past 2,048 channel slots: not its.
  using Wide = decltype(input<8, 3, 3> | conv<2056, 1> | relu | global_avg_pool | flatten | dense<10>);
  const cuda::OpDesc wide = head(cuda::NetStorage<Wide, DType::f16>::describe());
  REQUIRE(wide.gap.has_value());
  CHECK_FALSE(cuda::tactics::pooled_dense::fits(wide));
  CHECK(t->fuses_gap(cuda::Variant{"pooled_dense", 16}));
  CHECK_FALSE(cuda::find_tactic<DType::f32>("pooled_dense")->applicable(
      head(cuda::NetStorage<models::ResNet18, DType::f32>::describe())));
  // The plain dense layer (no pool folded) is not its.
  CHECK_FALSE(t->applicable(cuda::NetStorage<models::ResNet18, DType::f16>::describe().ops.back()));
  CHECK_FALSE(t->heuristic(r18, 1, 0, {}).has_value());  // (measured tuning's only)
  if (cuda::device_arch() < 90) {  // (no device here: nothing offered)
    CHECK(t->candidates(r18, 1, 0, {}).empty());
  }
  // lt_dense claims the folded op below a tailored kernel's rank, the plain one as the only way.
  const auto* lt = cuda::find_tactic<DType::f16>("lt_dense");
  CHECK(lt->heuristic(r18, 1, 0, {})->rank == cuda::rank::library);
  for (const cuda::OpDesc* op : {&r18, &r50}) {
    INFO(op->label);
    for (const int cl : {8, 16}) {
      const std::string src = cuda::tactics::pooled_dense::source(*op, cl);
      CHECK(src.find("__cluster_dims__(" + std::to_string(cl) + ", 1, 1)") != std::string::npos);
      CHECK(src.find("constexpr int CP = " + std::to_string(op->gap->in_cp) + ";") != std::string::npos);
      for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
        const std::vector<std::string> names{std::string("strata_rtc::pooled_dense<") + ty + ">"};
        CHECK(rtc::compile(src, "pooled_dense", names, 90, dir).cubin.size() > 1000);
      }
    }
  }
  try {
    (void)t->prepare(r18, cuda::Variant{"pooled_dense", 4}, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
    FAIL("pooled_dense was prepared without a device, or with algo 4");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find("avgpool+fc") != std::string::npos);
  }
  try {
    (void)t->prepare(r18, cuda::Variant{"pooled_dense", 16}, 5, cuda::OpWeights{}, cuda::OpIo{}, {});
    FAIL("pooled_dense was prepared for 5 images");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find("at most 4 images") != std::string::npos);
  }
}

TEST_CASE("an op whose producer's activation was deferred: Strata's kernels apply it (a depthwise conv's at any batch, a gate's 1x1 at small ones), the library after it in place otherwise") {
  using Block = decltype(input<8, 224, 224> | conv<32, 1> | batch_norm | relu6 |
                         conv<32, 3, ConvOpts{.padding = 1, .groups = 32}> | batch_norm | silu |
                         multiply(global_avg_pool | conv<6, 1> | silu | conv<32, 1> | sigmoid) |
                         conv<16, 1> | batch_norm | global_avg_pool | flatten | dense<4>);
  const cuda::NetDesc n = cuda::NetStorage<Block, DType::f16>::describe();
  const cuda::Libraries none{};  // (these two tactics' claims need no library handle)
  int deferred = 0;
  for (const cuda::OpDesc& op : n.ops) {
    std::vector<std::string> applies;  // applicable tactics that apply in_act themselves
    int applicable = 0;
    std::string first;  // the heuristic's winner at batch 1 among the tactics that need no library
    int first_rank = 1 << 30;
    for (const cuda::Tactic<DType::f16>* t : cuda::all_tactics<DType::f16>()) {
      if (t->applicable(op)) {
        ++applicable;
        if (t->name() != "cudnn_conv") {  // (cuDNN's claim asks cuDNN)
          if (const auto c = t->heuristic(op, 1, 0, none)) {
            if (const int r = cuda::claim_rank(*t, op, *c); r < first_rank) {
              first_rank = r;
              first = t->name();
            }
          }
        }
        if (t->name() == "depthwise_band") {
          // 3x3 with ReLU6 on load: offered and claimed at every batch, ahead of the depthwise
          // tactic's claim below (it comes first in the registry)
          CHECK(t->candidates(op, 1, 0, none).size() == 1);
          for (const int b : {1, 1 << 16}) {
            const auto c = t->heuristic(op, b, 0, none);
            REQUIRE(c.has_value());
            CHECK(c->rank == cuda::rank::tailored);
            CHECK(c->variant == cuda::Variant{"depthwise_band"});
          }
          continue;
        }
        if (t->name() == "pool") {  // (the only tactic of pools: the global pool applies a deferred activation)
          CHECK(t->reads_input_act());
          continue;
        }
        if (t->reads_input_act()) {
          applies.emplace_back(t->name());
          const auto small = t->heuristic(op, 1, 0, none);
          const auto large = t->heuristic(op, 1 << 16, 0, none);
          REQUIRE(small.has_value());
          REQUIRE(large.has_value());
          CHECK(small->rank == cuda::rank::tailored);  // ahead of cuDNN and cuBLASLt
          CHECK(small->variant.algo == 0);
          if (t->name() == "depthwise_conv") {
            // large sizes with ReLU6 on load: Strata's kernel, still ahead of cuDNN
            CHECK(large->rank == cuda::rank::tailored);
            CHECK(large->variant.algo == 3);  // 3x3 stride 1, ReLU6 on load: channel pairs
            const auto offered = t->candidates(op, 1 << 16, 0, none);
            CHECK(offered.size() == 4);  // all timed by measured tuning
          } else {
            CHECK(large->rank == cuda::rank::fallback);  // behind the libraries
          }
        }
      }
    }
    INFO(op.label);
    CHECK(applicable > 0);  // every op can run
    if (op.in_act.kind != Act::none) {
      ++deferred;
      REQUIRE(applies.size() == 1);
      CHECK((applies[0] == "depthwise_conv" || applies[0] == "pixel_conv1x1"));
      CHECK(applicable > 1);  // a library tactic too (prepare_step applies in_act in place first)
      // At batch 1 the kernel that reads the activation wins, also over a tailored kernel that
      // would need it in a pass of its own (the gate's 6-channel second 1x1 fits generated_conv);
      // for the depthwise conv that is depthwise_band, which also applies it (checked above).
      CHECK(first == (applies[0] == "depthwise_conv" ? std::string("depthwise_band") : applies[0]));
    }
  }
  CHECK(deferred == 2);  // the expansion's ReLU6 into the depthwise conv; the gate's SiLU
  // The gate's two 1x1s of a 1x1 map (32 -> 6 and 6 -> 32 channels; 32 and 8 input slots): at
  // batch 256 neither the generated kernel (a warp an image) nor the direct one (a padded input:
  // 6 of 8 slots) claims them ahead of the libraries; at batch 1 pixel_conv1x1 does.
  int gates = 0;
  for (const cuda::OpDesc& op : n.ops) {
    if (!cuda::pixel_conv1x1_runs(op)) {
      continue;
    }
    ++gates;
    INFO(op.label);
    for (const char* name : {"generated_conv", "direct_conv"}) {
      const cuda::Tactic<DType::f16>* t = cuda::find_tactic<DType::f16>(name);
      if (t->applicable(op)) {
        const auto c = t->heuristic(op, 256, 0, none);
        CHECK((!c || c->rank >= cuda::rank::fallback));
      }
    }
    // (cuBLASLt claims them ahead of the fallback: the op stays on a library, not on these kernels)
    const auto lt = cuda::find_tactic<DType::f16>("lt_conv1x1");
    REQUIRE(lt->applicable(op));
    CHECK(lt->heuristic(op, 256, 0, none)->rank < cuda::rank::fallback);
    const auto pixel = cuda::find_tactic<DType::f16>("pixel_conv1x1")->heuristic(op, 1, 0, none);
    REQUIRE(pixel.has_value());
    CHECK(pixel->rank == cuda::rank::tailored);
  }
  CHECK(gates == 2);
  // pixel_conv1x1's lanes per output, hand-worked: one 16-byte vector (8 slots) a lane up to 32
  // lanes.
  CHECK(cuda::kernels::pixel_conv1x1_lanes(8) == 1);
  CHECK(cuda::kernels::pixel_conv1x1_lanes(16) == 2);
  CHECK(cuda::kernels::pixel_conv1x1_lanes(24) == 4);
  CHECK(cuda::kernels::pixel_conv1x1_lanes(32) == 4);
  CHECK(cuda::kernels::pixel_conv1x1_lanes(96) == 16);
  CHECK(cuda::kernels::pixel_conv1x1_lanes(256) == 32);
  CHECK(cuda::kernels::pixel_conv1x1_lanes(1152) == 32);
  // On a 56x56 map at a large batch: with ReLU6 or SiLU on load the depthwise tactic takes its
  // channel-pair kernel (algo 3) at stride 1, still offering all four kernels to measured tuning; 5x5 taps it
  // leaves to depthwise_band (its own tiled kernel lost there; the strip kernel has no 5x5); with GELU on load
  // (not compiled into the strip kernel) it offers two.
  // (192 channels from 64: 88 MFLOP an image, past the fused-network kernel, which would fuse
  // the activation itself and leave nothing deferred.)
  using Small = decltype(input<64, 56, 56> | conv<192, 1> | relu6 |
                         conv<192, 3, ConvOpts{.padding = 1, .groups = 192}> | relu6);
  using SmallSilu = decltype(input<64, 56, 56> | conv<192, 1> | silu |
                             conv<192, 3, ConvOpts{.padding = 1, .groups = 192}> | relu6);
  using SmallGelu = decltype(input<64, 56, 56> | conv<192, 1> | gelu |
                             conv<192, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 192}> | relu6);
  using Small5 = decltype(input<64, 56, 56> | conv<192, 1> | silu |
                          conv<192, 5, ConvOpts{.stride = 2, .padding = 2, .groups = 192}> | silu);
  const cuda::NetDesc sn = cuda::NetStorage<Small, DType::f16>::describe();
  const cuda::NetDesc silu_n = cuda::NetStorage<SmallSilu, DType::f16>::describe();
  const cuda::NetDesc gelu_n = cuda::NetStorage<SmallGelu, DType::f16>::describe();
  const cuda::Tactic<DType::f16>* dw = cuda::find_tactic<DType::f16>("depthwise_conv");
  REQUIRE(dw->applicable(sn.ops.back()));
  REQUIRE(sn.ops.back().in_act.kind == Act::clip);
  REQUIRE(silu_n.ops.back().in_act.kind == Act::silu);
  REQUIRE(gelu_n.ops.back().in_act.kind == Act::gelu);
  const auto at256 = dw->heuristic(sn.ops.back(), 256, 0, none);
  REQUIRE(at256.has_value());
  CHECK(at256->rank == cuda::rank::tailored);
  CHECK(at256->variant == cuda::Variant{"depthwise_conv", 3});  // 3x3 stride 1: channel pairs
  CHECK(dw->candidates(sn.ops.back(), 256, 0, none).size() == 4);
  const auto silu256 = dw->heuristic(silu_n.ops.back(), 256, 0, none);
  REQUIRE(silu256.has_value());
  CHECK(silu256->rank == cuda::rank::tailored);
  CHECK(silu256->variant == cuda::Variant{"depthwise_conv", 3});
  // SiLU on load at stride 2: the strip kernel (it beat the channel pairs there)
  using SiluS2 = decltype(input<64, 56, 56> | conv<192, 1> | silu |
                          conv<192, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 192}> | relu6);
  const cuda::NetDesc silu_s2 = cuda::NetStorage<SiluS2, DType::f16>::describe();
  REQUIRE(silu_s2.ops.back().in_act.kind == Act::silu);
  CHECK(dw->heuristic(silu_s2.ops.back(), 256, 0, none)->variant == cuda::Variant{"depthwise_conv", 2});
  CHECK(dw->candidates(silu_s2.ops.back(), 256, 0, none).size() == 4);
  CHECK(dw->candidates(silu_n.ops.back(), 256, 0, none).size() == 4);
  const cuda::NetDesc n5 = cuda::NetStorage<Small5, DType::f16>::describe();
  REQUIRE(n5.ops.back().in_act.kind == Act::silu);
  REQUIRE(n5.ops.back().conv.kh == 5);
  const auto five256 = dw->heuristic(n5.ops.back(), 256, 0, none);
  REQUIRE(five256.has_value());
  CHECK(five256->rank == cuda::rank::fallback);
  const auto five_offered = dw->candidates(n5.ops.back(), 256, 0, none);
  CHECK(five_offered.size() == 2);  // 0 and 1: the strip and channel-pair kernels are 3x3 only
  CHECK(std::find(five_offered.begin(), five_offered.end(), cuda::Variant{"depthwise_conv", 2}) ==
        five_offered.end());
  CHECK(std::find(five_offered.begin(), five_offered.end(), cuda::Variant{"depthwise_conv", 3}) ==
        five_offered.end());
  // The 5x5 goes to depthwise_band, tailored (ahead of the fallback above and of cuDNN).
  const auto* band_t = cuda::find_tactic<DType::f16>("depthwise_band");
  REQUIRE(band_t->applicable(n5.ops.back()));
  const auto band256 = band_t->heuristic(n5.ops.back(), 256, 0, none);
  REQUIRE(band256.has_value());
  CHECK(band256->rank == cuda::rank::tailored);
  CHECK(band_t->heuristic(n5.ops.back(), 1, 0, none).has_value());  // 5x5: at every batch
  // 3x3: the band kernel claims it at every batch with ReLU6 or SiLU on load, at stride 1 and
  // 2; with GELU on load (not timed) it only offers itself to measured tuning.
  REQUIRE(band_t->applicable(sn.ops.back()));
  for (const int b : {1, 256}) {
    const auto c = band_t->heuristic(sn.ops.back(), b, 0, none);
    REQUIRE(c.has_value());
    CHECK(c->variant == cuda::Variant{"depthwise_band"});
    CHECK(c->rank == cuda::rank::tailored);
  }
  CHECK(band_t->heuristic(silu_n.ops.back(), 256, 0, none).has_value());
  CHECK(band_t->heuristic(silu_s2.ops.back(), 256, 0, none).has_value());
  REQUIRE(band_t->applicable(gelu_n.ops.back()));
  CHECK_FALSE(band_t->heuristic(gelu_n.ops.back(), 256, 0, none).has_value());
  // (algo 0; algo 2 math 2 and 4 once GPU-tested)
  CHECK(band_t->candidates(gelu_n.ops.back(), 256, 0, none).size() == (cuda::tactics::band::pipelined_gpu_tested ? 3U : 1U));
  const auto gelu256 = dw->heuristic(gelu_n.ops.back(), 256, 0, none);
  REQUIRE(gelu256.has_value());
  CHECK(gelu256->rank == cuda::rank::fallback);  // 28x28 output, 256·28·28·192 > 2^21
  const auto gelu_offered = dw->candidates(gelu_n.ops.back(), 256, 0, none);
  CHECK(gelu_offered.size() == 2);
  CHECK(std::find(gelu_offered.begin(), gelu_offered.end(), cuda::Variant{"depthwise_conv", 2}) ==
        gelu_offered.end());
  CHECK(dw->heuristic(sn.ops.back(), 1, 0, none)->rank == cuda::rank::tailored);
  CHECK(dw->heuristic(sn.ops.back(), 1, 0, none)->variant == cuda::Variant{"depthwise_conv"});
  // The strip kernel's shape rules, hand-worked: 3x3 taps, dilation 1, stride 1 (4 rows
  // a thread) or 2 (2 rows); channel vectors a block: the largest divisor of cp/8 up to 16;
  // filters f32.
  const auto geom = [](int cp, int k, int st, int d) {
    return cuda::kernels::ConvShape{256, cp, 56, 56, cp, cp, cp, 56 / st, 56 / st, k, k, st, st,
                                    k / 2, k / 2, d, d, cp, 1, 1};
  };
  using cuda::kernels::depthwise_rows_fits;
  CHECK(depthwise_rows_fits(geom(144, 3, 1, 1), Act::clip));
  CHECK(depthwise_rows_fits(geom(144, 3, 2, 1), Act::silu));
  CHECK(depthwise_rows_fits(geom(144, 3, 2, 1), Act::none));
  CHECK_FALSE(depthwise_rows_fits(geom(144, 3, 1, 1), Act::gelu));
  CHECK(depthwise_rows_fits(geom(144, 3, 2, 1), Act::hardswish));
  CHECK_FALSE(depthwise_rows_fits(geom(144, 5, 1, 1), Act::silu));  // 5x5
  CHECK_FALSE(depthwise_rows_fits(geom(144, 3, 1, 2), Act::none));  // dilation 2
  CHECK(cuda::kernels::depthwise_rows_strip(geom(144, 3, 1, 1)) == 4);
  CHECK(cuda::kernels::depthwise_rows_strip(geom(144, 3, 2, 1)) == 2);
  CHECK(cuda::kernels::depthwise_rows_gc(geom(144, 3, 1, 1)) == 9);    // 18 vectors
  CHECK(cuda::kernels::depthwise_rows_gc(geom(960, 3, 1, 1)) == 15);   // 120
  CHECK(cuda::kernels::depthwise_rows_gc(geom(1152, 3, 1, 1)) == 16);  // 144
  CHECK(cuda::kernels::depthwise_rows_gc(geom(24, 3, 1, 1)) == 3);
  CHECK(cuda::kernels::depthwise_rows_gc(geom(136, 3, 1, 1)) == 1);    // 17, a prime
  CHECK(cuda::kernels::depthwise_rows_shared(geom(144, 3, 1, 1)) == 9 * 9 * 8 * 4);
  // The channel-pair kernel's (algo 3), hand-worked: 3x3, dilation 1, stride 1 or 2; strips of
  // 4 / 2 rows; a thread per (image, strip, 8 output columns, channel pair), blocks of 256.
  using cuda::kernels::depthwise_pairs_fits;
  CHECK(depthwise_pairs_fits(geom(144, 3, 1, 1), Act::clip));
  CHECK_FALSE(depthwise_pairs_fits(geom(144, 5, 2, 1), Act::silu));  // 5x5: not compiled in
  CHECK(depthwise_pairs_fits(geom(144, 3, 2, 1), Act::hardsigmoid));
  CHECK_FALSE(depthwise_pairs_fits(geom(144, 3, 1, 1), Act::gelu));
  CHECK_FALSE(depthwise_pairs_fits(geom(144, 7, 1, 1), Act::none));  // 7x7
  CHECK_FALSE(depthwise_pairs_fits(geom(144, 3, 1, 2), Act::none));  // dilation 2
  CHECK(cuda::kernels::depthwise_pairs_strip(geom(144, 3, 1, 1)) == 4);
  CHECK(cuda::kernels::depthwise_pairs_strip(geom(144, 3, 2, 1)) == 2);
  const auto pg = [](const cuda::kernels::ConvShape& g) {
    const cuda::kernels::PairsLaunch l = cuda::kernels::depthwise_pairs_grid(g);
    return std::array<long long, 3>{l.strips, l.col_groups, l.blocks};
  };
  // 56x56 out: 14 strips of 4, 7 groups of 8 columns, 72 pairs: 256·14·7·72 / 256 blocks
  CHECK(pg(geom(144, 3, 1, 1)) == std::array<long long, 3>{14, 7, 7056});
  // 28x28 out: 14 strips of 2, 4 groups (the last one half full)
  CHECK(pg(geom(144, 3, 2, 1)) == std::array<long long, 3>{14, 4, 4032});
  // 32 slots: 16 pairs a pixel, 256·14·7·16 threads
  CHECK(pg(geom(32, 3, 1, 1)) == std::array<long long, 3>{14, 7, 1568});
  CHECK(cuda::kernels::depthwise_rows_shared(geom(672, 3, 1, 1)) == 9 * 14 * 8 * 4);  // 84 vectors
  // Its grid, hand-worked. MobileNetV2 features.1 at batch 256 (112x112, 32 channels, stride 1):
  // 4 vectors a block, 128 / 4 = 32 columns a block; 28 strips of 4 rows; 256·28·112 = 802,816
  // columns → 25,088 blocks of 128 threads, one chunk. A 7-row output map at stride 2 (15x15 in,
  // 136 channels: 17 vectors, a prime → 1 a block): 4 strips of 2 rows (the last one row); 128
  // columns a block; 3·4·7 = 84 columns → 1 block per chunk, 17 chunks.
  struct Grid {
    cuda::kernels::ConvShape s;
    int gc, strips, chunks;
    unsigned blocks;
  };
  for (const Grid& g : {Grid{{256, 32, 112, 112, 32, 32, 32, 112, 112, 3, 3, 1, 1, 1, 1, 1, 1, 32, 1, 1},
                             4, 28, 1, 25088u},
                        Grid{{3, 136, 15, 15, 136, 136, 136, 7, 7, 3, 3, 2, 2, 0, 0, 1, 1, 136, 1, 1},
                             1, 4, 17, 17u}}) {
    const auto l = cuda::kernels::depthwise_rows_grid(g.s);
    INFO("cp " << g.s.cp);
    CHECK(l.gc == g.gc);
    CHECK(l.strips == g.strips);
    CHECK(l.chunks == g.chunks);
    CHECK(l.blocks == g.blocks);
    CHECK(l.threads == 128u);
    CHECK(l.shared == 9u * static_cast<unsigned>(g.gc) * 8 * 4);
  }
  // The tiled kernel's shared memory, hand-worked: filters K·K·32 f32, two patches of
  // (7S + (K-1)d + 1) × (15S + (K-1)d + 1) pixels × 32 16-bit slots.
  const auto shared = [](int k, int st, int d) {
    return cuda::kernels::depthwise_tiled_shared(
        {256, 96, 112, 112, 96, 96, 96, 56, 56, k, k, st, st, 1, 1, d, d, 96, 1, 1});
  };
  CHECK(shared(3, 1, 1) == 9 * 32 * 4 + 2 * 10 * 18 * 64);   // 24,192
  CHECK(shared(3, 2, 1) == 9 * 32 * 4 + 2 * 17 * 33 * 64);   // 72,960
  CHECK(shared(5, 2, 1) == 25 * 32 * 4 + 2 * 19 * 35 * 64);  // 88,320
  CHECK(shared(7, 1, 2) == 49 * 32 * 4 + 2 * 20 * 28 * 64);  // 77,952
}

namespace {
// Pools of 2x2 (4 lanes a pooled output), 3x3 ceil-mode padded (9 positions: 16 lanes), an
// average pool without the padding counted, a 7x7 window (49 positions: a phase of its own), a
// residual, dense layers of 3136 -> 128 style (a length that is a multiple of 8 but not of 256).
constexpr auto fused_rtc_net = input<3, 30, 30> | conv<16, 3, ConvOpts{.padding = 1}> | batch_norm
    | relu | max_pool<2> | conv<16, 3, ConvOpts{.padding = 1, .groups = 4}> | silu
    | max_pool<3, PoolOpts{.stride = 2, .padding = 1, .ceil_mode = true}>
    | residual<relu>(conv<16, 3, ConvOpts{.padding = 1}>)
    | conv<24, 1> | avg_pool<2, PoolOpts{.ceil_mode = true, .count_include_pad = false}>
    | conv<8, 1> | relu | max_pool<7, PoolOpts{.stride = 1, .padding = 3}>
    | flatten | dense<20> | relu | dense<5> | log_softmax;
using FusedRtcNet = std::remove_cv_t<decltype(fused_rtc_net)>;
// A small dense layer read only as a residual (the shortcut is the add's second input), then a
// dense layer and a softmax that do make one phase.
constexpr auto residual_dense_net = input<16, 1, 1> | flatten
    | residual<relu>(dense<16>, dense<16>) | dense<4> | softmax;
using ResidualDenseNet = std::remove_cv_t<decltype(residual_dense_net)>;
}  // namespace

TEST_CASE("the fused-network kernel's source compiles in f32, f16 and bf16; a conv and its pool are one phase up to 32 window positions") {
  const auto dir = fresh_dir("strata_rtc_test_fused");
  const std::vector<std::string> names{"strata_network"};
  auto check_net = [&](const cuda::NetDesc& net, const char* what) {
    REQUIRE(net.fused_fits);
    cuda::detail::FusedWriter writer(net, 16);
    const std::string src = writer.source();
    const rtc::Compiled c = rtc::compile(src, "fused_test", names, 90, dir);
    CHECK(c.cubin.size() > 1000);
    std::string all;
    for (const std::string& s : writer.phases()) {
      all += s + "; ";
    }
    MESSAGE(std::string(what) << ": compiled in " << c.ms << " ms, " << writer.phases().size() << " phases: " << all);
    return writer.phases();
  };
  // MNIST: conv+pool (reading the caller's input), conv+pool, dense, dense+softmax.
  for (const auto& ph : {check_net(cuda::NetStorage<models::MnistCnn, DType::f16>::describe(), "MNIST f16"),
                         check_net(cuda::NetStorage<models::MnistCnn, DType::f32>::describe(), "MNIST f32")}) {
    INFO(ph.size());
    REQUIRE(ph.size() == 4);
    CHECK(ph[3] == "dense11+softmax12");
    CHECK(ph[0].find("conv0") == 0);
    CHECK(ph[0].find("+max_pool") != std::string::npos);
    CHECK(ph[1].find("+max_pool") != std::string::npos);
  }
  // Clusters of 1, 2 and 4 blocks (EngineOptions::fused_cluster), held tensors too: the same
  // phases; the source names its cluster size.
  const cuda::NetDesc mnist16 = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  for (const int c : {1, 2, 4}) {
    for (const bool hold : {false, true}) {
      cuda::detail::FusedWriter writer(mnist16, c, cuda::fused_shared_max, hold);  // (a reference)
      const std::string src = writer.source();
      INFO("cluster " << c << (hold ? ", held" : ""));
      CHECK(src.find("__cluster_dims__(" + std::to_string(c) + ", 1, 1)") != std::string::npos);
      CHECK(writer.phases().size() == 4);
      CHECK(rtc::compile(src, "fused_test", names, 90, dir).cubin.size() > 1000);
    }
  }
  // Phases separated by mbarriers (EngineOptions::fused_mbarrier_sync): the same phases, each
  // boundary a phase_sync (the host path's upload one more), no cluster barrier between phases;
  // compiles in f16 and f32, and for the pools net in bf16 (a pool phase of its own).
  {
    const cuda::NetDesc m32 = cuda::NetStorage<models::MnistCnn, DType::f32>::describe();
    const cuda::NetDesc pools = cuda::NetStorage<FusedRtcNet, DType::bf16>::describe();
    for (const cuda::NetDesc* net : {&mnist16, &m32, &pools}) {
      cuda::detail::FusedWriter writer(*net, 16, cuda::fused_shared_max, false, true);
      const std::string src = writer.source();
      const int boundaries = static_cast<int>(writer.phases().size()) - 1;
      CHECK(count(src, "    phase_sync(sync);") == boundaries + 1);  // + the host path's
      CHECK(count(src, "    cluster_sync();") == 0);
      CHECK(count(src, "mbarrier.init.shared::cta.b64") == 1);
      CHECK(rtc::compile(src, "fused_test", names, 90, dir).cubin.size() > 1000);
    }
    // Held tensors too (16-bit): the start's cluster barrier waited for before the first phase
    // (which stores into other blocks' shared memory), so no phase_sync waits for it again.
    cuda::detail::FusedWriter held(mnist16, 16, cuda::fused_shared_max, true, true);
    const std::string hs = held.source();
    CHECK(count(hs, "barrier.cluster.wait.acquire.aligned;\" ::: \"memory\");\n  sync.first = false;\n  for (int img = ") == 1);
    CHECK(count(hs, "if (img + clusters < p.batch) phase_sync(sync);") == 1);
    CHECK(count(hs, "Held<T> Y{") == 3);
    CHECK(rtc::compile(hs, "fused_test", names, 90, dir).cubin.size() > 1000);
  }
  // The second conv (32 channels) on tensor cores in 16-bit, not in f32; the first (1 channel) not.
  const auto mma_count = [](const cuda::NetDesc& net) {
    const std::string src = cuda::detail::FusedWriter(net, 16).source();
    int n = 0;
    for (std::size_t at = src.find("mma_16816<T>(acc"); at != std::string::npos;
         at = src.find("mma_16816<T>(acc", at + 1)) {
      ++n;
    }
    return n;
  };
  CHECK(mma_count(cuda::NetStorage<models::MnistCnn, DType::f16>::describe()) == 1);
  CHECK(mma_count(cuda::NetStorage<models::MnistCnn, DType::bf16>::describe()) == 1);
  CHECK(mma_count(cuda::NetStorage<models::MnistCnn, DType::f32>::describe()) == 0);
  CHECK(mma_count(cuda::NetStorage<FusedRtcNet, DType::bf16>::describe()) == 2);  // residual, 1x1+avg
  const auto rd = check_net(cuda::NetStorage<ResidualDenseNet, DType::f16>::describe(), "residual dense f16");
  REQUIRE_FALSE(rd.empty());
  CHECK(rd.back().find("+softmax") != std::string::npos);
  for (const DType p : {DType::f32, DType::bf16}) {
    const cuda::NetDesc net = p == DType::f32 ? cuda::NetStorage<FusedRtcNet, DType::f32>::describe()
                                              : cuda::NetStorage<FusedRtcNet, DType::bf16>::describe();
    const auto ph = check_net(net, p == DType::f32 ? "pools f32" : "pools bf16");
    int with_pool = 0;
    int pool_alone = 0;
    for (const std::string& s : ph) {
      with_pool += s.find("conv") == 0 && s.find("_pool") != std::string::npos;
      pool_alone += s.find("max_pool") == 0 || s.find("avg_pool") == 0;
    }
    CHECK(with_pool == 3);   // 2x2, 3x3 and the average pool in their convs' phases
    CHECK(pool_alone == 1);  // the 7x7 window (49 positions) is a phase of its own
  }
}

using TiledRtcNet = strata_test::TiledNet;  // (tests/fused_nets.hpp)

TEST_CASE("the tiled fused kernel: which networks it takes, its rectangles, its source compiles with one cluster barrier an image") {
  const auto dir = fresh_dir("strata_rtc_test_tiled");
  const std::vector<std::string> names{"strata_network"};
  const cuda::NetDesc mnist = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  {
    cuda::detail::FusedWriter w(mnist, 16, cuda::fused_shared_max, false, false, true);
    REQUIRE(w.tiled());
    const std::string src = w.source();
    // 7x7 pooled map in 2 x 7 rectangles (at most 4 pixels each, the smallest region of the
    // first conv's map read among the grids with 4): 14 blocks with one, 2 without.
    CHECK(count(src, "const bool active = rank < 14u;") == 1);
    CHECK(count(src, "const int r1y0 = ty * 7 / 2, r1y1 = (ty + 1) * 7 / 2;") == 1);
    // The first conv over the whole cluster, its items dealt to the blocks a warp at a time as in
    // the phase kernel (the host path's page-locked image copied into each block's shared memory
    // first, 196 16-byte loads), each block's outputs — 8 of every 128 — kept in its own shared
    // memory (two buffers of 1,024 bytes, by image); then its one cluster barrier (none between
    // images), each block's region of that
    // map read 16 bytes a load from the blocks that computed it, the dense layers' weights asked
    // for between the loads and the stores; the partial sums by st.async, 13 blocks x 128 floats
    // (the first block's own stored where they are), waited for with an acquire at cluster
    // scope; a relaxed cluster barrier before any block leaves.
    CHECK(count(src, "for (int e = static_cast<int>(threadIdx.x); e < 196; e += 1024) dd[e] = hs[e];") == 1);
    CHECK(count(src, "const float* src = image;  // read as f32, converted on load") == 1);
    CHECK(count(src, "const int tid = ((static_cast<int>(threadIdx.x) / 32) * 16 + static_cast<int>(cluster_rank())) * 32 + static_cast<int>(threadIdx.x) % 32;") == 1);
    CHECK(count(src, "for (int t0 = tid; t0 < 25088; t0 += 2 * nthreads)") == 1);
    CHECK(count(src, "T* Y = reinterpret_cast<T*>(staged + 0 + (nimg & 1u) * 1024);") == 1);
    CHECK(count(src, "store(Y + ((e) / 128) * 8 + (e) % 8, c < 32 ? v : 0.0f);") == 1);
    CHECK(count(src, "cluster_sync();") == 1);
    CHECK(count(src, "    }\n    cluster_sync();\n    if (active) {  // op 0: conv0+bn1+relu2+max_pool3, this block's region") == 1);
    CHECK(count(src, "cluster_addr(own + (((e) / 128) * 8 + (e) % 8) * 2, ((e) / 8) % 16);") == 1);
    CHECK(count(src, "ld.shared::cluster.v4.u32") == 1);
    CHECK(count(src, "if (i < total) dst[((pix / rw) * 4 + pix % rw) * 4 + c] = v[r];") == 1);
    CHECK(count(src, "  reads_done();") == 1);
    const std::string body = src.substr(src.find("strata_network(strata_net::Params p)"));  // the kernel
    CHECK(count(body, "cp.async.commit_group;") == 2);
    CHECK(count(src, "st.async.shared::cluster.mbarrier::complete_tx::bytes.b32") == 1);
    CHECK(count(src, "\"r\"(6656)") == 1);
    CHECK(count(src, "mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\\n\\tselp") == 1);
    CHECK(w.phases() == std::vector<std::string>{"conv0+bn1+relu2+max_pool3", "conv4+bn5+relu6+max_pool7",
                                                 "dense9+relu10 (partial sums)",
                                                 "dense9+relu10 (gathered)+dense11+softmax12"});
    const rtc::Compiled c = rtc::compile(src, "tiled_mnist", names, 90, dir);
    CHECK(c.cubin.size() > 1000);
  }
  for (const int cl : {2, 4, 8}) {  // (2 and 4: the first dense layer's columns read from global memory)
    cuda::detail::FusedWriter w(mnist, cl, cuda::fused_shared_max, false, false, true);
    REQUIRE(w.tiled());
    const rtc::Compiled c = rtc::compile(w.source(), "tiled_mnist_c" + std::to_string(cl), names, 90, dir);
    CHECK(c.cubin.size() > 1000);
  }
  for (const DType p : {DType::f16, DType::bf16}) {
    const cuda::NetDesc net = p == DType::f16 ? cuda::NetStorage<TiledRtcNet, DType::f16>::describe()
                                              : cuda::NetStorage<TiledRtcNet, DType::bf16>::describe();
    REQUIRE(net.fused_fits);
    cuda::detail::FusedWriter w(net, 16, cuda::fused_shared_max, false, false, true);
    INFO(w.tiled_misfit());
    REQUIRE(w.tiled());
    const std::string src = w.source();
    CHECK(count(src, "const bool active = rank < 9u;") == 1);  // 3x3 map: 9 rectangles
    CHECK(w.phases().size() == 6);  // four convs, the partial sums, the rest
    CHECK(w.phases().back() == "dense12+relu13 (gathered)+dense14+tanh15+dense16+log_softmax17");
    const rtc::Compiled c = rtc::compile(src, "tiled_net", names, 90, dir);
    CHECK(c.cubin.size() > 1000);
  }
  {  // one conv: its region is its rectangle; one copy group; the host path's copy float by float
    const cuda::NetDesc net = cuda::NetStorage<strata_test::TiledOneConvNet, DType::f16>::describe();
    REQUIRE(net.fused_fits);
    cuda::detail::FusedWriter w(net, 16, cuda::fused_shared_max, false, false, true);
    INFO(w.tiled_misfit());
    REQUIRE(w.tiled());
    const std::string src = w.source();
    CHECK(count(src, "for (int e = static_cast<int>(threadIdx.x); e < 286; e += 1024) dd[e] = hs[e];") == 1);
    const std::string body = src.substr(src.find("strata_network(strata_net::Params p)"));  // the kernel
    CHECK(count(body, "cp.async.commit_group;") == 1);  // (the columns': no filter to copy)
    CHECK(count(src, "cp.async.wait_group 1;") == 0);
    CHECK(w.phases() == std::vector<std::string>{"conv0+bn1+relu2+max_pool3", "dense5 (partial sums)",
                                                 "dense5 (gathered)+softmax6"});
    const rtc::Compiled c = rtc::compile(src, "tiled_one_conv", names, 90, dir);
    CHECK(c.cubin.size() > 1000);
  }
  // What it does not take, and why: one block a cluster; f32; a residual; a dense-only net.
  CHECK(cuda::detail::FusedWriter(mnist, 1, cuda::fused_shared_max, false, false, true).tiled_misfit() ==
        "a cluster of at least 2 blocks");
  CHECK(cuda::detail::FusedWriter(cuda::NetStorage<models::MnistCnn, DType::f32>::describe(), 16, cuda::fused_shared_max,
                                  false, false, true).tiled_misfit() == "16-bit NHWC engines only");
  const cuda::NetDesc rd = cuda::NetStorage<ResidualDenseNet, DType::f16>::describe();
  const cuda::detail::FusedWriter rdw(rd, 16, cuda::fused_shared_max, false, false, true);
  CHECK_FALSE(rdw.tiled());
  CHECK_FALSE(rdw.tiled_misfit().empty());
  const cuda::NetDesc rtc_net = cuda::NetStorage<FusedRtcNet, DType::f16>::describe();
  const cuda::detail::FusedWriter rw(rtc_net, 16, cuda::fused_shared_max, false, false, true);
  CHECK_FALSE(rw.tiled());
  CHECK(rw.tiled_misfit().find("not on tensor cores") != std::string::npos);  // (its grouped conv)
}

namespace {

// The numbers after `prefix` in `src` (the first line that has it): each run of digits up to the
// line's end.
std::vector<long long> numbers_after(const std::string& src, const std::string& prefix) {
  const std::size_t at = src.find(prefix);
  REQUIRE_MESSAGE(at != std::string::npos, "not in the source: " << prefix);
  const std::size_t end = src.find('\n', at);
  std::vector<long long> v;
  long long cur = -1;
  for (std::size_t i = at + prefix.size(); i <= end && i < src.size(); ++i) {
    const char ch = src[i];
    if (ch >= '0' && ch <= '9') {
      cur = (cur < 0 ? 0 : cur * 10) + (ch - '0');
    } else if (cur >= 0) {
      v.push_back(cur);
      cur = -1;
    }
  }
  return v;
}

// The tiled form's first conv, emulated from its generated source: which block each item goes to
// (the tid line), where each block stores each output (the store), where the readers look for it
// (the region load's owner and slot) — every output stored once, where it is read, within its
// block's buffer; every 16-byte load within one block's outputs.
void check_tiled_first_map(const std::string& src, const std::string& what) {
  INFO(what);
  const std::string body = src.substr(src.find("strata_network(strata_net::Params p)"));
  const auto tid = numbers_after(body, "const int tid = ((static_cast<int>(threadIdx.x) / ");
  REQUIRE(tid.size() == 4);  // G, cluster, G, G
  const long long g = tid[0], cluster = tid[1];
  CHECK(tid[2] == g);
  CHECK(tid[3] == g);
  const long long nthreads = numbers_after(body, "const int nthreads = ").at(0);
  CHECK(nthreads == cluster * 1024);
  const long long bytes = numbers_after(body, "T* Y = reinterpret_cast<T*>(staged + ").at(2);
  const bool pooled = body.find("for (int t0 = tid; t0 < ") != std::string::npos;
  long long work = 0, lanes = 1, outputs = 0;
  if (pooled) {
    work = numbers_after(body, "for (int t0 = tid; t0 < ").at(0);
    lanes = numbers_after(body, "          const int e = t / ").at(0);
    outputs = numbers_after(body, "if (t < " + std::to_string(work) + " && t % ").at(2);  // lanes, 0, outputs
  } else {
    work = outputs = numbers_after(body, "for (int e = tid; e < ").at(0);
  }
  const auto st = numbers_after(body, "store(Y + ((e) / ");  // E, B, B[, channels]
  const auto rd = numbers_after(body, "cluster_addr(own + (((e) / ");  // E, B, B, 2, B, cluster
  REQUIRE(st.size() >= 3);
  REQUIRE(rd.size() == 6);
  CHECK(g % 32 == 0);  // (a pooled output's lanes in one warp)
  std::vector<std::vector<int>> seen(static_cast<std::size_t>(cluster));
  std::vector<long long> where(static_cast<std::size_t>(outputs), -1);
  int bad = 0;
  for (long long rank = 0; rank < cluster; ++rank) {
    seen[static_cast<std::size_t>(rank)].assign(static_cast<std::size_t>(bytes / 2), 0);
    for (long long x = 0; x < 1024; ++x) {
      for (long long t = ((x / g) * cluster + rank) * g + x % g; t < work; t += nthreads) {
        const long long e = t / lanes;
        if (t % lanes != 0 || e >= outputs) {
          continue;
        }
        const long long slot = (e / st[0]) * st[1] + e % st[2];
        const long long owner = (e / rd[4]) % rd[5];
        const long long read = (e / rd[0]) * rd[1] + e % rd[2];
        bad += owner != rank || read != slot || slot < 0 || slot >= bytes / 2;
        if (slot >= 0 && slot < bytes / 2) {
          bad += seen[static_cast<std::size_t>(rank)][static_cast<std::size_t>(slot)]++ != 0;
        }
        bad += where[static_cast<std::size_t>(e)] != -1;
        where[static_cast<std::size_t>(e)] = rank;
      }
    }
  }
  CHECK(bad == 0);
  CHECK(std::count(where.begin(), where.end(), -1) == 0);  // every output computed
  for (long long e = 0; e < outputs; e += 8) {  // a 16-byte load: 8 outputs of one block, in a row
    const long long owner = (e / rd[4]) % rd[5];
    const long long slot = (e / rd[0]) * rd[1] + e % rd[2];
    for (long long k = 1; k < 8 && e + k < outputs; ++k) {
      bad += (e + k) / rd[4] % rd[5] != owner || ((e + k) / rd[0]) * rd[1] + (e + k) % rd[2] != slot + k;
    }
    bad += slot % 8 != 0;
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("the tiled fused kernel's first conv: every output stored once by one block and read where it was stored") {
  // From the generated source's own numbers (the tid line, the store, the region load), at every
  // cluster size: MNIST (4 lanes a pooled output), the test network (a 3x3 pool: 16 lanes, chunks
  // of 128 items), the one-conv network (its last round partial).
  const auto run = [](const cuda::NetDesc& net, const char* name) {
    for (const int cl : {2, 4, 8, 16}) {
      cuda::detail::FusedWriter w(net, cl, cuda::fused_shared_max, false, false, true);
      REQUIRE(w.tiled());
      check_tiled_first_map(w.source(), std::string(name) + " cluster " + std::to_string(cl));
    }
  };
  run(cuda::NetStorage<models::MnistCnn, DType::f16>::describe(), "mnist");
  run(cuda::NetStorage<TiledRtcNet, DType::f16>::describe(), "tiled");
  run(cuda::NetStorage<strata_test::TiledOneConvNet, DType::bf16>::describe(), "one conv");
}

TEST_CASE("the fused kernel holds tensors between phases and copies weights into shared memory at its start, in 16-bit, within its limit") {
  const cuda::NetDesc f16 = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  // Cluster of 16. First the tensors held in shared memory between phases (in the order first
  // declared): conv0's pooled output (32x14x14 x 2 B = 12544), conv4's (64x7x7 x 2 B = 6272),
  // dense9's (128 x 2 B = 256): 19072 bytes. Then conv4's staging, its input held: the filter's
  // slot (64x3x3x32 x 2 B = 36864) to 55936; then conv4's filter again (36864, kept for every
  // image), this block's 8 rows of dense9 (128 outputs, 4 warps each, 32 warps a block:
  // 8 x 3136 x 2 B = 50176) and, for the first block, dense11's 10 rows of 128 (2560).
  {
    cuda::detail::FusedWriter w(f16, 16, cuda::fused_shared_max, true);
    const std::string src = w.source();
    CHECK(w.shared_bytes() == 19072 + 36864 + 36864 + 50176 + 2560);
    CHECK(count(src, "    prefetch(staged + 55936, p.w[2], 36864);") == 1);
    CHECK(count(src, "prefetch(staged + 92800, static_cast<const unsigned char*>(p.w[4]) + a, min(50176LL, 802816LL - a));") == 1);
    CHECK(count(src, "if (rank == 0) prefetch(staged + 142976, p.w[5], 2560);") == 1);
    CHECK(count(src, "prefetched();") == 2);  // before dense9 and dense11 read them
    // Held: written into every block's copy, read from the block's own; conv4 reads its input
    // where it is (no staging copy); the arena is not used at all.
    CHECK(count(src, "Held<T> Y{reinterpret_cast<T*>(staged + 0)};") == 1);
    CHECK(count(src, "Held<T> Y{reinterpret_cast<T*>(staged + 12544)};") == 1);
    CHECK(count(src, "Held<T> Y{reinterpret_cast<T*>(staged + 18816)};") == 1);
    CHECK(count(src, "const T* X = reinterpret_cast<const T*>(staged + 12544);") == 1);
    CHECK(count(src, "const T* Xs = X;") == 1);
    CHECK(count(src, "xs[i] = xg[i]") == 0);
    CHECK(count(src, "tensor<") == 0);
    CHECK(count(src, "constexpr unsigned kCluster = 16;") == 1);
    // Every block of the cluster has started before any writes into another's shared memory.
    CHECK(count(src, "  cluster_sync();\n  for (int img = ") == 1);
    // A cluster that goes on to another image waits for its blocks first.
    CHECK(count(src, "if (img + clusters < p.batch) cluster_sync();") == 1);
  }
  // Not held (the default, EngineOptions::fused_hold off): conv4 stages its input (12544) and
  // filter (36864) from 0, the weights follow from 49408.
  {
    cuda::detail::FusedWriter w(f16, 16);
    const std::string src = w.source();
    CHECK(w.shared_bytes() == 49408 + 36864 + 50176 + 2560);
    CHECK(count(src, "    prefetch(staged + 49408, p.w[2], 36864);") == 1);
    CHECK(count(src, "Held<T> Y{") == 0);
    CHECK(count(src, "xs[i] = xg[i]") == 1);
    CHECK(count(src, "if (img + clusters < p.batch) cluster_sync();") == 0);
  }
  // Cluster of 8: 16 rows of dense9 a block.
  {
    cuda::detail::FusedWriter w(f16, 8, cuda::fused_shared_max, true);
    const std::string src = w.source();
    CHECK(w.shared_bytes() == 19072 + 36864 + 36864 + 100352 + 2560);
    CHECK(count(src, "constexpr unsigned kCluster = 8;") == 1);
  }
  // A limit of 60000 bytes: held tensors may take what staging conv4's input and filter
  // (49408) leaves, 10592: conv4's output (6272) and dense9's (256), not conv0's; then conv4
  // stages its input as before (from 6528), and only dense11's rows fit after it.
  {
    cuda::detail::FusedWriter w(f16, 16, 60000, true);
    const std::string src = w.source();
    CHECK(w.shared_bytes() == 6528 + 49408 + 2560);
    CHECK(count(src, "prefetch(staged + 55936, p.w[5], 2560);") == 1);
    CHECK(count(src, "p.w[4]) + a") == 0);
    CHECK(count(src, "Held<T> Y{") == 2);
    CHECK(count(src, "uint4* xs = reinterpret_cast<uint4*>(staged + 6528);") == 1);
  }
  // f32: none (measured slower); no staged conv either.
  {
    const cuda::NetDesc f32 = cuda::NetStorage<models::MnistCnn, DType::f32>::describe();
    cuda::detail::FusedWriter w(f32, 16, cuda::fused_shared_max, true);  // (it keeps a reference to the description)
    const std::string src = w.source();
    CHECK(w.shared_bytes() == 0);
    CHECK(count(src, "prefetch(staged") == 0);
    CHECK(count(src, "Held<T> Y{") == 0);  // nothing held either (16-bit only, as the prefetch)
  }
}

TEST_CASE("the compile tally counts programs NVRTC compiled, not those read from the cache") {
  const auto dir = fresh_dir("strata_rtc_test_tally");
  const std::vector<std::string> names{"k<float>"};
  const std::string a = "template <class T> __global__ void k(T* p) { *p = T(3); }";
  const rtc::CompileTally t0 = rtc::compile_tally();
  const rtc::Compiled first = rtc::compile(a, "tally", names, 90, dir);
  const rtc::CompileTally t1 = rtc::compile_tally();
  CHECK_FALSE(first.from_disk);
  CHECK(t1.programs == t0.programs + 1);
  CHECK(t1.ms > t0.ms);
  CHECK(rtc::compile(a, "tally", names, 90, dir).from_disk);
  CHECK(rtc::compile_tally().programs == t1.programs);
}

TEST_CASE("the tensor-core conv's source compiles for the MNIST CNN's convs, with and without their pools, in f16 and bf16") {
  const auto dir = fresh_dir("strata_rtc_test_mma_conv");
  const cuda::NetDesc net = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  int convs = 0;
  for (const cuda::OpDesc& op : net.ops) {
    if (op.kind != OpKind::conv) {
      continue;
    }
    ++convs;
    INFO(op.label);
    REQUIRE(cuda::tactics::mma::fits(op));  // 8 slots (two taps a k-step) and 32
    CHECK(cuda::tactics::mma::rows_per_pixel(op) == 4);
    for (const bool pooled : {true, false}) {
      const std::string src = cuda::tactics::mma::source(op, pooled);
      for (const char* t : {"strata_rtc::f16", "strata_rtc::bf16"}) {
        const std::vector<std::string> names{std::string("strata_rtc::mma_conv<") + t + ">"};
        const rtc::Compiled c = rtc::compile(src, "mma_conv", names, 90, dir);
        CHECK(c.cubin.size() > 1000);
        const std::string what = op.label + (pooled ? " pooled " : " ") + t;
        MESSAGE(what << ": compiled in " << c.ms << " ms");
      }
      // The second form (algo 1): a 2x2 max pool under a relu, or no pool in the kernel.
      REQUIRE(cuda::tactics::mma::paired_fits(op, pooled));
      const std::string paired = cuda::tactics::mma::paired_source(op, pooled);
      CHECK(paired.find(std::string("constexpr int L = ") + (pooled ? "4" : "1") + ";") !=
            std::string::npos);
      for (const char* t : {"strata_rtc::f16", "strata_rtc::bf16"}) {
        const std::vector<std::string> names{std::string("strata_rtc::mma_conv_pairs<") + t + ">"};
        CHECK(rtc::compile(paired, "mma_conv_pairs", names, 90, dir).cubin.size() > 1000);
      }
    }
  }
  CHECK(convs == 2);
  // An odd number of n-tiles (20 outputs in 24 slots: 3), a ceil-mode pool over an odd map.
  {
    constexpr auto odd = input<16, 9, 11> | conv<20, 3, ConvOpts{.padding = 1}> | batch_norm
        | relu | max_pool<2, PoolOpts{.ceil_mode = true}> | flatten | dense<3>;
    using Odd = std::remove_cv_t<decltype(odd)>;
    const cuda::NetDesc odd_net = cuda::NetStorage<Odd, DType::f16>::describe();
    const cuda::OpDesc& c = odd_net.ops.front();
    REQUIRE(cuda::tactics::mma::paired_fits(c, true));
    const std::string src = cuda::tactics::mma::paired_source(c, true);
    CHECK(src.find("constexpr int NT = 3;") != std::string::npos);
    const std::vector<std::string> names{"strata_rtc::mma_conv_pairs<strata_rtc::bf16>"};
    CHECK(rtc::compile(src, "mma_conv_pairs_odd", names, 90, dir).cubin.size() > 1000);
  }
  // Offered to tuning in every form that fits, wgmma first (only on a GPU of compute capability
  // 9.0), each with its pool inside and not; the heuristic names wgmma with the pool ahead of
  // the libraries where it runs, else the second form as a fallback.
  {
    const auto* t = cuda::find_tactic<DType::f16>("mma_conv");
    const bool wg = cuda::tactics::mma::wgmma_device();
    std::vector<cuda::Variant> expected;
    for (const int fuse : {1, 0}) {
      if (wg) {
        expected.push_back(cuda::Variant{"mma_conv", 2, 0, fuse});
      }
      expected.push_back(cuda::Variant{"mma_conv", 1, 0, fuse});
      expected.push_back(cuda::Variant{"mma_conv", 0, 0, fuse});
    }
    CHECK(t->candidates(net.ops[1], 4096, 0, {}) == expected);
    const auto claim = t->heuristic(net.ops[1], 4096, 0, {});
    REQUIRE(claim.has_value());
    CHECK(claim->variant == cuda::Variant{"mma_conv", wg ? 2 : 1, 0, 1});
    CHECK(claim->rank == (wg ? cuda::rank::special : cuda::rank::fallback + 1));
    // Below the batch that gives every SM blocks of its own, a fallback in the second form.
    const auto small = t->heuristic(net.ops[1], 8, 0, {});
    REQUIRE(small.has_value());
    CHECK(small->variant == cuda::Variant{"mma_conv", 1, 0, 1});
    CHECK(small->rank == cuda::rank::fallback + 1);
  }
  // The wgmma form's source compiles for sm_90a (f16, bf16; pooled and not; 1 to 4 images a
  // group), with one wgmma.m64n64k16 a k-step.
  for (const bool pooled : {true, false}) {
    for (const int images : {1, 2, 4}) {
      const std::string src = cuda::tactics::mma::wgmma_source(net.ops[1], pooled, images);
      CHECK(src.find("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16") != std::string::npos);
      CHECK(src.find(std::string("constexpr int IMAGES = ") + std::to_string(images) + ";") !=
            std::string::npos);
      for (const char* t : {"strata_rtc::f16", "strata_rtc::bf16"}) {
        const std::vector<std::string> names{std::string("strata_rtc::mma_conv_wgmma<") + t + ">"};
        CHECK(rtc::compile(src, "mma_conv_wgmma", names, 90, dir, true).cubin.size() > 1000);
      }
    }
  }
  // Image rows padded (math 1): the staged image's rows W + 1 pixels apart, its shared memory
  // that much larger; the source compiles. Math 1 with another algo, or math 2, is refused.
  {
    const int wp = cuda::tactics::mma::image_pitch(net.ops[1], true);
    CHECK(wp == net.ops[1].conv.w + 1);
    CHECK(cuda::tactics::mma::wgmma_shared_bytes(net.ops[1], 2, wp) -
              cuda::tactics::mma::wgmma_shared_bytes(net.ops[1], 2) ==
          std::int64_t{2} * net.ops[1].conv.h * cuda::tactics::mma::pixel_stride(net.ops[1]) * 2);
    const std::string src = cuda::tactics::mma::wgmma_source(net.ops[1], true, 2, wp);
    CHECK(src.find("constexpr int WP = " + std::to_string(wp) + ";") != std::string::npos);
    CHECK(rtc::compile(src, "mma_conv_wgmma_wp", {"strata_rtc::mma_conv_wgmma<strata_rtc::f16>"}, 90, dir, true)
              .cubin.size() > 1000);
    const auto* mt = cuda::find_tactic<DType::f16>("mma_conv");
    for (const cuda::Variant& bad : {cuda::Variant{"mma_conv", 1, 1, 1}, cuda::Variant{"mma_conv", 2, 2, 1}}) {
      try {
        (void)mt->prepare(net.ops[1], bad, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
        FAIL("mma_conv accepted " << cuda::to_string(bad));
      } catch (const strata::Error& e) {
        CHECK(std::string(e.what()).find(net.ops[1].label) != std::string::npos);
      }
    }
  }
  // 3 n-tiles: wgmma's N = 24.
  {
    constexpr auto odd3 = input<16, 9, 11> | conv<20, 3, ConvOpts{.padding = 1}> | batch_norm
        | relu | max_pool<2, PoolOpts{.ceil_mode = true}> | flatten | dense<3>;
    using Odd3 = std::remove_cv_t<decltype(odd3)>;
    const cuda::NetDesc n3 = cuda::NetStorage<Odd3, DType::bf16>::describe();
    const std::string src = cuda::tactics::mma::wgmma_source(n3.ops.front(), true);
    CHECK(src.find("wgmma.mma_async.sync.aligned.m64n24k16.f32.bf16.bf16") != std::string::npos);
    const std::vector<std::string> names{"strata_rtc::mma_conv_wgmma<strata_rtc::bf16>"};
    CHECK(rtc::compile(src, "mma_conv_wgmma_odd", names, 90, dir, true).cubin.size() > 1000);
  }
  // Not for f32, a residual, a pool window over 8 positions or channel slots not in 8s.
  const cuda::NetDesc f32 = cuda::NetStorage<models::MnistCnn, DType::f32>::describe();
  CHECK(cuda::find_tactic<DType::f32>("mma_conv") != nullptr);
  CHECK_FALSE(cuda::find_tactic<DType::f32>("mma_conv")->applicable(f32.ops.front()));
  const cuda::NetDesc pools = cuda::NetStorage<FusedRtcNet, DType::f16>::describe();
  for (const cuda::OpDesc& op : pools.ops) {
    if (op.kind == OpKind::conv && op.pool && op.pool->layer.kernel.h * op.pool->layer.kernel.w != 4) {
      CHECK_FALSE(cuda::tactics::mma::paired_fits(op, true));  // only a 2x2 window's max
    }
    if (op.kind == OpKind::conv && (op.has_residual || (op.pool && op.pool->layer.kernel.h * op.pool->layer.kernel.w > 8))) {
      INFO(op.label);
      CHECK_FALSE(cuda::tactics::mma::fits(op));
    }
  }
}

namespace {
// ResNet's stem (read space-to-depth in 16-bit: 4x4 taps over 16 slots) with its max pool, and a
// 3x3 conv with 128 output channels (two groups of 64 a warp) and an average pool.
constexpr auto tile_stem_net = input<3, 224, 224>
    | conv<64, 7, ConvOpts{.stride = 2, .padding = 3, .bias = false}> | batch_norm | relu
    | max_pool<3, PoolOpts{.stride = 2, .padding = 1}>
    | conv<128, 1> | relu | avg_pool<2, PoolOpts{.padding = 1}>
    | residual(conv<128, 3, ConvOpts{.padding = 1}>);
using TileStemNet = std::remove_cv_t<decltype(tile_stem_net)>;
}  // namespace

// tile_conv math 2 (session 28; GPU-run in session 29, claimed in 30): tiles for one image on the GPU's SMs.
TEST_CASE("the tiled tensor-core conv's tiles for a small batch (math 2): MobileNetV2's stem") {
  const auto dir = fresh_dir("strata_rtc_test_tile_small");
  const cuda::NetDesc net = cuda::NetStorage<models::MobileNetV2, DType::f16>::describe();
  const cuda::OpDesc& stem = net.ops.front();
  REQUIRE(stem.conv.s2d);
  REQUIRE_FALSE(stem.pool.has_value());
  namespace tl = cuda::tactics::tile;
  // choose(): the fewest warp rounds an image — 25x28 outputs, 20 tiles of 3 rounds; for one
  // image on 132 SMs: a tile of one round (256 GEMM rows at most), 56 tiles.
  const tl::Tile per_image = tl::choose(stem, false);
  const tl::Tile one = tl::choose_for(stem, false, 1, 132);
  CHECK(per_image.tiles == 20);
  CHECK(per_image.rounds == 3);
  CHECK(one.rounds == 1);
  CHECK(one.py * one.px == 256);
  CHECK(one.tiles == 56);
  CHECK(one.shared <= tl::max_shared);
  // a batch that fills the GPU many times over: the per-image choice's work within a round a
  // block of it
  const tl::Tile many = tl::choose_for(stem, false, 256, 132);
  CHECK((256LL * many.tiles + 131) / 132 * (many.rounds + 1) <=
        (256LL * per_image.tiles + 131) / 132 * (per_image.rounds + 1));
  const std::vector<std::string> names{"strata_rtc::tile_conv<strata_rtc::f16>"};
  CHECK(rtc::compile(tl::source(stem, false, one), "tile_small", names, 90, dir).cubin.size() > 1000);
  // offered at small batches only (stems, on a GPU of sm_80 on, or none known)
  const auto* t = cuda::find_tactic<DType::f16>("tile_conv");
  REQUIRE(t != nullptr);
  const auto offered = t->candidates(stem, 1, std::size_t{1} << 30, {});
  const bool small = std::any_of(offered.begin(), offered.end(),
                                 [](const cuda::Variant& v) { return (v.math & 2) != 0; });
  CHECK(small == cuda::tactics::generated::mma_sync_device());
  const auto at256 = t->candidates(stem, 256, std::size_t{1} << 30, {});
  CHECK(std::none_of(at256.begin(), at256.end(), [](const cuda::Variant& v) { return (v.math & 2) != 0; }));
}

TEST_CASE("the tiled tensor-core conv: tiles for ResNet's stem, its source compiles pooled or not") {
  const auto dir = fresh_dir("strata_rtc_test_tile_conv");
  const cuda::NetDesc net = cuda::NetStorage<TileStemNet, DType::f16>::describe();
  const cuda::OpDesc& stem = net.ops.front();
  REQUIRE(stem.kind == OpKind::conv);
  REQUIRE(stem.pool.has_value());
  CHECK(stem.conv.s2d);
  // 7x8 pooled outputs need 15x17 conv outputs (3x3 windows, stride 2): 255 rows, one round of
  // the 8 warps (2 m-tiles each); their patch is 18x20 pixels of the 4x4-tap conv.
  const cuda::tactics::tile::Tile t = cuda::tactics::tile::choose(stem, true);
  CHECK(t.py * t.px == 56);
  CHECK(t.m <= 256);
  CHECK(t.rounds == 1);
  CHECK(t.tiles == 56);
  CHECK(t.shared <= cuda::tactics::tile::max_shared);
  const cuda::tactics::tile::Tile u = cuda::tactics::tile::choose(stem, false);
  CHECK(u.m == u.py * u.px);  // unpooled: a tile is its own conv outputs
  CHECK(u.rounds >= 1);
  const auto* tactic = cuda::find_tactic<DType::f16>("tile_conv");
  // Measured tuning times it on the stem only: the 64- and 128-slot convs after it are left to
  // the libraries (it lost there by 1.6-5.8x), though it can run them.
  CHECK(tactic->timed(stem, 256));
  for (std::size_t i = 1; i < net.ops.size(); ++i) {
    INFO(net.ops[i].label);
    CHECK(net.ops[i].conv.cp > 16);
    CHECK_FALSE(tactic->timed(net.ops[i], 256));
  }
  CHECK(tactic->applicable(net.ops[1]));
  REQUIRE(tactic != nullptr);
  // The heuristic claims the pooled stem ahead of cuDNN's conv (rank library) at every batch
  // and the other convs behind every other tactic (where a GPU before sm_80 answers, it claims
  // nothing): at batch 256 on wgmma with the 12-slot patch reading the caller's input (algo 7,
  // padded rows), elsewhere — and at batch 1, 56 tiles for the whole GPU — on mma.sync reading
  // the caller's input (algo 2). (Since session 54 the swapped form, algo 9, ahead of algo 7.)
  const cuda::Libraries none{};
  if (cuda::tactics::generated::mma_sync_device()) {
    const auto claim = tactic->heuristic(stem, 256, 0, none);
    REQUIRE(claim.has_value());
    CHECK(claim->rank < cuda::rank::library);
    const cuda::Variant big = cuda::tactics::mma::wgmma_device() ? cuda::Variant{"tile_conv", 9, 0, 1}
                                                                : cuda::Variant{"tile_conv", 2, 0, 1};
    CHECK(claim->variant == big);
    const auto other = tactic->heuristic(net.ops[1], 256, 0, none);
    REQUIRE(other.has_value());
    CHECK(other->rank > cuda::rank::fallback);
    const auto one = tactic->heuristic(stem, 1, 0, none);
    REQUIRE(one.has_value());
    CHECK(one->rank < cuda::rank::library);
    CHECK(one->variant == cuda::Variant{"tile_conv", 2, 0, 1});
    // DenseNet-121's stem, which writes the first 64 channels of block 1's concatenation: the
    // same claims (it writes the slice itself).
    cuda::NetDesc dn = cuda::NetStorage<models::DenseNet121, DType::f16>::describe();
    cuda::fold_for_per_op_path(dn);
    const auto ds = std::find_if(dn.ops.begin(), dn.ops.end(), [](const cuda::OpDesc& op) { return op.conv.s2d; });
    REQUIRE(ds != dn.ops.end());
    const cuda::OpDesc& dstem = *ds;
    INFO(dstem.label);
    REQUIRE(dstem.slice.has_value());
    CHECK(cuda::tactics::tile::writes_slice(dstem));
    const auto dclaim = tactic->heuristic(dstem, 256, 0, none);
    REQUIRE(dclaim.has_value());
    CHECK(dclaim->rank < cuda::rank::library);
    CHECK(dclaim->variant == big);
    const auto done = tactic->heuristic(dstem, 1, 0, none);
    REQUIRE(done.has_value());
    CHECK(done->variant == cuda::Variant{"tile_conv", 2, 0, 1});
    // In bf16 the same: the swapped form reading the caller's input (algo 9) offered and claimed
    // at batch 256 since session 55 (its bf16 form equal to algo 8's to the bit on an H100), the
    // 12-slot patch reading it (algo 7) offered again since session 54.
    const auto* tb = cuda::find_tactic<DType::bf16>("tile_conv");
    const auto bv = tb->candidates(stem, 256, 0, none);
    if (cuda::tactics::mma::wgmma_device()) {
      CHECK(std::count(bv.begin(), bv.end(), cuda::Variant{"tile_conv", 7, 1, 1}) == 1);
      CHECK(std::count(bv.begin(), bv.end(), cuda::Variant{"tile_conv", 8, 0, 1}) == 1);
      CHECK(std::count(bv.begin(), bv.end(), cuda::Variant{"tile_conv", 9, 0, 1}) == 1);
    }
    const auto bclaim = tb->heuristic(stem, 256, 0, none);
    REQUIRE(bclaim.has_value());
    CHECK(bclaim->variant == big);
  }
  int compiled = 0;
  for (const cuda::OpDesc& op : net.ops) {
    if (op.kind != OpKind::conv) {
      continue;
    }
    INFO(op.label);
    if (op.has_residual) {  // not this kernel
      CHECK_FALSE(tactic->applicable(op));
      continue;
    }
    REQUIRE(tactic->applicable(op));
    for (const bool pooled : {true, false}) {
      const std::string src = cuda::tactics::tile::source(op, pooled, cuda::tactics::tile::choose(op, pooled));
      // (bf16 for the stem's pooled kernel only: each compile takes seconds)
      for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
        if (std::string_view(ty) == "strata_rtc::bf16" && (&op != &stem || !pooled)) {
          continue;
        }
        const std::vector<std::string> names{std::string("strata_rtc::tile_conv<") + ty + ">"};
        const rtc::Compiled c = rtc::compile(src, "tile_conv", names, 90, dir);
        CHECK(c.cubin.size() > 1000);
        const std::string what = op.label + (pooled ? " pooled " : " ") + ty;
        MESSAGE(what << ": compiled in " << c.ms << " ms");
        ++compiled;
      }
    }
  }
  CHECK(compiled == 5);
  // The stem's ReLU is applied after its max pool (the same bits: max and rounding commute with
  // it); the average pool's ReLU before it, per conv output, and the unpooled kernel's too.
  namespace tl = cuda::tactics::tile;
  CHECK(tl::post_activation(stem, true));
  CHECK_FALSE(tl::post_activation(stem, false));
  CHECK(tl::source(stem, true, t).find("constexpr bool POST_ACT = true;") != std::string::npos);
  CHECK(tl::source(stem, false, u).find("constexpr bool POST_ACT = false;") != std::string::npos);
  for (const cuda::OpDesc& op : net.ops) {
    if (op.kind == OpKind::conv && op.pool && op.pool->kind == OpKind::avg_pool) {
      CHECK_FALSE(tl::post_activation(op, true));
    }
  }
  cuda::OpDesc six = stem;
  six.act = ActDesc{Act::clip, 0.0f, 6.0f};
  CHECK(tl::post_activation(six, true));
  six.act.beta = 5.0f;  // a clip other than ReLU6: per conv output
  CHECK_FALSE(tl::post_activation(six, true));
  six.act = ActDesc{Act::silu, 0.0f, 0.0f};  // not monotone
  CHECK_FALSE(tl::post_activation(six, true));
  // The stem reading the caller's input itself (f32 NCHW, and 8-bit HWC): offered for the
  // space-to-depth stem only. Its rows are staged in shared memory where the device lets a
  // block have them besides the rest (not without a device: 96 KB is all that is known then),
  // else read element by element.
  if (cuda::tactics::generated::mma_sync_device()) {
    const auto stem_v = tactic->candidates(stem, 256, 0, none);
    CHECK(std::count(stem_v.begin(), stem_v.end(), cuda::Variant{"tile_conv", 2, 0, 1}) == 1);
    const cuda::tactics::tile::Tile t0 = cuda::tactics::tile::choose(stem, true);
    const cuda::tactics::tile::RawInput f32_in{true, cuda::InputFormat::f32, false, net.in_shape};
    const std::int64_t stage = cuda::tactics::tile::raw_stage(t0, f32_in).bytes;
    CHECK(stage > 0);
    const bool room = t0.shared + stage <= std::max<std::int64_t>(cuda::tactics::tile::max_shared,
                                                                  cuda::tactics::tile::device_shared_optin());
    CHECK(cuda::tactics::tile::fitted(f32_in, t0, t0.shared).staged == room);
    CHECK_FALSE(cuda::tactics::tile::fitted(f32_in, t0, std::int64_t{1} << 30).staged);
    CHECK(cuda::tactics::tile::raw_stage(t0, cuda::tactics::tile::fitted(f32_in, t0, std::int64_t{1} << 30)).wb == 0);
    const auto other_v = tactic->candidates(net.ops[1], 256, 0, none);
    CHECK(std::none_of(other_v.begin(), other_v.end(), [](const cuda::Variant& x) { return x.algo == 2; }));
  }
  for (const cuda::InputFormat f : {cuda::InputFormat::f32, cuda::InputFormat::u8_hwc}) {
    const bool hwc = f == cuda::InputFormat::u8_hwc;
    const std::string raw = cuda::tactics::tile::source(
        stem, true, cuda::tactics::tile::choose(stem, true), false, {true, f, hwc, net.in_shape});
    CHECK(raw.find("constexpr bool RAW = true;") != std::string::npos);
    // 224-pixel rows (896 or 672 bytes): staged with 16-byte cp.async
    CHECK(raw.find("constexpr bool RAW_STAGED = true;") != std::string::npos);
    CHECK(raw.find("constexpr int RWB = 16;") != std::string::npos);
    CHECK(raw.find(hwc ? "RPIX = 3, RCH = 1" : "RPIX = 1, RCH = 50176") != std::string::npos);
    const rtc::Compiled cr = rtc::compile(raw, "tile_conv", {"strata_rtc::tile_conv<strata_rtc::f16>"}, 90, dir);
    CHECK(cr.cubin.size() > 1000);
  }
  {
    // Five input channels (24 slots a space-to-depth pixel; normalization for channels 0-4),
    // f16 rows of 60 (120 bytes: 8-byte words), staged and element by element.
    constexpr auto five = input<5, 64, 60> | conv<16, 7, ConvOpts{.stride = 2, .padding = 3, .bias = false}>
        | relu | max_pool<3, PoolOpts{.stride = 2, .padding = 1}> | flatten | dense<3>;
    using Five = std::remove_cv_t<decltype(five)>;
    static_assert(cuda::NetStorage<Five, DType::f16>::s2d_op() == 0);
    const cuda::NetDesc fnet = cuda::NetStorage<Five, DType::f16>::describe();
    const cuda::OpDesc& fs = fnet.ops.front();
    const cuda::tactics::tile::Tile ft = cuda::tactics::tile::choose(fs, true);
    REQUIRE(ft.py > 0);
    for (const bool staged : {true, false}) {
      cuda::tactics::tile::RawInput ri{true, cuda::InputFormat::f16, false, fnet.in_shape};
      ri.staged = staged;
      CHECK(cuda::tactics::tile::raw_stage(ft, ri).wb == (staged ? 8 : 0));
      const std::string src = cuda::tactics::tile::source(fs, true, ft, false, ri);
      CHECK(src.find(staged ? "constexpr bool RAW_STAGED = true;" : "constexpr bool RAW_STAGED = false;") != std::string::npos);
      CHECK(rtc::compile(src, "tile_conv", {"strata_rtc::tile_conv<strata_rtc::f16>"}, 90, dir).cubin.size() > 1000);
    }
  }
  {
    // The 12-slot patch (algos 6 and 7): ResNet's stem (3 channels: 12 of 16 slots) in 12
    // k-steps of 16 (4 tap rows × 3), not 16; its source compiles for sm_90a with and without
    // the caller's input (staged), in f16 and bf16. A stem of 4 or 5 channels is not one.
    REQUIRE(cuda::tactics::tile::dense12_fits(stem));
    const cuda::tactics::tile::Tile st12 = cuda::tactics::tile::choose(stem, true);
    for (const bool raw_in : {false, true}) {
      const std::string src = cuda::tactics::tile::source(
          stem, true, st12, false,
          raw_in ? cuda::tactics::tile::RawInput{true, cuda::InputFormat::f32, false, net.in_shape}
                 : cuda::tactics::tile::RawInput{},
          true, true);
      CHECK(src.find("constexpr bool D12 = true;") != std::string::npos);
      CHECK(src.find("constexpr int KSTEPS = 12;") != std::string::npos);
      for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
        const std::vector<std::string> names{std::string("strata_rtc::tile_conv<") + ty + ">"};
        CHECK(rtc::compile(src, "tile_conv_d12", names, 90, dir, true).cubin.size() > 1000);
      }
    }
    // The swapped form (algos 8 and 9): channels as wgmma's M, the tile's conv outputs in the
    // patch's grid as its N, at most tile::swap_max_n a warpgroup — ResNet's stem takes tiles of
    // 4x14 pooled outputs, 9x29 conv outputs over rows of 32 patch pixels: 8 · 32 + 29 = 285
    // columns, 144 a warpgroup (two of 144 ≥ 285). Its source compiles for sm_90a: pooled from
    // the caller's input in f16 (the heuristic's claim) and from the map in bf16, unpooled from
    // the map in f16 (each compile takes seconds).
    namespace tl = cuda::tactics::tile;
    REQUIRE(tl::swap_geometry(stem));
    const tl::Tile sw = tl::choose_swap(stem, true);
    REQUIRE(sw.py > 0);
    const tl::Swap sws = tl::swap_of(stem, sw);
    // (hand-worked: 4x14 pooled outputs need 9x29 conv outputs from a 12x32 patch)
    CHECK(sw.py == 4);
    CHECK(sw.px == 14);
    CHECK(sw.ic == 32);
    CHECK(sws.nwg == 144);
    // The furthest plane entry the GEMM reads: the last column (2 · 144 - 1) at tap row 3, P0 at
    // +3 pixels (k-step part 1's second core matrix): 287 + 96 + 3 = 386 (X at +2: 385).
    CHECK(sws.plane > 386);
    CHECK(sws.plane >= 12 * 32);  // the patch itself
    for (const bool pooled : {true, false}) {
      const tl::Tile ts = tl::choose_swap(stem, pooled);
      REQUIRE(ts.py > 0);
      for (const bool raw_in : {false, true}) {
        const std::string src = tl::source(
            stem, pooled, ts, false,
            raw_in ? tl::RawInput{true, cuda::InputFormat::f32, false, net.in_shape} : tl::RawInput{}, true, true, 0,
            true);
        CHECK(src.find("constexpr bool SWAP = true;") != std::string::npos);
        CHECK(src.find("stmatrix.sync.aligned.m8n8.x2.trans.shared.b16") != std::string::npos);
        CHECK(src.find("wgmma.mma_async.sync.aligned.m64n" + std::to_string(tl::swap_of(stem, ts).nwg) + "k16") !=
              std::string::npos);
        if (!pooled && raw_in) {
          continue;
        }
        const std::string ty = pooled && !raw_in ? "strata_rtc::bf16" : "strata_rtc::f16";
        const std::vector<std::string> names{"strata_rtc::tile_conv<" + ty + ">"};
        CHECK(rtc::compile(src, "tile_conv_swap", names, 90, dir, true).cubin.size() > 1000);
      }
    }
    // Pipelined (algo 9 math 4): a second pair of planes, its own tile loop; from the caller's
    // staged rows only; algo 8 has no math 4.
    {
      const tl::RawInput f32_in{true, cuda::InputFormat::f32, false, net.in_shape};
      const std::string ps = tl::source(stem, true, sw, false, f32_in, true, true, 0, true, true);
      CHECK(ps.find("constexpr bool PIPE = true;") != std::string::npos);
      CHECK(ps.find("xs0 + 2 * PATCH);  // (PIPE)") != std::string::npos);
      CHECK(ps.find("i < 2 * PATCH / 8; i += 256") != std::string::npos);  // both pairs' slack zeroed
      CHECK(ps.find("buf ^= (DB ? 1 : 0)") == std::string::npos);  // the other forms' tile loop not emitted
      CHECK(rtc::compile(ps, "tile_conv_swap_pipe", {"strata_rtc::tile_conv<strata_rtc::f16>"}, 90, dir, true).cubin.size() > 1000);
      CHECK_THROWS_WITH(tl::source(stem, true, sw, false, {}, true, true, 0, true, true),
                        doctest::Contains("reads the caller's input staged"));
      // (the other forms' text has no PIPE constant: unchanged by it)
      CHECK(tl::source(stem, true, sw, false, f32_in, true, true, 0, true).find("PIPE") == std::string::npos);
      const cuda::OpWeights ow;
      const cuda::OpIo oio;
      CHECK_THROWS_WITH((void)tactic->prepare(stem, cuda::Variant{"tile_conv", 8, 4, 1}, 256, ow, oio, none),
                        doctest::Contains("no math 4 for algo 8"));
    }
    // Padded patch rows are not for it (the columns are the patch's own grid).
    CHECK_THROWS_WITH(tl::source(stem, true, sw, false, {}, true, true, sw.ic + 5, true),
                      doctest::Contains("its patch rows unpadded"));
    constexpr auto four = input<4, 40, 40> | conv<16, 7, ConvOpts{.stride = 2, .padding = 3}> | relu
        | max_pool<3, PoolOpts{.stride = 2, .padding = 1}> | flatten | dense<3>;
    const cuda::NetDesc four_net = cuda::NetStorage<std::remove_cv_t<decltype(four)>, DType::f16>::describe();
    CHECK(four_net.ops.front().conv.s2d);
    CHECK_FALSE(cuda::tactics::tile::dense12_fits(four_net.ops.front()));
    // A 3×3/2 or 5×5/2 stem (2 or 3 taps a row over 12 slots: not whole k-steps) is not one.
    constexpr auto small3 = input<3, 40, 40> | conv<16, 3, ConvOpts{.stride = 2, .padding = 1}> | relu
        | flatten | dense<3>;
    constexpr auto small5 = input<3, 40, 40> | conv<16, 5, ConvOpts{.stride = 2, .padding = 2}> | relu
        | flatten | dense<3>;
    const cuda::NetDesc s3 = cuda::NetStorage<std::remove_cv_t<decltype(small3)>, DType::f16>::describe();
    const cuda::NetDesc s5 = cuda::NetStorage<std::remove_cv_t<decltype(small5)>, DType::f16>::describe();
    CHECK(s3.ops.front().conv.s2d);
    CHECK(s5.ops.front().conv.s2d);
    CHECK_FALSE(tl::swap_geometry(s3.ops.front()));
    CHECK_FALSE(tl::swap_geometry(s5.ops.front()));
    CHECK_FALSE(tl::swap_geometry(four_net.ops.front()));
    CHECK(tl::choose_swap(s3.ops.front(), false).py == 0);
    CHECK_FALSE(cuda::tactics::tile::dense12_fits(s3.ops.front()));
    CHECK_FALSE(cuda::tactics::tile::dense12_fits(s5.ops.front()));
    CHECK_FALSE(cuda::tactics::tile::dense12_fits(net.ops[1]));
    CHECK_THROWS_AS((void)cuda::tactics::tile::source(four_net.ops.front(), true,
                                                      cuda::tactics::tile::choose(four_net.ops.front(), true),
                                                      false, {}, true, true),
                    strata::Error);
    // Patch rows padded (math 1): ResNet's tile (17 outputs a row over 20 pixels of 12 words)
    // takes a pitch of 25, where a wrapping ldmatrix phase steps as one within a row does; the
    // padded sources compile (16-slot on mma.sync and wgmma, 12-slot, reading the input).
    CHECK(cuda::tactics::tile::patch_pitch(stem, st12, false) == st12.ic);
    CHECK(cuda::tactics::tile::patch_pitch(stem, st12, true) == 25);
    CHECK(cuda::tactics::tile::patch_bytes(stem, st12, st12.ic, false) == st12.patch);
    CHECK(cuda::tactics::tile::patch_bytes(stem, st12, 25, false) - st12.patch == std::int64_t{5} * st12.ir * 24 * 2);
    // the 12-slot patch's two copies: about the 16-slot patch's bytes (24 slots a pixel in all)
    CHECK(cuda::tactics::tile::patch_bytes(stem, st12, st12.ic, true) >= st12.patch);
    CHECK(cuda::tactics::tile::patch_bytes(stem, st12, st12.ic, true) <= st12.patch + 256);
    for (const auto& [wg, d12, raw_in] : {std::tuple{false, false, false}, std::tuple{true, false, false},
                                          std::tuple{true, true, false}, std::tuple{true, true, true}}) {
      const std::string src = cuda::tactics::tile::source(
          stem, true, st12, false,
          raw_in ? cuda::tactics::tile::RawInput{true, cuda::InputFormat::u8_hwc, true, net.in_shape}
                 : cuda::tactics::tile::RawInput{},
          wg, d12, 25);
      CHECK(src.find("constexpr int ICP = 25;") != std::string::npos);
      CHECK(rtc::compile(src, "tile_conv_pitch", {"strata_rtc::tile_conv<strata_rtc::f16>"}, 90, dir, wg).cubin.size() > 1000);
    }
    // Offered to tuning (GPU-run since session 18): the 12-slot patch only with padded rows
    // (algos 6 and 7, math 1) and only on wgmma, each pooled and not; every other form with
    // neither (math 0 at batch 256: no tiles for a small batch) — the swapped form (algos 8 and
    // 9, session 54) too, on wgmma, pooled and not. (This check expected neither offered until
    // session 30, when it was first run with a wgmma GPU's answers.)
    int d12 = 0;
    int swapped = 0;
    for (const cuda::Variant& v : tactic->candidates(stem, 256, 0, none)) {
      INFO(cuda::to_string(v));
      CHECK(v.math == (v.algo == 6 || v.algo == 7 ? 1 : 0));
      d12 += v.algo == 6 || v.algo == 7 ? 1 : 0;
      swapped += v.algo == 8 || v.algo == 9 ? 1 : 0;
    }
    CHECK(d12 == (cuda::tactics::mma::wgmma_device() ? 4 : 0));
    CHECK(swapped == (cuda::tactics::mma::wgmma_device() ? 4 : 0));
  }
  // The double-buffered variant's source (a second patch buffer) for the stem.
  const cuda::tactics::tile::Tile st = cuda::tactics::tile::choose(stem, true);
  CHECK(st.patch > 0);
  const std::string db = cuda::tactics::tile::source(stem, true, st, true);
  CHECK(db.find("constexpr bool DB = true;") != std::string::npos);
  const rtc::Compiled cdb = rtc::compile(db, "tile_conv", {"strata_rtc::tile_conv<strata_rtc::f16>"}, 90, dir);
  CHECK(cdb.cubin.size() > 1000);
  // The wgmma forms (algos 3-5, sm_90a): one wgmma.m64n(8·NT)k16 a k-step — the stem (16
  // k-steps, 64 channels) pooled and not, in f16 and bf16, reading the caller's input and
  // double-buffered; the 128-channel conv (two groups of 64) and the 1x1 conv. Offered only on
  // a GPU of compute capability 9.0.
  {
    for (const bool raw_in : {false, true}) {
      const std::string src = cuda::tactics::tile::source(
          stem, true, st, !raw_in, {raw_in, cuda::InputFormat::f32, false, net.in_shape}, true);
      CHECK(src.find(raw_in ? "constexpr bool RAW = true;" : "constexpr bool DB = true;") != std::string::npos);
      const std::vector<std::string> names{"strata_rtc::tile_conv<strata_rtc::f16>"};
      CHECK(rtc::compile(src, "tile_conv_wgmma", names, 90, dir, true).cubin.size() > 1000);
    }
    const std::string wg = cuda::tactics::tile::source(stem, true, st, false, {}, true);
    CHECK(wg.find("constexpr bool WG = true;") != std::string::npos);
    CHECK(wg.find("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16") != std::string::npos);
    for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
      const std::vector<std::string> names{std::string("strata_rtc::tile_conv<") + ty + ">"};
      CHECK(rtc::compile(wg, "tile_conv_wgmma", names, 90, dir, true).cubin.size() > 1000);
    }
    constexpr auto odd = input<16, 9, 11> | conv<20, 3, ConvOpts{.padding = 1}> | relu
        | max_pool<2, PoolOpts{.ceil_mode = true}> | flatten | dense<3>;
    const cuda::NetDesc odd_net = cuda::NetStorage<std::remove_cv_t<decltype(odd)>, DType::f16>::describe();
    REQUIRE(cuda::tactics::tile::fits(odd_net.ops.front(), true));
    const std::string odd_src = cuda::tactics::tile::source(
        odd_net.ops.front(), true, cuda::tactics::tile::choose(odd_net.ops.front(), true), false, {}, true);
    CHECK(odd_src.find("wgmma.mma_async.sync.aligned.m64n24k16.f32.f16.f16") != std::string::npos);
    for (const cuda::OpDesc* op : {&stem, &net.ops[1], &odd_net.ops.front()}) {
      INFO(op->label);
      const bool pooled = op != &stem && op->pool.has_value();
      const std::string src = cuda::tactics::tile::source(
          *op, pooled, cuda::tactics::tile::choose(*op, pooled), false, {}, true);
      const std::vector<std::string> names{"strata_rtc::tile_conv<strata_rtc::f16>"};
      CHECK(rtc::compile(src, "tile_conv_wgmma", names, 90, dir, true).cubin.size() > 1000);
    }
    const auto stem_v = tactic->candidates(stem, 256, 0, none);
    const auto wg_v = std::count_if(stem_v.begin(), stem_v.end(), [](const cuda::Variant& x) { return x.algo >= 3; });
    // with its pool and without: single-buffered, reading the input, and (where the device
    // allows the second buffer) double-buffered
    if (cuda::tactics::mma::wgmma_device()) {
      CHECK(wg_v >= 4);
    } else {
      CHECK(wg_v == 0);
    }
  }
  const cuda::NetDesc f32 = cuda::NetStorage<TileStemNet, DType::f32>::describe();
  CHECK_FALSE(cuda::find_tactic<DType::f32>("tile_conv")->applicable(f32.ops.front()));
}

namespace {
// DenseNet's stem: its pooled map stays in place as channels 0..15 of the first block's concat.
constexpr auto tile_dense_stem_net = input<3, 29, 34>
    | conv<16, 7, ConvOpts{.stride = 2, .padding = 3, .bias = false}> | batch_norm | relu
    | max_pool<3, PoolOpts{.stride = 2, .padding = 1}>
    | concat(identity, batch_norm | relu | conv<8, 3, ConvOpts{.padding = 1}>)
    | batch_norm | relu | conv<8, 1>;
using TileDenseStemNet = std::remove_cv_t<decltype(tile_dense_stem_net)>;
}  // namespace

namespace {
// MobileNetV2's and EfficientNet-B0's stem: a 3x3/2 conv with no pool after it (read
// space-to-depth in 16-bit: 2x2 taps over 16 slots).
constexpr auto plain_stem_net = input<3, 224, 224>
    | conv<32, 3, ConvOpts{.stride = 2, .padding = 1, .bias = false}> | batch_norm | relu
    | conv<16, 1>;
using PlainStemNet = std::remove_cv_t<decltype(plain_stem_net)>;
}  // namespace

TEST_CASE("the tiled tensor-core conv claims an unpooled space-to-depth stem (MobileNetV2's)") {
  const cuda::NetDesc net = cuda::NetStorage<PlainStemNet, DType::f16>::describe();
  const cuda::OpDesc& stem = net.ops.front();
  REQUIRE(stem.kind == OpKind::conv);
  REQUIRE(stem.conv.s2d);
  REQUIRE_FALSE(stem.pool.has_value());
  const auto* tactic = cuda::find_tactic<DType::f16>("tile_conv");
  REQUIRE(tactic->applicable(stem));
  CHECK_FALSE(cuda::tactics::tile::dense12_fits(stem));  // 2 tap columns x 12 slots: not 16s
  // 25x28 outputs a tile: 20 tiles an image; batch 256 gives 5,120 (over tile::claim_tiles),
  // batch 1 gives 20.
  const cuda::tactics::tile::Tile t = cuda::tactics::tile::choose(stem, false);
  CHECK(t.tiles * 256 >= cuda::tactics::tile::claim_tiles);
  CHECK(t.tiles < cuda::tactics::tile::claim_tiles);
  const cuda::Libraries none{};
  if (cuda::tactics::generated::mma_sync_device()) {
    // Ahead of cuDNN (rank library) at both batches: at 256 the wgmma form reading the caller's
    // input where the device has wgmma (session 62, H100: MobileNetV2 2,869.8 -> 2,843.9 µs
    // against the wgmma form from the input step's map), else mma.sync reading it; at batch 1 the
    // mma.sync form reading the caller's input (session 22's trials on an H200: 215 µs against
    // cuDNN's 410 at 256, 7.9 against 11.4 at 1).
    const auto big = tactic->heuristic(stem, 256, 0, none);
    REQUIRE(big.has_value());
    CHECK(big->rank < cuda::rank::library);
    CHECK(big->variant == (cuda::tactics::mma::wgmma_device() ? cuda::Variant{"tile_conv", 4, 0, 0}
                                                               : cuda::Variant{"tile_conv", 2, 0, 0}));
    // At batches up to tile::small_batch, tiles for one image (math 2) reading the caller's
    // input, on wgmma where the device has it, ahead of generated_conv's claim (session 30's
    // trials on an H200: MobileNetV2's forward at batch 1 176.8 -> 167.9 µs); above, the
    // mma.sync form reading the caller's input with choose()'s tiles.
    const cuda::Variant small{"tile_conv", cuda::tactics::mma::wgmma_device() ? 4 : 2, cuda::tactics::tile::math_small, 0};
    for (const int b : {1, cuda::tactics::tile::small_batch}) {
      const auto one = tactic->heuristic(stem, b, 0, none);
      REQUIRE(one.has_value());
      CHECK(one->rank < cuda::rank::tailored - 1);
      CHECK(one->variant == small);
    }
    const auto eight = tactic->heuristic(stem, 2 * cuda::tactics::tile::small_batch, 0, none);
    REQUIRE(eight.has_value());
    CHECK(eight->rank < cuda::rank::library);
    CHECK(eight->variant == cuda::Variant{"tile_conv", 2, 0, 0});
    // The 1x1 conv after it is not a stem: behind every other tactic.
    const auto next = tactic->heuristic(net.ops[1], 256, 0, none);
    REQUIRE(next.has_value());
    CHECK(next->rank > cuda::rank::fallback);
  }
}

TEST_CASE("the tiled tensor-core conv writes DenseNet's stem into its concat slice, pooled only") {
  const cuda::NetDesc net = cuda::NetStorage<TileDenseStemNet, DType::f16>::describe();
  const cuda::OpDesc& stem = net.ops.front();
  REQUIRE(stem.slice.has_value());
  REQUIRE(stem.pool.has_value());
  const auto* tactic = cuda::find_tactic<DType::f16>("tile_conv");
  REQUIRE(tactic->applicable(stem));
  CHECK(tactic->writes_slice(stem));
  const cuda::Libraries none{};
  // Pooled variants only: the unpooled map would reach the pool kernel, which writes no slice.
  // (Without a GPU the double-buffered variant, which needs the device's limit, is not offered.)
  if (cuda::tactics::generated::mma_sync_device()) {  // (a GPU before sm_80 is offered nothing)
    const auto v = tactic->candidates(stem, 4, 0, none);
    REQUIRE(!v.empty());
    for (const cuda::Variant& x : v) {
      CHECK(x.fuse == 1);
    }
    const auto claim = tactic->heuristic(stem, 4, 0, none);
    REQUIRE(claim.has_value());
    // ahead of cuDNN's conv + the pool kernel + the copy into the slice (claimed since session
    // 33, when DenseNet-121's stem ran this way on an H200)
    CHECK(claim->rank < cuda::rank::library);
  }
  // Its stores take the concat's strides: 24 slots a pixel.
  const std::string src = cuda::tactics::tile::source(stem, true, cuda::tactics::tile::choose(stem, true));
  CHECK(src.find("constexpr long long YPIX = 24;") != std::string::npos);
  const auto dir = fresh_dir("strata_rtc_test_tile_slice");
  const rtc::Compiled c = rtc::compile(src, "tile_conv", {"strata_rtc::tile_conv<strata_rtc::f16>"}, 90, dir);
  CHECK(c.cubin.size() > 1000);
  // A slice whose writer must also zero the concat's padding slots is left to prepare_step.
  cuda::OpDesc padded = stem;
  padded.slice->write = stem.conv.kp + 8;
  CHECK_FALSE(cuda::tactics::tile::writes_slice(padded));
  CHECK_FALSE(tactic->applicable(padded));
}

namespace {
// EfficientNet-B0's first 5x5 depthwise conv (features.3.0: 144 channels, 56x56, stride 2) after a
// SiLU, a 7x7 at stride 1 on a 13x13 map (24 slots: 12 pairs) with a residual, and a 3x3 and a
// dilated 5x5 that are not the band kernel's.
constexpr auto band_rtc_net = input<144, 56, 56>
    | conv<144, 1> | silu
    | conv<144, 5, ConvOpts{.stride = 2, .padding = 2, .groups = 144}> | silu
    | conv<21, 1> | adaptive_avg_pool<13, 13>
    | residual(conv<21, 7, ConvOpts{.padding = 3, .groups = 21}>)
    | conv<21, 3, ConvOpts{.padding = 1, .groups = 21}>
    | conv<21, 5, ConvOpts{.padding = 4, .dilation = 2, .groups = 21}>;
using BandRtcNet = std::remove_cv_t<decltype(band_rtc_net)>;
}  // namespace

TEST_CASE("the depthwise band kernel: its block shapes, hand-worked, and its source compiles") {
  namespace bd = cuda::tactics::band;
  cuda::NetDesc net = cuda::NetStorage<BandRtcNet, DType::f16>::describe();
  std::vector<const cuda::OpDesc*> dw;
  for (const cuda::OpDesc& op : net.ops) {
    if (op.kind == OpKind::conv && op.conv.groups > 1) {
      dw.push_back(&op);
    }
  }
  REQUIRE(dw.size() == 4);
  const cuda::OpDesc& s2 = *dw[0];
  const cuda::OpDesc& seven = *dw[1];
  CHECK(bd::fits(s2));
  CHECK(bd::fits(seven));
  CHECK(bd::offered(s2));
  CHECK(bd::offered(seven));
  // 3x3 with nothing on load: offered and claimed (band::claimed)
  CHECK(bd::fits(*dw[2]));
  CHECK(bd::offered(*dw[2]));
  CHECK(bd::claimed(*dw[2]));
  CHECK(bd::claimed(s2));
  CHECK_FALSE(bd::claimed(seven));
  CHECK_FALSE(bd::fits(*dw[3]));  // dilation 2
  // 72 pairs: 8 a block (72 is no multiple of 32 or 16); 28 output columns: 7 groups of 4;
  // 256 / (8 · 7) = 4 strips of 2 rows: bands of 8x28 outputs, reading 19 rows (7 · 2 + 5) of
  // 59 columns (27 · 2 + 5); 4 bands down the map, 9 channel chunks.
  const bd::Plan p = bd::plan(s2);
  CHECK(p.pb == 8);
  CHECK(p.groups == 7);
  CHECK(p.strips == 4);
  CHECK(p.threads() == 224);
  CHECK(p.th == 8);
  CHECK(p.tw == 28);
  CHECK(p.rows_in == 19);
  CHECK(p.cols_in == 59);
  CHECK(p.tiles_y == 4);
  CHECK(p.tiles_x == 1);
  CHECK(p.chunks == 9);
  // A patch row of 59 · 8 words puts the 4 strips of a warp (4 rows = 4 · 472 words apart) on
  // the same banks; the padded pitch leaves 2 threads of a warp a bank at most.
  CHECK(bd::conflicts(8, 4, 2, 472) == 4);
  CHECK(p.pitch % 4 == 0);
  CHECK(p.pitch >= 472);
  CHECK(bd::conflicts(8, 4, 2, p.pitch) == 2);
  CHECK(p.shared == std::int64_t{19} * p.pitch * 4);
  // The 7x7: 12 pairs, 4 a block (12 is no multiple of 8); 13 columns: 4 groups; 256 / 16 = 16
  // strips, 7 needed for 13 rows: a band of 14x16 reading 20 x 22 (13 + 7, 15 + 7).
  const bd::Plan q = bd::plan(seven);
  CHECK(q.pb == 4);
  CHECK(q.groups == 4);
  CHECK(q.strips == 7);
  CHECK(q.rows_in == 20);
  CHECK(q.cols_in == 22);
  CHECK(q.tiles_y * q.tiles_x == 1);
  CHECK(q.chunks == 3);
  // The heuristic: at every batch, ahead of cuDNN (and, first in the registry, of the depthwise
  // tactic's kernels at the same rank).
  const auto* t = cuda::find_tactic<DType::f16>("depthwise_band");
  REQUIRE(t != nullptr);
  CHECK(t->applicable(s2));
  CHECK(t->reads_input_act());
  const cuda::Libraries none{};
  const auto big = t->heuristic(s2, 256, 0, none);
  REQUIRE(big.has_value());
  CHECK(big->rank < cuda::rank::library);
  const auto one = t->heuristic(s2, 1, 0, none);
  REQUIRE(one.has_value());
  CHECK(one->rank == cuda::rank::tailored);
  const auto& list = cuda::all_tactics<DType::f16>();
  CHECK(std::find(list.begin(), list.end(), t) <
        std::find(list.begin(), list.end(), cuda::find_tactic<DType::f16>("depthwise_conv")));
  CHECK(cuda::find_tactic<DType::f32>("depthwise_band")->applicable(s2) == false);
  // 7x7: offered to measured tuning, not claimed (not timed yet)
  CHECK(t->candidates(seven, 256, 0, none).size() == (bd::pipelined_gpu_tested ? 3U : 1U));  // (algo 0; algo 2 math 2 and 4)
  CHECK(t->candidates(seven, 31, 0, none).size() == 1);
  CHECK_FALSE(t->heuristic(seven, 256, 0, none).has_value());
  CHECK(t->applicable(*dw[2]));
  CHECK(t->heuristic(*dw[2], 256, 0, none).has_value());
  CHECK(t->heuristic(*dw[2], 1, 0, none).has_value());
  CHECK(t->candidates(*dw[2], 256, 0, none).size() == (bd::pipelined_gpu_tested ? 3U : 1U));
  CHECK(bd::source(*dw[2]).find("constexpr int KS = 3;") != std::string::npos);
  // The sources compile (f16 and bf16), the activations compiled in: SiLU on load and after.
  const auto dir = fresh_dir("strata_rtc_test_band");
  for (const cuda::OpDesc* op : {&s2, &seven, dw[2]}) {
    const std::string src = bd::source(*op);
    INFO(op->label);
    CHECK(src.find("constexpr int PITCH = " + std::to_string(bd::plan(*op).pitch) + ";") !=
          std::string::npos);
    for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
      const std::vector<std::string> names{std::string("strata_rtc::depthwise_band<") + ty + ">"};
      const rtc::Compiled c = rtc::compile(src, "depthwise_band", names, 90, dir);
      CHECK(c.cubin.size() > 1000);
      MESSAGE(op->label << " " << std::string(ty) << ": compiled in " << c.ms << " ms");
    }
  }
  // Under a programmatic dependent launch algo 1 stages its filters (weights) before the wait,
  // the patch (the kernel before's output) after; algo 0 waits first thing (its filters, loaded
  // into registers after the patch, would stay live across the patch's loop if loaded before).
  for (const std::string& src : {bd::source(seven, 1, 2), bd::source(*dw[2], 1, 4), bd::source(s2, 1, 1)}) {
    const std::string body = src.substr(src.rfind("__global__"));
    (void)check_early_work(body, "wsf[e] =", "const T* xi = x + img");
    CHECK(body.find("xi[") == std::string::npos);
    CHECK(body.find(" x[") == std::string::npos);
  }
  for (const std::string& src : {bd::source(s2), bd::source(*dw[2])}) {
    const std::string body = src.substr(src.rfind("__global__"));
    CHECK(body.find("pdl_entry();") < body.find("const T* xi = x + img"));
    CHECK(body.find("pdl_launch();") == std::string::npos);
    CHECK(body.find("const T* xi = x + img") < body.find("float wv[KS * KS][2];"));  // (the patch, then the filters)
  }
  {  // (and they compile so: the forms with images a block)
    const std::vector<std::string> names{"strata_rtc::depthwise_band<strata_rtc::f16>"};
    CHECK(rtc::compile(bd::source(*dw[2], 1, 4), "depthwise_band", names, 90, dir).cubin.size() > 1000);
  }
  CHECK(s2.in_act.kind == Act::silu);  // the 1x1's SiLU deferred into the depthwise conv's read
  CHECK(bd::source(s2).find("constexpr Act IA = static_cast<Act>(" +
                            std::to_string(static_cast<int>(Act::silu)) + ");") != std::string::npos);
}

TEST_CASE("a dense layer and its folded softmax as one generated kernel: its source compiles in f32, f16 and bf16") {
  const auto dir = fresh_dir("strata_rtc_test_dense_softmax");
  auto folded = []<DType P>() {
    cuda::NetDesc n = cuda::NetStorage<models::MnistCnn, P>::describe();
    cuda::fold_final_softmax(n);
    return n;
  };
  const cuda::NetDesc n16 = folded.operator()<DType::f16>();
  const cuda::NetDesc n32 = folded.operator()<DType::f32>();
  for (const cuda::NetDesc* n : {&n32, &n16}) {
    const cuda::OpDesc& op = n->ops.back();
    INFO(op.label);
    REQUIRE(cuda::tactics::dense_softmax::fits(op));
    const std::string src = cuda::tactics::dense_softmax::source(op);
    CHECK(src.find("constexpr int N = 10;") != std::string::npos);
    CHECK(src.find("constexpr int KIN = " + std::to_string(op.dense_kin) + ";") != std::string::npos);
    CHECK(src.find("constexpr bool LOG = false;") != std::string::npos);
    const std::vector<const char*> types =
        n == &n32 ? std::vector<const char*>{"float"}
                  : std::vector<const char*>{"strata_rtc::f16", "strata_rtc::bf16"};
    for (const char* t : types) {
      const std::vector<std::string> names{std::string("strata_rtc::dense_softmax<") + t + ">"};
      CHECK(rtc::compile(src, "dense_softmax", names, 90, dir).cubin.size() > 1000);
    }
  }
  {
    // The activation folds at compile time: NVRTC once kept a constexpr ActDesc passed to
    // activate() as a weak global and switched on its kind at run time for every value
    // (generated::act_constant). The PTX of a dense+gelu+softmax kernel has no such global.
    using Gelu = decltype(input<3, 5, 4> | flatten | dense<16> | gelu | softmax);
    cuda::NetDesc gn = cuda::NetStorage<Gelu, DType::f16>::describe();
    cuda::fold_final_softmax(gn);
    REQUIRE(cuda::tactics::dense_softmax::fits(gn.ops.back()));
    const std::string src = cuda::tactics::dense_softmax::source(gn.ops.back());
    CHECK(ptx_of(src, "strata_rtc::dense_softmax<strata_rtc::f16>").find(".weak .global") == std::string::npos);
  }
  {
    // Rows whose length is no multiple of 8 (f32: 7 inputs) take scalar loads; a log_softmax
    // after an activation (the source once failed to compile here: a 16-byte load's overload
    // was checked for a 1-element array).
    using Odd = decltype(input<3, 5, 4> | flatten | dense<7> | gelu | dense<13> | elu<0.5f> |
                         log_softmax);
    cuda::NetDesc odd = cuda::NetStorage<Odd, DType::f32>::describe();
    cuda::fold_final_softmax(odd);
    const cuda::OpDesc& op = odd.ops.back();
    REQUIRE(cuda::tactics::dense_softmax::fits(op));
    CHECK(op.dense_kin % 8 != 0);
    const std::string src = cuda::tactics::dense_softmax::source(op);
    CHECK(src.find("constexpr bool LOG = true;") != std::string::npos);
    const std::vector<std::string> names{"strata_rtc::dense_softmax<float>"};
    CHECK(rtc::compile(src, "dense_softmax", names, 90, dir).cubin.size() > 1000);
  }
  {
    // Not over 512 inputs a row (each lane keeps its share of the row in registers).
    using Long = decltype(input<513, 1, 1> | flatten | dense<10> | softmax);
    cuda::NetDesc ln = cuda::NetStorage<Long, DType::f32>::describe();
    cuda::fold_final_softmax(ln);
    REQUIRE(ln.ops.back().softmax.has_value());
    CHECK(ln.ops.back().dense_kin > cuda::tactics::dense_softmax::max_inputs);
    CHECK_FALSE(cuda::tactics::dense_softmax::fits(ln.ops.back()));
  }
  // Not where the softmax was not folded, nor over 32 outputs.
  const cuda::NetDesc plain = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  CHECK_FALSE(cuda::tactics::dense_softmax::fits(plain.ops[plain.ops.size() - 2]));
  {
    using Wide = decltype(input<3, 2, 2> | flatten | dense<33> | softmax);
    cuda::NetDesc w = cuda::NetStorage<Wide, DType::f16>::describe();
    cuda::fold_final_softmax(w);
    REQUIRE(w.ops.back().softmax.has_value());
    CHECK_FALSE(cuda::tactics::dense_softmax::fits(w.ops.back()));
  }
  // Not claimed by the heuristic; measured tuning times it (one variant) against lt_dense, which
  // runs the folded op through prepare_step's softmax kernel; the folded op has its own key.
  const auto* t = cuda::find_tactic<DType::f16>("dense_softmax");
  REQUIRE(t != nullptr);
  CHECK(t->runs(n16.ops.back()));
  CHECK(t->fuses_softmax(cuda::Variant{"dense_softmax"}));
  CHECK_FALSE(t->heuristic(n16.ops.back(), 4096, 0, {}).has_value());
  const auto offered = t->candidates(n16.ops.back(), 4096, 0, {});
  REQUIRE(offered.size() == 1);
  CHECK(offered[0].tactic == "dense_softmax");
  CHECK(offered[0].algo == 0);
  const auto* lt = cuda::find_tactic<DType::f16>("lt_dense");
  REQUIRE(lt != nullptr);
  CHECK(lt->runs(n16.ops.back()));
  CHECK_FALSE(lt->fuses_softmax(cuda::Variant{"lt_dense"}));
  const std::string key = cuda::tuning_key(n16.ops.back(), 4096, DType::f16, "GPU");
  CHECK(key.find(",softmax") != std::string::npos);
  CHECK(cuda::tuning_key(plain.ops[plain.ops.size() - 2], 4096, DType::f16, "GPU") != key);
  // A variant it does not have is refused by name, before any GPU work.
  const cuda::OpWeights w;
  const cuda::OpIo io;
  try {
    (void)t->prepare(n16.ops.back(), cuda::Variant{"dense_softmax", 1}, 1, w, io, {});
    FAIL("algo 1 was accepted");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find("dense11+softmax12") != std::string::npos);
  }
}

TEST_CASE("EngineOptions::force: variants named as the engine prints them, checked against the network") {
  // parse_variant reads to_string's form and the colon form.
  for (const cuda::Variant& v : {cuda::Variant{"lt_dense"}, cuda::Variant{"mma_conv", 2, 0, 1},
                                 cuda::Variant{"cudnn_conv", 1, 3, 1}, cuda::Variant{"x", 0, 7, 0}}) {
    INFO(cuda::to_string(v));
    CHECK(cuda::parse_variant(cuda::to_string(v)) == v);
  }
  CHECK(cuda::parse_variant("tile_conv:3:0:1") == cuda::Variant{"tile_conv", 3, 0, 1});
  CHECK(cuda::parse_variant("tile_conv:3") == cuda::Variant{"tile_conv", 3, 0, 0});
  CHECK(cuda::parse_variant("  mma_conv  fuse 1 algo 2 ") == cuda::Variant{"mma_conv", 2, 0, 1});
  for (const char* bad : {"", "  ", "mma_conv algo", "mma_conv algo x", "mma_conv algo 1 algo 2",
                          "mma_conv speed 3", "a:1:2:3:4", "a:b", ":1", "mma conv", "a:1:"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(cuda::parse_variant(bad).has_value());
  }
  // forced_variants: the op of each label gets its variant, the others nothing.
  cuda::NetDesc net = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  cuda::fold_final_softmax(net);
  const std::vector<std::optional<cuda::Variant>> f = cuda::forced_variants<DType::f16>(
      net, {{"conv4+bn5+relu6+max_pool7", {"mma_conv", 1, 0, 1}}, {"dense11+softmax12", {"dense_softmax"}}});
  REQUIRE(f.size() == net.ops.size());
  int named = 0;
  for (std::size_t i = 0; i < net.ops.size(); ++i) {
    INFO(net.ops[i].label);
    if (net.ops[i].label == "conv4+bn5+relu6+max_pool7") {
      CHECK(f[i] == cuda::Variant{"mma_conv", 1, 0, 1});
      ++named;
    } else if (net.ops[i].label == "dense11+softmax12") {
      CHECK(f[i] == cuda::Variant{"dense_softmax"});
      ++named;
    } else {
      CHECK_FALSE(f[i].has_value());
    }
  }
  CHECK(named == 2);
  // What it refuses, and how it says so.
  auto refused = [&](const std::map<std::string, cuda::Variant>& force) -> std::string {
    try {
      (void)cuda::forced_variants<DType::f16>(net, force);
    } catch (const strata::Error& e) {
      return e.what();
    }
    return "(accepted)";
  };
  const std::string unknown = refused({{"conv4+bn5+relu6", {"mma_conv"}}});
  CHECK(unknown.find("'conv4+bn5+relu6', which this network does not have") != std::string::npos);
  CHECK(unknown.find("conv0+bn1+relu2+max_pool3, conv4+bn5+relu6+max_pool7") != std::string::npos);
  CHECK(refused({{"dense9+relu10", {"no_such_tactic"}}}).find("no tactic of that name") !=
        std::string::npos);
  const std::string cannot = refused({{"dense9+relu10", {"mma_conv", 1}}});
  CHECK(cannot.find("'mma_conv algo 1' for layer 'dense9+relu10'") != std::string::npos);
  CHECK(cannot.find("cannot run") != std::string::npos);
  // f32: the tensor-core conv cannot run there.
  const cuda::NetDesc n32 = cuda::NetStorage<models::MnistCnn, DType::f32>::describe();
  CHECK_THROWS_AS((void)cuda::forced_variants<DType::f32>(n32, {{"conv4+bn5+relu6+max_pool7", {"mma_conv"}}}),
                  strata::Error);
}

TEST_CASE("generated kernels compiled side by side before their steps: precompile, kernel_sources") {
  const auto dir = fresh_dir("strata_rtc_test_precompile");
  const cuda::NetDesc net = cuda::NetStorage<models::MnistCnn, DType::f16>::describe();
  const cuda::OpIo io;
  std::vector<cuda::KernelSource> sources;
  // What measured tuning would prepare for the two convs: the generated conv's and mma_conv's
  // forms (mma_conv's wgmma form only on a GPU that runs it: none here).
  for (const char* name : {"generated_conv", "mma_conv"}) {
    const auto* t = cuda::find_tactic<DType::f16>(name);
    REQUIRE(t != nullptr);
    for (const cuda::OpDesc& op : net.ops) {
      if (op.kind != OpKind::conv || !t->runs(op)) {
        continue;
      }
      for (const cuda::Variant& v : t->candidates(op, 4096, 0, {})) {
        INFO(op.label << " " << cuda::to_string(v));
        const auto ks = t->kernel_sources(op, v, io);
        REQUIRE(ks.size() == 1);
        CHECK(ks.front().name.find("strata_rtc::") == 0);
        CHECK(ks.front().source.find(op.label) != std::string::npos);  // generated for this op
        sources.push_back(ks.front());
      }
    }
  }
  REQUIRE(sources.size() >= 6);
  // A variant its tactic does not have, or a library's tactic: nothing to compile.
  CHECK(cuda::find_tactic<DType::f16>("mma_conv")->kernel_sources(net.ops[1], {"mma_conv", 7}, io).empty());
  CHECK(cuda::find_tactic<DType::f16>("cudnn_conv")->kernel_sources(net.ops[1], {"cudnn_conv"}, io).empty());
  // (tile_conv's algo 3, its wgmma form, has a source on a GPU of compute capability 9.0 only)
  CHECK(cuda::find_tactic<DType::f16>("tile_conv")->kernel_sources(net.ops[0], {"tile_conv", 3, 0, 1}, io).empty() ==
        !cuda::tactics::mma::wgmma_device());
  CHECK(cuda::find_tactic<DType::f16>("tile_conv")->kernel_sources(net.ops[0], {"tile_conv", 10, 0, 1}, io).empty());
  // Each distinct program once (a repeat is skipped), side by side, into the disk cache; a second
  // call finds them compiled.
  std::vector<cuda::KernelSource> twice = sources;
  twice.push_back(sources.front());
  const auto before = rtc::compile_tally();
  CHECK(cuda::tactics::generated::precompile(twice, 90, dir, 2) == static_cast<int>(sources.size()));
  CHECK(rtc::compile_tally().programs - before.programs == static_cast<long long>(sources.size()));
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    files += e.path().extension() == ".cubin";
  }
  CHECK(files == sources.size());
  CHECK(cuda::tactics::generated::precompile(sources, 90, dir, 2) == 0);
  // A source that does not compile is left for the step that uses it to report.
  CHECK(cuda::tactics::generated::precompile({{"this is not CUDA", "strata_rtc::nothing<float>"}}, 90, dir, 2) == 0);
}

TEST_CASE("tf32: its ops run on the libraries (cuDNN, cuBLASLt) and the generic kernels, none on the 16-bit kernels") {
  // The f32 kernel library has the NHWC pointwise kernel (a concat slice's bias and activation).
  const auto f32_kernels = cuda::kernels::detail::instantiations<float>();
  CHECK(std::count(f32_kernels.begin(), f32_kernels.end(),
                   cuda::kernels::detail::kernel_name("pointwise8_kernel", {"float", "int"})) == 1);
  cuda::NetDesc n = cuda::NetStorage<models::ResNet50, DType::tf32>::describe();
  cuda::fold_for_per_op_path(n);
  const auto tactic = [](std::string_view name) {
    const auto* t = cuda::find_tactic<DType::tf32>(name);
    REQUIRE(t != nullptr);
    return t;
  };
  int convs = 0;
  int one_by_one = 0;
  for (const cuda::OpDesc& op : n.ops) {
    INFO(op.label);
    for (const char* k : {"splitk_conv", "tile_conv", "mma_conv", "generated_conv", "lt_im2col",
                          "depthwise_conv", "pixel_conv1x1", "cudnn_graph_conv",
                          "gap_dense", "pooled_dense", "normed_conv", "halo_conv"}) {
      if (const auto* t = cuda::find_tactic<DType::tf32>(k)) {
        CHECK_FALSE(t->applicable(op));
      }
    }
    if (op.kind == OpKind::conv) {
      ++convs;
      CHECK(tactic("cudnn_conv")->applicable(op));
      // (Strata's direct NHWC kernel in f32: the fallback where cuDNN has no NHWC algorithm)
      CHECK(tactic("direct_conv")->applicable(op));
      const bool plain_1x1 = op.conv.kh == 1 && op.conv.kw == 1 && op.conv.groups == 1 && !op.conv.s2d;
      CHECK(tactic("lt_conv1x1")->applicable(op) == plain_1x1);
      one_by_one += plain_1x1 ? 1 : 0;
    }
  }
  CHECK(convs == 53);
  CHECK(one_by_one == 36);  // 3 a block (2 + a downsample in four of them) minus the 3x3s
  // Its tuning key is its own: not f32's, with or without TF32 allowed.
  const cuda::OpDesc& c = n.ops[1];
  const auto f32 = cuda::NetStorage<models::ResNet50, DType::f32>::describe();
  CHECK(cuda::tuning_key(c, 1, DType::tf32, "gpu", true).find("|tf32|") != std::string::npos);
  CHECK(cuda::tuning_key(c, 1, DType::tf32, "gpu", true) != cuda::tuning_key(f32.ops[1], 1, DType::f32, "gpu", true));
}

// expand_depthwise algo 3 (session 63): at small batches an inverted-residual block's expansion,
// depthwise conv and projection as one kernel, a tile's chunks split over a thread-block cluster
// whose blocks exchange the projection's partial sums in distributed shared memory.
TEST_CASE("an inverted-residual block in a thread-block cluster (expand_depthwise algo 3): the joins at small batches, shapes hand-worked, the choice, the source compiles") {
  namespace ed = cuda::tactics::expand_dw;
  const auto folded = [](int max_batch, bool clusters, const std::map<std::string, cuda::Variant>& force = {}) {
    cuda::EngineOptions o;
    o.max_batch = max_batch;
    o.block_clusters = clusters;
    o.force = force;
    return cuda::per_op_ops<models::MobileNetV2, DType::f16>(o);
  };
  const auto projected = [](const cuda::NetDesc& n) {
    return std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.project && o.expand; });
  };
  // The engine joins all sixteen of MobileNetV2's expanded blocks at max_batch 1 and 2 (each has
  // a cluster shape; no device here folds as a device with clusters does), none with
  // block_clusters off nor at 3 to 31 (where the heuristic would not claim the cluster form); at
  // 256 the large-batch rule's (features.2-6).
  const cuda::NetDesc one = folded(1, true);
  CHECK(projected(one) == 16);
  CHECK(projected(folded(ed::cluster_max_batch, true)) == 16);
  CHECK(projected(folded(ed::cluster_max_batch + 1, true)) == 0);
  CHECK(projected(folded(31, true)) == 0);
  CHECK(projected(folded(1, false)) == 0);
  CHECK(projected(folded(256, true)) == 5);
  const auto op = [&](std::string_view prefix) -> const cuda::OpDesc& {
    const auto it = std::find_if(one.ops.begin(), one.ops.end(), [&](const cuda::OpDesc& o) {
      return o.project && o.label.rfind(prefix, 0) == 0;
    });
    REQUIRE(it != one.ops.end());
    return *it;
  };
  const cuda::OpDesc& f8 = op("features.8.");
  const cuda::OpDesc& f17 = op("features.17.");
  const cuda::OpDesc& f2 = op("features.2.");
  CHECK(f8.label == "features.8.conv.0.conv0+bn1+clip2+features.8.conv.1.conv0+bn1+clip2+conv2+bn3+add");
  // A force naming the expansion+depthwise op or the projection by its own label keeps them apart.
  CHECK(projected(folded(1, true, {{f8.project_conv_label, cuda::Variant{"expand_depthwise"}}})) == 15);
  CHECK(projected(folded(1, true, {{f8.project->label, cuda::Variant{"lt_conv1x1"}}})) == 15);
  // features.8 (64 -> 384 -> 64 on 14x14, stride 1, the residual): shape 3048, tiles of 4x4 outputs
  // (6x6 input pixels, 48 GEMM rows of 64 slots, rows of 72 elements) and chunks of 48 channels:
  // 8 chunks, a cluster of 8 blocks of one chunk each, 16 tiles, 128 blocks at batch 1. The
  // projection's weights of one chunk (48 columns: rows of 56, odd 16-byte chunks), its partial
  // sums in rows of 72 floats (64 + 8: a float2 row's quarter of the banks apart).
  const ed::Plan p = ed::cluster_plan(f8, 3048);
  CHECK(p.th == 4);
  CHECK(p.tw == 4);
  CHECK(p.nc == 48);
  CHECK(p.chunks == 8);
  CHECK(p.cluster == 8);
  CHECK(p.nmax == 1);
  CHECK(p.mp == 48);
  CHECK(p.xp == 72);
  CHECK(p.co == 64);
  CHECK(p.wpp == 56);
  CHECK(p.dp == 56);
  CHECK(p.rp == 72);
  CHECK(p.tiles_y * p.tiles_x == 16);
  CHECK(p.units_a_warp() == 1);
  CHECK(p.shared == 2 * 48 * 72 + 2 * 2 * 48 * 72 + 4 * 48 * p.ep + 2 * 16 * 56 + 2 * 64 * 56 + 4 * 64 + 4 * 16 * 72);
  CHECK(ed::cluster_blocks_an_sm(p) == 2);
  // The choice at batch 1 on 132 SMs: the fewest waves, then the least work a block (4x4 tiles'
  // 128 blocks: one wave); at batch 16 tiles of 8x8 and chunks of 64 (384 blocks, three waves of
  // one block an SM), but claimed only up to cluster_max_batch.
  CHECK(ed::cluster_choice(f8, 1, 132) == 3048);
  CHECK(ed::cluster_claimed(f8, 1, 132) == 3048);
  CHECK(ed::cluster_choice(f8, 16, 132) == 1064);
  CHECK(ed::cluster_claimed(f8, ed::cluster_max_batch, 132) != 0);
  CHECK(ed::cluster_claimed(f8, ed::cluster_max_batch + 1, 132) == 0);
  CHECK(ed::cluster_claimed(cuda::project_main(f8), 1, 132) == 0);  // (no projection joined)
  // features.17 (160 -> 960 -> 320 on 7x7) in chunks of 16: 60 chunks over a cluster of 15, 4
  // a block; 8x8 and 4x8 tiles would give a warp more than 8 of the projection's units (40
  // n-tiles of 8 outputs).
  const ed::Plan q = ed::cluster_plan(f17, 3016);
  CHECK(q.cluster == 15);
  CHECK(q.nmax == 4);
  CHECK(q.wpp == 72);  // (4 x 16 = 64 columns: 8 chunks of 16 bytes, even, + 8)
  CHECK(q.units_a_warp() == 5);
  CHECK_FALSE(ed::fits(f17, true));  // (the plain form's projection does not fit: the cluster form's does)
  CHECK(ed::cluster_plan(f17, 1016).nc == 0);
  CHECK(ed::cluster_plan(f17, 2016).nc == 0);
  CHECK(ed::cluster_plan(f8, 4048).nc == 0);   // (no tile 4)
  CHECK(ed::cluster_plan(f8, 3040).nc == 0);   // (chunks of 16s)
  CHECK(ed::cluster_plan(f8, 3080).nc == 0);   // (at most 64)
  // The tactic: the claim needs clusters (compute capability 9.0 on); the source is made anyway.
  const auto* t = cuda::find_tactic<DType::f16>("expand_depthwise");
  const cuda::Libraries none{};
  CHECK(t->heuristic(f8, 1, 0, none).has_value() == (cuda::device_arch() >= 90));
  // Measured tuning times each tile's best shape, at the batches the engine joins blocks for it
  // (under the rtc suite's stand-in sm_90 device: three here, none at 3).
  const auto offered = t->candidates(f8, 1, 0, none);
  CHECK(std::count_if(offered.begin(), offered.end(), [](const cuda::Variant& v) { return v.algo == 3; }) ==
        (cuda::device_arch() >= 90 ? 3 : 0));
  const auto offered3 = t->candidates(f8, ed::cluster_max_batch + 1, 0, none);
  CHECK(std::none_of(offered3.begin(), offered3.end(), [](const cuda::Variant& v) { return v.algo == 3; }));
  CHECK(t->fuses_project(cuda::Variant{"expand_depthwise", 3, 3048, 1}));
  CHECK(t->kernel_sources(f8, cuda::Variant{"expand_depthwise", 3, 3048, 0}, {}).empty());  // (fuse 1 only)
  CHECK(t->kernel_sources(f8, cuda::Variant{"expand_depthwise", 3, 4048, 1}, {}).empty());
  CHECK(t->kernel_sources(cuda::project_main(f8), cuda::Variant{"expand_depthwise", 3, 3048, 1}, {}).empty());
  CHECK(t->kernel_sources(f17, cuda::Variant{"expand_depthwise", 3, 3064, 1}, {}).size() == 1);
  const auto k = t->kernel_sources(f8, cuda::Variant{"expand_depthwise", 3, 3048, 1}, {});
  REQUIRE(k.size() == 1);
  CHECK(k[0].source.find("__cluster_dims__(8, 1, 1) __launch_bounds__(256, 2)") != std::string::npos);
  CHECK(k[0].source.find("constexpr bool RES_XS = true;") != std::string::npos);
  CHECK(ed::source(f17, 3, 3016, true).find("constexpr int NMAX = 4;") != std::string::npos);
  // It compiles (f16, bf16; the residual staged, stride 2 without one, several chunks a block),
  // with no activation desc left in global memory.
  const auto dir = fresh_dir("strata_rtc_test_expand_cluster");
  for (const auto& [o, code] : std::vector<std::pair<const cuda::OpDesc*, int>>{{&f8, 3048}, {&f2, 1048}, {&f17, 3016}}) {
    const std::string src = ed::source(*o, 3, code, true);
    INFO(o->label << " " << code);
    CHECK(ptx_of(src, "strata_rtc::expand_depthwise<strata_rtc::f16>").find(".weak .global") == std::string::npos);
    const std::vector<std::string> bf{"strata_rtc::expand_depthwise<strata_rtc::bf16>"};
    CHECK(rtc::compile(src, "expand_depthwise", bf, 90, dir).cubin.size() > 1000);
  }
}

// expand_depthwise: an inverted-residual block's expansion and depthwise conv as one kernel
// (fold_expanded_depthwise), the expanded map kept in shared memory.
TEST_CASE("an expansion and its depthwise conv as one kernel (expand_depthwise): block shapes, hand-worked, the claim, the key, the source compiles") {
  namespace ed = cuda::tactics::expand_dw;
  cuda::NetDesc mv2 = cuda::NetStorage<models::MobileNetV2, DType::f16>::describe();
  cuda::fold_for_per_op_path(mv2);
  cuda::NetDesc eb0 = cuda::NetStorage<models::EfficientNetB0, DType::f16>::describe();
  cuda::fold_for_per_op_path(eb0);
  const auto joined = [](const cuda::NetDesc& n, std::string_view expansion) -> const cuda::OpDesc& {
    const auto it = std::find_if(n.ops.begin(), n.ops.end(), [&](const cuda::OpDesc& o) {
      return o.expand && o.expand->label == expansion;
    });
    REQUIRE(it != n.ops.end());
    return *it;
  };
  const cuda::OpDesc& f3 = joined(mv2, "features.3.conv.0.conv0+bn1+clip2");
  const cuda::OpDesc& f14 = joined(mv2, "features.14.conv.0.conv0+bn1+clip2");
  const cuda::OpDesc& e5x5 = joined(eb0, "features.3.0.block.0.conv0+bn1+silu2");
  CHECK(f3.label == "features.3.conv.0.conv0+bn1+clip2+features.3.conv.1.conv0+bn1+clip2");
  CHECK(f3.in_act.kind == Act::clip);  // the expansion's ReLU6, deferred into the depthwise read
  // MobileNetV2's features.3: 24 -> 144 channels on 56x56, 3x3 stride 1. A reduction of 24 slots
  // (16 on m16n8k16, 8 on m16n8k8; rows of 24 elements: 3 chunks of 16 bytes, odd, so no padding
  // to 32 for the tensor cores to multiply by zeros); chunks of 48 channels (144 is
  // no multiple of 64 or 56); a tile of 8x8 outputs reads a 10x10 patch: 100 pixels, 112 GEMM
  // rows; 24 pairs x 4 strips of 2 rows x 2 groups of 4 columns = 192 threads' work.
  const ed::Plan p = ed::plan(f3);
  CHECK(p.ki == 24);
  CHECK(p.xp == 24);
  CHECK(p.nc == 48);
  CHECK(p.chunks == 3);
  CHECK(p.th == 8);
  CHECK(p.tw == 8);
  CHECK(p.rows_in == 10);
  CHECK(p.cols_in == 10);
  CHECK(p.np == 100);
  CHECK(p.mp == 112);
  CHECK(p.rows == 2);
  CHECK(p.strips == 4);
  CHECK(p.groups == 2);
  CHECK(p.items() == 192);
  CHECK(p.tiles_y == 7);
  CHECK(p.tiles_x == 7);
  CHECK(p.ep >= 24);
  CHECK(ed::conflicts(p, 1, p.ep) <= ed::conflicts(p, 1, 24));
  CHECK(p.shared == 2 * 112 * 24 + 2 * 2 * 48 * 24 + 4 * 112 * p.ep);
  CHECK(ed::source(f3).find("if constexpr (KI % 16 != 0)") != std::string::npos);  // (the m16n8k8 step)
  // features.14: 96 -> 576 on 14x14, stride 2: the 8x8 tile (7x7 outputs) reads 17x17 pixels,
  // 304 GEMM rows of 104 elements; 64 channels a chunk would pass the shared-memory limit, 48 fit
  // (12 chunks) with unpadded rows of expanded pairs (the padded ones would not).
  const ed::Plan q = ed::plan(f14);
  CHECK(q.xp == 104);
  CHECK(q.mp == 304);
  CHECK(q.nc == 48);
  CHECK(q.chunks == 12);
  CHECK(q.ep == 24);
  CHECK(q.rows == 2);
  CHECK(q.items() == 192);
  CHECK(q.tiles_y * q.tiles_x == 1);
  CHECK(q.shared == 2 * 304 * 104 + 2 * 2 * 48 * 104 + 4 * 304 * 24);
  CHECK(q.shared <= ed::max_shared);
  CHECK(std::int64_t{2} * 304 * 104 + 2 * 2 * 64 * 104 + 4 * 304 * 32 > ed::max_shared);
  CHECK(std::int64_t{2} * 304 * 104 + 2 * 2 * 48 * 104 + 4 * 304 * 28 > ed::max_shared);
  // The tactic: joined ops only, 16-bit only; it claims them ahead of the depthwise kernels (which
  // run the expansion first, as a step of its own).
  const auto* t = cuda::find_tactic<DType::f16>("expand_depthwise");
  REQUIRE(t != nullptr);
  CHECK(t->applicable(f3));
  CHECK(t->applicable(f14));
  CHECK(t->applicable(e5x5));
  CHECK_FALSE(t->applicable(cuda::expand_main(f3)));
  CHECK(t->reads_input_act());
  CHECK(t->fuses_expand(cuda::Variant{"expand_depthwise"}));
  CHECK_FALSE(cuda::find_tactic<DType::f32>("expand_depthwise")->applicable(f3));
  const cuda::Libraries none{};
  const auto claim = t->heuristic(f3, 256, 0, none);
  REQUIRE(claim.has_value());
  CHECK(claim->rank == cuda::rank::joins);
  const auto* band = cuda::find_tactic<DType::f16>("depthwise_band");
  CHECK(band->applicable(f3));
  const auto band_claim = band->heuristic(f3, 256, 0, none);
  REQUIRE(band_claim.has_value());
  CHECK(claim->rank < band_claim->rank);
  // Claimed where it was measured faster: 3x3, ReLU6 on 56x56 (28x28 and up), with a thousand blocks (256
  // images x 49 tiles; at batch 1, 49); not MobileNetV2's 14x14 stage, nor EfficientNet-B0's 5x5
  // with SiLU; offered to measured tuning on all of them.
  CHECK(ed::claimed(f3, 256));
  CHECK(ed::claimed(f3, 21));
  CHECK_FALSE(ed::claimed(f3, 20));
  CHECK_FALSE(t->heuristic(f3, 1, 0, none).has_value());
  CHECK_FALSE(t->heuristic(f14, 256, 0, none).has_value());
  CHECK_FALSE(t->heuristic(e5x5, 256, 0, none).has_value());
  CHECK(t->candidates(f14, 256, 0, none).size() == 1);
  CHECK(t->candidates(e5x5, 1, 0, none).size() == 1);
  CHECK(t->candidates(cuda::expand_main(f3), 1, 0, none).empty());
  CHECK(ed::source(f3).find("__launch_bounds__(256, 3)") != std::string::npos);
  CHECK(ed::source(e5x5).find("__launch_bounds__(256, 2)") != std::string::npos);
  CHECK_FALSE(band->fuses_expand(cuda::Variant{"depthwise_band"}));
  CHECK(cuda::op_as_prepared(*band, f3, cuda::Variant{"depthwise_band"}).label ==
        "features.3.conv.1.conv0+bn1+clip2");
  CHECK(cuda::op_as_prepared(*t, f3, cuda::Variant{"expand_depthwise"}).label == f3.label);
  // Its key: the expansion's input channels and activation (a plain depthwise conv's differs).
  const std::string key = cuda::tuning_key(f3, 256, DType::f16, "gpu");
  CHECK(key.find(",expand24,act0") != std::string::npos);
  CHECK(key != cuda::tuning_key(cuda::expand_main(f3), 256, DType::f16, "gpu"));
  // Forcing either layer by its own label names the joined op.
  std::string refused;
  try {
    (void)cuda::forced_variants<DType::f16>(mv2, {{"features.3.conv.0.conv0+bn1+clip2", {"lt_conv1x1"}}});
  } catch (const strata::Error& e) {
    refused = e.what();
  }
  CHECK(refused.find("'" + f3.label + "' (fold_expanded_depthwise)") != std::string::npos);
  CHECK(refused.find("the depthwise conv after it") != std::string::npos);
  // The sources compile (f16 and bf16): ReLU6 and SiLU on load, 3x3 and 5x5, strides 1 and 2.
  const auto dir = fresh_dir("strata_rtc_test_expand_dw");
  for (const cuda::OpDesc* op : {&f3, &f14, &e5x5}) {
    const std::string src = ed::source(*op);
    INFO(op->label);
    CHECK(src.find("constexpr int EP = " + std::to_string(ed::plan(*op).ep) + ";") != std::string::npos);
    for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
      const std::vector<std::string> names{std::string("strata_rtc::expand_depthwise<") + ty + ">"};
      const rtc::Compiled c = rtc::compile(src, "expand_depthwise", names, 90, dir);
      CHECK(c.cubin.size() > 1000);
    }
  }
  CHECK(ed::source(e5x5).find("constexpr Act IA = static_cast<Act>(" +
                              std::to_string(static_cast<int>(Act::silu)) + ");") != std::string::npos);
  // The other forms (not offered to measured tuning until timed on a GPU): pipelined (algo 1: two
  // expanded patches, one barrier a chunk) and the chunks split over blocks (math: groups a
  // tile). The plain form's source is the one the tests above compiled.
  CHECK(ed::source(f3, 0, 0) == ed::source(f3));
  CHECK(ed::source(f3, 0, 1) == ed::source(f3));
  CHECK(ed::source(f3).find("GROUPS") == std::string::npos);
  const ed::Plan pipe = ed::plan(f3, 2);
  CHECK(pipe.nc == 48);
  CHECK(pipe.shared == 2 * 112 * 24 + 2 * 2 * 48 * 24 + 2 * 4 * 112 * pipe.ep);
  CHECK(t->candidates(f3, 256, 0, none).size() == 1);  // (algo 0 only)
  for (const cuda::Variant& v : {cuda::Variant{"expand_depthwise", 1}, cuda::Variant{"expand_depthwise", 0, 3},
                                 cuda::Variant{"expand_depthwise", 1, 2}}) {
    INFO(cuda::to_string(v));
    const auto k = t->kernel_sources(f3, v, {});
    REQUIRE(k.size() == 1);
    CHECK(k[0].source.find(v.algo == 1 ? "(es + ((k + 1) & 1) * (MP * EP))" : "load_weights(c0, 0);") !=
          std::string::npos);
    CHECK(k[0].source.find("constexpr int GROUPS = " + std::to_string(std::max(v.math, 1)) + ";") !=
          std::string::npos);
    const std::vector<std::string> names{"strata_rtc::expand_depthwise<strata_rtc::f16>"};
    CHECK(rtc::compile(k[0].source, "expand_depthwise", names, 90, dir).cubin.size() > 1000);
  }
  const std::vector<std::string> bf{"strata_rtc::expand_depthwise<strata_rtc::bf16>"};
  CHECK(rtc::compile(ed::source(e5x5, 1, 3), "expand_depthwise", bf, 90, dir).cubin.size() > 1000);
  // What it refuses: no algo 3 (algo 2, one block an SM more, fits features.3), no fuse, more
  // groups than chunks (3 for features.3).
  CHECK(t->kernel_sources(f3, cuda::Variant{"expand_depthwise", 3}, {}).empty());
  CHECK_FALSE(t->kernel_sources(f3, cuda::Variant{"expand_depthwise", 2}, {}).empty());
  CHECK(t->kernel_sources(f3, cuda::Variant{"expand_depthwise", 0, 0, 1}, {}).empty());
  CHECK(t->kernel_sources(f3, cuda::Variant{"expand_depthwise", 0, 4}, {}).empty());
  CHECK_FALSE(t->kernel_sources(f3, cuda::Variant{"expand_depthwise", 0, 3}, {}).empty());
  // Under a programmatic dependent launch every form copies its first expansion weights before
  // it waits, and its input patch after: pdl_launch, the weights, pdl_wait, the patch.
  for (const std::string& src : {ed::source(f3), ed::source(f3, 1, 0), ed::source(f3, 0, 3), ed::source(e5x5, 1, 3)}) {
    const std::string body = src.substr(src.rfind("__global__"));
    const std::size_t wait = check_early_work(body, "load_weights(", "const T* xi = x + img");  // (the first call)
    CHECK(body.find("cp_async16(xs") > wait);  // (the first input copy)
    CHECK(body.find(" z[") == std::string::npos);  // (the residual read through pair_epilogue, after)
  }
}

// expand_depthwise fuse 3 (session 67): at large batches the squeeze-excite op joined after the
// depthwise conv (fold_tailed_gates) computed from the blocks' channel sums, as depthwise_band's
// fuse 3 does — each block its tile's sums of the values as stored, chunk by chunk, then
// depthwise_band's gate kernel, a block an image.
TEST_CASE("expand_depthwise fuse 3: the squeeze-excite op's sums — which ops, shapes hand-worked, the claim, refusals, the sources compile") {
  namespace ed = cuda::tactics::expand_dw;
  namespace band = cuda::tactics::band;
  const cuda::NetDesc eb0 = cuda::per_op_ops<models::EfficientNetB0, DType::f16>(cuda::EngineOptions{.max_batch = 256});
  const auto it = std::find_if(eb0.ops.begin(), eb0.ops.end(), [](const cuda::OpDesc& o) {
    return o.expand && o.expand->label == "features.2.0.block.0.conv0+bn1+silu2";
  });
  REQUIRE(it != eb0.ops.end());
  const cuda::OpDesc& f20 = *it;
  REQUIRE(f20.tail != nullptr);  // (joined at max batch 256: EngineOptions::tail_sums)
  CHECK(f20.label.find("features.2.0.block.2.fc2") != std::string::npos);
  CHECK(band::tail_shapes_fit(f20));
  CHECK(ed::sums_fit(f20));
  // features.2.0: 16 -> 96 on 112x112, 3x3 stride 2 to 56x56. Tiles of 8x8 outputs (17x17
  // patches, 304 GEMM rows), two chunks of 48 channels; the sums: 4 strips x 2 column groups
  // = 8 thread groups x 48 floats, 1,536 bytes past the expanded patch.
  const ed::Plan p = ed::plan(f20);
  const ed::Plan q = ed::plan(f20, 1, false, true);
  CHECK(q.sums);
  CHECK_FALSE(p.sums);
  CHECK(q.nc == 48);
  CHECK(q.chunks == 2);
  CHECK(q.th == 8);
  CHECK(q.tw == 8);
  CHECK(q.mp == 304);
  CHECK(q.strips * q.groups == 8);
  CHECK(q.ep == p.ep);
  CHECK(q.shared == p.shared + 4 * 8 * 48);
  CHECK(q.tiles_y * q.tiles_x == 49);
  CHECK(ed::min_blocks(f20, q) == 3);
  // No projection with it, and no op without a joined squeeze-excite op.
  CHECK(ed::plan(f20, 1, true, true).nc == 0);
  const cuda::OpDesc apart = cuda::tail_main(f20);
  CHECK_FALSE(ed::sums_fit(apart));
  CHECK(ed::fits(apart));
  // The claim: at batch 256 and 32 (the least batch whose engines join the gate; 32 x 49 tiles
  // pass the thousand blocks the plain form asks), not at 16.
  const auto* t = cuda::find_tactic<DType::f16>("expand_depthwise");
  REQUIRE(t != nullptr);
  const cuda::Libraries none{};
  const cuda::Variant three{"expand_depthwise", 0, 0, 3};
  CHECK(ed::sums_claimed(f20, 256) == ed::sums_gpu_tested);
  CHECK(ed::sums_claimed(f20, band::sums_min_batch) == ed::sums_gpu_tested);
  CHECK_FALSE(ed::sums_claimed(f20, 16));
  const auto claim = t->heuristic(f20, 256, 0, none);
  REQUIRE(claim.has_value());
  CHECK(claim->variant == (ed::sums_gpu_tested ? three : cuda::Variant{"expand_depthwise"}));
  const auto offered = t->candidates(f20, 256, 0, none);
  CHECK((std::find(offered.begin(), offered.end(), three) != offered.end()) == ed::sums_gpu_tested);
  const auto few = t->candidates(f20, 16, 0, none);
  CHECK(std::none_of(few.begin(), few.end(), [](const cuda::Variant& v) { return v.fuse == 3; }));
  CHECK(t->fuses_tail(three));
  CHECK_FALSE(t->fuses_tail(cuda::Variant{"expand_depthwise"}));
  CHECK(cuda::op_as_prepared(*t, f20, three).label == f20.label);
  CHECK(cuda::op_as_prepared(*t, f20, cuda::Variant{"expand_depthwise"}).label == apart.label);
  // The sources: the conv with the sums (each chunk's, after the barrier past its stores; the
  // last after the loop), and the gate kernel over 49 tiles an image.
  const auto k = t->kernel_sources(f20, three, cuda::OpIo{});
  REQUIRE(k.size() == 2);
  CHECK(k[0].source.find("int batch, float* __restrict__ part") != std::string::npos);
  CHECK(k[0].source.find("red[(tid / PAIRS) * NC + 2 * p] = s0;") != std::string::npos);
  CHECK(k[0].source.find("(c - 1) * NC + tid] = t;") != std::string::npos);
  CHECK(k[0].source.find("(CHUNKS - 1) * NC + tid] = t;") != std::string::npos);
  CHECK(k[0].source.find("__launch_bounds__(256, 3) expand_depthwise") != std::string::npos);
  CHECK(k[1].name == "strata_rtc::depthwise_band_gate<strata_rtc::f16>");
  CHECK(k[1].source.find("constexpr int TILES = 49;") != std::string::npos);
  CHECK(k[1].source.find("constexpr int CP = 96;") != std::string::npos);
  CHECK(ed::source(f20).find("int batch, float* __restrict__ part") == std::string::npos);
  // Refusals: fuse 3 without the joined op, with the split or pipelined forms.
  CHECK(t->kernel_sources(apart, three, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(f20, cuda::Variant{"expand_depthwise", 1, 0, 3}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(f20, cuda::Variant{"expand_depthwise", 0, 2, 3}, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(f20, cuda::Variant{"expand_depthwise", 0, 0, 2}, cuda::OpIo{}).empty());
  const auto dense = t->kernel_sources(f20, cuda::Variant{"expand_depthwise", 2, 0, 3}, cuda::OpIo{});
  REQUIRE(dense.size() == 2);
  CHECK(dense[0].source.find("__launch_bounds__(256, 4) expand_depthwise") != std::string::npos);
  const auto dir = fresh_dir("strata_rtc_test_expand_sums");
  for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
    const std::vector<std::string> names{std::string("strata_rtc::expand_depthwise<") + ty + ">"};
    CHECK(rtc::compile(k[0].source, "expand_sums", names, 90, dir).cubin.size() > 1000);
    CHECK(rtc::compile(dense[0].source, "expand_sums_dense", names, 90, dir).cubin.size() > 1000);
  }
  CHECK(rtc::compile(k[1].source, "expand_sums_gate", {k[1].name}, 90, dir).cubin.size() > 1000);
  // Algo 4 (session 67, forced only): the plain form with the expansion's n-tiles split evenly
  // over its groups — features.2.0's 6 (48 channels) 3 and 3, where the other forms take 4 and 2
  // (and with 8 warps and 2 groups a warp always draws the same one); 56 channels 4 and 3, 40 3
  // and 2, 64 4 and 4 as before, 24 one group of 3.
  CHECK(ed::tiles_a_group(q, false) == 4);
  CHECK(ed::tiles_a_group(q, true) == 3);
  for (const auto& [nc, want] : {std::pair{56, 4}, {40, 3}, {64, 4}, {24, 3}, {16, 2}}) {
    ed::Plan x;
    x.nc = nc;
    CHECK(ed::tiles_a_group(x, true) == want);
    CHECK(ed::tiles_a_group(x, false) == 4);
  }
  CHECK(k[0].source.find("constexpr int NPG = 4;") != std::string::npos);
  const auto even = t->kernel_sources(f20, cuda::Variant{"expand_depthwise", 4, 0, 3}, cuda::OpIo{});
  REQUIRE(even.size() == 2);
  CHECK(even[0].source.find("constexpr int NPG = 3;") != std::string::npos);
  CHECK(even[0].source.find("__launch_bounds__(256, 3) expand_depthwise") != std::string::npos);
  CHECK(even[1].source == k[1].source);  // (the same gate kernel)
  CHECK(t->kernel_sources(f20, cuda::Variant{"expand_depthwise", 4, 2, 3}, cuda::OpIo{}).empty());  // (math 0 only)
  CHECK(t->kernel_sources(f20, cuda::Variant{"expand_depthwise", 5, 0, 3}, cuda::OpIo{}).empty());
  CHECK(std::none_of(offered.begin(), offered.end(), [](const cuda::Variant& v) { return v.algo == 4; }));
  for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
    const std::vector<std::string> names{std::string("strata_rtc::expand_depthwise<") + ty + ">"};
    CHECK(rtc::compile(even[0].source, "expand_even", names, 90, dir).cubin.size() > 1000);
  }
}

// The stem joined to the depthwise conv after it (fold_stem_depthwise, EngineOptions::stem_joins;
// session 68, written without a GPU): expand_depthwise stages each stem output pixel's four
// space-to-depth blocks from the caller's input and runs the stem as its expansion, so the
// stem's map (112x112x32 in MobileNetV2 and EfficientNet-B0) is never stored.
TEST_CASE("expand_depthwise with a joined stem: the fold, shapes hand-worked, no claim before its GPU test, refusals, the sources compile") {
  namespace ed = cuda::tactics::expand_dw;
  const auto ops = [](bool joins) {
    return cuda::per_op_ops<models::EfficientNetB0, DType::f16>(cuda::EngineOptions{.max_batch = 256, .stem_joins = joins});
  };
  const cuda::NetDesc off = ops(false);
  const cuda::NetDesc eb0 = ops(true);
  const auto is_stem = [](const cuda::OpDesc& o) { return cuda::joined_stem(o); };
  CHECK(std::none_of(off.ops.begin(), off.ops.end(), is_stem));  // (off by default)
  CHECK(cuda::EngineOptions{}.stem_joins == false);
  REQUIRE(std::count_if(eb0.ops.begin(), eb0.ops.end(), is_stem) == 1);
  CHECK(eb0.ops.size() + 1 == off.ops.size());
  const cuda::OpDesc& j = eb0.ops.front();
  REQUIRE(is_stem(j));
  CHECK(cuda::reads_network_input(j, eb0.input_id));
  CHECK(j.in_id != eb0.input_id);
  CHECK(j.expand->label == off.ops.front().label);
  // The input step still finds the op that reads the input space-to-depth (its padding), now
  // inside the joined op (NetDesc::op_at; session 68's review found it threw).
  REQUIRE(eb0.s2d_op >= 0);
  CHECK(&eb0.op_at(eb0.s2d_op) == j.expand.get());
  CHECK(eb0.op_at(eb0.s2d_op).layer.padding.h == 1);
  CHECK(&eb0.op_at(j.index) == &j);
  CHECK(j.label.starts_with(off.ops.front().label + "+features.1.0.block.0"));
  REQUIRE(j.tail != nullptr);  // (features.1.0's squeeze-excite op joined after it, as before)
  CHECK(cuda::expand_main(cuda::tail_main(j)).label == cuda::tail_main(off.ops[1]).label);
  // The stem as the executor stores it: a 2x2 conv of stride 1 over 113x113 blocks of 12 real
  // slots of 16, into 112x112x32 — the depthwise conv's input.
  const cuda::ConvGeom& e = j.expand->conv;
  CHECK(e.c == 12);
  CHECK(e.cp == 16);
  CHECK(e.kh == 2);
  CHECK(e.h == 113);
  CHECK(e.oh == 112);
  CHECK(j.conv.h == 112);
  CHECK(j.conv.cp == 32);
  CHECK(ed::stem(j));
  CHECK(ed::shapes_fit(j));
  CHECK(ed::sums_fit(j));
  CHECK_FALSE(ed::stem(off.ops[1]));
  // The block: tiles of 8x16 outputs (a stem's first choice; 10x18 patch pixels, 192 GEMM rows),
  // one chunk of all 32 channels, rows of 64 slots (four taps' 16; 72 with the odd-chunk
  // padding); 2 output rows a thread: 16 pairs x 4 strips x 4 column groups = 256 items; 14x7
  // tiles.
  const ed::Plan p = ed::plan(j);
  CHECK(p.ki == 64);
  CHECK(p.xp == 72);
  CHECK(p.nc == 32);
  CHECK(p.chunks == 1);
  CHECK(p.th == 8);
  CHECK(p.tw == 16);
  CHECK(p.rows == 2);
  CHECK(p.items() == 256);
  CHECK(p.np == 180);
  CHECK(p.mp == 192);
  CHECK(p.tiles_y * p.tiles_x == 98);
  CHECK(p.shared == 2 * 192 * 72 + 2 * 2 * 32 * 72 + 4 * 192 * p.ep);
  CHECK(4 * 192 * p.ep >= 4 * 3 * 22 * 38);  // (the input's 22 x 38 rows of 3 channels, f32, staged there first)
  CHECK(ed::min_blocks(j, p) == 3);
  // A 1x1 expansion's depthwise conv keeps its 8x8 tiles (the wide tile is a stem's).
  REQUIRE(off.ops[3].expand != nullptr);
  CHECK(ed::plan(cuda::tail_main(off.ops[3])).tw == 8);
  // Not claimed, not offered, before its GPU test; forced, it runs.
  const auto* t = cuda::find_tactic<DType::f16>("expand_depthwise");
  REQUIRE(t != nullptr);
  const cuda::Libraries none{};
  CHECK(t->runs(j));
  CHECK(ed::claimed(j, 256) == ed::stem_gpu_tested);
  CHECK(t->heuristic(j, 256, 0, none).has_value() == ed::stem_gpu_tested);
  CHECK(t->candidates(j, 256, 0, none).empty() != ed::stem_gpu_tested);
  CHECK(ed::cluster_plan(j, 1032).nc == 0);
  // The sources: the caller's input (f32 NCHW as declared, then u8 HWC normalized) in x's place.
  cuda::OpIo io;
  const float dummy = 0.0f;
  io.net_input = &dummy;
  io.net_input_format = cuda::InputFormat::f32;
  io.net_input_shape = Shape{3, 224, 224};
  const cuda::Variant three{"expand_depthwise", 0, 0, 3};
  const auto k = t->kernel_sources(j, three, io);
  REQUIRE(k.size() == 2);
  CHECK(k[0].source.find("const void* __restrict__ xr, const float* __restrict__ affine") != std::string::npos);
  CHECK(k[0].source.find("constexpr int RPR = 2 * ROWS_IN + 2;") != std::string::npos);  // (the input's rows staged)
  CHECK(k[0].source.find("normalize(load(xi + (static_cast<long long>(gy) * RW + gx) * RPIX + c * RCH), affine, c)") !=
        std::string::npos);
  CHECK(k[0].source.find("using Src = float;") != std::string::npos);
  CHECK(k[0].source.find("constexpr long long RPIX = 1, RCH = 50176, RIMG = 150528;") != std::string::npos);
  CHECK(k[0].source.find("constexpr int RPH = 1;") != std::string::npos);
  CHECK(k[0].source.find("constexpr int CI = 64;") != std::string::npos);
  CHECK(k[0].source.find("cp_async16(xs + r * XP") == std::string::npos);  // (no 1x1 patch)
  CHECK(k[1].source.find("constexpr int TILES = 98;") != std::string::npos);
  // Refusals: without the caller's input; the pipelined, split and cluster forms.
  CHECK(t->kernel_sources(j, three, cuda::OpIo{}).empty());
  CHECK(t->kernel_sources(j, cuda::Variant{"expand_depthwise", 1, 0, 3}, io).empty());
  CHECK(t->kernel_sources(j, cuda::Variant{"expand_depthwise", 0, 2, 0}, io).empty());
  CHECK(t->kernel_sources(j, cuda::Variant{"expand_depthwise", 3, 1032, 1}, io).empty());
  // A 1x1 expansion's source is as before: no stem's text in it.
  const auto f20 = std::find_if(eb0.ops.begin(), eb0.ops.end(), [](const cuda::OpDesc& o) {
    return o.expand && o.expand->label == "features.2.0.block.0.conv0+bn1+silu2";
  });
  REQUIRE(f20 != eb0.ops.end());
  CHECK(ed::source(*f20).find("constexpr int RPR") == std::string::npos);
  CHECK_THROWS_AS((void)ed::source(j), Error);  // (a stem's source needs the input described)
  cuda::OpIo u8 = io;
  u8.net_input_format = cuda::InputFormat::u8_hwc;
  u8.net_input_hwc = true;
  const auto k8 = t->kernel_sources(j, cuda::Variant{"expand_depthwise", 4, 0, 0}, u8);
  REQUIRE(k8.size() == 1);
  CHECK(k8[0].source.find("using Src = unsigned char;") != std::string::npos);
  // Algo 4 on a stem: units of 2 n-tiles, 24 of them over 8 warps (algo 0: 12 units of 4).
  CHECK(k8[0].source.find("constexpr int NPG = 2;") != std::string::npos);
  CHECK(k[0].source.find("constexpr int NPG = 4;") != std::string::npos);
  CHECK(k8[0].source.find("constexpr long long RPIX = 3, RCH = 1, RIMG = 150528;") != std::string::npos);
  const auto dir = fresh_dir("strata_rtc_test_expand_stem");
  for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
    const std::vector<std::string> names{std::string("strata_rtc::expand_depthwise<") + ty + ">"};
    CHECK(rtc::compile(k[0].source, "expand_stem", names, 90, dir).cubin.size() > 1000);
    CHECK(rtc::compile(k8[0].source, "expand_stem_u8", names, 90, dir).cubin.size() > 1000);
  }
  // MobileNetV2 (ReLU6, no squeeze-excite op): its stem joins features.1's depthwise conv too.
  const cuda::NetDesc mv2 =
      cuda::per_op_ops<models::MobileNetV2, DType::f16>(cuda::EngineOptions{.max_batch = 256, .stem_joins = true});
  REQUIRE(is_stem(mv2.ops.front()));
  CHECK(ed::plan(mv2.ops.front()).nc == 32);
  const auto km = t->kernel_sources(mv2.ops.front(), cuda::Variant{"expand_depthwise"}, io);
  REQUIRE(km.size() == 1);
  CHECK(rtc::compile(km[0].source, "expand_stem_mv2", {"strata_rtc::expand_depthwise<strata_rtc::f16>"}, 90, dir)
            .cubin.size() > 1000);
  // With features.1's projection joined after it where a force names the three (fuse 1: the
  // whole block as one kernel, 32 -> 16).
  const std::string block3 = cuda::join_scoped(mv2.ops[0].label, mv2.ops[1].label);
  cuda::EngineOptions forced{.max_batch = 256, .stem_joins = true};
  forced.force[block3] = cuda::Variant{"expand_depthwise", 0, 0, 1};
  const cuda::NetDesc mv2p = cuda::per_op_ops<models::MobileNetV2, DType::f16>(forced);
  REQUIRE(mv2p.ops.front().label == block3);
  REQUIRE(mv2p.ops.front().project != nullptr);
  CHECK(ed::projection_fits(mv2p.ops.front()));
  CHECK_FALSE(ed::residual_staged(mv2p.ops.front()));
  const auto kp = t->kernel_sources(mv2p.ops.front(), cuda::Variant{"expand_depthwise", 0, 0, 1}, io);
  REQUIRE(kp.size() == 1);
  CHECK(kp[0].source.find("constexpr int CO = 16;") != std::string::npos);
  CHECK(rtc::compile(kp[0].source, "expand_stem_mv2_project", {"strata_rtc::expand_depthwise<strata_rtc::f16>"}, 90, dir)
            .cubin.size() > 1000);
  // Not in f32 (stored NCHW: no space-to-depth stem, no 16-bit kernels).
  const cuda::NetDesc f32 =
      cuda::per_op_ops<models::EfficientNetB0, DType::f32>(cuda::EngineOptions{.max_batch = 256, .stem_joins = true});
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), is_stem));
}

// expand_depthwise fuse 1: an inverted-residual block's projection joined after its expansion and
// depthwise conv (fold_projected_depthwise, at large batches), the depthwise conv's output kept in
// shared memory and multiplied into the projection's sums chunk by chunk.
TEST_CASE("an inverted-residual block as one kernel (expand_depthwise fuse 1): the fold's batches, block shapes, the claim, the key, refusals, the source compiles") {
  namespace ed = cuda::tactics::expand_dw;
  const auto folded = [](int max_batch, bool clusters = true) {
    return cuda::per_op_ops<models::MobileNetV2, DType::f16>(
        cuda::EngineOptions{.max_batch = max_batch, .block_clusters = clusters});
  };
  const auto projected = [](const cuda::OpDesc& o) { return o.project != nullptr; };
  // Below project_min_batch the engine joins nothing (nothing forced) but at max batches up to
  // expand_dw::cluster_max_batch with block_clusters (session 63): every block there — the
  // sixteen expanded ones for expand_depthwise's cluster form, features.1 for depthwise_band's
  // fuse 2.
  const cuda::NetDesc small = folded(cuda::project_min_batch - 1);
  CHECK(std::none_of(small.ops.begin(), small.ops.end(), projected));
  const cuda::NetDesc one_off = folded(1, false);
  CHECK(std::none_of(one_off.ops.begin(), one_off.ops.end(), projected));
  const cuda::NetDesc small_clusters = folded(ed::cluster_max_batch);
  std::vector<std::string> blocks;
  for (const cuda::OpDesc& o : small_clusters.ops) {
    if (o.project) {
      blocks.push_back(o.label.substr(0, o.label.find(".conv.")));
    }
  }
  std::vector<std::string> all_blocks;
  for (int i = 1; i <= 17; ++i) {
    all_blocks.push_back("features." + std::to_string(i));
  }
  CHECK(blocks == all_blocks);
  // Every block joins (the fold alone: sixteen with an expansion, features.1 without); the engine
  // joins at its max_batch only those a kernel would run as one (expand_depthwise: claimed, and
  // the projection claimed with it; without an expansion, depthwise_band's fuse 2).
  cuda::NetDesc mv2 = small;
  cuda::fold_projected_depthwise(mv2);
  CHECK(std::count_if(mv2.ops.begin(), mv2.ops.end(), projected) == 17);
  CHECK(mv2.ops.size() == small.ops.size() - 17);
  const cuda::NetDesc engine256 = folded(256);
  std::vector<std::string> joined256;
  for (const cuda::OpDesc& o : engine256.ops) {
    if (o.project) {
      if (o.expand) {
        CHECK(ed::claimed(o, 256));
        CHECK(ed::projection_claimed(o));
      } else {
        CHECK(cuda::tactics::band::projection_claimed(o));
      }
      joined256.push_back(o.label.substr(0, o.label.find(".conv.0")));
    }
  }
  for (const char* block : {"features.2", "features.3", "features.4", "features.5", "features.6"}) {
    CHECK(std::find(joined256.begin(), joined256.end(), block) != joined256.end());
  }
  // (features.1, without an expansion: once depthwise_band's fuse 2 is GPU-tested)
  const bool f1 = cuda::tactics::band::projection_gpu_tested;
  CHECK((std::find(joined256.begin(), joined256.end(), "features.1") != joined256.end()) == f1);
  CHECK(std::find(joined256.begin(), joined256.end(), "features.7") == joined256.end());  // (64 outputs: slower)
  CHECK(joined256.size() == (f1 ? 6u : 5u));
  CHECK(std::find(joined256.begin(), joined256.end(), "features.14") == joined256.end());  // (does not fit)
  CHECK(engine256.ops.size() == small.ops.size() - joined256.size());
  const cuda::NetDesc engine32 = folded(32);
  CHECK(std::count_if(engine32.ops.begin(), engine32.ops.end(), projected) <
        static_cast<std::ptrdiff_t>(joined256.size()));  // (fewer blocks claimed at 32 images)
  const auto joined = [&](std::string_view block) -> const cuda::OpDesc& {
    const auto it = std::find_if(mv2.ops.begin(), mv2.ops.end(), [&](const cuda::OpDesc& o) {
      return o.project && o.label.rfind(std::string(block) + ".conv.0.conv0", 0) == 0;
    });
    REQUIRE(it != mv2.ops.end());
    return *it;
  };
  const cuda::OpDesc& f3 = joined("features.3");
  const cuda::OpDesc& f4 = joined("features.4");
  const cuda::OpDesc& f7 = joined("features.7");
  const cuda::OpDesc& f14 = joined("features.14");
  CHECK(f3.label == "features.3.conv.0.conv0+bn1+clip2+features.3.conv.1.conv0+bn1+clip2+conv2+bn3+add");
  CHECK(f3.project->has_residual);
  CHECK_FALSE(f4.project->has_residual);
  // features.3: the plain form's tile and chunks (48 of 144 channels), plus the tile's depthwise
  // outputs (64 pixels in rows of 56 elements: 7 chunks of 16 bytes, odd), the projection's
  // weights (24 rows of 152: 144 padded to 19 chunks) and bias; its f32 sums are in registers
  // (12 units of 16 pixels x 8 outputs over 8 warps: 2 a warp at most).
  const ed::Plan p0 = ed::plan(f3);
  const ed::Plan p = ed::plan(f3, 1, true);
  CHECK(p0.co == 0);  // (the plain form's plan has no projection)
  CHECK(p.nc == 48);
  CHECK(p.th * p.tw == 64);
  CHECK(p.co == 24);
  CHECK(ed::source(f3, 0, 0, true).find("constexpr int KPR = 24;") != std::string::npos);
  CHECK(p.dp == 56);
  CHECK(p.wpp == 152);
  CHECK(p.ep == p0.ep);
  CHECK(p.shared == p0.shared + 2 * 64 * 56 + 2 * 24 * 152 + 4 * 24);
  CHECK(p.units_a_warp() == 2);
  // features.4 (stride 2, 17x17 patches, 32 outputs) keeps the plain form's 3 blocks an SM.
  const ed::Plan p4 = ed::plan(f4, 1, true);
  CHECK(ed::min_blocks(f4, p4) == 3);
  CHECK(ed::min_blocks(f4, p4) == ed::min_blocks(f4, ed::plan(f4)));
  CHECK(ed::projection_claimed(f4));
  CHECK(ed::residual_staged(f3));  // (its residual, the block's input, added from the staged patch)
  CHECK_FALSE(ed::residual_staged(f4));
  CHECK(ed::plan(f4, 1, true).co == 32);
  CHECK(ed::plan(f7, 1, true).co == 64);
  CHECK(ed::plan(f7, 1, true).nc % 16 == 0);
  // features.14 (576 -> 160 on 7x7): the projection's weights and sums do not fit with any tile.
  CHECK(ed::plan(f14, 1, true).nc == 0);
  CHECK_FALSE(ed::fits(f14, true));
  CHECK(ed::fits(f3, true));
  CHECK(ed::plan(f14).nc > 0);
  // The tactic: fuse 1 computes the projection; claimed where the plain form is and the shape fits.
  const auto* t = cuda::find_tactic<DType::f16>("expand_depthwise");
  REQUIRE(t != nullptr);
  const cuda::Variant v0{"expand_depthwise"};
  const cuda::Variant v1{"expand_depthwise", 0, 0, 1};
  CHECK(t->fuses_project(v1));
  CHECK_FALSE(t->fuses_project(v0));
  CHECK(t->applicable(f3));
  const cuda::Libraries none{};
  const auto claim = t->heuristic(f3, 256, 0, none);
  REQUIRE(claim.has_value());
  CHECK(claim->variant == v1);
  CHECK(claim->rank == cuda::rank::joins);
  CHECK_FALSE(t->heuristic(f3, 20, 0, none).has_value());
  // Not for a projection of more than 32 outputs (features.7: 64; its block shape keeps the plain
  // form's 2 blocks an SM).
  CHECK(ed::min_blocks(f7, ed::plan(f7, 1, true)) == ed::min_blocks(f7, ed::plan(f7)));
  CHECK_FALSE(ed::projection_claimed(f7));
  const auto claim7 = t->heuristic(f7, 256, 0, none);
  REQUIRE(claim7.has_value());
  CHECK(claim7->variant == v0);
  CHECK(t->heuristic(f4, 256, 0, none)->variant == v1);
  CHECK(t->candidates(f3, 256, 0, none) == std::vector<cuda::Variant>{v0, v1});
  CHECK(t->candidates(f14, 256, 0, none) == std::vector<cuda::Variant>{v0});
  // Without the projection, a tactic runs the op before the fold and the projection after it.
  CHECK(cuda::op_as_prepared(*t, f3, v1).label == f3.label);
  CHECK(cuda::op_as_prepared(*t, f3, v0).label ==
        "features.3.conv.0.conv0+bn1+clip2+features.3.conv.1.conv0+bn1+clip2");
  const auto* band = cuda::find_tactic<DType::f16>("depthwise_band");
  CHECK(band->applicable(f3));
  CHECK(cuda::op_as_prepared(*band, f3, cuda::Variant{"depthwise_band"}).label == "features.3.conv.1.conv0+bn1+clip2");
  // Fuse 1 is the plain form's only; none on an op without a projection, nor where it does not fit.
  const auto k1 = t->kernel_sources(f3, v1, {});
  REQUIRE(k1.size() == 1);
  CHECK(k1[0].source.find("constexpr int CO = 24;") != std::string::npos);
  CHECK(t->kernel_sources(f3, cuda::Variant{"expand_depthwise", 1, 0, 1}, {}).empty());
  CHECK(t->kernel_sources(f3, cuda::Variant{"expand_depthwise", 0, 2, 1}, {}).empty());
  CHECK(t->kernel_sources(f3, cuda::Variant{"expand_depthwise", 0, 0, 2}, {}).empty());
  CHECK(t->kernel_sources(cuda::project_main(f3), v1, {}).empty());
  CHECK(t->kernel_sources(f14, v1, {}).empty());
  CHECK(t->kernel_sources(f14, v0, {}).size() == 1);
  // Algo 2, forced only: the plain form for one block an SM more where their shared memory fits
  // (features.3: 4 of 38 KiB; features.4's 3 of 70 KiB are the most).
  const cuda::Variant v2{"expand_depthwise", 2, 0, 1};
  CHECK(ed::denser_blocks(f3, p) == 4);
  CHECK(ed::denser_blocks(f4, p4) == 0);
  CHECK(ed::source(f3, 2, 0, true).find("__launch_bounds__(256, 4)") != std::string::npos);
  CHECK(ed::source(f3, 0, 0, true).find("__launch_bounds__(256, 3)") != std::string::npos);
  CHECK(t->kernel_sources(f3, v2, {}).size() == 1);
  CHECK(t->kernel_sources(f4, v2, {}).empty());
  CHECK(t->kernel_sources(f3, cuda::Variant{"expand_depthwise", 2, 2, 1}, {}).empty());  // (no split)
  CHECK(t->kernel_sources(cuda::project_main(f3), cuda::Variant{"expand_depthwise", 2, 2, 0}, {}).empty());
  CHECK(t->kernel_sources(cuda::project_main(f3), cuda::Variant{"expand_depthwise", 2, 0, 0}, {}).size() == 1);
  CHECK(t->kernel_sources(f3, cuda::Variant{"expand_depthwise", 3, 0, 1}, {}).empty());
  {
    std::string refused;
    try {
      (void)ed::source(f4, 2, 0, true);
    } catch (const strata::Error& e) {
      refused = e.what();
    }
    CHECK(refused.find("algo 2 (one block an SM more) for '" + f4.label + "'") != std::string::npos);
  }
  // Its key: the projection's outputs and residual (the op without it differs).
  const std::string key = cuda::tuning_key(f3, 256, DType::f16, "gpu");
  CHECK(key.find(",project24,act0,add") != std::string::npos);
  CHECK(key != cuda::tuning_key(cuda::project_main(f3), 256, DType::f16, "gpu"));
  // Forcing the projection, or the op it joined, by its own label names the joined op.
  for (const char* label : {"features.3.conv.conv2+bn3+add",
                            "features.3.conv.0.conv0+bn1+clip2+features.3.conv.1.conv0+bn1+clip2"}) {
    INFO(label);
    std::string refused;
    try {
      (void)cuda::forced_variants<DType::f16>(mv2, {{label, v0}});
    } catch (const strata::Error& e) {
      refused = e.what();
    }
    CHECK(refused.find("'" + f3.label + "' (fold_projected_depthwise)") != std::string::npos);
  }
  CHECK_NOTHROW((void)cuda::forced_variants<DType::f16>(mv2, {{f3.label, v1}}));
  // The sources compile (f16 and bf16): strides 1 and 2, with and without the residual, 24, 32
  // and 64 outputs; the plain form's (fuse 0) has none of the projection's.
  CHECK(ed::source(f3).find("CO =") == std::string::npos);
  CHECK(ed::source(f3).find("pair_epilogue(y, z,") != std::string::npos);
  const auto dir = fresh_dir("strata_rtc_test_expand_project");
  // (its ReLU6 bounds constants in the code, not loaded from a weak global: act_constants)
  CHECK(ptx_of(ed::source(f3, 0, 0, true), "strata_rtc::expand_depthwise<strata_rtc::f16>").find(".weak .global") ==
        std::string::npos);
  for (const auto& form : std::vector<std::pair<const cuda::OpDesc*, int>>{{&f3, 0}, {&f4, 0}, {&f7, 0}, {&f3, 2}}) {
    const cuda::OpDesc* op = form.first;
    const std::string src = ed::source(*op, form.second, 0, true);
    INFO(op->label);
    CHECK(src.find("constexpr int CO = " + std::to_string(op->project->conv.kp) + ";") != std::string::npos);
    CHECK(src.find("(with the projection)") != std::string::npos);
    CHECK(src.find(std::string("constexpr bool RES_XS = ") + (op == &f3 ? "true" : "false")) != std::string::npos);
    for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
      const std::vector<std::string> names{std::string("strata_rtc::expand_depthwise<") + ty + ">"};
      const rtc::Compiled c = rtc::compile(src, "expand_depthwise", names, 90, dir);
      CHECK(c.cubin.size() > 1000);
    }
  }
}

// depthwise_band fuse 2: a depthwise conv with no expansion before it and the 1x1 projection
// joined after it (MobileNetV2's features.1, fold_projected_depthwise at large batches) in one
// launch, the tile's depthwise outputs kept in shared memory in the patch's place.
TEST_CASE("a depthwise conv without an expansion and its projection as one kernel (depthwise_band fuse 2): the join, the block shape, the claim, refusals, the source compiles") {
  namespace band = cuda::tactics::band;
  cuda::NetDesc mv2 = cuda::NetStorage<models::MobileNetV2, DType::f16>::describe();
  cuda::fold_for_per_op_path(mv2);
  const cuda::NetDesc unfolded = mv2;
  cuda::fold_projected_depthwise(mv2);  // (the fold alone: every block joins)
  const auto first = [](const cuda::NetDesc& n) {
    return std::find_if(n.ops.begin(), n.ops.end(),
                        [](const cuda::OpDesc& o) { return o.label.rfind("features.1.", 0) == 0; });
  };
  REQUIRE(first(mv2) != mv2.ops.end());
  const cuda::OpDesc& op = *first(mv2);
  // The depthwise conv (the stem's ReLU6 deferred into its read) and the projection, labelled
  // with the shared scope once.
  CHECK(op.label == "features.1.conv.0.conv0+bn1+clip2+conv1+bn2");
  REQUIRE(op.project);
  CHECK_FALSE(op.expand);
  CHECK(op.in_act.kind == Act::clip);
  CHECK(cuda::project_main(op).label == "features.1.conv.0.conv0+bn1+clip2");
  // The engine's fold: at a max_batch of 256, and up to expand_dw::cluster_max_batch
  // (EngineOptions::block_clusters, the default), once fuse 2 is GPU-tested
  // (band::projection_gpu_tested); at 8 only where EngineOptions::force names the joined op.
  const auto engine_joins = [&](int max_batch, bool forced) {
    cuda::NetDesc n = unfolded;
    cuda::EngineOptions o{.max_batch = max_batch};
    if (forced) {
      o.force[op.label] = cuda::Variant{"depthwise_band", 0, 0, 2};
    }
    cuda::fold_for_max_batch(n, o, false);
    return first(n)->project != nullptr;
  };
  CHECK(engine_joins(cuda::tactics::expand_dw::cluster_max_batch, false) == band::projection_gpu_tested);
  CHECK_FALSE(engine_joins(8, false));
  CHECK(engine_joins(8, true));
  CHECK(engine_joins(256, false) == band::projection_gpu_tested);
  CHECK(engine_joins(256, true));
  // 32 channels on 112x112, 3x3 stride 1, projected to 16: the band's plan (16 pairs, tiles of 8x16
  // outputs, 256 threads, one chunk); the tile's outputs (128 pixels in rows of 40 elements) take
  // the patch's place (10 x 18 pixels); the projection's weights (16 rows of 40) and bias behind.
  const band::Plan p = band::plan(op);
  CHECK(p.pb == 16);
  CHECK(p.chunks == 1);
  CHECK(p.th == 8);
  CHECK(p.tw == 16);
  CHECK(p.threads() == 256);
  CHECK(band::projection_pitch(op) == 40);
  CHECK(band::projection_shared(op, p) == std::max<std::int64_t>(p.shared, 2 * 128 * 40) + 2 * 16 * 40 + 4 * 16);
  CHECK(band::projection_fits(op));
  CHECK(band::projection_claimed(op) == band::projection_gpu_tested);
  CHECK_FALSE(band::projection_fits(cuda::project_main(op)));  // (no projection joined)
  // 16 slots: on a 16x16 map 8 pairs x 8 strips x 4 column groups (256 threads) fit; on 20x20, 8
  // x 6 x 5 = 240 threads — a partial warp, which the projection's mma.sync cannot take — do not.
  const auto with_map = [&](int slots, int side) {
    cuda::OpDesc o = op;
    o.conv.c = o.conv.cp = o.conv.k = o.conv.kp = o.conv.xc = o.conv.kd = o.conv.groups = slots;  // (fcg 1)
    o.conv.h = o.conv.w = o.conv.oh = o.conv.ow = side;
    o.in_cp = o.out_cp = slots;
    cuda::OpDesc q = *op.project;
    q.conv.c = q.conv.cp = q.conv.xc = q.conv.fcg = q.in_cp = slots;
    q.conv.h = q.conv.w = q.conv.oh = q.conv.ow = side;
    o.project = std::make_shared<const cuda::OpDesc>(q);
    return o;
  };
  CHECK(band::fits(with_map(16, 16)));
  CHECK(band::plan(with_map(16, 16)).threads() == 256);
  CHECK(band::projection_fits(with_map(16, 16)));
  CHECK(band::fits(with_map(16, 20)));
  CHECK(band::plan(with_map(16, 20)).threads() == 240);
  CHECK_FALSE(band::projection_fits(with_map(16, 20)));
  CHECK_FALSE(cuda::tactics::expand_dw::fits(op, true));     // (expand_depthwise's: with an expansion only)
  // The tactic: fuse 2 offered beside fuse 0, and claimed once GPU-tested (else the plain
  // kernel, the projection then a step of its own); the variant said to compute the projection;
  // refused without the projection and with another algo.
  const auto* t = cuda::find_tactic<DType::f16>("depthwise_band");
  REQUIRE(t != nullptr);
  const cuda::Variant v{"depthwise_band", 0, 0, 2};
  CHECK(t->fuses_project(v));
  CHECK_FALSE(t->fuses_project(cuda::Variant{"depthwise_band"}));
  const cuda::Libraries none{};
  const auto claim = t->heuristic(op, 256, 0, none);
  REQUIRE(claim.has_value());
  CHECK(claim->variant == (band::projection_gpu_tested ? v : cuda::Variant{"depthwise_band"}));
  CHECK(claim->rank == (band::projection_gpu_tested ? cuda::rank::joins : cuda::rank::tailored));
  // (and algo 2, pipelined, 2 and 4 images a block, at batches of 32 and more once GPU-tested)
  CHECK(t->candidates(op, 256, 0, none) ==
        (band::pipelined_gpu_tested
             ? std::vector<cuda::Variant>{cuda::Variant{"depthwise_band"}, v, cuda::Variant{"depthwise_band", 2, 2},
                                          cuda::Variant{"depthwise_band", 2, 4}}
             : std::vector<cuda::Variant>{cuda::Variant{"depthwise_band"}, v}));
  CHECK(t->candidates(op, 31, 0, none) == std::vector<cuda::Variant>{cuda::Variant{"depthwise_band"}, v});
  CHECK(t->kernel_sources(cuda::project_main(op), v, {}).empty());
  CHECK(t->kernel_sources(op, cuda::Variant{"depthwise_band", 1, 0, 2}, {}).empty());
  // The features.3 block (an expansion) is not fuse 2's.
  const auto f3 = std::find_if(mv2.ops.begin(), mv2.ops.end(), [](const cuda::OpDesc& o) {
    return o.label.rfind("features.3.", 0) == 0 && o.project != nullptr;
  });
  REQUIRE(f3 != mv2.ops.end());
  CHECK_FALSE(band::projection_fits(*f3));
  // The source: the projection's weights staged, the outputs through ds on tensor cores, none of
  // the depthwise conv's own stores; it compiles in f16 and bf16.
  const std::string src = band::source(op, 0, 1, false, true);
  CHECK(src.find("constexpr int CO = 16;") != std::string::npos);
  CHECK(src.find("constexpr int MT2 = 8;") != std::string::npos);
  CHECK(src.find("mma_16816<T>(d,") != std::string::npos);
  const auto body = [](const std::string& text) { return text.substr(text.rfind("__global__")); };
  CHECK(body(src).find("pair_epilogue(y, z,") == std::string::npos);
  CHECK(body(src).find("pair_epilogue(yp, zp,") != std::string::npos);
  CHECK(body(band::source(op)).find("pair_epilogue(y, z,") != std::string::npos);
  CHECK(band::source(op).find("CO =") == std::string::npos);
  const auto k = t->kernel_sources(op, v, {});
  REQUIRE(k.size() == 1);
  CHECK(k[0].source == src);
  const auto dir = fresh_dir("strata_rtc_test_band_project");
  for (const char* ty : {"strata_rtc::f16", "strata_rtc::bf16"}) {
    const std::vector<std::string> names{std::string("strata_rtc::depthwise_band<") + ty + ">"};
    const rtc::Compiled c = rtc::compile(src, "depthwise_band_project", names, 90, dir);
    CHECK(c.cubin.size() > 1000);
  }
}

// squeeze_excite: a squeeze-excite gate's pool and two 1x1 convs as one op (fold_squeeze_excite)
// and one kernel (kernels::squeeze_excite, in the 16-bit libraries the first test compiles).
TEST_CASE("a squeeze-excite gate as one op and one kernel (squeeze_excite): labels, refusals, the claim, the key, forced labels") {
  const auto squeezed = [](const cuda::OpDesc& o) { return o.squeeze != nullptr; };
  const cuda::NetDesc before = cuda::NetStorage<models::EfficientNetB0, DType::f16>::describe();
  cuda::NetDesc eb0 = before;
  cuda::fold_for_per_op_path(eb0);
  REQUIRE(std::count_if(eb0.ops.begin(), eb0.ops.end(), squeezed) == 16);
  const cuda::OpDesc& se = *std::find_if(eb0.ops.begin(), eb0.ops.end(), squeezed);
  CHECK(se.label == "features.1.0.block.1.avgpool+features.1.0.block.1.fc1+activation+"
                    "features.1.0.block.1.fc2+scale_activation");
  CHECK(se.squeeze->gap->label == "features.1.0.block.1.avgpool");
  CHECK(cuda::squeeze_main(se).label == "features.1.0.block.1.fc2+scale_activation");
  CHECK(se.squeeze->label == "features.1.0.block.1.avgpool+features.1.0.block.1.fc1+activation");
  // fc1's SiLU deferred into fc2's read, as before the fold; the pool reads the depthwise conv's
  // output (32 channels, 112x112), which the gate's multiply reads after it.
  CHECK(se.in_act.kind == Act::silu);
  CHECK(se.squeeze->act.kind == Act::none);
  CHECK(se.squeeze->gap->in_shape.h == 112);
  CHECK(se.squeeze->gap->in_cp == 32);
  CHECK(cuda::reads_tensor(se, se.squeeze->gap->in_id));
  const auto& pool_before = before.op_at(se.squeeze->gap->index);
  CHECK(pool_before.kind == OpKind::global_avg_pool);
  CHECK(se.squeeze->gap->in_offset == pool_before.in_offset);
  // The tactic: applicable to the joined op only, offered to measured tuning at any batch;
  // claimed where it was measured faster than the three kernels (H200, session 26): fc1 up to
  // 480 x 20 multiply-adds, and a map up to 28x28 or three images or more — else the 1x1 kernel
  // claims the op (prepare_step then runs the pool and fc1 first).
  const auto* t = cuda::find_tactic<DType::f16>("squeeze_excite");
  REQUIRE(t != nullptr);
  CHECK(t->applicable(se));
  CHECK_FALSE(t->applicable(cuda::squeeze_main(se)));
  CHECK(t->fuses_squeeze(cuda::Variant{"squeeze_excite"}));
  const auto* pixel = cuda::find_tactic<DType::f16>("pixel_conv1x1");
  CHECK_FALSE(pixel->fuses_squeeze(cuda::Variant{"pixel_conv1x1"}));
  // On a GPU that runs thread-block clusters (compute capability 9.0 on), the cluster forms too
  // (algo 2, math 8 and 16) where the clusters fill the GPU at most four times over, and the
  // heuristic claims math 8 where they fill it at most twice (session 28): all sixteen gates at
  // batch 1. (These checks expected no cluster form until session 30, when they were first run
  // with such a GPU's answers.)
  const bool clusters = cuda::device_arch() >= 90;
  for (int batch : {1, 256}) {
    const auto offered = t->candidates(se, batch, std::size_t{1} << 30, {});
    std::vector<cuda::Variant> expected{cuda::Variant{"squeeze_excite"}};
    if (clusters && batch == 1) {
      expected.push_back(cuda::Variant{"squeeze_excite", 2, 8, 0});
      expected.push_back(cuda::Variant{"squeeze_excite", 2, 16, 0});
    }
    CHECK(offered == expected);
    CHECK(pixel->heuristic(se, batch, std::size_t{1} << 30, {}).has_value());
  }
  const auto claimed = [&](std::string_view pool, int batch) {
    const auto it = std::find_if(eb0.ops.begin(), eb0.ops.end(), [&](const cuda::OpDesc& o) {
      return o.squeeze && o.squeeze->gap->label == pool;
    });
    REQUIRE(it != eb0.ops.end());
    const auto c = t->heuristic(*it, batch, std::size_t{1} << 30, {});
    if (c) {
      CHECK(c->rank < pixel->heuristic(*it, batch, std::size_t{1} << 30, {})->rank);
    }
    return c.has_value();
  };
  // (without clusters) 112x112 at batch 1: 264 blocks; 56x56 at batch 2: 132 blocks
  CHECK(claimed("features.1.0.block.1.avgpool", 1) == clusters);
  CHECK(claimed("features.2.0.block.2.avgpool", 2) == clusters);
  CHECK(claimed("features.1.0.block.1.avgpool", 3));
  CHECK(claimed("features.2.0.block.2.avgpool", 256));
  CHECK(claimed("features.3.0.block.2.avgpool", 1));  // 28x28
  CHECK(claimed("features.5.0.block.2.avgpool", 1));  // 480 x 20
  CHECK_FALSE(claimed("features.5.1.block.2.avgpool", 256));  // 672 x 28
  CHECK(claimed("features.6.1.block.2.avgpool", 1) == clusters);  // 1,152 x 48
  if (clusters) {
    const auto it = std::find_if(eb0.ops.begin(), eb0.ops.end(), [](const cuda::OpDesc& o) {
      return o.squeeze && o.squeeze->gap->label == "features.6.1.block.2.avgpool";
    });
    REQUIRE(it != eb0.ops.end());
    CHECK(t->heuristic(*it, 1, std::size_t{1} << 30, {})->variant == cuda::Variant{"squeeze_excite", 2, 8, 0});
  }
  CHECK(t->candidates(cuda::squeeze_main(se), 1, std::size_t{1} << 30, {}).empty());
  CHECK(cuda::op_as_prepared(*pixel, se, cuda::Variant{"pixel_conv1x1"}).label ==
        cuda::squeeze_main(se).label);
  CHECK(cuda::op_as_prepared(*t, se, cuda::Variant{"squeeze_excite"}).label == se.label);
  // forms it does not have: an error naming the layer, before any GPU work (math: blocks an
  // image each pooling the whole map, 1 to squeeze_excite_most_row_blocks)
  for (const cuda::Variant& v : {cuda::Variant{"squeeze_excite", 2}, cuda::Variant{"squeeze_excite", 1, -1},
                                 cuda::Variant{"squeeze_excite", 0, cuda::tactics::squeeze_excite_most_row_blocks + 1},
                                 cuda::Variant{"squeeze_excite", 0, 0, 1}, cuda::Variant{"squeeze_excite", 2, 4},
                                 cuda::Variant{"squeeze_excite", 2, 8, 1}, cuda::Variant{"squeeze_excite", 3, 8}}) {
    INFO(cuda::to_string(v));
    try {
      (void)t->prepare(se, v, 1, cuda::OpWeights{}, cuda::OpIo{}, {});
      FAIL("squeeze_excite accepted a form it does not have");
    } catch (const strata::Error& e) {
      CHECK(std::string(e.what()).find(se.label) != std::string::npos);
      CHECK(std::string(e.what()).find(cuda::to_string(v)) != std::string::npos);
    }
  }
  // Its tuning key is its own (the pool's map and fc1 with it).
  const std::string key = cuda::tuning_key(se, 1, DType::f16, "gpu");
  CHECK(key != cuda::tuning_key(cuda::squeeze_main(se), 1, DType::f16, "gpu"));
  CHECK(key.find(",squeeze112x112:8") != std::string::npos);
  // EngineOptions::force naming the pool, fc1 or fc2 as declared: an error naming the joined op.
  for (const std::string& old : {std::string("features.1.0.block.1.avgpool"),
                                 std::string("features.1.0.block.1.fc1+activation"),
                                 std::string("features.1.0.block.1.fc2+scale_activation")}) {
    INFO(old);
    try {
      (void)cuda::forced_variants<DType::f16>(eb0, {{old, cuda::Variant{"pixel_conv1x1"}}});
      FAIL("forced a folded layer by its own label");
    } catch (const strata::Error& e) {
      CHECK(std::string(e.what()).find("'" + se.label + "' (fold_squeeze_excite)") != std::string::npos);
    }
  }
  const auto f = cuda::forced_variants<DType::f16>(eb0, {{se.label, cuda::Variant{"squeeze_excite"}}});
  CHECK(std::count(f.begin(), f.end(), std::optional<cuda::Variant>{cuda::Variant{"squeeze_excite"}}) == 1);
  // Refusals: the pooled vector read by another op too (the projection after the gate's
  // multiply given it as a residual); f32 (NCHW) and tf32 keep the three apart.
  cuda::NetDesc shared = before;
  const auto projection = std::find_if(shared.ops.begin(), shared.ops.end(), [&](const cuda::OpDesc& o) {
    return o.kind == OpKind::conv && o.index == se.index + 2;
  });
  REQUIRE(projection != shared.ops.end());
  REQUIRE(shared.op_at(se.index + 1).kind == OpKind::multiply);
  REQUIRE(projection->z_id < 0);
  projection->z_id = pool_before.out_id;
  cuda::fold_for_per_op_path(shared);
  CHECK(std::count_if(shared.ops.begin(), shared.ops.end(), squeezed) == 15);
  for (cuda::NetDesc n : {cuda::NetStorage<models::EfficientNetB0, DType::f32>::describe(),
                          cuda::NetStorage<models::EfficientNetB0, DType::tf32>::describe()}) {
    cuda::fold_for_per_op_path(n);
    CHECK(std::none_of(n.ops.begin(), n.ops.end(), squeezed));
  }
  // The split of each image's pool: two blocks an SM in all, at least 8 pixels a block.
  CHECK(cuda::kernels::squeeze_excite_splits(1, 112 * 112, 132) == 264);
  CHECK(cuda::kernels::squeeze_excite_splits(1, 7 * 7, 132) == 6);
  CHECK(cuda::kernels::squeeze_excite_splits(3, 25, 132) == 3);
  CHECK(cuda::kernels::squeeze_excite_splits(256, 112 * 112, 132) == 2);
  CHECK(cuda::kernels::squeeze_excite_splits(264, 112 * 112, 132) == 1);
  CHECK(cuda::kernels::squeeze_excite_splits(2, 4, 132) == 1);
  // algo 1's: at most 64 (the last block adds them 16 at once)
  CHECK(cuda::kernels::squeeze_excite_splits(1, 112 * 112, 132, cuda::tactics::squeeze_excite_most_splits) == 64);
  CHECK(cuda::kernels::squeeze_excite_splits(1, 7 * 7, 132, cuda::tactics::squeeze_excite_most_splits) == 6);
  // (algo 1 not offered to measured tuning until it has run on a GPU: candidates() above)
  // The cluster form (algo 2) asks its shares of both products' weights into L1 before a
  // programmatic dependent launch's wait, and reads the map only after it.
  {
    const std::string lib = cuda::kernels::kernel_source();
    const std::size_t at = lib.find("squeeze_excite_cluster_kernel(\n");
    REQUIRE(at != std::string::npos);
    const std::string body = lib.substr(at, lib.find("\n}\n", at) - at);
    const std::size_t wait = check_early_work(body, "prefetch_l1(w1", "pool_share(x");
    CHECK(body.find("prefetch_l1(w2") < wait);
    CHECK(body.find("return;") == std::string::npos);
  }
}

// depthwise_band algo 1 (GPU-tested in session 27, forceable only): the chunk's filters staged
// through shared memory, several images a block; the plain form's text unchanged.
TEST_CASE("depthwise_band algo 1: filters staged, images a block: fits, refusals, the source compiles") {
  namespace band = cuda::tactics::band;
  const cuda::NetDesc eb0 = cuda::NetStorage<models::EfficientNetB0, DType::f16>::describe();
  const cuda::NetDesc mv2 = cuda::NetStorage<models::MobileNetV2, DType::f16>::describe();
  int fits = 0;
  const cuda::OpDesc* small5 = nullptr;  // a 5x5 on a 7x7 map (1,152 channels)
  for (const cuda::OpDesc& op : eb0.ops) {
    if (band::fits(op)) {
      fits += band::fits_staged_filters(op) ? 1 : 0;
      if (op.conv.kh == 5 && op.conv.h == 7 && small5 == nullptr) {
        small5 = &op;
      }
    }
  }
  CHECK(fits == 16);  // every one of EfficientNet-B0's depthwise convs
  // Any op may be asked (the GPU test asks every op of a network): no other op fits, and asking
  // plans nothing for it (session 27's SIGFPE: a band planned for an op of no width).
  int asked = 0;
  for (const cuda::NetDesc& n : {eb0, mv2}) {
    for (const cuda::OpDesc& op : n.ops) {
      asked += band::fits_staged_filters(op) ? 1 : 0;
    }
  }
  CHECK(asked == 16 + 17);
  REQUIRE(small5 != nullptr);
  const band::Plan p = band::plan(*small5);
  CHECK(band::filter_bytes(*small5, p) == 2 * p.pb * 25 * 4);
  const std::string plain = band::source(*small5);
  const std::string staged = band::source(*small5, 1, 4);
  CHECK(plain.find("wsf") == std::string::npos);
  CHECK(staged.find("constexpr int IMGS = 4;") != std::string::npos);
  CHECK(staged.find("(filters staged, 4 images a block)") != std::string::npos);
  const auto compiled = cuda::rtc::compile(staged, "band_staged_test",
                                           {"strata_rtc::depthwise_band<strata_rtc::f16>"}, 90, "");
  CHECK(compiled.cubin.size() > 0);
  const cuda::OpDesc* three = nullptr;
  for (const cuda::OpDesc& op : mv2.ops) {
    if (band::fits(op) && op.conv.kh == 3 && op.conv.sh == 2) {
      three = &op;
      break;
    }
  }
  REQUIRE(three != nullptr);
  (void)cuda::rtc::compile(band::source(*three, 1, 8), "band_staged_test3",
                           {"strata_rtc::depthwise_band<strata_rtc::bf16>"}, 90, "");
  // Forms it does not have: errors naming the layer, before any GPU work.
  const auto* t = cuda::find_tactic<DType::f16>("depthwise_band");
  for (const cuda::Variant& v : {cuda::Variant{"depthwise_band", 1, 3}, cuda::Variant{"depthwise_band", 3},
                                 cuda::Variant{"depthwise_band", 2, 3}, cuda::Variant{"depthwise_band", 0, 4}}) {
    INFO(cuda::to_string(v));
    CHECK(t->kernel_sources(*small5, v, {}).empty());
  }
  CHECK_FALSE(t->kernel_sources(*small5, cuda::Variant{"depthwise_band", 1, 4}, {}).empty());
  // (offered to measured tuning: algo 0, and at batch 256 algo 2 with 2 and 4 images a block once
  // GPU-tested)
  const auto offered = t->candidates(*small5, 256, 0, {});
  CHECK(offered.size() == (band::pipelined_gpu_tested ? 3U : 1U));
  CHECK(offered.front() == cuda::Variant{"depthwise_band"});
}

// mma_conv1x1 (session 65): the heuristic gives it EfficientNet-B0's expansions at batch 256 — the
// ten that run before a depthwise conv (OpDesc::expand: depthwise_band runs them on the
// heuristic's variant) and fit its 100 KiB (192 input slots do not: 6.1-7.0), and features.2.0's,
// which expand_depthwise computes itself — and none at batch
// 8 (256 pixels x 8 images of the 14x14 maps: under 32 K pixels; and under min_batch); not
// ResNet-50's fourfold 1x1 convs (layer1.0.downsample, 64 -> 256 at 56x56). Its sources for a
// reduction of 24 slots (a k-step of 8 after one of 16) and of 112 (chunks of 112 of 672) compile.
TEST_CASE("mma_conv1x1: which expansions the heuristic gives it, and its sources compile") {
  const auto dir = fresh_dir("strata_rtc_test_pointwise");
  namespace pw = cuda::tactics::pointwise;
  const auto* t = cuda::find_tactic<DType::f16>("mma_conv1x1");
  const auto* lt1x1 = cuda::find_tactic<DType::f16>("lt_conv1x1");
  REQUIRE(t != nullptr);
  REQUIRE(lt1x1 != nullptr);
  const cuda::Libraries none{};
  const cuda::NetDesc n = cuda::per_op_ops<models::EfficientNetB0, DType::f16>(cuda::EngineOptions{.max_batch = 256});
  std::vector<std::string> claimed;
  int compiled = 0;
  for (const cuda::OpDesc& op : n.ops) {
    if (!op.expand || op.expand->conv.kh != 1) {
      continue;
    }
    const cuda::OpDesc& e = *op.expand;
    INFO(e.label);
    // (ahead of cuBLASLt's claim where it claims: a lower rank wins)
    const auto claim = t->heuristic(e, 256, std::size_t{1} << 30, none);
    CHECK(claim.has_value() == (pw::claimed(e, 256) || pw::staged_claimed(e, 256)));
    if (claim && claim->variant.algo == 0) {
      const auto lt = lt1x1->heuristic(e, 256, std::size_t{1} << 30, none);
      REQUIRE(lt.has_value());
      CHECK(cuda::claim_rank(*t, e, *claim) < cuda::claim_rank(*lt1x1, e, *lt));
      claimed.push_back(e.label.substr(0, e.label.find(".block")));
    }
    CHECK_FALSE(t->heuristic(e, 8, std::size_t{1} << 30, none).has_value());
    if (pw::fits(e) && ((e.conv.cp == 24 && compiled == 0) || (e.conv.cp == 112 && compiled == 1))) {
      const auto k = t->kernel_sources(e, cuda::Variant{"mma_conv1x1"}, cuda::OpIo{});
      REQUIRE(k.size() == 1);
      CHECK(k[0].name == "strata_rtc::mma_conv1x1<strata_rtc::f16>");
      CHECK(k[0].source.find("constexpr int NB = " + std::to_string(pw::chunk(e.conv.kp)) + ";") != std::string::npos);
      CHECK((k[0].source.find("constexpr int K = 24;") != std::string::npos) == (e.conv.cp == 24));
      CHECK(rtc::compile(k[0].source, "pointwise_" + std::to_string(e.conv.cp), {k[0].name}, 90, dir).cubin.size() > 1000);
      ++compiled;
    }
  }
  CHECK(compiled == 2);
  CHECK(claimed == std::vector<std::string>{"features.2.0", "features.2.1", "features.3.0", "features.3.1", "features.4.0",
                                            "features.4.1", "features.4.2", "features.5.0", "features.5.1",
                                            "features.5.2", "features.6.0"});
  CHECK(pw::chunk(144) == 144);
  CHECK(pw::chunk(240) == 120);
  CHECK(pw::chunk(672) == 112);
  cuda::NetDesc r50 = cuda::NetStorage<models::ResNet50, DType::f16>::describe();
  cuda::fold_for_per_op_path(r50);
  int fits = 0;
  for (const cuda::OpDesc& op : r50.ops) {
    fits += pw::fits(op) ? 1 : 0;
    CHECK_FALSE(pw::claimed(op, 256));
  }
  CHECK(fits > 0);  // (its stride-1 1x1 convs without a residual: offered to measured tuning)
}

// mma_conv1x1 algo 1 (session 66): the reduction staged in k-steps, a folded channel gate applied
// to the staged input and a residual added — EfficientNet-B0's sixteen gated projections (the
// channel-gate kernel or the per-image weights before cuBLASLt otherwise). It fits all sixteen
// with 128 pixel rows a block and the twelve whose chunks are multiples of 16 with 64; it folds
// the gate (Tactic::fuses_gate); GPU-tested (pointwise::staged_gpu_tested), it is offered on all
// and claimed at batch 256 on the eight it won (3.0-5.2). Its sources compile for features.6.1 (1152 -> 192 in chunks of
// 96, a tile's 128 rows over up to 4 images of 7x7, a residual), features.7.0 in bf16 (chunks of
// 80: an odd count of n-tiles a warp) and ResNet-50's layer1.0.conv3 (no gate, a residual, ReLU).
TEST_CASE("mma_conv1x1 algo 1: the gated projections it fits, and its sources compile") {
  const auto dir = fresh_dir("strata_rtc_test_pointwise_staged");
  namespace pw = cuda::tactics::pointwise;
  const auto* t = cuda::find_tactic<DType::f16>("mma_conv1x1");
  const auto* tb = cuda::find_tactic<DType::bf16>("mma_conv1x1");
  REQUIRE(t != nullptr);
  REQUIRE(tb != nullptr);
  CHECK(t->fuses_gate(cuda::Variant{"mma_conv1x1", 1, 0}));
  CHECK(t->fuses_gate(cuda::Variant{"mma_conv1x1", 1, 1}));
  CHECK_FALSE(t->fuses_gate(cuda::Variant{"mma_conv1x1"}));
  CHECK(pw::staged_chunk(112) == 112);
  CHECK(pw::staged_chunk(192) == 96);
  CHECK(pw::staged_chunk(320) == 80);
  CHECK(pw::staged_chunk(1280) == 128);
  CHECK(pw::staged_chunk(200) == 40);
  CHECK(pw::images_spanned(128, 49) == 4);
  CHECK(pw::images_spanned(64, 49) == 3);
  CHECK(pw::images_spanned(128, 196) == 2);
  CHECK(pw::images_spanned(128, 128) == 2);
  CHECK(pw::images_spanned(128, 129) == 2);
  CHECK(pw::images_spanned(128, 1) == 128);
  const cuda::Libraries none{};
  const cuda::NetDesc n = cuda::per_op_ops<models::EfficientNetB0, DType::f16>(cuda::EngineOptions{.max_batch = 256});
  int gated = 0;
  std::vector<std::string> staged_claims;
  int fit128 = 0;
  int fit64 = 0;
  int compiled = 0;
  for (const cuda::OpDesc& op : n.ops) {
    if (!op.gate) {
      continue;
    }
    INFO(op.label);
    ++gated;
    fit128 += pw::staged_fits(op, 128) ? 1 : 0;
    fit64 += pw::staged_fits(op, 64) ? 1 : 0;
    CHECK(pw::staged_fits(op, 64) == (pw::staged_chunk(op.conv.kp) % 16 == 0));
    CHECK(t->applicable(op));
    CHECK_FALSE(pw::fits(op));  // (algo 0 runs no gate)
    const auto claim = t->heuristic(op, 256, std::size_t{1} << 30, none);
    CHECK(claim.has_value() == pw::staged_claimed(op, 256));
    if (claim) {
      CHECK(claim->variant == cuda::Variant{"mma_conv1x1", 1, 0});
      staged_claims.push_back(op.label.substr(0, op.label.find(".block")));
    }
    CHECK_FALSE(pw::staged_claimed(op, 16));
    // (at 64 images the 28x28 maps' 50 K pixels only: 14x14 is 12.5 K)
    CHECK(pw::staged_claimed(op, 64) == (pw::staged_claimed(op, 256) && op.conv.h == 28));
    const auto offered = t->candidates(op, 256, std::size_t{1} << 30, none);
    CHECK((std::find(offered.begin(), offered.end(), cuda::Variant{"mma_conv1x1", 1, 0}) != offered.end()) ==
          pw::staged_gpu_tested);
    CHECK(std::find(offered.begin(), offered.end(), cuda::Variant{"mma_conv1x1"}) == offered.end());
    if (!pw::staged_fits(op, 64)) {
      CHECK(t->kernel_sources(op, cuda::Variant{"mma_conv1x1", 1, 1}, cuda::OpIo{}).empty());
    }
    const std::string block = op.label.substr(0, op.label.find(".block"));
    if (block == "features.6.1" || block == "features.7.0") {
      const bool bf = block == "features.7.0";
      const auto k = (bf ? tb->kernel_sources(op, cuda::Variant{"mma_conv1x1", 1, 0}, cuda::OpIo{})
                         : t->kernel_sources(op, cuda::Variant{"mma_conv1x1", 1, 0}, cuda::OpIo{}));
      REQUIRE(k.size() == 1);
      CHECK(k[0].name == (bf ? "strata_rtc::mma_conv1x1<strata_rtc::bf16>" : "strata_rtc::mma_conv1x1<strata_rtc::f16>"));
      CHECK(k[0].source.find("constexpr int NB = " + std::string(bf ? "80" : "96") + ";") != std::string::npos);
      CHECK(k[0].source.find("constexpr int IMGS = 4;") != std::string::npos);
      CHECK(k[0].source.find("constexpr bool GATED = true;") != std::string::npos);
      CHECK(k[0].source.find(std::string("constexpr bool RESIDUAL = ") + (bf ? "false" : "true")) != std::string::npos);
      CHECK(k[0].source.find("constexpr int KS = 36;") != std::string::npos);
      CHECK(rtc::compile(k[0].source, "pointwise_staged_" + block, {k[0].name}, 90, dir).cubin.size() > 1000);
      ++compiled;
    }
  }
  CHECK(gated == 16);
  // (session 66's measure: not 1.0-2.1, 16 and 24 output channels; not the 7x7 maps' 12.5 K pixels)
  CHECK(staged_claims == (pw::staged_gpu_tested
                              ? std::vector<std::string>{"features.3.0", "features.3.1", "features.4.0", "features.4.1",
                                                         "features.4.2", "features.5.0", "features.5.1", "features.5.2"}
                              : std::vector<std::string>{}));
  CHECK(fit128 == 16);
  CHECK(fit64 == 12);
  CHECK(compiled == 2);
  // (a forced variant it does not have: an error naming the op)
  for (const cuda::OpDesc& op : n.ops) {
    if (op.gate) {
      CHECK_THROWS_WITH(static_cast<void>(t->prepare(op, cuda::Variant{"mma_conv1x1", 1, 2}, 1, {}, {}, none)),
                        doctest::Contains(op.label.c_str()));
      break;
    }
  }
  // ResNet-50's layer1.0.conv3: 64 -> 256 and the residual, ReLU after the add; no gate.
  const cuda::NetDesc r50 = cuda::per_op_ops<models::ResNet50, DType::f16>(cuda::EngineOptions{.max_batch = 256});
  const auto conv3 = std::find_if(r50.ops.begin(), r50.ops.end(), [](const cuda::OpDesc& op) {
    return op.label.rfind("layer1.0.conv3", 0) == 0;
  });
  REQUIRE(conv3 != r50.ops.end());
  INFO(conv3->label);
  REQUIRE(conv3->has_residual);
  REQUIRE(pw::staged_fits(*conv3));
  CHECK_FALSE(pw::fits(*conv3));
  const auto k = t->kernel_sources(*conv3, cuda::Variant{"mma_conv1x1", 1, 0}, cuda::OpIo{});
  REQUIRE(k.size() == 1);
  CHECK(k[0].source.find("constexpr bool GATED = false;") != std::string::npos);
  CHECK(k[0].source.find("constexpr int NB = 128;") != std::string::npos);
  CHECK(rtc::compile(k[0].source, "pointwise_staged_r50", {k[0].name}, 90, dir).cubin.size() > 1000);
}

// depthwise_band algos 3 and 4 (session 66): algo 0's and algo 2's kernels on the whole-map plan
// (band::whole_plan) — on EfficientNet-B0 the five 14x14 band convs (features.4.1-5.2: 8 channel
// pairs a block, 14x16 outputs, against algo 0's 16 pairs in two bands of 8 rows), on MobileNetV2
// the seven 14x14 ones (against 32 pairs in four 8x8 tiles); not the 7x7 maps (one tile already)
// nor the larger ones (no pb leaves the map within 256 threads). Neither claimed nor offered until
// GPU-tested; the sources of algo 3 fuse 3 (its gate kernel adding one tile an image) and algo 4
// compile; a variant they do not have names the op.
TEST_CASE("depthwise_band algos 3 and 4: the whole map a block, for the 14x14 maps") {
  const auto dir = fresh_dir("strata_rtc_test_band_whole");
  namespace band = cuda::tactics::band;
  const auto* t = cuda::find_tactic<DType::f16>("depthwise_band");
  REQUIRE(t != nullptr);
  const cuda::Libraries none{};
  const cuda::NetDesc eb0 = cuda::per_op_ops<models::EfficientNetB0, DType::f16>(cuda::EngineOptions{.max_batch = 256});
  std::vector<std::string> whole;
  int compiled = 0;
  for (const cuda::OpDesc& op : eb0.ops) {
    if (!band::fits(op)) {
      continue;
    }
    INFO(op.label);
    const band::Plan w = band::plan(op, true);
    const band::Plan p = band::plan(op);
    if (band::whole_fits(op)) {
      whole.push_back(op.label.substr(0, op.label.find(".block")));
      CHECK(w.pb == 8);
      CHECK(w.th == 14);
      CHECK(w.tw == 16);
      CHECK(w.threads() == 224);
      CHECK(w.tiles_y * w.tiles_x == 1);
      CHECK(p.tiles_y * p.tiles_x == 2);
      CHECK(w.rows_in == 14 - 1 + op.conv.kh);  // (every input row staged once, with the padding)
      CHECK(band::fuses_tail(op, true));
      const auto offered = t->candidates(op, 256, std::size_t{1} << 30, none);
      CHECK((std::find(offered.begin(), offered.end(), cuda::Variant{"depthwise_band", 3, 0, 3}) != offered.end()) ==
            band::whole_gpu_tested);
      CHECK((t->heuristic(op, 256, std::size_t{1} << 30, none)->variant.algo >= 3) == band::whole_gpu_tested);
      if (compiled == 0 && op.conv.kh == 5) {  // algo 3 fuse 3: the conv and the gate kernel
        const auto k = t->kernel_sources(op, cuda::Variant{"depthwise_band", 3, 0, 3}, cuda::OpIo{});
        REQUIRE(k.size() == 2);
        CHECK(k[0].source.find("(the whole map a block)") != std::string::npos);
        CHECK(k[0].source.find("constexpr int TILES_Y = 1;") != std::string::npos);
        CHECK(k[0].source.find("constexpr int PB = 8;") != std::string::npos);
        CHECK(k[1].source.find("constexpr int TILES = 1;") != std::string::npos);
        CHECK(t->kernel_sources(op, cuda::Variant{"depthwise_band", 0, 0, 3}, cuda::OpIo{})[1].source.find(
                  "constexpr int TILES = 2;") != std::string::npos);
        for (std::size_t i = 0; i < k.size(); ++i) {
          CHECK(rtc::compile(k[i].source, "band_whole_" + std::to_string(i), {k[i].name}, 90, dir).cubin.size() > 1000);
        }
        const auto k4 = t->kernel_sources(op, cuda::Variant{"depthwise_band", 4, 4, 3}, cuda::OpIo{});
        REQUIRE(k4.size() == 2);
        CHECK(k4[0].source.find("constexpr int IMGS = 4;") != std::string::npos);
        CHECK(rtc::compile(k4[0].source, "band_whole_pipelined", {k4[0].name}, 90, dir).cubin.size() > 1000);
        CHECK_THROWS_WITH(static_cast<void>(t->prepare(op, cuda::Variant{"depthwise_band", 3, 2, 3}, 1, {}, {}, none)),
                          doctest::Contains(op.label.c_str()));
        ++compiled;
      }
    } else {
      CHECK(t->kernel_sources(op, cuda::Variant{"depthwise_band", 3}, cuda::OpIo{}).empty());
    }
  }
  CHECK(compiled == 1);
  CHECK(whole == std::vector<std::string>{"features.4.1", "features.4.2", "features.5.0", "features.5.1", "features.5.2"});
  const cuda::NetDesc mv2 = cuda::per_op_ops<models::MobileNetV2, DType::f16>(cuda::EngineOptions{.max_batch = 256});
  int mv2_whole = 0;
  for (const cuda::OpDesc& op : mv2.ops) {
    if (band::fits(op) && band::whole_fits(op)) {
      ++mv2_whole;
      CHECK(op.conv.oh == 14);
      CHECK(band::plan(op).tiles_y * band::plan(op).tiles_x == 4);
    }
  }
  CHECK(mv2_whole == 7);
}
