// strata_bench: Strata's side of one benchmark case of BENCHMARKS.md (M1, M2, R1, R2, R3) in
// one precision and batch, or the GPU's two ceilings (--ceilings). Appends one JSON line per
// measurement to --out-json and prints it. docs/benchmarks.md says how the numbers are used.
//
//   strata_bench --case R2 --precision f16 [--batch 256] [--weights F | --save-weights F]
//                [--input F | --save-input F] [--dump-output F] [--out-json F] [--commit SHA]
//                [--tuning heuristic|measured] [--tuning-cache F] [--repeats 9] [--iters N]
//   strata_bench --case R2-stream --precision f16   (8-bit images from pinned memory, enqueue)
//   strata_bench --case R2-stream --gpus 2          (the same through an EnginePool of 1, then 2)
//   strata_bench --ceilings [--out-json F]
//   strata_bench --launch-floor [--out-json F]   (an empty kernel's graph: the floor of M1's figures)
//
// Timing: warm-up (at least 200 ms of GPU work), then `repeats` runs of `iters` back-to-back
// forward() calls between two CUDA events; reported: median, min and max of time per forward.
// Exit codes: 0 done, 1 error (also written as a JSON line with "status": "ERROR"), 2 bad
// arguments, 77 no CUDA device.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "fill_random.hpp"
#include "strata/core/compare.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/engine.hpp"
#include "strata/cuda/engine_pool.hpp"
#include "strata/cuda/fused_network.hpp"
#include "strata/cuda/graph_capture.hpp"
#include "strata/cuda/profiler.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/models/densenet.hpp"
#include "strata/models/efficientnet.hpp"
#include "strata/models/mnist_cnn.hpp"
#include "strata/models/mobilenet_v2.hpp"
#include "strata/models/resnet.hpp"

namespace {

using Json = nlohmann::json;
using strata::DType;

/// Seed of the random weights of every network (the same weights in every precision).
constexpr std::uint64_t weights_seed = 20261121;
/// Seed of the random inputs U(0, 1).
constexpr std::uint64_t input_seed = 7;

/// One row of BENCHMARKS.md's case table: id, network, default batch.
struct CaseInfo {
  std::string_view id;
  std::string_view network;
  int batch;
};
constexpr CaseInfo cases[] = {
    {"M1", "mnist_cnn", 1},  {"M2", "mnist_cnn", 4096}, {"R1", "resnet18", 1},
    {"R2", "resnet18", 256}, {"R3", "resnet50", 256}, {"R2-stream", "resnet18", 256},
    // The deployable networks of issue 12 (torchvision definitions), f16 only.
    {"MV2", "mobilenet_v2", 256}, {"EB0", "efficientnet_b0", 256}, {"D121", "densenet121", 256},
};

/// Command-line options (see the file comment).
struct Args {
  std::string case_id;
  std::string precision = "f16";
  int batch = 0;  // 0: the case's default
  std::string weights, save_weights, input, save_input, dump_output, out_json, commit, tuning_cache;
  bool measured = false;
  bool ceilings = false;
  bool launch_floor = false;   // --launch-floor: what a one-kernel graph costs, kernel empty
  bool profile = false;         // print the per-layer profile and add it to the JSON line
  double ceil_tflops = 0.0;     // measured ceilings for the profile's roofline column
  double ceil_gbs = 0.0;
  int repeats = 9;
  int gpus = 0;              // R2-stream through an EnginePool of 1, then of this many GPUs
  int fused_max_batch = strata::cuda::fused_auto;  // EngineOptions::fused_max_batch (default: the engine's)
  bool tf32 = false;         // EngineOptions::allow_tf32 (f32 only)
  bool cudnn_graph = false;  // EngineOptions::cudnn_graph_candidates (measured tuning, 16-bit)
  // EngineOptions::pdl (programmatic dependent launches): the engine's default (timed), --pdl, --no-pdl
  strata::cuda::Pdl pdl = strata::cuda::Pdl::timed;
  bool bneck_clusters = false;  // EngineOptions::bottleneck_clusters (DenseNet layers joined at small batches)
  bool branches = false;     // EngineOptions::concurrent_branches (an op beside the next one)
  bool plan_check = false;   // EngineOptions::plan_check (measured tuning: whole plans compared)
  int iters = 0;             // 0: calibrated so that one repeat takes about target_ms
  double target_ms = 50.0;   // GPU time per repeat when calibrating
  double warmup_ms = 200.0;  // GPU time of warm-up before the first repeat
  std::map<std::string, strata::cuda::Variant> force;  // EngineOptions::force (--force)
  // --force-each 'TEXT=VARIANT': the variant for every op whose label contains TEXT (expanded
  // into `force` per case, from the labels the engine gives the network's ops)
  std::vector<std::pair<std::string, strata::cuda::Variant>> force_each;
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "strata_bench: " << problem << "\n"
            << "usage: strata_bench --case M1|M2|R1|R2|R3|R2-stream|MV2|EB0|D121 --precision f32|f16|bf16|tf32 [--batch N]\n"
               "         [--weights F | --save-weights F] [--input F | --save-input F]\n"
               "         [--dump-output F] [--out-json F] [--commit SHA]\n"
               "         [--tuning heuristic|measured] [--tuning-cache F] [--repeats R] [--iters N]\n"
               "         [--fused-max-batch N] [--tf32] [--cudnn-graph] [--pdl|--no-pdl] [--bottleneck-clusters] [--branches]\n"
               "         [--plan-check] [--gpus N]\n"
               "         [--force 'LABEL=TACTIC[ algo A][ math M][ fuse F]' ...]\n"
               "         [--force-each 'TEXT=VARIANT' ...]   (every op whose label contains TEXT)\n"
               "         [--profile [--ceiling-tflops T --ceiling-gbs G]]\n"
               "       strata_bench --ceilings [--out-json F]\n"
               "       strata_bench --launch-floor [--out-json F]\n";
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) {
      usage(std::string(argv[i]) + " needs a value");
    }
    return argv[++i];
  };
  auto number = [&](int& i) {
    const std::string v = value(i);
    try {
      return std::stoi(v);
    } catch (const std::exception&) {
      usage(std::string(argv[i - 1]) + ": '" + v + "' is not a number");
    }
  };
  // Options taking a string value, by name.
  const std::pair<std::string_view, std::string Args::*> strings[] = {
      {"--case", &Args::case_id},
      {"--precision", &Args::precision},
      {"--weights", &Args::weights},
      {"--save-weights", &Args::save_weights},
      {"--input", &Args::input},
      {"--save-input", &Args::save_input},
      {"--dump-output", &Args::dump_output},
      {"--out-json", &Args::out_json},
      {"--commit", &Args::commit},
      {"--tuning-cache", &Args::tuning_cache}};
  for (int i = 1; i < argc; ++i) {
    const std::string_view k = argv[i];
    const auto s = std::find_if(std::begin(strings), std::end(strings),
                                [&](const auto& e) { return e.first == k; });
    if (s != std::end(strings)) {
      a.*(s->second) = value(i);
    } else if (k == "--batch") {
      a.batch = number(i);
    } else if (k == "--repeats") {
      a.repeats = number(i);
    } else if (k == "--gpus") {
      a.gpus = number(i);
      if (a.gpus < 1) {
        usage("--gpus must be at least 1");
      }
    } else if (k == "--tf32") {
      a.tf32 = true;
    } else if (k == "--cudnn-graph") {
      a.cudnn_graph = true;
    } else if (k == "--pdl") {
      a.pdl = strata::cuda::Pdl::on;
    } else if (k == "--no-pdl") {
      a.pdl = strata::cuda::Pdl::off;
    } else if (k == "--bottleneck-clusters") {
      a.bneck_clusters = true;
    } else if (k == "--branches") {
      a.branches = true;
    } else if (k == "--plan-check") {
      a.plan_check = true;
    } else if (k == "--fused-max-batch") {
      a.fused_max_batch = number(i);
    } else if (k == "--force" || k == "--force-each") {
      // An op's label (as describe() and the profile print it) or, for --force-each, text that
      // labels contain; '=', and the variant.
      const std::string f = value(i);
      const std::size_t eq = f.rfind('=');
      const auto v = eq == std::string::npos ? std::nullopt
                                             : strata::cuda::parse_variant(std::string_view(f).substr(eq + 1));
      if (!v || eq == 0) {
        usage(k == "--force" ? "--force takes LABEL=VARIANT (e.g. 'conv4+bn5+relu6+max_pool7=mma_conv algo 2 "
                               "fuse 1' or '...=mma_conv:2:0:1'), not '" + f + "'"
                             : "--force-each takes TEXT=VARIANT (e.g. 'avgpool+features=squeeze_excite algo "
                               "1'), not '" + f + "'");
      }
      if (k == "--force") {
        a.force[f.substr(0, eq)] = *v;
      } else {
        a.force_each.emplace_back(f.substr(0, eq), *v);
      }
    } else if (k == "--iters") {
      a.iters = number(i);
    } else if (k == "--ceilings") {
      a.ceilings = true;
    } else if (k == "--launch-floor") {
      a.launch_floor = true;
    } else if (k == "--profile") {
      a.profile = true;
    } else if (k == "--ceiling-tflops") {
      a.ceil_tflops = std::stod(value(i));
    } else if (k == "--ceiling-gbs") {
      a.ceil_gbs = std::stod(value(i));
    } else if (k == "--tuning") {
      const std::string t = value(i);
      if (t != "heuristic" && t != "measured") {
        usage("--tuning is heuristic or measured, not '" + t + "'");
      }
      a.measured = t == "measured";
    } else {
      usage(k == "--help" || k == "-h" ? "help" : "unknown argument '" + std::string(k) + "'");
    }
  }
  if (!a.ceilings && !a.launch_floor && a.case_id.empty()) {
    usage("give --case, --ceilings or --launch-floor");
  }
  if (a.precision != "f32" && a.precision != "f16" && a.precision != "bf16" && a.precision != "tf32") {
    usage("--precision is f32, f16, bf16 or tf32, not '" + a.precision + "'");
  }
  if (a.gpus > 0 && !a.case_id.ends_with("-stream")) {
    usage("--gpus applies to a streaming case (R2-stream)");
  }
  if (a.repeats < 7) {
    usage("--repeats must be at least 7 (BENCHMARKS.md: median of at least 7 repeats)");
  }
  return a;
}

