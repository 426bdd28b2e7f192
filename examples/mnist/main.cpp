// The MNIST example: declare the canonical CNN in Strata's DSL, load trained weights (PyTorch
// safetensors) and 2,000 real test digits (IDX), and report accuracy, per-class accuracy, agreement
// with PyTorch's own predictions, and speed. Runs on the GPU when one is present (when built with
// CUDA), otherwise on the CPU reference.
//
//   mnist [--images F] [--labels F] [--weights F] [--reference F] [--cpu] [--precision f32|f16]
//         [--batch N] [--min-accuracy A] [--min-agreement A] [--require-gpu]
// --require-gpu: exit 77 ("skipped") when no GPU can be used, for the GPU-labelled test.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <strata/strata.hpp>

#include "idx.hpp"
#if defined(STRATA_EXAMPLE_CUDA)
#include <strata/cuda/device.hpp>
#include <strata/cuda/engine.hpp>
#endif

using namespace strata;

// The network, top to bottom, as the nn.Sequential in train.py.
constexpr auto mnist_cnn = input<1, 28, 28>
    | conv<32, 3, ConvOpts{.padding = 1}> | batch_norm | relu | max_pool<2>
    | conv<64, 3, ConvOpts{.padding = 1}> | batch_norm | relu | max_pool<2>
    | flatten | dense<128> | relu | dense<10> | softmax;
using Net = std::remove_cv_t<decltype(mnist_cnn)>;

namespace {

struct Options {
  std::string dir = STRATA_MNIST_DIR;
  std::string images = dir + "/data/test-images-idx3-ubyte";
  std::string labels = dir + "/data/test-labels-idx1-ubyte";
  std::string weights = dir + "/mnist_cnn.safetensors";
  std::string reference = dir + "/data/pytorch_reference.txt";
  bool cpu = false;
  bool require_gpu = false;
  std::string precision = "f32";
  int batch = 500;
  double min_accuracy = 0.0;
  double min_agreement = 0.0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        throw Error("option " + a + " needs a value");
      }
      return argv[++i];
    };
    if (a == "--images") {
      o.images = value();
      o.reference.clear();  // PyTorch's predictions belong to the shipped test set only
    } else if (a == "--labels") {
      o.labels = value();
    } else if (a == "--weights") {
      o.weights = value();
    } else if (a == "--reference") {
      o.reference = value();
    } else if (a == "--cpu") {
      o.cpu = true;
    } else if (a == "--require-gpu") {
      o.require_gpu = true;
    } else if (a == "--precision") {
      o.precision = value();
    } else if (a == "--batch") {
      o.batch = std::stoi(value());
    } else if (a == "--min-accuracy") {
      o.min_accuracy = std::stod(value());
    } else if (a == "--min-agreement") {
      o.min_agreement = std::stod(value());
    } else if (a == "--help" || a == "-h") {
      std::cout << "usage: mnist [--images F] [--labels F] [--weights F] [--reference F] [--cpu]\n"
                   "             [--precision f32|f16] [--batch N] [--min-accuracy A] "
                   "[--min-agreement A]\n";
      std::exit(0);
    } else {
      throw Error("unknown option " + a + " (see --help)");
    }
  }
  if (o.precision != "f32" && o.precision != "f16") {
    throw Error("--precision must be f32 or f16, not " + o.precision);
  }
  return o;
}

/// PyTorch's accuracy and predicted classes, as train.py wrote them.
bool read_reference(const std::string& path, double& accuracy, std::vector<int>& predicted) {
  std::ifstream f(path);
  if (!f) {
    return false;
  }
  std::string word;
  f >> word >> accuracy;
  int c = 0;
  while (f >> c) {
    predicted.push_back(c);
  }
  return word == "accuracy";
}

int argmax(const float* p, int n) { return static_cast<int>(std::max_element(p, p + n) - p); }

}  // namespace

