#pragma once
// Shared by the GPU layer tests (test_layers.cpp, test_tiles.cpp): running a network with chosen
// ops forced onto a variant through a tuning cache, and the nets both files force variants on.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gpu_test.hpp"

namespace strata_test {

/// The layer tests' batches (1, 3, 17 and the maximum) and their engines' maximum batch.
inline const std::vector<int> kLayerBatches{1, 3, 17, 20};
inline constexpr int kLayerMax = 20;

namespace nets {
using namespace strata;
// Convs for the tensor-core kernel (tactics/mma_conv.hpp): 24 channel slots (k-steps of 16 that
// straddle two taps), an average pool that counts its padding, a 1x1 conv with a ceil-mode max
// pool (partial windows).
inline constexpr auto mma_layer_net = input<3, 21, 19> | conv<24, 3, ConvOpts{.padding = 1}> | relu
    | conv<16, 3, ConvOpts{.padding = 1}> | gelu | avg_pool<2, PoolOpts{.padding = 1}>
    | conv<8, 1> | max_pool<2, PoolOpts{.ceil_mode = true}> | flatten | dense<5>;
using MmaLayerNet = std::remove_cv_t<decltype(mma_layer_net)>;
}  // namespace nets

namespace forced_detail {
using namespace strata;

/// Runs Net in precision P with every conv+pool op that tactic `v` can run forced onto variant
/// `v` (a tuning-cache file that names it), checks that describe() shows `shows` on each forced
/// op's line (and not `absent`, when given), and compares with the CPU. (Ops not forced are
/// timed: measured tuning may pick the same tactic for them too; under STRATA_GPU_TEST_QUICK the
/// forced ops are named in EngineOptions::force and the others take the heuristic's variants.) `force_if`, when given, picks
/// the conv+pool ops to force instead (for a variant that tuning does not offer).
template <class Net, DType P>
inline void check_forced(const char* name, std::uint64_t seed, const cuda::Variant& v,
                         const char* shows, const char* absent = nullptr,
                         const std::function<bool(const cuda::OpDesc&)>& force_if = {}) {
  // STRATA_FORCED_ONLY=TEXT[,TEXT...] runs only the checks whose name contains one of the texts
  // (each CPU reference of a large network takes seconds: a device run re-checking a few forms),
  // and says so of the rest.
  if (const char* only = std::getenv("STRATA_FORCED_ONLY"); only != nullptr && *only != '\0') {
    const std::string texts = only;
    bool wanted = false;
    for (std::size_t at = 0; at <= texts.size();) {
      const std::size_t end = std::min(texts.find(',', at), texts.size());
      const std::string t = texts.substr(at, end - at);
      wanted = wanted || (!t.empty() && std::string(name).find(t) != std::string::npos);
      at = end + 1;
    }
    if (!wanted) {
      MESSAGE("forced check '" << std::string(name) << "' skipped: STRATA_FORCED_ONLY=" << texts);
      return;
    }
  }
  using N = std::remove_cvref_t<Net>;
  constexpr int kB = 5;
  const auto w = Weights<Net>::random(seed);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(kB * N::input_spec.shape.numel()), seed + 100);
  const auto ref = strata_test::cpu_reference<Net>(w, in, kB);
  const std::filesystem::path cache =
      std::filesystem::temp_directory_path() / ("strata_pooled_direct_" + std::string(name));
  std::filesystem::remove(cache);
  std::vector<std::string> forced;  // the forced ops' labels
  {
    cuda::TuningCache c(cache);
    cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
    cuda::fold_for_per_op_path(net);  // as the engine's per-op path does
    for (const cuda::OpDesc& op : net.ops) {
      const cuda::Tactic<P>* t = cuda::find_tactic<P>(v.tactic);
      const auto offered = op.pool && t->applicable(op) ? t->candidates(op, kB, std::size_t{1} << 30, {})
                                                        : std::vector<cuda::Variant>{};
      if (force_if ? t->applicable(op) && force_if(op)
                   : std::find(offered.begin(), offered.end(), v) != offered.end()) {
        c.put(cuda::tuning_key(op, kB, P, cuda::device_name(0)), v);
        forced.push_back(op.label);
      }
    }
    REQUIRE(!forced.empty());
    c.save();
  }
  cuda::EngineOptions opt = strata_test::from_cache(kB, cache);
  if (strata_test::quick_run()) {
    // The quick run: the same ops forced by name, every other op on the heuristic — measured
    // tuning of a whole DenseNet-121 for each of a case's dozen checks took minutes.
    opt.tuning = cuda::Tuning::heuristic;
    for (const std::string& label : forced) {
      opt.force[label] = v;
    }
  }
  opt.fused_max_batch = 0;  // batch 1 on the forced variants too, not the fused-network kernel
  opt.bottleneck_clusters = false;  // (the ops as forced here: DenseNet's layers not joined)
  opt.block_clusters = false;  // (nor inverted-residual blocks' projections)
  cuda::Engine<Net, P> e(w, opt);
  const std::string runs = e.describe(kB);
  INFO(runs);
  const std::string lines = "\n" + runs;
  for (const std::string& label : forced) {
    const std::size_t at = lines.find("\n" + label + ": ");
    REQUIRE(at != std::string::npos);
    const std::string line = lines.substr(at + 1, lines.find('\n', at + 1) - at - 1);
    INFO(line);
    CHECK(line.find(shows) != std::string::npos);
    if (absent != nullptr) {
      CHECK(line.find(absent) == std::string::npos);
    }
  }
  const std::size_t out_n = static_cast<std::size_t>(N::output_spec.shape.numel());
  for (int b : {1, kB}) {
    std::vector<float> out(static_cast<std::size_t>(b) * out_n,
                           std::numeric_limits<float>::quiet_NaN());
    e.infer(in, out, b);
    const double err = strata_test::rel_error(out, ref, out.size());
    MESSAGE(std::string(name) << " " << dtype_name(P) << " forced " << v.tactic << " fuse "
                              << v.fuse << ", batch " << b << ": rel. error " << err);
    CHECK(err < 1e-2);
  }
  std::filesystem::remove(cache);
}

/// Net's output in precision P at batch `b` from an engine of max batch `max_batch` (heuristic
/// tuning, the per-op path) with every op of its per-op plan that `force_if` picks — `count` of
/// them — forced onto `v`, whose description at `b` shows `shows`. For comparing two variants'
/// outputs to the bit: every other op runs alike.
template <class Net, DType P>
inline std::vector<float> forced_output(const Weights<Net>& w, const std::vector<float>& in,
                                        int max_batch, int b,
                                        const std::function<bool(const cuda::OpDesc&)>& force_if,
                                        std::size_t count, const cuda::Variant& v,
                                        const std::string& shows) {
  using N = std::remove_cvref_t<Net>;
  cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(net);
  cuda::EngineOptions opt;
  opt.max_batch = max_batch;
  opt.tuning = cuda::Tuning::heuristic;
  opt.fused_max_batch = 0;
  opt.bottleneck_clusters = false;  // (the ops as forced here: DenseNet's layers not joined)
  opt.block_clusters = false;  // (nor inverted-residual blocks' projections)
  for (const cuda::OpDesc& op : net.ops) {
    if (force_if(op)) {
      opt.force[op.label] = v;
    }
  }
  REQUIRE(opt.force.size() == count);
  cuda::Engine<Net, P> e(w, opt);
  const std::string d = e.describe(b);
  INFO(d);
  CHECK(d.find(shows) != std::string::npos);
  std::vector<float> out(static_cast<std::size_t>(b) * static_cast<std::size_t>(N::output_spec.shape.numel()),
                         std::numeric_limits<float>::quiet_NaN());
  e.infer(in, out, b);
  return out;
}
}  // namespace forced_detail
using forced_detail::check_forced;
using forced_detail::forced_output;

}  // namespace strata_test
