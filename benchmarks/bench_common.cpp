// strata_bench's non-template parts (bench.hpp declares them).
#include <cublas_v2.h>
#include <dlfcn.h>

#include "bench.hpp"

namespace strata_bench {

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "strata_bench: " << problem << "\n"
            << "usage: strata_bench --case M1|M2|R1|R2|R3|R2-stream|MV2|EB0|D121|UN --precision f32|f16|bf16|tf32 [--batch N]\n"
               "         [--weights F | --save-weights F] [--input F | --save-input F]\n"
               "         [--dump-output F] [--out-json F] [--commit SHA]\n"
               "         [--tuning heuristic|measured] [--tuning-cache F] [--repeats R] [--iters N]\n"
               "         [--fused-max-batch N] [--fused-hold] [--fused-cluster N] [--fused-mbarrier] [--fused-tiled] [--tf32] [--cudnn-graph] [--pdl|--no-pdl] [--bottleneck-clusters] [--no-block-clusters] [--no-tail-sums] [--stem-joins] [--branches]\n"
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
    } else if (k == "--tail-sums") {  // (the default since session 65)
      a.tail_sums = true;
    } else if (k == "--no-tail-sums") {
      a.tail_sums = false;
    } else if (k == "--stem-joins") {
      a.stem_joins = true;
    } else if (k == "--no-block-clusters") {
      a.block_clusters = false;
    } else if (k == "--branches") {
      a.branches = true;
    } else if (k == "--plan-check") {
      a.plan_check = true;
    } else if (k == "--fused-max-batch") {
      a.fused_max_batch = number(i);
    } else if (k == "--fused-hold") {
      a.fused_hold = true;
    } else if (k == "--fused-cluster") {
      a.fused_cluster = number(i);
    } else if (k == "--fused-mbarrier") {
      a.fused_mbarrier = true;
    } else if (k == "--fused-tiled") {
      a.fused_tiled = true;
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

namespace {

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

}  // namespace

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
  // Median host wall of `launch` + synchronize, µs, over 1,900 calls after 100 warm ones.
  const auto median_host_wall = [s](const auto& launch) {
    std::vector<double> walls;
    for (int i = 0; i < 2000; ++i) {
      const auto w0 = std::chrono::steady_clock::now();
      launch();
      STRATA_CUDA_CHECK(cudaStreamSynchronize(s));
      if (i >= 100) {  // warm
        walls.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - w0).count());
      }
    }
    std::sort(walls.begin(), walls.end());
    return walls[walls.size() / 2];
  };
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
    const auto graph = [&] { g.launch(s); };
    const Timing t = time_gpu(graph, s, a);
    // The same kernel launched directly (no graph): GPU time per launch back to back, and the
    // host wall of launch + synchronize — whether a one-kernel forward (the fused path) would
    // do better without its graph.
    const auto direct = [&] { sc::rtc::launch_shared(k, f.blocks, f.threads, f.shared, s, o); };
    const Timing td = time_gpu(direct, s, a);
    Json j = dev;
    j.update({{"kind", "launch_floor"},
              {"name", f.name},
              {"blocks", f.blocks},
              {"threads", f.threads},
              {"cluster", f.blocks > 1 ? cluster : 1},
              {"shared_bytes", f.shared},
              {"host_wall_us", median_host_wall(graph)},
              {"direct_median_us", td.median_us},
              {"direct_host_wall_us", median_host_wall(direct)}});
    j.update(timing_json(t));
    emit(a, j);
  }
  if (!clusters) {
    return 0;
  }
  // What a cluster barrier costs by cluster size and block size (the fused kernel's choices,
  // EngineOptions::fused_cluster): clusters of 1, 2, 4, 8 and 16 blocks (16 where allowed) of
  // 1,024 threads, and of 256, each kernel with the four barriers.
  std::ostringstream o;
  const std::vector<int> sizes{1, 2, 4, 8, 16};
  for (const int n : sizes) {
    o << "extern \"C\" __global__ void __cluster_dims__(" << n << ", 1, 1) __launch_bounds__("
      << sc::fused_threads << ") floor_c" << n << "(float* out) {\n"
      << "  for (int i = 0; i < 4; ++i) {\n"
      << "    asm volatile(\"barrier.cluster.arrive.release.aligned;\\n\\tbarrier.cluster.wait.acquire.aligned;\" ::: \"memory\");\n"
      << "  }\n"
      << "  if (threadIdx.x == 0 && blockIdx.x == 0 && out != nullptr) *out = 1.0f;\n}\n";
  }
  std::vector<std::string> sized;
  for (const int n : sizes) {
    sized.push_back("floor_c" + std::to_string(n));
  }
  const sc::rtc::Library by_size(
      sc::rtc::compile(o.str(), "strata_launch_floor_sizes", sized, sc::rtc::current_arch()), sized);
  for (const int n : sizes) {
    const cudaKernel_t k = by_size.kernel("floor_c" + std::to_string(n));
    if (n > sc::fused_cluster_portable &&
        cudaKernelSetAttributeForDevice(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1,
                                        device) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    for (const unsigned threads : {static_cast<unsigned>(sc::fused_threads), 256u}) {
      float* po = out.as<float>();
      const sc::GraphExec g = sc::capture_graph(s, [&](cudaStream_t cs) {
        sc::rtc::launch_shared(k, static_cast<unsigned>(n), threads, 0, cs, po);
      });
      const Timing t = time_gpu([&] { g.launch(s); }, s, a);
      Json j = dev;
      j.update({{"kind", "launch_floor"},
                {"name", "cluster" + std::to_string(n) + "_4_barriers_" + std::to_string(threads) +
                             "_threads"},
                {"blocks", n},
                {"threads", threads},
                {"cluster", n},
                {"shared_bytes", 0}});
      j.update(timing_json(t));
      emit(a, j);
    }
  }
  return 0;
}

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

std::vector<std::int64_t> batch_shape(strata::Shape s, int batch) {
  if (s.h == 1 && s.w == 1) {
    return {batch, s.c};
  }
  return {batch, s.c, s.h, s.w};
}

strata::cuda::EngineOptions case_options(const Args& a, int batch) {
  strata::cuda::EngineOptions opt;
  opt.max_batch = batch;
  opt.tuning = a.measured ? strata::cuda::Tuning::measured : strata::cuda::Tuning::heuristic;
  opt.tuning_cache = a.tuning_cache;
  opt.fused_max_batch = a.fused_max_batch;
  opt.fused_hold = a.fused_hold;
  opt.fused_cluster = a.fused_cluster;
  opt.fused_mbarrier_sync = a.fused_mbarrier;
  opt.fused_tiled = a.fused_tiled;
  opt.allow_tf32 = a.tf32;
  opt.cudnn_graph_candidates = a.cudnn_graph;
  opt.pdl = a.pdl;
  opt.bottleneck_clusters = a.bneck_clusters;
  opt.tail_sums = a.tail_sums;
  opt.stem_joins = a.stem_joins;
  opt.block_clusters = a.block_clusters;
  opt.concurrent_branches = a.branches;
  opt.plan_check = a.plan_check;
  opt.capture_batches = {batch};
  opt.force = a.force;
  return opt;
}

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

strata::cuda::PinnedBuffer stream_images(std::size_t per_batch) {
  strata::cuda::PinnedBuffer in(per_batch * stream_distinct);
  std::mt19937_64 rng(input_seed);
  for (std::size_t i = 0; i < in.bytes(); ++i) {
    in.as<std::uint8_t>()[i] = static_cast<std::uint8_t>(rng() & 0xffu);
  }
  return in;
}

}  // namespace strata_bench