int main(int argc, char** argv) try {
  const Options opt = parse(argc, argv);
#if defined(STRATA_EXAMPLE_CUDA)
  const bool gpu_usable = !opt.cpu && cuda::device_available();
#else
  const bool gpu_usable = false;
#endif
  if (opt.require_gpu && !gpu_usable) {
    std::cout << "SKIPPED: no CUDA device (or built without CUDA)\n";
    return 77;
  }
  Net::summary();

  const auto images = mnist::read_idx_images(opt.images);
  const auto labels = mnist::read_idx_labels(opt.labels);
  if (images.rows != 28 || images.cols != 28) {
    throw Error(opt.images + ": images are " + std::to_string(images.rows) + "x" +
                std::to_string(images.cols) + ", the network takes 28x28");
  }
  if (static_cast<int>(labels.size()) != images.count) {
    throw Error(opt.labels + ": " + std::to_string(labels.size()) + " labels for " +
                std::to_string(images.count) + " images");
  }
  const int count = images.count;
  if (count == 0) {
    throw Error(opt.images + ": holds no images");
  }
  std::vector<float> x(static_cast<std::size_t>(count) * 784);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(images.pixels[i]) / 255.0f;  // as train.py: pixel / 255
  }
  const auto weights = Weights<Net>::load(opt.weights);
  const int batch = std::clamp(opt.batch, 1, count);
  std::vector<float> probs(static_cast<std::size_t>(count) * 10);

  std::string backend;
  std::string build_line;  // how the CUDA engine was built, when it ran
  double seconds = 0.0;
  auto run_all = [&](auto&& forward) {
    forward(0, std::min(batch, count));  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < count; i += batch) {
      forward(i, std::min(batch, count - i));
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  bool ran = false;
#if defined(STRATA_EXAMPLE_CUDA)
  if (gpu_usable) {
    auto go = [&]<DType P>() {
      cuda::Engine<Net, P> engine(weights, cuda::EngineOptions{.max_batch = batch});
      backend = std::string("CUDA engine on ") + cuda::device_name() + ", " +
                std::string(dtype_name(P));
      const cuda::EngineStats& st = engine.stats();
      std::ostringstream built;
      built << std::fixed << std::setprecision(0) << "Engine built in " << st.build_ms
            << " ms: " << st.programs_compiled << " kernel programs compiled by NVRTC ("
            << st.programs_compile_ms << " ms, summed), tactics chosen in " << st.tuning_ms
            << " ms" << (st.programs_compiled == 0 ? " (kernels from the disk cache)" : "");
      build_line = built.str();
      run_all([&](int first, int n) {
        engine.infer(std::span<const float>(x).subspan(static_cast<std::size_t>(first) * 784,
                                                       static_cast<std::size_t>(n) * 784),
                     std::span<float>(probs).subspan(static_cast<std::size_t>(first) * 10,
                                                     static_cast<std::size_t>(n) * 10),
                     n);
      });
    };
    if (opt.precision == "f16") {
      go.template operator()<DType::f16>();
    } else {
      go.template operator()<DType::f32>();
    }
    ran = true;
  } else if (!opt.cpu) {
    std::cout << "No CUDA device found: running on the CPU reference backend.\n";
  }
#else
  if (!opt.cpu) {
    std::cout << "Built without CUDA: running on the CPU reference backend (f32).\n";
  }
#endif
  if (!ran) {
    CpuEngine<Net> engine(weights, batch);
    backend = "CPU reference, f32";
    run_all([&](int first, int n) {
      engine.forward(std::span<const float>(x).subspan(static_cast<std::size_t>(first) * 784,
                                                       static_cast<std::size_t>(n) * 784),
                     std::span<float>(probs).subspan(static_cast<std::size_t>(first) * 10,
                                                     static_cast<std::size_t>(n) * 10),
                     n);
    });
  }

  int correct = 0;
  int per_class_total[10]{};
  int per_class_correct[10]{};
  std::vector<int> predicted(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    predicted[static_cast<std::size_t>(i)] = argmax(&probs[static_cast<std::size_t>(i) * 10], 10);
    const int label = labels[static_cast<std::size_t>(i)];
    if (label > 9) {
      throw Error(opt.labels + ": label " + std::to_string(label) + " at " + std::to_string(i));
    }
    ++per_class_total[label];
    if (predicted[static_cast<std::size_t>(i)] == label) {
      ++correct;
      ++per_class_correct[label];
    }
  }
  const double accuracy = static_cast<double>(correct) / count;

  std::cout << "\nBackend: " << backend << "\n"
            << (build_line.empty() ? "" : build_line + "\n")
            << "Test images: " << count << " (" << opt.images << ")\n\n"
            << "class  images  correct  accuracy\n";
  for (int c = 0; c < 10; ++c) {
    std::cout << std::setw(5) << c << std::setw(8) << per_class_total[c] << std::setw(9)
              << per_class_correct[c] << std::setw(9) << std::fixed << std::setprecision(2)
              << (per_class_total[c] ? 100.0 * per_class_correct[c] / per_class_total[c] : 0.0)
              << "%\n";
  }
  std::cout << "\nAccuracy: " << std::setprecision(2) << 100.0 * accuracy << "% (" << correct
            << "/" << count << ")\n";

  double agreement = -1.0;
  double torch_accuracy = 0.0;
  std::vector<int> reference;
  if (!opt.reference.empty() && read_reference(opt.reference, torch_accuracy, reference) &&
      static_cast<int>(reference.size()) == count) {
    int same = 0;
    for (int i = 0; i < count; ++i) {
      same += reference[static_cast<std::size_t>(i)] == predicted[static_cast<std::size_t>(i)];
    }
    agreement = static_cast<double>(same) / count;
    std::cout << "PyTorch's accuracy on the same digits: " << 100.0 * torch_accuracy
              << "%; same predicted class as PyTorch: " << same << "/" << count << " ("
              << 100.0 * agreement << "%)\n";
  }
  std::cout << "Time: " << std::setprecision(3) << 1e6 * seconds / count << " us per image, "
            << std::setprecision(0) << count / seconds << " images/s (batches of " << batch
            << ", host wall clock, input to output)\n";

  if (accuracy < opt.min_accuracy) {
    std::cerr << "FAIL: accuracy " << accuracy << " is below " << opt.min_accuracy << "\n";
    return 1;
  }
  if (opt.min_agreement > 0.0 && agreement < opt.min_agreement) {
    std::cerr << "FAIL: agreement with PyTorch " << agreement << " is below " << opt.min_agreement
              << (agreement < 0 ? " (no reference file)" : "") << "\n";
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "mnist: " << e.what() << "\n";
  return 2;
}
