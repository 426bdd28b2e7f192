// A grouped transposed convolution whose groups do not divide its input channels.
// expect: strata: conv_transpose: groups must divide the input channels
// expect: stage<1>
// expect: strata::ConvTranspose<
// expect: input<6, 8, 8>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | conv<6, 1> | conv_transpose<4, 2, ConvTransposeOpts{.stride = 2, .groups = 4}>;
int main() {}