/// Prints `j` as one line and appends it to --out-json (when given).
void emit(const Args& a, const Json& j) {
  const std::string line = j.dump();
  std::cout << line << std::endl;
  if (!a.out_json.empty()) {
    std::ofstream out(a.out_json, std::ios::app);
    out << line << "\n";
    if (!out) {
      throw strata::Error(a.out_json + ": cannot append");
    }
  }
}

/// The device's name and the library versions, for every JSON line.
Json device_info() {
  int device = 0;
  STRATA_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  STRATA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  int runtime = 0;
  int driver = 0;
  STRATA_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  STRATA_CUDA_CHECK(cudaDriverGetVersion(&driver));
  return {{"gpu", prop.name},
          {"sm", std::to_string(prop.major) + std::to_string(prop.minor)},
          {"cuda_runtime", runtime},
          {"cuda_driver", driver},
          {"cudnn", static_cast<long>(cudnnGetVersion())}};
}

/// The SM clock and board power while the repeats run, sampled every 5 ms through the driver's
/// NVML (libnvidia-ml.so.1, opened at run time: nothing to link; absent where it does not open).
/// A sustained load may run at lower clocks than a short one (a plan timed in a short burst at
/// engine construction read 7.6% faster than here: docs/benchmarks.md, session 45).
class ClockSampler {
 public:
  explicit ClockSampler(int cuda_device) {
    lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib_ == nullptr) {
      return;
    }
    auto sym = [&](const char* n) { return dlsym(lib_, n); };
    auto init = reinterpret_cast<int (*)()>(sym("nvmlInit_v2"));
    shutdown_ = reinterpret_cast<int (*)()>(sym("nvmlShutdown"));
    auto by_bus = reinterpret_cast<int (*)(const char*, void**)>(sym("nvmlDeviceGetHandleByPciBusId_v2"));
    clock_ = reinterpret_cast<int (*)(void*, int, unsigned*)>(sym("nvmlDeviceGetClockInfo"));
    power_ = reinterpret_cast<int (*)(void*, unsigned*)>(sym("nvmlDeviceGetPowerUsage"));
    auto by_index = reinterpret_cast<int (*)(unsigned, void**)>(sym("nvmlDeviceGetHandleByIndex_v2"));
    char bus[32] = {};
    if (init == nullptr || shutdown_ == nullptr || by_bus == nullptr || clock_ == nullptr ||
        power_ == nullptr || init() != 0) {
      return;
    }
    initialized_ = true;
    ok_ = cudaDeviceGetPCIBusId(bus, sizeof(bus), cuda_device) == cudaSuccess && by_bus(bus, &dev_) == 0;
    int visible = 0;
    if (!ok_ && by_index != nullptr && cudaGetDeviceCount(&visible) == cudaSuccess && visible == 1) {
      ok_ = by_index(0, &dev_) == 0;  // (one GPU: NVML's first where the bus id is not understood)
    }
  }
  ~ClockSampler() {
    stop();
    if (initialized_) {
      shutdown_();
    }
    if (lib_ != nullptr) {
      dlclose(lib_);
    }
  }
  ClockSampler(const ClockSampler&) = delete;
  ClockSampler& operator=(const ClockSampler&) = delete;
  void start() {
    if (!ok_ || thread_.joinable()) {
      return;
    }
    running_ = true;
    thread_ = std::thread([this] {
      while (running_) {
        unsigned mhz = 0;
        unsigned mw = 0;
        if (clock_(dev_, 1 /* NVML_CLOCK_SM */, &mhz) == 0 && power_(dev_, &mw) == 0) {
          mhz_.push_back(mhz);
          watts_.push_back(mw / 1000.0);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  void stop() {
    running_ = false;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  /// {"sm_clock_mhz": {min, median, max}, "power_w": {...}, "samples": n}, or null.
  [[nodiscard]] Json summary() {
    stop();
    if (mhz_.empty()) {
      return nullptr;
    }
    auto stats = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return Json{{"min", v.front()}, {"median", v[v.size() / 2]}, {"max", v.back()}};
    };
    return Json{{"sm_clock_mhz", stats(std::vector<double>(mhz_.begin(), mhz_.end()))},
                {"power_w", stats(watts_)},
                {"samples", mhz_.size()}};
  }

 private:
  void* lib_ = nullptr;
  int (*shutdown_)() = nullptr;
  int (*clock_)(void*, int, unsigned*) = nullptr;
  int (*power_)(void*, unsigned*) = nullptr;
  void* dev_ = nullptr;
  bool initialized_ = false;
  bool ok_ = false;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::vector<unsigned> mhz_;
  std::vector<double> watts_;
};

/// GPU time per call, in microseconds: median, min and max over the repeats; the SM clock and
/// power during them where NVML answers (ClockSampler).
struct Timing {
  double median_us = 0, min_us = 0, max_us = 0;
  int iters = 0, repeats = 0;
  Json clocks = nullptr;
};

/// Times `launch` (which enqueues one unit of work on `s`): `repeats` runs of `iters` calls
/// between two CUDA events, after a warm-up that also calibrates `iters` when not given.
Timing time_gpu(const std::function<void()>& launch, cudaStream_t s, const Args& a) {
  const strata::cuda::Event start = strata::cuda::Event::create();
  const strata::cuda::Event stop = strata::cuda::Event::create();
  auto run = [&](int n) {
    start.record(s);
    for (int i = 0; i < n; ++i) {
      launch();
    }
    stop.record(s);
    stop.synchronize();
    return static_cast<double>(stop.elapsed_ms_since(start));
  };
  // Warm-up doubles as calibration: clocks settle and the time per call is estimated.
  double warm_ms = 0.0;
  int warm_calls = 0;
  double per_call_ms = 0.0;
  for (int n = 1;; n = std::min(n * 2, 1 << 14)) {
    const double ms = run(n);
    warm_ms += ms;
    warm_calls += n;
    per_call_ms = ms / n;
    if (warm_ms >= a.warmup_ms && warm_calls >= 10) {
      break;
    }
  }
  Timing t;
  t.repeats = a.repeats;
  t.iters = a.iters > 0 ? a.iters
                        : static_cast<int>(std::clamp(
                              std::ceil(a.target_ms / std::max(per_call_ms, 1e-6)), 3.0, 100000.0));
  std::vector<double> us;
  int device = 0;
  STRATA_CUDA_CHECK(cudaGetDevice(&device));
  ClockSampler clocks(device);
  clocks.start();
  for (int r = 0; r < a.repeats; ++r) {
    us.push_back(run(t.iters) * 1000.0 / t.iters);
  }
  t.clocks = clocks.summary();
  std::sort(us.begin(), us.end());
  t.median_us = us[us.size() / 2];
  t.min_us = us.front();
  t.max_us = us.back();
  return t;
}

Json timing_json(const Timing& t) {
  return {{"median_us", t.median_us},
          {"min_us", t.min_us},
          {"max_us", t.max_us},
          {"iters", t.iters},
          {"repeats", t.repeats},
          {"clocks", t.clocks}};
}

/// The floor under a batch-1 figure, measured the way a case is: a graph holding one kernel that
/// does nothing, timed by time_gpu (replays back to back, GPU time per replay) and by the host
/// wall of launch + cudaStreamSynchronize. Kernels: one block of 32 threads; the fused-network
/// kernel's shape (a cluster of 16 blocks of 1,024 threads where the GPU allows it, else 8) with
/// no barrier, with its four phases' cluster barriers, and with the shared memory it opts into
/// (fused_shared_max). One JSON line each (kind "launch_floor").
int run_launch_floor(const Args& a) {
  namespace sc = strata::cuda;
  const Json dev = device_info();
  const sc::Stream stream = sc::Stream::create();
  const cudaStream_t s = stream.get();
  int device = 0;
  STRATA_CUDA_CHECK(cudaGetDevice(&device));
  // Thread-block clusters (the fused kernel's) from compute capability 9.0 on; below it the
  // one-block floor only.
  const bool clusters = sc::rtc::current_arch() >= 90;
  const auto source = [clusters](int cluster) {
    std::ostringstream o;
    o << "extern \"C\" __global__ void floor_one(float* out) {\n"
         "  if (threadIdx.x == 0 && out != nullptr) *out = 1.0f;\n}\n";
    for (const int barriers : clusters ? std::vector<int>{0, 4} : std::vector<int>{}) {
      o << "extern \"C\" __global__ void __cluster_dims__(" << cluster << ", 1, 1) __launch_bounds__("
        << sc::fused_threads << ") floor_cluster" << barriers << "(float* out) {\n"
        << "  for (int i = 0; i < " << barriers << "; ++i) {\n"
        << "    asm volatile(\"barrier.cluster.arrive.release.aligned;\\n\\tbarrier.cluster.wait.acquire.aligned;\" ::: \"memory\");\n"
        << "  }\n"
        << "  if (threadIdx.x == 0 && blockIdx.x == 0 && out != nullptr) *out = 1.0f;\n}\n";
    }
    return o.str();
  };
  const std::vector<std::string> names =
      clusters ? std::vector<std::string>{"floor_one", "floor_cluster0", "floor_cluster4"}
               : std::vector<std::string>{"floor_one"};
  int cluster = sc::fused_cluster_large;
  auto lib = std::make_unique<sc::rtc::Library>(
      sc::rtc::compile(source(cluster), "strata_launch_floor", names, sc::rtc::current_arch()), names);
  const std::size_t big = [&] {
    int optin = 0;
    STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return static_cast<std::size_t>(std::min<std::int64_t>(sc::fused_shared_max, optin - 1024));
  }();
  if (clusters) {
    // 16 blocks a cluster is a non-portable size, allowed per kernel where the GPU has it (as
    // FusedNetwork does), else 8.
    bool large = true;
    for (const char* k : {"floor_cluster0", "floor_cluster4"}) {
      large = large && cudaKernelSetAttributeForDevice(lib->kernel(k), cudaFuncAttributeNonPortableClusterSizeAllowed,
                                                       1, device) == cudaSuccess;
    }
    if (!large) {
      (void)cudaGetLastError();
      cluster = sc::fused_cluster_portable;
      lib = std::make_unique<sc::rtc::Library>(
          sc::rtc::compile(source(cluster), "strata_launch_floor", names, sc::rtc::current_arch()), names);
    }
    STRATA_CUDA_CHECK(cudaKernelSetAttributeForDevice(lib->kernel("floor_cluster4"),
                                                      cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                      static_cast<int>(big), device));
  }
  const sc::DeviceBuffer out(sizeof(float));
  struct Floor {
    const char* name;
    const char* kernel;
    unsigned blocks, threads;
    std::size_t shared;
  };
  const auto c = static_cast<unsigned>(cluster);
  for (const Floor f : {Floor{"one_block", "floor_one", 1, 32, 0},
                        Floor{"cluster", "floor_cluster0", c, sc::fused_threads, 0},
                        Floor{"cluster_4_barriers", "floor_cluster4", c, sc::fused_threads, 0},
                        Floor{"cluster_4_barriers_shared", "floor_cluster4", c, sc::fused_threads, big}}) {
    if (!clusters && f.blocks > 1) {
      continue;
    }
    const cudaKernel_t k = lib->kernel(f.kernel);
    float* o = out.as<float>();
    const sc::GraphExec g = sc::capture_graph(s, [&](cudaStream_t cs) {
      sc::rtc::launch_shared(k, f.blocks, f.threads, f.shared, cs, o);
    });
    const Timing t = time_gpu([&] { g.launch(s); }, s, a);
    std::vector<double> walls;
    for (int i = 0; i < 2000; ++i) {
      const auto w0 = std::chrono::steady_clock::now();
      g.launch(s);
      STRATA_CUDA_CHECK(cudaStreamSynchronize(s));
      if (i >= 100) {  // warm
        walls.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - w0).count());
      }
    }
    std::sort(walls.begin(), walls.end());
    Json j = dev;
    j.update({{"kind", "launch_floor"},
              {"name", f.name},
              {"blocks", f.blocks},
              {"threads", f.threads},
              {"cluster", f.blocks > 1 ? cluster : 1},
              {"shared_bytes", f.shared},
              {"host_wall_us", walls[walls.size() / 2]}});
    j.update(timing_json(t));
    emit(a, j);
  }
  return 0;
}

/// The ceilings of BENCHMARKS.md: a large device-to-device copy (GB/s counting bytes read and
/// written) and large square GEMMs through cuBLAS in f16, bf16 and f32 (TFLOP/s, 2·m·n·k).
int run_ceilings(const Args& a) {
  namespace sc = strata::cuda;
  const Json dev = device_info();
  const sc::Stream stream = sc::Stream::create();
  const cudaStream_t s = stream.get();
  {
    const std::size_t bytes = std::size_t{1} << 30;  // 1 GiB each way: far beyond the L2
    const sc::DeviceBuffer src(bytes);
    const sc::DeviceBuffer dst(bytes);
    strata_bench::fill_random(src.get(), bytes / sizeof(float), strata_bench::FillType::f32, s);
    const Timing t = time_gpu(
        [&] {
          STRATA_CUDA_CHECK(
              cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, s));
        },
        s, a);
    Json j = dev;
    j.update({{"kind", "ceiling"},
              {"name", "copy_d2d"},
              {"bytes", 2 * bytes},
              {"gb_per_s", 2.0 * static_cast<double>(bytes) / (t.median_us * 1e3)}});
    j.update(timing_json(t));
    emit(a, j);
  }
  cublasHandle_t handle = nullptr;
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
    throw strata::Error("cublasCreate failed");
  }
  struct HandleGuard {
    cublasHandle_t h;
    ~HandleGuard() { (void)cublasDestroy(h); }
  } guard{handle};
  STRATA_CUBLAS_CHECK(cublasSetStream(handle, s));
  // Default math mode: no TF32 for f32 (the f32 cases run without TF32 on both sides).
  STRATA_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
  struct GemmCase {
    const char* name;
    cudaDataType_t type;
    strata_bench::FillType fill;
    std::size_t elem;
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  };
  // gemm_tf32: f32 data on TF32 tensor cores, the ceiling of the f32+tf32 cases.
  for (const GemmCase g : {GemmCase{"gemm_f16", CUDA_R_16F, strata_bench::FillType::f16, 2},
                           GemmCase{"gemm_bf16", CUDA_R_16BF, strata_bench::FillType::bf16, 2},
                           GemmCase{"gemm_f32", CUDA_R_32F, strata_bench::FillType::f32, 4},
                           GemmCase{"gemm_tf32", CUDA_R_32F, strata_bench::FillType::f32, 4,
                                    CUBLAS_COMPUTE_32F_FAST_TF32}}) {
    const int n = 8192;
    const std::size_t elems = static_cast<std::size_t>(n) * n;
    const sc::DeviceBuffer A(elems * g.elem);
    const sc::DeviceBuffer B(elems * g.elem);
    const sc::DeviceBuffer C(elems * g.elem);
    strata_bench::fill_random(A.get(), elems, g.fill, s);
    strata_bench::fill_random(B.get(), elems, g.fill, s);
    const float alpha = 1.0f;
    const float beta = 0.0f;
    const Timing t = time_gpu(
        [&] {
          STRATA_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha,
                                           A.get(), g.type, n, B.get(), g.type, n, &beta, C.get(),
                                           g.type, n, g.compute, CUBLAS_GEMM_DEFAULT));
        },
        s, a);
    const double flops = 2.0 * n * static_cast<double>(n) * n;
    Json j = dev;
    j.update({{"kind", "ceiling"},
              {"name", g.name},
              {"m", n},
              {"n", n},
              {"k", n},
              {"flops", flops},
              {"tflop_per_s", flops / (t.median_us * 1e6)}});
    j.update(timing_json(t));
    emit(a, j);
  }
  return 0;
}

