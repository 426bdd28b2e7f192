// The Engine's contract: batch limits, bad weight files, device-pointer forward, contexts
// sharing weights across threads, and the persistent algorithm cache.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "gpu_test.hpp"
#include "strata/cuda/engine_pool.hpp"
#include "strata/models/mnist_cnn.hpp"

namespace {
using namespace strata;
using Mnist = models::MnistCnn;
constexpr std::size_t kIn = 28 * 28;
constexpr std::size_t kOut = 10;

std::filesystem::path temp_path(const char* name) {
  return std::filesystem::temp_directory_path() / name;
}
}  // namespace

TEST_CASE("a batch above the maximum or below 1 is an error naming both numbers") {
  const auto w = Weights<Mnist>::random(1);
  cuda::Engine<Mnist, DType::f32> gpu(w, {.max_batch = 4});
  std::vector<float> in(5 * kIn, 0.5f);
  std::vector<float> out(5 * kOut);
  try {
    gpu.infer(in, out, 5);
    FAIL("no error for batch 5 > 4");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find('5') != std::string::npos);
    CHECK(m.find('4') != std::string::npos);
  }
  CHECK_THROWS_AS(gpu.infer(in, out, 0), Error);
  CHECK_THROWS_AS(gpu.forward(gpu.input_buffer(), gpu.output_buffer(), 7, gpu.stream()), Error);
  CHECK_THROWS_AS((cuda::Engine<Mnist, DType::f16>(w, {.max_batch = 0})), Error);
}

TEST_CASE("a bad weights file is an error before any GPU work") {
  const auto path = temp_path("strata_gpu_bad_weights.safetensors");
  {
    std::ofstream f(path, std::ios::binary);
    f << "this is not a safetensors file";
  }
  CHECK_THROWS_AS(((void)cuda::Engine<Mnist, DType::f16>::from_file(path, {.max_batch = 2})), Error);
  // A well-formed file with the wrong shapes names the tensor.
  using Other = std::remove_cv_t<decltype(input<1, 28, 28> | flatten | dense<10>)>;
  Weights<Other>::random(3).save(path);
  try {
    (void)cuda::Engine<Mnist, DType::f32>::from_file(path, {.max_batch = 2});
    FAIL("no error for a file of another network");
  } catch (const Error& e) {
    MESSAGE(e.what());
    CHECK(std::string(e.what()).find("0.weight") != std::string::npos);
  }
  std::filesystem::remove(path);
}

TEST_CASE("forward on device pointers and a user stream, graphs captured on first use") {
  const auto w = Weights<Mnist>::random(5);
  const int b = 9;
  const auto in = strata_test::random_floats(b * kIn, 6);
  const auto ref = strata_test::cpu_reference<Mnist>(w, in, b);
  cuda::Engine<Mnist, DType::f16> gpu(w, {.max_batch = 16});
  cuda::DeviceBuffer d_in(in.size() * sizeof(float));
  cuda::DeviceBuffer d_out(b * kOut * sizeof(float));
  cuda::Stream s = cuda::Stream::create();
  STRATA_CUDA_CHECK(cudaMemcpy(d_in.get(), in.data(), in.size() * sizeof(float), cudaMemcpyHostToDevice));
  STRATA_CUDA_CHECK(cudaMemset(d_out.get(), 0xff, d_out.bytes()));  // NaN poison
  gpu.forward(d_in.as<float>(), d_out.as<float>(), b, s.get());
  s.synchronize();
  std::vector<float> out(b * kOut);
  STRATA_CUDA_CHECK(cudaMemcpy(out.data(), d_out.get(), d_out.bytes(), cudaMemcpyDeviceToHost));
  CHECK(strata_test::rel_error(out, ref, out.size()) < 1e-2);
  CHECK(gpu.stats().graphs_captured == 1);
  MESSAGE("\n" << gpu.describe(b));
}

