// Conformance with PyTorch: each fixture (tests/fixtures, written by make_fixtures.py with
// PyTorch) holds a module's state_dict, an input and PyTorch's output; the same network declared
// in the DSL, loaded from that state_dict and run on the CPU reference must match it to a
// relative error below 1e-5.
#include <strata/models/mnist_cnn.hpp>
#include <strata/models/resnet.hpp>

#include "unit/conformance.hpp"

using namespace strata;
using strata::testing::run_case;

namespace {

#define STRATA_CONFORMANCE(name, ...)                       \
  TEST_CASE("matches PyTorch: " name) {                     \
    using Net = std::remove_cv_t<decltype(__VA_ARGS__)>;    \
    const double err = run_case<Net>(name);                 \
    INFO("relative error " << err);                         \
    CHECK(err < 1e-5);                                      \
  }

}  // namespace

STRATA_CONFORMANCE("conv_basic", input<3, 9, 11> | conv<8, 3, ConvOpts{.padding = 1}>)
STRATA_CONFORMANCE("conv_stride2", input<4, 10, 9> | conv<6, 3, ConvOpts{.stride = 2, .padding = 1}>)
STRATA_CONFORMANCE("conv_dilation2", input<3, 12, 12> | conv<5, 3, ConvOpts{.padding = 2, .dilation = 2}>)
STRATA_CONFORMANCE("conv_groups",
                   input<8, 7, 7> | conv<12, 3, ConvOpts{.padding = 1, .groups = 4, .bias = false}>)
STRATA_CONFORMANCE("conv_depthwise",
                   input<6, 9, 9> | conv<6, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 6}>)
STRATA_CONFORMANCE("conv_rect",
                   input<3, 8, 10> | conv<4, HW{3, 5}, ConvOpts{.stride = HW{1, 2}, .padding = HW{1, 2}}>)
STRATA_CONFORMANCE("conv_bn_relu", input<3, 6, 6> | conv<8, 3, ConvOpts{.padding = 1}> | batch_norm | relu)
STRATA_CONFORMANCE("batch_norm", input<5, 6, 6> | batch_norm_eps<1e-3f>)
STRATA_CONFORMANCE("act_relu", input<4, 5, 5> | relu)
STRATA_CONFORMANCE("act_leaky_relu", input<4, 5, 5> | leaky_relu<0.2f>)
STRATA_CONFORMANCE("act_relu6", input<4, 5, 5> | relu6)
STRATA_CONFORMANCE("act_clip", input<4, 5, 5> | clip<-0.5f, 2.0f>)
STRATA_CONFORMANCE("act_sigmoid", input<4, 5, 5> | sigmoid)
STRATA_CONFORMANCE("act_tanh", input<4, 5, 5> | strata::tanh)
STRATA_CONFORMANCE("act_elu", input<4, 5, 5> | elu<0.7f>)
STRATA_CONFORMANCE("act_gelu", input<4, 5, 5> | gelu)
STRATA_CONFORMANCE("act_gelu_tanh", input<4, 5, 5> | gelu_tanh)
STRATA_CONFORMANCE("act_silu", input<4, 5, 5> | silu)
STRATA_CONFORMANCE("max_pool_pad", input<3, 7, 7> | max_pool<3, PoolOpts{.stride = 2, .padding = 1}>)
STRATA_CONFORMANCE("max_pool_ceil", input<3, 7, 7> | max_pool<2, PoolOpts{.ceil_mode = true}>)
STRATA_CONFORMANCE("max_pool_ceil_pad",
                   input<2, 8, 8> | max_pool<3, PoolOpts{.stride = 2, .padding = 1, .ceil_mode = true}>)
STRATA_CONFORMANCE("avg_pool_pad", input<3, 7, 7> | avg_pool<3, PoolOpts{.stride = 2, .padding = 1}>)
STRATA_CONFORMANCE("avg_pool_ceil", input<3, 7, 7> | avg_pool<2, PoolOpts{.ceil_mode = true}>)
STRATA_CONFORMANCE("avg_pool_nopadcount",
                   input<3, 7, 7> | avg_pool<3, PoolOpts{.stride = 2, .padding = 1, .count_include_pad = false}>)
STRATA_CONFORMANCE("avg_pool_ceil_pad",
                   input<2, 8, 8> | avg_pool<3, PoolOpts{.stride = 2, .padding = 1, .ceil_mode = true}>)
STRATA_CONFORMANCE("global_avg_pool", input<6, 5, 7> | global_avg_pool | flatten)
STRATA_CONFORMANCE("dense", input<4, 3, 3> | flatten | dense<7>)
STRATA_CONFORMANCE("dense_nobias", input<4, 3, 3> | flatten | dense<5, DenseOpts{.bias = false}>)
STRATA_CONFORMANCE("softmax", input<3, 2, 2> | flatten | dense<6> | softmax)
STRATA_CONFORMANCE("log_softmax", input<3, 2, 2> | flatten | dense<6> | log_softmax)
STRATA_CONFORMANCE("dropout", input<2, 4, 4> | conv<3, 1> | dropout<0.5f>)
STRATA_CONFORMANCE("mnist_cnn", models::mnist_cnn)
// torchvision's blocks exported on their own: named<""> puts conv1, bn1, ... at the top level.
STRATA_CONFORMANCE("basic_block_down", input<16, 8, 8> | named<"">(models::basic_block<32, 2, true>()))
STRATA_CONFORMANCE("basic_block", input<16, 8, 8> | named<"">(models::basic_block<16, 1, false>()))
STRATA_CONFORMANCE("bottleneck_down", input<32, 8, 8> | named<"">(models::bottleneck<8, 2, true>()))