/// `batch` images of U(0, 1) noise, or the tensor "input" of a safetensors file.
std::vector<float> make_input(const Args& a, std::int64_t per_image, int batch) {
  const std::size_t n = static_cast<std::size_t>(per_image) * static_cast<std::size_t>(batch);
  if (!a.input.empty()) {
    const strata::SafetensorsFile f = strata::SafetensorsFile::open(a.input);
    std::vector<float> v = f.to_f32(f.at("input"));
    STRATA_CHECK(v.size() == n, a.input << ": tensor 'input' holds " << v.size()
                                        << " values, batch " << batch << " needs " << n);
    return v;
  }
  std::mt19937_64 rng(input_seed + static_cast<std::uint64_t>(batch));
  std::uniform_real_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) {
    x = dist(rng);
  }
  return v;
}

/// Writes `values` as the f32 tensor `name` of shape `shape` to a safetensors file.
void save_tensor(const std::string& path, const std::string& name, std::vector<std::int64_t> shape,
                 std::span<const float> values) {
  strata::TensorToWrite t;
  t.name = name;
  t.dtype = strata::StDType::f32;
  t.shape = std::move(shape);
  t.data.resize(values.size_bytes());
  std::memcpy(t.data.data(), values.data(), values.size_bytes());
  strata::write_safetensors(path, {t});
}