TEST_CASE("four threads, four contexts sharing one set of device weights") {
  const auto w = Weights<Mnist>::random(7);
  const int b = 8;
  cuda::Engine<Mnist, DType::f32> engine(w, {.max_batch = b, .capture_batches = {b}});
  std::vector<cuda::Engine<Mnist, DType::f32>> contexts;
  for (int t = 0; t < 4; ++t) {
    contexts.push_back(engine.context());
  }
  std::vector<std::vector<float>> ins;
  std::vector<std::vector<float>> refs;
  for (int t = 0; t < 4; ++t) {
    ins.push_back(strata_test::random_floats(b * kIn, 40 + t));
    refs.push_back(strata_test::cpu_reference<Mnist>(w, ins.back(), b));
  }
  std::vector<double> errors(4, 1.0);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      try {
        std::vector<float> out(b * kOut);
        double worst = 0.0;
        for (int rep = 0; rep < 20; ++rep) {
          std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());
          contexts[t].infer(ins[t], out, b);
          worst = std::max(worst, strata_test::rel_error(out, refs[t], out.size()));
        }
        errors[t] = worst;
      } catch (...) {
        ++failures;
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  CHECK(failures.load() == 0);
  for (int t = 0; t < 4; ++t) {
    INFO("thread " << t);
    CHECK(errors[t] < 1e-4);
  }
}

TEST_CASE("measured tuning writes the algorithm cache; a second start does not re-time") {
  const auto path = temp_path("strata_gpu_tuning_cache.txt");
  std::filesystem::remove(path);
  const auto w = Weights<Mnist>::random(9);
  const cuda::EngineOptions opt{.max_batch = 32, .tuning = cuda::Tuning::measured, .tuning_cache = path};
  const auto in = strata_test::random_floats(32 * kIn, 10);
  const auto ref = strata_test::cpu_reference<Mnist>(w, in, 32);
  double first_tuning_ms = 0.0;
  {
    cuda::Engine<Mnist, DType::f16> first(w, opt);
    CHECK(first.stats().convs_timed == 2);
    CHECK(first.stats().convs_from_cache == 0);
    // Every candidate timed is reported: both convs have several, at least one ran, and each
    // time is a plausible GPU time.
    std::map<std::string, int> ran;
    for (const cuda::TuningTrial& t : first.stats().tuning_trials) {
      INFO(t.op << ": " << t.variant << " " << t.us << " us");
      CHECK(!t.variant.empty());
      CHECK(t.us < 1e5);
      ran[t.op] += t.us > 0.0 ? 1 : 0;
      // The first conv reads the network's input: the generated kernel converts it as it stages
      // it, the other candidates are charged the input step they leave to run first.
      if (t.op == "conv0+bn1+relu2+max_pool3" && t.us > 0.0) {
        CHECK(t.note == (t.variant.starts_with("generated_conv") ? "reads the input itself"
                                                                 : "with the input step"));
      } else {
        CHECK(t.note.empty());
      }
    }
    CHECK(ran["conv0+bn1+relu2+max_pool3"] >= 2);
    CHECK(ran["conv4+bn5+relu6+max_pool7"] >= 2);
    first_tuning_ms = first.stats().tuning_ms;
    CHECK(first.stats().tuning_ms > 0.0);
  }
  CHECK(std::filesystem::exists(path));
  cuda::Engine<Mnist, DType::f16> second(w, opt);
  CHECK(second.stats().convs_timed == 0);
  CHECK(second.stats().convs_from_cache == 2);
  CHECK(second.stats().tuning_trials.empty());
  // From the cache: no candidate timed, so the choice takes less time than timing them did.
  CHECK(second.stats().tuning_ms < first_tuning_ms);
  std::vector<float> out(32 * kOut, std::numeric_limits<float>::quiet_NaN());
  second.infer(in, out, 32);
  CHECK(strata_test::rel_error(out, ref, out.size()) < 1e-2);
  std::filesystem::remove(path);
}

