// With `using namespace strata;` and the C library's headers, every layer name is usable
// unqualified — `tanh` included, which <cmath>/<math.h> also declare — and the C library's
// functions keep working. Compiled with g++ and clang; compiling is passing.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <math.h>
#include <unistd.h>

#include <strata/strata.hpp>

using namespace strata;

constexpr auto every_layer = input<3, 8, 8> | conv<8, 3, ConvOpts{.padding = 1}> | batch_norm
    | conv_transpose<8, 1> | concat(identity, relu) | multiply(global_avg_pool) | squeeze_excite<16, 4>
    | relu | leaky_relu<0.1f> | relu6 | clip<-1.0f, 1.0f> | sigmoid | tanh | elu<1.0f> | gelu
    | gelu_tanh | silu | hardswish | hardsigmoid | mish | dropout<0.5f> | max_pool<2> | avg_pool<2> | batch_norm_eps<1e-3f>
    | upsample<2> | adaptive_avg_pool<3> | global_avg_pool | flatten | dense<4> | softmax;
constexpr auto composites = input<2, 4, 4> | named<"act">(tanh) | conv<2, 1> | tanh
    | residual(conv<2, 1> | tanh) | tanh | residual<relu>(conv<2, 1>, conv<2, 1>) | flatten
    | dense<3> | log_softmax;

using EveryLayer = decltype(every_layer);
using Composites = decltype(composites);
static_assert(EveryLayer::output_spec.shape == features(4));
static_assert(Composites::output_spec.shape == features(3));
static_assert(std::is_same_v<decltype(tanh()), Tanh>);
// `| tanh` is the tanh layer, wherever it stands.
static_assert(Composites::graph.rows[0].desc.act.kind == Act::tanh);
static_assert(Composites::graph.ops[0].act.kind == Act::tanh);
static_assert(Composites::graph.ops[1].act.kind == Act::tanh);
// The C library's tanh is still what a call with a number means.
static_assert(std::is_same_v<decltype(tanh(0.5)), double>);
static_assert(std::is_same_v<decltype(std::tanh(0.5f)), float>);
static_assert(std::is_same_v<decltype(::tanh(0.5)), double>);

int main() { return 0; }