/// (N, C, H, W), or (N, C) where H = W = 1 (PyTorch's shape after a dense layer).
std::vector<std::int64_t> batch_shape(strata::Shape s, int batch) {
  if (s.h == 1 && s.w == 1) {
    return {batch, s.c};
  }
  return {batch, s.c, s.h, s.w};
}

/// The case's weights: --weights, or random ones from a fixed seed.
template <class Net>
strata::Weights<Net> case_weights(const Args& a) {
  return a.weights.empty() ? strata::Weights<Net>::random(weights_seed)
                           : strata::Weights<Net>::load(a.weights);
}

/// EngineOptions from the command line, for batches up to `batch` (captured at construction).
strata::cuda::EngineOptions case_options(const Args& a, int batch) {
  strata::cuda::EngineOptions opt;
  opt.max_batch = batch;
  opt.tuning = a.measured ? strata::cuda::Tuning::measured : strata::cuda::Tuning::heuristic;
  opt.tuning_cache = a.tuning_cache;
  opt.fused_max_batch = a.fused_max_batch;
  opt.allow_tf32 = a.tf32;
  opt.cudnn_graph_candidates = a.cudnn_graph;
  opt.pdl = a.pdl;
  opt.bottleneck_clusters = a.bneck_clusters;
  opt.concurrent_branches = a.branches;
  opt.plan_check = a.plan_check;
  opt.capture_batches = {batch};
  opt.force = a.force;
  return opt;
}

