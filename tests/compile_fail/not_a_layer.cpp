// Something that is not a Strata layer on the right of '|'.
// expect: the right-hand side of '|' is not a Strata layer
#include <strata/strata.hpp>
using namespace strata;
struct MyLayer {};
constexpr auto net = input<1, 28, 28> | conv<8, 3> | MyLayer{} | relu;
int main() {}