TEST_CASE("EngineOptions::force runs an op on the variant named, in either tuning mode") {
  const auto w = Weights<Mnist>::random(19);
  constexpr int kB = 24;
  const auto in = strata_test::random_floats(kB * kIn, 20);
  const auto ref = strata_test::cpu_reference<Mnist>(w, in, kB);
  const std::map<std::string, cuda::Variant> force{
      {"conv4+bn5+relu6+max_pool7", *cuda::parse_variant("mma_conv algo 1 fuse 1")},
      {"dense11+softmax12", *cuda::parse_variant("dense_softmax")}};
  for (const cuda::Tuning tuning : {cuda::Tuning::heuristic, cuda::Tuning::measured}) {
    cuda::Engine<Mnist, DType::f16> e(
        w, {.max_batch = kB, .tuning = tuning, .fused_max_batch = 0, .force = force});
    const std::string runs = e.describe(kB);
    INFO(runs);
    CHECK(runs.find("conv4+bn5+relu6+max_pool7: strata tensor-core conv 3x3 32->64 + max_pool 2x2 "
                    "(mma.sync, two m-tiles a warp") != std::string::npos);
    CHECK(runs.find("dense11+softmax12: strata dense+softmax 128->10") != std::string::npos);
    // Measured tuning times the other ops only.
    for (const cuda::TuningTrial& t : e.stats().tuning_trials) {
      CHECK(force.count(t.op) == 0);
    }
    std::vector<float> out(kB * kOut, std::numeric_limits<float>::quiet_NaN());
    e.infer(in, out, kB);
    CHECK(strata_test::rel_error(out, ref, out.size()) < 1e-2);
  }
  // A forced variant its tactic refuses is an error naming the layer, not a fall-back.
  try {
    cuda::Engine<Mnist, DType::f16> e(
        w, {.max_batch = kB, .fused_max_batch = 0,
            .force = {{"conv4+bn5+relu6+max_pool7", {"mma_conv", 7, 0, 1}}}});
    FAIL("a variant its tactic does not have was run");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find("layer 'conv4+bn5+relu6+max_pool7'") != std::string::npos);
    CHECK(std::string(e.what()).find("the forced mma_conv algo 7 fuse 1 could not run") !=
          std::string::npos);
  }
  // A label the network does not have, named with the ones it has.
  try {
    cuda::Engine<Mnist, DType::f16> e(w, {.max_batch = kB, .force = {{"conv3", {"mma_conv"}}}});
    FAIL("an unknown label was accepted");
  } catch (const strata::Error& e) {
    CHECK(std::string(e.what()).find("'conv3'") != std::string::npos);
    CHECK(std::string(e.what()).find("conv0+bn1+relu2+max_pool3") != std::string::npos);
  }
}

TEST_CASE("summary(): the network, then the engine's storage, fused-kernel fit, path and steps") {
  const auto w = Weights<Mnist>::random(1);
  cuda::Engine<Mnist, DType::f16> fused(w, {.max_batch = 8, .fused_max_batch = 2});
  std::ostringstream a;
  fused.summary(a, 1);
  const std::string s = a.str();
  INFO(s);
  CHECK(s.find("conv0+bn1+relu2") != std::string::npos);  // Net::summary's fused ops
  CHECK(s.find("CUDA engine: f16, activations stored NHWC (channels padded to multiples of 8); "
               "batches 1..8; input f32") != std::string::npos);
  CHECK(s.find("Fused-network kernel: the network fits; batches up to 2 run it") != std::string::npos);
  CHECK(s.find("Path at batch 1: fused network") != std::string::npos);
  std::ostringstream b;
  fused.summary(b);  // max_batch: per-op, one line per step
  CHECK(b.str().find("Path at batch 8: per-op") != std::string::npos);
  CHECK(b.str().find("  dense9+relu10: cublasLtMatmul") != std::string::npos);
  // A network that does not fit says why.
  using Big = std::remove_cv_t<decltype(input<3, 64, 64> | conv<64, 7, ConvOpts{.stride = 2, .padding = 3}>
                                        | relu | conv<128, 3, ConvOpts{.padding = 1}> | relu
                                        | global_avg_pool | flatten | dense<10>)>;
  static_assert(!cuda::NetStorage<Big, DType::f32>::fused_fit().fits);
  cuda::Engine<Big, DType::f32> big(Weights<Big>::random(2), {.max_batch = 2});
  std::ostringstream c;
  big.summary(c);
  INFO(c.str());
  CHECK(c.str().find(std::string("Fused-network kernel: does not fit: ") +
                     cuda::NetStorage<Big, DType::f32>::fused_fit().reason) != std::string::npos);
  CHECK_THROWS_AS(big.summary(c, 3), Error);
}