/// The fields every JSON line of a case starts with (the device's, then the case's).
Json case_json(const Args& a, const CaseInfo& c, strata::DType p, int batch, const char* kind,
               const char* io) {
  Json j = device_info();
  j.update({{"kind", kind},
            {"side", "strata"},
            {"case", c.id},
            {"network", c.network},
            // (tf32: reported as f32 with "tf32": true, as PyTorch's side runs it)
            {"precision", std::string(strata::dtype_name(p == strata::DType::tf32 ? strata::DType::f32 : p))},
            {"engine_precision", std::string(strata::dtype_name(p))},
            {"batch", batch},
            {"tuning", a.measured ? "measured" : "heuristic"},
            {"io", io},
            {"commit", a.commit}});
  if (!a.force.empty()) {  // ops whose variant the command line chose (--force)
    Json f = Json::object();
    for (const auto& [label, v] : a.force) {
      f[label] = strata::cuda::to_string(v);
    }
    j["force"] = f;
  }
  return j;
}

/// `a` with each --force-each expanded into --force: the variant for every op of the per-op
/// path (as the engine folds it by default) whose label contains the text, unless --force names
/// that op; an error where no op's label contains it.
template <class Net, DType P>
Args with_forced_each(const Args& given, int max_batch) {
  Args a = given;
  if (a.force_each.empty()) {
    return a;
  }
  strata::cuda::NetDesc net = strata::cuda::NetStorage<Net, P>::describe();
  strata::cuda::fold_for_per_op_path(net);
  strata::cuda::EngineOptions o;
  o.max_batch = max_batch;
  o.bottleneck_clusters = a.bneck_clusters;
  strata::cuda::join_bottlenecks(net, o);  // (as the engine joins DenseNet's layers)
  for (const auto& [text, v] : a.force_each) {
    int matched = 0;
    for (const strata::cuda::OpDesc& op : net.ops) {
      if (op.label.find(text) != std::string::npos) {
        a.force.emplace(op.label, v);  // (a --force of the same label wins)
        ++matched;
      }
    }
    if (matched == 0) {
      throw strata::Error("--force-each '" + text + "': no op's label contains it");
    }
  }
  return a;
}

