// The canonical networks on the GPU against the CPU reference: MNIST CNN and ResNet-18, in
// f32, f16 and bf16, at batch sizes 1, 3, 17 and the maximum.
#include <sstream>

#include "gpu_test.hpp"
#include "strata/models/mnist_cnn.hpp"
#include "strata/models/resnet.hpp"

TEST_CASE("MNIST CNN against the CPU reference") {
  strata_test::check_all_precisions<strata::models::MnistCnn>(64, {1, 3, 17, 64}, "mnist_cnn", 21);
}

TEST_CASE("ResNet-18 against the CPU reference") {
  strata_test::check_all_precisions<strata::models::ResNet18>(18, {1, 3, 17, 18}, "resnet18", 22);
}

TEST_CASE("ResNet-18 in f32 with TF32 tensor cores allowed, against the CPU reference") {
  using Net = strata::models::ResNet18;
  constexpr int kMax = 17;
  const auto w = strata::Weights<Net>::random(23);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(kMax * Net::input_spec.shape.numel()), 123);
  const auto ref = strata_test::cpu_reference<Net>(w, in, kMax);
  strata::cuda::EngineOptions opt;
  opt.max_batch = kMax;
  opt.allow_tf32 = true;
  strata::cuda::Engine<Net, strata::DType::f32> tf32(w, opt);
  // Every convolution and the classifier may use TF32 (10-bit mantissa inputs, f32
  // accumulation): a bound of 1e-2 over 18 layers, where f32 proper holds 1e-4.
  const std::string runs = tf32.describe(kMax);
  INFO(runs);
  CHECK(runs.find("(TF32 allowed)") != std::string::npos);
  CHECK(runs.find("TF32)") != std::string::npos);  // the dense layer through cuBLASLt
  const std::size_t out_n = static_cast<std::size_t>(Net::output_spec.shape.numel());
  for (int b : {1, 3, kMax}) {
    std::vector<float> out(static_cast<std::size_t>(b) * out_n,
                           std::numeric_limits<float>::quiet_NaN());
    tf32.infer(in, out, b);
    const double err = strata_test::rel_error(out, ref, out.size());
    MESSAGE("resnet18 f32+tf32 batch " << b << ": rel. error " << err);
    CHECK(err < 1e-2);
  }
  // The tf32 engine: the same arithmetic over NHWC storage, within the same bound, and every
  // conv and the classifier on TF32 (cuDNN with tensor-op math allowed, cuBLASLt's TF32).
  strata::cuda::EngineOptions o32{.max_batch = kMax};
  strata::cuda::Engine<Net, strata::DType::tf32> nhwc(w, o32);
  const std::string nruns = nhwc.describe(kMax);
  INFO(nruns);
  std::ostringstream sum;
  nhwc.summary(sum, 1);
  CHECK(sum.str().find("activations stored NHWC") != std::string::npos);
  CHECK(sum.str().find("may use TF32 tensor cores") != std::string::npos);
  CHECK(nruns.find("TF32") != std::string::npos);
  for (int b : {1, 3, kMax}) {
    std::vector<float> a(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> c(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
    nhwc.infer(in, a, b);
    tf32.infer(in, c, b);
    const double err = strata_test::rel_error(a, ref, a.size());
    MESSAGE("resnet18 tf32 (NHWC) batch " << b << ": rel. error " << err << ", against f32+tf32 (NCHW) "
                                          << strata_test::rel_error(a, c, a.size()));
    CHECK(err < 1e-2);
  }
  // Without the option, f32 means f32: no TF32 anywhere.
  opt.allow_tf32 = false;
  opt.max_batch = 1;
  CHECK(strata::cuda::Engine<Net, strata::DType::f32>(w, opt).describe(1).find("TF32") ==
        std::string::npos);
}
