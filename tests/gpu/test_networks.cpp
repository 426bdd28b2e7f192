// The canonical networks on the GPU against the CPU reference: MNIST CNN and ResNet-18, in
// f32, f16 and bf16, at batch sizes 1, 3, 17 and the maximum.
#include "gpu_test.hpp"
#include "strata/models/mnist_cnn.hpp"
#include "strata/models/resnet.hpp"

TEST_CASE("MNIST CNN against the CPU reference") {
  strata_test::check_all_precisions<strata::models::MnistCnn>(64, {1, 3, 17, 64}, "mnist_cnn", 21);
}

TEST_CASE("ResNet-18 against the CPU reference") {
  strata_test::check_all_precisions<strata::models::ResNet18>(18, {1, 3, 17, 18}, "resnet18", 22);
}