/// One case on Strata: build, time forward() and infer(), dump the output, write a JSON line.
template <class Net, DType P>
int run_case(const Args& given, const CaseInfo& c, int batch) {
  namespace sc = strata::cuda;
  using N = std::remove_cvref_t<Net>;
  const Args a = with_forced_each<Net, P>(given, batch);
  constexpr std::int64_t in_numel = N::input_spec.shape.numel();
  constexpr std::int64_t out_numel = N::output_spec.shape.numel();

  const strata::Weights<Net> w = case_weights<Net>(a);
  if (!a.save_weights.empty()) {
    w.save(a.save_weights);
  }
  const std::vector<float> in = make_input(a, in_numel, batch);
  if (!a.save_input.empty()) {
    save_tensor(a.save_input, "input", batch_shape(N::input_spec.shape, batch), in);
  }

  const sc::EngineOptions opt = case_options(a, batch);
  const auto t0 = std::chrono::steady_clock::now();
  auto [engine, memory] = sc::build_and_measure([&] { return sc::Engine<Net, P>(w, opt); });
  const double build_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // GPU time: the input sits in the engine's own device buffer and forward() writes to its own
  // output buffer, as PyTorch's captured graph reads and writes static tensors (no copies).
  if (!a.force.empty() && engine.path(batch) != "per-op") {
    throw strata::Error("--force names per-op variants, and batch " + std::to_string(batch) +
                        " runs the " + engine.path(batch) + " path: add --fused-max-batch 0");
  }
  const sc::Stream stream = sc::Stream::create();
  const cudaStream_t s = stream.get();
  STRATA_CUDA_CHECK(cudaMemcpy(engine.input_buffer(), in.data(), in.size() * sizeof(float),
                               cudaMemcpyHostToDevice));
  const Timing t = time_gpu(
      [&] { engine.forward(engine.input_buffer(), engine.output_buffer(), batch, s); }, s, a);

  // Host wall latency of infer(): host input -> device -> forward -> host output, synchronised.
  std::vector<float> out(static_cast<std::size_t>(out_numel) * static_cast<std::size_t>(batch));
  std::vector<double> walls;
  double wall_total_us = 0.0;
  for (int i = 0; i < 5; ++i) {
    engine.infer(in, out, batch);
  }
  while (walls.size() < 10 || (walls.size() < 2000 && wall_total_us < 300e3)) {
    const auto w0 = std::chrono::steady_clock::now();
    engine.infer(in, out, batch);
    walls.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - w0).count());
    wall_total_us += walls.back();
  }
  std::sort(walls.begin(), walls.end());

  // The output of the same inputs, for the accuracy check against PyTorch.
  engine.infer(in, out, batch);
  const auto nonfinite =
      std::count_if(out.begin(), out.end(), [](float v) { return !std::isfinite(v); });
  if (!a.dump_output.empty()) {
    save_tensor(a.dump_output, "output", batch_shape(N::output_spec.shape, batch), out);
  }

  Json j = case_json(a, c, P, batch, "timing", "engine buffers");
  j.update({{"host_wall_us", walls[walls.size() / 2]},
            {"host_wall_calls", walls.size()},
            {"images_per_s", batch * 1e6 / t.median_us},
            {"flops_per_image", N::flops},
            {"param_count", N::param_count},
            {"input_numel", in_numel},
            {"output_numel", out_numel},
            {"build_s", build_s},
            {"path", engine.path(batch)},
            {"tf32", (a.tf32 && P == strata::DType::f32) || P == strata::DType::tf32},
            {"cudnn_graph", a.cudnn_graph},
            {"pdl", engine.stats().pdl},
            {"pdl_mode", strata::cuda::pdl_name(a.pdl)},
            {"pdl_check_off_us", engine.stats().pdl_check_off_us},
            {"pdl_check_on_us", engine.stats().pdl_check_on_us},
            {"bottleneck_clusters", a.bneck_clusters},
            {"branches", a.branches},
            {"plan_check", a.plan_check},
            {"plan_check_measured_us", engine.stats().plan_check_measured_us},
            {"plan_check_heuristic_us", engine.stats().plan_check_heuristic_us},
            {"plan_kept", engine.stats().plan_kept},
            {"kernels_compile_ms", engine.stats().kernels_compile_ms},
            {"kernels_load_ms", engine.stats().kernels_load_ms},
            {"kernels_from_disk", engine.stats().kernels_from_disk},
            {"fused_compile_ms", engine.stats().fused_compile_ms},
            {"engine_build_ms", engine.stats().build_ms},
            {"tuning_ms", engine.stats().tuning_ms},
            {"programs_compiled", engine.stats().programs_compiled},
            {"programs_compile_ms", engine.stats().programs_compile_ms},
            {"fused_from_disk", engine.stats().fused_from_disk},
            {"nonfinite_outputs", nonfinite},
            {"weights", a.weights.empty() ? a.save_weights : a.weights},
            {"input", a.input.empty() ? a.save_input : a.input},
            {"output", a.dump_output},
            {"status", nonfinite == 0 ? "ok" : "NONFINITE"}});
  j.update(timing_json(t));
  j["memory"] = Json{{"planned_arena_bytes", memory.planned_arena},
                     {"arena_bytes", memory.arena},
                     {"workspace_bytes", memory.workspace},
                     {"weight_bytes", memory.weights},
                     {"device_taken_bytes", memory.device_taken}};
  if (a.profile) {
    const sc::ProfileReport p = sc::profile_layers(engine, batch, std::string(c.network) + " " + std::string(c.id),
                                                   sc::Ceilings{a.ceil_tflops, a.ceil_gbs}, 20);
    p.print(std::cout);
    // What runs each step (the tactic the tuner chose), "label: what" per line.
    const std::string runs = engine.describe(batch);
    std::cout << "What runs each step:\n" << runs;
    std::map<std::string, std::string> tactic;
    std::istringstream lines(runs);
    for (std::string line; std::getline(lines, line);) {
      if (const auto colon = line.find(": "); colon != std::string::npos) {
        tactic[line.substr(0, colon)] = line.substr(colon + 2);
      }
    }
    // Measured tuning's timings per candidate (none under heuristic tuning, or from the cache).
    if (const auto& trials = engine.stats().tuning_trials; !trials.empty()) {
      std::cout << "Measured tuning (us per run of each candidate; - : could not run):\n";
      Json tj = Json::array();
      for (const sc::TuningTrial& trial : trials) {
        std::cout << "  " << std::left << std::setw(36) << trial.op << " " << std::setw(34) << trial.variant
                  << std::right;
        if (trial.us >= 0) {
          std::cout << std::fixed << std::setprecision(1) << std::setw(10) << trial.us;
        } else {
          std::cout << std::setw(10) << "-";
        }
        std::cout << (trial.note.empty() ? "" : "  (" + trial.note + ")") << "\n";
        tj.push_back({{"op", trial.op}, {"variant", trial.variant}, {"us", trial.us}, {"note", trial.note}});
      }
      j["tuning_trials"] = tj;
    }
    memory.print(std::cout);
    Json steps = Json::array();
    for (const sc::LayerProfile& l : p.steps) {
      steps.push_back({{"op", l.label}, {"kind", l.kind}, {"runs", tactic[l.label]}, {"us", l.us}, {"share", l.share},
                       {"flops", l.flops}, {"bytes", l.bytes}, {"tflop_per_s", l.tflops},
                       {"gb_per_s", l.gbs}, {"roofline_fraction", l.roofline}});
    }
    j["profile"] = steps;
    // The fused-network kernel's phases, timed inside the kernel.
    if (const auto phases = engine.fused_phases(batch); !phases.empty()) {
      std::cout << "Inside the fused kernel (SM clock of one thread as image 0 enters each phase;"
                   " a phase includes the wait at the barrier after it):\n";
      Json ph = Json::array();
      for (const auto& [name, us] : phases) {
        std::cout << "  " << std::left << std::setw(44) << name << std::right << std::fixed
                  << std::setprecision(2) << std::setw(9) << us << " us\n";
        ph.push_back({{"phase", name}, {"us", us}});
      }
      j["fused_phases"] = ph;
    }
  }
  emit(a, j);
  return nonfinite == 0 ? 0 : 1;
}

/// The engine options of a streaming case: 8-bit HWC input normalized with ImageNet's mean
/// and deviation on the GPU, two I/O slots.
strata::cuda::EngineOptions stream_options(const Args& a, int batch) {
  namespace sc = strata::cuda;
  sc::EngineOptions opt = case_options(a, batch);
  opt.fused_max_batch = 0;  // the fused-network kernel reads f32 input only
  opt.input = {.format = sc::InputFormat::u8_hwc,
               .scale = 1.0f / 255.0f,
               .mean = {0.485f, 0.456f, 0.406f},
               .stddev = {0.229f, 0.224f, 0.225f}};
  opt.io_slots = 2;
  return opt;
}

/// Distinct batches a streaming case cycles through.
constexpr int stream_distinct = 4;

/// `stream_distinct` batches of random bytes (`per_batch` each) in page-locked memory.
strata::cuda::PinnedBuffer stream_images(std::size_t per_batch) {
  strata::cuda::PinnedBuffer in(per_batch * stream_distinct);
  std::mt19937_64 rng(input_seed);
  for (std::size_t i = 0; i < in.bytes(); ++i) {
    in.as<std::uint8_t>()[i] = static_cast<std::uint8_t>(rng() & 0xffu);
  }
  return in;
}

