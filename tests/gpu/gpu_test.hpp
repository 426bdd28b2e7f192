#pragma once
// Shared helpers of the GPU tests: random inputs, the CPU reference, relative error, and the
// check that runs one network on the GPU in one precision at several batch sizes.
#include <doctest/doctest.h>

#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "strata/cpu/cpu_engine.hpp"
#include "strata/cuda/engine.hpp"
#include "strata/strata.hpp"

namespace strata_test {

using strata::DType;

/// A 3-channel net whose input two generated first convs read (not space-to-depth): a 4x4
/// stride-2 conv with padding 2 and its 1x1 stride-2 shortcut; a ceil-mode max pool after the add.
/// (test_layers: the generated kernel's strides; test_io: both convs read the caller's input.)
namespace nets {
using namespace strata;
inline constexpr auto two_first_convs = input<3, 15, 13>
    | residual<relu>(conv<12, 4, ConvOpts{.stride = 2, .padding = 2}> | batch_norm | relu
                         | conv<12, 3, ConvOpts{.padding = 1}> | batch_norm,
                     conv<12, 1, ConvOpts{.stride = 2}>)
    | max_pool<2, PoolOpts{.ceil_mode = true}> | flatten | dense<5>;
using TwoFirstConvs = std::remove_cv_t<decltype(two_first_convs)>;
}  // namespace nets

/// `batches`, or only those up to 3 when STRATA_GPU_TEST_QUICK=1 (scripts/gpu_tests.sh sets it
/// for racecheck, under which every shared-memory access is checked and a batch of 20 through
/// the fused-network kernel takes minutes).
inline bool quick_run() {
  const char* q = std::getenv("STRATA_GPU_TEST_QUICK");
  return q != nullptr && std::string(q) == "1";
}
inline std::vector<int> test_batches(std::vector<int> batches) {
  if (quick_run()) {
    std::erase_if(batches, [](int b) { return b > 3; });
  }
  return batches;
}

/// Options of an engine for batches up to `max_batch` whose ops take their variants from the
/// tuning-cache file `cache` (measured tuning times any op the file does not name).
inline strata::cuda::EngineOptions from_cache(int max_batch, const std::filesystem::path& cache) {
  strata::cuda::EngineOptions opt;
  opt.max_batch = max_batch;
  opt.tuning = strata::cuda::Tuning::measured;
  opt.tuning_cache = cache;
  // (the cache's keys are those of fold_for_per_op_path's ops: inverted-residual blocks not
  // joined at small batches)
  opt.block_clusters = false;
  return opt;
}

inline std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) {
    x = dist(rng);
  }
  return v;
}

/// strata::relative_error of `a` against the first a.size() values of `ref`, with NaN mapped to
/// infinity so that std::max over several runs cannot drop it.
/// `v` rounded to IEEE half, as __half (an f16 input's values) and as the floats they hold (the
/// CPU reference's input for them).
inline std::pair<std::vector<__half>, std::vector<float>> to_half(const std::vector<float>& v) {
  std::vector<__half> h(v.size());
  std::vector<float> back(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    __half_raw r;
    r.x = strata::float_to_half(v[i]);
    h[i] = __half(r);
    back[i] = strata::half_to_float(r.x);
  }
  return {h, back};
}

inline double rel_error(std::span<const float> a, std::span<const float> ref, std::size_t n) {
  const double e = strata::relative_error(a.first(n), ref.first(n));
  return std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
}

/// f32 1e-4; f16, bf16 and tf32 (10-bit mantissa inputs to every conv and matmul) 1e-2.
[[nodiscard]] constexpr double tolerance(DType p) { return p == DType::f32 ? 1e-4 : 1e-2; }

/// The CPU reference's output for `batch` images of input `in`.
template <class Net>
std::vector<float> cpu_reference(const strata::Weights<Net>& w, const std::vector<float>& in,
                                 int batch) {
  using N = std::remove_cvref_t<Net>;
  strata::CpuEngine<Net> cpu(w, batch);
  std::vector<float> out(static_cast<std::size_t>(batch * N::output_spec.shape.numel()));
  cpu.forward(in, out, batch);
  return out;
}

/// Runs engine `e` at each batch size in `batches` (outputs poisoned with NaN first) and
/// compares with `ref` (the CPU's output for the first images of `in`): relative error below
/// `tol`, else tolerance(P). `what` names the run in the messages.
template <class Net, DType P>
void check_batches(strata::cuda::Engine<Net, P>& e, const std::vector<float>& in,
                   const std::vector<float>& ref, const std::vector<int>& batches,
                   const std::string& what, double tol = -1.0) {
  using N = std::remove_cvref_t<Net>;
  const std::size_t out_n = static_cast<std::size_t>(N::output_spec.shape.numel());
  for (const int b : batches) {
    std::vector<float> out(static_cast<std::size_t>(b) * out_n,
                           std::numeric_limits<float>::quiet_NaN());
    e.infer(in, out, b);
    const double err = rel_error(out, ref, out.size());
    INFO(what << " " << strata::dtype_name(P) << " batch " << b << " rel. error " << err);
    MESSAGE(what << " " << strata::dtype_name(P) << " batch " << b << ": rel. error " << err);
    CHECK(err < (tol > 0.0 ? tol : tolerance(P)));
  }
}

/// Runs `Net` in precision P at each batch size in `batches` (outputs poisoned with NaN first)
/// and compares with `ref` (the CPU's output for the first max_batch images of `in`).
template <class Net, DType P>
void check_engine(const strata::Weights<Net>& w, const std::vector<float>& in,
                  const std::vector<float>& ref, int max_batch, const std::vector<int>& batches,
                  const char* name, double tol = -1.0) {
  strata::cuda::EngineOptions opt;
  opt.max_batch = max_batch;
  opt.capture_batches = {1};
  opt.fused_max_batch = 0;  // the per-op path at every batch (the fused kernel is checked below)
  strata::cuda::Engine<Net, P> gpu(w, opt);
  check_batches(gpu, in, ref, batches, name, tol);
  // The same network through the fused-network kernel, where it fits (batches 1 and 3).
  if constexpr (strata::cuda::NetStorage<Net, P>::fused_fit().fits) {
    opt.fused_max_batch = 3;
    strata::cuda::Engine<Net, P> fused(w, opt);
    for (int b : {1, 3}) {
      REQUIRE(fused.path(b) == "fused network");
    }
    check_batches(fused, in, ref, {1, 3}, std::string(name) + " fused", tol);
  }
}

/// check_engine in all four precisions (f32, f16, bf16, tf32), for random weights and inputs (`bf16_tol` > 0 replaces
/// bf16's default tolerance, for networks that compound rounding; say why where it is used).
template <class Net>
void check_all_precisions(int max_batch, std::vector<int> batches, const char* name,
                          std::uint64_t seed = 1, double bf16_tol = -1.0) {
  using N = std::remove_cvref_t<Net>;
  const auto w = strata::Weights<Net>::random(seed);
  const auto in = random_floats(
      static_cast<std::size_t>(max_batch * N::input_spec.shape.numel()), seed + 100);
  const auto ref = cpu_reference<Net>(w, in, max_batch);
  batches = test_batches(std::move(batches));
  check_engine<Net, DType::f32>(w, in, ref, max_batch, batches, name);
  check_engine<Net, DType::f16>(w, in, ref, max_batch, batches, name);
  check_engine<Net, DType::bf16>(w, in, ref, max_batch, batches, name, bf16_tol);
  check_engine<Net, DType::tf32>(w, in, ref, max_batch, batches, name);  // (bound 1e-2)
}

}  // namespace strata_test
