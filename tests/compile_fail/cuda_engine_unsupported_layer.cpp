// A network with a layer the CUDA backend does not run yet (upsample) fails to compile for
// cuda::Engine with one message naming the layer, rather than running wrong; CpuEngine runs it.
// expect: cuda::Engine: upsample is not yet supported on the CUDA backend
#include <strata/cuda/storage.hpp>
#include <strata/strata.hpp>
using namespace strata;
using Net = decltype(input<3, 8, 8> | conv<4, 3> | upsample<2>);
int main() { return static_cast<int>(cuda::NetStorage<Net, DType::f32>::describe().ops.size()); }