TEST_CASE("EnginePool: an engine per visible GPU; a batch split over them; a stream of batches") {
  int count = 0;
  STRATA_CUDA_CHECK(cudaGetDeviceCount(&count));
  const auto w = Weights<Mnist>::random(9);
  cuda::EnginePool<Mnist, DType::f16> pool(w, {.max_batch = 6});
  CHECK(pool.size() == count);
  CHECK(pool.max_batch() == 6 * count);
  const int batch = pool.max_batch();
  const auto in = strata_test::random_floats(static_cast<std::size_t>(batch) * kIn, 19);
  const auto ref = strata_test::cpu_reference<Mnist>(w, in, batch);
  std::vector<float> out(static_cast<std::size_t>(batch) * kOut,
                         std::numeric_limits<float>::quiet_NaN());
  pool.infer(in, out, batch);
  const double err = strata_test::rel_error(out, ref, out.size());
  MESSAGE("EnginePool of " << count << " GPU(s), batch " << batch << ": rel. error " << err);
  CHECK(err < 1e-2);
  CHECK_THROWS_AS(pool.infer(in, out, batch + 1), Error);
  CHECK_THROWS_AS((cuda::EnginePool<Mnist, DType::f16>(w, {.max_batch = 2}, {count})), Error);
  // A stream of batches from page-locked memory, handed to the engines in turn.
  cuda::PinnedBuffer pin_in(in.size() * sizeof(float));
  cuda::PinnedBuffer pin_out(out.size() * sizeof(float));
  std::memcpy(pin_in.get(), in.data(), pin_in.bytes());
  std::vector<cuda::Pending> pending;
  for (int k = 0; k < count; ++k) {
    pending.push_back(pool.enqueue(
        std::span<const float>(pin_in.as<float>() + k * 6 * kIn, 6 * kIn),
        std::span<float>(pin_out.as<float>() + k * 6 * kOut, 6 * kOut), 6));
  }
  pool.synchronize();
  const std::span<const float> streamed(pin_out.as<float>(), out.size());
  CHECK(strata_test::rel_error(streamed, ref, out.size()) < 1e-2);
}

namespace {
// Convs for the cuDNN graph tactic: conv+bn+relu, a residual's conv+bn+add+relu, a bias-free
// 1x1 conv (the graph is the conv alone), 16-bit NHWC.
using GraphNet = decltype(input<8, 12, 12> | conv<16, 3, ConvOpts{.padding = 1}> | batch_norm | relu
                          | residual<relu>(conv<16, 3, ConvOpts{.padding = 1}> | batch_norm)
                          | conv<8, 1, ConvOpts{.bias = false}> | global_avg_pool | flatten | dense<4>);

template <DType P>
void check_cudnn_graph(std::uint64_t seed) {
  constexpr int kB = 5;
  const auto w = Weights<GraphNet>::random(seed);
  const auto in = strata_test::random_floats(kB * 8 * 12 * 12, seed + 100);
  const auto ref = strata_test::cpu_reference<GraphNet>(w, in, kB);
  const std::filesystem::path cache = temp_path("strata_cudnn_graph.json");
  std::filesystem::remove(cache);
  int forced = 0;
  {
    cuda::TuningCache c(cache);
    for (const cuda::OpDesc& op : cuda::NetStorage<GraphNet, P>::describe().ops) {
      if (op.kind == OpKind::conv) {
        REQUIRE(cuda::find_tactic<P>("cudnn_graph")->applicable(op));
        c.put(cuda::tuning_key(op, kB, P, cuda::device_name(0)), cuda::Variant{"cudnn_graph", 0, 0, 0});
        ++forced;
      }
    }
    c.save();
  }
  REQUIRE(forced == 3);
  cuda::Engine<GraphNet, P> e(w, strata_test::from_cache(kB, cache));
  const std::string runs = e.describe(kB);
  INFO(runs);
  CHECK(runs.find("conv0+bn1+relu2: cuDNN graph conv+bias+relu (engine ") != std::string::npos);
  CHECK(runs.find("+add+relu: cuDNN graph conv+bias+add+relu (engine ") != std::string::npos);
  CHECK(runs.find(": cuDNN graph conv (engine ") != std::string::npos);
  for (int b : {1, kB}) {
    std::vector<float> out(static_cast<std::size_t>(b) * 4, std::nanf(""));
    e.infer(in, out, b);
    const double err = strata_test::rel_error(out, ref, out.size());
    MESSAGE("cudnn_graph " << dtype_name(P) << " batch " << b << ": rel. error " << err);
    CHECK(err < (P == DType::bf16 ? 3e-2 : 1e-2));
  }
  std::filesystem::remove(cache);
}
}  // namespace

