// Time per forward of the canonical networks (not a test): GPU time per forward from CUDA
// events around graph replays (median of 7 runs), and host wall latency of infer() at batch 1.
// Usage: strata_gpu_bench [quick]
#define DOCTEST_CONFIG_DISABLE  // uses the test helpers, not the test runner
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gpu_test.hpp"
#include "strata/models/mnist_cnn.hpp"
#include "strata/models/resnet.hpp"

namespace {

using namespace strata;

template <class Net, DType P>
void bench(const char* name, int batch, int iters) {
  using N = std::remove_cvref_t<Net>;
  const auto w = Weights<Net>::random(1);
  cuda::Engine<Net, P> e(w, {.max_batch = batch, .tuning = cuda::Tuning::measured,
                             .capture_batches = {batch}});
  const auto in = strata_test::random_floats(static_cast<std::size_t>(batch * N::input_spec.shape.numel()), 2);
  std::vector<float> out(static_cast<std::size_t>(batch * N::output_spec.shape.numel()));
  e.infer(in, out, batch);  // puts the input into the engine's device buffer
  cudaStream_t s = e.stream();
  cuda::Event start = cuda::Event::create();
  cuda::Event stop = cuda::Event::create();
  for (int i = 0; i < 10; ++i) {
    e.forward(e.input_buffer(), e.output_buffer(), batch, s);
  }
  std::vector<float> runs;
  for (int r = 0; r < 7; ++r) {
    start.record(s);
    for (int i = 0; i < iters; ++i) {
      e.forward(e.input_buffer(), e.output_buffer(), batch, s);
    }
    stop.record(s);
    stop.synchronize();
    runs.push_back(stop.elapsed_ms_since(start) * 1000.0f / static_cast<float>(iters));
  }
  std::sort(runs.begin(), runs.end());
  double wall_us = 0.0;
  if (batch == 1) {
    std::vector<double> walls;
    for (int i = 0; i < 200; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      e.infer(in, out, batch);
      walls.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(walls.begin(), walls.end());
    wall_us = walls[walls.size() / 2];
  }
  std::printf("BENCH %-10s %-5s batch %5d : %10.1f us/forward (GPU, median of 7; min %.1f max %.1f)  %9.0f img/s  host wall %s%.1f us\n",
              name, std::string(dtype_name(P)).c_str(), batch, runs[3], runs.front(), runs.back(),
              batch * 1e6 / runs[3], batch == 1 ? "" : "n/a ", wall_us);
  if (std::getenv("STRATA_PROFILE") != nullptr) {
    for (const auto& [label, us] : e.profile(batch, batch >= 256 ? 10 : 100)) {
      std::printf("PROFILE %s %s b%d  %-40s %9.1f us\n", name, std::string(dtype_name(P)).c_str(),
                  batch, label.c_str(), us);
    }
    std::printf("DESCRIBE %s %s b%d\n%s", name, std::string(dtype_name(P)).c_str(), batch,
                e.describe(batch).c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device\n");
    return 77;
  }
  const bool quick = argc > 1 && std::strcmp(argv[1], "quick") == 0;
  try {
    bench<models::MnistCnn, DType::f32>("mnist_cnn", 1, 2000);
    bench<models::MnistCnn, DType::f16>("mnist_cnn", 1, 2000);
    bench<models::MnistCnn, DType::f16>("mnist_cnn", 4096, 50);
    bench<models::MnistCnn, DType::f32>("mnist_cnn", 4096, 50);
    bench<models::ResNet18, DType::f16>("resnet18", 1, 200);
    bench<models::ResNet18, DType::f16>("resnet18", 256, 10);
    if (!quick) {
      bench<models::ResNet18, DType::f32>("resnet18", 1, 200);
      bench<models::ResNet18, DType::f32>("resnet18", 256, 5);
    }
  } catch (const std::exception& ex) {
    std::printf("bench failed: %s\n", ex.what());
    return 1;
  }
  return 0;
}
