// dense fed a (C,H,W) tensor: the message says to flatten first.
// expect: dense needs a flat input: put flatten before it
// expect: stage<1>
// expect: input<8, 14, 14>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<1, 28, 28> | conv<8, 3, ConvOpts{.stride = 2, .padding = 1}> | dense<10>;
int main() {}