TEST_CASE("cuDNN graph convs: conv + bias + add + relu as one operation graph, forced and timed") {
  check_cudnn_graph<DType::f16>(61);
  check_cudnn_graph<DType::bf16>(62);
  // Measured tuning times the graph's engine configurations only when asked.
  const auto w = Weights<GraphNet>::random(63);
  for (const bool asked : {false, true}) {
    cuda::EngineOptions opt;
    opt.max_batch = 4;
    opt.tuning = cuda::Tuning::measured;
    opt.cudnn_graph_candidates = asked;
    cuda::Engine<GraphNet, DType::f16> e(w, opt);
    int graph_trials = 0;
    int timed = 0;
    for (const cuda::TuningTrial& t : e.stats().tuning_trials) {
      if (t.variant.rfind("cudnn_graph", 0) == 0) {
        ++graph_trials;
        timed += t.us > 0.0;
      }
    }
    INFO("asked " << asked << ": " << graph_trials << " cudnn_graph trials, " << timed << " timed");
    CHECK((graph_trials > 0) == asked);
    CHECK((timed > 0) == asked);
  }
  // A strided 1x1 conv (a ResNet downsample) is timed on the graph engines unasked; the 3x3
  // after it is not.
  using DownGraph = decltype(input<16, 12, 12> | conv<32, 1, ConvOpts{.stride = 2}> | batch_norm | relu
                             | conv<16, 3, ConvOpts{.padding = 1}> | flatten | dense<3>);
  cuda::EngineOptions opt;
  opt.max_batch = 4;
  opt.tuning = cuda::Tuning::measured;
  cuda::Engine<DownGraph, DType::f16> down(Weights<DownGraph>::random(64), opt);
  int strided = 0;
  int other = 0;
  for (const cuda::TuningTrial& t : down.stats().tuning_trials) {
    if (t.variant.rfind("cudnn_graph", 0) == 0) {
      ++(t.op.rfind("conv0", 0) == 0 ? strided : other);
      // (each timed configuration names its engine: Step::tuning_note)
      INFO(t.variant << ": " << t.note);
      CHECK((t.us < 0.0 || t.note.rfind("engine ", 0) == 0));
    }
  }
  INFO(down.describe(4));
  CHECK(strided > 0);
  CHECK(other == 0);
  // Untimed (the heuristic), a strided 1x1 conv of ResNet-18's layer3.0 downsample's shape at
  // batch 256 (where cuDNN 9.19 listed engine 41 first on an H200, session 45) takes the graph's
  // first configuration of that engine (math 1) on a GPU of compute capability 9.0 with the cuDNN
  // measured — and then at the engine's other batches where cuDNN lists that engine at all, else
  // cuBLASLt —; an engine of max_batch under graph_claim_min_batch keeps cuBLASLt. All against
  // the CPU reference.
  using Down = decltype(input<128, 28, 28> | conv<256, 1, ConvOpts{.stride = 2}> | batch_norm
                        | global_avg_pool | flatten | dense<3>);
  using Graph = cuda::tactics::CudnnGraphConv<DType::f16>;
  constexpr int kBig = 256;
  constexpr int kImage = 128 * 28 * 28;
  const auto dw = Weights<Down>::random(65);
  const auto din = strata_test::random_floats(std::size_t{kBig} * kImage, 165);
  const auto dref = strata_test::cpu_reference<Down>(dw, din, kBig);
  const bool claims = cuda::device_arch() == 90 && cudnnGetVersion() / 100 == Graph::claim_cudnn;
  for (const int mb : {Graph::graph_claim_min_batch - 1, kBig}) {
    cuda::EngineOptions hopt;
    hopt.max_batch = mb;
    cuda::Engine<Down, DType::f16> heur(dw, hopt);
    for (const int b : {3, mb}) {
      const std::string runs = heur.describe(b);
      INFO("max_batch " << mb << ", batch " << b << ":\n" << runs);
      // (the conv's line: after the input step's)
      const std::size_t at = runs.starts_with("conv0+bn1") ? 0 : runs.find("\nconv0+bn1") + 1;
      REQUIRE(at != std::string::npos + 1);
      const std::string conv = runs.substr(at, runs.find('\n', at) - at);
      const bool graph = conv.find(": cuDNN graph conv+bias (engine " +
                                   std::to_string(Graph::claim_engine) + ", ") != std::string::npos;
      MESSAGE("max_batch " << mb << ", batch " << b << ": " << conv);
      if (b == mb) {
        CHECK(graph == (claims && mb == kBig));
      } else {
        CHECK((!graph || (claims && mb == kBig)));
      }
      CHECK(graph != (conv.find(": cublasLtMatmul") != std::string::npos));
      std::vector<float> out(static_cast<std::size_t>(b) * 3, std::nanf(""));
      heur.infer(std::span<const float>(din.data(), static_cast<std::size_t>(b) * kImage), out, b);
      const double err = strata_test::rel_error(out, dref, out.size());
      MESSAGE("heuristic strided 1x1, max_batch " << mb << ", batch " << b << ": rel. error " << err);
      CHECK(err < 1e-2);
    }
  }
}

