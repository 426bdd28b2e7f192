// The one translation unit nvcc compiles for strata::cuda: Strata's kernels, instantiated for
// the element types the engines use. Add this file to a program that uses strata::cuda::Engine.
#include "strata/cuda/kernels.cuh"

namespace strata::cuda::kernels {

#define STRATA_INSTANTIATE_T(T)                                                                  \
  template void convert<float, T>(const float*, Strides, T*, Strides, int, int, int, int, bool,  \
                                  cudaStream_t);                                                 \
  template void pointwise<T>(const T*, const T*, T*, const float*, const float*, ActDesc,        \
                             std::int64_t, int, int, int, bool, cudaStream_t);                   \
  template void conv_direct<T>(const T*, const T*, const float*, const T*, T*, ConvShape,      \
                               ActDesc, cudaStream_t);                                           \
  template void space_to_depth<T>(const float*, T*, int, int, int, int, int, int, int, int, int, \
                                  cudaStream_t);                                                 \
  template void subsample<T>(const T*, T*, int, int, int, int, int, int, int, int, cudaStream_t); \
  template void pool<T>(const T*, T*, PoolShape, bool, cudaStream_t);                            \
  template void global_avg_pool<T>(const T*, T*, int, int, int, bool, cudaStream_t);             \
  template void softmax<T, float>(const T*, Strides, float*, Strides, int, int, int, int, bool,  \
                                  cudaStream_t);

STRATA_INSTANTIATE_T(float)
STRATA_INSTANTIATE_T(__half)
STRATA_INSTANTIATE_T(__nv_bfloat16)
#undef STRATA_INSTANTIATE_T

template void convert<__half, float>(const __half*, Strides, float*, Strides, int, int, int, int,
                                     bool, cudaStream_t);
template void convert<__nv_bfloat16, float>(const __nv_bfloat16*, Strides, float*, Strides, int,
                                            int, int, int, bool, cudaStream_t);
template void softmax<__half, __half>(const __half*, Strides, __half*, Strides, int, int, int, int,
                                      bool, cudaStream_t);
template void softmax<__nv_bfloat16, __nv_bfloat16>(const __nv_bfloat16*, Strides, __nv_bfloat16*,
                                                    Strides, int, int, int, int, bool,
                                                    cudaStream_t);

}  // namespace strata::cuda::kernels
