// The GPU tests' main: without a CUDA device every test reports "SKIPPED: no CUDA device" and
// the binary exits with 77, which CTest counts as skipped (SKIP_RETURN_CODE).
//
// A watchdog names a test case that runs past STRATA_GPU_TEST_CASE_TIMEOUT_S seconds (default
// 1800, 600 under STRATA_GPU_TEST_QUICK=1; 0 turns it off) and ends the process with 124: a kernel
// that never returns otherwise leaves the binary waiting until whatever runs it kills it, with
// nothing said about where (session 41: a halo_conv kernel spun in measured tuning).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace {

/// The test case now running and when it started (set by the listener below, read by the
/// watchdog's thread).
struct Running {
  std::mutex m;
  std::string name;
  std::chrono::steady_clock::time_point since{};
  bool active = false;
};
Running& running() {
  static Running r;
  return r;
}

struct CaseListener final : doctest::IReporter {
  explicit CaseListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData& tc) override {
    const std::lock_guard<std::mutex> lock(running().m);
    running().name = tc.m_name;
    running().since = std::chrono::steady_clock::now();
    running().active = true;
  }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {
    const std::lock_guard<std::mutex> lock(running().m);
    running().active = false;
  }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("strata_case_watchdog", 1, CaseListener);

/// Seconds a test case may run: STRATA_GPU_TEST_CASE_TIMEOUT_S, else 1800 (600 for a quick run).
int case_timeout_s() {
  if (const char* t = std::getenv("STRATA_GPU_TEST_CASE_TIMEOUT_S"); t != nullptr && *t != '\0') {
    return std::atoi(t);
  }
  const char* q = std::getenv("STRATA_GPU_TEST_QUICK");
  return q != nullptr && std::string(q) == "1" ? 600 : 1800;
}

void start_watchdog(int limit_s) {
  std::thread([limit_s] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const std::lock_guard<std::mutex> lock(running().m);
      if (!running().active) {
        continue;
      }
      const auto ran = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                         running().since).count();
      if (ran >= limit_s) {
        std::fflush(stdout);
        std::fprintf(stderr,
                     "\nstrata GPU tests: test case \"%s\" has run for %lld s, past "
                     "STRATA_GPU_TEST_CASE_TIMEOUT_S=%d: presumed hung (a kernel that does not "
                     "return?). Run it alone with STRATA_TUNING_TRACE=1, or attach cuda-gdb and "
                     "ask 'info cuda kernels'.\n",
                     running().name.c_str(), static_cast<long long>(ran), limit_s);
        std::fflush(stderr);
        std::_Exit(124);
      }
    }
  }).detach();
}

}  // namespace

int main(int argc, char** argv) {
  int count = 0;
  const cudaError_t st = cudaGetDeviceCount(&count);
  if (st != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n",
                st != cudaSuccess ? cudaGetErrorString(st) : "0 devices");
    return 77;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    std::printf("GPU: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  }
  if (const int limit = case_timeout_s(); limit > 0) {
    start_watchdog(limit);
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
