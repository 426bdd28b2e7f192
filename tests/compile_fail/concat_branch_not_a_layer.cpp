// A concat branch that is not a Strata layer.
// expect: concat: every branch must be a Strata layer or node
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | concat(conv<4, 1>, 42);
int main() {}
