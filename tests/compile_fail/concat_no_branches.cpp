// A concat of nothing.
// expect: concat: give it at least one branch
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | concat();
int main() {}
