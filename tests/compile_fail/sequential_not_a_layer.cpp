// sequential() of something that is not a Strata layer.
// expect: sequential: its argument must be a Strata layer or node
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | sequential(42) | relu;
int main() {}
