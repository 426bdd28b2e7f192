// batch_norm (BatchNorm2d) after dense.
// expect: this layer needs a (C,H,W) input but is fed a flat feature vector
// expect: BatchNorm
// expect: input<64>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<1, 8, 8> | flatten | dense<64> | batch_norm | relu;
int main() {}
