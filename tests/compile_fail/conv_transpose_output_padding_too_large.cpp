// output_padding as large as the stride (and the dilation), which PyTorch refuses.
// expect: conv_transpose: output_padding must be smaller than the stride or the dilation
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | conv_transpose<4, 3, ConvTransposeOpts{.stride = 2, .output_padding = 2}>;
int main() {}
