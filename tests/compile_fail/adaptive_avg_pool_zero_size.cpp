// An adaptive pool to an output of zero columns.
// expect: adaptive_avg_pool: the output size must be positive
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | adaptive_avg_pool<2, 0>;
int main() {}