/// Images/s of `count` batches of `batch` images handed to `enqueue(k)` back to back, then
/// `sync()`: median, min and max of --repeats runs.
template <class Enqueue, class Sync>
std::array<double, 3> stream_rates(const Args& a, int count, int batch, Enqueue&& enqueue,
                                   Sync&& sync) {
  std::vector<double> rates;
  for (int r = 0; r < a.repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < count; ++k) {
      (void)enqueue(k);
    }
    sync();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(count * batch / s);
  }
  std::sort(rates.begin(), rates.end());
  return {rates[rates.size() / 2], rates.front(), rates.back()};
}

/// A streaming case (R2-stream): batches of 8-bit HWC images from page-locked host memory to
/// host results through Engine::enqueue (ImageNet normalization on the GPU), as many batches
/// as fill about --target-ms × 4 per repeat, images/s host to host; next to the same engine's
/// GPU-only throughput (forward() on its own buffers) in the same run.
template <class Net, DType P>
int run_stream(const Args& a, const CaseInfo& c, int batch) {
  namespace sc = strata::cuda;
  using N = std::remove_cvref_t<Net>;
  constexpr std::int64_t in_numel = N::input_spec.shape.numel();
  constexpr std::int64_t out_numel = N::output_spec.shape.numel();
  const strata::Weights<Net> w = case_weights<Net>(a);
  sc::Engine<Net, P> engine(w, stream_options(a, batch));

  const std::size_t in_per_batch = static_cast<std::size_t>(in_numel) * batch;
  const std::size_t out_per_batch = static_cast<std::size_t>(out_numel) * batch;
  const sc::PinnedBuffer in = stream_images(in_per_batch);
  sc::PinnedBuffer out(out_per_batch * stream_distinct * sizeof(float));
  constexpr int distinct = stream_distinct;
  auto enqueue = [&](int k) {
    const int d = k % distinct;
    return engine.enqueue(
        std::span<const std::uint8_t>(in.as<std::uint8_t>() + d * in_per_batch, in_per_batch),
        std::span<float>(out.as<float>() + d * out_per_batch, out_per_batch), batch);
  };

  // GPU only: forward() on the engine's own buffers, the same engine.
  STRATA_CUDA_CHECK(cudaMemcpy(engine.template input_buffer<std::uint8_t>(), in.get(),
                               in_per_batch, cudaMemcpyHostToDevice));
  const Timing t = time_gpu(
      [&] {
        engine.forward(engine.template input_buffer<std::uint8_t>(), engine.output_buffer(), batch,
                       engine.stream());
      },
      engine.stream(), a);

  // Host to host, overlapped: warm up, then repeats of `count` batches back to back.
  for (int k = 0; k < 2 * distinct; ++k) {
    (void)enqueue(k);
  }
  engine.synchronize();
  const int count = std::max(8, static_cast<int>(std::ceil(4 * a.target_ms * 1000.0 / t.median_us)));
  const std::array<double, 3> rates =
      stream_rates(a, count, batch, enqueue, [&] { engine.synchronize(); });
  const double stream_rate = rates[0];
  const double gpu_rate = batch * 1e6 / t.median_us;

  // The streamed output of batch 0 against infer() on the same bytes.
  (void)enqueue(0);
  engine.synchronize();
  std::vector<float> streamed(out.as<float>(), out.as<float>() + out_per_batch);
  std::vector<float> direct(out_per_batch);
  engine.infer(std::span<const std::uint8_t>(in.as<std::uint8_t>(), in_per_batch), direct, batch);
  const double err = strata::relative_error(std::span<const float>(streamed), std::span<const float>(direct));
  const auto nonfinite =
      std::count_if(direct.begin(), direct.end(), [](float v) { return !std::isfinite(v); });
  const bool ok = nonfinite == 0 && err < 1e-6;

  Json j = case_json(a, c, P, batch, "stream",
                     "u8 HWC, pinned host to pinned host, enqueue with 2 I/O slots");
  j.update({{"batches_per_repeat", count},
            {"stream_images_per_s", stream_rate},
            {"stream_images_per_s_min", rates[1]},
            {"stream_images_per_s_max", rates[2]},
            {"gpu_only_images_per_s", gpu_rate},
            {"stream_vs_gpu_only", stream_rate / gpu_rate},
            {"stream_vs_infer_rel_error", err},
            {"nonfinite_outputs", nonfinite},
            {"status", ok ? "ok" : "FAILED"}});
  j.update(timing_json(t));
  emit(a, j);
  return ok ? 0 : 1;
}