TEST_CASE("lt_conv1x1's math m: the m-th of cuBLASLt's heuristic's algorithms, forced, against the CPU") {
  // A 1x1 conv of stride 1 with a residual's add and relu after it, and a strided one (its input
  // subsampled first), each forced onto cuBLASLt's algorithms 0 to lt_algos - 1 in turn.
  using LtNet = decltype(input<32, 14, 14> | conv<64, 1> | batch_norm | relu
                         | residual<relu>(conv<64, 1> | batch_norm)
                         | conv<32, 1, ConvOpts{.stride = 2}> | batch_norm | flatten | dense<3>);
  using Lt = cuda::tactics::LtConv1x1<DType::f16>;
  constexpr int kB = 9;
  const auto w = Weights<LtNet>::random(66);
  const auto in = strata_test::random_floats(kB * 32 * 14 * 14, 166);
  const auto ref = strata_test::cpu_reference<LtNet>(w, in, kB);
  int ran = 0;
  for (int m = 0; m < Lt::lt_algos; ++m) {
    cuda::EngineOptions opt;
    opt.max_batch = kB;
    for (const cuda::OpDesc& op : cuda::NetStorage<LtNet, DType::f16>::describe().ops) {
      if (op.kind == OpKind::conv) {
        opt.force[op.label] = cuda::Variant{"lt_conv1x1", 0, m};
      }
    }
    REQUIRE(opt.force.size() == 3);
    try {
      cuda::Engine<LtNet, DType::f16> e(w, opt);
      for (int b : {kB, 3}) {
        const std::string runs = e.describe(b);
        INFO("math " << m << ", batch " << b << ":\n" << runs);
        CHECK((runs.find("heuristic's algorithm " + std::to_string(m)) != std::string::npos) == (m > 0));
        std::vector<float> out(static_cast<std::size_t>(b) * 3, std::nanf(""));
        e.infer(std::span<const float>(in.data(), static_cast<std::size_t>(b) * 32 * 14 * 14), out, b);
        const double err = strata_test::rel_error(out, ref, out.size());
        MESSAGE("lt_conv1x1 math " << m << ", batch " << b << ": rel. error " << err);
        CHECK(err < 1e-2);
        ++ran;
      }
    } catch (const Error& err) {  // (cuBLASLt may list fewer algorithms for some matmul)
      MESSAGE("math " << m << ": " << std::string(err.what()));
      CHECK(std::string(err.what()).find("has no algorithm number " + std::to_string(m)) != std::string::npos);
    }
  }
  CHECK(ran >= 4);  // math 0 and at least one other, at both batches
}

