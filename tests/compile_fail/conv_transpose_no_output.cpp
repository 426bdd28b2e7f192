// A transposed convolution whose padding eats the whole output: (1 − 1)·1 − 2·2 + 2 + 1 < 1.
// expect: strata: conv_transpose: the padding leaves no output
// expect: stage<1>
// expect: input<4, 1, 1>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<4, 4, 4> | global_avg_pool | conv_transpose<2, 3, ConvTransposeOpts{.padding = 2}>;
int main() {}