/// R2-stream through EnginePool (--gpus N): the same stream of batches handed to a pool of one
/// engine (GPU 0), then to a pool of N engines (GPUs 0..N-1) in turn, one host thread; images/s
/// host to host for each, and their ratio (issue 11's multi-GPU scaling).
template <class Net, DType P>
int run_stream_pool(const Args& a, const CaseInfo& c, int batch) {
  namespace sc = strata::cuda;
  using N = std::remove_cvref_t<Net>;
  constexpr std::int64_t in_numel = N::input_spec.shape.numel();
  constexpr std::int64_t out_numel = N::output_spec.shape.numel();
  int visible = 0;
  STRATA_CUDA_CHECK(cudaGetDeviceCount(&visible));
  if (visible < a.gpus) {
    throw strata::Error("--gpus " + std::to_string(a.gpus) + ": only " + std::to_string(visible) +
                        " CUDA devices are visible");
  }
  const strata::Weights<Net> w = case_weights<Net>(a);
  const std::size_t in_per_batch = static_cast<std::size_t>(in_numel) * batch;
  const std::size_t out_per_batch = static_cast<std::size_t>(out_numel) * batch;
  const sc::PinnedBuffer in = stream_images(in_per_batch);
  sc::PinnedBuffer out(out_per_batch * stream_distinct * sizeof(float));

  // Images/s (median of the repeats, then min and max) of `count` batches through `pool`.
  auto measure = [&](sc::EnginePool<Net, P>& pool, int count) {
    auto enqueue = [&](int k) {
      const int d = k % stream_distinct;
      return pool.enqueue(
          std::span<const std::uint8_t>(in.as<std::uint8_t>() + d * in_per_batch, in_per_batch),
          std::span<float>(out.as<float>() + d * out_per_batch, out_per_batch), batch);
    };
    for (int k = 0; k < 4 * pool.size(); ++k) {
      (void)enqueue(k);
    }
    pool.synchronize();
    return stream_rates(a, count, batch, enqueue, [&] { pool.synchronize(); });
  };

  // One GPU first: it also sizes the run (about 4 × --target-ms per repeat on one GPU).
  std::array<double, 3> one{};
  int count = 0;
  std::vector<float> first(out_per_batch);
  {
    sc::EnginePool<Net, P> pool(w, stream_options(a, batch), {0});
    const double probe = measure(pool, 4)[0];  // images/s
    count = std::max(8, static_cast<int>(std::ceil(4 * a.target_ms * 1e-3 * probe / batch)));
    one = measure(pool, count);
    std::copy_n(out.as<float>(), out_per_batch, first.begin());
  }
  std::vector<int> devices(static_cast<std::size_t>(a.gpus));
  for (int d = 0; d < a.gpus; ++d) {
    devices[static_cast<std::size_t>(d)] = d;
  }
  sc::EnginePool<Net, P> pool(w, stream_options(a, batch), devices);
  // As many batches per GPU as the one-GPU run had: repeats of about the same length.
  const std::array<double, 3> many = measure(pool, count * a.gpus);
  // Every engine's output for the same bytes against GPU 0's, each engine in turn.
  auto nonfinite = [](std::span<const float> v) {
    return static_cast<long long>(
        std::count_if(v.begin(), v.end(), [](float f) { return !std::isfinite(f); }));
  };
  long long bad = nonfinite(first);
  double err = 0.0;
  for (int g = 0; g < pool.size(); ++g) {
    const sc::DeviceGuard guard(pool.device(g));
    (void)pool.engine(g).enqueue(
        std::span<const std::uint8_t>(in.as<std::uint8_t>(), in_per_batch),
        std::span<float>(out.as<float>(), out_per_batch), batch);
    pool.engine(g).synchronize();
    const std::span<const float> got(out.as<float>(), out_per_batch);
    bad += nonfinite(got);
    const double e = strata::relative_error(got, std::span<const float>(first));
    err = std::isnan(e) || e > err ? e : err;
  }
  // Engines alike choose alike (heuristic tuning); 16-bit sums may still differ slightly.
  const bool ok = bad == 0 && err < 1e-3;
  Json j = case_json(a, c, P, batch, "stream_pool",
                     "u8 HWC, pinned host to pinned host, EnginePool::enqueue, 2 I/O slots an engine");
  j.update({{"gpus", a.gpus},
            {"batches_per_repeat_one_gpu", count},
            {"batches_per_repeat_pool", count * a.gpus},
            {"one_gpu_images_per_s", one[0]},
            {"one_gpu_images_per_s_min", one[1]},
            {"one_gpu_images_per_s_max", one[2]},
            {"pool_images_per_s", many[0]},
            {"pool_images_per_s_min", many[1]},
            {"pool_images_per_s_max", many[2]},
            {"scaling", many[0] / one[0]},
            {"pool_vs_gpu0_rel_error", err},
            {"nonfinite_outputs", bad},
            {"status", ok ? "ok" : "FAILED"}});
  emit(a, j);
  return ok ? 0 : 1;
}

template <class Net>
int run_network(const Args& a, const CaseInfo& c, int batch) {
  if (a.precision == "tf32") {  // (the ResNets: TF32 is BENCHMARKS.md's R2 f32+tf32 case)
    if (c.id.ends_with("-stream")) {
      usage("case " + std::string(c.id) + " runs f32, f16 or bf16");
    }
    if constexpr (std::is_same_v<Net, strata::models::MnistCnn>) {
      usage("--precision tf32 runs the ResNet cases (R1, R2, R3)");
    } else {
      return run_case<Net, DType::tf32>(a, c, batch);
    }
  }
  if (c.id.ends_with("-stream") && a.gpus > 0) {
    if (a.precision == "f32") {
      return run_stream_pool<Net, DType::f32>(a, c, batch);
    }
    if (a.precision == "f16") {
      return run_stream_pool<Net, DType::f16>(a, c, batch);
    }
    return run_stream_pool<Net, DType::bf16>(a, c, batch);
  }
  if (c.id.ends_with("-stream")) {
    if (a.precision == "f32") {
      return run_stream<Net, DType::f32>(a, c, batch);
    }
    if (a.precision == "f16") {
      return run_stream<Net, DType::f16>(a, c, batch);
    }
    return run_stream<Net, DType::bf16>(a, c, batch);
  }
  if (a.precision == "f32") {
    return run_case<Net, DType::f32>(a, c, batch);
  }
  if (a.precision == "f16") {
    return run_case<Net, DType::f16>(a, c, batch);
  }
  return run_case<Net, DType::bf16>(a, c, batch);
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  const CaseInfo* c = nullptr;
  for (const CaseInfo& ci : cases) {
    c = ci.id == a.case_id ? &ci : c;
  }
  const bool no_case = a.ceilings || a.launch_floor;
  if (!no_case && c == nullptr) {
    usage("unknown case '" + a.case_id + "' (M1, M2, R1, R2, R3, R2-stream, MV2, EB0 or D121)");
  }
  const int batch = no_case ? 0 : (a.batch > 0 ? a.batch : c->batch);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device\n");
    return 77;
  }
  try {
    if (a.launch_floor) {
      return run_launch_floor(a);
    }
    if (a.ceilings) {
      return run_ceilings(a);
    }
    if (c->network == "mnist_cnn") {
      return run_network<strata::models::MnistCnn>(a, *c, batch);
    }
    if (c->network == "resnet18") {
      return run_network<strata::models::ResNet18>(a, *c, batch);
    }
    if (c->network == "mobilenet_v2" || c->network == "efficientnet_b0" ||
        c->network == "densenet121") {
      if (a.precision != "f16") {
        usage("case " + a.case_id + " runs in f16 only");
      }
      if (c->network == "mobilenet_v2") {
        return run_case<strata::models::MobileNetV2, DType::f16>(a, *c, batch);
      }
      if (c->network == "efficientnet_b0") {
        return run_case<strata::models::EfficientNetB0, DType::f16>(a, *c, batch);
      }
      return run_case<strata::models::DenseNet121, DType::f16>(a, *c, batch);
    }
    return run_network<strata::models::ResNet50>(a, *c, batch);
  } catch (const std::exception& e) {
    std::cerr << "strata_bench: " << e.what() << "\n";
    try {
      Json j{{"kind", a.ceilings ? "ceiling" : a.launch_floor ? "launch_floor" : "timing"},
             {"side", "strata"},
             {"case", no_case ? "" : std::string(c->id)},
             // (as the timing line writes them: tf32 as f32 with "tf32": true)
             {"precision", a.precision == "tf32" ? std::string("f32") : a.precision},
             {"engine_precision", a.precision},
             {"tf32", a.tf32 || a.precision == "tf32"},
             {"batch", batch},
             {"status", "ERROR"},
             {"error", e.what()},
             {"commit", a.commit}};
      emit(a, j);
    } catch (const std::exception&) {
      // The error is already on stderr.
    }
    return 1;
  }
}
