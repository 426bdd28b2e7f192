// A mistake deep inside a named ResNet-style block is reported at its top-level stage, naming
// the inner layer and what it was fed.
// expect: conv: groups must divide the input channels
// expect: stage<1>
// expect: input<64, 56, 56>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 224, 224> | conv<64, 7, ConvOpts{.stride = 4, .padding = 3}>
    | named<"layer1">(residual<relu>(named<"conv1">(conv<64, 3, ConvOpts{.padding = 1}>) | relu
                                     | named<"conv2">(conv<63, 3, ConvOpts{.padding = 1, .groups = 3}>)));
int main() {}
