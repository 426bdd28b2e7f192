// A convolution after flatten.
// expect: this layer needs a (C,H,W) input but is fed a flat feature vector
// expect: stage<1>
// expect: input<392>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<2, 14, 14> | flatten | conv<8, 3>;
int main() {}
