// Runs a small network on the GPU with an installed Strata's CUDA engine and compares it with
// the CPU reference. Prints SKIPPED (and succeeds) where there is no CUDA device.
#include <strata/cuda.hpp>

#include <cmath>
#include <iostream>
#include <vector>

using namespace strata;

constexpr auto net = input<3, 16, 16> | conv<16, 3, ConvOpts{.padding = 1}> | batch_norm | relu |
                     max_pool<2> | conv<8, 1> | relu | flatten | dense<5> | softmax;
using Net = decltype(net);

int main() {
  if (!cuda::device_available()) {
    std::cout << "SKIPPED: the consumer built against strata::cuda; no CUDA device to run it\n";
    return 0;
  }
  const auto w = Weights<Net>::random(3);
  constexpr int batch = 3;
  std::vector<float> in(batch * 3 * 16 * 16);
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i] = std::sin(0.37f * static_cast<float>(i));
  }
  std::vector<float> ref(batch * 5);
  std::vector<float> out(batch * 5);
  CpuEngine<Net>(w, batch).forward(in, ref, batch);
  cuda::Engine<Net, DType::f16> gpu(w, {.max_batch = batch});
  gpu.infer(in, out, batch);
  const double err = relative_error(out, ref);
  std::cout << "consumer_cuda: " << cuda::device_name() << ", f16 vs CPU relative error " << err
            << ", kernels " << (gpu.stats().kernels_from_disk ? "read from the cache" : "compiled")
            << " in " << gpu.stats().kernels_compile_ms << " ms\n";
  return err < 1e-2 ? 0 : 1;
}
