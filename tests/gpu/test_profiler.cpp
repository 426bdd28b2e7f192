// The per-layer profiler and the memory report on a real engine.
#include <algorithm>
#include <sstream>

#include <strata/cuda/profiler.hpp>
#include <strata/models/resnet.hpp>

#include "gpu_test.hpp"

using namespace strata;

TEST_CASE("per-layer profile of a residual network: every op, named after its fused layers") {
  using Net = decltype(input<16, 16, 16> | models::basic_block<32, 2, true>() | global_avg_pool |
                       flatten | named<"fc">(dense<10>) | softmax);
  auto [engine, memory] = cuda::build_and_measure([] {
    // The per-op path, so that every op has its row (the fused path is one row: below).
    return cuda::Engine<Net, DType::f16>(Weights<Net>::random(3),
                                         cuda::EngineOptions{.max_batch = 8, .fused_max_batch = 0});
  });
  const auto report = cuda::profile_layers(engine, 8, "block", cuda::Ceilings{700.0, 3000.0}, 10);
  std::ostringstream os;
  report.print(os);
  MESSAGE(os.str());
  memory.print(os);
  MESSAGE(os.str());
  int ops_seen = 0;
  double share = 0.0;
  for (const auto& s : report.steps) {
    CHECK(s.us > 0.0);
    share += s.share;
    if (s.kind != "convert") {
      // a row of two ops joined ("dense+softmax": the final softmax folded) counts both
      ops_seen += 1 + static_cast<int>(std::count(s.kind.begin(), s.kind.end(), '+'));
      CHECK(s.bytes > 0);
    }
  }
  CHECK(ops_seen == Net::graph.num_ops);
  CHECK(share == doctest::Approx(1.0).epsilon(1e-6));
  // Labels: the block is stage 0 of an unnamed chain, its layers named as in torchvision.
  CHECK(os.str().find("0.conv2+bn2+add+relu") != std::string::npos);
  CHECK(os.str().find("0.downsample.conv0+bn1") != std::string::npos);
  CHECK(os.str().find("global_avg_pool1") != std::string::npos);
  CHECK(os.str().find("fc+softmax4") != std::string::npos);  // folded into the dense layer
  CHECK(os.str().find("dense+softmax") != std::string::npos);
  // The conv ops carry the cost model's FLOPs, scaled by the batch.
  bool conv1_seen = false;
  for (const auto& s : report.steps) {
    if (s.label == "0.conv1+bn1+relu") {
      conv1_seen = true;
      CHECK(s.flops == Net::graph.ops[1].flops * 8);
    }
  }
  CHECK(conv1_seen);
  CHECK(memory.arena >= memory.planned_arena);
  CHECK(memory.weights > 0);
  CHECK(memory.device_taken >= memory.arena + memory.weights);
}

TEST_CASE("per-layer profile of the fused-network path: one row with the whole network's cost") {
  using Net = decltype(input<16, 16, 16> | models::basic_block<32, 2, true>() | global_avg_pool |
                       flatten | named<"fc">(dense<10>) | softmax);
  cuda::Engine<Net, DType::f16> engine(Weights<Net>::random(3), {.max_batch = 4, .fused_max_batch = 4});
  REQUIRE(engine.path(4) == "fused network");
  const auto report = cuda::profile_layers(engine, 4, "block", cuda::Ceilings{700.0, 3000.0}, 10);
  std::ostringstream os;
  report.print(os);
  MESSAGE(os.str());
  REQUIRE(report.steps.size() == 1);
  const auto& s = report.steps[0];
  CHECK(s.label == "network");
  CHECK(s.kind == "fused");
  CHECK(s.us > 0.0);
  CHECK(s.flops == Net::graph.flops() * 4);
  CHECK(s.bytes > Net::param_count * 2);  // every weight once, in f16
  CHECK(s.roofline > 0.0);
}

// A step that joins ops counts the results between them as unstored, but not one an op after
// the step reads too: a squeeze-excite op joined to the depthwise conv before it (depthwise_band
// fuse 1 at batch 1, on maps of 56x56 and more) leaves the conv's map for the multiply, so the
// step writes it. (Counted as unstored, the step's bytes were its input and weights alone.) And a
// channel gate counts as the gate it is, not as a map.
TEST_CASE("per-layer profile: a joined step's bytes count an intermediate map read after the step") {
  using Net = decltype(input<32, 56, 56> | conv<32, 3, ConvOpts{.padding = 1, .groups = 32}> | batch_norm |
                       silu | multiply(global_avg_pool | conv<8, 1> | silu | conv<32, 1> | sigmoid) |
                       conv<16, 1> | batch_norm);
  cuda::Engine<Net, DType::f16> engine(Weights<Net>::random(5), {.max_batch = 1, .fused_max_batch = 0});
  const auto report = cuda::profile_layers(engine, 1, "se", cuda::Ceilings{700.0, 3000.0}, 10);
  std::ostringstream os;
  report.print(os);
  MESSAGE(os.str());
  const auto joined = std::find_if(report.steps.begin(), report.steps.end(), [](const auto& s) {
    return s.kind.starts_with("conv+global_avg_pool");
  });
  REQUIRE_MESSAGE(joined != report.steps.end(), "the squeeze-excite op is not joined to the depthwise conv");
  const std::int64_t map = std::int64_t{32} * 56 * 56 * 2;  // f16, 32 channels a pixel (no padding)
  // the conv's input and its map once each, plus the weights of the conv and the gate's 1x1s
  CHECK(joined->bytes >= 2 * map);
  CHECK(joined->bytes <= 2 * map + Net::param_count * 2 + 1024);
  // The multiply and the 1x1 conv after it: the map, the gate (32 values, not a map: session 66),
  // the conv's output (16 channels) and weights.
  const auto gated = std::find_if(report.steps.begin(), report.steps.end(), [](const auto& s) {
    return s.kind == "multiply+conv";
  });
  REQUIRE(gated != report.steps.end());
  CHECK(gated->bytes >= map + map / 2);
  CHECK(gated->bytes <= map + map / 2 + Net::param_count * 2 + 1024);
}
