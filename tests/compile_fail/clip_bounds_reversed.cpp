// clip with its bounds the wrong way round.
// expect: clip: the lower bound must be below the upper bound
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<1, 28, 28> | clip<6.0f, 0.0f>;
int main() {}
