// named<""> around two chains numbers both from 0: two convs would share "0.weight".
// expect: Weights: two parameters of this network have the same name
#include <strata/strata.hpp>
using namespace strata;
using Net = decltype(input<1, 4, 4> | named<"">(conv<1, 1> | conv<1, 1>) | conv<1, 1>);
int main() { (void)Weights<Net>::random(1); }