TEST_CASE("measured tuning's whole-plan check (EngineOptions::plan_check) keeps the faster of its plan and the heuristic's") {
  // The cache hands measured tuning Strata's direct kernel for both MNIST convs — a plan the
  // heuristic would not make at batch 64 — so the two whole plans differ and both are timed.
  constexpr int kB = 64;
  const auto w = Weights<Mnist>::random(71);
  const auto in = strata_test::random_floats(kB * 28 * 28, 171, 0.0f, 1.0f);
  const auto ref = strata_test::cpu_reference<Mnist>(w, in, kB);
  const std::filesystem::path cache = temp_path("strata_plan_check.json");
  std::filesystem::remove(cache);
  cuda::NetDesc net = cuda::NetStorage<Mnist, DType::f16>::describe();
  cuda::fold_for_per_op_path(net);
  int planted = 0;
  {
    cuda::TuningCache c(cache);
    for (const cuda::OpDesc& op : net.ops) {
      if (op.kind == OpKind::conv) {
        c.put(cuda::tuning_key(op, kB, DType::f16, cuda::device_name(0)), cuda::Variant{"direct_conv"});
        ++planted;
      }
    }
    c.save();
  }
  REQUIRE(planted == 2);
  cuda::EngineOptions opt = strata_test::from_cache(kB, cache);
  opt.fused_max_batch = 0;
  {  // without the check: the cache's plan, as before
    cuda::Engine<Mnist, DType::f16> e(w, opt);
    CHECK(e.stats().plan_kept.empty());
    CHECK(e.describe(kB).find("strata conv_direct") != std::string::npos);
  }
  opt.plan_check = true;
  cuda::Engine<Mnist, DType::f16> e(w, opt);
  const cuda::EngineStats& st = e.stats();
  const std::string runs = e.describe(kB);
  INFO(runs);
  MESSAGE("plan check, MNIST f16 batch " << kB << ": measured (cached direct convs) "
                                         << st.plan_check_measured_us << " us, heuristic "
                                         << st.plan_check_heuristic_us << " us, kept " << st.plan_kept);
  REQUIRE(!st.plan_kept.empty());
  CHECK(st.plan_check_error.empty());
  CHECK(st.plan_check_measured_us > 0.0);
  CHECK(st.plan_check_heuristic_us > 0.0);
  const bool heuristic_faster = st.plan_kept == "heuristic";
  CHECK(heuristic_faster == (st.plan_check_heuristic_us < 0.99 * st.plan_check_measured_us));
  // The plan built is the one kept.
  CHECK((runs.find("strata conv_direct") != std::string::npos) == !heuristic_faster);
  std::ostringstream sum;
  e.summary(sum);
  CHECK(sum.str().find("Whole-plan check at batch 64") != std::string::npos);
  for (int b : {1, 17, kB}) {
    std::vector<float> out(static_cast<std::size_t>(b) * 10, std::nanf(""));
    e.infer(in, out, b);
    const double err = strata_test::rel_error(out, ref, out.size());
    CHECK(err < 1e-2);
  }
  std::filesystem::remove(cache);
}
