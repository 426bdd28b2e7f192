// A dense layer that declares 3136 input features is fed 4096.
// expect: dense: its in_features differ from the features it is fed
// expect: stage<9>
// expect: input<4096>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<1, 32, 32>
    | conv<32, 3, ConvOpts{.padding = 1}> | batch_norm | relu | max_pool<2>
    | conv<64, 3, ConvOpts{.padding = 1}> | batch_norm | relu | max_pool<2>
    | flatten | dense<128, DenseOpts{.in_features = 3136}> | relu | dense<10>;
int main() {}
