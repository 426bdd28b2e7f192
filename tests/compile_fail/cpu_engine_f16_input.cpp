// The CPU reference reads f32 input only.
// expect: CpuEngine: the CPU reference reads f32 input
#include <strata/strata.hpp>
using namespace strata;
using Net = decltype(input<1, 8, 8, Layout::nchw, DType::f16> | relu);
int main() { CpuEngine<Net> engine(Weights<Net>::random(1), 1); }
